"""Invitations: the only way a person joins an organization from the API or the back office.

An administrator (a holder of ``organizations.manage_members`` over the department, or over the whole organization when
no department is named) invites an email address, optionally with a role they could give themselves. The answer is the
same whether or not an account with that address exists, and nobody becomes a member before they accept: through the
signed, single-use, expiring link sent by email, or — signed in — from ``/api/v1/me/invitations/``. Platform operators
(superusers) never join an organization this way. Every step is a version of the invitation and a security event.

The link's token is ``<secret>:<signature>``: the signature (Django's signing, salted) turns a tampered link away
before the database is asked; only the secret's SHA-256 hash is stored, and a resend replaces it.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Actor, User
from audit.events import record_event
from audit.models import SecurityEventKind
from erp.exceptions import ConflictError
from organizations import services as organization_services
from organizations.models import (
    Department,
    Invitation,
    InvitationStatus,
    Membership,
    Organization,
    normalise_invitation_email,
)
from rbac import engine
from rbac import services as rbac_services
from rbac.models import Role

logger = logging.getLogger(__name__)

MANAGE_MEMBERS = "organizations.manage_members"
TOKEN_SALT = "organizations.invitation"
DEFAULT_VALID_DAYS = 7
INVALID_LINK = "This invitation link is not valid."
SUPERUSER_REFUSED = "Platform operators cannot join an organization through an invitation."
CLOSED_MESSAGES = {
    InvitationStatus.ACCEPTED: "This invitation has already been accepted.",
    InvitationStatus.DECLINED: "This invitation has been declined.",
    InvitationStatus.REVOKED: "This invitation has been withdrawn.",
    InvitationStatus.EXPIRED: "This invitation has expired; ask for a new one.",
}


def valid_for() -> datetime.timedelta:
    """How long a link stays valid after it is sent (``INVITATION_VALID_DAYS``, a week by default)."""
    return datetime.timedelta(days=getattr(settings, "INVITATION_VALID_DAYS", DEFAULT_VALID_DAYS))


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _issue_token(invitation: Invitation) -> str:
    """Give the invitation a new secret (the previous link stops working) and return the signed link token."""
    secret = secrets.token_urlsafe(32)
    invitation.token_hash = token_hash(secret)
    return signing.Signer(salt=TOKEN_SALT).sign(secret)


def invitation_for_token(token: str) -> Invitation:
    """The invitation a link token names, whatever its state. A tampered or unknown token is a ``token`` error."""
    try:
        secret = signing.Signer(salt=TOKEN_SALT).unsign(token)
    except signing.BadSignature as error:
        raise ValidationError({"token": INVALID_LINK}, code="invalid_token") from error
    invitation = (
        Invitation.objects.select_related("organization", "department", "role", "invited_by")
        .filter(token_hash=token_hash(secret), organization__deleted_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise ValidationError({"token": INVALID_LINK}, code="invalid_token")
    return invitation


def require_open(invitation: Invitation) -> None:
    if invitation.status != InvitationStatus.PENDING:
        raise ConflictError(
            CLOSED_MESSAGES[InvitationStatus(invitation.status)], code=f"invitation_{invitation.status}"
        )
    if invitation.expires_at <= timezone.now():
        raise ConflictError(CLOSED_MESSAGES[InvitationStatus.EXPIRED], code="invitation_expired")


# --- Who may invite --------------------------------------------------------------------------------------------------


def _require_manage_members(actor: Actor, organization: Organization | int, department: Department | None) -> None:
    """The inviter holds ``manage_members`` over the department's subtree (organization-wide without a department)."""
    if actor is None:
        return  # the platform acting for nobody (commands run by operators)
    if not isinstance(actor, User):
        raise PermissionDenied("Sign in first.")
    scope = engine.scope_for(actor, organization, MANAGE_MEMBERS)
    if not scope.covers_path(department.path if department is not None else None):
        where = f"department {department.code}" if department is not None else "the whole organization"
        raise PermissionDenied(f"You may not add members to {where}.")


