"""The password policy beyond Django's own validators, and what happens whenever a password is set.

Django calls every configured validator's ``password_changed`` after a user with a new password is saved — whatever
set it: the services, the admin's forms, ``create_user``, ``changepassword``. ``PasswordHistoryValidator`` uses that
one hook (``password_set``) to remember the new hash and, when an existing account's password changed, to end its
other sessions and record the change.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import PasswordHistory, User
from audit.events import record_event
from audit.models import SecurityEventKind


class EmailPasswordValidator:
    """The password is not the person's email address, nor its part before the @ (whatever the letter case)."""

    def validate(self, password: str, user: Any = None) -> None:
        email = str(getattr(user, "email", "") or "").strip()
        if not email:
            return
        refused = {email.casefold(), email.rpartition("@")[0].casefold()} - {""}
        if password.strip().casefold() in refused:
            raise ValidationError(
                _("The password cannot be your email address or the part of it before the @."),
                code="password_is_email",
            )

    def get_help_text(self) -> str:
        return _("Your password cannot be your email address.")


class PasswordHistoryValidator:
    """The password is not one of the person's last ``remember`` passwords (the current one included)."""

    def __init__(self, remember: int = 5) -> None:
        self.remember = remember

    def validate(self, password: str, user: Any = None) -> None:
        if not isinstance(user, User) or user.pk is None:
            return
        used = list(PasswordHistory.objects.filter(user=user).values_list("password", flat=True)[: self.remember])
        # The stored password counts even when the history does not hold it (set before the history existed).
        current = User.objects.filter(pk=user.pk).values_list("password", flat=True).first()
        if current and current not in used:
            used = [current, *used[: self.remember - 1]]
        if any(check_password(password, encoded) for encoded in used):
            raise ValidationError(
                ngettext(
                    "The password cannot be your current password.",
                    "The password cannot be one of your last %(remember)d passwords.",
                    self.remember,
                ),
                code="password_reused",
                params={"remember": self.remember},
            )

    def password_changed(self, password: str, user: Any = None) -> None:
        if isinstance(user, User) and user.pk is not None:
            password_set(user=user, remember=self.remember)

    def get_help_text(self) -> str:
        return ngettext(
            "Your password cannot be your current password.",
            "Your password cannot be one of your last %(remember)d passwords.",
            self.remember,
        ) % {"remember": self.remember}


def password_set(*, user: User, remember: int) -> None:
    """A new password was saved: keep its hash among the last ``remember``. When it replaced an existing account's
    password, record the change and end the account's other sessions — all but the one making the change, if it is
    the account's own (an administrator resetting someone's password ends all of theirs)."""
    from accounts import sessions

    PasswordHistory.objects.create(user=user, password=user.password)
    kept = PasswordHistory.objects.filter(user=user).order_by("-created_at", "-pk").values("pk")[:remember]
    PasswordHistory.objects.filter(user=user).exclude(pk__in=kept).delete()
    if getattr(user, "_is_password_change", False):
        user._is_password_change = False
        record_event(SecurityEventKind.PASSWORD_CHANGED, target_user=user)
        sessions.user_sessions_end_on_commit(user=user, reason=sessions.Reason.PASSWORD_CHANGED, keep_current=True)
