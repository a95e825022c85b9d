"""Memberships and role assignments that follow the identity provider's claims (``OIDC_ROLE_MAPPING``).

At each sign-in the claims are turned into grants (see ``accounts.oidc.mapping``) and the person's provider-sourced
memberships and assignments are brought in line with them through the organizations and rbac services, so that every
change has its history row and its security event. Rows given by hand (``source=manual``) are never changed or
removed; the provider neither reopens a membership ended by hand nor duplicates a role given by hand. Organizations,
roles and departments the mapping names but the installation does not have are logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from accounts.oidc.mapping import Grant, RoleMapping, parse_role_mapping
from audit.context import audit_context
from erp.exceptions import ConflictError
from organizations import services as organization_services
from organizations.models import AccessSource, Department, Membership, Organization
from rbac import services as rbac_services
from rbac.models import Role, RoleAssignment

logger = logging.getLogger(__name__)

SYNC_REASON = "Follows the identity provider's claims at sign-in."
ASSIGNMENT_REASON = "Given by the identity provider's claims."

# (organization id, role id, department id or None): one provider-sourced assignment.
AssignmentKey = tuple[int, int, int | None]


@dataclass
class SyncReport:
    """What one synchronisation changed (for logs and tests)."""

    memberships_added: list[str] = field(default_factory=list)
    memberships_reopened: list[str] = field(default_factory=list)
    memberships_ended: list[str] = field(default_factory=list)
    roles_assigned: list[str] = field(default_factory=list)
    roles_reactivated: list[str] = field(default_factory=list)
    roles_revoked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.memberships_added,
                self.memberships_reopened,
                self.memberships_ended,
                self.roles_assigned,
                self.roles_reactivated,
                self.roles_revoked,
            )
        )


@dataclass
class _Wanted:
    organization: Organization
    roles: set[tuple[Role, Department | None]] = field(default_factory=set)


def current_mapping() -> RoleMapping:
    return parse_role_mapping(getattr(settings, "OIDC_ROLE_MAPPING", None) or None)


def _label(organization: Organization, role: Role | None = None, department: Department | None = None) -> str:
    label = organization.slug
    if role is not None:
        label += f":{role.code}"
    if department is not None:
        label += f"@{department.code}"
    return label


def _resolve(grants: set[Grant], report: SyncReport) -> dict[int, _Wanted]:
    """The grants as rows of this installation, by organization id; unknown names are logged and skipped."""
    slugs = {grant.organization for grant in grants}
    organizations = {organization.slug: organization for organization in Organization.objects.filter(slug__in=slugs)}
    wanted: dict[int, _Wanted] = {}
    for grant in sorted(grants, key=lambda grant: (grant.organization, grant.role or "", grant.department or "")):
        organization = organizations.get(grant.organization)
        if organization is None or not organization.is_active:
            _skip(report, f"organization {grant.organization!r} does not exist or is inactive")
            continue
        entry = wanted.setdefault(organization.pk, _Wanted(organization))
        if grant.role is None:
            continue
        # An organization's own role wins over a system role with the same code.
        role = Role.objects.available_in(organization).filter(code=grant.role).order_by("organization_id").first()
        if role is None:
            _skip(report, f"role {grant.role!r} does not exist in {organization.slug!r}")
            continue
        department = None
        if grant.department is not None:
            department = Department.objects.for_organization(organization).filter(code=grant.department).first()
            if department is None:
                _skip(report, f"department {grant.department!r} does not exist in {organization.slug!r}")
                continue
        entry.roles.add((role, department))
    return wanted


def _skip(report: SyncReport, problem: str) -> None:
    logger.warning("OIDC_ROLE_MAPPING names something this installation lacks: %s; skipped", problem)
    report.skipped.append(problem)


def sync_provider_access(*, user: User, claims: Mapping[str, Any], mapping: RoleMapping | None = None) -> SyncReport:
    """Bring the person's provider-sourced memberships and role assignments in line with their claims.

    Without a mapping nothing follows the provider and nothing is changed.
    """
    mapping = current_mapping() if mapping is None else mapping
    report = SyncReport()
    if not mapping:
        return report
    with audit_context(reason=SYNC_REASON), transaction.atomic():
        wanted = _resolve(mapping.grants_for(claims), report)
        memberships = {
            membership.organization_id: membership
            for membership in Membership.objects.select_for_update().filter(user=user).select_related("organization")
        }
        kept: set[AssignmentKey] = set()
        for organization_id, entry in wanted.items():
            if not _ensure_membership(user, entry.organization, memberships.get(organization_id), report):
                continue
            for role, department in sorted(entry.roles, key=lambda pair: (pair[0].code, pair[1] and pair[1].code)):
                kept.add((organization_id, role.pk, department.pk if department is not None else None))
                _ensure_assignment(user, entry.organization, role, department, report)
        _revoke_others(user, kept, report)
        _end_other_memberships(user, set(wanted), report)
    if report.changed:
        logger.info("Provider access of user %s synchronised: %s", user.pk, report)
    return report


def _ensure_membership(
    user: User, organization: Organization, membership: Membership | None, report: SyncReport
) -> bool:
    """True when the person is (now) an active member; a membership ended by hand stays ended."""
    if membership is None:
        if _attempt(
            report,
            _label(organization),
            partial(
                organization_services.membership_create,
                actor=None,
                organization=organization,
                user=user,
                source=AccessSource.PROVIDER,
            ),
        ):
            report.memberships_added.append(_label(organization))
            return True
        return False
    if membership.is_active:
        return True
    if membership.source != AccessSource.PROVIDER:
        _skip(report, f"the membership of {organization.slug!r} was ended by hand")
        return False
    if _attempt(
        report,
        _label(organization),
        partial(organization_services.membership_update, actor=None, membership=membership, is_active=True),
    ):
        report.memberships_reopened.append(_label(organization))
        return True
    return False


def _ensure_assignment(
    user: User, organization: Organization, role: Role, department: Department | None, report: SyncReport
) -> None:
    label = _label(organization, role, department)
    existing = RoleAssignment.objects.filter(
        organization=organization, user=user, role=role, department=department
    ).first()
    if existing is None:
        if _attempt(
            report,
            label,
            partial(
                rbac_services.role_assign,
                actor=None,
                organization=organization,
                user=user,
                role=role,
                department=department,
                reason=ASSIGNMENT_REASON,
                source=AccessSource.PROVIDER,
            ),
        ):
            report.roles_assigned.append(label)
        return
    if existing.source != AccessSource.PROVIDER or existing.is_active:
        return  # given by hand (never changed here), or already in force
    if _attempt(
        report,
        label,
        partial(rbac_services.role_assignment_update, actor=None, assignment=existing, is_active=True),
    ):
        report.roles_reactivated.append(label)


def _revoke_others(user: User, kept: set[AssignmentKey], report: SyncReport) -> None:
    provider_assignments = RoleAssignment.objects.filter(user=user, source=AccessSource.PROVIDER).select_related(
        "organization", "role", "department"
    )
    for assignment in provider_assignments:
        key = (assignment.organization_id, assignment.role_id, assignment.department_id)
        if key in kept:
            continue
        label = _label(assignment.organization, assignment.role, assignment.department)
        if _attempt(report, label, partial(rbac_services.role_revoke, actor=None, assignment=assignment)):
            report.roles_revoked.append(label)


def _end_other_memberships(user: User, wanted: set[int], report: SyncReport) -> None:
    provider_memberships = Membership.objects.filter(
        user=user, source=AccessSource.PROVIDER, is_active=True
    ).select_related("organization")
    for membership in provider_memberships.exclude(organization_id__in=wanted):
        held_by_hand = RoleAssignment.objects.filter(
            user=user, organization_id=membership.organization_id, source=AccessSource.MANUAL, is_active=True
        ).exists()
        if held_by_hand:
            # Roles given by hand need the membership: ending it would take them away too.
            _skip(report, f"the membership of {membership.organization.slug!r} carries roles given by hand")
            continue
        label = _label(membership.organization)
        if _attempt(report, label, partial(organization_services.membership_end, actor=None, membership=membership)):
            report.memberships_ended.append(label)


def _attempt(report: SyncReport, label: str, change: Callable[[], object]) -> bool:
    """Apply one change in its own savepoint: a refused change is logged and skipped, the others still happen."""
    try:
        with transaction.atomic():
            change()
    except (ValidationError, ConflictError) as error:
        logger.warning("Provider access %s could not be changed: %s", label, error)
        report.skipped.append(f"{label}: {error}")
        return False
    return True