def _require_grantable(
    actor: Actor, organization: Organization, role: Role | None, department: Department | None
) -> None:
    """The role must be one the inviter may give: rbac's "nobody can grant what they do not hold" rule, over the
    same scope the assignment will have."""
    if role is None:
        return
    if not Role.objects.available_in(organization).filter(pk=role.pk).exists():
        raise ValidationError({"role": "The role is not available in this organization."}, code="invalid")
    required = {"rbac.add_roleassignment", *rbac_services.role_permission_names(role)}
    # rbac's own rule, the one role_assign applies: nobody can hand out what they do not hold.
    rbac_services._require_holding(actor, organization, required, department)


def _inviter_still_may(invitation: Invitation) -> bool:
    """Whether the person who sent the invitation may still add members there and give its role.

    An invitation speaks for its sender: once they lost that standing (left, demoted), it no longer lets anyone in.
    """
    inviter = invitation.invited_by
    if inviter is None or not inviter.is_active:
        return False
    try:
        _require_manage_members(inviter, invitation.organization, invitation.department)
        _require_grantable(inviter, invitation.organization, invitation.role, invitation.department)
    except (PermissionDenied, ValidationError):
        return False
    return True


# --- Events and email ------------------------------------------------------------------------------------------------


def _event(kind: str, actor: Actor, invitation: Invitation, *, target_user: User | None = None, **data: object) -> None:
    record_event(
        kind,
        organization=invitation.organization_id,
        actor=actor if isinstance(actor, User) else None,
        target_user=target_user,
        obj=invitation,
        # The address is personal data: it goes to the event's erasable detail, never into the chained row.
        email=invitation.email,
        data={
            "department": invitation.department.code if invitation.department is not None else None,
            "role": invitation.role.code if invitation.role is not None else None,
            "status": invitation.status,
            **data,
        },
    )


def accept_url(token: str) -> str:
    """The absolute address of the accept page for a link token (``SITE_URL`` names the installation)."""
    base = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{reverse('invitation-accept-page', args=[token])}"


