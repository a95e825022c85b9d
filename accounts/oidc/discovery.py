"""Where the identity provider's endpoints are: explicit ``OIDC_OP_*`` settings, else its discovery document.

The document (``OIDC_OP_DISCOVERY_URL``, by default ``<OIDC_ISSUER>/.well-known/openid-configuration``) is fetched
with a timeout and cached, so that a sign-in costs no extra round trip and nothing is fetched before the first sign-in.
mozilla-django-oidc reads its settings through ``get_settings``; the classes in this package route that through
``oidc_setting``.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# mozilla-django-oidc's setting names (and ours for the end-session endpoint) -> the discovery document's keys.
ENDPOINT_SETTINGS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
    "OIDC_OP_LOGOUT_ENDPOINT": "end_session_endpoint",
}
_MISSING = object()


class ProviderUnavailableError(Exception):
    """The identity provider could not be asked (unreachable, slow, or an answer that is not its discovery)."""


def is_configured() -> bool:
    return bool(getattr(settings, "OIDC_ISSUER", ""))


def issuer() -> str:
    return str(settings.OIDC_ISSUER).rstrip("/")


def discovery_url() -> str:
    return getattr(settings, "OIDC_OP_DISCOVERY_URL", "") or f"{issuer()}/.well-known/openid-configuration"


def _cache_key() -> str:
    return "oidc:discovery:" + hashlib.sha256(f"{issuer()} {discovery_url()}".encode()).hexdigest()[:32]


def provider_metadata() -> dict[str, Any]:
    """The issuer's discovery document, from the cache when fresh."""
    if not is_configured():
        raise ImproperlyConfigured("OIDC_ISSUER is not set: no identity provider is configured.")
    key = _cache_key()
    document = cache.get(key)
    if document is not None:
        return dict(document)
    try:
        response = requests.get(discovery_url(), timeout=settings.OIDC_TIMEOUT, verify=settings.OIDC_VERIFY_SSL)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning(
            "The identity provider's discovery document could not be read from %s: %s", discovery_url(), error
        )
        raise ProviderUnavailableError("The identity provider cannot be reached right now.") from error
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer():
        # A document for another issuer would send people and tokens to the wrong place.
        logger.warning("The discovery document at %s names another issuer", discovery_url())
        raise ProviderUnavailableError("The identity provider's discovery document names another issuer.")
    cache.set(key, document, settings.OIDC_DISCOVERY_CACHE_SECONDS)
    return document


def oidc_setting(name: str, *default: Any) -> Any:
    """A setting as mozilla-django-oidc asks for it; endpoint settings left empty come from discovery."""
    if name in ENDPOINT_SETTINGS:
        explicit = getattr(settings, name, "")
        if explicit:
            return explicit
        value = provider_metadata().get(ENDPOINT_SETTINGS[name])
        if value:
            return value
        if default:
            return default[0]
        raise ImproperlyConfigured(f"The identity provider announces no {ENDPOINT_SETTINGS[name]}; set {name}.")
    value = getattr(settings, name, _MISSING)
    if value is not _MISSING:
        return value
    if default:
        return default[0]
    raise ImproperlyConfigured(f"Setting {name} not found")
