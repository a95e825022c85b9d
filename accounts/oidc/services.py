"""Who a provider sign-in is: the account linked to the ``sub`` claim, linked or created at the first sign-in.

Rules: accounts are matched on the provider's stable subject, never on email alone. At the first sign-in an existing
local account with the same email is linked only when the provider vouches for the address (``email_verified``) and
the account is linked to no other subject; otherwise a new account is created from the claims (email, name) with no
usable password. Later sign-ins refresh the name, and the email when it is verified and free. Inactive accounts are
refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.models import User

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = User._meta.get_field("full_name").max_length or 150


class SignInRefused(PermissionDenied):
    """The provider vouched for someone this installation will not sign in; ``message`` is for that person."""

    def __init__(self, code: str, message: str, *, user: User | None = None, email: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.user = user
        self.email = email


def is_email_verified(claims: Mapping[str, Any]) -> bool:
    verified = claims.get("email_verified")
    return verified is True or (isinstance(verified, str) and verified.lower() == "true")


def full_name_from(claims: Mapping[str, Any]) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return " ".join(name.split())[:NAME_MAX_LENGTH]


def _email_from(claims: Mapping[str, Any]) -> str:
    email = claims.get("email")
    return User.objects.normalize_email(email.strip()) if isinstance(email, str) else ""


@transaction.atomic
def user_sign_in_from_claims(*, claims: Mapping[str, Any]) -> User:
    """The account the verified claims belong to, linked or created on the first sign-in and refreshed later."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("missing_subject", "The identity provider did not say who you are (no subject).")
    email = _email_from(claims)
    verified = is_email_verified(claims)
    full_name = full_name_from(claims)
    user = User.objects.select_for_update().filter(oidc_subject=subject).first()
    if user is None:
        user = _first_sign_in(subject=subject, email=email, verified=verified, full_name=full_name)
    else:
        _refuse_inactive(user, email)
        _refresh(user, email=email, verified=verified, full_name=full_name)
    return user


def _refuse_inactive(user: User, email: str) -> None:
    if not user.is_active:
        raise SignInRefused("inactive", "This account has been deactivated.", user=user, email=email or user.email)


def _first_sign_in(*, subject: str, email: str, verified: bool, full_name: str) -> User:
    if not email:
        raise SignInRefused("missing_email", "The identity provider did not give an email address for your account.")
    existing = User.objects.select_for_update().filter(email__iexact=email).first()
    if existing is None:
        user = User(email=email, full_name=full_name, oidc_subject=subject)
        user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save()
        return user
    if existing.oidc_subject:
        raise SignInRefused(
            "email_linked_elsewhere",
            f"The account {email} is linked to another identity at the provider; ask an administrator.",
            user=existing,
            email=email,
        )
    if not verified:
        # Anyone may type any address at a provider: only a verified one proves it is the same person.
        raise SignInRefused(
            "unverified_email",
            f"An account with the email address {email} already exists, and the identity provider has not verified "
            "that this address is yours. Verify your email address at the provider, then sign in again.",
            user=existing,
            email=email,
        )
    _refuse_inactive(existing, email)
    existing.oidc_subject = subject
    if full_name:
        existing.full_name = full_name
    existing.full_clean(exclude=["password"])
    existing.save()
    return existing


def _refresh(user: User, *, email: str, verified: bool, full_name: str) -> None:
    changed: list[str] = []
    if full_name and full_name != user.full_name:
        user.full_name = full_name
        changed.append("full_name")
    if email and verified and email.lower() != user.email.lower():
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            logger.warning("Kept the email of user %s: the provider's new address belongs to another account", user.pk)
        else:
            user.email = email
            changed.append("email")
    if changed:
        user.full_clean(exclude=["password"])
        user.save(update_fields=[*changed, "updated_at"])