def send_invitation_email(*, invitation_pk: int, token: str) -> None:
    """Mail the link (plain text and HTML) through Django's mail backend. Called after the transaction commits."""
    invitation = Invitation.objects.select_related("organization", "department", "role", "invited_by").get(
        pk=invitation_pk
    )
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "inviter_name": invitation.invited_by.get_full_name() if invitation.invited_by is not None else "",
        "accept_url": accept_url(token),
        "expires_at": invitation.expires_at,
    }
    message = EmailMultiAlternatives(
        subject=f"You are invited to join {invitation.organization.name}",
        body=render_to_string("organizations/email/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(render_to_string("organizations/email/invitation.html", context), "text/html")
    message.send()


def _send_after_commit(invitation: Invitation, token: str) -> None:
    pk = invitation.pk
    transaction.on_commit(lambda: send_invitation_email(invitation_pk=pk, token=token))


# --- State changes ---------------------------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *,
    actor: Actor,
    organization: Organization,
    email: str,
    department: Department | None = None,
    role: Role | None = None,
    job_title: str = "",
) -> Invitation:
    """Invite an email address into the organization (optionally a department, with a role the actor may give).

    The outcome never depends on whether an account with the address exists: no account is looked up here. A person who
    is already a member cannot be invited again; a former member can (coming back is a new start, with no former
    access). A pending invitation to the same address must be resent instead (one that has run out is closed as expired
    and replaced).
    """
    _require_manage_members(actor, organization, department)
    _require_grantable(actor, organization, role, department)
    email = normalise_invitation_email(email)
    # Members are people of this organization whom the inviter may list anyway: saying so reveals nothing new.
    if Membership.objects.for_organization(organization).filter(user__email__iexact=email, is_active=True).exists():
        raise ValidationError({"email": "This person already has a membership in this organization."}, code="member")
    now = timezone.now()
    previous = (
        Invitation.objects.for_organization(organization)
        .select_for_update()
        .filter(email=email, status=InvitationStatus.PENDING)
        .first()
    )
    if previous is not None and previous.expires_at > now:
        raise ConflictError(
            "This address already has a pending invitation to this organization; resend it instead.",
            code="invitation_pending",
        )
    if previous is not None:
        previous.status, previous.closed_at = InvitationStatus.EXPIRED, now
        previous.save(update_fields=["status", "closed_at", "updated_at"])
    invitation = Invitation(
        organization=organization,
        email=email,
        department=department,
        role=role,
        job_title=job_title,
        invited_by=actor if isinstance(actor, User) else None,
        sent_at=now,
        expires_at=now + valid_for(),
    )
    token = _issue_token(invitation)
    invitation.stamp(actor)
    invitation.full_clean()
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError as error:
        # Another invitation to the same address committed between the check above and this insert.
        raise ConflictError(
            "This address already has a pending invitation to this organization; resend it instead.",
            code="invitation_pending",
        ) from error
    _event(SecurityEventKind.INVITATION_SENT, actor, invitation, resent=False)
    _send_after_commit(invitation, token)
    return invitation


@transaction.atomic
def invitation_resend(*, actor: Actor, invitation: Invitation) -> Invitation:
    """Send a pending invitation again with a new link (the old one stops working) and a fresh validity period.

    The sender needs the same standing as for inviting; a pending invitation that ran out is reopened this way.
    """
    invitation = (
        Invitation.objects.select_for_update(of=("self",)).select_related("department", "role").get(pk=invitation.pk)
    )
    if invitation.status != InvitationStatus.PENDING:
        raise ConflictError(
            CLOSED_MESSAGES[InvitationStatus(invitation.status)] + " Only a pending invitation can be resent.",
            code=f"invitation_{invitation.status}",
        )
    _require_manage_members(actor, invitation.organization_id, invitation.department)
    _require_grantable(actor, invitation.organization, invitation.role, invitation.department)
    now = timezone.now()
    token = _issue_token(invitation)
    invitation.sent_at, invitation.expires_at = now, now + valid_for()
    invitation.send_count += 1
    if isinstance(actor, User):
        invitation.invited_by = actor  # the link now speaks for whoever sent it last
    invitation.stamp(actor)
    invitation.full_clean()
    invitation.save()
    _event(SecurityEventKind.INVITATION_SENT, actor, invitation, resent=True)
    _send_after_commit(invitation, token)
    return invitation


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    """Withdraw a pending invitation: its link stops working. Needs the standing needed to send it."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",)).select_related("department", "role").get(pk=invitation.pk)
    )
    if invitation.status != InvitationStatus.PENDING:
        raise ConflictError(
            CLOSED_MESSAGES[InvitationStatus(invitation.status)] + " Only a pending invitation can be revoked.",
            code=f"invitation_{invitation.status}",
        )
    _require_manage_members(actor, invitation.organization_id, invitation.department)
    invitation.status, invitation.closed_at = InvitationStatus.REVOKED, timezone.now()
    invitation.stamp(actor)
    invitation.full_clean()
    invitation.save()
    _event(SecurityEventKind.INVITATION_REVOKED, actor, invitation)
    return invitation


def _require_addressee(user: User, invitation: Invitation) -> None:
    if normalise_invitation_email(user.email) != invitation.email:
        raise PermissionDenied("This invitation was sent to another email address.")
    if user.is_superuser:
        raise PermissionDenied(SUPERUSER_REFUSED)
    if not user.is_active:
        raise PermissionDenied("This account has been deactivated.")


@transaction.atomic
def invitation_accept(*, user: User, invitation: Invitation) -> Membership:
    """The invited person joins: the membership (and the role, for the invitation's department) is created.

    Only a pending, unexpired invitation addressed to the person's email is accepted, never by a platform operator, and
    only while its sender may still add members there and give its role. The membership and the role assignment go
    through their own services in the sender's name; the acceptance itself is the invited person's.
    """
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization", "department", "role", "invited_by")
        .get(pk=invitation.pk)
    )
    require_open(invitation)
    _require_addressee(user, invitation)
    former = Membership.objects.for_organization(invitation.organization_id).filter(user=user).first()
    if former is not None and former.is_active:
        raise ConflictError("You already have a membership in this organization.", code="already_member")
    if not _inviter_still_may(invitation):
        raise ConflictError(
            "This invitation is no longer valid: its sender can no longer add you with this role. Ask for a new one.",
            code="invitation_no_longer_valid",
        )
    inviter = invitation.invited_by
    if former is not None:
        # A former member comes back on their old row (one membership per person and organization), reopened by the
        # platform: that is a new start, which ends whatever the former membership still carried.
        membership = organization_services.membership_update(
            actor=None,
            membership=former,
            is_active=True,
            department=invitation.department,
            job_title=invitation.job_title,
            joined_on=timezone.localdate(),
            left_on=None,
        )
    else:
        membership = organization_services.membership_create(
            actor=inviter,
            organization=invitation.organization,
            user=user,
            department=invitation.department,
            job_title=invitation.job_title,
        )
    if invitation.role is not None:
        rbac_services.role_assign(
            actor=inviter,
            organization=invitation.organization,
            user=user,
            role=invitation.role,
            department=invitation.department,
            reason=f"Invitation {invitation.pk} accepted",
        )
    now = timezone.now()
    invitation.status, invitation.accepted_by, invitation.accepted_at, invitation.closed_at = (
        InvitationStatus.ACCEPTED,
        user,
        now,
        now,
    )
    invitation.stamp(user)
    invitation.full_clean()
    invitation.save()
    _event(SecurityEventKind.INVITATION_ACCEPTED, user, invitation, target_user=user, membership=membership.pk)
    return membership


@transaction.atomic
def invitation_decline(*, user: User, invitation: Invitation) -> Invitation:
    """The invited person says no: the invitation closes and its link stops working."""
    invitation = (
        Invitation.objects.select_for_update(of=("self",)).select_related("department", "role").get(pk=invitation.pk)
    )
    require_open(invitation)
    if normalise_invitation_email(user.email) != invitation.email:
        raise PermissionDenied("This invitation was sent to another email address.")
    invitation.status, invitation.closed_at = InvitationStatus.DECLINED, timezone.now()
    invitation.stamp(user)
    invitation.full_clean()
    invitation.save()
    _event(SecurityEventKind.INVITATION_DECLINED, user, invitation, target_user=user)
    return invitation


@dataclass(frozen=True)
class TokenAcceptance:
    membership: Membership
    user: User
    account_created: bool


@transaction.atomic
def invitation_accept_with_token(
    *, token: str, password: str | None = None, full_name: str = "", signed_in: User | None = None
) -> TokenAcceptance:
    """Accept through the emailed link. The link proves that its holder reads the invited address.

    Someone new gets an account with that address and the password they choose (which must pass the password policy;
    without one the account signs in only through the identity provider). Someone who already has an account joins
    with it, and no password of theirs is set or changed here; when signed in, they must be signed in as that account.
    """
    invitation = invitation_for_token(token)
    require_open(invitation)
    account = User.objects.filter(email__iexact=invitation.email).first()
    if signed_in is not None and (account is None or signed_in.pk != account.pk):
        raise PermissionDenied("You are signed in as someone else: sign out, then open the link again.")
    created = account is None
    if account is None:
        if not password and not getattr(settings, "OIDC_ISSUER", ""):
            raise ValidationError({"password": "Choose a password for your new account."}, code="required")
        account = account_services.user_create(email=invitation.email, password=password or None, full_name=full_name)
    membership = invitation_accept(user=account, invitation=invitation)
    return TokenAcceptance(membership=membership, user=account, account_created=created)
