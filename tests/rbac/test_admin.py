"""Roles and role assignments in the admin: scoped by the engine, written through the services (no escalation)."""

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import User
from organizations.models import Organization
from rbac.models import Role, RoleAssignment, RolePermission
from tests.accounts.factories import UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, permission, system_role

pytestmark = pytest.mark.django_db

SYSTEM_ROLES = ["auditor", "manager", "member", "org_admin", "viewer"]


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _staff(organization: Organization, role: str | None = None, **user: Any) -> User:
    return MembershipFactory(organization=organization, role=role, user=UserFactory(is_staff=True, **user)).user


def _role_state() -> list[tuple]:
    roles = Role.objects.order_by("pk").values_list("pk", "organization_id", "code", "name", "parent_id")
    return [*roles, *RolePermission.objects.order_by("pk").values_list("role_id", "permission_id")]


def _assignment_state() -> list[tuple]:
    return list(
        RoleAssignment.objects.order_by("pk").values_list(
            "pk", "organization_id", "user_id", "role_id", "department_id", "is_active", "reason"
        )
    )


def _role_form(**fields: Any) -> dict[str, Any]:
    return {"description": "", "parent": "", "own_permissions": [], "_save": "Save", **fields}


def _assignment_form(**fields: Any) -> dict[str, Any]:
    empty = {"department": "", "valid_from_0": "", "valid_from_1": "", "valid_until_0": "", "valid_until_1": ""}
    return {**empty, "reason": "", "_save": "Save", **fields}


def _codes(client: Client, model: str, query: str = "") -> list[str]:
    response = client.get(reverse(f"admin:rbac_{model}_changelist") + query)
    assert response.status_code == 200
    return [str(obj.code if model == "role" else obj.pk) for obj in response.context["cl"].result_list]


@pytest.fixture
def acme_admin(organization) -> User:
    return _staff(organization, "org_admin", email="admin@acme.example")


@pytest.fixture
def roles(organization, other_organization) -> dict[str, Any]:
    return {
        "clerk": RoleFactory(
            organization=organization, code="clerk", name="Clerk", permissions=["organizations.view_department"]
        ),
        "globex_clerk": RoleFactory(organization=other_organization, code="globex_clerk", name="Globex clerk"),
    }


# --- Roles ------------------------------------------------------------------------------------------------------------


def test_a_superuser_sees_every_role(superuser, roles):
    # given / when
    codes = _codes(_signed_in(superuser), "role")

    # then: system roles first, then each organization's
    assert codes == [*SYSTEM_ROLES, "clerk", "globex_clerk"]


def test_an_organization_admin_sees_the_system_roles_and_their_organizations_own(acme_admin, roles):
    # given
    client = _signed_in(acme_admin)

    # when
    codes = _codes(client, "role")
    globex = client.get(reverse("admin:rbac_role_change", args=[roles["globex_clerk"].pk]))

    # then
    assert codes == [*SYSTEM_ROLES, "clerk"]
    assert (globex.status_code, globex["Location"]) == (302, reverse("admin:index"))


def test_staff_without_role_permissions_do_not_see_roles(organization, roles):
    # given: a member whose only role grants nothing about roles
    staff = _staff(organization)
    RoleAssignmentFactory(organization=organization, user=staff, role=roles["clerk"])

    # when
    response = _signed_in(staff).get(reverse("admin:rbac_role_changelist"))

    # then
    assert response.status_code == 403


def test_an_organization_admin_chooses_organization_and_parent_among_their_own(acme_admin, roles, organization):
    # given / when
    form = _signed_in(acme_admin).get(reverse("admin:rbac_role_add")).context["adminform"].form

    # then
    assert list(form.fields["organization"].queryset) == [organization]
    assert sorted(role.code for role in form.fields["parent"].queryset) == sorted([*SYSTEM_ROLES, "clerk"])


def test_an_organization_admin_creates_a_role_through_the_service(acme_admin, organization):
    # given
    data = _role_form(
        organization=organization.pk,
        code="Accountant",
        name="Accountant",
        parent=system_role("viewer").pk,
        own_permissions=[permission("organizations.change_department").pk, permission("rbac.view_role").pk],
    )

    # when
    response = _signed_in(acme_admin).post(reverse("admin:rbac_role_add"), data)

    # then
    assert response.status_code == 302
    role = Role.objects.get(organization=organization, code="accountant")
    assert (role.name, role.parent, role.is_system, role.created_by) == (
        "Accountant",
        system_role("viewer"),
        False,
        acme_admin,
    )
    assert sorted(role.permissions.values_list("codename", flat=True)) == ["change_department", "view_role"]
    assert LogEntry.objects.filter(object_id=str(role.pk)).count() == 1


