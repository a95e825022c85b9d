"""State changes of user accounts.

Guards: nobody deactivates themselves, and the platform always keeps at least one active superuser. A deactivated or
deleted account loses all its sessions; a changed password ends all other sessions (see ``accounts.passwords``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import sessions, signin_limits
from accounts.models import Actor, User
from audit.events import record_event
from audit.models import SecurityEventKind
from erp.exceptions import ConflictError

PROFILE_FIELDS = {"full_name", "phone", "locale", "time_zone"}
ADMIN_FIELDS = PROFILE_FIELDS | {"email", "is_active", "is_staff", "is_superuser"}


def is_last_active_superuser(user: User) -> bool:
    if not (user.is_superuser and user.is_active):
        return False
    return not User.objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk).exists()


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    validate_password: bool = True,
    **fields: Any,
) -> User:
    """Create a local account. The password must pass the password policy unless the caller seeds demo data."""
    unknown = set(fields) - ADMIN_FIELDS
    if unknown:
        raise TypeError(f"Cannot set {', '.join(sorted(unknown))} on a user.")
    user = User(email=User.objects.normalize_email(email), full_name=full_name, **fields)
    if password is not None and validate_password:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as error:
            raise ValidationError({"password": error.messages}) from error
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


@transaction.atomic
def user_update(*, actor: Actor, user: User, **fields: Any) -> User:
    """Change an account. Users cannot deactivate themselves; the last active superuser stays active and super.
    Deactivating an account ends all its sessions."""
    unknown = set(fields) - ADMIN_FIELDS
    if unknown:
        raise TypeError(f"Cannot set {', '.join(sorted(unknown))} on a user.")
    user = User.objects.select_for_update().get(pk=user.pk)
    loses_power = fields.get("is_active") is False or fields.get("is_superuser") is False
    if fields.get("is_active") is False and actor is not None and actor.pk == user.pk:
        raise ValidationError({"is_active": "You cannot deactivate your own account."}, code="self_deactivation")
    if loses_power and is_last_active_superuser(user):
        raise ConflictError(
            "This is the last active superuser; make someone else a superuser first.", code="last_superuser"
        )
    is_deactivated = user.is_active and fields.get("is_active") is False
    for field, value in fields.items():
        setattr(user, field, value)
    user.full_clean(exclude=["password"])
    user.save()
    if is_deactivated:
        sessions.user_sessions_end_on_commit(user=user, reason=sessions.Reason.DEACTIVATED)
    return user


@transaction.atomic
def user_update_profile(*, user: User, **fields: Any) -> User:
    """A person edits their own profile: name, phone, locale and time zone (never email or flags)."""
    unknown = set(fields) - PROFILE_FIELDS
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed here."))
    return user_update(actor=user, user=user, **fields)


@transaction.atomic
def user_delete(*, actor: Actor, user: User) -> None:
    """Remove an account for good, with its sessions. Nobody deletes themselves, and the last active superuser cannot
    be deleted."""
    if actor is not None and actor.pk == user.pk:
        raise ValidationError("You cannot delete your own account.", code="self_deletion")
    if is_last_active_superuser(user):
        raise ConflictError("This is the last active superuser; it cannot be deleted.", code="last_superuser")
    session_keys = list(user.sessions.values_list("session_key", flat=True))
    user.delete()
    transaction.on_commit(lambda: sessions.session_keys_delete(session_keys))


@transaction.atomic
def user_change_password(*, user: User, current_password: str, new_password: str) -> User:
    """Change one's own password: the current one must match and the new one must pass the password policy (which
    refuses the last passwords). Saving it records the change and ends the person's other sessions."""
    if not user.check_password(current_password):
        raise ValidationError({"current_password": "The current password is not correct."}, code="wrong_password")
    if new_password == current_password:
        raise ValidationError({"new_password": "The new password must differ from the current one."}, code="same")
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as error:
        raise ValidationError({"new_password": error.messages}) from error
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    return user


@transaction.atomic
def sign_in_lock_reset(*, actor: Actor, email: str | None = None, ip_address: str | None = None) -> int:
    """Lift the sign-in lock of an account (by email), of a client address, or — with neither — every lock: their
    failed sign-ins are forgotten, so they may sign in at once. Always an ``account_unlocked`` security event, saying
    what was unlocked, whether it was locked then, and how many attempt records went; returns that number."""
    from axes.models import AccessAttempt

    username = signin_limits.normalized_email(email)
    attempts = AccessAttempt.objects.all()
    data: dict[str, Any] = {}
    if username is not None:
        attempts = attempts.filter(username=username)
        data["was_locked"] = signin_limits.account_lock_end(username) is not None
    if ip_address:
        attempts = attempts.filter(ip_address=ip_address)
        data["address"] = ip_address
        data["address_was_locked"] = signin_limits.address_lock_end(ip_address) is not None
    if username is None and not ip_address:
        data["scope"] = "all"
    removed, _ = attempts.delete()
    data["attempts_removed"] = removed
    target = User.objects.filter(email__iexact=username).first() if username else None
    record_event(SecurityEventKind.ACCOUNT_UNLOCKED, actor=actor, target_user=target, data=data, email=username or "")
    return removed


def user_unlock(*, actor: Actor, user: User) -> int:
    """Unlock a person's account after too many failed sign-ins (the admin's "Unlock" action, ``unlock_account``)."""
    return sign_in_lock_reset(actor=actor, email=user.email)
