"""/api/v1/organizations/{slug}/roles/: the organization's roles and the system roles, with inheritance."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from rbac.models import Role, RoleAssignment, RolePermission
from tests.api_helpers import NOT_FOUND, detail_url, error, invalid, iso, lacks_permission
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/organizations/acme/roles/"
VIEW = "organizations.view_department"
ADD = "organizations.add_department"
CHANGE = "organizations.change_department"
DELETE = "organizations.delete_department"
SYSTEM_CODES = ["auditor", "manager", "member", "org_admin", "viewer"]
ROLE_MANAGER_PERMISSIONS = ["rbac.add_role", "rbac.change_role", "rbac.delete_role", "rbac.view_role", VIEW, CHANGE]


def own(role: Role) -> list[str]:
    return sorted(
        f"{app_label}.{codename}"
        for app_label, codename in RolePermission.objects.filter(role=role).values_list(
            "permission__content_type__app_label", "permission__codename"
        )
    )


def role_body(role: Role, effective: list[str] | None = None) -> dict[str, Any]:
    role.refresh_from_db()
    return {
        "id": role.pk,
        "code": role.code,
        "name": role.name,
        "description": role.description,
        "parent": role.parent_id,
        "is_system": role.is_system,
        "permissions": own(role),
        "effective_permissions": effective if effective is not None else own(role),
        "created_at": iso(role.created_at),
        "updated_at": iso(role.updated_at),
    }


def role_rows() -> list[dict[str, Any]]:
    """Every role and every role permission: what a refused call must leave untouched."""
    roles: list[dict[str, Any]] = list(Role.objects.order_by("pk").values())
    return roles + list(RolePermission.objects.order_by("pk").values())


def holder_of(organization, role: Role) -> User:
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def role_manager(organization) -> tuple[User, Role]:
    """Someone whose own role lets them manage roles and departments, but not delete departments."""
    role = RoleFactory(organization=organization, code="role_admin", permissions=ROLE_MANAGER_PERMISSIONS)
    return holder_of(organization, role), role


# --- Reading -------------------------------------------------------------------------------------------------------


def test_list_shows_the_organizations_roles_and_the_system_roles(client_for, member, organization, other_organization):
    # given: a role of acme and one of globex
    clerk = RoleFactory(organization=organization, code="clerk", name="Clerk", permissions=[VIEW])
    RoleFactory(organization=other_organization, code="spy", permissions=[VIEW])

    # when
    response = client_for(member).get(URL)

    # then: acme's role and the system templates, by code; never globex's
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["code"] for row in results] == ["auditor", "clerk", "manager", "member", "org_admin", "viewer"]
    assert [row["is_system"] for row in results] == [True, False, True, True, True, True]
    assert results[1] == role_body(clerk)


def test_a_role_shows_its_own_and_its_inherited_permissions_through_three_levels(client_for, member, organization):
    # given: grandparent → parent → child, each adding one permission
    grandparent = RoleFactory(organization=organization, permissions=[VIEW])
    parent = RoleFactory(organization=organization, parent=grandparent, permissions=[CHANGE])
    child = RoleFactory(organization=organization, parent=parent, permissions=[ADD])

    # when
    response = client_for(member).get(detail_url(URL, child))

    # then
    assert response.status_code == 200
    assert response.json() == role_body(child, effective=[ADD, CHANGE, VIEW])
    assert response.json()["permissions"] == [ADD]


def test_a_system_role_shows_what_it_inherits(client_for, member):
    response = client_for(member).get(detail_url(URL, system_role("member")))

    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["is_system"], body["parent"], body["permissions"]) == (
        "member",
        True,
        system_role("viewer").pk,
        [
            "tasks.add_comment",
            "tasks.add_task",
            "tasks.add_taskdependency",
            "tasks.add_timeentry",
            "tasks.change_task",
            "tasks.delete_taskdependency",
        ],
    )
    assert body["effective_permissions"] == sorted(own(system_role("viewer")) + body["permissions"])


def test_another_organizations_role_is_not_found(client_for, admin_member, other_organization):
    foreign = RoleFactory(organization=other_organization, permissions=[VIEW])

    response = client_for(admin_member).get(detail_url(URL, foreign))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_filters_and_search(client_for, member, organization):
    RoleFactory(organization=organization, code="clerk", name="Clerk")
    client = client_for(member)

    own_roles = client.get(f"{URL}?is_system=false").json()["results"]
    system_roles = client.get(f"{URL}?is_system=true").json()["results"]
    children_of_viewer = client.get(f"{URL}?parent={system_role('viewer').pk}").json()["results"]
    searched = client.get(f"{URL}?search=cler").json()["results"]
    bad = client.get(f"{URL}?is_system=maybe")

    assert [row["code"] for row in own_roles] == ["clerk"]
    assert [row["code"] for row in system_roles] == SYSTEM_CODES
    assert [row["code"] for row in children_of_viewer] == ["auditor", "member"]
    assert [row["code"] for row in searched] == ["clerk"]
    assert bad.status_code == 400
    assert bad.json() == invalid({"is_system": ["Must be a valid boolean."]})


@pytest.mark.parametrize("extra_roles", [2, 40])
def test_list_query_count_does_not_grow_with_roles(
    client_for, member, organization, extra_roles, django_assert_num_queries
):
    # given: chains of inheriting roles, so that effective permissions need the ancestors
    parent = None
    for _ in range(extra_roles):
        parent = RoleFactory(organization=organization, parent=parent, permissions=[VIEW, CHANGE])
    client = client_for(member)
    client.get(URL)  # warm the permission cache

    # when / then: the organization, the page, the available roles and their permissions, whatever their number
    with django_assert_num_queries(4):
        response = client.get(f"{URL}?page_size=200")

    assert len(response.json()["results"]) == extra_roles + len(SYSTEM_CODES)


# --- Creating and changing -----------------------------------------------------------------------------------------


def test_admin_creates_a_role_that_inherits_from_a_system_role(client_for, admin_member, organization):
    # when
    response = client_for(admin_member).post(
        URL,
        {
            "code": "Clerk",
            "name": "Clerk",
            "description": "Keeps the books.",
            "parent": system_role("viewer").pk,
            "permissions": [CHANGE, ADD, CHANGE],
        },
        format="json",
    )

    # then: the code is lower-cased, duplicates collapse, viewer's permissions are inherited
    assert response.status_code == 201
    role = Role.objects.get(organization=organization, code="clerk")
    assert response.json() == role_body(role, effective=sorted({ADD, CHANGE, *own(system_role("viewer"))}))
    assert own(role) == [ADD, CHANGE]
    assert (role.is_system, role.parent, role.created_by, role.updated_by) == (
        False,
        system_role("viewer"),
        admin_member,
        admin_member,
    )


def test_admin_changes_a_roles_name_and_permissions(client_for, admin_member, organization):
    role = RoleFactory(organization=organization, code="clerk", name="Clerk", permissions=[VIEW, ADD])

    response = client_for(admin_member).patch(
        detail_url(URL, role), {"name": "Senior clerk", "permissions": [VIEW, CHANGE]}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == role_body(role)
    role.refresh_from_db()
    assert (role.name, own(role), role.updated_by) == ("Senior clerk", [CHANGE, VIEW], admin_member)


def test_a_patch_without_permissions_keeps_them(client_for, admin_member, organization):
    role = RoleFactory(organization=organization, permissions=[VIEW, ADD])

    response = client_for(admin_member).patch(detail_url(URL, role), {"description": "Reads."}, format="json")

    assert response.status_code == 200
    assert own(role) == [ADD, VIEW]


def test_unknown_permission_codes_are_400_and_the_role_is_unchanged(client_for, admin_member, organization):
    # given
    role = RoleFactory(organization=organization, permissions=[VIEW])
    before = role_rows()

    # when: a made-up codename, a malformed name, another app's and a platform permission
    response = client_for(admin_member).patch(
        detail_url(URL, role),
        {
            "name": "Renamed",
            "permissions": [
                CHANGE,
                "organizations.fly_department",
                "nonsense",
                "auth.add_user",
                "organizations.add_organization",
            ],
        },
        format="json",
    )

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "permissions": [
                "Unknown permission: auth.add_user.",
                "Unknown permission: nonsense.",
                "Unknown permission: organizations.add_organization.",
                "Unknown permission: organizations.fly_department.",
            ]
        }
    )
    assert role_rows() == before


def test_unknown_permission_codes_create_nothing(client_for, admin_member):
    before = role_rows()

    response = client_for(admin_member).post(
        URL, {"code": "clerk", "name": "Clerk", "permissions": ["organizations.fly_department"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"permissions": ["Unknown permission: organizations.fly_department."]})
    assert role_rows() == before


def test_an_inheritance_cycle_is_rejected(client_for, admin_member, organization):
    # given: a ← b ← c (c inherits from b, b from a)
    a = RoleFactory(organization=organization, code="a")
    b = RoleFactory(organization=organization, code="b", parent=a)
    c = RoleFactory(organization=organization, code="c", parent=b)
    before = role_rows()

    # when: a would inherit from c
    response = client_for(admin_member).patch(detail_url(URL, a), {"parent": c.pk}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"parent": ["This parent inherits from this role: that would make a cycle."]})
    assert role_rows() == before


def test_a_role_cannot_be_its_own_parent(client_for, admin_member, organization):
    role = RoleFactory(organization=organization)
    before = role_rows()

    response = client_for(admin_member).patch(detail_url(URL, role), {"parent": role.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["parent"] == [
        "This parent inherits from this role: that would make a cycle."
    ]
    assert role_rows() == before


def test_a_parent_from_another_organization_is_not_found(client_for, admin_member, other_organization):
    foreign = RoleFactory(organization=other_organization)
    before = role_rows()

    response = client_for(admin_member).post(
        URL, {"code": "clerk", "name": "Clerk", "parent": foreign.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"parent": [f'Invalid pk "{foreign.pk}" - object does not exist.']})
    assert role_rows() == before


def test_role_codes_are_unique_per_organization(client_for, admin_member, organization, other_organization):
    RoleFactory(organization=organization, code="clerk")
    RoleFactory(organization=other_organization, code="auditor_plus")
    client = client_for(admin_member)
    before = role_rows()

    taken = client.post(URL, {"code": "CLERK", "name": "Clerk again"}, format="json")
    assert taken.status_code == 400
    assert taken.json() == invalid({"non_field_errors": ["This organization already has a role with this code."]})
    assert role_rows() == before

    # a code used by another organization is free here
    assert client.post(URL, {"code": "auditor_plus", "name": "Auditor plus"}, format="json").status_code == 201


def test_a_member_without_the_permission_cannot_create_and_nothing_changes(client_for, member):
    before = role_rows()

    response = client_for(member).post(URL, {"code": "clerk", "name": "Clerk"}, format="json")

    assert response.status_code == 403
    assert response.json() == lacks_permission("rbac.add_role")
    assert role_rows() == before


# --- System roles --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body", "permission"),
    [
        ("patch", {"description": "Changed."}, "rbac.change_role"),
        ("put", {"code": "viewer", "name": "Reader"}, "rbac.change_role"),
        ("delete", None, "rbac.delete_role"),
    ],
)
def test_org_admins_cannot_change_or_delete_system_roles(client_for, admin_member, method, body, permission):
    before = role_rows()

    response = getattr(client_for(admin_member), method)(detail_url(URL, system_role("viewer")), body, format="json")

    assert response.status_code == 403
    assert response.json() == lacks_permission(permission, on_object=True)
    assert role_rows() == before


def test_a_superuser_edits_a_system_role(client_for, superuser, organization):
    viewer = system_role("viewer")

    response = client_for(superuser).patch(
        detail_url(URL, viewer), {"description": "Reads, never writes."}, format="json"
    )

    assert response.status_code == 200
    viewer.refresh_from_db()
    assert (viewer.description, viewer.is_system, viewer.updated_by) == ("Reads, never writes.", True, superuser)
    assert response.json() == role_body(viewer)


def test_a_superuser_still_cannot_delete_a_system_role_in_use(client_for, superuser, member):
    before = role_rows()

    response = client_for(superuser).delete(detail_url(URL, system_role("member")))

    assert response.status_code == 409
    assert response.json() == error("role_in_use", "This role is assigned to people; revoke the assignments first.")
    assert role_rows() == before


# --- Deleting ------------------------------------------------------------------------------------------------------


def test_a_role_with_active_assignments_is_409_and_stays(client_for, admin_member, organization):
    role = RoleFactory(organization=organization, permissions=[VIEW])
    holder_of(organization, role)
    before = role_rows()
    assignments = list(RoleAssignment.objects.order_by("pk").values())

    response = client_for(admin_member).delete(detail_url(URL, role))

    assert response.status_code == 409
    assert response.json() == error("role_in_use", "This role is assigned to people; revoke the assignments first.")
    assert role_rows() == before
    assert list(RoleAssignment.objects.order_by("pk").values()) == assignments


def test_a_role_others_inherit_from_is_409(client_for, admin_member, organization):
    parent = RoleFactory(organization=organization)
    RoleFactory(organization=organization, parent=parent)
    before = role_rows()

    response = client_for(admin_member).delete(detail_url(URL, parent))

    assert response.status_code == 409
    assert response.json() == error(
        "role_has_children", "Other roles inherit from this role; change their parent first."
    )
    assert role_rows() == before


def test_an_unused_role_is_deleted_with_its_inactive_assignments(client_for, admin_member, organization):
    role = RoleFactory(organization=organization, permissions=[VIEW])
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=role, is_active=False)

    response = client_for(admin_member).delete(detail_url(URL, role))

    assert response.status_code == 204
    assert not Role.objects.filter(pk=role.pk).exists()
    assert not RoleAssignment.objects.filter(role_id=role.pk).exists()


# --- No escalation -------------------------------------------------------------------------------------------------


def test_a_role_cannot_be_created_with_permissions_the_creator_lacks(client_for, role_manager):
    user, _role = role_manager
    before = role_rows()

    response = client_for(user).post(
        URL, {"code": "wrecker", "name": "Wrecker", "permissions": [VIEW, DELETE]}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert role_rows() == before


def test_a_role_cannot_inherit_permissions_the_creator_lacks(client_for, role_manager):
    user, _role = role_manager
    before = role_rows()

    response = client_for(user).post(
        URL, {"code": "deputy", "name": "Deputy", "parent": system_role("org_admin").pk}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert role_rows() == before


def test_a_role_with_only_permissions_the_creator_holds_is_created(client_for, role_manager, organization):
    user, _role = role_manager

    response = client_for(user).post(
        URL, {"code": "editor", "name": "Editor", "permissions": [VIEW, CHANGE]}, format="json"
    )

    assert response.status_code == 201
    assert own(Role.objects.get(organization=organization, code="editor")) == [CHANGE, VIEW]


@pytest.mark.parametrize(
    "change",
    [
        {"permissions": [*ROLE_MANAGER_PERMISSIONS, DELETE]},
        {"parent": "org_admin"},
    ],
    ids=["add a permission", "inherit from org_admin"],
)
def test_editing_my_own_role_to_gain_permissions_is_refused(client_for, role_manager, change):
    # given: my role lets me change roles, but I do not hold organizations.delete_department
    user, role = role_manager
    if "parent" in change:
        change = {"parent": system_role(change["parent"]).pk}
    before = role_rows()

    # when
    response = client_for(user).patch(detail_url(URL, role), change, format="json")

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert role_rows() == before


def test_removing_permissions_from_my_own_role_is_allowed(client_for, role_manager):
    user, role = role_manager
    kept = [name for name in ROLE_MANAGER_PERMISSIONS if name != CHANGE]

    response = client_for(user).patch(detail_url(URL, role), {"permissions": kept}, format="json")

    assert response.status_code == 200
    assert own(role) == sorted(kept)