def test_a_role_with_a_permission_one_lacks_is_refused(organization):
    # given: staff who may manage roles but not change departments
    staff = _staff(organization)
    own = RoleFactory(
        organization=organization,
        permissions=[
            "rbac.view_role",
            "rbac.add_role",
            "organizations.view_organization",
            "organizations.view_department",
        ],
    )
    RoleAssignmentFactory(organization=organization, user=staff, role=own)
    before = _role_state()
    url = reverse("admin:rbac_role_add")
    data = _role_form(
        organization=organization.pk,
        code="editor",
        name="Editor",
        own_permissions=[
            permission("organizations.view_department").pk,
            permission("organizations.change_department").pk,
        ],
    )

    # when
    response = _signed_in(staff).post(url, data)

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert _messages(response) == [
        "You cannot hand out permissions you do not hold here: organizations.change_department."
    ]
    assert _role_state() == before
    assert LogEntry.objects.count() == 0


def test_inheriting_from_a_role_with_more_permissions_is_refused(organization):
    # given
    staff = _staff(organization)
    own = RoleFactory(
        organization=organization, permissions=["rbac.view_role", "rbac.add_role", "organizations.view_organization"]
    )
    RoleAssignmentFactory(organization=organization, user=staff, role=own)
    before = _role_state()

    # when
    response = _signed_in(staff).post(
        reverse("admin:rbac_role_add"),
        _role_form(organization=organization.pk, code="boss", name="Boss", parent=system_role("org_admin").pk),
    )

    # then
    assert response.status_code == 302
    assert _messages(response)[0].startswith("You cannot hand out permissions you do not hold here: ")
    assert _role_state() == before


def test_one_cannot_widen_ones_own_role(organization):
    # given: staff who may change roles, editing the role they hold
    staff = _staff(organization)
    own = RoleFactory(
        organization=organization, code="editor", name="Editor", permissions=["rbac.view_role", "rbac.change_role"]
    )
    RoleAssignmentFactory(organization=organization, user=staff, role=own)
    before = _role_state()
    data = _role_form(
        code="editor",
        name="Editor",
        own_permissions=[
            permission("rbac.view_role").pk,
            permission("rbac.change_role").pk,
            permission("rbac.delete_role").pk,
        ],
    )

    # when
    response = _signed_in(staff).post(reverse("admin:rbac_role_change", args=[own.pk]), data)

    # then
    assert response.status_code == 302
    assert _messages(response) == ["You cannot hand out permissions you do not hold here: rbac.delete_role."]
    assert _role_state() == before


def test_an_organization_admin_narrows_a_role_of_their_organization(acme_admin, roles):
    # given
    clerk = roles["clerk"]

    # when
    response = _signed_in(acme_admin).post(
        reverse("admin:rbac_role_change", args=[clerk.pk]),
        _role_form(code="clerk", name="Senior clerk", own_permissions=[]),
    )

    # then
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert (clerk.name, clerk.updated_by, clerk.permissions.count()) == ("Senior clerk", acme_admin, 0)


def test_system_roles_are_read_only_for_an_organization_admin(acme_admin):
    # given
    viewer = system_role("viewer")
    before = _role_state()
    client = _signed_in(acme_admin)

    # when
    page = client.get(reverse("admin:rbac_role_change", args=[viewer.pk]))
    change = client.post(reverse("admin:rbac_role_change", args=[viewer.pk]), _role_form(code="viewer", name="Mine"))
    delete = client.post(reverse("admin:rbac_role_delete", args=[viewer.pk]), {"post": "yes"})

    # then
    assert (page.status_code, page.context["has_change_permission"], page.context["has_delete_permission"]) == (
        200,
        False,
        False,
    )
    assert "organizations.view_department" in page.content.decode()
    assert (change.status_code, delete.status_code) == (403, 403)
    assert _role_state() == before


def test_a_superuser_edits_a_system_role(superuser):
    # given
    auditor = system_role("auditor")
    kept = list(auditor.permissions.values_list("pk", flat=True))

    # when
    response = _signed_in(superuser).post(
        reverse("admin:rbac_role_change", args=[auditor.pk]),
        _role_form(code="auditor", name="Internal auditor", parent=system_role("viewer").pk, own_permissions=kept),
    )

    # then
    assert response.status_code == 302
    auditor.refresh_from_db()
    assert (auditor.name, auditor.is_system, sorted(auditor.permissions.values_list("pk", flat=True))) == (
        "Internal auditor",
        True,
        sorted(kept),
    )


