"""The authentication backend of the browser sign-in through the identity provider (mozilla-django-oidc).

It answers only the provider's callback (``nonce`` among the credentials): password sign-ins pass it by, and it is
built cheaply (endpoints are read on first use from discovery) because Django builds every backend for every sign-in.
The ID token is checked strictly: signature against the provider's keys with the configured algorithm only, issuer,
audience (our client id), ``azp`` when present, expiry with a small leeway, and the nonce. The person is found through
``accounts.oidc.services`` and their provider-sourced access re-synced through ``accounts.oidc.roles``. Every refusal
is one ``login_failed`` security event with its reason. Permissions are answered by ``rbac.backends.RoleBackend``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import User
from accounts.oidc import roles
from accounts.oidc.discovery import ProviderUnavailableError, is_configured, issuer, oidc_setting
from accounts.oidc.services import SignInRefused, user_sign_in_from_claims
from audit.events import record_event
from audit.models import SecurityEventKind

logger = logging.getLogger(__name__)

BACKEND_PATH = "accounts.oidc.backend.ProviderBackend"
# Only these claims are taken from the access token: what the provider says about groups and roles.
ACCESS_CLAIMS = ("groups", "realm_access", "resource_access")


class ProviderBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # mozilla-django-oidc reads every endpoint here; ours are read when a callback needs them.
        self.UserModel = User

    def __getattr__(self, name: str) -> Any:
        if name.startswith("OIDC_"):
            return self.get_settings(name, None)
        raise AttributeError(name)

    # --- Permissions: none from this backend (roles and grants answer through RoleBackend) -------------------------

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return False

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    # --- Sign-in ------------------------------------------------------------------------------------------------------

    def authenticate(self, request: Any, **kwargs: Any) -> User | None:
        """Exchange the callback's code for tokens and sign in the person they name; ``SignInRefused`` says why not."""
        if request is None or "nonce" not in kwargs or not is_configured():
            return None
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except SignInRefused as refusal:
            self._record_refusal(refusal)
            raise
        except ProviderUnavailableError as error:
            raise self._refused("provider_unavailable", str(error)) from error
        except (requests.RequestException, ValueError) as error:
            logger.warning("Sign-in through the identity provider failed: %s", error)
            raise self._refused("provider_error", "The identity provider did not complete the sign-in.") from error
        except (SuspiciousOperation, jwt.PyJWTError) as error:
            logger.warning("The identity provider's tokens were refused: %s", error)
            raise self._refused("invalid_token", "The identity provider's answer could not be verified.") from error
        return user

    def _refused(self, code: str, message: str) -> SignInRefused:
        refusal = SignInRefused(code, message)
        self._record_refusal(refusal)
        return refusal

    def _record_refusal(self, refusal: SignInRefused) -> None:
        record_event(
            SecurityEventKind.LOGIN_FAILED,
            actor=refusal.user,
            target_user=refusal.user,
            data={"backend": BACKEND_PATH, "reason": refusal.code},
            email=refusal.email.lower(),
        )

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, authorized party and expiry hold."""
        algorithm = self.OIDC_RP_SIGN_ALGO
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != algorithm:
            raise SuspiciousOperation(f"The ID token is signed with {header.get('alg')!r}, not {algorithm!r}.")
        try:
            claims: dict[str, Any] = jwt.decode(
                payload,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=issuer(),
                leeway=settings.OIDC_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise SuspiciousOperation(f"The ID token is not valid: {error}") from error
        authorized_party = claims.get("azp")
        if authorized_party is not None and authorized_party != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("The ID token was issued to another client.")
        return claims

    def access_token_claims(self, access_token: str | None) -> dict[str, Any]:
        """Groups and roles from the access token when it is a JWT signed by the provider (Keycloak's are)."""
        if not access_token or access_token.count(".") != 2:
            return {}
        try:
            key = self.retrieve_matching_jwk(access_token)
            decoded = jwt.decode(
                access_token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                issuer=issuer(),
                leeway=settings.OIDC_LEEWAY_SECONDS,
                options={"verify_aud": False},  # issued for the API audience; we got it first-hand from the provider
            )
        except (jwt.PyJWTError, SuspiciousOperation, KeyError) as error:
            logger.info("The access token's claims were not used: %s", error)
            return {}
        return {name: decoded[name] for name in ACCESS_CLAIMS if name in decoded}

    def get_or_create_user(self, access_token: str, id_token: str, payload: Mapping[str, Any]) -> User:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, Mapping) or userinfo.get("sub") != payload.get("sub"):
            raise SignInRefused("subject_mismatch", "The identity provider's answers do not name the same person.")
        claims = {**self.access_token_claims(access_token), **payload, **userinfo}
        with transaction.atomic():
            user = user_sign_in_from_claims(claims=claims)
            roles.sync_provider_access(user=user, claims=claims)
        return user

    def get_user(self, user_id: Any) -> User | None:
        return User.objects.filter(pk=user_id, is_active=True).first()
