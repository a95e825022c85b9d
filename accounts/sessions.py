"""Browser sessions: an index of who holds which session, their timeouts, a cap per person, and revocation.

The session store (the database with a copy in Redis, ``accounts.session_store``; the database alone on the embedded
default) cannot be listed by user, so every signed-in session has a ``UserSession`` row: created at sign-in (Django's
``user_logged_in``, which every sign-in passes — admin, API, identity provider), its ``last_seen_at`` advanced on
activity, removed when the session ends.

Rules:
- idle timeout (``SESSION_IDLE_TIMEOUT``): a session unused for that long is signed out; each use slides it;
- absolute timeout (``SESSION_ABSOLUTE_TIMEOUT``): a session is signed out that long after sign-in, however active;
- at most ``SESSION_MAX_PER_USER`` sessions per person: signing in once more ends the oldest;
- ending a session deletes it from the store and its row, and records a ``session_revoked`` security event.

Activity is written at most once per ``SESSION_ACTIVITY_RESOLUTION`` seconds (a session save and one UPDATE), so the
timeouts are exact to that resolution. A session whose row has gone (revoked meanwhile, or created before the index
existed) is signed out at its next recorded activity.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from importlib import import_module
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User, UserSession
from audit.events import record_event
from audit.models import SecurityEventKind

# Keys kept in the session itself: when it started, when it was last seen (epoch seconds) and its index row.
STARTED_AT = "_session_started_at"
SEEN_AT = "_session_seen_at"
INDEX_ID = "_session_index_id"


class Reason:
    """Why sessions ended, as recorded in the ``session_revoked`` event."""

    REVOKED = "revoked"
    OTHERS_REVOKED = "others_revoked"
    SESSION_LIMIT = "session_limit"
    IDLE_TIMEOUT = "idle_timeout"
    ABSOLUTE_TIMEOUT = "absolute_timeout"
    PASSWORD_CHANGED = "password_changed"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"
    ERASED = "erased"


def now() -> datetime.datetime:
    return timezone.now()


def session_store() -> SessionBase:
    store_class: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
    return store_class()


def _idle_limit() -> datetime.timedelta:
    # A session counts as seen when its activity was last written, up to one resolution earlier than its last use.
    return datetime.timedelta(seconds=settings.SESSION_IDLE_TIMEOUT + settings.SESSION_ACTIVITY_RESOLUTION)


def is_alive(row: UserSession, *, moment: datetime.datetime, store: SessionBase) -> bool:
    """Within both timeouts and still in the store (the store may have dropped it: expiry, a restart)."""
    if row.created_at <= moment - datetime.timedelta(seconds=settings.SESSION_ABSOLUTE_TIMEOUT):
        return False
    if row.last_seen_at <= moment - _idle_limit():
        return False
    return store.exists(row.session_key)


def live_sessions(user: User) -> list[UserSession]:
    """The person's sessions that are still alive, newest first; rows of sessions that ended unseen are dropped."""
    moment, store = now(), session_store()
    rows = list(UserSession.objects.filter(user=user).order_by("-created_at", "-pk"))
    alive = [row for row in rows if is_alive(row, moment=moment, store=store)]
    dead = [row.pk for row in rows if row not in alive]
    if dead:
        UserSession.objects.filter(pk__in=dead).delete()
    return alive


def _expiry_seconds(*, started: int, moment: int) -> int:
    """How long the store keeps the session from now: the idle timeout, but never beyond the absolute one."""
    remaining = settings.SESSION_ABSOLUTE_TIMEOUT - (moment - started)
    return max(1, min(settings.SESSION_IDLE_TIMEOUT + settings.SESSION_ACTIVITY_RESOLUTION, remaining))


def client_details(request: HttpRequest) -> dict[str, Any]:
    from audit.middleware import client_ip

    return {"ip": client_ip(request), "user_agent": request.META.get("HTTP_USER_AGENT", "")[:255]}


def session_started(*, request: HttpRequest, user: User) -> UserSession:
    """Index a session that has just been signed in, and end the person's oldest ones beyond the cap."""
    session = request.session
    moment = now()
    epoch = int(moment.timestamp())
    session[STARTED_AT] = session[SEEN_AT] = epoch
    session.set_expiry(_expiry_seconds(started=epoch, moment=epoch))
    if session.session_key is None:
        session.save()  # login() flushed another person's session: the new one needs its key now
    row, _created = UserSession.objects.update_or_create(
        session_key=cast(str, session.session_key),  # save() gives a database or cache session its key
        defaults={"user": user, "created_at": moment, "last_seen_at": moment, **client_details(request)},
    )
    session[INDEX_ID] = row.pk
    _enforce_limit(user=user, keep=row)
    return row


def _enforce_limit(*, user: User, keep: UserSession) -> None:
    others = [row for row in live_sessions(user) if row.pk != keep.pk]
    excess = others[settings.SESSION_MAX_PER_USER - 1 :]
    if excess:
        sessions_end(rows=excess, user=user, reason=Reason.SESSION_LIMIT)


def session_ended(*, request: HttpRequest) -> None:
    """Sign-out: the session is about to be flushed; its row goes with it."""
    session_key = request.session.session_key
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


def sessions_end(*, rows: Iterable[UserSession], user: User | int, reason: str, actor: Any = None) -> int:
    """End these sessions: delete them from the store and from the index; one event says how many and why."""
    rows = list(rows)
    if not rows:
        return 0
    store = session_store()
    for row in rows:
        store.delete(row.session_key)
    UserSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    record_event(
        SecurityEventKind.SESSION_REVOKED,
        actor=actor,
        target_user=user,
        data={"reason": reason, "ended": len(rows)},
    )
    return len(rows)


def user_sessions_end(*, user: User, reason: str, keep: UserSession | None = None, actor: Any = None) -> int:
    """End every session of ``user`` except ``keep`` (the caller's own, when it is theirs)."""
    rows = UserSession.objects.filter(user=user)
    if keep is not None:
        rows = rows.exclude(pk=keep.pk)
    return sessions_end(rows=rows, user=user, reason=reason, actor=actor)


def user_sessions_end_on_commit(*, user: User, reason: str, keep_current: bool = False) -> None:
    """The same once the change that ends them commits (a rolled-back change ends nothing; the store is no database,
    deleting from it cannot roll back). With ``keep_current`` the session of the request being served stays, if it is
    the person's. The actor and the kept session are taken now: the request may be over by the time of the commit."""
    from audit.context import acting_user

    keep = current_session_of(user) if keep_current else None
    actor = acting_user()
    transaction.on_commit(lambda: user_sessions_end(user=user, reason=reason, keep=keep, actor=actor))


def session_keys_delete(session_keys: Iterable[str]) -> None:
    """Delete sessions from the store whose rows have gone already (with their deleted account)."""
    store = session_store()
    for session_key in session_keys:
        store.delete(session_key)


def session_revoke(*, actor: User, session: UserSession) -> None:
    """A person ends one of their own sessions (fetched through their own sessions only)."""
    sessions_end(rows=[session], user=actor, reason=Reason.REVOKED, actor=actor)


def sessions_revoke_others(*, actor: User, current_session_key: str | None) -> int:
    """A person ends all their sessions but the one they call from (all of them when they call with a token)."""
    keep = UserSession.objects.filter(user=actor, session_key=current_session_key).first()
    return user_sessions_end(user=actor, reason=Reason.OTHERS_REVOKED, keep=keep, actor=actor)


def current_session_of(user: User) -> UserSession | None:
    """The row of the session of the request being served (the audit context knows the request), if it is ``user``'s."""
    from audit.context import current

    session = getattr(current().request, "session", None)
    session_key = session.session_key if session is not None else None
    if not session_key:
        return None
    return UserSession.objects.filter(user=user, session_key=session_key).first()


# --- Enforcement on every request ------------------------------------------------------------------------------------


def check_request(request: HttpRequest) -> None:
    """Sign out a signed-in session that has timed out or lost its index row; otherwise record activity (at most once
    per resolution) and slide the store's expiry."""
    session = request.session
    if SESSION_KEY not in session:
        return
    if INDEX_ID not in session:
        _sign_out(request, reason=None)  # signed in before sessions were indexed: it cannot be listed nor revoked
        return
    moment = now()
    epoch = int(moment.timestamp())
    started = int(session.get(STARTED_AT, 0))
    seen = int(session.get(SEEN_AT, 0))
    if epoch - started >= settings.SESSION_ABSOLUTE_TIMEOUT:
        _sign_out(request, reason=Reason.ABSOLUTE_TIMEOUT)
    elif epoch - seen >= settings.SESSION_IDLE_TIMEOUT:
        _sign_out(request, reason=Reason.IDLE_TIMEOUT)
    elif epoch - seen >= settings.SESSION_ACTIVITY_RESOLUTION:
        indexed = UserSession.objects.filter(pk=session[INDEX_ID], session_key=session.session_key)
        if not indexed.update(last_seen_at=moment):
            _sign_out(request, reason=None)  # revoked meanwhile (already recorded), or never indexed
            return
        session[SEEN_AT] = epoch
        session.set_expiry(_expiry_seconds(started=started, moment=epoch))


def _sign_out(request: HttpRequest, *, reason: str | None) -> None:
    session = request.session
    user_id = session[SESSION_KEY]
    if session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()
    session.flush()
    request.user = AnonymousUser()
    if reason is not None:
        record_event(SecurityEventKind.SESSION_REVOKED, target_user=int(user_id), data={"reason": reason, "ended": 1})


def follow_key_change(request: HttpRequest, *, previous_key: str) -> None:
    """The session got a new key during the request (sign-in, or a password change keeping it signed in): its row
    follows it, and a row left under the old key (another person's, signed in over) goes."""
    session_key = request.session.session_key
    if session_key is None or session_key == previous_key:
        return
    index_id = request.session.get(INDEX_ID)
    left_behind = UserSession.objects.filter(session_key=previous_key)
    if index_id is not None:
        left_behind = left_behind.exclude(pk=index_id)
        UserSession.objects.filter(pk=index_id).exclude(session_key=session_key).update(session_key=session_key)
    left_behind.delete()


class SessionTimeoutMiddleware:
    """Enforces the session rules above on every request; place it after ``AuthenticationMiddleware``. A timed-out
    request goes on as anonymous: the API answers 401, pages redirect to sign-in."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        previous_key = request.session.session_key
        if previous_key is not None:
            check_request(request)
        response = self.get_response(request)
        if previous_key is not None:
            follow_key_change(request, previous_key=previous_key)
        return response


# --- Signals ---------------------------------------------------------------------------------------------------------


def _logged_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        session_started(request=request, user=user)


def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        session_ended(request=request)


def connect() -> None:
    from django.contrib.auth.signals import user_logged_in, user_logged_out

    user_logged_in.connect(_logged_in, dispatch_uid="accounts-session-started")
    user_logged_out.connect(_logged_out, dispatch_uid="accounts-session-ended")


# --- Presentation ----------------------------------------------------------------------------------------------------

_BROWSERS = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-requests/", "Python requests"),
]
_SYSTEMS = [
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
]


def describe_device(user_agent: str) -> str:
    """A short, human summary of a browser's user agent: "Firefox on Linux"."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
