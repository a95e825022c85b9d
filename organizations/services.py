"""State changes of organizations, departments and memberships.

Every function takes the acting user, validates with ``full_clean()`` before saving and runs in a transaction.
Business guards raise ``ValidationError`` (bad input, 400) or ``ConflictError`` (valid but clashing, 409).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from accounts.models import Actor, User
from audit.events import record_event
from audit.history import changed_fields, record_bulk
from audit.models import SecurityEventKind
from erp.exceptions import ConflictError
from erp.services import assign_fields
from organizations.models import AccessSource, Department, Membership, Organization

ORGANIZATION_FIELDS = {
    "slug",
    "code",
    "name",
    "parent",
    "is_active",
    "time_zone",
    "currency_code",
    "fiscal_year_start_month",
    "max_department_depth",
    "history_retention_days",
}
DEPARTMENT_FIELDS = {"code", "name", "parent", "manager", "headcount_limit", "display_order"}
MEMBERSHIP_FIELDS = {"department", "job_title", "employee_number", "is_active", "joined_on", "left_on"}


def _with_fresh_parent(model: type[Organization] | type[Department], fields: dict[str, Any]) -> dict[str, Any]:
    """Read a new parent again inside the transaction: the caller's copy may predate a move of the tree.

    Cycle, depth and path rules are judged on the parent's stored place; a stale ``path`` or parent chain would let a
    department be put under its own subtree (or an organization under its own subsidiary).
    """
    parent = fields.get("parent")
    if parent is None:
        return fields
    return {**fields, "parent": model.all_objects.get(pk=parent.pk)}


# --- Organizations ---------------------------------------------------------------------------------------------------


@transaction.atomic
def organization_create(*, actor: Actor, slug: str, code: str, name: str, **fields: Any) -> Organization:
    """Create an organization (a tenant or, with ``parent``, a subsidiary)."""
    organization = Organization(slug=slug, code=code, name=name)
    assign_fields(organization, _with_fresh_parent(Organization, fields), ORGANIZATION_FIELDS)
    organization.stamp(actor)
    organization.full_clean()
    organization.save()
    return organization


@transaction.atomic
def organization_update(*, actor: Actor, organization: Organization, **fields: Any) -> Organization:
    """Change an organization's name, parent or settings; the parent chain stays free of cycles."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    assign_fields(organization, _with_fresh_parent(Organization, fields), ORGANIZATION_FIELDS)
    organization.stamp(actor)
    organization.full_clean()
    organization.save()
    return organization


