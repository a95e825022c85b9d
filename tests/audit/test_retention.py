"""Retention: each organization's own window, never a default; old versions and a prefix of the event chain go."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.events import record_event, verify_chains
from audit.models import PurgeWindow, SecurityEvent, SecurityEventChain, SecurityEventKind
from audit.retention import history_purge
from organizations.models import Department, Organization
from tests.organizations.factories import DepartmentFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def clock(monkeypatch):
    """``with clock(moment):`` makes everything recorded inside happen at that moment (versions and events alike)."""

    @contextmanager
    def at(moment: datetime.datetime) -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda: moment)
            yield

    return at


def with_retention(organization: Organization, days: int | None) -> Organization:
    organization.history_retention_days = days
    organization.save()
    return organization


def versions_of(organization: Organization) -> list[tuple[str, int]]:
    """Every version recorded for the organization, as (model, history id)."""
    rows = [
        ("department", pk)
        for pk in Department.history.filter(history_organization_id=organization.pk).values_list(
            "history_id", flat=True
        )
    ]
    rows += [
        ("organization", pk)
        for pk in Organization.history.filter(history_organization_id=organization.pk).values_list(
            "history_id", flat=True
        )
    ]
    return sorted(rows)


def sequences_of(organization: Organization) -> list[int]:
    return list(
        SecurityEvent.objects.filter(chain=organization.pk).order_by("sequence").values_list("sequence", flat=True)
    )


@pytest.fixture
def history(organization, other_organization, clock):
    """Acme keeps 30 days, Globex forever; both have versions and events from 60 days ago and from today."""
    now = timezone.now()
    with_retention(organization, 30)
    recent = {organization: versions_of(organization), other_organization: versions_of(other_organization)}
    with clock(now - 60 * DAY):
        old_departments = {
            organization: DepartmentFactory(organization=organization, code="OLD"),
            other_organization: DepartmentFactory(organization=other_organization, code="OLD"),
        }
        for department in old_departments.values():
            department.name = "Renamed long ago"
            department.save()
            for number in range(3):
                record_event(SecurityEventKind.ROLE_CHANGED, organization=department.organization, data={"n": number})
    old_versions = {
        organization: [version for version in versions_of(organization) if version not in recent[organization]],
        other_organization: [
            version for version in versions_of(other_organization) if version not in recent[other_organization]
        ],
    }
    for department in old_departments.values():
        department.name = "Renamed today"
        department.save()
        for number in range(2):
            record_event(SecurityEventKind.ROLE_ASSIGNED, organization=department.organization, data={"n": number})
    return {"old_versions": old_versions, "now": now}


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_history", *args, stdout=out)
    return out.getvalue()


def test_purge_deletes_the_old_history_of_organizations_with_a_retention_period_only(
    organization, other_organization, history
):
    # given
    acme_before = versions_of(organization)
    globex_before = versions_of(other_organization)
    globex_events = list(SecurityEvent.objects.filter(chain=other_organization.pk).values())
    old_department_versions = [pk for model, pk in history["old_versions"][organization] if model == "department"]
    old_events = list(
        SecurityEvent.objects.filter(chain=organization.pk, sequence__lte=3)
        .order_by("sequence")
        .values_list("sequence", "hash")
    )

    # when
    output = purge()

    # then: exactly Acme's old versions and events went
    assert versions_of(organization) == [
        version for version in acme_before if version not in history["old_versions"][organization]
    ]
    assert Department.history.filter(history_id__in=old_department_versions).count() == 0
    assert versions_of(other_organization) == globex_before
    assert list(SecurityEvent.objects.filter(chain=other_organization.pk).values()) == globex_events
    assert sequences_of(organization) == [4, 5, 6]  # 6: the purge itself
    head = SecurityEventChain.objects.get(chain=organization.pk)
    assert (head.purged_through_sequence, head.purged_through_hash) == old_events[-1]
    assert list(verify_chains()) == []
    assert not PurgeWindow.objects.exists()
    purged = SecurityEvent.objects.get(kind=SecurityEventKind.HISTORY_PURGED)
    assert (purged.organization_id, purged.source, purged.actor_id, purged.actor_subject) == (
        organization.pk,
        "command",
        None,
        "system",
    )
    assert purged.data["counts"] == {"audit.securityevent": 3, "organizations.historicaldepartment": 2}
    assert purged.data["retention_days"] == 30
    lines = output.splitlines()
    assert re.fullmatch(r"acme: older than \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(30 days\), deleted 5 rows", lines[0])
    assert lines[1:] == ["  audit.securityevent: 3", "  organizations.historicaldepartment: 2"]


def test_a_dry_run_reports_and_deletes_nothing(organization, other_organization, history):
    # given
    versions_before = versions_of(organization)
    events_before = SecurityEvent.objects.count()

    # when
    output = purge("--dry-run")

    # then
    assert versions_of(organization) == versions_before
    assert SecurityEvent.objects.count() == events_before
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.HISTORY_PURGED).exists()
    assert SecurityEventChain.objects.get(chain=organization.pk).purged_through_sequence == 0
    lines = output.splitlines()
    assert re.fullmatch(r"acme: older than .* \(30 days\), would delete 5 rows", lines[0])
    assert lines[1:] == [
        "  audit.securityevent: 3",
        "  organizations.historicaldepartment: 2",
        "Dry run: nothing was deleted.",
    ]


def test_organizations_without_retention_are_never_purged(organization, other_organization, clock):
    # given: nobody set a retention period; everything is a year old
    with clock(timezone.now() - 365 * DAY):
        DepartmentFactory(organization=organization)
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)
    versions = versions_of(organization)

    # when
    output = purge()

    # then
    assert output == "No organization has a retention period: nothing to purge.\n"
    assert versions_of(organization) == versions
    assert sequences_of(organization) == [1]


def test_purge_of_one_organization_leaves_the_others(organization, clock):
    # given: two organizations with retention and old history
    initech = with_retention(OrganizationFactory(slug="initech", code="INITECH"), 10)
    with_retention(organization, 10)
    with clock(timezone.now() - 20 * DAY):
        DepartmentFactory(organization=organization)
        DepartmentFactory(organization=initech)
    initech_versions = versions_of(initech)

    # when
    output = purge("--organization", "acme")

    # then
    assert output.splitlines()[1:] == ["  organizations.historicaldepartment: 1"]
    assert versions_of(initech) == initech_versions
    assert Department.history.filter(history_organization_id=organization.pk).count() == 0


def test_purge_refuses_an_organization_that_keeps_everything(organization):
    with pytest.raises(CommandError, match=r"acme has no retention period \(history_retention_days\)"):
        purge("--organization", "acme")
    with pytest.raises(CommandError, match=r"No organization has the slug 'nowhere'\."):
        purge("--organization", "nowhere")
    with pytest.raises(CommandError, match=r"--batch-size must be at least 1\."):
        purge("--batch-size", "0")


def test_events_are_deleted_in_batches_and_the_chain_verifies_after_each(organization, clock):
    # given
    with_retention(organization, 30)
    with clock(timezone.now() - 40 * DAY):
        for number in range(3):
            record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"n": number})
    record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"n": 3})

    # when
    with CaptureQueriesContext(connection) as queries:
        report = history_purge(actor=None, organization=organization, batch_size=1)

    # then
    deletes = [query["sql"] for query in queries if query["sql"].startswith('DELETE FROM "audit_securityevent"')]
    assert len(deletes) == 3
    assert report.counts == {"audit.securityevent": 3}
    assert sequences_of(organization) == [4, 5]
    assert list(verify_chains(organization.pk)) == []


def test_only_a_prefix_of_the_chain_is_deleted(organization, clock):
    # given: an old-dated event recorded after a recent one (clocks and commits interleave)
    with_retention(organization, 30)
    with clock(timezone.now() - 40 * DAY):
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)
    record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)
    with clock(timezone.now() - 40 * DAY):
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)

    # when
    report = history_purge(actor=None, organization=organization)

    # then: the third stays, or the chain would have a hole
    assert report.counts == {"audit.securityevent": 1}
    assert sequences_of(organization) == [2, 3, 4]
    assert list(verify_chains(organization.pk)) == []


def test_the_service_refuses_an_organization_without_retention(organization):
    with pytest.raises(ValueError, match="keeps its history forever"):
        history_purge(actor=None, organization=organization)
