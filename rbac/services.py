"""State changes of roles, role assignments and object grants.

No escalation: an actor can only put into a role, hand out through an assignment or share through a grant the
permissions they hold themselves, where they hold them. System roles change only through superusers (or
``sync_system_roles``). ``actor=None`` is code acting for the platform (migrations, commands run by operators).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import Actor, User
from audit.events import record_event
from audit.models import SecurityEventKind
from erp.exceptions import ConflictError
from organizations.models import AccessSource, Department, Membership, Organization
from rbac import engine
from rbac.grants import grant_models_for, shareable_models
from rbac.models import Role, RoleAssignment, RolePermission

ROLE_FIELDS = {"code", "name", "description", "parent"}
ASSIGNMENT_FIELDS = {"department", "valid_from", "valid_until", "is_active", "reason"}
# What makes someone an administrator of an organization: changing it, managing its members and giving, changing and
# taking back roles, all organization-wide. The system role ``org_admin`` carries them (it carries everything); an
# organization's own role may too. An organization never loses its last active member who holds them.
ADMINISTRATOR_PERMISSIONS = frozenset(
    {
        "organizations.change_organization",
        "organizations.manage_members",
        "rbac.add_role",
        "rbac.change_role",
        "rbac.add_roleassignment",
        "rbac.change_roleassignment",
        "rbac.delete_roleassignment",
    }
)
STANDING_NAMED = 3  # a refusal names this many of the missing permissions (an administrator's are in the hundreds)


def permission_label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def resolve_permissions(names: list[str]) -> list[Permission]:
    """``app_label.codename`` strings to Permission rows; unknown names are a ValidationError naming them."""
    wanted = set(names)
    found: dict[str, Permission] = {}
    malformed = sorted(name for name in wanted if name.count(".") != 1)
    candidates = Permission.objects.select_related("content_type").filter(
        codename__in={name.split(".", 1)[1] for name in wanted if name.count(".") == 1}
    )
    for permission in candidates:
        label = permission_label(permission)
        if label in wanted:
            found[label] = permission
    unknown = sorted((wanted - set(found)) | set(malformed))
    if unknown:
        raise ValidationError({"permissions": [f"Unknown permission: {name}." for name in unknown]}, code="unknown")
    return [found[name] for name in sorted(found)]


def role_permission_names(role: Role) -> set[str]:
    """Every permission the role grants, its ancestors' included."""
    names: set[str] = set()
    seen: set[int] = set()
    current: Role | None = role
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        names |= {
            f"{app_label}.{codename}"
            for app_label, codename in RolePermission.objects.filter(role=current).values_list(
                "permission__content_type__app_label", "permission__codename"
            )
        }
        current = current.parent
    return names


def _require_holding(
    actor: Actor, organization: Organization, permissions: set[str], department: Department | None = None
) -> None:
    """The actor must hold every permission organization-wide (or over ``department``'s subtree)."""
    if actor is None or (isinstance(actor, User) and actor.is_superuser):
        return
    if not isinstance(actor, User):
        raise PermissionDenied("Sign in first.")
    missing = sorted(
        permission
        for permission in permissions
        if not engine.scope_for(actor, organization, permission).covers_path(department.path if department else None)
    )
    if missing:
        raise PermissionDenied(f"You cannot hand out permissions you do not hold here: {', '.join(missing)}.")


def _require_superuser_for_system(actor: Actor, role: Role) -> None:
    if role.is_system and actor is not None and not (isinstance(actor, User) and actor.is_superuser):
        raise PermissionDenied("System roles can only be changed by platform operators.")


# --- Roles -----------------------------------------------------------------------------------------------------------


def _set_permissions(role: Role, permissions: list[Permission]) -> None:
    wanted = {permission.pk for permission in permissions}
    current = set(RolePermission.objects.filter(role=role).values_list("permission_id", flat=True))
    for permission_id in sorted(wanted - current):
        RolePermission.objects.create(role=role, permission_id=permission_id)
    for link in RolePermission.objects.filter(role=role, permission_id__in=current - wanted):
        link.delete()


@transaction.atomic
def role_create(
    *,
    actor: Actor,
    organization: Organization,
    code: str,
    name: str,
    permissions: list[Permission] | None = None,
    **fields: Any,
) -> Role:
    """Create an organization's own role; the actor must hold every permission it would grant (inherited too)."""
    _require_holding(actor, organization, {"rbac.add_role"})
    role = Role(organization=organization, code=code, name=name, **_only(fields, ROLE_FIELDS))
    role.stamp(actor)
    role.full_clean()
    granted = {permission_label(permission) for permission in permissions or []}
    if role.parent is not None:
        granted |= role_permission_names(role.parent)
    _require_holding(actor, organization, granted)
    role.save()
    _set_permissions(role, permissions or [])
    _event(SecurityEventKind.ROLE_CREATED, actor, role.organization, role, code=role.code, permissions=sorted(granted))
    return role


