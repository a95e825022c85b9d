"""Management commands of the rbac app: assign_role, revoke_role, sync_system_roles and list_permissions."""

import datetime
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from rbac import engine
from rbac.models import Role, RoleAssignment, RolePermission
from tests.accounts.factories import UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, permission, system_role

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    """Run a command that must fail; its error message."""
    with pytest.raises(CommandError) as error:
        run(*args)
    return str(error.value)


def assignments() -> list[tuple]:
    return list(
        RoleAssignment.objects.order_by("pk").values_list(
            "organization_id", "user_id", "role_id", "department_id", "valid_from", "valid_until", "is_active", "reason"
        )
    )


@pytest.fixture
def ann(organization):
    """An active member of Acme without any role."""
    return MembershipFactory(organization=organization, user=UserFactory(email="ann@example.com")).user


@pytest.fixture
def sales(organization):
    return DepartmentFactory(organization=organization, code="SALES", name="Sales")


# --- assign_role ------------------------------------------------------------------------------------------------------


def test_assign_role_gives_a_system_role_organization_wide(organization, ann):
    # when
    output = run("assign_role", "--organization=acme", "--user=Ann@Example.com", "--role=viewer", "--reason=audit")

    # then
    assignment = RoleAssignment.objects.get()
    assert output == f"Assigned viewer to ann@example.com in acme (organization-wide); assignment id {assignment.pk}.\n"
    assert assignments() == [(organization.pk, ann.pk, system_role("viewer").pk, None, None, None, True, "audit")]
    assert assignment.granted_by is None
    assert engine.has_perm(ann, "organizations.view_membership", MembershipFactory(organization=organization)) is True


def test_assign_role_for_a_department_and_a_period(organization, ann, sales):
    # given: Acme works in Paris time; a date without an offset is read there
    organization.time_zone = "Europe/Paris"
    organization.save()

    # when
    output = run(
        "assign_role",
        "--organization",
        "acme",
        "--user",
        "ann@example.com",
        "--role",
        "MANAGER",
        "--department",
        "sales",
        "--valid-from",
        "2030-01-01",
        "--valid-until",
        "2030-06-30T18:00:00+00:00",
    )

    # then
    assignment = RoleAssignment.objects.get()
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert output == (
        "Assigned manager to ann@example.com in acme (for department SALES and its sub-departments, "
        "valid from 2030-01-01T00:00:00+01:00 until 2030-06-30T18:00:00+00:00); "
        f"assignment id {assignment.pk}.\n"
    )
    assert assignments() == [
        (
            organization.pk,
            ann.pk,
            system_role("manager").pk,
            sales.pk,
            datetime.datetime(2030, 1, 1, tzinfo=paris),
            datetime.datetime(2030, 6, 30, 18, tzinfo=datetime.UTC),
            True,
            "",
        )
    ]


def test_assign_role_prefers_the_organizations_own_role_over_a_system_role_with_the_same_code(organization, ann):
    # given
    own = RoleFactory(organization=organization, code="auditor", name="Acme auditor")

    # when
    run("assign_role", "--organization=acme", "--user=ann@example.com", "--role=auditor")

    # then
    assert RoleAssignment.objects.get().role == own


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--organization=nope"], "No organization has the slug 'nope'."),
        (["--user=nobody@example.com"], "No user has the email address 'nobody@example.com'."),
        (["--role=boss"], "Neither acme nor the system roles have a role with the code 'boss'."),
        (["--department=NOPE"], "acme has no department with the code 'NOPE'."),
        (
            ["--valid-from=next tuesday"],
            "--valid-from: 'next tuesday' is not an ISO 8601 date or date-time (e.g. 2025-01-31T09:00+01:00).",
        ),
        (
            ["--valid-until=2030-13-01"],
            "--valid-until: '2030-13-01' is not an ISO 8601 date or date-time (e.g. 2025-01-31T09:00+01:00).",
        ),
        (
            ["--valid-from=2030-02-01", "--valid-until=2030-01-01"],
            "valid_until: The end of validity must come after its start.",
        ),
    ],
    ids=[
        "unknown-organization",
        "unknown-user",
        "unknown-role",
        "unknown-department",
        "bad-date",
        "bad-month",
        "period",
    ],
)
def test_assign_role_refuses_bad_input(organization, ann, sales, arguments, message):
    # given
    defaults = {"--organization": "acme", "--user": "ann@example.com", "--role": "viewer"}
    given = {argument.split("=", 1)[0] for argument in arguments}
    command = [f"{name}={value}" for name, value in defaults.items() if name not in given] + arguments

    # when
    error = refused("assign_role", *command)

    # then
    assert error == message
    assert assignments() == []