def test_deleting_a_role_in_use_is_refused(acme_admin, roles, organization):
    # given
    clerk = roles["clerk"]
    RoleAssignmentFactory(organization=organization, user=MembershipFactory(organization=organization).user, role=clerk)
    before = _role_state()
    url = reverse("admin:rbac_role_delete", args=[clerk.pk])

    # when
    response = _signed_in(acme_admin).post(url, {"post": "yes"})

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert _messages(response) == ["This role is assigned to people; revoke the assignments first."]
    assert _role_state() == before


def test_deleting_an_unused_role(acme_admin, roles):
    # given / when
    response = _signed_in(acme_admin).post(reverse("admin:rbac_role_delete", args=[roles["clerk"].pk]), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert Role.objects.filter(pk=roles["clerk"].pk).exists() is False


# --- Role assignments -------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(organization) -> dict[str, Any]:
    """Acme: HQ → SALES → EU; a member in EU and one at HQ."""
    hq = DepartmentFactory(organization=organization, code="HQ")
    sales = DepartmentFactory(parent=hq, code="SALES")
    eu = DepartmentFactory(parent=sales, code="EU")
    return {
        "HQ": hq,
        "SALES": sales,
        "EU": eu,
        "eve": MembershipFactory(organization=organization, department=eu, user__email="eve@example.com").user,
        "hal": MembershipFactory(organization=organization, department=hq, user__email="hal@example.com").user,
    }


def test_an_organization_admin_sees_only_their_organizations_assignments(acme_admin, organization, other_organization):
    # given
    globex_viewer = MembershipFactory(organization=other_organization, role="viewer")
    client = _signed_in(acme_admin)

    # when
    rows = _codes(client, "roleassignment")
    content = client.get(reverse("admin:rbac_roleassignment_changelist")).content.decode()

    # then
    assert rows == [str(RoleAssignment.objects.get(user=acme_admin).pk)]
    assert "Globex" not in content
    assert globex_viewer.user.email not in content


def test_assignments_filter_by_organization_role_department_and_state(superuser, organization, tree):
    # given
    manager = system_role("manager")
    active = RoleAssignmentFactory(organization=organization, user=tree["eve"], role=manager, department=tree["EU"])
    suspended = RoleAssignmentFactory(organization=organization, user=tree["hal"], role=manager, is_active=False)
    viewer = RoleAssignmentFactory(organization=organization, user=tree["hal"], role=system_role("viewer"))
    client = _signed_in(superuser)

    # when
    by_state = _codes(client, "roleassignment", "?is_active__exact=0")
    by_role = _codes(client, "roleassignment", f"?role__id__exact={manager.pk}")
    by_department = _codes(client, "roleassignment", f"?department__id__exact={tree['EU'].pk}")
    by_organization = _codes(client, "roleassignment", f"?organization__id__exact={organization.pk}")

    # then
    assert by_state == [str(suspended.pk)]
    assert by_role == [str(active.pk), str(suspended.pk)]
    assert by_department == [str(active.pk)]
    assert by_organization == [str(active.pk), str(suspended.pk), str(viewer.pk)]


def test_an_organization_admin_assigns_a_role_through_the_service(acme_admin, organization, tree):
    # given
    data = _assignment_form(
        organization=organization.pk,
        user=tree["eve"].pk,
        role=system_role("manager").pk,
        department=tree["SALES"].pk,
        valid_until_0="2030-12-31",
        valid_until_1="18:00:00",
        reason="runs sales",
    )

    # when
    response = _signed_in(acme_admin).post(reverse("admin:rbac_roleassignment_add"), data)

    # then
    assert response.status_code == 302
    assignment = RoleAssignment.objects.get(user=tree["eve"])
    assert (
        assignment.role,
        assignment.department,
        assignment.is_active,
        assignment.reason,
        assignment.granted_by,
        assignment.valid_until.isoformat(),
    ) == (system_role("manager"), tree["SALES"], True, "runs sales", acme_admin, "2030-12-31T18:00:00+00:00")


def test_a_duplicate_assignment_is_refused(acme_admin, organization, tree):
    # given
    RoleAssignmentFactory(organization=organization, user=tree["eve"], role=system_role("viewer"))
    before = _assignment_state()

    # when
    response = _signed_in(acme_admin).post(
        reverse("admin:rbac_roleassignment_add"),
        _assignment_form(organization=organization.pk, user=tree["eve"].pk, role=system_role("viewer").pk),
    )

    # then: the form comes back with the constraint's message
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "This person already has this role for this scope."
    ]
    assert _assignment_state() == before
    assert LogEntry.objects.count() == 0


