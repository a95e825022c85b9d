"""Signing out of a session that began at the identity provider ends the provider's session too.

``provider_logout_url(request)`` must be called before Django's ``logout`` (which empties the session holding the ID
token): it gives the provider's end-session URL with ``id_token_hint`` and ``post_logout_redirect_uri`` (back to
``OIDC_LOGOUT_REDIRECT_URL`` here), or that local URL when the session did not come from the provider. Every logout —
``/oidc/logout/``, the admin's and the API's — should send the browser there.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest
from django.shortcuts import resolve_url

from accounts.oidc.discovery import ProviderUnavailableError, is_configured, oidc_setting

logger = logging.getLogger(__name__)

ID_TOKEN_SESSION_KEY = "oidc_id_token"


def is_provider_session(request: HttpRequest) -> bool:
    """Whether the signed-in session was opened through the identity provider."""
    from accounts.oidc.backend import BACKEND_PATH

    return (
        is_configured()
        and getattr(request, "user", None) is not None
        and request.user.is_authenticated
        and request.session.get(BACKEND_SESSION_KEY) == BACKEND_PATH
    )


def local_logout_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(resolve_url(settings.OIDC_LOGOUT_REDIRECT_URL))


def provider_logout_url(request: HttpRequest) -> str:
    """Where the browser goes to sign out: the provider's end-session endpoint for a provider session, else here."""
    local = local_logout_url(request)
    id_token = request.session.get(ID_TOKEN_SESSION_KEY)
    if not is_provider_session(request) or not id_token:
        return local
    try:
        end_session = oidc_setting("OIDC_OP_LOGOUT_ENDPOINT", "")
    except ProviderUnavailableError:
        logger.warning("Signed out locally only: the identity provider cannot be reached")
        return local
    if not end_session:
        return local
    query = urlencode(
        {"id_token_hint": id_token, "post_logout_redirect_uri": local, "client_id": settings.OIDC_RP_CLIENT_ID}
    )
    return f"{end_session}{'&' if '?' in end_session else '?'}{query}"
