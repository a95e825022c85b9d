"""The identity provider's signing keys (its JWKS), fetched with a timeout and kept in the shared cache.

Rules: the key set is fetched from the provider's ``jwks_uri`` (an explicit ``OIDC_OP_JWKS_ENDPOINT``, else the
discovery document) and cached for ``OIDC_JWKS_CACHE_SECONDS``. A token signed with a key id that the cached set does
not hold makes us fetch the set again — the provider may have rotated its keys — but at most once every
``OIDC_JWKS_MIN_REFETCH_SECONDS`` for the whole installation, so that a flood of tokens with made-up key ids cannot
turn us into a client hammering the provider. Only signature keys for the algorithms we accept are used.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from jwt import PyJWK
from jwt.exceptions import InvalidKeyError, PyJWKError

from accounts.oidc import discovery
from accounts.oidc.discovery import ProviderUnavailableError

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: with a symmetric one, whoever knows the (public) key could sign. "none" never.
ALLOWED_ALGORITHMS = ("RS256", "ES256")
# Which key type and curve an algorithm needs: a key of another type never verifies a token, whatever it claims.
_KEY_TYPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}


class UnknownSigningKeyError(Exception):
    """No key of the provider's set (even freshly fetched, when a fetch was allowed) matches the token's key id."""


def _cache_key(suffix: str) -> str:
    return f"oidc:jwks:{suffix}:" + hashlib.sha256(discovery.issuer().encode()).hexdigest()[:32]


def jwks_uri() -> str:
    return str(discovery.oidc_setting("OIDC_OP_JWKS_ENDPOINT"))


def fetch_key_set() -> list[dict[str, Any]]:
    """The provider's keys as published now (one HTTP call), and into the cache they go."""
    url = jwks_uri()
    try:
        response = requests.get(
            url,
            timeout=settings.OIDC_TIMEOUT,
            verify=settings.OIDC_VERIFY_SSL,
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        logger.warning("The identity provider's keys could not be read from %s: %s", url, error)
        raise ProviderUnavailableError("The identity provider's signing keys cannot be read right now.") from error
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        logger.warning("The document at %s is not a JWK set", url)
        raise ProviderUnavailableError("The identity provider's signing keys cannot be read right now.")
    keys = [key for key in keys if isinstance(key, dict)]
    cache.set(_cache_key("set"), keys, settings.OIDC_JWKS_CACHE_SECONDS)
    return keys


def cached_key_set() -> list[dict[str, Any]]:
    """The key set from the cache; fetched when the cache holds none."""
    keys = cache.get(_cache_key("set"))
    if keys is None:
        return fetch_key_set()
    return list(keys)


def _matching(keys: list[dict[str, Any]], kid: str, algorithm: str) -> dict[str, Any] | None:
    key_type, curve = _KEY_TYPES[algorithm]
    for key in keys:
        if key.get("kid") != kid:
            continue
        if key.get("use", "sig") != "sig" or key.get("alg", algorithm) != algorithm:
            continue
        if key.get("kty") != key_type or (curve is not None and key.get("crv") != curve):
            continue
        return key
    return None


def may_refetch() -> bool:
    """Whether an unknown key id may trigger a fetch now (one per ``OIDC_JWKS_MIN_REFETCH_SECONDS``)."""
    interval = settings.OIDC_JWKS_MIN_REFETCH_SECONDS
    return interval <= 0 or bool(cache.add(_cache_key("refetch"), 1, interval))


def signing_key(kid: str, algorithm: str) -> PyJWK:
    """The provider's public key with id ``kid`` for ``algorithm`` (one of ``ALLOWED_ALGORITHMS``).

    Raises ``UnknownSigningKeyError`` when the provider has no such key, ``ProviderUnavailableError`` when its keys
    cannot be read at all.
    """
    if algorithm not in ALLOWED_ALGORITHMS:
        raise UnknownSigningKeyError(f"algorithm {algorithm!r} is not accepted")
    found = _matching(cached_key_set(), kid, algorithm)
    if found is None and may_refetch():
        found = _matching(fetch_key_set(), kid, algorithm)
    if found is None:
        raise UnknownSigningKeyError(f"no signing key {kid!r} for {algorithm}")
    try:
        return PyJWK(found, algorithm=algorithm)
    except (PyJWKError, InvalidKeyError) as error:
        raise UnknownSigningKeyError(f"signing key {kid!r} cannot be used: {error}") from error
