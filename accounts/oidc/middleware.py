"""Sessions opened through the identity provider do not outlive the provider's session.

Every ``OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS`` a browser page request goes back to the provider with ``prompt=none``
(mozilla-django-oidc's ``SessionRefresh``): a live provider session sends the browser straight back, an ended one
comes back with an error and the callback ends the session here. API calls cannot follow such a redirect: when the
check is due they get 401 with the error body and the URL that re-authenticates (``login_url``); the SPA sends the
browser there. Local sessions and bearer tokens are never touched. When the provider cannot be reached the session
goes on and the check is tried again at the next request.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import reverse
from mozilla_django_oidc.middleware import SessionRefresh

from accounts.oidc.backend import BACKEND_PATH
from accounts.oidc.discovery import ProviderUnavailableError, is_configured, oidc_setting

logger = logging.getLogger(__name__)

EXPIRY_SESSION_KEY = "oidc_id_token_expiration"
DEFAULTS: dict[str, Any] = {
    "OIDC_EXEMPT_URLS": [],
    "OIDC_STATE_SIZE": 32,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc_authentication_callback",
    "OIDC_RP_SCOPES": "openid email",
    "OIDC_USE_NONCE": True,
    "OIDC_NONCE_SIZE": 32,
}


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.headers.get("x-requested-with") == "XMLHttpRequest"


class ProviderSessionRefresh(SessionRefresh):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, get_response: Any) -> None:
        # mozilla-django-oidc reads the endpoints here; ours are read when a refresh is due (and may be unset).
        super(SessionRefresh, self).__init__(get_response)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("OIDC_"):
            return self.get_settings(name, DEFAULTS.get(name))
        raise AttributeError(name)

    def _is_due(self, request: HttpRequest) -> bool:
        return (
            is_configured()
            and request.user.is_authenticated
            and request.session.get(BACKEND_SESSION_KEY) == BACKEND_PATH
            and request.session.get(EXPIRY_SESSION_KEY, 0) <= time.time()
        )

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if not self._is_due(request):
            return None
        if is_api_request(request):
            login_url = reverse("oidc_authentication_init") + "?" + urlencode({"next": "/"})
            body = {
                "error": {
                    "code": "reauthentication_required",
                    "message": "Your session must be confirmed with the identity provider: sign in again.",
                    "fields": {},
                },
                "login_url": login_url,
            }
            return JsonResponse(body, status=401)
        if not self.is_refreshable_url(request):
            return None
        try:
            response: HttpResponseBase | None = super().process_request(request)
        except ProviderUnavailableError:
            logger.warning("Session refresh postponed: the identity provider cannot be reached")
            return None
        return response