@transaction.atomic
def role_update(
    *,
    actor: Actor,
    role: Role,
    organization: Organization | None = None,
    permissions: list[Permission] | None = None,
    **fields: Any,
) -> Role:
    """Change a role. System roles: superusers only. New permissions (own or inherited) must be held by the actor.

    Taking permissions out of a role may not leave the organization without an active administrator (409).
    """
    role = Role.objects.select_for_update().get(pk=role.pk)
    _require_superuser_for_system(actor, role)
    organization = organization or role.organization
    if organization is not None:
        _require_holding(actor, organization, {"rbac.change_role"})
    before = role_permission_names(role)
    # Taking administrator permissions out of a role may not leave its organization without an administrator.
    administrators_before: tuple[set[int], set[int]] | None = None
    if organization is not None and before & ADMINISTRATOR_PERMISSIONS:
        _lock_organization(organization.pk)
        administrators_before = administrators_snapshot(organization_id=organization.pk)
    for field, value in _only(fields, ROLE_FIELDS).items():
        setattr(role, field, value)
    role.stamp(actor)
    role.full_clean()
    after = {permission_label(permission) for permission in permissions} if permissions is not None else None
    inherited = role_permission_names(role.parent) if role.parent is not None else set()
    own = (
        after
        if after is not None
        else {
            f"{app_label}.{codename}"
            for app_label, codename in RolePermission.objects.filter(role=role).values_list(
                "permission__content_type__app_label", "permission__codename"
            )
        }
    )
    if organization is not None:
        _require_holding(actor, organization, (own | inherited) - before)
    role.save()
    if permissions is not None:
        _set_permissions(role, permissions)
    now_held = role_permission_names(role)
    if organization is not None and administrators_before is not None and before - now_held:
        refuse_losing_the_last_administrator(actor=actor, organization_id=organization.pk, before=administrators_before)
    _event(
        SecurityEventKind.ROLE_CHANGED,
        actor,
        role.organization,
        role,
        code=role.code,
        added=sorted(now_held - before),
        removed=sorted(before - now_held),
    )
    return role


@transaction.atomic
def role_delete(*, actor: Actor, role: Role) -> None:
    """Delete a role that nobody holds and no role inherits from. System roles: superusers only."""
    role = Role.objects.select_for_update().get(pk=role.pk)
    _require_superuser_for_system(actor, role)
    if role.organization is not None:
        _require_holding(actor, role.organization, {"rbac.delete_role"})
    if role.assignments.filter(is_active=True).exists():
        raise ConflictError("This role is assigned to people; revoke the assignments first.", code="role_in_use")
    if role.children.exists():
        raise ConflictError("Other roles inherit from this role; change their parent first.", code="role_has_children")
    role.assignments.all().delete()
    _event(SecurityEventKind.ROLE_DELETED, actor, role.organization, role, code=role.code)
    role.delete()


# --- Assignments -----------------------------------------------------------------------------------------------------


@transaction.atomic
def role_assign(
    *,
    actor: Actor,
    organization: Organization,
    user: User,
    role: Role,
    department: Department | None = None,
    valid_from: datetime.datetime | None = None,
    valid_until: datetime.datetime | None = None,
    is_active: bool = True,
    reason: str = "",
    source: str = AccessSource.MANUAL,
) -> RoleAssignment:
    """Give a user a role in the organization (optionally for a department subtree and a period).

    The user must be an active member; the same role twice for the same scope is a conflict; the actor must hold
    every permission of the role over the assignment's scope. ``source`` is ``provider`` only for assignments that
    follow the identity provider's claims.
    """
    assignment = RoleAssignment(
        organization=organization,
        user=user,
        role=role,
        department=department,
        valid_from=valid_from,
        valid_until=valid_until,
        is_active=is_active,
        reason=reason,
        source=source,
        granted_by=actor if isinstance(actor, User) else None,
    )
    assignment.stamp(actor)
    assignment.full_clean(validate_constraints=False)
    duplicate = RoleAssignment.objects.filter(organization=organization, user=user, role=role, department=department)
    if duplicate.exists():
        raise ConflictError("This person already has this role for this scope.", code="duplicate_assignment")
    _require_holding(actor, organization, {"rbac.add_roleassignment", *role_permission_names(role)}, department)
    assignment.save()
    _assignment_event(SecurityEventKind.ROLE_ASSIGNED, actor, assignment)
    return assignment


