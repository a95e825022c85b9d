"""/api/v1/me/permissions/?organization=slug: my effective permissions in one organization."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from guardian.shortcuts import assign_perm

from organizations.models import Department
from rbac.models import RolePermission
from tests.api_helpers import NOT_AUTHENTICATED, NOT_FOUND, invalid
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/permissions/"
VIEW = "organizations.view_department"
CHANGE = "organizations.change_department"


def names_of(role_code: str) -> list[str]:
    """A system role's own permissions (the viewer's are every view permission)."""
    return sorted(
        f"{app_label}.{codename}"
        for app_label, codename in RolePermission.objects.filter(role=system_role(role_code)).values_list(
            "permission__content_type__app_label", "permission__codename"
        )
    )


def everywhere(*names: str) -> list[dict[str, Any]]:
    return [{"permission": name, "scope": "organization", "departments": []} for name in sorted(names)]


def within(department: Department, *names: str) -> list[dict[str, Any]]:
    where = [{"id": department.pk, "code": department.code, "path": department.path}]
    return [{"permission": name, "scope": "departments", "departments": where} for name in sorted(names)]


@pytest.fixture
def tree(organization):
    hq = DepartmentFactory(organization=organization, code="HQ")
    fin = DepartmentFactory(organization=organization, parent=hq, code="FIN")
    eng = DepartmentFactory(organization=organization, parent=hq, code="ENG")
    return {"HQ": hq, "FIN": fin, "ENG": eng}


def test_a_member_reads_their_organization_wide_permissions(client_for, member):
    response = client_for(member).get(f"{URL}?organization=acme")

    assert response.status_code == 200
    assert response.json() == {
        "organization": "acme",
        "is_superuser": False,
        "permissions": everywhere(*names_of("viewer"), *names_of("member")),
        "object_grants": [],
    }


def test_a_department_scoped_manager_sees_their_departments(client_for, organization, tree):
    # given: viewer everywhere, manager in FIN
    user = MembershipFactory(organization=organization, role="viewer").user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])

    response = client_for(user).get(f"{URL}?organization=acme")

    # then: view_* organization-wide (the manager's inherited ones too), the manager's own permissions and those it
    # inherits from member in FIN
    viewer = names_of("viewer")
    in_fin = {*names_of("manager"), *names_of("member")} - set(viewer)
    assert response.status_code == 200
    assert response.json()["permissions"] == sorted(
        everywhere(*viewer) + within(tree["FIN"], *in_fin),
        key=lambda row: row["permission"],
    )


def test_scopes_in_several_departments_are_all_listed(client_for, organization, tree):
    user = MembershipFactory(organization=organization).user
    editor = RoleFactory(organization=organization, permissions=[CHANGE])
    RoleAssignmentFactory(organization=organization, user=user, role=editor, department=tree["FIN"])
    RoleAssignmentFactory(organization=organization, user=user, role=editor, department=tree["ENG"])

    response = client_for(user).get(f"{URL}?organization=acme")

    assert response.json()["permissions"] == [
        {
            "permission": CHANGE,
            "scope": "departments",
            "departments": [
                {"id": tree["ENG"].pk, "code": "ENG", "path": "HQ/ENG/"},
                {"id": tree["FIN"].pk, "code": "FIN", "path": "HQ/FIN/"},
            ],
        }
    ]


def test_object_grants_are_listed(client_for, organization, tree):
    user = MembershipFactory(organization=organization).user
    assign_perm(VIEW, user, tree["ENG"])
    assign_perm(VIEW, user, tree["FIN"])
    assign_perm(CHANGE, user, tree["ENG"])

    response = client_for(user).get(f"{URL}?organization=acme")

    assert response.json() == {
        "organization": "acme",
        "is_superuser": False,
        "permissions": [],
        "object_grants": [
            {"permission": CHANGE, "object_ids": [tree["ENG"].pk]},
            {"permission": VIEW, "object_ids": sorted([tree["ENG"].pk, tree["FIN"].pk])},
        ],
    }


def test_a_superuser_holds_every_catalog_permission(client_for, superuser, organization):
    response = client_for(superuser).get(f"{URL}?organization=acme")

    catalog = [
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(
            content_type__app_label__in=["audit", "organizations", "rbac", "tasks"]
        )
        .exclude(codename__in=["add_organization", "delete_organization"])
        .values_list("content_type__app_label", "codename")
    ]
    assert response.status_code == 200
    assert response.json() == {
        "organization": "acme",
        "is_superuser": True,
        "permissions": everywhere(*catalog),
        "object_grants": [],
    }


@pytest.mark.parametrize("slug", ["globex", "nowhere"])
def test_an_organization_i_do_not_belong_to_is_404(client_for, member, other_organization, slug):
    response = client_for(member).get(f"{URL}?organization={slug}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_ended_membership_is_404(client_for, organization):
    user = MembershipFactory(organization=organization, role="viewer", is_active=False).user

    response = client_for(user).get(f"{URL}?organization=acme")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", {"organization": ["This field is required."]}),
        ("?organization=", {"organization": ["This field may not be blank."]}),
        (
            "?organization=a%20b",
            {"organization": ['Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.']},
        ),
        ("?organization=acme&verbose=1", {"verbose": ["Unknown query parameter."]}),
    ],
)
def test_bad_queries_are_400(client_for, member, query, fields):
    response = client_for(member).get(f"{URL}{query}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_anonymous_callers_are_asked_to_sign_in(api_client, organization):
    response = api_client.get(f"{URL}?organization=acme")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(("scoped", "queries"), [(False, 1), (True, 2)], ids=["organization-wide", "department-scoped"])
def test_a_warm_read_makes_one_query_and_one_more_for_department_scopes(
    client_for, organization, tree, scoped, queries, django_assert_num_queries
):
    # given: warm permissions
    user = MembershipFactory(organization=organization, role="viewer").user
    if scoped:
        RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])
    client = client_for(user)
    client.get(f"{URL}?organization=acme")

    # when / then: the organization, and the departments that name the scopes
    with django_assert_num_queries(queries):
        response = client.get(f"{URL}?organization=acme")

    assert response.status_code == 200
