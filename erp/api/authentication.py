"""API authentication: the session cookie (with CSRF) for browsers and the SPA."""

from typing import Any

from rest_framework import authentication
from rest_framework.request import Request


class SessionAuthentication(authentication.SessionAuthentication):
    """Session authentication that answers 401 (not 403) to anonymous callers, so clients know to sign in.

    A request that carries ``Authorization: Bearer`` is judged by its token alone (``accounts.oidc.bearer``), even when
    it also has a session cookie: the explicit credential must not be ignored in favour of an ambient one.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        scheme = authentication.get_authorization_header(request).split()[:1]
        if scheme and scheme[0].lower() == b"bearer":
            return None
        return super().authenticate(request)

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'
