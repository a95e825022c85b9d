"""Security headers on every response, in every environment.

Django's ``SecurityMiddleware`` and ``XFrameOptionsMiddleware`` send nosniff, the referrer policy and the frame
options; this middleware adds what Django 5.2 lacks — a Content Security Policy — and keeps the cross-origin opener
policy on every page (drf-spectacular relaxes it on Swagger UI for OAuth2 pop-ups, which this API does not use).

The policy comes from the ``CONTENT_SECURITY_POLICY`` setting; each ``{nonce}`` in it is replaced by a fresh random
value per request, offered to templates as ``request.csp_nonce`` for the few inline scripts that must stay inline
(Swagger UI's set-up, which carries the CSRF token). ``{provider}`` becomes the identity provider's origin when one is
configured: signing in and out leads a submitted form there by redirect, which ``form-action`` governs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "Content-Security-Policy"
CROSS_ORIGIN_OPENER_POLICY = "Cross-Origin-Opener-Policy"


def provider_origins() -> str:
    """The origins of the identity provider's issuer and its sign-in and sign-out endpoints, when configured."""
    origins: list[str] = []
    for name in ("OIDC_ISSUER", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_LOGOUT_ENDPOINT"):
        parts = urlsplit(str(getattr(settings, name, "") or ""))
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"http", "https"} and parts.netloc else ""
        if origin and origin not in origins:
            origins.append(origin)
    return " ".join(origins)


def content_security_policy(nonce: str) -> str:
    policy = settings.CONTENT_SECURITY_POLICY.replace("{nonce}", nonce)
    if "{provider}" in policy:
        policy = policy.replace("{provider}", provider_origins()).replace(" ;", ";").strip()
    return policy


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY and CONTENT_SECURITY_POLICY not in response:
            response[CONTENT_SECURITY_POLICY] = content_security_policy(nonce)
        if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
            response[CROSS_ORIGIN_OPENER_POLICY] = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        return response