def test_assigning_a_role_to_someone_outside_the_organization_is_refused(acme_admin, organization, other_organization):
    # given
    outsider = MembershipFactory(organization=other_organization).user
    before = _assignment_state()

    # when
    response = _signed_in(acme_admin).post(
        reverse("admin:rbac_roleassignment_add"),
        _assignment_form(organization=organization.pk, user=outsider.pk, role=system_role("viewer").pk),
    )

    # then: not even a choice
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["user"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert _assignment_state() == before


def test_assigning_a_role_where_one_only_views_is_refused(acme_admin, other_organization):
    # given: Acme's administrator is a mere viewer in Globex, and may see Globex's people and roles
    MembershipFactory(organization=other_organization, user=acme_admin, role="viewer")
    globex_member = MembershipFactory(organization=other_organization).user
    before = _assignment_state()

    # when
    response = _signed_in(acme_admin).post(
        reverse("admin:rbac_roleassignment_add"),
        _assignment_form(organization=other_organization.pk, user=globex_member.pk, role=system_role("viewer").pk),
    )

    # then: the service refuses (no rbac.add_roleassignment in Globex), shown as an admin error; nothing is saved
    assert response.status_code == 302
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == ["You cannot hand out permissions you do not hold here: rbac.add_roleassignment."]
    assert _assignment_state() == before
    assert LogEntry.objects.count() == 0


def test_suspending_and_revoking_an_assignment(acme_admin, organization, tree):
    # given
    assignment = RoleAssignmentFactory(organization=organization, user=tree["eve"], role=system_role("viewer"))
    client = _signed_in(acme_admin)

    # when
    suspend = client.post(
        reverse("admin:rbac_roleassignment_change", args=[assignment.pk]),
        _assignment_form(reason="on leave"),
    )
    assignment.refresh_from_db()
    state = (assignment.is_active, assignment.reason, assignment.updated_by)
    revoke = client.post(reverse("admin:rbac_roleassignment_delete", args=[assignment.pk]), {"post": "yes"})

    # then: an unchecked box is is_active=False
    assert (suspend.status_code, revoke.status_code) == (302, 302)
    assert state == (False, "on leave", acme_admin)
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists() is False


def test_a_department_manager_sees_and_chooses_only_their_subtree(organization, tree):
    # given: Max manages SALES; Eve (EU) and Hal (HQ) hold department-scoped viewer roles
    max_ = _staff(organization, email="max@example.com")
    RoleAssignmentFactory(organization=organization, user=max_, role=system_role("manager"), department=tree["SALES"])
    in_eu = RoleAssignmentFactory(
        organization=organization, user=tree["eve"], role=system_role("viewer"), department=tree["EU"]
    )
    RoleAssignmentFactory(
        organization=organization, user=tree["hal"], role=system_role("viewer"), department=tree["HQ"]
    )
    own = RoleAssignment.objects.get(user=max_)
    client = _signed_in(max_)

    # when
    rows = _codes(client, "roleassignment")
    departments = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "rbac", "model_name": "roleassignment", "field_name": "department", "term": ""},
    ).json()["results"]
    people = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "rbac", "model_name": "roleassignment", "field_name": "user", "term": "example.com"},
    ).json()["results"]

    # then
    assert sorted(rows) == sorted([str(own.pk), str(in_eu.pk)])
    assert [result["id"] for result in departments] == [str(tree["SALES"].pk), str(tree["EU"].pk)]
    assert [result["text"] for result in people] == ["eve@example.com"]  # Max himself is filed under no department


def test_a_department_manager_cannot_add_assignments(organization, tree):
    # given: the manager role does not include rbac.add_roleassignment
    max_ = _staff(organization)
    RoleAssignmentFactory(organization=organization, user=max_, role=system_role("manager"), department=tree["SALES"])
    before = _assignment_state()

    # when
    response = _signed_in(max_).post(
        reverse("admin:rbac_roleassignment_add"),
        _assignment_form(organization=organization.pk, user=tree["eve"].pk, role=system_role("viewer").pk),
    )

    # then
    assert response.status_code == 403
    assert _assignment_state() == before
