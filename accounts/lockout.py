"""Account protection for local sign-ins: 5 consecutive failures lock the account for 30 minutes.

Applies to every local password sign-in (admin, API, anything calling ``authenticate``) because the authentication
backend consults it. A success resets the counter. The counters are security state, not business data: they are kept
out of the history (see ``User.history``) and changed with single-row UPDATEs so that concurrent failures all count.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from audit.events import record_event
from audit.models import SecurityEventKind


def is_locked(user: User, *, now: datetime.datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or timezone.now())


def record_failure(user: User) -> bool:
    """Count a failed password for ``user``; lock the account when the limit is reached. True when this locked it."""
    User.objects.filter(pk=user.pk).update(failed_login_count=F("failed_login_count") + 1)
    user.refresh_from_db(fields=["failed_login_count", "locked_until"])
    if user.failed_login_count < settings.LOGIN_FAILURE_LIMIT:
        return False
    locked_until = timezone.now() + datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=locked_until)
    user.failed_login_count, user.locked_until = 0, locked_until
    record_event(
        SecurityEventKind.ACCOUNT_LOCKED,
        actor=None,
        target_user=user,
        data={"until": locked_until.isoformat(), "failures": settings.LOGIN_FAILURE_LIMIT},
    )
    return True


def record_success(user: User) -> None:
    if user.failed_login_count or user.locked_until is not None:
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
        user.failed_login_count, user.locked_until = 0, None