@transaction.atomic
def role_assignment_update(*, actor: Actor, assignment: RoleAssignment, **fields: Any) -> RoleAssignment:
    """Change an assignment's scope, period, state or reason.

    Nobody changes access they could not have given: the actor must be able to grant the role over the assignment's
    scope before the change and over its new scope. Suspending it, moving it to a department or shortening its
    validity may not leave the organization without an administrator (409).
    """
    _lock_organization(assignment.organization_id)
    assignment = RoleAssignment.objects.select_for_update().select_related("role").get(pk=assignment.pk)
    role_permissions = role_permission_names(assignment.role)
    needed = {"rbac.change_roleassignment", *role_permissions}
    _require_holding(actor, assignment.organization, needed, assignment.department)
    administrators_before = _administrators_before(assignment, role_permissions)
    for field, value in _only(fields, ASSIGNMENT_FIELDS).items():
        setattr(assignment, field, value)
    assignment.stamp(actor)
    assignment.full_clean(validate_constraints=False)
    duplicate = RoleAssignment.objects.filter(
        organization_id=assignment.organization_id,
        user_id=assignment.user_id,
        role_id=assignment.role_id,
        department=assignment.department,
    ).exclude(pk=assignment.pk)
    if duplicate.exists():
        raise ConflictError("This person already has this role for this scope.", code="duplicate_assignment")
    _require_holding(actor, assignment.organization, needed, assignment.department)
    assignment.save()
    refuse_losing_the_last_administrator(
        actor=actor,
        organization_id=assignment.organization_id,
        user_id=assignment.user_id,
        before=administrators_before,
    )
    _assignment_event(SecurityEventKind.ASSIGNMENT_CHANGED, actor, assignment)
    return assignment


@transaction.atomic
def role_revoke(*, actor: Actor, assignment: RoleAssignment) -> None:
    """Take a role away. Revoking needs the same standing as granting: no taking away what one could not give.

    The last assignment that makes an active member an administrator of the organization cannot go (409).
    """
    _lock_organization(assignment.organization_id)
    role_permissions = role_permission_names(assignment.role)
    _require_holding(
        actor, assignment.organization, {"rbac.delete_roleassignment", *role_permissions}, assignment.department
    )
    administrators_before = _administrators_before(assignment, role_permissions)
    _assignment_event(SecurityEventKind.ROLE_REVOKED, actor, assignment)
    assignment.delete()
    refuse_losing_the_last_administrator(
        actor=actor,
        organization_id=assignment.organization_id,
        user_id=assignment.user_id,
        before=administrators_before,
    )


# --- A person's access as a whole: standing over it, ending it, administrators --------------------------------------


def require_standing_over(*, actor: Actor, organization: Organization, user: User) -> None:
    """Nobody may end, change or restore access they could not have given.

    Acting on a person's membership needs every permission the person's assignments give them (those in force and
    those still to come), over each assignment's scope, and every permission their object grants give them, on each
    object. A department manager therefore cannot touch the membership of an organization-wide administrator filed
    under their department. Platform code (``actor=None``) and superusers stand over everyone.
    """
    if actor is None or (isinstance(actor, User) and actor.is_superuser):
        return
    if not isinstance(actor, User):
        raise PermissionDenied("Sign in first.")
    missing: set[str] = set()
    assignments = (
        RoleAssignment.objects.filter(organization=organization, user_id=user.pk, is_active=True)
        .filter(models.Q(valid_until__isnull=True) | models.Q(valid_until__gt=timezone.now()))
        .select_related("role", "department")
    )
    for assignment in assignments:
        path = assignment.department.path if assignment.department is not None else None
        missing |= {
            permission
            for permission in role_permission_names(assignment.role)
            if not engine.scope_for(actor, organization, permission).covers_path(path)
        }
    for grant, label in _user_grants(organization.pk, user.pk):
        if not engine.has_perm(actor, label, grant.content_object):
            missing.add(label)
    if missing:
        named = sorted(missing)
        more = f" and {len(named) - STANDING_NAMED} more" if len(named) > STANDING_NAMED else ""
        raise PermissionDenied(
            "You cannot act on this membership: it carries access you could not have given "
            f"({', '.join(named[:STANDING_NAMED])}{more})."
        )


