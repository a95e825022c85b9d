"""Assignments under the rule "nobody may end, change or restore access they could not have given", and the last
administrator of an organization, through the API, the services, the admin and the commands."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from erp.exceptions import ConflictError
from organizations.models import Department
from rbac import services
from rbac.models import RoleAssignment
from tests.accounts.factories import SuperuserFactory
from tests.api_helpers import detail_url, error
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, permission, system_role

URL = "/api/v1/organizations/acme/role-assignments/"
LAST_ADMINISTRATOR = (
    "This is the last active administrator of the organization; make someone else an administrator first."
)
LAST_ADMINISTRATOR_SELF = (
    "You are the last administrator of this organization; make someone else an administrator first."
)


def assignment_rows() -> list[tuple[Any, ...]]:
    return list(
        RoleAssignment.objects.order_by("pk").values_list(
            "pk", "user_id", "role_id", "department_id", "is_active", "valid_from", "valid_until"
        )
    )


def administrator_assignment(user: User) -> RoleAssignment:
    return RoleAssignment.objects.get(user=user, role=system_role("org_admin"), department__isnull=True)


@pytest.fixture
def finance(tree) -> Department:
    return tree["FIN"]


# --- the last administrator through the API ---------------------------------------------------------------------------


def test_the_last_administrator_cannot_revoke_their_own_role(client_for, admin_member, member):
    # given
    before = assignment_rows()

    # when
    response = client_for(admin_member).delete(detail_url(URL, administrator_assignment(admin_member)))

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR_SELF)
    assert assignment_rows() == before


def test_nobody_revokes_the_last_administrators_role(client_for, superuser, admin_member):
    # given
    before = assignment_rows()

    # when
    response = client_for(superuser).delete(detail_url(URL, administrator_assignment(admin_member)))

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR)
    assert assignment_rows() == before


@pytest.mark.parametrize(
    "change",
    [
        {"is_active": False},
        {"valid_until": (timezone.now() + datetime.timedelta(days=30)).isoformat()},
        {"valid_from": (timezone.now() + datetime.timedelta(days=1)).isoformat()},
        "department",
    ],
)
def test_the_last_administrators_role_is_not_suspended_shortened_or_narrowed(client_for, admin_member, finance, change):
    # given
    before = assignment_rows()
    payload = {"department": finance.pk} if change == "department" else change

    # when
    response = client_for(admin_member).patch(
        detail_url(URL, administrator_assignment(admin_member)), payload, format="json"
    )

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR_SELF)
    assert assignment_rows() == before


def test_an_administrator_gives_up_the_role_when_another_one_stays(client_for, admin_member, organization):
    # given
    other = MembershipFactory(organization=organization, role="org_admin").user

    # when
    response = client_for(admin_member).delete(detail_url(URL, administrator_assignment(admin_member)))

    # then
    assert response.status_code == 204
    assert services.administrators_of(organization_id=organization.pk) == {other.pk}


def test_an_organizations_own_role_with_every_administrator_permission_counts(client_for, admin_member, organization):
    # given: another member holds an organization role carrying the administrator permissions
    steward = RoleFactory(organization=organization, permissions=sorted(services.ADMINISTRATOR_PERMISSIONS))
    other = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=other, role=steward)

    # when
    response = client_for(admin_member).delete(detail_url(URL, administrator_assignment(admin_member)))

    # then
    assert response.status_code == 204
    assert services.administrators_of(organization_id=organization.pk) == {other.pk}


def test_an_administrator_whose_role_already_ends_may_still_be_given_a_later_end(client_for, admin_member):
    # given: the only administrator's standing already ends; moving that end is no loss of a lasting administrator
    assignment = administrator_assignment(admin_member)
    RoleAssignment.objects.filter(pk=assignment.pk).update(valid_until=timezone.now() + datetime.timedelta(days=5))
    later = timezone.now() + datetime.timedelta(days=10)

    # when
    response = client_for(admin_member).patch(
        detail_url(URL, assignment), {"valid_until": later.isoformat()}, format="json"
    )

    # then
    assert response.status_code == 200
    assignment.refresh_from_db()
    assert assignment.valid_until == later


# --- standing: changing an assignment needs standing over its old scope too ------------------------------------------


def test_a_department_assigner_cannot_narrow_an_organization_wide_assignment_into_their_department(
    organization, finance
):
    # given: Fin's assigner may view, change and give the viewer role within Finance only
    assigner_role = RoleFactory(
        organization=organization,
        permissions=["rbac.change_roleassignment", "rbac.view_roleassignment", "organizations.view_department"],
        parent=system_role("viewer"),
    )
    assigner = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=assigner, role=assigner_role, department=finance)
    person = MembershipFactory(organization=organization).user
    organization_wide = RoleAssignmentFactory(organization=organization, user=person, role=system_role("viewer"))
    before = assignment_rows()

    # when: the assignment would end up inside Finance, but it is not theirs to change where it is now
    with pytest.raises(PermissionDenied):
        services.role_assignment_update(actor=assigner, assignment=organization_wide, department=finance)

    # then
    assert assignment_rows() == before


# --- the services, for platform code ----------------------------------------------------------------------------------


def test_role_revoke_keeps_the_last_administrator_for_platform_code(admin_member):
    # given
    before = assignment_rows()

    # when
    with pytest.raises(ConflictError) as refused:
        services.role_revoke(actor=None, assignment=administrator_assignment(admin_member))

    # then
    assert (refused.value.code, refused.value.message) == ("last_administrator", LAST_ADMINISTRATOR)
    assert assignment_rows() == before


def test_revoke_role_command_reports_the_last_administrator(admin_member):
    # given
    before = assignment_rows()

    # when
    with pytest.raises(CommandError) as refused:
        call_command(
            "revoke_role",
            "--organization=acme",
            f"--user={admin_member.email}",
            "--role=org_admin",
            stdout=StringIO(),
            stderr=StringIO(),
        )

    # then
    assert str(refused.value) == LAST_ADMINISTRATOR
    assert assignment_rows() == before


# --- the admin ------------------------------------------------------------------------------------------------------


def test_the_admin_keeps_the_last_administrators_role(admin_member):
    # given
    assignment = administrator_assignment(admin_member)
    before = assignment_rows()
    url = reverse("admin:rbac_roleassignment_delete", args=[assignment.pk])
    client = Client()
    client.force_login(SuperuserFactory())

    # when
    response = client.post(url, {"post": "yes"})

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert [str(message) for message in get_messages(response.wsgi_request)] == [LAST_ADMINISTRATOR]
    assert assignment_rows() == before


def test_a_role_does_not_lose_the_permissions_of_the_last_administrator(admin_member, organization):
    # given: the only administrator holds an organization role instead of org_admin
    steward = RoleFactory(organization=organization, permissions=sorted(services.ADMINISTRATOR_PERMISSIONS))
    RoleAssignment.objects.filter(user=admin_member).delete()
    RoleAssignmentFactory(organization=organization, user=admin_member, role=steward)
    kept = [permission("organizations.change_organization")]

    # when
    with pytest.raises(ConflictError) as refused:
        services.role_update(actor=None, role=steward, organization=organization, permissions=kept)

    # then
    assert (refused.value.code, refused.value.message) == ("last_administrator", LAST_ADMINISTRATOR)
    assert services.role_permission_names(steward) == set(services.ADMINISTRATOR_PERMISSIONS)


# --- grants: revoking needs what granting needs -----------------------------------------------------------------------


def test_a_department_manager_cannot_revoke_a_grant_they_could_not_have_given(organization, tree, finance):
    # given: a Finance clerk holds a grant to delete Accounts Payable, which the manager of Finance does not hold
    manager = MembershipFactory(organization=organization, department=finance).user
    RoleAssignmentFactory(organization=organization, user=manager, role=system_role("manager"), department=finance)
    clerk = MembershipFactory(organization=organization, department=finance).user
    services.object_grant(actor=None, obj=tree["AP"], permission="organizations.delete_department", user=clerk)

    # when
    with pytest.raises(PermissionDenied):
        services.object_revoke(actor=manager, obj=tree["AP"], permission="organizations.delete_department", user=clerk)

    # then
    assert clerk.has_perm("organizations.delete_department", tree["AP"]) is True
