"""Retention: an organization's history and security events older than its ``history_retention_days`` are deleted.

There is no default window: an organization without a retention period keeps everything. Versions go table by table
in batches (each its own short transaction). Security events go as a prefix of the organization's chain — the oldest
sequences — each batch in a transaction that opens a ``PurgeWindow`` (the only thing the database trigger lets delete
events) and moves the chain's anchor (``purged_through_*``) to the last deleted event, so the chain still verifies.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Actor, User
from audit.erasure import version_models
from audit.events import record_event
from audit.models import PurgeWindow, SecurityEvent, SecurityEventChain, SecurityEventKind
from organizations.models import Organization

DEFAULT_BATCH_SIZE = 5000
EVENTS = "audit.securityevent"


@dataclass
class PurgeReport:
    """How many rows went (or, in a dry run, would go) per table, for one organization."""

    organization: Organization
    cutoff: datetime.datetime
    is_dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def organizations_with_retention(slug: str | None = None) -> QuerySet[Organization]:
    """The organizations retention applies to (deleted ones too: their history ages like any other)."""
    organizations = Organization.all_objects.filter(history_retention_days__isnull=False).order_by("slug")
    return organizations.filter(slug=slug) if slug is not None else organizations


def history_purge(
    *,
    actor: Actor,
    organization: Organization,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
) -> PurgeReport:
    """Delete the organization's versions and security events older than its retention period.

    Only an organization with ``history_retention_days`` set is purged. Events are deleted from the start of the chain
    up to the first event inside the retention period, so that the rest still verifies; a purge that deleted anything
    is recorded as a ``history_purged`` event (with the counts, no content). A dry run counts and deletes nothing.
    """
    if organization.history_retention_days is None:
        raise ValueError(f"{organization.slug} keeps its history forever: there is nothing to purge.")
    if batch_size < 1:
        raise ValueError("The batch size must be at least 1.")
    cutoff = (now or timezone.now()) - datetime.timedelta(days=organization.history_retention_days)
    report = PurgeReport(organization=organization, cutoff=cutoff, is_dry_run=dry_run)
    for version_model in version_models():
        label = version_model._meta.label_lower
        old = version_model._default_manager.filter(history_organization_id=organization.pk, history_date__lt=cutoff)
        count = old.count() if dry_run else _delete_in_batches(old, batch_size)
        if count:
            report.counts[label] = count
    events = _old_events(organization, cutoff)
    count = events.count() if dry_run else _purge_events(organization, events, batch_size)
    if count:
        report.counts[EVENTS] = count
    if not dry_run and report.total:
        record_event(
            SecurityEventKind.HISTORY_PURGED,
            organization=organization,
            actor=actor if isinstance(actor, User) else None,
            data={
                "cutoff": cutoff.isoformat(),
                "retention_days": organization.history_retention_days,
                "counts": dict(sorted(report.counts.items())),
            },
        )
    return report


def _delete_in_batches(old: QuerySet, batch_size: int) -> int:
    deleted = 0
    model = old.model
    while True:
        with transaction.atomic():
            batch = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not batch:
                return deleted
            deleted += model._default_manager.filter(pk__in=batch).delete()[0]


def _old_events(organization: Organization, cutoff: datetime.datetime) -> QuerySet[SecurityEvent]:
    """The chain's prefix before the first event inside the retention period (times and sequences may interleave
    slightly under concurrency; the chain order is what counts)."""
    chain = SecurityEvent.objects.filter(chain=organization.pk)
    first_kept = chain.filter(occurred_at__gte=cutoff).order_by("sequence").values_list("sequence", flat=True).first()
    old = chain.filter(occurred_at__lt=cutoff)
    return old.filter(sequence__lt=first_kept) if first_kept is not None else old


def _purge_events(organization: Organization, old: QuerySet[SecurityEvent], batch_size: int) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            head = SecurityEventChain.objects.select_for_update().filter(chain=organization.pk).first()
            batch = list(old.order_by("sequence").values_list("pk", "sequence", "hash")[:batch_size])
            if head is None or not batch:
                return deleted
            window = PurgeWindow.objects.create()
            # Details go with their events (Django's cascade); the trigger allows the DELETE while the window exists.
            SecurityEvent.objects.filter(pk__in=[pk for pk, _sequence, _hash in batch]).delete()
            _pk, head.purged_through_sequence, head.purged_through_hash = batch[-1]
            head.save(update_fields=["purged_through_sequence", "purged_through_hash"])
            window.delete()
            deleted += len(batch)
