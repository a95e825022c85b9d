"""/api/v1/organizations/{slug}/permissions/: the catalog of permissions roles can grant."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from tests.api_helpers import NOT_FOUND, invalid
from tests.organizations.factories import MembershipFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/organizations/acme/permissions/"


def catalog_rows() -> list[dict[str, Any]]:
    """What the catalog must list: the permissions of the catalog apps, minus platform ones."""
    permissions = (
        Permission.objects.filter(content_type__app_label__in=["audit", "organizations", "rbac", "tasks"])
        .exclude(content_type__app_label="organizations", codename__in=["add_organization", "delete_organization"])
        .select_related("content_type")
        .order_by("content_type__app_label", "content_type__model", "codename")
    )
    return [
        {
            "id": permission.pk,
            "permission": f"{permission.content_type.app_label}.{permission.codename}",
            "name": permission.name,
            "app_label": permission.content_type.app_label,
            "model": permission.content_type.model,
        }
        for permission in permissions
    ]


def test_a_member_reads_the_catalog(client_for, member):
    response = client_for(member).get(URL)

    assert response.status_code == 200
    assert response.json() == catalog_rows()
    names = [row["permission"] for row in response.json()]
    assert len(names) == len(set(names))
    assert {"organizations.manage_members", "rbac.add_roleassignment", "organizations.view_department"} <= set(names)


def test_custom_permissions_carry_their_description(client_for, member):
    rows = {row["permission"]: row for row in client_for(member).get(URL).json()}

    assert rows["organizations.manage_members"] == {
        "id": Permission.objects.get(codename="manage_members").pk,
        "permission": "organizations.manage_members",
        "name": "Add members to the organization and change their memberships",
        "app_label": "organizations",
        "model": "membership",
    }


def test_platform_and_other_apps_permissions_are_not_in_the_catalog(client_for, admin_member):
    names = {row["permission"] for row in client_for(admin_member).get(URL).json()}

    assert "organizations.add_organization" not in names
    assert "organizations.delete_organization" not in names
    assert "organizations.change_organization" in names
    assert not {name for name in names if not name.startswith(("audit.", "organizations.", "rbac.", "tasks."))}
    assert "audit.view_history" in names


def test_someone_who_may_not_read_roles_gets_an_empty_catalog(client_for, organization):
    # given: a member without any role
    user = MembershipFactory(organization=organization).user

    response = client_for(user).get(URL)

    assert response.status_code == 200
    assert response.json() == []


def test_query_parameters_are_refused(client_for, member):
    response = client_for(member).get(f"{URL}?app_label=rbac")

    assert response.status_code == 400
    assert response.json() == invalid({"app_label": ["Unknown query parameter."]})


def test_a_member_of_another_organization_gets_404(client_for, outsider):
    response = client_for(outsider).get(URL)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_the_catalog_is_read_in_a_fixed_number_of_queries(client_for, member, django_assert_num_queries):
    client = client_for(member)
    client.get(URL)  # warm the permission cache

    with django_assert_num_queries(2):  # the organization, the catalog
        response = client.get(URL)

    assert response.status_code == 200
