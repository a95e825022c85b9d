"""Reads that explain permissions: the catalog, roles with their inherited permissions, why a check passes or fails.

``explain(user=…, organization=…, permission=…, obj=…)`` answers "may this user do this here, and why": which role
assignment and role (inherited from which parent, limited to which department subtree) or which object grant (to the
user or to one of their groups) allows it — or what stands in the way (no membership, an inactive, future or expired
assignment, a department outside the assignment's subtree, nothing at all). It reads the database directly, without the
engine's cache, so it describes the stored state; its verdict is the engine's for the same state.

``permission_summary`` is the engine's own (cached) view of a user's permissions in an organization, with department
scopes given as departments rather than paths.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Permission
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

from rbac import engine
from rbac.grants import grant_models_for, parent_reach, shareable_models
from rbac.models import Role, RoleAssignment, RolePermission
from rbac.system_roles import PLATFORM_PERMISSIONS, catalog_apps

if TYPE_CHECKING:
    import datetime

    from accounts.models import User
    from organizations.models import Organization


def permission_label(app_label: str, codename: str) -> str:
    return f"{app_label}.{codename}"


def catalog_permissions() -> QuerySet[Permission]:
    """The permissions organizations can put into roles: those of the catalog apps, without the platform ones.

    Creating and deleting organizations belongs to superusers and is never handed out inside an organization.
    """
    queryset = Permission.objects.select_related("content_type").filter(content_type__app_label__in=catalog_apps())
    for name in PLATFORM_PERMISSIONS:
        app_label, codename = name.split(".", 1)
        queryset = queryset.exclude(content_type__app_label=app_label, codename=codename)
    return queryset.order_by("content_type__app_label", "content_type__model", "codename")


def catalog_lookup(names: set[str]) -> dict[str, Permission]:
    """The catalog permissions among ``names`` (``app_label.codename``), by name; unknown names are left out."""
    wanted = {name for name in names if name.count(".") == 1}
    found = catalog_permissions().filter(codename__in={name.split(".", 1)[1] for name in wanted})
    return {
        label: permission
        for permission in found
        if (label := permission_label(permission.content_type.app_label, permission.codename)) in wanted
    }


# --- Roles ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleNode:
    """A role available in an organization with its parent and the permissions it grants itself."""

    pk: int
    code: str
    name: str
    parent_id: int | None
    permissions: frozenset[str]


class AvailableRoles:
    """The roles available in an organization (its own and the system ones), read in two queries.

    Walks inheritance in memory, so a page of roles shows own and effective permissions at a constant query count.
    """

    def __init__(self, organization: Organization | int) -> None:
        own: dict[int, set[str]] = defaultdict(set)
        in_organization = Q(role__organization=organization) | Q(role__organization__isnull=True)
        for role_id, app_label, codename in RolePermission.objects.filter(in_organization).values_list(
            "role_id", "permission__content_type__app_label", "permission__codename"
        ):
            own[role_id].add(permission_label(app_label, codename))
        self.roles = {
            pk: RoleNode(pk=pk, code=code, name=name, parent_id=parent_id, permissions=frozenset(own[pk]))
            for pk, code, name, parent_id in Role.objects.available_in(organization).values_list(
                "pk", "code", "name", "parent_id"
            )
        }

    def chain(self, role_id: int) -> list[RoleNode]:
        """The role and its ancestors, nearest first (a corrupt loop stops at the first repeat)."""
        chain: list[RoleNode] = []
        seen: set[int] = set()
        current = self.roles.get(role_id)
        while current is not None and current.pk not in seen:
            chain.append(current)
            seen.add(current.pk)
            current = self.roles.get(current.parent_id) if current.parent_id is not None else None
        return chain

    def own_permissions(self, role_id: int) -> list[str]:
        node = self.roles.get(role_id)
        return sorted(node.permissions) if node is not None else []

    def effective_permissions(self, role_id: int) -> list[str]:
        """Everything the role grants: its own permissions and those inherited from its ancestors."""
        return sorted({permission for node in self.chain(role_id) for permission in node.permissions})


# --- Explaining one check -------------------------------------------------------------------------------------------

GRANTING_KINDS = ("superuser", "role", "user_grant", "group_grant")
REFUSING_KINDS = (
    "inactive_user",
    "not_member",
    "assignment_inactive",
    "assignment_not_yet_valid",
    "assignment_expired",
    "department_deleted",
    "out_of_scope",
    "no_permission",
)


@dataclass(frozen=True)
class Reason:
    """One thing that allows the permission (``grants``) or would allow it but does not, and why."""

    kind: str
    grants: bool
    message: str
    assignment: int | None = None
    role: RoleNode | None = None
    inherited_from: RoleNode | None = None
    inheritance: tuple[str, ...] = ()
    department: Any = None
    group: Any = None
    object_id: int | None = None


@dataclass(frozen=True)
class Explanation:
    allowed: bool
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


def _scope_text(department: Any) -> str:
    return (
        f"for department {department.code} and its sub-departments" if department is not None else "organization-wide"
    )


def _role_text(role: RoleNode, holder: RoleNode) -> str:
    if holder.pk == role.pk:
        return f"role {role.code}"
    return f"role {role.code}, which inherits it from {holder.code}"


def _assignment_reason(
    assignment: RoleAssignment,
    chain: list[RoleNode],
    holder: RoleNode,
    obj: models.Model | None,
    now: datetime.datetime,
) -> Reason:
    role = chain[0]
    department = assignment.department
    details: dict[str, Any] = {
        "assignment": assignment.pk,
        "role": role,
        "inherited_from": holder if holder.pk != role.pk else None,
        "inheritance": tuple(node.code for node in chain[: chain.index(holder) + 1]),
        "department": department,
    }
    what = f"Assignment {assignment.pk} gives {_role_text(role, holder)}, {_scope_text(department)}"
    if not assignment.is_active:
        return Reason("assignment_inactive", False, f"{what}, but it is not active.", **details)
    if assignment.valid_from is not None and assignment.valid_from > now:
        return Reason("assignment_not_yet_valid", False, f"{what}, but it is not valid yet.", **details)
    if assignment.valid_until is not None and assignment.valid_until <= now:
        return Reason("assignment_expired", False, f"{what}, but it has expired.", **details)
    if department is not None and department.deleted_at is not None:
        return Reason("department_deleted", False, f"{what}, but that department has been deleted.", **details)
    if obj is not None and department is not None:
        path = engine.department_path_of(obj)
        if path is None or not path.startswith(department.path):
            return Reason("out_of_scope", False, f"{what}, but the object is outside that subtree.", **details)
    return Reason("role", True, f"{what}.", **details)


def _grant_reasons(user: User, organization: Organization, permission: str, obj: models.Model | None) -> list[Reason]:
    """The user's and their groups' grants of ``permission`` on ``obj`` (or, without one, on any object here), and the
    grants on its parent that reach it (models declaring ``grants_through``)."""
    reasons = [
        reason
        for model, user_table, group_table in shareable_models()
        if obj is None or model is type(obj)
        for reason in _grants_on(
            user,
            permission,
            model,
            (user_table, group_table),
            Q(content_object=obj) if obj is not None else Q(content_object__organization=organization),
        )
    ]
    reach = parent_reach().get(permission)
    if reach is None:
        return reasons
    parent_id = reach.parent_id_of(obj) if obj is not None else None
    if obj is not None and parent_id is None:
        return reasons
    tables = grant_models_for(reach.parent)
    assert tables is not None  # parent_reach() refuses a parent that cannot be shared
    where = Q(content_object_id=parent_id) if parent_id is not None else Q(content_object__organization=organization)
    reaches = f", which reaches {permission}"
    return reasons + _grants_on(user, reach.parent_permission, reach.parent, tables, where, reaches)


def _grants_on(
    user: User,
    permission: str,
    model: type[models.Model],
    tables: tuple[Any, Any],
    where: Q,
    reaches: str = "",
) -> list[Reason]:
    app_label, codename = permission.split(".", 1)
    granted = Q(permission__content_type__app_label=app_label, permission__codename=codename)
    user_table, group_table = tables
    noun = model._meta.verbose_name
    what = f"A grant of {permission} on {noun}" if reaches else f"A grant on {noun}"
    reasons = [
        Reason("user_grant", True, f"{what} {object_id} to the user{reaches}.", object_id=object_id)
        for object_id in user_table.objects.filter(granted, where, user=user)
        .order_by("content_object_id")
        .values_list("content_object_id", flat=True)
    ]
    reasons.extend(
        Reason(
            "group_grant",
            True,
            f"{what} {grant.content_object_id} to the group {grant.group.name}{reaches}.",
            group=grant.group,
            object_id=grant.content_object_id,
        )
        for grant in group_table.objects.filter(granted, where, group__user=user)
        .select_related("group")
        .order_by("content_object_id", "group__name")
    )
    return reasons


def explain(*, user: User, organization: Organization, permission: str, obj: models.Model | None = None) -> Explanation:
    """Whether ``user`` holds ``permission`` in ``organization`` (on ``obj`` when given), with every reason.

    Without an object the question is the engine's "anywhere here": a department-scoped assignment or a grant on any
    object counts. Reasons list every assignment whose role carries the permission (granting or not, and why not) and
    every matching object grant; when there is none, one ``no_permission`` reason says so.
    """
    from organizations.models import Membership

    if not user.is_active:
        return Explanation(False, (Reason("inactive_user", False, "The account is deactivated."),))
    if user.is_superuser:
        return Explanation(True, (Reason("superuser", True, "Platform operators hold every permission."),))
    if not Membership.objects.filter(organization=organization, user=user, is_active=True).exists():
        return Explanation(
            False, (Reason("not_member", False, "The user is not an active member of the organization."),)
        )

    roles = AvailableRoles(organization)
    now = timezone.now()
    reasons: list[Reason] = []
    assignments = (
        RoleAssignment.objects.for_organization(organization).filter(user=user).select_related("department")
    ).order_by("pk")
    for assignment in assignments:
        chain = roles.chain(assignment.role_id)
        holder = next((node for node in chain if permission in node.permissions), None)
        if holder is not None:
            reasons.append(_assignment_reason(assignment, chain, holder, obj, now))
    reasons.extend(_grant_reasons(user, organization, permission, obj))
    if not reasons:
        reasons.append(Reason("no_permission", False, f"No role assignment or grant gives {permission} here."))
    return Explanation(any(reason.grants for reason in reasons), tuple(reasons))


# --- A user's permissions in an organization -------------------------------------------------------------------------


@dataclass(frozen=True)
class PermissionScope:
    permission: str
    is_organization_wide: bool
    departments: tuple[Any, ...] = ()


@dataclass(frozen=True)
class PermissionSummary:
    is_superuser: bool
    permissions: tuple[PermissionScope, ...]
    object_grants: tuple[tuple[str, tuple[int, ...]], ...]


def permission_summary(*, user: User, organization: Organization) -> PermissionSummary:
    """What the engine lets ``user`` do in ``organization``: per permission the whole organization or departments
    (the roots of the subtrees), and the objects granted to them. Superusers hold every catalog permission."""
    from organizations.models import Department

    if user.is_superuser:
        names = sorted(
            permission_label(app_label, codename)
            for app_label, codename in catalog_permissions().values_list("content_type__app_label", "codename")
        )
        return PermissionSummary(True, tuple(PermissionScope(name, True) for name in names), ())
    effective = engine.effective_permissions(user, organization)
    if not effective.is_member:
        return PermissionSummary(False, (), ())
    paths = {path for scope in effective.scopes.values() for path in scope.department_paths}
    departments = {
        department.path: department
        for department in Department.objects.for_organization(organization).filter(path__in=paths)
    }
    permissions = tuple(
        PermissionScope(
            name,
            scope.is_organization_wide,
            tuple(departments[path] for path in sorted(scope.department_paths) if path in departments),
        )
        for name, scope in sorted(effective.scopes.items())
        if not scope.is_empty
    )
    grants = tuple(
        (name, tuple(sorted(object_ids))) for name, object_ids in sorted(effective.object_grants.items()) if object_ids
    )
    return PermissionSummary(False, permissions, grants)
