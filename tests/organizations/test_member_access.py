"""Nobody may end, change or restore access they could not have given: memberships through the API, the services and
the admin. Ending a membership ends its assignments and grants for good; the last administrator stays."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import User
from audit.models import SecurityEvent, SecurityEventKind
from erp.exceptions import ConflictError
from organizations import services
from organizations.models import Department, DepartmentUserObjectPermission, Membership
from rbac import engine
from rbac.models import RoleAssignment
from tests.accounts.factories import SuperuserFactory, UserFactory
from tests.api_helpers import NOT_FOUND, detail_url, error
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, system_role

URL = "/api/v1/organizations/acme/members/"
ASSIGNMENTS = "/api/v1/organizations/acme/role-assignments/"
CANNOT_ACT = "You cannot act on this membership: it carries access you could not have given ("
LAST_ADMINISTRATOR = (
    "This is the last active administrator of the organization; make someone else an administrator first."
)
LAST_ADMINISTRATOR_SELF = (
    "You are the last administrator of this organization; make someone else an administrator first."
)
MEMBERSHIP_ENDED = (
    "This membership has ended and cannot be restored: coming back is a new membership (invite the person again), "
    "and any access must be given again."
)


ACCESS_EVENTS = [
    SecurityEventKind.ROLE_REVOKED,
    SecurityEventKind.ASSIGNMENT_CHANGED,
    SecurityEventKind.GRANT_REVOKED,
    SecurityEventKind.MEMBERSHIP_CHANGED,
    SecurityEventKind.MEMBERSHIP_REMOVED,
]


def access_state() -> tuple[list[Any], ...]:
    """Every membership, assignment and department grant, and every security event about access changing: what a
    refused call must leave untouched (sign-ins, denials and superusers' visits are recorded on purpose)."""
    return (
        list(Membership.objects.order_by("pk").values_list("pk", "is_active", "left_on", "department_id", "job_title")),
        list(
            RoleAssignment.objects.order_by("pk").values_list(
                "pk", "user_id", "role_id", "department_id", "is_active", "valid_until"
            )
        ),
        list(
            DepartmentUserObjectPermission.objects.order_by("pk").values_list(
                "pk", "user_id", "permission_id", "content_object_id"
            )
        ),
        list(SecurityEvent.objects.filter(kind__in=ACCESS_EVENTS).order_by("pk").values_list("pk", "kind")),
    )


@pytest.fixture
def finance(tree) -> Department:
    return tree["FIN"]


@pytest.fixture
def administrator(organization, finance) -> Membership:
    """An administrator of the whole organization whose membership is filed under Finance."""
    return MembershipFactory(organization=organization, department=finance, role="org_admin")


@pytest.fixture
def finance_manager(organization, finance) -> User:
    """The manager of Finance: the system role ``manager``, limited to Finance and its sub-departments."""
    user = MembershipFactory(organization=organization, department=finance).user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=finance)
    return user


# --- the scenario of the issue: a department manager against an organization-wide administrator ----------------------


def test_a_department_manager_cannot_end_an_administrator_filed_under_their_department(
    client_for, admin_member, administrator, finance_manager
):
    # given: a second administrator exists, so only the manager's standing is in question
    before = access_state()

    # when
    response = client_for(finance_manager).delete(detail_url(URL, administrator))

    # then: the membership is visible to the manager but not theirs to end
    assert response.status_code == 403
    body = response.json()
    assert body["error"]["code"] == "permission_denied"
    assert body["error"]["message"].startswith(CANNOT_ACT)
    assert access_state() == before
    assert client_for(administrator.user).get(URL).status_code == 200


@pytest.mark.parametrize("payload", [{"is_active": False}, {"job_title": "Clerk"}, {"department": None}])
def test_a_department_manager_cannot_change_an_administrators_membership(
    client_for, admin_member, administrator, finance_manager, payload
):
    # given
    before = access_state()

    # when
    response = client_for(finance_manager).patch(detail_url(URL, administrator), payload, format="json")

    # then
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith(CANNOT_ACT)
    assert access_state() == before


