"""What an organization's auditors see of the security events that concern it: its members' sign-ins, failed sign-ins,
lockouts, sign-outs and session revocations, and the requests refused on its paths (by members and by outsiders) —
while a 404 for something that does not exist is no denial, and a probing client cannot grow a chain without bound."""

from __future__ import annotations

from typing import Any

import pytest

from audit.context import audit_context
from audit.events import DENIAL_WINDOW_SECONDS, DENIALS_PER_WINDOW, record_denial, record_event, verify_chains
from audit.models import SecurityEvent, SecurityEventDetail, SecurityEventKind
from audit.selectors import EventFilters, security_events
from tests.accounts.factories import UserFactory
from tests.api_helpers import NOT_FOUND, invalid
from tests.audit.audit_story import story
from tests.organizations.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db
__all__ = ["story"]

EVENTS = "/api/v1/organizations/{slug}/audit/events/"
DEPARTMENTS = "/api/v1/organizations/{slug}/departments/"
MAX = {"display": "Max Member <max@example.com>"}


def account_events(person: Any) -> list[SecurityEvent]:
    """The five kinds of account events, recorded as the sign-in, lockout and session code records them."""
    return [
        record_event(SecurityEventKind.LOGIN_SUCCEEDED, actor=person, target_user=person, data={"backend": "password"}),
        record_event(SecurityEventKind.LOGIN_FAILED, actor=person, target_user=person, email=person.email),
        record_event(SecurityEventKind.ACCOUNT_LOCKED, actor=None, target_user=person, data={"failures": 5}),
        record_event(SecurityEventKind.LOGGED_OUT, actor=person, target_user=person),
        record_event(SecurityEventKind.SESSION_REVOKED, target_user=person, data={"reason": "idle", "ended": 1}),
    ]


def listed(client: Any, slug: str, **query: Any) -> list[tuple[str, Any, Any, Any]]:
    """The events an auditor's API call lists: (kind, actor, target user, data), newest first."""
    response = client.get(EVENTS.format(slug=slug), query)
    assert response.status_code == 200, response.json()
    return [(row["kind"], row["actor"], row["target_user"], row["data"]) for row in response.json()["results"]]


def test_an_auditor_lists_the_account_events_of_the_organizations_members(story, client_for):
    # given: Max, a member of Acme, signs in, fails, is locked out, signs out and has a session revoked
    with audit_context(ip="198.51.100.4"):
        recorded = account_events(story.member)
    # when
    through_api = listed(client_for(story.auditor), "acme")
    through_selector = list(security_events(organization=story.acme, filters=EventFilters()))
    # then: Acme's auditor sees all five, with Max named (he is a member)
    max_ = {"id": story.member.pk, **MAX}
    system = {"id": None, "display": "System"}
    assert through_api == [
        ("session_revoked", system, max_, {"reason": "idle", "ended": 1}),
        ("logged_out", max_, max_, {}),
        ("account_locked", system, max_, {"failures": 5}),
        ("login_failed", max_, max_, {}),
        ("login_succeeded", max_, max_, {"backend": "password"}),
    ]
    assert [(event.kind, event.chain, event.organization_id) for event in through_selector] == [
        (event.kind, story.acme.pk, story.acme.pk) for event in reversed(recorded)
    ]
    # and the platform operator's record is still the installation's, which alone holds the personal details
    assert [(event.chain, event.organization_id) for event in recorded] == [(0, None)] * 5
    assert set(SecurityEventDetail.objects.values_list("event_id", flat=True)) == {event.pk for event in recorded}
    assert list(verify_chains()) == []


def test_a_member_of_two_organizations_is_seen_by_both_and_each_chain_verifies(story, client_for):
    # given: Max also belongs to Globex
    MembershipFactory(organization=story.globex, user=story.member, role="member")
    # when
    signed_in = record_event(SecurityEventKind.LOGIN_SUCCEEDED, actor=story.member, target_user=story.member)
    # then: one record per chain, the same fact at the same moment
    copies = SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_SUCCEEDED).order_by("chain")
    assert [(event.chain, event.organization_id, event.occurred_at) for event in copies] == [
        (0, None, signed_in.occurred_at),
        (story.acme.pk, story.acme.pk, signed_in.occurred_at),
        (story.globex.pk, story.globex.pk, signed_in.occurred_at),
    ]
    for auditor, slug in ((story.auditor, "acme"), (story.globex_auditor, "globex")):
        max_ = {"id": story.member.pk, **MAX}
        assert listed(client_for(auditor), slug, kind="login_succeeded") == [("login_succeeded", max_, max_, {})]
    assert list(verify_chains()) == []
    assert list(verify_chains(story.acme.pk)) == list(verify_chains(story.globex.pk)) == []


@pytest.mark.parametrize("organizations", [1, 2, 5])
def test_the_copies_cost_the_same_statements_whatever_the_number_of_organizations(
    organizations, django_assert_num_queries
):
    # given: a person in that many organizations, every chain with its head already
    person = UserFactory()
    for _ in range(organizations):
        MembershipFactory(organization=OrganizationFactory(), user=person, role="member")
    record_event(SecurityEventKind.LOGGED_OUT, actor=person, target_user=person)
    # when / then: inside one savepoint, the installation's event (lock its head, insert, move the head), the person's
    # memberships, and the copies together (lock their heads, insert, move the heads)
    with django_assert_num_queries(2 + 3 + 1 + 3):
        record_event(SecurityEventKind.LOGIN_SUCCEEDED, actor=person, target_user=person)
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_SUCCEEDED).count() == 1 + organizations
    assert list(verify_chains()) == []


