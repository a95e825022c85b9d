"""API authentication with the identity provider's access tokens (``Authorization: Bearer <token>``), checked locally.

Rules: a token is accepted only when all of these hold — its header names an allowed asymmetric algorithm (RS256,
ES256; never ``none``, never HS256, which would let anyone holding the *public* key sign) and a key id of the
provider's key set; its signature verifies with that key; ``iss`` is ``OIDC_ISSUER``; ``aud`` contains
``OIDC_API_AUDIENCE``; ``azp`` (or RFC 9068's ``client_id``), when present, is one of our clients; ``exp`` is in the
future and ``nbf`` in the past, within ``OIDC_LEEWAY_SECONDS``; it is an access token and not an ID token; and ``sub``
is the subject of an active account. Nothing is asked of the provider per request: its keys come from the cache
(``accounts.oidc.jwks``) and the account found for a subject is cached for ``OIDC_USER_CACHE_SECONDS`` (dropped when
the account is saved). Each rejection answers 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` and is
recorded as a ``token_rejected`` security event. Without ``OIDC_ISSUER`` this class authenticates nobody.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from rest_framework import authentication, exceptions, status
from rest_framework.request import Request

from accounts.models import User
from accounts.oidc import discovery, jwks
from accounts.oidc.discovery import ProviderUnavailableError
from audit.events import record_event
from audit.models import SecurityEventKind

logger = logging.getLogger(__name__)

# Header ``typ`` values of access tokens: RFC 9068's, and the plain "JWT" Keycloak writes on all its tokens.
ACCESS_TOKEN_HEADER_TYPES = {"at+jwt", "application/at+jwt", "jwt"}
# Keycloak's own ``typ`` claim: "Bearer" on access tokens, "ID" on ID tokens, "Refresh" on refresh tokens.
ACCESS_TOKEN_CLAIM_TYPE = "bearer"
REQUIRED_CLAIMS = ["iss", "aud", "exp", "sub"]


class InvalidBearerTokenError(exceptions.APIException):
    """401 for a bearer token we do not accept, with the RFC 6750 challenge that says why.

    Not an ``AuthenticationFailed``: DRF replaces the challenge of those with the first authentication class's.
    """

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_token"
    default_detail = "The access token is not valid."

    def __init__(self, description: str) -> None:
        super().__init__(detail=description, code=self.default_code)
        escaped = description.replace("\\", "\\\\").replace('"', '\\"')
        self.auth_header = f'Bearer realm="api", error="invalid_token", error_description="{escaped}"'


class IdentityProviderUnavailableError(exceptions.APIException):
    """The provider's keys cannot be read: the token was not judged, so the client may try again later."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "identity_provider_unavailable"
    default_detail = "Access tokens cannot be checked right now; try again later."


