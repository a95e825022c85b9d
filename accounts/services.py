"""State changes of user accounts.

Guards: nobody deactivates themselves, and the platform always keeps at least one active superuser. A deactivated or
deleted account loses all its sessions; a changed password ends all other sessions (see ``accounts.passwords``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower

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
def sign_in_locks_reset(*, actor: Actor, emails: Iterable[str] = (), ip_addresses: Iterable[str] = ()) -> int:
    """Lift the sign-in locks of accounts (by email) and of client addresses: their failed sign-ins are forgotten, so
    they may sign in at once. One ``account_unlocked`` security event for each account and address, saying whether it
    was locked and how many of its attempt records went; returns how many records went in all."""
    from axes.models import AccessAttempt

    usernames = sorted({username for username in map(signin_limits.normalized_email, emails) if username})
    addresses = sorted({address for address in ip_addresses if address})
    # Every state is read before anything is removed: an account's and an address's records overlap.
    accounts = [
        (username, signin_limits.account_lock_end(username), AccessAttempt.objects.filter(username=username).count())
        for username in usernames
    ]
    places = [
        (address, signin_limits.address_lock_end(address), AccessAttempt.objects.filter(ip_address=address).count())
        for address in addresses
    ]
    _, removed = AccessAttempt.objects.filter(Q(username__in=usernames) | Q(ip_address__in=addresses)).delete()
    people = {
        user.email.lower(): user for user in User.objects.annotate(lower=Lower("email")).filter(lower__in=usernames)
    }
    for username, end, count in accounts:
        record_event(
            SecurityEventKind.ACCOUNT_UNLOCKED,
            actor=actor,
            target_user=people.get(username),
            data={"was_locked": end is not None, "attempts_removed": count},
            email=username,
        )
    for address, end, count in places:
        record_event(
            SecurityEventKind.ACCOUNT_UNLOCKED,
            actor=actor,
            data={"address": address, "was_locked": end is not None, "attempts_removed": count},
        )
    return removed.get(AccessAttempt._meta.label, 0)


@transaction.atomic
def sign_in_locks_reset_all(*, actor: Actor) -> int:
    """Lift every sign-in lock (``axes_reset``): all failed sign-ins are forgotten; one ``account_unlocked`` event."""
    from axes.models import AccessAttempt

    _, removed = AccessAttempt.objects.all().delete()
    count = removed.get(AccessAttempt._meta.label, 0)
    record_event(SecurityEventKind.ACCOUNT_UNLOCKED, actor=actor, data={"scope": "all", "attempts_removed": count})
    return count


def user_unlock(*, actor: Actor, user: User) -> int:
    """Unlock a person's account after too many failed sign-ins (the admin's "Unlock" action, ``unlock_account``)."""
    return sign_in_locks_reset(actor=actor, emails=[user.email])