def test_assign_role_refuses_a_role_of_another_organization(organization, other_organization, ann):
    # given
    RoleFactory(organization=other_organization, code="globex_clerk")

    # when
    error = refused("assign_role", "--organization=acme", "--user=ann@example.com", "--role=globex_clerk")

    # then
    assert error == "Neither acme nor the system roles have a role with the code 'globex_clerk'."
    assert assignments() == []


def test_assign_role_refuses_a_department_of_another_organization(organization, other_organization, ann):
    # given
    DepartmentFactory(organization=other_organization, code="GHQ")

    # when
    error = refused("assign_role", "--organization=acme", "--user=ann@example.com", "--role=viewer", "--department=GHQ")

    # then
    assert error == "acme has no department with the code 'GHQ'."
    assert assignments() == []


@pytest.mark.parametrize("is_active", [None, False], ids=["never-a-member", "former-member"])
def test_assign_role_refuses_someone_who_is_not_an_active_member(organization, is_active):
    # given
    user = UserFactory(email="bob@example.com")
    if is_active is not None:
        MembershipFactory(organization=organization, user=user, is_active=is_active)

    # when
    error = refused("assign_role", "--organization=acme", "--user=bob@example.com", "--role=viewer")

    # then
    assert error == "user: The user is not an active member of the organization."
    assert assignments() == []


def test_assign_role_refuses_a_duplicate_assignment(organization, ann):
    # given
    RoleAssignmentFactory(organization=organization, user=ann, role=system_role("viewer"))
    before = assignments()

    # when
    error = refused("assign_role", "--organization=acme", "--user=ann@example.com", "--role=viewer")

    # then
    assert error == "This person already has this role for this scope."
    assert assignments() == before


def test_the_same_role_for_another_department_is_not_a_duplicate(organization, ann, sales):
    # given
    RoleAssignmentFactory(organization=organization, user=ann, role=system_role("manager"))

    # when
    run("assign_role", "--organization=acme", "--user=ann@example.com", "--role=manager", "--department=SALES")

    # then
    assert list(RoleAssignment.objects.order_by("pk").values_list("department__code", flat=True)) == [None, "SALES"]


# --- revoke_role ------------------------------------------------------------------------------------------------------


def test_revoke_role_takes_the_organization_wide_role_away(organization, ann, sales):
    # given: the same role organization-wide and for SALES
    viewer = system_role("viewer")
    RoleAssignmentFactory(organization=organization, user=ann, role=viewer)
    kept = RoleAssignmentFactory(organization=organization, user=ann, role=viewer, department=sales)

    # when
    output = run("revoke_role", "--organization=acme", "--user=ann@example.com", "--role=viewer")

    # then
    assert output == "Revoked viewer from ann@example.com in acme (organization-wide).\n"
    assert list(RoleAssignment.objects.values_list("pk", flat=True)) == [kept.pk]


def test_revoke_role_for_a_department(organization, ann, sales):
    # given
    RoleAssignmentFactory(organization=organization, user=ann, role=system_role("manager"), department=sales)

    # when
    output = run("revoke_role", "--organization=acme", "--user=ann@example.com", "--role=manager", "--department=SALES")

    # then
    assert output == "Revoked manager from ann@example.com in acme (for department SALES and its sub-departments).\n"
    assert assignments() == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--organization=nope"], "No organization has the slug 'nope'."),
        (["--user=nobody@example.com"], "No user has the email address 'nobody@example.com'."),
        (["--role=boss"], "Neither acme nor the system roles have a role with the code 'boss'."),
        (["--department=NOPE"], "acme has no department with the code 'NOPE'."),
        (["--role=auditor"], "ann@example.com does not hold auditor in acme (organization-wide)."),
        (
            ["--department=SALES"],
            "ann@example.com does not hold viewer in acme (for department SALES and its sub-departments).",
        ),
    ],
    ids=["unknown-organization", "unknown-user", "unknown-role", "unknown-department", "not-held", "other-scope"],
)
def test_revoke_role_refuses_bad_input(organization, ann, sales, arguments, message):
    # given: Ann is a viewer organization-wide
    RoleAssignmentFactory(organization=organization, user=ann, role=system_role("viewer"))
    before = assignments()
    defaults = {"--organization": "acme", "--user": "ann@example.com", "--role": "viewer"}
    given = {argument.split("=", 1)[0] for argument in arguments}
    command = [f"{name}={value}" for name, value in defaults.items() if name not in given] + arguments

    # when
    error = refused("revoke_role", *command)

    # then
    assert error == message
    assert assignments() == before


def test_revoke_role_does_not_reach_another_organization(organization, other_organization, ann):
    # given: Ann is a viewer in Globex, not in Acme
    MembershipFactory(organization=other_organization, user=ann, role="viewer")
    before = assignments()

    # when
    error = refused("revoke_role", "--organization=acme", "--user=ann@example.com", "--role=viewer")

    # then
    assert error == "ann@example.com does not hold viewer in acme (organization-wide)."
    assert assignments() == before


# --- sync_system_roles ------------------------------------------------------------------------------------------------


def role_state() -> list[tuple]:
    return list(
        Role.objects.filter(organization__isnull=True)
        .order_by("code")
        .values_list("code", "name", "parent__code", "is_system")
    )


def test_sync_system_roles_changes_nothing_when_in_step():
    # given
    before = role_state()
    links = set(RolePermission.objects.values_list("role_id", "permission_id"))

    # when
    output = run("sync_system_roles")

    # then
    assert output == "System roles in step: 5 roles, 0 created, 0 updated; 0 permissions added, 0 removed.\n"
    assert role_state() == before
    assert set(RolePermission.objects.values_list("role_id", "permission_id")) == links


def test_sync_system_roles_repairs_drifted_roles():
    # given: a renamed role, a lost permission, an extra permission and a deleted role
    viewer = system_role("viewer")
    Role.objects.filter(pk=system_role("member").pk).update(name="Renamed")
    RolePermission.objects.filter(role=viewer, permission=permission("organizations.view_department")).delete()
    RolePermission.objects.create(role=viewer, permission=permission("organizations.delete_department"))
    auditor = system_role("auditor")
    RolePermission.objects.filter(role=auditor).delete()
    auditor.delete()

    # when
    output = run("sync_system_roles")

    # then
    # (the re-created auditor gets audit.view_history back, the viewer its lost permission)
    assert output == "System roles in step: 5 roles, 1 created, 1 updated; 2 permissions added, 1 removed.\n"
    assert role_state() == [
        ("auditor", "Auditor", "viewer", True),
        ("manager", "Manager", "member", True),
        ("member", "Member", "viewer", True),
        ("org_admin", "Organization administrator", "manager", True),
        ("viewer", "Viewer", None, True),
    ]
    viewer_permissions = set(RolePermission.objects.filter(role=viewer).values_list("permission__codename", flat=True))
    assert "view_department" in viewer_permissions
    assert "delete_department" not in viewer_permissions


def test_sync_system_roles_makes_everyone_recompute_their_permissions(organization):
    # given: Ann's permissions are cached, then her assignment is switched off behind the signals' back
    ann = MembershipFactory(organization=organization, role="viewer").user
    department = DepartmentFactory(organization=organization)
    assert engine.has_perm(ann, "organizations.view_department", department) is True
    RoleAssignment.objects.filter(user=ann).update(is_active=False)
    ann = type(ann).objects.get(pk=ann.pk)  # a new request: no per-request memo
    assert engine.has_perm(ann, "organizations.view_department", department) is True

    # when
    run("sync_system_roles")

    # then
    ann = type(ann).objects.get(pk=ann.pk)
    assert engine.has_perm(ann, "organizations.view_department", department) is False


# --- list_permissions -------------------------------------------------------------------------------------------------

RBAC_CATALOG = [
    "rbac.add_role               Can add role",
    "rbac.add_roleassignment     Can add role assignment",
    "rbac.add_rolepermission     Can add role permission",
    "rbac.change_role            Can change role",
    "rbac.change_roleassignment  Can change role assignment",
    "rbac.change_rolepermission  Can change role permission",
    "rbac.delete_role            Can delete role",
    "rbac.delete_roleassignment  Can delete role assignment",
    "rbac.delete_rolepermission  Can delete role permission",
    "rbac.view_role              Can view role",
    "rbac.view_roleassignment    Can view role assignment",
    "rbac.view_rolepermission    Can view role permission",
    "12 permissions.",
]


def test_list_permissions_of_one_app():
    # when
    output = run("list_permissions", "--app=rbac")

    # then
    assert output.splitlines() == RBAC_CATALOG


def test_list_permissions_lists_the_whole_catalog_and_marks_platform_permissions():
    # when
    lines = run("list_permissions").splitlines()

    # then
    catalog = Permission.objects.filter(content_type__app_label__in=["audit", "organizations", "rbac", "tasks"])
    assert len(lines) == catalog.count() + 1
    assert lines[-1] == f"{catalog.count()} permissions."
    assert {line.split()[0] for line in lines[:-1]} >= {"organizations.manage_members", "rbac.view_role"}
    assert [line.split()[0] for line in lines if line.endswith("(platform: superusers only)")] == [
        "organizations.add_organization",
        "organizations.delete_organization",
    ]
    assert not any(line.startswith("accounts.") for line in lines)


def test_list_permissions_of_a_system_role_says_where_each_comes_from():
    # when
    output = run("list_permissions", "--role=manager", "--app=organizations")

    # then
    assert output.splitlines() == [
        "manager (Manager, system role): 10 permissions",
        "  organizations.add_department                        own",
        "  organizations.change_department                     own",
        "  organizations.change_membership                     own",
        "  organizations.manage_members                        own",
        "  organizations.view_department                       inherited from viewer",
        "  organizations.view_departmentgroupobjectpermission  inherited from viewer",
        "  organizations.view_departmentuserobjectpermission   inherited from viewer",
        "  organizations.view_invitation                       inherited from viewer",
        "  organizations.view_membership                       inherited from viewer",
        "  organizations.view_organization                     inherited from viewer",
    ]


def test_list_permissions_of_an_organizations_role_through_two_parents(organization):
    # given: clerk → team_lead → system member → system viewer
    team_lead = RoleFactory(
        organization=organization,
        code="team_lead",
        name="Team lead",
        parent=system_role("member"),
        permissions=["organizations.change_department", "rbac.view_role"],
    )
    RoleFactory(
        organization=organization,
        code="clerk",
        name="Clerk",
        parent=team_lead,
        permissions=["organizations.add_membership"],
    )

    # when
    output = run("list_permissions", "--organization=acme", "--role=clerk", "--app=rbac")
    everything = run("list_permissions", "--organization=acme", "--role=CLERK").splitlines()

    # then: the nearest holder is named (rbac.view_role is in team_lead and in viewer)
    assert output.splitlines() == [
        "clerk (Clerk, acme): 3 permissions",
        "  rbac.view_role            inherited from team_lead",
        "  rbac.view_roleassignment  inherited from viewer",
        "  rbac.view_rolepermission  inherited from viewer",
    ]
    # own 1, team_lead 2, member 6 (tasks), viewer every view permission of the catalog apps but history
    viewer_count = Permission.objects.filter(
        content_type__app_label__in=["audit", "organizations", "rbac", "tasks"], codename__startswith="view_"
    ).exclude(codename="view_history")
    assert everything[0] == f"clerk (Clerk, acme): {1 + 1 + 6 + viewer_count.count()} permissions"
    assert [line.split()[-1] for line in everything[1:]].count("own") == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--app=nope"], "No installed app has the label 'nope'."),
        (["--app=accounts"], "accounts is not in the permission catalog (audit, organizations, rbac, tasks)."),
        (["--organization=acme"], "--organization goes with --role: name the role to list."),
        (["--role=boss"], "No system role has the code 'boss'."),
        (["--role=boss", "--organization=acme"], "Neither acme nor the system roles have a role with the code 'boss'."),
        (["--role=viewer", "--organization=nope"], "No organization has the slug 'nope'."),
    ],
    ids=["unknown-app", "app-outside-the-catalog", "organization-alone", "unknown-system-role", "unknown-role", "org"],
)
def test_list_permissions_refuses_bad_input(organization, arguments, message):
    # when
    error = refused("list_permissions", *arguments)

    # then
    assert error == message


def test_list_permissions_does_not_show_another_organizations_role(organization, other_organization):
    # given
    RoleFactory(organization=other_organization, code="globex_clerk")

    # when
    error = refused("list_permissions", "--organization=acme", "--role=globex_clerk")

    # then
    assert error == "Neither acme nor the system roles have a role with the code 'globex_clerk'."
