"""/api/v1/organizations/{slug}/departments/{id}/grants/: sharing one department with one user or group."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import User
from organizations.models import Department, DepartmentGroupObjectPermission, DepartmentUserObjectPermission
from tests.accounts.factories import UserFactory
from tests.api_helpers import NOT_FOUND, detail_url, invalid, lacks_permission
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db

DEPARTMENTS = "/api/v1/organizations/acme/departments/"
VIEW = "organizations.view_department"
CHANGE = "organizations.change_department"
DELETE = "organizations.delete_department"


def grants_url(department: Department, slug: str = "acme") -> str:
    return f"{detail_url(f'/api/v1/organizations/{slug}/departments/', department)}grants/"


def revoke_url(department: Department, slug: str = "acme") -> str:
    return f"{grants_url(department, slug)}revoke/"


def grant_rows() -> list[tuple[str, Any, Any, int]]:
    """Every department grant: (codename, user, group, department) — what a refused call must leave untouched."""
    users = DepartmentUserObjectPermission.objects.values_list(
        "permission__codename", "user_id", "content_object_id"
    ).order_by("pk")
    groups = DepartmentGroupObjectPermission.objects.values_list(
        "permission__codename", "group_id", "content_object_id"
    ).order_by("pk")
    return [(codename, user, None, obj) for codename, user, obj in users] + [
        (codename, None, group, obj) for codename, group, obj in groups
    ]


@pytest.fixture
def bare_member(organization) -> User:
    """A member without any role: sees nothing until something is shared with them."""
    return MembershipFactory(organization=organization).user


@pytest.fixture
def team(organization, bare_member) -> Group:
    group = Group.objects.create(name="team")
    bare_member.groups.add(group)
    return group


# --- Granting ------------------------------------------------------------------------------------------------------


def test_a_grant_only_member_sees_exactly_the_shared_department(client_for, admin_member, bare_member, tree):
    # given: nothing is visible to the member
    assert client_for(bare_member).get(DEPARTMENTS).json()["results"] == []

    # when: an admin shares ENG with them
    response = client_for(admin_member).post(
        grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )

    # then
    assert response.status_code == 201
    assert response.json() == {"permission": VIEW, "user": bare_member.pk, "group": None}
    assert grant_rows() == [("view_department", bare_member.pk, None, tree["ENG"].pk)]
    listed = client_for(bare_member).get(DEPARTMENTS).json()["results"]
    assert [row["code"] for row in listed] == ["ENG"]
    assert client_for(bare_member).get(detail_url(DEPARTMENTS, tree["HQ"])).status_code == 404
    # seeing is not changing
    assert client_for(bare_member).patch(detail_url(DEPARTMENTS, tree["ENG"]), {"name": "X"}).status_code == 403


def test_a_grant_to_a_group_reaches_its_members(client_for, admin_member, bare_member, team, tree):
    response = client_for(admin_member).post(
        grants_url(tree["AP"]), {"permission": VIEW, "group": team.pk}, format="json"
    )

    assert response.status_code == 201
    assert response.json() == {"permission": VIEW, "user": None, "group": team.pk}
    assert [row["code"] for row in client_for(bare_member).get(DEPARTMENTS).json()["results"]] == ["AP"]


def test_granting_twice_keeps_one_grant(client_for, admin_member, bare_member, tree):
    client = client_for(admin_member)
    body = {"permission": VIEW, "user": bare_member.pk}

    assert client.post(grants_url(tree["ENG"]), body, format="json").status_code == 201
    assert client.post(grants_url(tree["ENG"]), body, format="json").status_code == 201

    assert grant_rows() == [("view_department", bare_member.pk, None, tree["ENG"].pk)]


def test_the_grants_of_a_department_are_listed(client_for, member, admin_member, bare_member, team, tree):
    client = client_for(admin_member)
    client.post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")
    client.post(grants_url(tree["ENG"]), {"permission": CHANGE, "user": bare_member.pk}, format="json")
    client.post(grants_url(tree["ENG"]), {"permission": VIEW, "group": team.pk}, format="json")
    client.post(grants_url(tree["FIN"]), {"permission": VIEW, "user": member.pk}, format="json")

    response = client_for(member).get(grants_url(tree["ENG"]))

    assert response.status_code == 200
    assert response.json() == [
        {"permission": CHANGE, "user": bare_member.pk, "group": None},
        {"permission": VIEW, "user": bare_member.pk, "group": None},
        {"permission": VIEW, "user": None, "group": team.pk},
    ]


# --- Refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["no membership", "ended membership", "member of globex", "missing"])
def test_a_grant_to_someone_who_is_not_an_active_member_is_400(
    client_for, admin_member, organization, outsider, tree, who
):
    user_id = {
        "no membership": lambda: UserFactory().pk,
        "ended membership": lambda: MembershipFactory(organization=organization, is_active=False).user.pk,
        "member of globex": lambda: outsider.pk,
        "missing": lambda: 999_999,
    }[who]()

    response = client_for(admin_member).post(
        grants_url(tree["ENG"]), {"permission": VIEW, "user": user_id}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"user": [f"User {user_id} is not an active member here."]})
    assert grant_rows() == []


def test_a_group_without_members_here_is_not_found(client_for, admin_member, outsider, tree):
    foreign = Group.objects.create(name="globex team")
    outsider.groups.add(foreign)

    response = client_for(admin_member).post(
        grants_url(tree["ENG"]), {"permission": VIEW, "group": foreign.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"group": [f"Group {foreign.pk} does not exist here."]})
    assert grant_rows() == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"permission": VIEW}, {"non_field_errors": ["Name exactly one user or one group."]}),
        (
            {"permission": "organizations.view_membership", "user": "bare"},
            {"permission": ["organizations.view_membership is not a permission on department objects."]},
        ),
        (
            {"permission": "organizations.fly_department", "user": "bare"},
            {"permission": ["organizations.fly_department is not a permission on department objects."]},
        ),
        ({"user": "bare"}, {"permission": ["This field is required."]}),
    ],
)
def test_bad_grants_are_400(client_for, admin_member, bare_member, team, tree, body, fields):
    body = {key: bare_member.pk if value == "bare" else value for key, value in body.items()}

    response = client_for(admin_member).post(grants_url(tree["ENG"]), body, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert grant_rows() == []


def test_both_a_user_and_a_group_is_400(client_for, admin_member, bare_member, team, tree):
    response = client_for(admin_member).post(
        grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk, "group": team.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"non_field_errors": ["Name exactly one user or one group."]})
    assert grant_rows() == []


def test_a_member_who_may_only_read_cannot_share(client_for, member, bare_member, tree):
    response = client_for(member).post(
        grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == lacks_permission(CHANGE, on_object=True)
    assert grant_rows() == []


def test_nobody_shares_a_permission_they_do_not_hold(client_for, organization, bare_member, tree):
    # given: an editor may change departments but not delete them
    editor = MembershipFactory(organization=organization).user
    role = RoleFactory(organization=organization, permissions=[VIEW, CHANGE])
    RoleAssignmentFactory(organization=organization, user=editor, role=role)

    # when: they try to let someone delete ENG
    response = client_for(editor).post(
        grants_url(tree["ENG"]), {"permission": DELETE, "user": bare_member.pk}, format="json"
    )

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert grant_rows() == []


def test_a_department_scoped_manager_shares_only_inside_their_subtree(client_for, organization, bare_member, tree):
    manager = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=manager, role=system_role("manager"), department=tree["FIN"])
    client = client_for(manager)

    inside = client.post(grants_url(tree["AP"]), {"permission": VIEW, "user": bare_member.pk}, format="json")
    outside = client.post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")

    assert inside.status_code == 201
    assert outside.status_code == 404
    assert grant_rows() == [("view_department", bare_member.pk, None, tree["AP"].pk)]


def test_a_grant_on_another_organizations_department_is_not_found(
    client_for, admin_member, bare_member, other_organization
):
    foreign = DepartmentFactory(organization=other_organization, code="X")

    # under acme's path and under globex's path (where the admin is nobody)
    under_acme = client_for(admin_member).post(
        grants_url(foreign), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )
    under_globex = client_for(admin_member).post(
        grants_url(foreign, "globex"), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )
    listing = client_for(admin_member).get(grants_url(foreign))

    assert (under_acme.status_code, under_globex.status_code, listing.status_code) == (404, 404, 404)
    assert under_acme.json() == NOT_FOUND
    assert grant_rows() == []


def test_a_grant_to_a_former_member_gives_nothing(client_for, admin_member, organization, bare_member, tree):
    # given: ENG was shared with someone who has since left the organization
    client_for(admin_member).post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")
    membership = bare_member.memberships.get(organization=organization)
    membership.is_active = False
    membership.save()

    # then: the grant row stays, but it gives nothing (they cannot even enter the organization)
    assert grant_rows() == [("view_department", bare_member.pk, None, tree["ENG"].pk)]
    assert client_for(bare_member).get(DEPARTMENTS).status_code == 404
    assert Department.objects.visible_to(bare_member, organization, "view").count() == 0


# --- Revoking ------------------------------------------------------------------------------------------------------


def test_revoking_takes_the_department_away(client_for, admin_member, bare_member, tree):
    client = client_for(admin_member)
    client.post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")

    response = client.post(revoke_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")

    assert response.status_code == 204
    assert grant_rows() == []
    assert client_for(bare_member).get(DEPARTMENTS).json()["results"] == []


def test_revoking_a_group_grant(client_for, admin_member, team, tree):
    client = client_for(admin_member)
    client.post(grants_url(tree["ENG"]), {"permission": VIEW, "group": team.pk}, format="json")

    response = client.post(revoke_url(tree["ENG"]), {"permission": VIEW, "group": team.pk}, format="json")

    assert response.status_code == 204
    assert grant_rows() == []


def test_a_grant_to_a_former_member_can_still_be_revoked(client_for, admin_member, organization, bare_member, tree):
    client = client_for(admin_member)
    client.post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")
    bare_member.memberships.filter(organization=organization).update(is_active=False)

    response = client.post(revoke_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")

    assert response.status_code == 204
    assert grant_rows() == []


def test_revoking_what_was_never_granted_changes_nothing(client_for, admin_member, bare_member, tree):
    response = client_for(admin_member).post(
        revoke_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )

    assert response.status_code == 204
    assert grant_rows() == []


def test_a_reader_cannot_revoke(client_for, admin_member, member, bare_member, tree):
    client_for(admin_member).post(grants_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json")
    before = grant_rows()

    response = client_for(member).post(
        revoke_url(tree["ENG"]), {"permission": VIEW, "user": bare_member.pk}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == lacks_permission(CHANGE, on_object=True)
    assert grant_rows() == before


def test_revoking_from_someone_of_another_organization_is_not_found(client_for, admin_member, outsider, tree):
    response = client_for(admin_member).post(
        revoke_url(tree["ENG"]), {"permission": VIEW, "user": outsider.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"user": [f"User {outsider.pk} is not an active member here."]})
