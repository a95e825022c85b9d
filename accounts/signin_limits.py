"""Limits on password checks, with django-axes: every place a password is checked — the API's sign-in, the admin's and
the auditors' sign-in forms, the password change — passes ``django.contrib.auth.authenticate`` with the request, where
axes' backend (first in ``AUTHENTICATION_BACKENDS``) refuses a locked account or address and axes' signal handler
counts each failure.

What locks whom:
- an account (its email, whatever the letter case) after ``LOGIN_FAILURE_LIMIT`` failures from any addresses, so that
  one account cannot be guessed at from many addresses;
- a client address (``audit.middleware.client_ip``) after ``LOGIN_ADDRESS_FAILURE_LIMIT`` failures on any accounts,
  known or not, so that one address cannot try a password on every account. That limit is higher: the people of an
  office behind one address mistype too, and must not lock each other out after a handful;
- only failures of the last ``LOGIN_LOCKOUT_SECONDS`` count, and a lock ends that long after the failure that set it:
  attempts refused during a lock neither count nor prolong it, so the end shown in the admin holds;
- a success forgets the account's own failures, never the address's: otherwise signing in to one's own account between
  guesses would reset the address's count.

The counts live in the database (axes' ``AccessAttempt``), so lockouts hold while the cache is down. Locks and unlocks
are security events (``account_locked``, ``account_unlocked``; every failure is a ``login_failed`` already).
"""

from __future__ import annotations

import datetime
import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

LOCKED_CODE = "account_locked"
LOCKED_MESSAGE = (
    "Too many failed sign-ins: signing in is locked for this account or this address until {until} UTC. "
    "Try again then, or ask an administrator to unlock it."
)


def normalized_email(value: Any) -> str | None:
    """The form failures are counted under: without surrounding spaces, lower case (emails are unique whatever their
    case, so ``Ann@…`` and ``ann@…`` must share one count)."""
    text = str(value or "").strip().lower()
    return text or None


def username_of(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str | None:
    """The account a password check is about (``AXES_USERNAME_CALLABLE``). ``authenticate`` callers pass it as
    ``username`` (Django's forms) or ``email`` (our user model's field); without credentials, the posted form's."""
    if credentials:
        return normalized_email(credentials.get("username") or credentials.get("email"))
    data = getattr(request, "POST", None) or {}
    return normalized_email(data.get("username") or data.get("email"))


def cool_off() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)


def _recent(moment: datetime.datetime) -> QuerySet[AccessAttempt]:
    return AccessAttempt.objects.filter(attempt_time__gte=moment - cool_off())


def _failures(attempts: QuerySet[AccessAttempt]) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def _lock_end(attempts: QuerySet[AccessAttempt], *, limit: int, moment: datetime.datetime) -> datetime.datetime | None:
    """When the lock these attempts hold ends, or None when they hold none. Failures age out oldest first, so the lock
    lasts until the newest ``limit`` failures begin to age out."""
    total = 0
    recent = attempts.filter(attempt_time__gte=moment - cool_off()).order_by("-attempt_time")
    for attempt_time, failures in recent.values_list("attempt_time", "failures_since_start"):
        total += failures
        if total >= limit:
            return attempt_time + cool_off()
    return None


def account_lock_end(email: str, *, moment: datetime.datetime | None = None) -> datetime.datetime | None:
    """Until when the account with this email is locked (None: it is not)."""
    return _lock_end(
        AccessAttempt.objects.filter(username=normalized_email(email)),
        limit=settings.LOGIN_FAILURE_LIMIT,
        moment=moment or timezone.now(),
    )


def address_lock_end(ip_address: str | None, *, moment: datetime.datetime | None = None) -> datetime.datetime | None:
    """Until when this client address is locked (None: it is not)."""
    if not ip_address:
        return None
    return _lock_end(
        AccessAttempt.objects.filter(ip_address=ip_address),
        limit=settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        moment=moment or timezone.now(),
    )


def lock_end(*, email: str | None, ip_address: str | None) -> datetime.datetime | None:
    """Until when a password check for this account from this address is refused: the later of the two locks."""
    ends = [end for end in (account_lock_end(email) if email else None, address_lock_end(ip_address)) if end]
    return max(ends, default=None)


def attempts_forget(email: str) -> int:
    """Erasure: remove every record of the person's sign-ins and failures from axes' tables, which name them by email
    (their security events stay, blanked by the erasure). Returns how many records went."""
    username = normalized_email(email)
    if username is None:
        return 0
    return sum(
        model.objects.filter(username=username).delete()[0] for model in (AccessAttempt, AccessLog, AccessFailureLog)
    )


class SignInAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per account and a higher one per address (see the module)."""

    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        """Failures measured against axes' one limit (``AXES_FAILURE_LIMIT``, the account limit): the account's own,
        or that limit itself once the address has reached the address limit."""
        recent = _recent(request.axes_attempt_time)
        username = username_of(request, credentials)
        account = _failures(recent.filter(username=username)) if username else 0
        ip_address = request.axes_ip_address
        if ip_address and _failures(recent.filter(ip_address=ip_address)) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return max(account, settings.LOGIN_FAILURE_LIMIT)
        return account

    def reset_user_attempts(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        """After a success: the account's failures only, never the whole address's."""
        username = username_of(request, credentials)
        if username is None:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """The answer to a password check refused for a lockout (``AXES_LOCKOUT_CALLABLE``): on the API, 429 in the API's
    error shape with ``Retry-After``; elsewhere (the sign-in forms) a page that says so and until when."""
    from audit.middleware import client_ip

    moment = timezone.now()
    until = lock_end(email=username_of(request, credentials), ip_address=client_ip(request)) or moment + cool_off()
    message = LOCKED_MESSAGE.format(until=timezone.localtime(until, datetime.UTC).strftime("%Y-%m-%d %H:%M"))
    retry_after = str(max(1, math.ceil((until - moment).total_seconds())))
    if request.path.startswith("/api/"):
        body = {"error": {"code": LOCKED_CODE, "message": message, "fields": {}}}
        return JsonResponse(body, status=429, headers={"Retry-After": retry_after})
    context = {"title": "Sign-in locked", "message": message, "sign_in_url": request.get_full_path()}
    response = render(request, "accounts/signin_locked.html", context, status=429)
    response["Retry-After"] = retry_after
    return response


def _locked_out(sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    """A failure has just reached a limit: one ``account_locked`` event. Axes announces a lock again on every attempt
    refused during it; those attempts were not counted (``axes_failures_since_start`` is unset) and are no new lock."""
    from accounts.models import User
    from audit.events import record_event
    from audit.models import SecurityEventKind

    if request is None or getattr(request, "axes_failures_since_start", None) is None:
        return
    account_end = account_lock_end(username) if username else None
    address_end = address_lock_end(ip_address)
    known = User.objects.filter(email__iexact=username).only("pk").first() if username else None
    data: dict[str, Any] = {"failures": request.axes_failures_since_start}
    if account_end is not None:
        data.update(scope="account", until=account_end.isoformat(), limit=settings.LOGIN_FAILURE_LIMIT)
    if address_end is not None:
        data.update(address_until=address_end.isoformat(), address_limit=settings.LOGIN_ADDRESS_FAILURE_LIMIT)
        data.setdefault("scope", "address")
    record_event(SecurityEventKind.ACCOUNT_LOCKED, actor=None, target_user=known, data=data, email=username or "")


def connect() -> None:
    user_locked_out.connect(_locked_out, dispatch_uid="accounts-locked-out")
