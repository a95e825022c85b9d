"""/api/v1/organizations/{slug}/members/: who belongs to the organization, in which department, since when."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from organizations.models import Department, Membership
from tests.accounts.factories import UserFactory
from tests.api_helpers import (
    NOT_AUTHENTICATED,
    NOT_FOUND,
    detail_url,
    error,
    invalid,
    lacks_permission,
    membership_body,
    page,
)
from tests.organizations.factories import DepartmentFactory, MembershipFactory

URL = "/api/v1/organizations/acme/members/"


def membership_rows() -> list[dict[str, Any]]:
    """Every membership of every organization: what a denied call must leave untouched."""
    return list(Membership.objects.order_by("pk").values())


MEMBERSHIP_ENDED = (
    "This membership has ended and cannot be restored: coming back is a new membership (invite the person again), "
    "and any access must be given again."
)
NUMBER_TAKEN = "Another member of this organization already has this employee number."
MEMBER_FILTERS = (
    "cursor, department, employee_number, format, is_active, joined_after, joined_before, ordering, page_size, "
    "search, user"
)


@pytest.fixture
def sales(organization, department) -> Department:
    return DepartmentFactory(organization=organization, parent=department, code="SALES", name="Sales")


@pytest.fixture
def people(organization, department, sales) -> dict[str, Any]:
    """alice (HQ, since 2020), bob (SALES, since 2022), carol (left at the start of 2023), in that order."""
    rows = [
        # name, full name, department, job title, employee number, joined on, left on
        ("alice", "Alice Adams", department, "Engineer", "E-001", datetime.date(2020, 1, 1), None),
        ("bob", "Bob Brown", sales, "Sales Rep", "E-002", datetime.date(2022, 6, 15), None),
        ("carol", "Carol Clark", None, "Accountant", None, datetime.date(2019, 3, 1), datetime.date(2023, 1, 31)),
    ]
    return {
        name: MembershipFactory(
            organization=organization,
            user=UserFactory(email=f"{name}@example.com", full_name=full_name),
            department=unit,
            job_title=job_title,
            employee_number=number,
            is_active=left_on is None,
            joined_on=joined_on,
            left_on=left_on,
        )
        for name, full_name, unit, job_title, number, joined_on, left_on in rows
    }


@pytest.fixture
def dave(db) -> User:
    """An account that belongs to no organization yet."""
    return UserFactory(email="dave@example.com", full_name="Dave Davis")


def own_membership(user: User) -> Membership:
    return Membership.objects.get(user=user, organization__slug="acme")


# --- reads ------------------------------------------------------------------------------------------------------------


def test_member_lists_every_membership_newest_first(client_for, member, people):
    response = client_for(member).get(URL)

    assert response.status_code == 200
    # then: the member's own membership is the oldest (the fixture is set up first)
    assert response.json() == page(
        membership_body(people["carol"]),
        membership_body(people["bob"]),
        membership_body(people["alice"]),
        membership_body(own_membership(member)),
    )


def test_member_reads_one_membership(client_for, member, people, sales):
    response = client_for(member).get(detail_url(URL, people["bob"]))

    assert response.status_code == 200
    assert response.json() == membership_body(people["bob"]) | {
        "user": {"id": people["bob"].user.pk, "email": "bob@example.com", "full_name": "Bob Brown"},
        "department": sales.pk,
        "job_title": "Sales Rep",
        "employee_number": "E-002",
        "is_active": True,
        "joined_on": "2022-06-15",
        "left_on": None,
    }


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("department={HQ}", ["alice"]),
        ("department={SALES}", ["bob"]),
        ("user={bob}", ["bob"]),
        ("is_active=false", ["carol"]),
        ("is_active=true&joined_before=2023-01-01", ["bob", "alice"]),
        ("employee_number=E-002", ["bob"]),
        ("joined_after=2020-01-01&joined_before=2022-06-15", ["bob", "alice"]),
        ("joined_before=2019-12-31", ["carol"]),
        ("search=alice@", ["alice"]),
        ("search=brown", ["bob"]),
        ("search=accountant", ["carol"]),
        ("search=E-00", ["bob", "alice"]),
        ("joined_before=2023-01-01&ordering=joined_on", ["carol", "alice", "bob"]),
        ("joined_before=2023-01-01&ordering=-employee_number", ["carol", "bob", "alice"]),
        ("joined_before=2023-01-01&ordering=created_at", ["alice", "bob", "carol"]),
    ],
)
def test_member_filters_searches_and_orders_memberships(client_for, member, people, department, sales, query, names):
    ids = {"HQ": department.pk, "SALES": sales.pk, "bob": people["bob"].user.pk}

    response = client_for(member).get(f"{URL}?{query.format(**ids)}")

    assert response.status_code == 200, response.json()
    assert [row["id"] for row in response.json()["results"]] == [people[name].pk for name in names]


def test_the_retired_administrator_filter_is_refused_not_ignored(client_for, member, admin_member, people):
    # given: administrators are role holders now; memberships carry no administrator flag to filter on
    # when
    response = client_for(member).get(f"{URL}?is_admin=true")

    # then: an unknown parameter, rather than a silently unfiltered list
    assert response.status_code == 400
    assert response.json() == invalid({"is_admin": [f"Unknown query parameter. Allowed: {MEMBER_FILTERS}."]})


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            "team=1",
            {"team": [f"Unknown query parameter. Allowed: {MEMBER_FILTERS}."]},
        ),
        ("is_active=maybe", {"is_active": ["Must be a valid boolean."]}),
        ("joined_after=yesterday", {"joined_after": ["Enter a valid date."]}),
        ("department=HQ", {"department": ["Enter a whole number."]}),
        (
            "ordering=user__email",
            {"ordering": ["Cannot order by 'user__email'. Allowed: created_at, employee_number, joined_on."]},
        ),
    ],
)
def test_bad_list_parameters_are_rejected(client_for, member, people, query, fields):
    response = client_for(member).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


# --- who may enter ----------------------------------------------------------------------------------------------------


def non_member_calls(client: Any, membership: Membership) -> dict[str, Any]:
    return {
        "list": lambda: client.get(URL),
        "retrieve": lambda: client.get(detail_url(URL, membership)),
        "create": lambda: client.post(URL, {"user_email": "dave@example.com"}, format="json"),
        "update": lambda: client.put(detail_url(URL, membership), {"job_title": "Boss"}, format="json"),
        "partial_update": lambda: client.patch(detail_url(URL, membership), {"is_active": False}, format="json"),
        "destroy": lambda: client.delete(detail_url(URL, membership)),
    }


ACTIONS = ["list", "retrieve", "create", "update", "partial_update", "destroy"]
WRITE_ACTIONS = ["create", "update", "partial_update", "destroy"]
# Adding, changing and ending memberships all need organizations.manage_members: in the organization to add someone,
# on the membership named in the URL otherwise.
WRITE_REFUSALS = {
    "create": lacks_permission("organizations.manage_members"),
    "update": lacks_permission("organizations.manage_members", on_object=True),
    "partial_update": lacks_permission("organizations.manage_members", on_object=True),
    "destroy": lacks_permission("organizations.manage_members", on_object=True),
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("who", ["outsider", "user", "former"])
def test_non_members_get_404_and_nothing_changes(request, client_for, people, dave, who, action):
    actor = people["carol"].user if who == "former" else request.getfixturevalue(who)
    before = membership_rows()

    response = non_member_calls(client_for(actor), people["bob"])[action]()

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert membership_rows() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_gets_401_and_nothing_changes(client_for, people, dave, action):
    before = membership_rows()

    response = non_member_calls(client_for(None), people["bob"])[action]()

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert membership_rows() == before


@pytest.mark.parametrize("action", WRITE_ACTIONS)
def test_plain_member_cannot_write_and_nothing_changes(client_for, member, people, dave, action):
    before = membership_rows()

    response = non_member_calls(client_for(member), people["bob"])[action]()

    assert response.status_code == 403
    assert response.json() == WRITE_REFUSALS[action]
    assert membership_rows() == before


@pytest.mark.parametrize("action", ["retrieve", "update", "partial_update", "destroy"])
def test_membership_of_another_organization_is_not_found_here(client_for, admin_member, outsider, dave, action):
    before = membership_rows()

    response = non_member_calls(client_for(admin_member), own_membership_in_globex(outsider))[action]()

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert membership_rows() == before


def own_membership_in_globex(user: User) -> Membership:
    return Membership.objects.get(user=user, organization__slug="globex")


# --- create -----------------------------------------------------------------------------------------------------------

JOIN_BY_INVITATION = error(
    "method_not_allowed", "Members join by invitation: POST to this organization's invitations/ instead."
)


@pytest.mark.parametrize("who", ["admin_member", "superuser"])
@pytest.mark.parametrize(
    "payload",
    [{"user_email": "dave@example.com"}, {"user_email": "nobody@example.com"}, {"user": 1}],
    ids=["existing-account", "unknown-address", "user-id"],
)
def test_nobody_attaches_an_account_by_naming_it(request, client_for, people, dave, superuser, who, payload):
    # given: an administrator (or a platform operator) who used to add anyone on the installation by email
    client = client_for(request.getfixturevalue(who))
    before = membership_rows()

    # when
    response = client.post(URL, payload, format="json")

    # then: the same refusal whether or not the account exists, and nobody is added: people join by invitation
    assert response.status_code == 405
    assert response.json() == JOIN_BY_INVITATION
    assert membership_rows() == before
    assert not Membership.objects.filter(user=dave).exists()


def test_department_of_another_organization_reads_as_not_found(client_for, admin_member, people, other_organization):
    # given: globex's department, named when moving bob
    globex_department = DepartmentFactory(organization=other_organization, code="HQ")
    before = membership_rows()
    client = client_for(admin_member)

    # when
    response = client.patch(detail_url(URL, people["bob"]), {"department": globex_department.pk}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"department": [f'Invalid pk "{globex_department.pk}" - object does not exist.']})
    assert membership_rows() == before


# --- update -----------------------------------------------------------------------------------------------------------


def test_admin_changes_a_membership(client_for, admin_member, people, department):
    # when
    response = client_for(admin_member).patch(
        detail_url(URL, people["bob"]),
        {"department": department.pk, "job_title": "Head of Sales", "employee_number": "E-020"},
        format="json",
    )

    # then
    assert response.status_code == 200, response.json()
    bob = Membership.objects.get(pk=people["bob"].pk)
    assert (bob.department, bob.job_title, bob.employee_number, bob.updated_by) == (
        department,
        "Head of Sales",
        "E-020",
        admin_member,
    )
    assert response.json() == membership_body(bob)


def test_the_person_of_a_membership_never_changes(client_for, admin_member, people, dave):
    response = client_for(admin_member).patch(
        detail_url(URL, people["bob"]), {"user_email": "dave@example.com", "job_title": "Rep"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert Membership.objects.get(pk=people["bob"].pk).user.email == "bob@example.com"
    assert not dave.memberships.exists()


def test_admin_put_updates_the_sent_fields(client_for, admin_member, people):
    response = client_for(admin_member).put(detail_url(URL, people["alice"]), {"job_title": "Architect"}, format="json")

    assert response.status_code == 200, response.json()
    alice = Membership.objects.get(pk=people["alice"].pk)
    assert (alice.job_title, alice.employee_number, alice.user.email) == ("Architect", "E-001", "alice@example.com")


def test_keeping_the_own_employee_number_is_no_clash(client_for, admin_member, people):
    response = client_for(admin_member).patch(
        detail_url(URL, people["bob"]), {"employee_number": "E-002"}, format="json"
    )

    assert response.status_code == 200, response.json()


def test_an_ended_membership_is_not_restored_even_by_an_administrator(client_for, admin_member, people):
    # given
    before = membership_rows()

    # when
    response = client_for(admin_member).patch(detail_url(URL, people["carol"]), {"is_active": True}, format="json")

    # then: coming back is a new membership
    assert response.status_code == 409
    assert response.json() == error("membership_ended", MEMBERSHIP_ENDED)
    assert membership_rows() == before


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"employee_number": "E-001"}, {"employee_number": [NUMBER_TAKEN]}),
        ({"left_on": "2022-06-14"}, {"left_on": ["The leaving date cannot be before the joining date."]}),
        (
            {"joined_on": "someday"},
            {"joined_on": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        ({"department": 2_000_000_000}, {"department": ['Invalid pk "2000000000" - object does not exist.']}),
    ],
)
def test_bad_update_is_400_and_nothing_changes(client_for, admin_member, people, payload, fields):
    before = membership_rows()

    response = client_for(admin_member).patch(detail_url(URL, people["bob"]), payload, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert membership_rows() == before


# --- delete ends the membership ---------------------------------------------------------------------------------------


def test_delete_ends_the_membership(client_for, admin_member, people):
    # when
    response = client_for(admin_member).delete(detail_url(URL, people["bob"]))

    # then: the record stays, inactive, with today as leaving date
    assert response.status_code == 204
    assert response.content == b""
    bob = Membership.objects.get(pk=people["bob"].pk)
    assert (bob.is_active, bob.left_on, bob.updated_by, bob.employee_number) == (
        False,
        timezone.localdate(),
        admin_member,
        "E-002",
    )
    assert client_for(admin_member).get(detail_url(URL, bob)).json()["is_active"] is False


def test_an_ended_member_can_no_longer_enter_the_organization(client_for, admin_member, people):
    bob = people["bob"].user
    assert client_for(bob).get(URL).status_code == 200

    client_for(admin_member).delete(detail_url(URL, people["bob"]))

    response = client_for(bob).get(URL)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- query counts -----------------------------------------------------------------------------------------------------

# The organization with the caller's access; the caller's permissions from a cold cache (membership, assignments in
# force, roles, their permissions, every grant table in one UNION ALL); one page of memberships joined with users and
# departments.
LIST_QUERIES = 7


@pytest.mark.parametrize("rows", [10, 200])
def test_list_query_count_does_not_grow_with_members(
    client_for, member, organization, department, sales, rows, django_assert_num_queries
):
    # given: rows more members, spread over two departments and none
    users = User.objects.bulk_create(
        [User(email=f"bulk-{index}@example.com", full_name=f"Bulk {index}", password="!") for index in range(rows)]
    )
    departments = [department, sales, None]
    Membership.objects.bulk_create(
        [
            Membership(
                organization=organization,
                user=user,
                department=departments[index % 3],
                employee_number=f"B-{index}",
            )
            for index, user in enumerate(users)
        ]
    )
    client = client_for(member)

    # when
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get(f"{URL}?page_size=200")

    # then: the member themself plus the others, up to the page size
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(rows + 1, 200)


def test_list_keeps_out_the_members_of_other_organizations(client_for, member, outsider, other_organization):
    # given: globex has its outsider plus 20 more members
    users = User.objects.bulk_create([User(email=f"globex-{index}@example.com", password="!") for index in range(20)])
    Membership.objects.bulk_create([Membership(organization=other_organization, user=user) for user in users])

    response = client_for(member).get(f"{URL}?page_size=200")

    assert response.status_code == 200
    assert [row["user"]["email"] for row in response.json()["results"]] == [member.email]