def test_account_events_of_non_members_and_of_other_organizations_members_stay_invisible(story, client_for, outsider):
    # given: someone of Globex, someone of no organization, someone who left Acme, and an unknown address
    nobody = UserFactory()
    former = MembershipFactory(organization=story.acme, role="member", is_active=False).user
    for person in (outsider, nobody, former):
        account_events(person)
    record_event(SecurityEventKind.LOGIN_FAILED, email="who@example.com")
    # when
    acme = listed(client_for(story.auditor), "acme")
    globex = listed(client_for(story.globex_auditor), "globex")
    # then: Acme sees none of them; Globex sees its own member's five only
    assert acme == []
    assert [(kind, target["id"]) for kind, _actor, target, _data in globex] == [
        (kind, outsider.pk)
        for kind in ("session_revoked", "logged_out", "account_locked", "login_failed", "login_succeeded")
    ]
    assert SecurityEvent.objects.filter(organization__isnull=False).count() == 5
    assert list(verify_chains()) == []


def test_a_non_member_probing_an_organizations_path_is_seen_by_its_auditors(story, client_for, outsider):
    # when: a member of Globex tries Acme's departments
    response = client_for(outsider).get(DEPARTMENTS.format(slug="acme"))
    # then: a 404 for them, a denial in Acme's chain for Acme's auditors (the outsider not named: not a member)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert listed(client_for(story.auditor), "acme", kind="permission_denied") == [
        (
            "permission_denied",
            {"id": outsider.pk, "display": f"User #{outsider.pk}"},
            None,
            {"method": "GET", "path": "/api/v1/organizations/acme/departments/", "status": 404, "permission": None},
        )
    ]
    assert not SecurityEvent.objects.filter(chain=0, kind=SecurityEventKind.PERMISSION_DENIED).exists()
    assert listed(client_for(story.globex_auditor), "globex", kind="permission_denied") == []


def test_a_member_refused_a_row_of_the_organization_is_a_denial(story, client_for):
    # given: a member of Acme without any role, who may see no department
    roleless = MembershipFactory(organization=story.acme).user
    # when
    response = client_for(roleless).get(f"{DEPARTMENTS.format(slug='acme')}{story.hq.pk}/")
    # then
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    denial = SecurityEvent.objects.get(kind=SecurityEventKind.PERMISSION_DENIED)
    assert (denial.chain, denial.actor_id, denial.data["path"], denial.data["status"]) == (
        story.acme.pk,
        roleless.pk,
        f"/api/v1/organizations/acme/departments/{story.hq.pk}/",
        404,
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/organizations/no-such-organization/departments/",  # an unknown organization
        "/api/v1/organizations/acme/no-such-resource/",  # an unknown route
        "/api/v1/organizations/acme/departments/999999999/",  # an unknown row
        "/api/v1/organizations/acme/departments/not-an-id/",  # not even an id
        "/api/v1/organizations/acme/departments/{fin}/",  # a deleted row
        "/api/v1/organizations/acme/departments/{secret}/",  # another organization's row, under Acme's path
    ],
)
def test_a_request_for_something_that_does_not_exist_is_no_denial(story, client_for, url):
    # when: members of Acme (a plain member, and a member without any role)
    roleless = MembershipFactory(organization=story.acme).user
    path = url.format(fin=story.fin.pk, secret=story.secret.pk)
    responses = [client_for(user).get(path) for user in (story.member, roleless)]
    # then
    assert [response.status_code for response in responses] == [404, 404]
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.PERMISSION_DENIED).exists()


def test_denials_are_bounded_per_caller_and_chain(story, outsider):
    # when: the outsider is refused far more often than the bound, in Acme and in the installation's chain
    for _ in range(DENIALS_PER_WINDOW + 5):
        record_denial(actor=outsider, organization=story.acme, method="GET", path="/acme/", status=404)
        record_denial(actor=outsider, organization=None, method="GET", path="/", status=403)
    # and another caller is refused once in Acme
    record_denial(actor=story.member, organization=story.acme, method="POST", path="/acme/", status=403)
    # then: each (caller, chain) pair recorded exactly the bound, the last saying that the rest is dropped
    denials = SecurityEvent.objects.filter(kind=SecurityEventKind.PERMISSION_DENIED)
    for chain in (story.acme.pk, 0):
        recorded = list(denials.filter(chain=chain, actor_id=outsider.pk).order_by("sequence"))
        assert len(recorded) == DENIALS_PER_WINDOW
        assert [event.data.get("further_denials_dropped_seconds") for event in recorded] == [None] * (
            DENIALS_PER_WINDOW - 1
        ) + [DENIAL_WINDOW_SECONDS]
    assert denials.filter(chain=story.acme.pk, actor_id=story.member.pk).count() == 1
    assert list(verify_chains()) == []


def test_an_unknown_kind_is_400_listing_the_valid_kinds(story, client_for):
    # when
    response = client_for(story.auditor).get(EVENTS.format(slug="acme"), {"kind": "x"})
    # then
    valid = ", ".join(sorted(SecurityEventKind.values))
    assert valid.startswith("account_locked, account_unlocked, assignment_changed, data_exported, ")
    assert (response.status_code, response.json()) == (
        400,
        invalid({"kind": [f'"x" is not a valid kind. Valid kinds: {valid}.']}),
    )