def test_a_department_manager_still_manages_the_plain_members_of_their_department(
    client_for, admin_member, finance, finance_manager
):
    # given: a Finance clerk whose only role is a viewer role on Finance
    clerk = MembershipFactory(organization=finance.organization, department=finance)
    RoleAssignmentFactory(
        organization=finance.organization, user=clerk.user, role=system_role("viewer"), department=finance
    )

    # when
    response = client_for(finance_manager).delete(detail_url(URL, clerk))

    # then
    assert response.status_code == 204
    clerk.refresh_from_db()
    assert (clerk.is_active, clerk.left_on) == (False, timezone.localdate())


def test_a_grant_outside_the_managers_department_puts_the_member_out_of_their_reach(
    client_for, admin_member, tree, finance, finance_manager
):
    # given: a Finance clerk without a role but with a grant to change Engineering
    clerk = MembershipFactory(organization=finance.organization, department=finance)
    assign_perm("organizations.change_department", clerk.user, tree["ENG"])
    before = access_state()

    # when
    response = client_for(finance_manager).delete(detail_url(URL, clerk))

    # then
    assert response.status_code == 403
    assert response.json() == error("permission_denied", f"{CANNOT_ACT}organizations.change_department).")
    assert access_state() == before


def test_an_ended_membership_is_not_restored_by_the_department_manager(
    client_for, admin_member, administrator, finance_manager
):
    # given: an administrator ended the other administrator's membership
    services.membership_end(actor=admin_member, membership=administrator)
    before = access_state()

    # when
    response = client_for(finance_manager).patch(detail_url(URL, administrator), {"is_active": True}, format="json")

    # then: nothing comes back, neither the membership nor the organization-wide role
    assert response.status_code == 409
    assert response.json() == error("membership_ended", MEMBERSHIP_ENDED)
    assert access_state() == before
    assert client_for(administrator.user).get(URL).status_code == 404
    assert engine.scope_for(administrator.user, administrator.organization_id, "rbac.add_role").is_empty


# --- ending a membership ends its access -----------------------------------------------------------------------------


def test_ending_a_membership_ends_its_assignments_and_grants(client_for, admin_member, organization, tree, finance):
    # given: a Finance manager who also holds a grant on Engineering
    membership = MembershipFactory(organization=organization, department=finance)
    person = membership.user
    assignment = RoleAssignmentFactory(
        organization=organization, user=person, role=system_role("manager"), department=finance
    )
    assign_perm("organizations.change_department", person, tree["ENG"])
    grant = DepartmentUserObjectPermission.objects.get(user=person)

    # when
    response = client_for(admin_member).delete(detail_url(URL, membership))

    # then: the assignment is kept, ended; the grant is gone
    assert response.status_code == 204
    assignment.refresh_from_db()
    assert (assignment.is_active, assignment.updated_by) == (False, admin_member)
    read = client_for(admin_member).get(detail_url(ASSIGNMENTS, assignment)).json()
    assert (read["is_active"], read["is_in_force"]) == (False, False)
    assert DepartmentUserObjectPermission.objects.filter(user=person).exists() is False
    # in the history
    latest = RoleAssignment.history.filter(id=assignment.pk).order_by("-history_id").first()
    assert (latest.history_type, latest.is_active, latest.history_user_id) == ("~", False, admin_member.pk)
    removed = DepartmentUserObjectPermission.history.filter(id=grant.pk).order_by("-history_id").first()
    assert removed.history_type == "-"
    # and in the security events
    events = list(
        SecurityEvent.objects.filter(target_user_id=person.pk)
        .exclude(kind=SecurityEventKind.PERMISSION_DENIED)
        .order_by("pk")
        .values_list("kind", "actor_id", "object_type", "data__because")
    )
    assert events == [
        (SecurityEventKind.ROLE_REVOKED, admin_member.pk, "rbac.roleassignment", "membership_ended"),
        (SecurityEventKind.GRANT_REVOKED, admin_member.pk, "organizations.department", "membership_ended"),
        (SecurityEventKind.MEMBERSHIP_REMOVED, admin_member.pk, "organizations.membership", None),
    ]


