"""/api/v1/organizations/{slug}/role-assignments/: who holds which role, where and when."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from rbac.models import RoleAssignment
from tests.accounts.factories import UserFactory
from tests.api_helpers import NOT_FOUND, detail_url, error, invalid, iso, lacks_permission, page
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/organizations/acme/role-assignments/"
NOW = timezone.now()
DUPLICATE = error("duplicate_assignment", "This person already has this role for this scope.")


def assignment_body(assignment: RoleAssignment, *, is_in_force: bool = True) -> dict[str, Any]:
    assignment.refresh_from_db()
    return {
        "id": assignment.pk,
        "user": assignment.user_id,
        "role": assignment.role_id,
        "department": assignment.department_id,
        "valid_from": iso(assignment.valid_from) if assignment.valid_from else None,
        "valid_until": iso(assignment.valid_until) if assignment.valid_until else None,
        "is_active": assignment.is_active,
        "is_in_force": is_in_force,
        "reason": assignment.reason,
        "source": assignment.source,
        "granted_by": assignment.granted_by_id,
        "created_at": iso(assignment.created_at),
        "updated_at": iso(assignment.updated_at),
    }


def assignment_rows() -> list[dict[str, Any]]:
    """Every assignment of every organization: what a refused call must leave untouched."""
    return list(RoleAssignment.objects.order_by("pk").values())


def new_member(organization) -> User:
    return MembershipFactory(organization=organization).user


@pytest.fixture
def finance_assigner(organization, tree) -> User:
    """A manager of FIN (and below) who may also hand out roles there."""
    assigner = RoleFactory(
        organization=organization,
        code="assigner",
        parent=system_role("manager"),
        permissions=["rbac.add_roleassignment", "rbac.change_roleassignment", "rbac.delete_roleassignment"],
    )
    user = new_member(organization)
    RoleAssignmentFactory(organization=organization, user=user, role=assigner, department=tree["FIN"])
    return user


# --- Reading -------------------------------------------------------------------------------------------------------


def test_list_shows_this_organizations_assignments(client_for, member, admin_member, organization, outsider):
    # given: the fixtures' own assignments (member, org_admin) and outsider's in globex
    mine = RoleAssignment.objects.get(user=member, organization=organization)
    admins = RoleAssignment.objects.get(user=admin_member, organization=organization)

    # when
    response = client_for(member).get(URL)

    # then: newest first; globex's assignment is not there
    assert response.status_code == 200
    assert response.json() == page(assignment_body(admins), assignment_body(mine))


def test_filters(client_for, admin_member, organization, tree):
    viewer, manager = system_role("viewer"), system_role("manager")
    alice, bob = new_member(organization), new_member(organization)
    current = RoleAssignmentFactory(organization=organization, user=alice, role=viewer)
    scoped = RoleAssignmentFactory(organization=organization, user=alice, role=manager, department=tree["FIN"])
    expired = RoleAssignmentFactory(
        organization=organization,
        user=bob,
        role=viewer,
        valid_from=NOW - datetime.timedelta(days=30),
        valid_until=NOW - datetime.timedelta(days=1),
    )
    future = RoleAssignmentFactory(
        organization=organization, user=bob, role=manager, valid_from=NOW + datetime.timedelta(days=1)
    )
    inactive = RoleAssignmentFactory(
        organization=organization, user=bob, role=manager, department=tree["ENG"], is_active=False
    )
    client = client_for(admin_member)

    def ids(query: str) -> list[int]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(f"user={alice.pk}") == [scoped.pk, current.pk]
    assert ids(f"user={bob.pk}&role={manager.pk}") == [inactive.pk, future.pk]
    assert ids(f"department={tree['FIN'].pk}") == [scoped.pk]
    assert ids(f"user={bob.pk}&is_active=false") == [inactive.pk]
    assert ids(f"user={bob.pk}&in_force=false") == [inactive.pk, future.pk, expired.pk]
    assert ids(f"user={bob.pk}&in_force=true") == []
    assert ids(f"user={alice.pk}&in_force=true") == [scoped.pk, current.pk]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("in_force=perhaps", {"in_force": ["Must be a valid boolean."]}),
        ("user=1.5", {"user": ["Enter a whole number."]}),
    ],
)
def test_bad_filter_values_are_400(client_for, admin_member, query, fields):
    response = client_for(admin_member).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_a_department_scoped_viewer_sees_only_the_assignments_in_their_subtree(client_for, organization, tree):
    # given: someone who may read assignments only in FIN, and assignments in AP, ENG and organization-wide
    reader = new_member(organization)
    own = RoleAssignmentFactory(
        organization=organization, user=reader, role=system_role("viewer"), department=tree["FIN"]
    )
    in_ap = RoleAssignmentFactory(
        organization=organization, user=new_member(organization), role=system_role("viewer"), department=tree["AP"]
    )
    RoleAssignmentFactory(
        organization=organization, user=new_member(organization), role=system_role("viewer"), department=tree["ENG"]
    )
    RoleAssignmentFactory(organization=organization, user=new_member(organization), role=system_role("viewer"))

    response = client_for(reader).get(URL)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [in_ap.pk, own.pk]


# --- Assigning -----------------------------------------------------------------------------------------------------


def test_admin_assigns_a_department_scoped_role(client_for, admin_member, organization, tree):
    # given
    user = new_member(organization)
    until = NOW + datetime.timedelta(days=90)

    # when
    response = client_for(admin_member).post(
        URL,
        {
            "user": user.pk,
            "role": system_role("manager").pk,
            "department": tree["FIN"].pk,
            "valid_until": until.isoformat(),
            "reason": "Runs finance this quarter.",
        },
        format="json",
    )

    # then
    assert response.status_code == 201
    assignment = RoleAssignment.objects.get(user=user)
    assert response.json() == assignment_body(assignment)
    assert (
        assignment.organization,
        assignment.role,
        assignment.department,
        assignment.valid_until,
        assignment.granted_by,
        assignment.reason,
    ) == (organization, system_role("manager"), tree["FIN"], until, admin_member, "Runs finance this quarter.")


def test_an_assignment_can_be_created_inactive(client_for, admin_member, organization):
    user = new_member(organization)

    response = client_for(admin_member).post(
        URL, {"user": user.pk, "role": system_role("viewer").pk, "is_active": False}, format="json"
    )

    assert response.status_code == 201
    assignment = RoleAssignment.objects.get(user=user)
    assert assignment.is_active is False
    assert response.json() == assignment_body(assignment, is_in_force=False)


def test_a_duplicate_assignment_is_409_and_nothing_changes(client_for, admin_member, member):
    before = assignment_rows()

    response = client_for(admin_member).post(URL, {"user": member.pk, "role": system_role("member").pk}, format="json")

    assert response.status_code == 409
    assert response.json() == DUPLICATE
    assert assignment_rows() == before


def test_the_same_role_in_another_department_is_no_duplicate(client_for, admin_member, organization, tree):
    user = new_member(organization)
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])

    response = client_for(admin_member).post(
        URL, {"user": user.pk, "role": system_role("manager").pk, "department": tree["ENG"].pk}, format="json"
    )

    assert response.status_code == 201


@pytest.mark.parametrize("who", ["no membership", "ended membership", "member of globex"])
def test_only_active_members_can_be_assigned(client_for, admin_member, organization, outsider, who):
    # given
    if who == "no membership":
        user = UserFactory()
    elif who == "ended membership":
        user = MembershipFactory(organization=organization, is_active=False).user
    else:
        user = outsider
    before = assignment_rows()

    # when
    response = client_for(admin_member).post(URL, {"user": user.pk, "role": system_role("viewer").pk}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"user": [f"User {user.pk} is not an active member here."]})
    assert assignment_rows() == before


def test_another_organizations_role_and_department_are_not_found(
    client_for, admin_member, organization, other_organization
):
    user = new_member(organization)
    foreign_role = RoleFactory(organization=other_organization)
    foreign_department = DepartmentFactory(organization=other_organization, code="X")
    before = assignment_rows()

    response = client_for(admin_member).post(
        URL, {"user": user.pk, "role": foreign_role.pk, "department": foreign_department.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "role": [f'Invalid pk "{foreign_role.pk}" - object does not exist.'],
            "department": [f'Invalid pk "{foreign_department.pk}" - object does not exist.'],
        }
    )
    assert assignment_rows() == before


def test_a_period_that_ends_before_it_starts_is_400(client_for, admin_member, organization):
    user = new_member(organization)
    before = assignment_rows()

    response = client_for(admin_member).post(
        URL,
        {
            "user": user.pk,
            "role": system_role("viewer").pk,
            "valid_from": NOW.isoformat(),
            "valid_until": (NOW - datetime.timedelta(days=1)).isoformat(),
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid({"valid_until": ["The end of validity must come after its start."]})
    assert assignment_rows() == before


def test_a_member_without_the_permission_cannot_assign(client_for, member, organization):
    user = new_member(organization)
    before = assignment_rows()

    response = client_for(member).post(URL, {"user": user.pk, "role": system_role("viewer").pk}, format="json")

    assert response.status_code == 403
    assert response.json() == lacks_permission("rbac.add_roleassignment")
    assert assignment_rows() == before


# --- No escalation -------------------------------------------------------------------------------------------------


def test_a_department_scoped_manager_assigns_within_their_subtree(client_for, finance_assigner, organization, tree):
    user = new_member(organization)

    response = client_for(finance_assigner).post(
        URL, {"user": user.pk, "role": system_role("manager").pk, "department": tree["AP"].pk}, format="json"
    )

    assert response.status_code == 201
    assert RoleAssignment.objects.get(user=user).department == tree["AP"]


@pytest.mark.parametrize(
    ("role", "department"),
    [("org_admin", "FIN"), ("manager", None)],
    ids=["org_admin in their own department", "manager organization-wide"],
)
def test_a_department_scoped_manager_cannot_hand_out_more_than_they_hold(
    client_for, finance_assigner, organization, tree, role, department
):
    # given
    user = new_member(organization)
    body: dict[str, Any] = {"user": user.pk, "role": system_role(role).pk}
    if department:
        body["department"] = tree[department].pk
    before = assignment_rows()

    # when
    response = client_for(finance_assigner).post(URL, body, format="json")

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert assignment_rows() == before


def test_a_department_scoped_manager_cannot_name_a_department_outside_their_subtree(
    client_for, finance_assigner, organization, tree
):
    user = new_member(organization)
    before = assignment_rows()

    response = client_for(finance_assigner).post(
        URL, {"user": user.pk, "role": system_role("viewer").pk, "department": tree["ENG"].pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"department": [f'Invalid pk "{tree["ENG"].pk}" - object does not exist.']})
    assert assignment_rows() == before


def test_a_department_scoped_manager_cannot_widen_an_assignment_to_the_whole_organization(
    client_for, finance_assigner, organization, tree
):
    assignment = RoleAssignmentFactory(
        organization=organization, user=new_member(organization), role=system_role("viewer"), department=tree["AP"]
    )
    before = assignment_rows()

    response = client_for(finance_assigner).patch(detail_url(URL, assignment), {"department": None}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert assignment_rows() == before


def test_an_organization_wide_assignment_is_invisible_to_a_department_scoped_manager(
    client_for, finance_assigner, member, organization
):
    assignment = RoleAssignment.objects.get(user=member, organization=organization)
    before = assignment_rows()

    response = client_for(finance_assigner).delete(detail_url(URL, assignment))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert assignment_rows() == before


# --- Changing and revoking -----------------------------------------------------------------------------------------


def test_admin_changes_the_period_and_state(client_for, admin_member, organization, tree):
    assignment = RoleAssignmentFactory(
        organization=organization, user=new_member(organization), role=system_role("manager"), department=tree["FIN"]
    )
    until = NOW + datetime.timedelta(days=7)

    response = client_for(admin_member).patch(
        detail_url(URL, assignment),
        {"valid_until": until.isoformat(), "is_active": False, "department": tree["AP"].pk, "reason": "Handover."},
        format="json",
    )

    assert response.status_code == 200
    assignment.refresh_from_db()
    assert (assignment.valid_until, assignment.is_active, assignment.department, assignment.reason) == (
        until,
        False,
        tree["AP"],
        "Handover.",
    )
    assert response.json() == assignment_body(assignment, is_in_force=False)


def test_the_person_and_role_of_an_assignment_cannot_change(client_for, admin_member, member, organization):
    assignment = RoleAssignment.objects.get(user=member, organization=organization)
    before = assignment_rows()

    response = client_for(admin_member).patch(
        detail_url(URL, assignment), {"role": system_role("viewer").pk, "user": admin_member.pk}, format="json"
    )

    assert response.status_code == 400
    message = "The person and the role of an assignment cannot change; revoke it and assign again."
    assert response.json() == invalid({"user": [message], "role": [message]})
    assert assignment_rows() == before


def test_a_change_that_makes_a_duplicate_is_409(client_for, admin_member, organization, tree):
    user = new_member(organization)
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"))
    scoped = RoleAssignmentFactory(
        organization=organization, user=user, role=system_role("manager"), department=tree["FIN"]
    )
    before = assignment_rows()

    response = client_for(admin_member).patch(detail_url(URL, scoped), {"department": None}, format="json")

    assert response.status_code == 409
    assert response.json() == DUPLICATE
    assert assignment_rows() == before


def test_admin_revokes_an_assignment(client_for, admin_member, member, organization):
    assignment = RoleAssignment.objects.get(user=member, organization=organization)

    response = client_for(admin_member).delete(detail_url(URL, assignment))

    assert response.status_code == 204
    assert not RoleAssignment.objects.filter(pk=assignment.pk).exists()
    # the member is still a member, but their role no longer lets them read departments
    assert client_for(member).get("/api/v1/organizations/acme/departments/").json()["results"] == []


def test_a_member_cannot_revoke(client_for, member, admin_member, organization):
    assignment = RoleAssignment.objects.get(user=admin_member, organization=organization)
    before = assignment_rows()

    response = client_for(member).delete(detail_url(URL, assignment))

    assert response.status_code == 403
    assert response.json() == lacks_permission("rbac.delete_roleassignment", on_object=True)
    assert assignment_rows() == before


def test_another_organizations_assignment_is_not_found(client_for, admin_member, outsider, other_organization):
    foreign = RoleAssignment.objects.get(user=outsider, organization=other_organization)
    before = assignment_rows()

    response = client_for(admin_member).patch(detail_url(URL, foreign), {"is_active": False}, format="json")

    assert response.status_code == 404
    assert assignment_rows() == before


@pytest.mark.parametrize("rows", [3, 60])
def test_list_query_count_does_not_grow_with_rows(
    client_for, admin_member, organization, rows, django_assert_num_queries
):
    for _ in range(rows):
        RoleAssignmentFactory(organization=organization, user=new_member(organization), role=system_role("viewer"))
    client = client_for(admin_member)
    client.get(URL)  # warm the permission cache

    with django_assert_num_queries(2):
        response = client.get(f"{URL}?page_size=200")

    assert len(response.json()["results"]) == rows + 1