@transaction.atomic
def member_access_end(*, actor: Actor, organization: Organization, user: User) -> None:
    """End everything a person's membership carried in an organization, for good.

    Their role assignments stop (kept inactive, so the record shows what they held) and their object grants on the
    organization's objects are removed; each change leaves a history row and a security event. A person who comes
    back gets a new membership and none of this back: any access must be given again.
    """
    assignments = RoleAssignment.objects.select_for_update(of=("self",)).filter(
        organization=organization, user_id=user.pk, is_active=True
    )
    for assignment in assignments.select_related("role", "department"):
        assignment.is_active = False
        assignment.stamp(actor)
        assignment.save()
        _assignment_event(SecurityEventKind.ROLE_REVOKED, actor, assignment, because="membership_ended")
    for grant, label in _user_grants(organization.pk, user.pk):
        _grant_event(
            SecurityEventKind.GRANT_REVOKED, actor, grant.content_object, label, user, None, because="membership_ended"
        )
        grant.delete()


def administrators_of(*, organization_id: int, lasting: bool = False) -> set[int]:
    """The active members who hold every ``ADMINISTRATOR_PERMISSIONS`` organization-wide through assignments in force;
    with ``lasting``, through assignments in force that never expire.

    Read from the rows (not the permission cache), so that it sees the caller's transaction.
    """
    from organizations.models import Membership

    members = Membership.objects.filter(organization_id=organization_id, is_active=True).values("user_id")
    rows = RoleAssignment.objects.in_force().filter(
        organization_id=organization_id, department__isnull=True, user__is_active=True, user_id__in=members
    )
    if lasting:
        rows = rows.filter(valid_until__isnull=True)
    held: dict[int, set[str]] = defaultdict(set)
    by_role: dict[int, set[str]] = {}
    for assignment in rows.select_related("role").order_by("user_id"):
        if assignment.role_id not in by_role:
            by_role[assignment.role_id] = role_permission_names(assignment.role)
        held[assignment.user_id] |= by_role[assignment.role_id]
    return {user_id for user_id, permissions in held.items() if permissions >= ADMINISTRATOR_PERMISSIONS}


def administrators_snapshot(*, organization_id: int) -> tuple[set[int], set[int]]:
    """The organization's administrators now and those whose standing never expires: taken before a change."""
    return (
        administrators_of(organization_id=organization_id),
        administrators_of(organization_id=organization_id, lasting=True),
    )


def refuse_losing_the_last_administrator(
    *, actor: Actor, organization_id: int, before: tuple[set[int], set[int]], user_id: int | None = None
) -> None:
    """After a change (to ``user_id``'s access, or to a role when ``None``), inside its transaction: an organization
    that had an administrator keeps one (409 otherwise).

    Judged twice: on the administrators now, and on those who never expire, so that shortening the validity of the
    last administrator's assignment is refused like revoking it.
    """
    now_before, lasting_before = before
    if user_id is not None and user_id not in now_before | lasting_before:
        return  # only an administrator's change can take the last administrator away
    lost = (now_before and not administrators_of(organization_id=organization_id)) or (
        lasting_before and not administrators_of(organization_id=organization_id, lasting=True)
    )
    if not lost:
        return
    if isinstance(actor, User) and actor.pk in now_before and len(now_before) == 1:
        message = "You are the last administrator of this organization; make someone else an administrator first."
    else:
        message = "This is the last active administrator of the organization; make someone else an administrator first."
    raise ConflictError(message, code="last_administrator")


def _administrators_before(assignment: RoleAssignment, role_permissions: set[str]) -> tuple[set[int], set[int]]:
    """The snapshot to judge a change of ``assignment`` by; none needed when it cannot make anyone an administrator
    (scoped to a department, not in force, or without any administrator permission)."""
    contributes = (
        assignment.department_id is None
        and bool(role_permissions & ADMINISTRATOR_PERMISSIONS)
        and RoleAssignment.objects.in_force().filter(pk=assignment.pk).exists()
    )
    if not contributes:
        return set(), set()
    return administrators_snapshot(organization_id=assignment.organization_id)


def _lock_organization(organization_id: int) -> None:
    """Changes that can take away an administrator are serialised per organization: two of them, each leaving the
    other's administrator in place, could otherwise together leave none."""
    Organization.all_objects.select_for_update().filter(pk=organization_id).values_list("pk").first()