def test_a_membership_ended_by_patch_ends_its_access_too(client_for, admin_member, organization, finance):
    # given
    membership = MembershipFactory(organization=organization, department=finance, role="member")

    # when
    response = client_for(admin_member).patch(detail_url(URL, membership), {"is_active": False}, format="json")

    # then
    assert response.status_code == 200
    assert response.json()["left_on"] == timezone.localdate().isoformat()
    assert list(RoleAssignment.objects.filter(user=membership.user).values_list("is_active", flat=True)) == [False]


def test_a_former_member_reopened_by_the_platform_gets_no_access_back(admin_member, organization, finance):
    # given: an administrator left; the identity provider's synchronisation (platform code) reopens the membership
    membership = MembershipFactory(organization=organization, department=finance, role="org_admin")
    services.membership_end(actor=admin_member, membership=membership)

    # when
    services.membership_update(actor=None, membership=membership, is_active=True)

    # then: a member again, with nothing of the former access
    assert engine.scope_for(membership.user, organization, "rbac.add_role").is_empty
    assert RoleAssignment.objects.in_force().filter(user=membership.user).exists() is False


# --- the last administrator ------------------------------------------------------------------------------------------


def test_the_last_administrator_cannot_end_their_own_membership(client_for, admin_member, organization, member):
    # given
    before = access_state()

    # when
    response = client_for(admin_member).delete(detail_url(URL, Membership.objects.get(user=admin_member)))

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR_SELF)
    assert access_state() == before


@pytest.mark.parametrize("how", ["delete", "patch"])
def test_nobody_ends_the_last_administrators_membership(client_for, superuser, admin_member, member, how):
    # given
    before = access_state()
    url = detail_url(URL, Membership.objects.get(user=admin_member))

    # when
    client = client_for(superuser)
    response = client.delete(url) if how == "delete" else client.patch(url, {"is_active": False}, format="json")

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR)
    assert access_state() == before


def test_an_administrator_leaves_when_another_one_stays(client_for, admin_member, administrator):
    # when
    response = client_for(admin_member).delete(detail_url(URL, Membership.objects.get(user=admin_member)))

    # then
    assert response.status_code == 204
    assert client_for(admin_member).get(URL).status_code == 404
    assert client_for(administrator.user).get(URL).status_code == 200


def test_an_administrator_through_a_department_role_only_does_not_count(client_for, admin_member, finance):
    # given: the only other org_admin assignment is limited to Finance
    scoped = MembershipFactory(organization=finance.organization, department=finance)
    RoleAssignmentFactory(
        organization=finance.organization, user=scoped.user, role=system_role("org_admin"), department=finance
    )
    before = access_state()

    # when
    response = client_for(admin_member).delete(detail_url(URL, Membership.objects.get(user=admin_member)))

    # then
    assert response.status_code == 409
    assert response.json() == error("last_administrator", LAST_ADMINISTRATOR_SELF)
    assert access_state() == before


def test_an_ended_administrator_is_read_as_missing_afterwards(client_for, admin_member, administrator):
    # given
    client_for(admin_member).delete(detail_url(URL, administrator))

    # when
    response = client_for(administrator.user).get(detail_url(URL, administrator))

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- the services, for every caller -----------------------------------------------------------------------------------


def test_membership_end_refuses_a_department_manager(admin_member, administrator, finance_manager):
    # given
    before = access_state()

    # when
    with pytest.raises(PermissionDenied) as refused:
        services.membership_end(actor=finance_manager, membership=administrator)

    # then
    assert str(refused.value).startswith(CANNOT_ACT)
    assert access_state() == before


def test_membership_end_keeps_the_last_administrator_for_platform_code_too(admin_member, member):
    # given
    before = access_state()

    # when
    with pytest.raises(ConflictError) as refused:
        services.membership_end(actor=None, membership=Membership.objects.get(user=admin_member))

    # then
    assert (refused.value.code, refused.value.message) == ("last_administrator", LAST_ADMINISTRATOR)
    assert access_state() == before


# --- the admin -----------------------------------------------------------------------------------------------------


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response: Any) -> list[str]:
    from django.contrib.messages import get_messages

    return [str(message) for message in get_messages(response.wsgi_request)]


