"""Invitations: the only way into an organization. Sent by administrators, accepted by the invited person.

Covers the services (who may invite, with which role), the org-scoped API and its refusals, the emailed link (single
use, expiry, tampering), the signed-in person's ``/me/invitations/``, the accept page, the admin, the same answer
whether or not the address has an account, and the history and security events of every step.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import SecurityEvent, SecurityEventKind
from organizations import invitations as services
from organizations.models import Invitation, InvitationStatus, Membership
from rbac.models import RoleAssignment
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.api_helpers import NOT_AUTHENTICATED, NOT_FOUND, error, invalid, iso, lacks_permission
from tests.organizations.factories import DepartmentFactory, InvitationFactory, MembershipFactory
from tests.rbac.factories import system_role

URL = "/api/v1/organizations/acme/invitations/"
ME_URL = "/api/v1/me/invitations/"
TOKEN_URL = "/api/v1/invitations/accept/"
NEW_PASSWORD = "a-long-and-unusual-passphrase-42"
LINK = re.compile(r"http://[^\s\"]+/invitations/accept/([^/\s\"]+)/")


def invitation_rows() -> list[dict[str, Any]]:
    return list(Invitation.objects.order_by("pk").values())


def membership_rows() -> list[dict[str, Any]]:
    return list(Membership.objects.order_by("pk").values())


def events(kind: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(kind=kind).order_by("pk"))


def token_from(message: mail.EmailMessage) -> str:
    found = LINK.search(str(message.body))
    assert found is not None, message.body
    return found.group(1)


def invitation_body(invitation: Invitation) -> dict[str, Any]:
    invitation.refresh_from_db()
    inviter = invitation.invited_by
    return {
        "id": invitation.pk,
        "email": invitation.email,
        "department": invitation.department_id,
        "role": invitation.role_id,
        "job_title": invitation.job_title,
        "status": invitation.status,
        "invited_by": {"id": inviter.pk, "full_name": inviter.full_name} if inviter is not None else None,
        "sent_at": iso(invitation.sent_at),
        "send_count": invitation.send_count,
        "expires_at": iso(invitation.expires_at),
        "accepted_at": iso(invitation.accepted_at) if invitation.accepted_at else None,
        "created_at": iso(invitation.created_at),
        "updated_at": iso(invitation.updated_at),
    }


@pytest.fixture
def invite(client_for, django_capture_on_commit_callbacks):
    """POST an invitation as ``actor``, running the after-commit email like a real request would."""

    def _invite(actor: User, payload: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(actor).post(URL, payload, format="json")

    return _invite


@pytest.fixture
def sales(organization, department):
    return DepartmentFactory(organization=organization, parent=department, code="SALES", name="Sales")


@pytest.fixture
def sales_manager(organization, sales) -> User:
    """A manager for the SALES subtree only (holds manage_members there, not organization-wide)."""
    membership = MembershipFactory(organization=organization, department=sales, role="member")
    RoleAssignment.objects.create(
        organization=organization, user=membership.user, role=system_role("manager"), department=sales
    )
    return membership.user


# --- sending ----------------------------------------------------------------------------------------------------------


def test_admin_invites_an_address_and_the_link_is_mailed_after_commit(
    invite, admin_member, organization, sales, mailoutbox
):
    # when: the address is normalised whatever its case
    response = invite(
        admin_member,
        {"email": " Dave@Example.COM ", "department": sales.pk, "role": system_role("member").pk, "job_title": "Rep"},
    )

    # then: a pending invitation, no account looked up or created, one email with a working link
    assert response.status_code == 201, response.json()
    invitation = Invitation.objects.get()
    assert response.json() == invitation_body(invitation)
    assert (invitation.email, invitation.status, invitation.invited_by, invitation.send_count) == (
        "dave@example.com",
        "pending",
        admin_member,
        1,
    )
    assert invitation.expires_at - invitation.sent_at == datetime.timedelta(days=7)
    assert not User.objects.filter(email__iexact="dave@example.com").exists()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert (message.to, message.subject) == (["dave@example.com"], "You are invited to join Acme")
    token = token_from(message)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert f"/invitations/accept/{token}/" in html
    assert services.invitation_for_token(token) == invitation
    # only the secret's hash is stored: the token appears nowhere in the row
    assert token.split(":")[0] not in str(Invitation.objects.filter(pk=invitation.pk).values().get())
    [sent] = events(SecurityEventKind.INVITATION_SENT)
    assert (sent.organization_id, sent.actor_id, sent.object_id, sent.detail.email) == (
        organization.pk,
        admin_member.pk,
        str(invitation.pk),
        "dave@example.com",
    )
    assert sent.data == {"department": "SALES", "role": "member", "status": "pending", "resent": False}
    assert [version.history_type for version in invitation.history.all()] == ["+"]


def test_nothing_is_mailed_when_the_invitation_is_refused(invite, admin_member, member, mailoutbox):
    # when: an address that is already a member of acme
    response = invite(admin_member, {"email": member.email})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"email": ["This person already has a membership in this organization."]})
    assert mailoutbox == []
    assert invitation_rows() == []


@pytest.mark.parametrize("address", ["dave@example.com", "nobody@example.com", "root@example.com"])
def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(invite, admin_member, address, mailoutbox):
    # given: dave has an account elsewhere, nobody has none, root is the platform operator
    UserFactory(email="dave@example.com", full_name="Dave Davis")
    SuperuserFactory(email="root@example.com")
    before = membership_rows()

    # when
    response = invite(admin_member, {"email": address})

    # then: one shape, no account details, and nobody attached
    assert response.status_code == 201
    body = response.json()
    assert body == invitation_body(Invitation.objects.get(email=address))
    assert set(body) == {
        "id",
        "email",
        "department",
        "role",
        "job_title",
        "status",
        "invited_by",
        "sent_at",
        "send_count",
        "expires_at",
        "accepted_at",
        "created_at",
        "updated_at",
    }
    assert (body["email"], body["status"], body["invited_by"]["id"]) == (address, "pending", admin_member.pk)
    assert membership_rows() == before
    assert len(mailoutbox) == 1


def test_a_second_pending_invitation_to_the_same_address_is_a_conflict(invite, admin_member, organization):
    InvitationFactory(organization=organization, email="dave@example.com")
    before = invitation_rows()

    response = invite(admin_member, {"email": "DAVE@example.com"})

    assert response.status_code == 409
    assert response.json() == error(
        "invitation_pending", "This address already has a pending invitation to this organization; resend it instead."
    )
    assert invitation_rows() == before


def test_an_expired_pending_invitation_is_closed_and_replaced(invite, admin_member, organization):
    old = InvitationFactory(organization=organization, email="dave@example.com")
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))

    response = invite(admin_member, {"email": "dave@example.com"})

    assert response.status_code == 201
    old.refresh_from_db()
    assert old.status == InvitationStatus.EXPIRED
    assert Invitation.objects.filter(email="dave@example.com", status="pending").count() == 1


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"email": ["This field is required."]}),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"email": "dave@example.com", "role": 999999}, {"role": ['Invalid pk "999999" - object does not exist.']}),
        (
            {"email": "dave@example.com", "department": "HQ"},
            {"department": ["Incorrect type. Expected pk value, received str."]},
        ),
    ],
    ids=["missing", "malformed", "unknown-role", "bad-department"],
)
def test_bad_input_is_400_and_nothing_is_sent(invite, admin_member, payload, fields, mailoutbox):
    response = invite(admin_member, payload)

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert invitation_rows() == []
    assert mailoutbox == []


def test_another_organizations_department_and_role_read_as_missing(invite, admin_member, other_organization):
    globex_department = DepartmentFactory(organization=other_organization, code="HQ")
    from tests.rbac.factories import RoleFactory

    globex_role = RoleFactory(organization=other_organization, permissions=["organizations.view_department"])

    response = invite(
        admin_member, {"email": "dave@example.com", "department": globex_department.pk, "role": globex_role.pk}
    )

    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "department": [f'Invalid pk "{globex_department.pk}" - object does not exist.'],
            "role": [f'Invalid pk "{globex_role.pk}" - object does not exist.'],
        }
    )
    assert invitation_rows() == []


# --- who may send -----------------------------------------------------------------------------------------------------


def test_a_department_manager_invites_into_their_subtree_only(invite, sales_manager, sales, department, mailoutbox):
    # when: into SALES (theirs), then into HQ above it, then organization-wide
    inside = invite(sales_manager, {"email": "dave@example.com", "department": sales.pk})
    above = invite(sales_manager, {"email": "emma@example.com", "department": department.pk})
    everywhere = invite(sales_manager, {"email": "fred@example.com"})

    # then
    assert inside.status_code == 201, inside.json()
    assert above.status_code == 403
    assert above.json() == error("permission_denied", "You may not add members to department HQ.")
    assert everywhere.status_code == 403
    assert everywhere.json() == error("permission_denied", "You may not add members to the whole organization.")
    assert list(Invitation.objects.values_list("email", flat=True)) == ["dave@example.com"]
    assert len(mailoutbox) == 1


def test_nobody_invites_with_a_role_they_could_not_give(invite, sales_manager, sales, mailoutbox):
    # when: a manager (who may add members there but hand out no role) offers the administrator role
    response = invite(
        sales_manager, {"email": "dave@example.com", "department": sales.pk, "role": system_role("org_admin").pk}
    )

    # then: rbac's rule — nobody hands out what they do not hold
    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith("You cannot hand out permissions you do not hold here: ")
    assert invitation_rows() == []
    assert mailoutbox == []
    assert events(SecurityEventKind.INVITATION_SENT) == []


def org_calls(client: Any, invitation: Invitation | None) -> dict[str, Any]:
    item = f"{URL}{invitation.pk if invitation else 0}/"
    return {
        "list": lambda: client.get(URL),
        "retrieve": lambda: client.get(item),
        "create": lambda: client.post(URL, {"email": "dave@example.com"}, format="json"),
        "resend": lambda: client.post(f"{item}resend/"),
        "revoke": lambda: client.post(f"{item}revoke/"),
        "history": lambda: client.get(f"{item}history/"),
    }


ORG_ACTIONS = ["list", "retrieve", "create", "resend", "revoke", "history"]


@pytest.mark.parametrize("action", ORG_ACTIONS)
def test_anonymous_callers_get_401_and_nothing_changes(client_for, organization, action):
    invitation = InvitationFactory(organization=organization)
    before = invitation_rows()

    response = org_calls(client_for(None), invitation)[action]()

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert invitation_rows() == before


@pytest.mark.parametrize("action", ORG_ACTIONS)
def test_members_of_another_organization_get_404_and_nothing_changes(
    client_for, organization, other_organization, action
):
    invitation = InvitationFactory(organization=organization)
    globex_admin = MembershipFactory(organization=other_organization, role="org_admin").user
    before = invitation_rows()

    response = org_calls(client_for(globex_admin), invitation)[action]()

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert invitation_rows() == before


@pytest.mark.parametrize("action", ["retrieve", "resend", "revoke"])
def test_another_organizations_invitation_is_not_found_under_ones_own_path(
    client_for, admin_member, other_organization, action
):
    globex_invitation = InvitationFactory(organization=other_organization)
    before = invitation_rows()

    response = org_calls(client_for(admin_member), globex_invitation)[action]()

    assert response.status_code == 404
    assert invitation_rows() == before


@pytest.mark.parametrize(
    ("action", "refusal"),
    [
        ("create", lacks_permission("organizations.manage_members")),
        ("resend", lacks_permission("organizations.manage_members", on_object=True)),
        ("revoke", lacks_permission("organizations.manage_members", on_object=True)),
    ],
)
def test_a_member_without_manage_members_gets_403_and_nothing_changes(
    client_for, organization, member, action, refusal, mailoutbox
):
    invitation = InvitationFactory(organization=organization)
    before = invitation_rows()

    response = org_calls(client_for(member), invitation)[action]()

    assert response.status_code == 403
    assert response.json() == refusal
    assert invitation_rows() == before
    assert mailoutbox == []


def test_members_read_the_invitations_and_filter_them(client_for, member, organization, sales):
    pending = InvitationFactory(organization=organization, email="a@example.com", department=sales)
    revoked = InvitationFactory(organization=organization, email="b@example.com", status=InvitationStatus.REVOKED)
    overdue = InvitationFactory(
        organization=organization, email="c@example.com", expires_at=timezone.now() - datetime.timedelta(hours=1)
    )
    client = client_for(member)

    listed = client.get(URL)
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [overdue.pk, revoked.pk, pending.pk]
    assert [row["status"] for row in listed.json()["results"]] == ["expired", "revoked", "pending"]
    for query, expected in [
        ("status=pending", [pending]),
        ("status=expired", [overdue]),
        ("status=revoked", [revoked]),
        (f"department={sales.pk}", [pending]),
        ("email=B@example.com", [revoked]),
        ("search=c@", [overdue]),
    ]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        assert [row["id"] for row in response.json()["results"]] == [row.pk for row in expected], query


def test_invitations_are_never_edited_nor_deleted(client_for, admin_member, organization):
    invitation = InvitationFactory(organization=organization)
    before = invitation_rows()
    client = client_for(admin_member)

    answers = [
        client.put(f"{URL}{invitation.pk}/", {"email": "x@example.com"}, format="json").status_code,
        client.patch(f"{URL}{invitation.pk}/", {"email": "x@example.com"}, format="json").status_code,
        client.delete(f"{URL}{invitation.pk}/").status_code,
    ]

    assert answers == [405, 405, 405]
    assert invitation_rows() == before


# --- resend and revoke ------------------------------------------------------------------------------------------------


def test_resend_mails_a_new_link_and_the_old_one_stops_working(
    client_for, admin_member, organization, django_capture_on_commit_callbacks, mailoutbox
):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    old_token = invitation.token

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin_member).post(f"{URL}{invitation.pk}/resend/")

    assert response.status_code == 200, response.json()
    assert response.json() == invitation_body(invitation)
    assert response.json()["send_count"] == 2
    new_token = token_from(mailoutbox[0])
    assert new_token != old_token
    assert services.invitation_for_token(new_token) == invitation
    with pytest.raises(ValidationError):
        services.invitation_for_token(old_token)
    assert [event.data["resent"] for event in events(SecurityEventKind.INVITATION_SENT)] == [True]


def test_revoke_withdraws_the_invitation_and_its_link(client_for, admin_member, organization, api_client):
    invitation = InvitationFactory(organization=organization, email="dave@example.com")

    response = client_for(admin_member).post(f"{URL}{invitation.pk}/revoke/")

    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    [revoked] = events(SecurityEventKind.INVITATION_REVOKED)
    assert (revoked.actor_id, revoked.object_id) == (admin_member.pk, str(invitation.pk))
    # the link no longer lets anyone in
    accept = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")
    assert accept.status_code == 409
    assert accept.json() == error("invitation_revoked", "This invitation has been withdrawn.")
    assert not User.objects.filter(email="dave@example.com").exists()
    # and a revoked invitation is neither revoked nor resent again
    again = client_for(admin_member).post(f"{URL}{invitation.pk}/resend/")
    assert again.status_code == 409
    assert [version.history_type for version in invitation.history.order_by("history_id")] == ["+", "~"]


# --- accepting with the link ------------------------------------------------------------------------------------------


def test_someone_new_accepts_with_a_password_and_becomes_a_member_with_the_role(
    api_client, admin_member, organization, sales
):
    # given: an invitation into SALES with the member role
    invitation = InvitationFactory(
        organization=organization,
        email="dave@example.com",
        department=sales,
        role=system_role("member"),
        invited_by=admin_member,
        job_title="Rep",
    )

    # when
    response = api_client.post(
        TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD, "full_name": "Dave Davis"}, format="json"
    )

    # then: an account with that address and password, a membership, the role for the subtree
    assert response.status_code == 201, response.json()
    dave = User.objects.get(email="dave@example.com")
    membership = Membership.objects.get(user=dave)
    assert response.json() == {"organization": "acme", "membership": membership.pk}
    assert (dave.full_name, dave.check_password(NEW_PASSWORD), dave.is_superuser) == ("Dave Davis", True, False)
    assert (membership.organization, membership.department, membership.job_title, membership.created_by) == (
        organization,
        sales,
        "Rep",
        admin_member,
    )
    assignment = RoleAssignment.objects.get(user=dave)
    assert (assignment.role.code, assignment.department, assignment.granted_by) == ("member", sales, admin_member)
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by, invitation.accepted_at is not None) == ("accepted", dave, True)
    [accepted] = events(SecurityEventKind.INVITATION_ACCEPTED)
    assert (accepted.actor_id, accepted.target_user_id, accepted.data["membership"]) == (
        dave.pk,
        dave.pk,
        membership.pk,
    )
    assert len(events(SecurityEventKind.MEMBERSHIP_ADDED)) == 1
    assert len(events(SecurityEventKind.ROLE_ASSIGNED)) == 1
    assert [version.history_type for version in invitation.history.order_by("history_id")] == ["+", "~"]


def test_the_link_works_once(api_client, admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    first = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")
    before = membership_rows()

    second = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json() == error("invitation_accepted", "This invitation has already been accepted.")
    assert membership_rows() == before


def test_an_expired_link_is_refused(api_client, admin_member, organization):
    invitation = InvitationFactory(
        organization=organization,
        email="dave@example.com",
        invited_by=admin_member,
        expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )

    response = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")

    assert response.status_code == 409
    assert response.json() == error("invitation_expired", "This invitation has expired; ask for a new one.")
    assert not User.objects.filter(email="dave@example.com").exists()
    assert membership_rows() == list(Membership.objects.order_by("pk").values())


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature no longer matches
        lambda token: "x" + token,  # the secret changed
        lambda token: token.split(":")[0],  # no signature at all
        lambda token: "",
    ],
    ids=["signature", "secret", "unsigned", "empty"],
)
def test_a_tampered_link_is_refused(api_client, admin_member, organization, tamper):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    before = invitation_rows()

    response = api_client.post(TOKEN_URL, {"token": tamper(invitation.token), "password": NEW_PASSWORD}, format="json")

    assert response.status_code == 400
    field = response.json()["error"]["fields"]["token"]
    assert field in (["This invitation link is not valid."], ["This field may not be blank."])
    assert invitation_rows() == before
    assert not User.objects.filter(email="dave@example.com").exists()


def test_a_weak_password_is_refused_and_nothing_is_created(api_client, admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    before = invitation_rows()

    response = api_client.post(TOKEN_URL, {"token": invitation.token, "password": "123"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    assert invitation_rows() == before
    assert not User.objects.filter(email="dave@example.com").exists()


def test_someone_new_must_choose_a_password(api_client, admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)

    response = api_client.post(TOKEN_URL, {"token": invitation.token}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"password": ["Choose a password for your new account."]})


def test_an_existing_account_joins_and_keeps_its_password(api_client, admin_member, organization, outsider):
    # given: a member of globex, invited to acme
    invitation = InvitationFactory(organization=organization, email=outsider.email, invited_by=admin_member)

    # when: a password is sent along, it is not taken
    response = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")

    # then
    assert response.status_code == 201, response.json()
    outsider.refresh_from_db()
    assert outsider.check_password(PASSWORD)
    assert sorted(outsider.memberships.values_list("organization__slug", flat=True)) == ["acme", "globex"]


def test_signed_in_as_someone_else_the_link_is_refused(client_for, admin_member, organization, outsider):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)

    response = client_for(outsider).post(TOKEN_URL, {"token": invitation.token}, format="json")

    assert response.status_code == 403
    assert response.json() == error(
        "permission_denied", "You are signed in as someone else: sign out, then open the link again."
    )
    assert not Membership.objects.filter(user=outsider, organization=organization).exists()


def test_a_platform_operator_is_never_attached_by_an_invitation(
    invite, api_client, client_for, admin_member, organization
):
    # given: the superuser's address was invited (the answer did not reveal that it is one)
    root = SuperuserFactory(email="root@example.com")
    assert invite(admin_member, {"email": "root@example.com"}).status_code == 201
    invitation = Invitation.objects.get(email="root@example.com")
    token = services._issue_token(invitation)
    invitation.save()

    # when: through the link, and signed in from "my invitations"
    by_link = api_client.post(TOKEN_URL, {"token": token}, format="json")
    by_me = client_for(root).post(f"{ME_URL}{invitation.pk}/accept/")

    # then
    assert by_link.status_code == by_me.status_code == 403
    assert by_link.json() == by_me.json() == error("permission_denied", services.SUPERUSER_REFUSED)
    assert not Membership.objects.filter(user=root).exists()
    assert Invitation.objects.get(pk=invitation.pk).status == "pending"


def test_an_invitation_dies_with_its_senders_standing(api_client, organization, sales_manager, sales):
    # given: a manager invited with the member role, then lost their manager assignment
    invitation = InvitationFactory(
        organization=organization,
        email="dave@example.com",
        department=sales,
        role=system_role("member"),
        invited_by=sales_manager,
    )
    RoleAssignment.objects.filter(user=sales_manager, role__code="manager").delete()
    before = membership_rows()

    response = api_client.post(TOKEN_URL, {"token": invitation.token, "password": NEW_PASSWORD}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invitation_no_longer_valid"
    assert membership_rows() == before
    assert not User.objects.filter(email="dave@example.com").exists()


# --- my invitations ---------------------------------------------------------------------------------------------------


def test_i_see_only_the_open_invitations_to_my_address(
    client_for, admin_member, organization, other_organization, sales
):
    dave = UserFactory(email="dave@example.com")
    mine = InvitationFactory(
        organization=organization, email="dave@example.com", department=sales, invited_by=admin_member
    )
    InvitationFactory(organization=other_organization, email="dave@example.com", status=InvitationStatus.REVOKED)
    InvitationFactory(
        organization=other_organization,
        email="dave@example.com",
        expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    InvitationFactory(organization=organization, email="emma@example.com")

    response = client_for(dave).get(ME_URL)

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": mine.pk,
            "organization": {"slug": "acme", "name": "Acme"},
            "department": {"id": sales.pk, "name": "Sales"},
            "role": None,
            "job_title": "",
            "invited_by": admin_member.full_name,
            "status": "pending",
            "expires_at": iso(mine.expires_at),
        }
    ]


def test_i_accept_an_invitation_while_signed_in(client_for, admin_member, organization):
    dave = UserFactory(email="dave@example.com")
    invitation = InvitationFactory(
        organization=organization, email="dave@example.com", role=system_role("viewer"), invited_by=admin_member
    )

    response = client_for(dave).post(f"{ME_URL}{invitation.pk}/accept/")

    assert response.status_code == 201, response.json()
    membership = Membership.objects.get(user=dave)
    assert response.json() == {"organization": "acme", "membership": membership.pk}
    assert RoleAssignment.objects.get(user=dave).role.code == "viewer"
    assert client_for(dave).get("/api/v1/organizations/acme/departments/").status_code == 200


def test_a_former_member_comes_back_by_invitation_with_none_of_the_former_access(
    client_for, invite, admin_member, organization
):
    # given: dave was a manager of acme until his membership ended
    dave = MembershipFactory(organization=organization, role="manager", user__email="dave@example.com").user
    former = Membership.objects.get(user=dave)
    assert client_for(admin_member).delete(f"/api/v1/organizations/acme/members/{former.pk}/").status_code == 204

    # when: he is invited again as a viewer and accepts while signed in
    assert invite(admin_member, {"email": "dave@example.com", "role": system_role("viewer").pk}).status_code == 201
    invitation = Invitation.objects.get(email="dave@example.com")
    response = client_for(dave).post(f"{ME_URL}{invitation.pk}/accept/")

    # then: the same membership row is active again, and only the invitation's role is in force
    assert response.status_code == 201, response.json()
    assert response.json() == {"organization": "acme", "membership": former.pk}
    former.refresh_from_db()
    assert (former.is_active, former.left_on, former.joined_on) == (True, None, timezone.localdate())
    in_force = RoleAssignment.objects.filter(user=dave, is_active=True).values_list("role__code", flat=True)
    assert list(in_force) == ["viewer"]
    assert RoleAssignment.objects.get(user=dave, role__code="manager").is_active is False


def test_i_decline_an_invitation(client_for, admin_member, organization):
    dave = UserFactory(email="dave@example.com")
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)

    response = client_for(dave).post(f"{ME_URL}{invitation.pk}/decline/")

    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    assert not Membership.objects.filter(user=dave).exists()
    [declined] = events(SecurityEventKind.INVITATION_DECLINED)
    assert (declined.actor_id, declined.object_id) == (dave.pk, str(invitation.pk))
    assert client_for(dave).get(ME_URL).json() == []


@pytest.mark.parametrize("verb", ["accept", "decline"])
def test_someone_elses_invitation_is_not_found(client_for, admin_member, organization, outsider, verb):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    before = invitation_rows()

    response = client_for(outsider).post(f"{ME_URL}{invitation.pk}/{verb}/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert invitation_rows() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_my_invitations_need_a_signed_in_person(api_client, organization, method):
    invitation = InvitationFactory(organization=organization)
    url = ME_URL if method == "get" else f"{ME_URL}{invitation.pk}/accept/"

    response = getattr(api_client, method)(url)

    assert response.status_code == 401


# --- the accept page --------------------------------------------------------------------------------------------------


def page_url(token: str) -> str:
    return reverse("invitation-accept-page", args=[token])


def test_the_page_creates_the_account_with_a_password(admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    browser = Client(enforce_csrf_checks=True)

    # when: the form is shown, then sent back with its CSRF token
    shown = browser.get(page_url(invitation.token))
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', shown.content.decode())
    assert shown.status_code == 200
    assert "Create your account for dave@example.com" in shown.content.decode()
    assert csrf is not None
    sent = browser.post(
        page_url(invitation.token),
        {
            "csrfmiddlewaretoken": csrf.group(1),
            "full_name": "Dave Davis",
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )

    # then
    assert sent.status_code == 200
    assert "you are now a member" in sent.content.decode()
    dave = User.objects.get(email="dave@example.com")
    assert dave.check_password(NEW_PASSWORD)
    assert Membership.objects.filter(user=dave, organization=organization).exists()


def test_the_page_refuses_a_post_without_csrf_and_different_passwords(admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    browser = Client(enforce_csrf_checks=True)

    forged = browser.post(page_url(invitation.token), {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    differ = Client().post(page_url(invitation.token), {"password": NEW_PASSWORD, "password_again": "other"})

    assert forged.status_code == 403
    assert differ.status_code == 400
    assert "The two passwords differ." in differ.content.decode()
    assert not User.objects.filter(email="dave@example.com").exists()


def test_the_page_explains_a_bad_or_used_link(admin_member, organization):
    invitation = InvitationFactory(
        organization=organization,
        email="dave@example.com",
        invited_by=admin_member,
        status=InvitationStatus.ACCEPTED,
        accepted_at=timezone.now(),
    )

    used = Client().get(page_url(invitation.token))
    bad = Client().get(page_url("nonsense:signature"))

    assert used.status_code == 409
    assert "This invitation has already been accepted." in used.content.decode()
    assert bad.status_code == 404
    assert "This invitation link is not valid." in bad.content.decode()


# --- the admin --------------------------------------------------------------------------------------------------------


@pytest.fixture
def staff_admin(organization) -> User:
    """A staff member who administers acme (every permission there) but is no platform operator."""
    membership = MembershipFactory(organization=organization, role="org_admin", user=UserFactory(is_staff=True))
    return membership.user


def test_staff_cannot_attach_an_existing_account_in_the_admin(staff_admin, outsider, organization):
    browser = Client()
    browser.force_login(staff_admin)
    before = membership_rows()

    shown = browser.get(reverse("admin:organizations_membership_add"))
    sent = browser.post(
        reverse("admin:organizations_membership_add"),
        {"organization": organization.pk, "user": outsider.pk, "joined_on": "2024-01-01", "is_active": "on"},
    )

    assert (shown.status_code, sent.status_code) == (403, 403)
    assert membership_rows() == before


def test_superusers_keep_the_back_office_way_to_add_a_member(superuser):
    browser = Client()
    browser.force_login(superuser)

    assert browser.get(reverse("admin:organizations_membership_add")).status_code == 200


def test_staff_revoke_invitations_from_the_admin_through_the_service(staff_admin, organization, other_organization):
    pending = InvitationFactory(organization=organization, email="dave@example.com")
    browser = Client()
    browser.force_login(staff_admin)

    listed = browser.get(reverse("admin:organizations_invitation_changelist"))
    response = browser.post(
        reverse("admin:organizations_invitation_changelist"),
        {"action": "revoke", "_selected_action": [pending.pk]},
    )

    assert listed.status_code == 200
    assert "dave@example.com" in listed.content.decode()
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == InvitationStatus.REVOKED
    [revoked] = events(SecurityEventKind.INVITATION_REVOKED)
    assert revoked.actor_id == staff_admin.pk


def test_staff_do_not_see_other_organizations_invitations_in_the_admin(staff_admin, other_organization):
    InvitationFactory(organization=other_organization, email="secret@example.com")
    browser = Client()
    browser.force_login(staff_admin)

    listed = browser.get(reverse("admin:organizations_invitation_changelist"))

    assert listed.status_code == 200
    assert "secret@example.com" not in listed.content.decode()


# --- the command line keeps working -----------------------------------------------------------------------------------


def test_seed_demo_and_create_user_still_work(organization):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    call_command("create_user", "--email", "late@example.com", "--password", NEW_PASSWORD, "--organization", "acme")

    assert User.objects.filter(email="late@example.com").exists()
    assert Membership.objects.exists()


def test_every_step_is_a_version_in_the_invitations_history(client_for, admin_member, organization):
    invitation = InvitationFactory(organization=organization, email="dave@example.com", invited_by=admin_member)
    client_for(admin_member).post(f"{URL}{invitation.pk}/revoke/")

    response = client_for(admin_member).get(f"{URL}{invitation.pk}/history/")

    assert response.status_code == 200, response.json()
    versions = response.json()["results"]
    assert [version["action"] for version in versions] == ["updated", "created"]
    assert "token_hash" not in str(versions)


@pytest.mark.django_db(transaction=True)
def test_two_invitations_to_one_address_at_once_give_one_invitation_and_a_409(organization, admin_member):
    # given: one administrator's invitation to dave is inserted but not yet committed
    from django.db import connection, transaction

    from erp.exceptions import ConflictError

    inserted, outcome = threading.Event(), {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.invitation_create(actor=admin_member, organization=organization, email="dave@example.com")
                inserted.set()
                time.sleep(0.5)  # the second one's insert now waits on the unique index
        finally:
            connection.close()

    def second() -> None:
        inserted.wait(5)
        try:
            services.invitation_create(actor=admin_member, organization=organization, email="Dave@Example.com")
        except ConflictError as error:
            outcome["code"] = error.code
        finally:
            connection.close()

    # when: the second arrives while the first is in flight, then the first commits
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # then: one pending invitation, and the second caller got the 409's code instead of a server error
    assert outcome == {"code": "invitation_pending"}
    assert list(Invitation.objects.values_list("email", "status")) == [("dave@example.com", "pending")]
