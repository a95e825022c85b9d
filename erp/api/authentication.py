"""API authentication: the session cookie (with CSRF) for browsers and the SPA."""

from rest_framework import authentication
from rest_framework.request import Request


class SessionAuthentication(authentication.SessionAuthentication):
    """Session authentication that answers 401 (not 403) to anonymous callers, so clients know to sign in."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'
