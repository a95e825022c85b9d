"""The security event log is append-only in the database itself, and its hash chains reveal any tampering."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from audit.events import (
    GENESIS,
    INSTALLATION_CHAIN,
    ChainBreak,
    event_hash,
    record_event,
    verify_chains,
)
from audit.models import PurgeWindow, SecurityEvent, SecurityEventChain, SecurityEventKind

pytestmark = pytest.mark.django_db


def run_verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit_chain", *args, stdout=out)
    return out.getvalue()


@contextmanager
def append_only_trigger_disabled() -> Iterator[None]:
    """Switch the database's guard off for the test's transaction (rolled back with it), as an intruder with DDL
    rights could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_securityevent DISABLE TRIGGER audit_securityevent_append_only")
        else:
            cursor.execute("DROP TRIGGER audit_securityevent_no_update")
            cursor.execute("DROP TRIGGER audit_securityevent_no_delete")
    yield


def record_many(organization, other_organization, count: int) -> None:
    for number in range(count):
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"number": number})
        record_event(SecurityEventKind.ROLE_ASSIGNED, organization=other_organization, data={"number": number})
        record_event(SecurityEventKind.LOGIN_FAILED, email=f"nobody{number}@example.com")


def test_the_database_refuses_to_update_an_event(organization):
    # given
    event = record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"role": "member"})

    # when / then
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_securityevent SET kind = %s WHERE id = %s", ["role_deleted", event.pk])
    assert SecurityEvent.objects.get(pk=event.pk).kind == "role_changed"


def test_the_database_refuses_to_delete_an_event(organization):
    # given
    event = record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)

    # when / then
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE id = %s", [event.pk])
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_the_database_refuses_an_update_even_inside_a_purge_window(organization):
    event = record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)

    with transaction.atomic():
        PurgeWindow.objects.create()
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_securityevent SET kind = %s WHERE id = %s", ["role_deleted", event.pk])
        transaction.set_rollback(True)
    assert SecurityEvent.objects.get(pk=event.pk).kind == "role_changed"
    assert not PurgeWindow.objects.exists()


def test_the_database_allows_a_delete_inside_a_purge_window(organization):
    event = record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)

    with transaction.atomic():
        window = PurgeWindow.objects.create()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_securityevent WHERE id = %s", [event.pk])
        window.delete()

    assert not SecurityEvent.objects.filter(pk=event.pk).exists()


def test_chains_hold_after_many_events_across_two_organizations(organization, other_organization):
    # given
    record_many(organization, other_organization, 40)

    # when
    breaks = list(verify_chains())
    output = run_verify()

    # then
    assert breaks == []
    assert output == "3 chains, 120 events verified.\n"
    for chain in (organization.pk, other_organization.pk, INSTALLATION_CHAIN):
        sequences = list(SecurityEvent.objects.filter(chain=chain).order_by("sequence").values_list("sequence"))
        assert sequences == [(number,) for number in range(1, 41)]
        head = SecurityEventChain.objects.get(chain=chain)
        last = SecurityEvent.objects.get(chain=chain, sequence=40)
        assert (head.last_sequence, head.last_hash) == (40, last.hash)


def test_each_event_follows_the_previous_one_of_its_own_organization(organization, other_organization):
    first = record_event(SecurityEventKind.ROLE_CHANGED, organization=organization)
    elsewhere = record_event(SecurityEventKind.ROLE_CHANGED, organization=other_organization)
    second = record_event(SecurityEventKind.ROLE_DELETED, organization=organization)

    assert (first.chain, first.sequence, first.previous_hash) == (organization.pk, 1, GENESIS)
    assert (elsewhere.chain, elsewhere.sequence, elsewhere.previous_hash) == (other_organization.pk, 1, GENESIS)
    assert (second.sequence, second.previous_hash) == (2, first.hash)
    assert second.hash == event_hash(second, first.hash)


def run_verify_failing(*args: str) -> tuple[str, str]:
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain", *args, stdout=out)
    return out.getvalue(), str(failure.value)


def test_an_edited_event_breaks_the_chain(organization, other_organization):
    # given
    record_many(organization, other_organization, 3)
    victim = SecurityEvent.objects.get(chain=organization.pk, sequence=2)

    # when: someone able to switch the trigger off rewrites an event
    with append_only_trigger_disabled(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_securityevent SET data = %s WHERE id = %s", ['{"number": 99}', victim.pk])

    # then
    assert list(verify_chains(organization.pk)) == [
        ChainBreak(organization.pk, 2, victim.pk, "its content does not match its hash")
    ]
    assert run_verify_failing() == (
        f"chain {organization.pk}, sequence 2: its content does not match its hash (event {victim.pk})\n",
        "The audit chain is broken: 1 problem found.",
    )
    assert run_verify("--organization", "globex") == "1 chains, 3 events verified.\n"


def test_a_rewritten_event_with_a_recomputed_hash_still_breaks_the_chain(organization):
    # given
    for number in range(3):
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"number": number})
    victim = SecurityEvent.objects.get(chain=organization.pk, sequence=2)
    victim.data = {"number": 99}
    forged_hash = event_hash(victim, victim.previous_hash)
    following = SecurityEvent.objects.get(chain=organization.pk, sequence=3)

    # when: the intruder also recomputes the edited row's hash
    with append_only_trigger_disabled(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_securityevent SET data = %s, hash = %s WHERE id = %s",
            ['{"number": 99}', forged_hash, victim.pk],
        )

    # then: the next event no longer follows it
    assert run_verify_failing("--organization", "acme") == (
        f"chain {organization.pk}, sequence 3: does not follow the previous event's hash (event {following.pk})\n",
        "The audit chain is broken: 1 problem found.",
    )


def test_a_removed_event_breaks_the_chain(organization):
    # given
    for number in range(3):
        record_event(SecurityEventKind.ROLE_CHANGED, organization=organization, data={"number": number})
    following = SecurityEvent.objects.get(chain=organization.pk, sequence=3)

    # when
    with append_only_trigger_disabled(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_securityevent WHERE chain = %s AND sequence = 2", [organization.pk])

    # then
    assert list(verify_chains(organization.pk)) == [
        ChainBreak(organization.pk, 2, None, "events 2 to 2 are missing"),
        ChainBreak(organization.pk, 3, following.pk, "does not follow the previous event's hash"),
    ]


def test_verify_audit_chain_rejects_an_unknown_organization():
    with pytest.raises(CommandError, match=r"No organization has the slug 'nowhere'\."):
        call_command("verify_audit_chain", "--organization", "nowhere")