def _user_grants(organization_id: int, user_id: int) -> list[tuple[Any, str]]:
    """The person's own object grants on the organization's objects, each with its ``app_label.codename``."""
    grants: list[tuple[Any, str]] = []
    for _model, user_grants, _group_grants in shareable_models():
        rows = user_grants.objects.filter(user_id=user_id, content_object__organization_id=organization_id)
        for grant in rows.select_related("permission__content_type", "content_object").order_by("pk"):
            grants.append((grant, permission_label(grant.permission)))
    return grants


# --- Object grants ---------------------------------------------------------------------------------------------------


def _grantee(user: User | None, group: Group | None, organization_id: int) -> User | Group:
    if (user is None) == (group is None):
        raise ValidationError("Grant to exactly one user or one group.", code="invalid")
    if (
        user is not None
        and not Membership.objects.filter(user=user, organization_id=organization_id, is_active=True).exists()
    ):
        raise ValidationError({"user": "The user is not an active member of the organization."}, code="not_member")
    return user if user is not None else group  # type: ignore[return-value]


def _grant_permission(obj: models.Model, permission: str) -> str:
    model = type(obj)
    if grant_models_for(model) is None:
        raise ValidationError({"permission": f"{model._meta.verbose_name} objects cannot be shared."}, code="invalid")
    codenames = {
        f"{model._meta.app_label}.{perm.codename}"
        for perm in Permission.objects.filter(
            content_type__app_label=model._meta.app_label, content_type__model=model._meta.model_name
        )
    }
    if permission not in codenames:
        raise ValidationError(
            {"permission": f"{permission} is not a permission on {model._meta.verbose_name} objects."}, code="unknown"
        )
    return permission


@transaction.atomic
def object_grant(
    *, actor: Actor, obj: models.Model, permission: str, user: User | None = None, group: Group | None = None
) -> None:
    """Give one user (an active member) or one group one permission on one object the actor may share."""
    organization_id = engine.organization_id_of(obj)
    assert organization_id is not None
    grantee = _grantee(user, group, organization_id)
    _grant_permission(obj, permission)
    if actor is not None and not engine.has_perm(actor, permission, obj):
        raise PermissionDenied(f"You cannot share a permission you do not hold on this object: {permission}.")
    assign_perm(permission, grantee, obj)
    _grant_event(SecurityEventKind.GRANT_GIVEN, actor, obj, permission, user, group)


@transaction.atomic
def object_revoke(
    *, actor: Actor, obj: models.Model, permission: str, user: User | None = None, group: Group | None = None
) -> None:
    """Take back a grant (the actor must hold the permission on the object themselves)."""
    grantee = user if user is not None else group
    if grantee is None:
        raise ValidationError("Revoke from one user or one group.", code="invalid")
    _grant_permission(obj, permission)
    if actor is not None and not engine.has_perm(actor, permission, obj):
        raise PermissionDenied(f"You cannot revoke a permission you do not hold on this object: {permission}.")
    remove_perm(permission, grantee, obj)
    _grant_event(SecurityEventKind.GRANT_REVOKED, actor, obj, permission, user, group)


# --- Security events: who gave whom what -----------------------------------------------------------------------------


def _event(kind: str, actor: Actor, organization: Any, obj: models.Model, **data: Any) -> None:
    record_event(kind, organization=organization, actor=actor if isinstance(actor, User) else None, obj=obj, data=data)


def _assignment_event(kind: str, actor: Actor, assignment: RoleAssignment, because: str | None = None) -> None:
    record_event(
        kind,
        organization=assignment.organization_id,
        actor=actor if isinstance(actor, User) else None,
        target_user=assignment.user_id,
        obj=assignment,
        data={
            "role": assignment.role.code,
            "department": assignment.department.code if assignment.department is not None else None,
            "is_active": assignment.is_active,
            "valid_from": assignment.valid_from.isoformat() if assignment.valid_from else None,
            "valid_until": assignment.valid_until.isoformat() if assignment.valid_until else None,
            "source": assignment.source,
            **({"because": because} if because else {}),
        },
    )


def _grant_event(
    kind: str,
    actor: Actor,
    obj: models.Model,
    permission: str,
    user: User | None,
    group: Group | None,
    because: str | None = None,
) -> None:
    record_event(
        kind,
        organization=engine.organization_id_of(obj),
        actor=actor if isinstance(actor, User) else None,
        target_user=user.pk if user is not None else None,
        obj=obj,
        data={
            "permission": permission,
            "group": group.name if group is not None else None,
            **({"because": because} if because else {}),
        },
    )


def _only(fields: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"Cannot set {', '.join(sorted(unknown))}.")
    return fields