@transaction.atomic
def organization_delete(*, actor: Actor, organization: Organization) -> None:
    """Soft-delete an organization. One with live active subsidiaries cannot go: they would lose their parent."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.subsidiaries.filter(deleted_at__isnull=True, is_active=True).exists():
        raise ConflictError(
            "This organization has active subsidiaries; delete or detach them first.",
            code="organization_has_active_subsidiaries",
        )
    organization.mark_deleted(actor=actor)


@transaction.atomic
def organization_restore(*, actor: Actor, organization: Organization) -> Organization:
    """Bring back a soft-deleted organization (its parent, if any, must be live)."""
    organization = Organization.all_objects.select_for_update().get(pk=organization.pk)
    organization.full_clean()
    organization.mark_restored(actor=actor)
    return organization


# --- Departments -----------------------------------------------------------------------------------------------------


def _require_department_change(actor: User, organization_id: int, department: Department | None) -> None:
    from rbac import engine

    scope = engine.scope_for(actor, organization_id, "organizations.change_department")
    if not scope.covers_path(department.path if department is not None else None):
        where = f"department {department.code}" if department is not None else "the top level of the tree"
        raise PermissionDenied(f"You may not change {where}, so you cannot move departments there or away from it.")


@transaction.atomic
def department_create(*, actor: Actor, organization: Organization, code: str, name: str, **fields: Any) -> Department:
    """Create a department, at the root or under a parent of the same organization, within the depth limit."""
    department = Department(organization=organization, code=code, name=name)
    assign_fields(department, _with_fresh_parent(Department, fields), DEPARTMENT_FIELDS)
    department.stamp(actor)
    department.full_clean(exclude=["path", "depth"])
    department.path = department.own_path
    department.depth = department.parent.depth + 1 if department.parent is not None else 1
    department.save()
    return department


@transaction.atomic
def department_update(*, actor: Actor, department: Department, **fields: Any) -> Department:
    """Edit a department. A new parent or code moves the whole subtree: its paths change in one statement.

    Moves are serialised per organization (its row is locked) so that two concurrent moves cannot build a cycle.
    """
    if "parent" in fields or "code" in fields:
        Organization.objects.select_for_update().filter(pk=department.organization_id).first()
    department = Department.objects.select_for_update().get(pk=department.pk)
    new_parent_id = getattr(fields.get("parent"), "pk", None)
    is_platform = actor is None or isinstance(actor, AnonymousUser) or actor.is_superuser
    if "parent" in fields and new_parent_id != department.parent_id and not is_platform:
        # A move changes the tree at both ends: the actor must be able to change the old and the new parent (the
        # organization's root level needs an organization-wide permission). Otherwise a manager of a subtree could
        # lift their own subtree out of the department it belongs to.
        for parent in (department.parent, fields["parent"]):
            _require_department_change(actor, department.organization_id, parent)  # type: ignore[arg-type]
    old_path, old_depth = department.path, department.depth
    assign_fields(department, _with_fresh_parent(Department, fields), DEPARTMENT_FIELDS)
    department.stamp(actor)
    department.full_clean(exclude=["path", "depth"])
    new_path = department.own_path
    new_depth = department.parent.depth + 1 if department.parent is not None else 1
    if new_path != old_path:
        Department.objects.filter(organization_id=department.organization_id, path__startswith=old_path).exclude(
            pk=department.pk
        ).update(
            path=Concat(Value(new_path), Substr("path", len(old_path) + 1)),
            depth=F("depth") + (new_depth - old_depth),
        )
        # The subtree moved in one statement; its versions go in one more (never a silent bulk update).
        moved = Department.objects.filter(
            organization_id=department.organization_id, path__startswith=new_path
        ).exclude(pk=department.pk)
        record_bulk(list(moved), fields=["path", "depth"])
    department.path, department.depth = new_path, new_depth
    department.save()
    return department


@transaction.atomic
def department_delete(*, actor: Actor, department: Department) -> None:
    """Soft-delete a department. One that still has live sub-departments or active members cannot go."""
    department = Department.objects.select_for_update().get(pk=department.pk)
    if department.children.filter(deleted_at__isnull=True).exists():
        raise ConflictError(
            "This department has active sub-departments; move or delete them first.",
            code="department_has_children",
        )
    if department.memberships.filter(is_active=True).exists():
        raise ConflictError(
            "This department still has active members; move them to another department first.",
            code="department_has_members",
        )
    department.mark_deleted(actor=actor)


@transaction.atomic
def department_restore(*, actor: Actor, department: Department) -> Department:
    """Bring back a soft-deleted department under its (live) parent; its code must still be free."""
    department = Department.all_objects.select_for_update().get(pk=department.pk)
    department.deleted_at = None
    department.full_clean(exclude=["path", "depth"])
    department.path = department.own_path
    department.depth = department.parent.depth + 1 if department.parent is not None else 1
    department.skip_history_when_saving = True  # type: ignore[attr-defined]  # the restore below is the one version
    department.save(update_fields=["path", "depth"])
    del department.skip_history_when_saving  # type: ignore[attr-defined]
    department.mark_restored(actor=actor)
    return department


# --- Memberships -----------------------------------------------------------------------------------------------------


@transaction.atomic
def membership_create(
    *,
    actor: Actor,
    organization: Organization,
    user: User,
    source: str = AccessSource.MANUAL,
    **fields: Any,
) -> Membership:
    """Make a user a member of an organization (once), optionally in one of its departments.

    ``source`` is ``provider`` only for memberships that follow the identity provider's claims.
    """
    membership = Membership(organization=organization, user=user, source=source)
    assign_fields(membership, fields, MEMBERSHIP_FIELDS)
    membership.stamp(actor)
    membership.full_clean()
    membership.save()
    _membership_event(SecurityEventKind.MEMBERSHIP_ADDED, actor, membership, sorted(fields))
    return membership


@transaction.atomic
def membership_update(*, actor: Actor, membership: Membership, **fields: Any) -> Membership:
    """Change a member's department, title, number, state or dates.

    Nobody may end, change or restore access they could not have given: the actor must hold every permission the
    person's assignments and grants give them, over each one's scope (``rbac.services.require_standing_over``).
    Setting ``is_active`` to false ends the membership (see ``membership_end``). An ended membership stays ended for
    people (409): coming back is a new membership, and any access is given again. Only platform code (``actor=None``:
    the identity provider's synchronisation) reopens one, and that brings none of the former access back.
    """
    from rbac import services as rbac_services

    Organization.all_objects.select_for_update().filter(pk=membership.organization_id).values_list("pk").first()
    membership = Membership.objects.select_for_update().select_related("organization").get(pk=membership.pk)
    was_active = membership.is_active
    rbac_services.require_standing_over(actor=actor, organization=membership.organization, user=membership.user)
    if not was_active and fields.get("is_active") and actor is not None:
        raise ConflictError(
            "This membership has ended and cannot be restored: coming back is a new membership (invite the person "
            "again), and any access must be given again.",
            code="membership_ended",
        )
    assign_fields(membership, fields, MEMBERSHIP_FIELDS)
    if "is_active" in fields and fields["is_active"] and "left_on" not in fields:
        membership.left_on = None
    ending = was_active and not membership.is_active
    reopening = not was_active and membership.is_active
    if ending and membership.left_on is None:
        membership.left_on = timezone.localdate()
    membership.stamp(actor)
    membership.full_clean()
    changed = changed_fields(membership)
    administrators_before = (
        rbac_services.administrators_snapshot(organization_id=membership.organization_id) if ending else None
    )
    membership.save()
    if ending or reopening:
        # Reopening is a new start: what the former membership still carried (rows from before ending a membership
        # ended its access) stays behind, like everything an ending ends.
        rbac_services.member_access_end(actor=actor, organization=membership.organization, user=membership.user)
    if administrators_before is not None:
        rbac_services.refuse_losing_the_last_administrator(
            actor=actor,
            organization_id=membership.organization_id,
            user_id=membership.user_id,
            before=administrators_before,
        )
    if changed:
        kind = SecurityEventKind.MEMBERSHIP_REMOVED if ending else SecurityEventKind.MEMBERSHIP_CHANGED
        _membership_event(kind, actor, membership, changed)
    return membership


def _membership_event(kind: str, actor: Actor, membership: Membership, fields: list[str]) -> None:
    record_event(
        kind,
        organization=membership.organization_id,
        actor=actor if isinstance(actor, User) else None,
        target_user=membership.user_id,
        obj=membership,
        data={"fields": fields, "is_active": membership.is_active, "source": membership.source},
    )


@transaction.atomic
def membership_end(*, actor: Actor, membership: Membership, left_on: datetime.date | None = None) -> Membership:
    """End a membership: the person leaves the organization but the record stays for history.

    Ending it ends, for good, the role assignments and object grants it carried (with history rows and security
    events). Only someone who could have given all of that may end it, and an organization never loses its last
    active administrator this way (409), the administrator themselves included. Ending an ended membership changes
    nothing: its original leaving date is kept.
    """
    if not membership.is_active and membership.left_on is not None:
        return membership
    left_on = left_on or timezone.localdate()
    return membership_update(actor=actor, membership=membership, is_active=False, left_on=left_on)
