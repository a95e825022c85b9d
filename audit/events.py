"""Writing and verifying the security event log.

``record_event`` appends one event to its organization's chain (0 = installation-wide) inside the caller's transaction:
an event about a change commits or rolls back with the change; an event about a person's account goes to the
installation's chain and to the chain of each organization the person belongs to. Facts that must survive a refused,
rolled-back call (denials, ``record_denial``) are recorded after the call's transaction by the code that ends it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from audit.context import SYSTEM_SUBJECT, current
from audit.models import SecurityEvent, SecurityEventChain, SecurityEventDetail, SecurityEventKind
from organizations.models import Membership

GENESIS = "0" * 64
INSTALLATION_CHAIN = 0
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|authorization|cookie|session|otp", re.IGNORECASE)
REDACTED = "[redacted]"
# Events about a person's account that the person's organizations see too (see ``record_event``).
MEMBER_EVENT_KINDS = frozenset(
    {
        SecurityEventKind.LOGIN_SUCCEEDED,
        SecurityEventKind.LOGIN_FAILED,
        SecurityEventKind.ACCOUNT_LOCKED,
        SecurityEventKind.LOGGED_OUT,
        SecurityEventKind.SESSION_REVOKED,
    }
)


def scrub(value: Any) -> Any:
    """A storable copy of ``value``: anything under a secret-looking key replaced by ``[redacted]``, no NUL."""
    if isinstance(value, Mapping):
        return {str(key): REDACTED if _SECRET_KEY.search(str(key)) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")[:1000]  # PostgreSQL's text refuses NUL; events stay small
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def _canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(event: SecurityEvent, previous_hash: str) -> str:
    """SHA-256 over the event's chained fields and the previous hash (canonical JSON, keys sorted)."""
    payload = {
        "chain": event.chain,
        "sequence": event.sequence,
        "occurred_at": _canonical_time(event.occurred_at),
        "kind": event.kind,
        "organization": event.organization_id,
        "actor": event.actor_id,
        "actor_subject": event.actor_subject,
        "target_user": event.target_user_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "source": event.source,
        "request_id": event.request_id,
        "data": event.data,
        "previous": previous_hash,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def record_event(
    kind: str,
    *,
    organization: Any = None,
    actor: Any = None,
    target_user: Any = None,
    obj: models.Model | None = None,
    data: Mapping[str, Any] | None = None,
    email: str = "",
) -> SecurityEvent:
    """Append an event. ``actor`` defaults to the context's user; ``email`` (personal) goes to the erasable detail.

    An event about a person's account (``MEMBER_EVENT_KINDS``: sign-ins, failed sign-ins of a known account, lockouts,
    sign-outs, session revocations) is recorded once in the installation's chain — the one returned — and once more in
    the chain of every organization the person is an active member of at that moment, so that each organization's
    auditors see what concerns their members and each organization's chain still verifies on its own.
    """
    context = current()
    if actor is None:
        actor = context.user
    organization_id = getattr(organization, "pk", organization)
    target_user_id = getattr(target_user, "pk", target_user)
    actor_id = getattr(actor, "pk", None)
    occurred_at = timezone.now()
    user_agent = context.request.META.get("HTTP_USER_AGENT", "")[:255] if context.request is not None else ""

    def built(chain_organization_id: int | None) -> SecurityEvent:
        return SecurityEvent(
            chain=chain_organization_id or INSTALLATION_CHAIN,
            occurred_at=occurred_at,
            kind=kind,
            organization_id=chain_organization_id,
            actor_id=actor_id,
            actor_subject=getattr(actor, "oidc_subject", None)
            or ("" if actor is not None or context.request else SYSTEM_SUBJECT),
            target_user_id=target_user_id,
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            source=context.source,
            request_id=context.request_id,
            data=scrub(dict(data or {})),
        )

    event = built(organization_id)
    with transaction.atomic():
        _append([event])
        if email or context.ip or user_agent:
            SecurityEventDetail.objects.create(event=event, email=email[:254], ip=context.ip, user_agent=user_agent)
        person_id = target_user_id if target_user_id is not None else actor_id
        if organization_id is None and kind in MEMBER_EVENT_KINDS and person_id is not None:
            # The organizations' copies carry no detail: personal data stays in one place, the installation's event.
            copies = [built(member_organization_id) for member_organization_id in member_organization_ids(person_id)]
            if copies:
                _append(copies)
    return event


def _append(events: list[SecurityEvent]) -> None:
    """Chain and insert events, one per chain (chains in ascending order): whatever their number, the heads are locked
    in one statement, the events inserted in one and the heads moved in one."""
    chains = [event.chain for event in events]
    locked = SecurityEventChain.objects.select_for_update().filter(chain__in=chains).order_by("chain")
    heads = {head.chain: head for head in locked}
    for chain in chains:
        if chain not in heads:  # the chain's first event
            heads[chain] = _locked_head(chain)
    for event in events:
        head = heads[event.chain]
        event.sequence = head.last_sequence + 1
        event.previous_hash = head.last_hash or GENESIS
        event.hash = event_hash(event, event.previous_hash)
        head.last_sequence, head.last_hash = event.sequence, event.hash
    SecurityEvent.objects.bulk_create(events)
    if len(heads) == 1:
        next(iter(heads.values())).save(update_fields=["last_sequence", "last_hash"])  # the common case, kept plain
    else:
        SecurityEventChain.objects.bulk_update(list(heads.values()), ["last_sequence", "last_hash"])


def member_organization_ids(user_id: int) -> list[int]:
    """The live organizations the user is an active member of, in id order: the chains are locked in that order (after
    the installation's), so that two events about the same people never wait on each other's locks in a cycle."""
    memberships = Membership.objects.filter(user_id=user_id, is_active=True, organization__deleted_at__isnull=True)
    return list(memberships.order_by("organization_id").values_list("organization_id", flat=True).distinct())


DENIAL_WINDOW_SECONDS = 60
DENIALS_PER_WINDOW = 20


def record_denial(
    *, actor: Any, organization: Any, method: str, path: str, status: int, permission: str | None = None
) -> SecurityEvent | None:
    """A refused request, in the chain of the organization whose path it named (the installation's when it named
    none). ``None`` when it was not recorded.

    A client that keeps probing must not grow a chain without bound (every event is a locked, hashed row): per caller
    and chain, at most ``DENIALS_PER_WINDOW`` denials are recorded in a ``DENIAL_WINDOW_SECONDS`` window that starts at
    the first one; the last one recorded says that further ones are dropped until the window ends.
    """
    chain = getattr(organization, "pk", organization) or INSTALLATION_CHAIN
    key = f"audit:denials:{chain}:{getattr(actor, 'pk', actor)}"
    try:
        count = cache.incr(key)
    except ValueError:  # no window open (or it just ended): this denial opens one
        count = 1 if cache.add(key, 1, DENIAL_WINDOW_SECONDS) else cache.incr(key)
    if count is None:
        # The cache cannot be reached (it fails open): record the denial, unbounded only while the cache is down.
        count = 1
    if count > DENIALS_PER_WINDOW:
        return None
    data: dict[str, Any] = {"method": method, "path": path, "status": status, "permission": permission}
    if count == DENIALS_PER_WINDOW:
        data["further_denials_dropped_seconds"] = DENIAL_WINDOW_SECONDS
    return record_event(SecurityEventKind.PERMISSION_DENIED, organization=organization, actor=actor, data=data)


SUPERUSER_VISIT_SECONDS = 60 * 60


def record_superuser_access(user: Any, organization: Any) -> None:
    """A superuser who is not a member entered an organization: one event per hour and organization is enough."""
    if cache.add(f"audit:superuser-visit:{user.pk}:{organization.pk}", 1, SUPERUSER_VISIT_SECONDS):
        record_event(SecurityEventKind.SUPERUSER_ACCESS, organization=organization, actor=user)


def _locked_head(chain: int) -> SecurityEventChain:
    head = SecurityEventChain.objects.select_for_update().filter(chain=chain).first()
    if head is not None:
        return head
    # A concurrent first event may have created the head meanwhile: it is then read (and locked) below.
    with contextlib.suppress(IntegrityError), transaction.atomic():
        SecurityEventChain.objects.create(chain=chain)
    return SecurityEventChain.objects.select_for_update().get(chain=chain)


@dataclass(frozen=True)
class ChainBreak:
    chain: int
    sequence: int
    event_id: int | None
    problem: str


def verify_chains(chain: int | None = None, *, batch_size: int = 2000) -> Iterator[ChainBreak]:
    """Every place where a chain does not hold: an edited row, a missing or reordered one, a head out of step."""
    heads = SecurityEventChain.objects.order_by("chain")
    if chain is not None:
        heads = heads.filter(chain=chain)
    for head in heads:
        previous_hash = head.purged_through_hash or GENESIS
        expected = head.purged_through_sequence + 1
        events = SecurityEvent.objects.filter(chain=head.chain).order_by("sequence")
        for event in events.iterator(chunk_size=batch_size):
            if event.sequence != expected:
                yield ChainBreak(head.chain, expected, None, f"events {expected} to {event.sequence - 1} are missing")
            if event.previous_hash != previous_hash:
                yield ChainBreak(head.chain, event.sequence, event.pk, "does not follow the previous event's hash")
            if event_hash(event, event.previous_hash) != event.hash:
                yield ChainBreak(head.chain, event.sequence, event.pk, "its content does not match its hash")
            previous_hash, expected = event.hash, event.sequence + 1
        if head.last_sequence != expected - 1 or (head.last_hash or GENESIS) != previous_hash:
            yield ChainBreak(head.chain, head.last_sequence, None, "the chain's head does not match its last event")
