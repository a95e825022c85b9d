"""Who is acting, from where and why: the facts every history row and security event is stamped with.

The context is set once at the edge — by the middleware for a request, by ``AuditedCommand`` for a management
command, by ``audit_context()`` around background work — and read only by the audit trail. Authorization never reads
it: services receive the acting user explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User

REASON_MAX_LENGTH = 255


class Source:
    API = "api"
    ADMIN = "admin"
    WEB = "web"
    COMMAND = "command"
    SYSTEM = "system"

    CHOICES = [(API, "API"), (ADMIN, "Admin"), (WEB, "Web"), (COMMAND, "Command"), (SYSTEM, "System")]


@dataclass(frozen=True)
class AuditContext:
    """The circumstances of a change. ``request`` gives the signed-in user once authentication has run."""

    source: str = Source.SYSTEM
    actor: User | None = None
    request: HttpRequest | None = None
    ip: str | None = None
    request_id: str = ""
    reason: str = ""

    @property
    def user(self) -> User | None:
        """The acting user: the explicit actor, else the request's authenticated user, else nobody."""
        if self.actor is not None:
            return self.actor
        if self.request is not None:
            user = getattr(self.request, "user", None)
            if user is not None and user.is_authenticated:
                return user
        return None


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def current() -> AuditContext:
    """The context in force; outside any request or command: the system, recorded under the subject ``system``."""
    found = _current.get()
    if found is not None:
        return found
    return AuditContext(source=Source.SYSTEM)


SYSTEM_SUBJECT = "system"


def acting_user() -> User | None:
    """Whom a change is attributed to: the context's user; ``None`` means the system itself (a migration, background
    work, a command run without ``--actor``), recorded under the subject ``system`` — never an unnamed actor."""
    return current().user


@contextmanager
def audit_context(**changes: Any) -> Iterator[AuditContext]:
    """Run a block under a context; fields not given are inherited from the enclosing one."""
    base = _current.get() or AuditContext(request_id=new_request_id())
    if changes.get("reason"):
        changes["reason"] = str(changes["reason"])[:REASON_MAX_LENGTH]
    context = replace(base, **changes)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex
