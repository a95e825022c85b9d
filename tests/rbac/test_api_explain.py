"""/api/v1/organizations/{slug}/explain/: whether a member holds a permission, and why (or why not)."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import User
from organizations.models import Department
from rbac import engine, explain
from rbac.models import Role, RoleAssignment
from tests.accounts.factories import UserFactory
from tests.api_helpers import NOT_FOUND, invalid, lacks_permission
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/organizations/acme/explain/"
VIEW = "organizations.view_department"
CHANGE = "organizations.change_department"
DELETE = "organizations.delete_department"
NOW = timezone.now()


def ask(client: Any, user: User | int, permission: str, obj: Department | None = None, **extra: Any) -> Any:
    query: dict[str, Any] = {"user": user.pk if isinstance(user, User) else user, "permission": permission}
    if obj is not None:
        query |= {"object_type": "organizations.department", "object_id": obj.pk}
    return client.get(f"{URL}?{urlencode(query | extra)}")


def role_ref(role: Any) -> dict[str, Any]:
    return {"id": role.pk, "code": role.code, "name": role.name}


def reason(kind: str, grants: bool, message: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "grants": grants,
        "message": message,
        "assignment": None,
        "role": None,
        "inherited_from": None,
        "inheritance": [],
        "department": None,
        "group": None,
        "object_id": None,
        **fields,
    }


def role_reason(
    kind: str,
    grants: bool,
    message: str,
    assignment: RoleAssignment,
    chain: list[Any],
    department: Department | None = None,
) -> dict[str, Any]:
    return reason(
        kind,
        grants,
        message,
        assignment=assignment.pk,
        role=role_ref(chain[0]),
        inherited_from=role_ref(chain[-1]) if len(chain) > 1 else None,
        inheritance=[role.code for role in chain],
        department={"id": department.pk, "code": department.code, "path": department.path} if department else None,
    )


def assignment_of(user: User, role: Role) -> RoleAssignment:
    return RoleAssignment.objects.get(user=user, role=role)


@pytest.fixture
def finance_manager(organization, tree) -> User:
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])
    return user


@pytest.fixture
def bare_member(organization) -> User:
    """A member without any role."""
    return MembershipFactory(organization=organization).user


# --- Why yes -------------------------------------------------------------------------------------------------------


def test_allowed_through_a_system_role_inherited_from_its_parent(client_for, admin_member, member):
    response = ask(client_for(admin_member), member, VIEW)

    assert response.status_code == 200
    assignment = assignment_of(member, system_role("member"))
    assert response.json() == {
        "allowed": True,
        "reasons": [
            role_reason(
                "role",
                True,
                f"Assignment {assignment.pk} gives role member, which inherits it from viewer, organization-wide.",
                assignment,
                [system_role("member"), system_role("viewer")],
            )
        ],
    }


def test_allowed_through_three_levels_of_inheritance(client_for, admin_member, organization, bare_member):
    # given: c inherits from b, b from a; only a carries the permission
    a = RoleFactory(organization=organization, code="a", permissions=[DELETE])
    b = RoleFactory(organization=organization, code="b", parent=a)
    c = RoleFactory(organization=organization, code="c", parent=b)
    assignment = RoleAssignmentFactory(organization=organization, user=bare_member, role=c)

    response = ask(client_for(admin_member), bare_member, DELETE)

    assert response.json() == {
        "allowed": True,
        "reasons": [
            role_reason(
                "role",
                True,
                f"Assignment {assignment.pk} gives role c, which inherits it from a, organization-wide.",
                assignment,
                [c, b, a],
            )
        ],
    }


def test_a_department_scoped_assignment_covers_its_subtree(client_for, admin_member, finance_manager, tree):
    assignment = assignment_of(finance_manager, system_role("manager"))

    response = ask(client_for(admin_member), finance_manager, CHANGE, tree["AP"])

    assert response.json() == {
        "allowed": True,
        "reasons": [
            role_reason(
                "role",
                True,
                f"Assignment {assignment.pk} gives role manager, for department FIN and its sub-departments.",
                assignment,
                [system_role("manager")],
                tree["FIN"],
            )
        ],
    }


def test_without_an_object_a_department_scoped_assignment_counts(client_for, admin_member, finance_manager, tree):
    response = ask(client_for(admin_member), finance_manager, CHANGE)

    assert response.json()["allowed"] is True
    assert [item["kind"] for item in response.json()["reasons"]] == ["role"]


def test_allowed_through_object_grants_to_the_user_and_to_a_group(client_for, admin_member, bare_member, tree):
    # given: a grant on ENG to the user, and one to a group they are in
    auditors = Group.objects.create(name="auditors")
    bare_member.groups.add(auditors)
    assign_perm(VIEW, bare_member, tree["ENG"])
    assign_perm(VIEW, auditors, tree["ENG"])

    response = ask(client_for(admin_member), bare_member, VIEW, tree["ENG"])

    assert response.json() == {
        "allowed": True,
        "reasons": [
            reason(
                "user_grant", True, f"A grant on department {tree['ENG'].pk} to the user.", object_id=tree["ENG"].pk
            ),
            reason(
                "group_grant",
                True,
                f"A grant on department {tree['ENG'].pk} to the group auditors.",
                group={"id": auditors.pk, "name": "auditors"},
                object_id=tree["ENG"].pk,
            ),
        ],
    }


def test_without_an_object_a_grant_on_any_department_counts(client_for, admin_member, bare_member, tree):
    assign_perm(VIEW, bare_member, tree["AP"])

    response = ask(client_for(admin_member), bare_member, VIEW)

    assert response.json() == {
        "allowed": True,
        "reasons": [
            reason("user_grant", True, f"A grant on department {tree['AP'].pk} to the user.", object_id=tree["AP"].pk)
        ],
    }


def test_someone_outside_the_organization_holds_nothing_here(organization, outsider, tree):
    # the API refuses to ask about non-members; the function itself still answers
    assign_perm(VIEW, outsider, tree["HQ"])

    verdict = explain.explain(user=outsider, organization=organization, permission=VIEW, obj=tree["HQ"])

    assert verdict == explain.Explanation(
        False, (explain.Reason("not_member", False, "The user is not an active member of the organization."),)
    )


def test_a_superuser_member_holds_everything(client_for, admin_member, organization):
    operator = MembershipFactory(organization=organization, user=UserFactory(is_superuser=True)).user

    response = ask(client_for(admin_member), operator, DELETE)

    assert response.json() == {
        "allowed": True,
        "reasons": [reason("superuser", True, "Platform operators hold every permission.")],
    }


# --- Why not -------------------------------------------------------------------------------------------------------


def test_a_department_scoped_assignment_does_not_reach_outside_its_subtree(
    client_for, admin_member, finance_manager, tree
):
    assignment = assignment_of(finance_manager, system_role("manager"))

    response = ask(client_for(admin_member), finance_manager, CHANGE, tree["ENG"])

    assert response.json() == {
        "allowed": False,
        "reasons": [
            role_reason(
                "out_of_scope",
                False,
                f"Assignment {assignment.pk} gives role manager, for department FIN and its sub-departments, "
                "but the object is outside that subtree.",
                assignment,
                [system_role("manager")],
                tree["FIN"],
            )
        ],
    }


@pytest.mark.parametrize(
    ("fields", "kind", "ending"),
    [
        ({"is_active": False}, "assignment_inactive", "but it is not active."),
        ({"valid_from": NOW + datetime.timedelta(days=1)}, "assignment_not_yet_valid", "but it is not valid yet."),
        (
            {"valid_from": NOW - datetime.timedelta(days=9), "valid_until": NOW - datetime.timedelta(days=1)},
            "assignment_expired",
            "but it has expired.",
        ),
    ],
)
def test_assignments_not_in_force_are_named_but_grant_nothing(
    client_for, admin_member, organization, bare_member, fields, kind, ending
):
    role = RoleFactory(organization=organization, code="editor", permissions=[CHANGE])
    assignment = RoleAssignmentFactory(organization=organization, user=bare_member, role=role, **fields)

    response = ask(client_for(admin_member), bare_member, CHANGE)

    assert response.json() == {
        "allowed": False,
        "reasons": [
            role_reason(
                kind,
                False,
                f"Assignment {assignment.pk} gives role editor, organization-wide, {ending}",
                assignment,
                [role],
            )
        ],
    }


def test_an_assignment_to_a_deleted_department_grants_nothing(
    client_for, admin_member, organization, bare_member, tree
):
    assignment = RoleAssignmentFactory(
        organization=organization, user=bare_member, role=system_role("viewer"), department=tree["ENG"]
    )
    Department.objects.filter(pk=tree["ENG"].pk).update(deleted_at=NOW)

    response = ask(client_for(admin_member), bare_member, VIEW)

    assert response.json()["allowed"] is False
    assert [(item["kind"], item["assignment"]) for item in response.json()["reasons"]] == [
        ("department_deleted", assignment.pk)
    ]


def test_a_grant_on_another_object_does_not_count(client_for, admin_member, bare_member, tree):
    assign_perm(VIEW, bare_member, tree["FIN"])

    response = ask(client_for(admin_member), bare_member, VIEW, tree["ENG"])

    assert response.json() == {
        "allowed": False,
        "reasons": [reason("no_permission", False, f"No role assignment or grant gives {VIEW} here.")],
    }


def test_nothing_at_all(client_for, admin_member, member):
    response = ask(client_for(admin_member), member, DELETE)

    assert response.json() == {
        "allowed": False,
        "reasons": [reason("no_permission", False, f"No role assignment or grant gives {DELETE} here.")],
    }


# --- Who may ask, about whom and what ------------------------------------------------------------------------------


def test_a_member_who_may_not_read_assignments_gets_403(client_for, bare_member, member):
    response = ask(client_for(bare_member), member, VIEW)

    assert response.status_code == 403
    assert response.json() == lacks_permission("rbac.view_roleassignment")


def test_reading_assignments_in_one_department_is_not_enough(client_for, organization, member, tree):
    reader = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=reader, role=system_role("viewer"), department=tree["FIN"])

    response = ask(client_for(reader), member, VIEW)

    assert response.status_code == 403
    assert response.json() == lacks_permission("rbac.view_roleassignment")


def test_a_member_of_another_organization_gets_404(client_for, outsider, member):
    response = ask(client_for(outsider), member, VIEW)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("who", ["member of globex", "no membership", "ended membership", "missing"])
def test_the_person_asked_about_must_be_an_active_member(client_for, admin_member, organization, outsider, who):
    user_id = {
        "member of globex": lambda: outsider.pk,
        "no membership": lambda: UserFactory().pk,
        "ended membership": lambda: MembershipFactory(organization=organization, is_active=False).user.pk,
        "missing": lambda: 999_999,
    }[who]()

    response = ask(client_for(admin_member), user_id, VIEW)

    assert response.status_code == 400
    assert response.json() == invalid({"user": [f"User {user_id} is not an active member here."]})


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({}, {"user": ["This field is required."], "permission": ["This field is required."]}),
        (
            {"permission": "organizations.fly_department"},
            {"permission": ["Unknown permission: organizations.fly_department."]},
        ),
        (
            {"permission": "organizations.add_organization"},
            {"permission": ["Unknown permission: organizations.add_organization."]},
        ),
        (
            {"permission": VIEW, "object_type": "organizations.department"},
            {"object_id": ["Give object_type and object_id together."]},
        ),
        ({"permission": VIEW, "object_id": "1"}, {"object_type": ["Give object_type and object_id together."]}),
        (
            {"permission": VIEW, "object_type": "auth.user", "object_id": "1"},
            {"object_type": ["Unknown object type: auth.user."]},
        ),
        (
            {"permission": VIEW, "object_type": "nonsense", "object_id": "1"},
            {"object_type": ["Unknown object type: nonsense."]},
        ),
        (
            {"permission": VIEW, "object_id": "x", "object_type": "organizations.department"},
            {"object_id": ["A valid integer is required."]},
        ),
        ({"permission": VIEW, "colour": "red"}, {"colour": ["Unknown query parameter."]}),
    ],
)
def test_bad_questions_are_400(client_for, admin_member, member, query, fields):
    if query:
        query = {"user": member.pk, **query}

    response = client_for(admin_member).get(f"{URL}?{urlencode(query)}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_the_permission_must_apply_to_the_object(client_for, admin_member, member, tree):
    response = ask(client_for(admin_member), member, "organizations.view_membership", tree["HQ"])

    assert response.status_code == 400
    assert response.json() == invalid(
        {"permission": ["This permission does not apply to organizations.department objects."]}
    )


def test_another_organizations_object_is_not_found(client_for, admin_member, member, other_organization):
    foreign = DepartmentFactory(organization=other_organization, code="X")

    response = ask(client_for(admin_member), member, VIEW, foreign)

    assert response.status_code == 400
    assert response.json() == invalid({"object_id": [f"No department {foreign.pk} here."]})


# --- The explanation agrees with the engine -------------------------------------------------------------------------


def test_the_verdict_is_the_engines(organization, tree, finance_manager, member, bare_member):
    # given: a mix of role holders, grant holders and people with nothing
    assign_perm(VIEW, bare_member, tree["ENG"])
    expired = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(
        organization=organization,
        user=expired,
        role=system_role("manager"),
        valid_from=NOW - datetime.timedelta(days=2),
        valid_until=NOW - datetime.timedelta(days=1),
    )
    people = [finance_manager, member, bare_member, expired]
    objects: list[Department | None] = [None, *tree.values()]

    # when / then: for every person, permission and object, explain says what has_perm says
    for user in people:
        for permission in (VIEW, CHANGE, DELETE):
            for obj in objects:
                verdict = explain.explain(user=user, organization=organization, permission=permission, obj=obj)
                expected = (
                    engine.has_perm(user, permission, obj)
                    if obj is not None
                    else engine.effective_permissions(user, organization).holds_anywhere(permission)
                )
                assert verdict.allowed is expected, (user, permission, obj)