def _membership_form(membership: Membership, **fields: Any) -> dict[str, Any]:
    """The admin's change form as it stands for ``membership``; a field left out of ``fields`` keeps its value (an
    unchecked box is sent by leaving ``is_active`` out)."""
    form = {
        "department": membership.department_id or "",
        "job_title": membership.job_title,
        "employee_number": membership.employee_number or "",
        "joined_on": membership.joined_on.isoformat(),
        "left_on": membership.left_on.isoformat() if membership.left_on else "",
        "_save": "Save",
        **fields,
    }
    if membership.is_active and "is_active" not in fields:
        form["is_active"] = "on"
    return {name: value for name, value in form.items() if value is not None}


def test_the_admin_refuses_a_department_manager_ending_an_administrator(admin_member, administrator, finance):
    # given: the Finance manager is staff
    manager = MembershipFactory(organization=finance.organization, user=UserFactory(is_staff=True)).user
    RoleAssignmentFactory(
        organization=finance.organization, user=manager, role=system_role("manager"), department=finance
    )
    before = access_state()
    url = reverse("admin:organizations_membership_change", args=[administrator.pk])
    form = _membership_form(administrator)
    del form["is_active"]

    # when
    response = _signed_in(manager).post(url, form)

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    messages = _messages(response)
    assert len(messages) == 1
    assert messages[0].startswith(CANNOT_ACT)
    assert access_state() == before


def test_the_admin_refuses_to_restore_an_ended_membership(admin_member, administrator):
    # given
    services.membership_end(actor=admin_member, membership=administrator)
    administrator.refresh_from_db()
    staff = UserFactory(is_staff=True, is_superuser=True)
    before = access_state()
    url = reverse("admin:organizations_membership_change", args=[administrator.pk])

    # when
    response = _signed_in(staff).post(url, _membership_form(administrator, is_active="on", left_on=""))

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert _messages(response) == [MEMBERSHIP_ENDED]
    assert access_state() == before


def test_the_admin_keeps_the_last_administrator(admin_member, member):
    # given
    membership = Membership.objects.get(user=admin_member)
    before = access_state()
    url = reverse("admin:organizations_membership_delete", args=[membership.pk])

    # when
    response = _signed_in(SuperuserFactory()).post(url, {"post": "yes"})

    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert _messages(response) == [LAST_ADMINISTRATOR]
    assert access_state() == before


def test_the_admin_ends_a_membership_with_its_access(admin_member, organization, finance):
    # given
    membership = MembershipFactory(organization=organization, department=finance, role="member")

    # when
    response = _signed_in(SuperuserFactory()).post(
        reverse("admin:organizations_membership_delete", args=[membership.pk]), {"post": "yes"}
    )

    # then
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.is_active, membership.left_on) == (False, timezone.localdate())
    assert list(RoleAssignment.objects.filter(user=membership.user).values_list("is_active", flat=True)) == [False]


def test_access_left_active_under_an_ended_membership_does_not_come_back_with_a_reopening(
    client_for, admin_member, organization, finance
):
    # given: a membership ended before ending ended access (its org_admin assignment still reads active)
    membership = MembershipFactory(organization=organization, department=finance, role="org_admin")
    Membership.objects.filter(pk=membership.pk).update(is_active=False, left_on=timezone.localdate())
    assignment = RoleAssignment.objects.get(user=membership.user)
    read = client_for(admin_member).get(detail_url(ASSIGNMENTS, assignment)).json()
    assert (read["is_active"], read["is_in_force"]) == (True, False)

    # when: the platform reopens the membership
    services.membership_update(actor=None, membership=membership, is_active=True)

    # then: the administrator's role stays behind, ended and recorded
    assignment.refresh_from_db()
    assert assignment.is_active is False
    assert engine.scope_for(membership.user, organization, "rbac.add_role").is_empty
    assert list(
        SecurityEvent.objects.filter(
            target_user_id=membership.user.pk, kind=SecurityEventKind.ROLE_REVOKED
        ).values_list("data__because", flat=True)
    ) == ["membership_ended"]