class TokenRejectedError(Exception):
    """Why a token is refused: a machine ``reason`` for the security event and a ``description`` for the client."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


def allowed_client_ids() -> set[str]:
    client_ids = set(settings.OIDC_API_CLIENT_IDS)
    if settings.OIDC_RP_CLIENT_ID:
        client_ids.add(settings.OIDC_RP_CLIENT_ID)
    return client_ids


def _header_of(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRejectedError("malformed", "The access token is not a well-formed JWT.") from error
    algorithm = header.get("alg")
    if algorithm not in jwks.ALLOWED_ALGORITHMS:
        raise TokenRejectedError("algorithm", f"Tokens signed with {algorithm!r} are not accepted.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejectedError("key_id", "The access token names no signing key (kid).")
    token_type = header.get("typ")
    if token_type is not None and str(token_type).lower() not in ACCESS_TOKEN_HEADER_TYPES:
        raise TokenRejectedError("token_type", f"A token of type {token_type!r} is not an access token.")
    return header


def validate_access_token(token: str) -> dict[str, Any]:
    """The claims of ``token`` when it is an access token for this API; ``TokenRejectedError`` says why otherwise."""
    header = _header_of(token)
    try:
        key = jwks.signing_key(header["kid"], header["alg"])
    except jwks.UnknownSigningKeyError as error:
        raise TokenRejectedError(
            "unknown_key", "The access token is signed with a key the provider does not publish."
        ) from error
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[header["alg"]],
            audience=settings.OIDC_API_AUDIENCE,
            issuer=discovery.issuer(),
            leeway=settings.OIDC_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRejectedError("expired", "The access token has expired.") from error
    except jwt.ImmatureSignatureError as error:
        raise TokenRejectedError("not_yet_valid", "The access token is not valid yet.") from error
    except jwt.InvalidAudienceError as error:
        raise TokenRejectedError("audience", "The access token is not meant for this API.") from error
    except jwt.InvalidIssuerError as error:
        raise TokenRejectedError("issuer", "The access token comes from another issuer.") from error
    except jwt.MissingRequiredClaimError as error:
        raise TokenRejectedError("missing_claim", f"The access token has no {error.claim!r} claim.") from error
    except jwt.InvalidSignatureError as error:
        raise TokenRejectedError("signature", "The access token's signature does not verify.") from error
    except jwt.PyJWTError as error:
        raise TokenRejectedError("malformed", "The access token is not valid.") from error
    _check_token_type(claims)
    _check_client(claims)
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise TokenRejectedError("missing_claim", "The access token names no subject.")
    return claims


def _check_token_type(claims: dict[str, Any]) -> None:
    """An ID token must not pass as an access token, even when the audience settings would let it.

    ID tokens are addressed to the client (``aud`` = its client id), so the audience check refuses them as long as
    ``OIDC_API_AUDIENCE`` is not a client id; these checks keep that true when it is: Keycloak marks its tokens with a
    ``typ`` claim ("ID" for ID tokens), and ``at_hash`` is found only in ID tokens.
    """
    token_type = claims.get("typ")
    if token_type is not None and str(token_type).lower() != ACCESS_TOKEN_CLAIM_TYPE:
        raise TokenRejectedError("token_type", f"A token of type {token_type!r} is not an access token.")
    if "at_hash" in claims:
        raise TokenRejectedError("token_type", "An ID token is not an access token.")


def _check_client(claims: dict[str, Any]) -> None:
    """The party the token was issued to, when the token says, must be one of our clients."""
    for claim in ("azp", "client_id"):
        if claim in claims and claims[claim] not in allowed_client_ids():
            raise TokenRejectedError("client", "The access token was issued to another client.")


def _user_cache_key(subject: str) -> str:
    return "oidc:bearer-user:" + hashlib.sha256(subject.encode()).hexdigest()


# Cached accounts this process could not drop because the cache was unreachable (it fails open: erp.cache). Dropped
# at this process's next lookup, so that a copy cached before the outage is not trusted once the cache is back.
_undropped_keys: set[str] = set()
_undropped_lock = threading.Lock()


def _drop_cached_user(key: str) -> None:
    if cache.delete(key) is None:  # True or False when the cache answered; None when it could not be reached
        with _undropped_lock:
            _undropped_keys.add(key)


def _drop_undropped_users() -> None:
    with _undropped_lock:
        pending = list(_undropped_keys)
        _undropped_keys.clear()
    for key in pending:
        _drop_cached_user(key)


def user_for_subject(subject: str) -> User:
    """The active account linked to ``subject``, from the cache when recently found."""
    if _undropped_keys:
        _drop_undropped_users()
    key = _user_cache_key(subject)
    user = cache.get(key)
    if user is None:
        user = User.objects.filter(oidc_subject=subject).first()
        if user is None:
            raise TokenRejectedError("unknown_subject", "No account is linked to the token's subject.")
        cache.set(key, user, settings.OIDC_USER_CACHE_SECONDS)
    if not user.is_active:
        raise TokenRejectedError("inactive_user", "The account of the token's subject is deactivated.")
    return user


def forget_user(sender: Any, instance: User, **kwargs: Any) -> None:
    """A saved or deleted account is looked up afresh by its next bearer request (deactivation applies at once)."""
    if instance.oidc_subject:
        _drop_cached_user(_user_cache_key(instance.oidc_subject))


def connect() -> None:
    """Called when the app is ready: every process that saves accounts drops their cached copies."""
    post_save.connect(forget_user, sender=User, dispatch_uid="accounts.oidc.bearer.forget_user.save")
    post_delete.connect(forget_user, sender=User, dispatch_uid="accounts.oidc.bearer.forget_user.delete")


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def _record_rejection(token: str, rejection: TokenRejectedError) -> None:
    """The event names what the token claimed (unverified: it was refused) — never the token itself."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        header = {}
    claims = _unverified_claims(token)
    record_event(
        SecurityEventKind.TOKEN_REJECTED,
        data={
            "reason": rejection.reason,
            "description": rejection.description,
            "algorithm": header.get("alg"),
            "kid": header.get("kid"),
            "issuer": claims.get("iss"),
            "subject": claims.get("sub"),
            "audience": claims.get("aud"),
            "client": claims.get("azp") or claims.get("client_id"),
        },
    )


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <access token>`` of the identity provider; ``request.auth`` holds the token's claims."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        if not discovery.is_configured():
            return None
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.encode():
            return None
        token = parts[1].decode("latin-1") if len(parts) == 2 else ""
        try:
            if not token:
                raise TokenRejectedError("malformed", "The Authorization header must be 'Bearer <access token>'.")
            claims = validate_access_token(token)
            user = user_for_subject(claims["sub"])
        except TokenRejectedError as rejection:
            logger.info("Bearer token rejected: %s", rejection.reason)
            _record_rejection(token, rejection)
            raise InvalidBearerTokenError(rejection.description) from rejection
        except ProviderUnavailableError as error:
            raise IdentityProviderUnavailableError() from error
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
