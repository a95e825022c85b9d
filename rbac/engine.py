"""The permission engine: what a user may do in an organization, computed once, cached, and turned into SQL.

``effective_permissions(user, organization)`` flattens every assignment in force (with role inheritance) into, per
permission, the scope it applies to: the whole organization or a set of department subtrees; plus the user's object
grants. The result is cached per (user, organization) behind version counters that every change to roles,
assignments, memberships, departments, grants or the user bumps, and memoised on the user object for the request, so
a warm check costs no query. ``visible`` turns the same data into one SQL predicate for list queries.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache as memoise
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Value
from django.db.models.lookups import IsNull
from django.utils import timezone

from rbac.parent_set import GrantSource, InParentSet, Shape

if TYPE_CHECKING:
    from accounts.models import User
    from organizations.models import Organization

ACTIONS = ("view", "add", "change", "delete")
CACHE_SECONDS = 3600
# From this share of the organization's parents on, a list scoped through them walks the list's own index (see
# rbac.parent_set): at a tenth, a page of 50 is found within some 500 rows, which is what reading the parents' children
# costs at 5,000 rows in the organization; below it, reading them and sorting is cheaper.
WIDE_SHARE = 0.1
# Above this many object grants for one permission, visible() probes the grants per row instead of hashing their ids.
DENSE_GRANTS = 1000
_Q = TypeVar("_Q", bound=models.QuerySet[Any])


def permission_name(model: type[models.Model], action: str) -> str:
    """``app_label.action_modelname``: the Django permission for a CRUD action on a model."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def permission_verb(permission: str) -> str:
    """``view`` for ``organizations.view_department``: the part of the codename before the first underscore."""
    return permission.split(".", 1)[-1].split("_", 1)[0]


@dataclass(frozen=True)
class Scope:
    """Where a permission applies: the whole organization, some department subtrees (by path), or nowhere."""

    is_organization_wide: bool = False
    department_paths: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.is_organization_wide and not self.department_paths

    def covers_path(self, path: str | None) -> bool:
        if self.is_organization_wide:
            return True
        return path is not None and any(path.startswith(prefix) for prefix in self.department_paths)


NOWHERE = Scope()
EVERYWHERE = Scope(is_organization_wide=True)


@dataclass(frozen=True)
class EffectivePermissions:
    """A user's permissions in one organization, as of ``computed_at`` and good until ``expires_at`` (epoch)."""

    organization_id: int
    is_member: bool
    scopes: dict[str, Scope] = field(default_factory=dict)
    object_grants: dict[str, frozenset[int]] = field(default_factory=dict)
    group_granted: frozenset[str] = frozenset()  # permissions of which some grants come through groups
    grant_permission_ids: dict[str, int] = field(default_factory=dict)  # the id of each permission in object_grants
    # For a permission scoped to departments on a model filed under them through a parent (a task through its
    # project): the share of the organization's parents in the subtrees, which picks the shape of visible()'s SQL.
    parent_shares: dict[str, float] = field(default_factory=dict)
    expires_at: float | None = None

    def scope(self, permission: str) -> Scope:
        return self.scopes.get(permission, NOWHERE) if self.is_member else NOWHERE

    def granted_objects(self, permission: str) -> frozenset[int]:
        return self.object_grants.get(permission, frozenset()) if self.is_member else frozenset()

    def holds_anywhere(self, permission: str) -> bool:
        """Through a role, a grant, or a grant on a parent that reaches ``permission`` (``grants_through``)."""
        from rbac.grants import parent_reach

        if not self.scope(permission).is_empty or self.granted_objects(permission):
            return True
        reach = parent_reach().get(permission)
        return reach is not None and bool(self.granted_objects(reach.parent_permission))


# --- Version counters ----------------------------------------------------------------------------------------------


def _system_key() -> str:
    return "rbac:version:system"


def _organization_key(organization_id: int) -> str:
    return f"rbac:version:organization:{organization_id}"


def _user_key(user_id: int) -> str:
    return f"rbac:version:user:{user_id}"


# Counters this process moved while the cache could not take them. The shared cache fails open (erp.cache): with
# Redis down every check computes afresh, but once it is back, what it cached before under the old counters would be
# trusted again. So a counter that could not be moved is moved at this process's next check that reaches the cache.
_unmoved_counters: set[str] = set()
_unmoved_lock = threading.Lock()


def _move_counter(key: str) -> None:
    value = uuid.uuid4().hex
    cache.set(key, value, None)
    if cache.get(key) != value:  # not stored: the cache is unreachable (or another change moved it meanwhile)
        with _unmoved_lock:
            _unmoved_counters.add(key)


def _move_unmoved_counters() -> None:
    with _unmoved_lock:
        pending = list(_unmoved_counters)
        _unmoved_counters.clear()
    for key in pending:
        _move_counter(key)


def _bump(key: str) -> None:
    """Move the counter now (this transaction sees its own change) and again at commit: a request that read the new
    counter before the commit computed from the old rows, and must not keep what it cached under it."""
    _move_counter(key)
    transaction.on_commit(lambda: _move_counter(key))


def bump_system() -> None:
    """System roles changed: every organization's permissions are recomputed."""
    _bump(_system_key())


def bump_organization(organization_id: int | None) -> None:
    if organization_id is None:
        bump_system()
    else:
        _bump(_organization_key(organization_id))


def bump_user(user_id: int) -> None:
    _bump(_user_key(user_id))


def _versions(user_id: int, organization_id: int) -> tuple[str, str, str]:
    if _unmoved_counters:
        _move_unmoved_counters()
    keys = (_system_key(), _organization_key(organization_id), _user_key(user_id))
    found = cache.get_many(keys)
    return tuple(str(found.get(key, "0")) for key in keys)  # type: ignore[return-value]


# --- Computing ------------------------------------------------------------------------------------------------------


def _role_closure(role_ids: Iterable[int], parents: Mapping[int, int | None]) -> dict[int, list[int]]:
    """For each role, itself and its ancestors (nearest first); a corrupt loop stops at the first repeat."""
    closure: dict[int, list[int]] = {}
    for role_id in role_ids:
        chain: list[int] = []
        current: int | None = role_id
        while current is not None and current not in chain:
            chain.append(current)
            current = parents.get(current)
        closure[role_id] = chain
    return closure


def _compute(user: User, organization_id: int) -> EffectivePermissions:
    from organizations.models import Membership
    from rbac.grants import shareable_models
    from rbac.models import Role, RoleAssignment, RolePermission

    if not Membership.objects.filter(user_id=user.pk, organization_id=organization_id, is_active=True).exists():
        return EffectivePermissions(organization_id=organization_id, is_member=False, expires_at=_horizon(None))

    now = timezone.now()
    assignments = list(
        RoleAssignment.objects.filter(organization_id=organization_id, user_id=user.pk, is_active=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Q(department__isnull=True) | Q(department__deleted_at__isnull=True))
        .values_list("role_id", "department__path", "valid_from", "valid_until")
    )
    # The result is good until the next moment an assignment starts or ends.
    boundaries = [
        moment for _role, _path, start, end in assignments for moment in (start, end) if moment and moment > now
    ]
    in_force = [(role_id, path) for role_id, path, start, _end in assignments if start is None or start <= now]

    scopes: dict[str, Scope] = {}
    models_by_permission: dict[str, tuple[str, str]] = {}
    if in_force:
        parents = dict(Role.objects.available_in(organization_id).values_list("pk", "parent_id"))
        closure = _role_closure({role_id for role_id, _path in in_force}, parents)
        permissions_by_role: dict[int, set[str]] = defaultdict(set)
        all_roles = {role_id for chain in closure.values() for role_id in chain}
        for role_id, app_label, codename, model_name in RolePermission.objects.filter(
            role_id__in=all_roles
        ).values_list(
            "role_id",
            "permission__content_type__app_label",
            "permission__codename",
            "permission__content_type__model",
        ):
            permissions_by_role[role_id].add(f"{app_label}.{codename}")
            models_by_permission[f"{app_label}.{codename}"] = (app_label, model_name)
        wide: set[str] = set()
        paths: dict[str, set[str]] = defaultdict(set)
        for role_id, path in in_force:
            for ancestor in closure[role_id]:
                for permission in permissions_by_role[ancestor]:
                    if path is None:
                        wide.add(permission)
                    else:
                        paths[permission].add(path)
        scopes = dict.fromkeys(wide, EVERYWHERE)
        for permission, department_paths in paths.items():
            if permission not in wide:
                scopes[permission] = Scope(department_paths=frozenset(department_paths))

    # Every grant table (user and group grants of each shareable model) is read in one UNION ALL query, so that the
    # cost of a cold computation does not grow with the number of shareable models.
    object_grants: dict[str, set[int]] = defaultdict(set)
    group_granted: set[str] = set()
    permission_ids: dict[str, int] = {}
    parts = [
        grants.objects.filter(condition, content_object__organization_id=organization_id)
        .annotate(through_group=Value(through_group))
        .values_list(
            "permission__content_type__app_label",
            "permission__codename",
            "content_object_id",
            "through_group",
            "permission_id",
        )
        .order_by()
        for _model, user_grants, group_grants in shareable_models()
        for grants, condition, through_group in (
            (user_grants, Q(user_id=user.pk), False),
            (group_grants, Q(group__user=user.pk), True),
        )
    ]
    rows = parts[0].union(*parts[1:], all=True) if parts else []
    for app_label, codename, object_id, through_group, permission_id in rows:
        object_grants[f"{app_label}.{codename}"].add(object_id)
        permission_ids[f"{app_label}.{codename}"] = permission_id
        if through_group:
            group_granted.add(f"{app_label}.{codename}")

    return EffectivePermissions(
        organization_id=organization_id,
        is_member=True,
        scopes=scopes,
        object_grants={permission: frozenset(ids) for permission, ids in object_grants.items()},
        group_granted=frozenset(group_granted),
        grant_permission_ids=permission_ids,
        parent_shares=_parent_shares(organization_id, scopes, models_by_permission),
        expires_at=_horizon(min(boundaries) if boundaries else None),
    )


def _parent_shares(
    organization_id: int, scopes: Mapping[str, Scope], models_by_permission: Mapping[str, tuple[str, str]]
) -> dict[str, float]:
    """For each department-scoped permission on a model filed under its department through a parent: the share of
    the organization's parents in the subtrees. One count per distinct (parent, subtrees), usually one."""
    from django.apps import apps

    wanted: dict[tuple[type[models.Model], str, frozenset[str]], list[str]] = defaultdict(list)
    for permission, scope in scopes.items():
        if not scope.department_paths or permission not in models_by_permission:
            continue
        try:
            model: type[models.Model] = apps.get_model(*models_by_permission[permission])
        except LookupError:  # a permission row left behind by a removed model
            continue
        via = _scoped_via(model)
        if via is not None:
            wanted[(via[1], via[2], scope.department_paths)].append(permission)
    shares: dict[str, float] = {}
    for (parent, department_lookup, paths), permissions in wanted.items():
        within = Q()
        for path in paths:
            within |= Q(**{f"{department_lookup}__startswith": path})
        counted = parent._base_manager.filter(organization_id=organization_id).aggregate(
            total=Count("pk"), within=Count("pk", filter=within)
        )
        shares.update(dict.fromkeys(permissions, counted["within"] / counted["total"] if counted["total"] else 0.0))
    return shares


def _horizon(boundary: Any) -> float:
    limit = time.time() + CACHE_SECONDS
    return min(limit, boundary.timestamp()) if boundary is not None else limit


def effective_permissions(user: User | AnonymousUser, organization: Organization | int) -> EffectivePermissions:
    """The user's permissions in the organization: memoised for the request, cached across requests."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    if isinstance(user, AnonymousUser) or not user.is_active:
        return EffectivePermissions(organization_id=organization_id, is_member=False)
    versions = _versions(user.pk, organization_id)
    memo: dict[tuple[int, tuple[str, ...]], EffectivePermissions] = user.__dict__.setdefault("_rbac_memo", {})
    found = memo.get((organization_id, versions))
    now = time.time()
    if found is not None and (found.expires_at is None or found.expires_at > now):
        return found
    key = f"rbac:effective:v3:{user.pk}:{organization_id}:{':'.join(versions)}"
    found = cache.get(key)
    if found is None or (found.expires_at is not None and found.expires_at <= now):
        found = _compute(user, organization_id)
        cache.set(key, found, max(1, int((found.expires_at or now + CACHE_SECONDS) - now)))
    memo[(organization_id, versions)] = found
    return found


def member_organization_ids(user: User) -> list[int]:
    """The organizations the user is an active member of (cached with the user's version)."""
    from organizations.models import Membership

    key = f"rbac:organizations:{user.pk}:{cache.get(_user_key(user.pk), '0')}"
    found = cache.get(key)
    if found is None:
        found = list(
            Membership.objects.filter(user_id=user.pk, is_active=True, organization__deleted_at__isnull=True)
            .order_by("organization_id")
            .values_list("organization_id", flat=True)
        )
        cache.set(key, found, CACHE_SECONDS)
    return found


# --- Checking -------------------------------------------------------------------------------------------------------


def scope_for(user: User | AnonymousUser, organization: Organization | int, permission: str) -> Scope:
    if isinstance(user, AnonymousUser) or not user.is_active:
        return NOWHERE
    if user.is_superuser:
        return EVERYWHERE
    return effective_permissions(user, organization).scope(permission)


def holds_here(user: User | AnonymousUser, organization: Organization | int, permission: str) -> bool:
    """Whether the user holds ``permission`` anywhere in the organization: through a role (on the whole organization
    or some departments), a grant on some object, or a grant on a parent that reaches it."""
    if isinstance(user, AnonymousUser) or not user.is_active:
        return False
    return user.is_superuser or effective_permissions(user, organization).holds_anywhere(permission)


def department_path_of(obj: models.Model) -> str | None:
    """The department path an object is filed under, following the model's ``department_scope_lookup``."""
    lookup = getattr(type(obj), "department_scope_lookup", None)
    if lookup is None:
        return None
    value: Any = obj
    for part in lookup.split("__"):
        value = getattr(value, part, None)
        if value is None:
            return None
    return str(value)


def organization_id_of(obj: models.Model) -> int | None:
    from organizations.models import Organization

    if isinstance(obj, Organization):
        return obj.pk
    return getattr(obj, "organization_id", None)


def has_perm(user: User | AnonymousUser | None, permission: str, obj: models.Model | None = None) -> bool:
    """May the user use ``permission`` on ``obj`` (or, without an object, in at least one organization)?"""
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if obj is None:
        return any(
            effective_permissions(user, organization_id).holds_anywhere(permission)
            for organization_id in member_organization_ids(user)
        )
    organization_id = organization_id_of(obj)
    if organization_id is None:
        return False
    effective = effective_permissions(user, organization_id)
    scope = effective.scope(permission)
    if scope.is_organization_wide:
        return True
    if scope.department_paths and scope.covers_path(department_path_of(obj)):
        return True
    if obj.pk is not None and obj.pk in effective.granted_objects(permission):
        return True
    return _granted_through_parent(effective, permission, obj)


def _granted_through_parent(effective: EffectivePermissions, permission: str, obj: models.Model) -> bool:
    """Whether a grant on the object's parent reaches ``permission`` on it (models declaring ``grants_through``)."""
    from rbac.grants import parent_reach

    reach = parent_reach().get(permission)
    if reach is None:
        return False
    parent_id = reach.parent_id_of(obj)
    return parent_id is not None and parent_id in effective.granted_objects(reach.parent_permission)


def visible(queryset: _Q, user: User | AnonymousUser, organization: Organization | int, action: str) -> _Q:
    """The rows of ``organization`` on which the user holds ``action``: ONE SQL statement.

    Organization filter AND (the role scope — organization-wide, or department subtrees — OR an object grant OR a grant
    on the row's parent, for models that declare ``grants_through``). No id list is ever built in Python.

    - A model filed under its department through a parent (a task through its project) is scoped through one set of
      parents: ``project_id IN (the organization's projects in the subtrees, or granted)``. PostgreSQL hashes the few
      parents or reads the rows of each through the (organization, parent) index, instead of joining every row it
      walks to its parent and department.
    - A shareable model filed under its own department (a project, a department) is one set of its own rows:
      ``pk IN (the organization's rows in the subtrees, or granted)``, written by ``rbac.parent_set`` like the parent
      set above rather than built by the ORM as a UNION (which cost a millisecond of Python per request).
    - Otherwise the model's own grants are UNIONed with the rest into one ``pk IN (…)`` subquery (an OR of subqueries
      over the model's table would make PostgreSQL scan it).
    """
    from rbac.grants import grant_models_for

    model: type[models.Model] = queryset.model
    queryset = queryset.filter(organization=organization)
    if isinstance(user, AnonymousUser) or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    permission = permission_name(model, action)
    effective = effective_permissions(user, organization)
    if not effective.is_member:
        return queryset.none()
    scope = effective.scope(permission)
    if scope.is_organization_wide:
        return queryset
    grant_models = grant_models_for(model)
    granted = len(effective.granted_objects(permission))
    if (
        grant_models is not None
        and 0 < granted <= DENSE_GRANTS
        and _scoped_via(model) is None
        and _parent_grant_source(user, effective, permission) is None
    ):
        # Filed under its own department, shared itself and not through a parent: no other predicate is needed.
        return queryset.filter(_own_set(model, organization, user, effective, permission, scope, grant_models))
    in_scope, through_parent = _scope_predicate(model, organization, user, effective, permission, scope)
    grants: list[models.QuerySet[Any]] = []
    if through_parent is not None:
        grants.append(model._base_manager.filter(through_parent, organization=organization).order_by().values("pk"))
    if grant_models is not None and granted:
        by_user, by_group = _grants_held(user, effective, permission, grant_models)
        # Many grants: probe the grants row by row while walking the page's index order (the page stops after a few
        # dozen matches) rather than hashing every granted id and sorting. A scalar ``(SELECT … LIMIT 1)`` stays a
        # per-row index probe; an EXISTS would be pulled up into a semi-join, which brings the hash and sort back.
        if granted > DENSE_GRANTS:
            probes = Q()
            for held in (by_user, by_group):
                if held is not None:
                    probe = held.filter(content_object_id=OuterRef("pk")).values("pk")[:1]
                    probes |= Q(IsNull(Subquery(probe), False))
            for part in (in_scope, through_parent):
                if part is not None:
                    probes |= part
            return queryset.filter(probes)
        grants.extend(held.values("content_object_id") for held in (by_user, by_group) if held is not None)
    if in_scope is None and not grants:
        return queryset.none()
    if not grants:
        return queryset.filter(in_scope)  # an indexed prefix match, or one set of parents: no UNION needed
    parts = grants
    if in_scope is not None:
        parts = [model._base_manager.filter(in_scope, organization=organization).order_by().values("pk"), *grants]
    first, *others = parts
    return queryset.filter(pk__in=first.union(*others))


def _scope_predicate(
    model: type[models.Model],
    organization: Organization | int,
    user: User,
    effective: EffectivePermissions,
    permission: str,
    scope: Scope,
) -> tuple[Q | None, Q | None]:
    """The rows in the role's department subtrees, and (apart, when it cannot be folded in) the rows under a granted
    parent; ``None`` for an empty part.

    When the model is filed under its department through the same parent that its grants come through (a task's
    project), both become one condition on the parent: ``project_id IN (projects in the subtrees OR granted)``,
    written by ``rbac.parent_set``.
    """
    from rbac.grants import parent_reach

    organization_id = organization if isinstance(organization, int) else organization.pk
    reach = parent_reach().get(permission)
    grants = _parent_grant_source(user, effective, permission)
    lookup: str | None = getattr(model, "department_scope_lookup", None)
    paths = sorted(scope.department_paths) if lookup is not None else []
    via = _scoped_via(model)
    folded = via is not None and reach is not None and grants is not None and reach.lookup == via[0]
    through_parent = None
    if reach is not None and grants is not None and not folded:
        through_parent = Q(
            InParentSet(
                F(reach.lookup),
                parent=reach.parent,
                department_lookup=None,
                organization_id=organization_id,
                paths=(),
                grants=grants,
                shape=Shape.ARRAY,
            )
        )
    if via is None:
        subtree = Q()
        for path in paths:
            subtree |= Q(**{f"{lookup}__startswith": path})
        return (subtree if subtree else None), through_parent
    if not paths and not folded:
        return None, through_parent
    parent_lookup, parent, department_lookup = via
    wide = effective.parent_shares.get(permission, 0.0) >= WIDE_SHARE
    in_parents = InParentSet(
        F(parent_lookup),
        parent=parent,
        department_lookup=department_lookup,
        organization_id=organization_id,
        paths=paths,
        grants=grants if folded else None,
        shape=Shape.WALK if wide else Shape.ARRAY,
    )
    return Q(in_parents), through_parent


def _own_set(
    model: type[models.Model],
    organization: Organization | int,
    user: User,
    effective: EffectivePermissions,
    permission: str,
    scope: Scope,
    grant_models: tuple[Any, Any],
) -> InParentSet:
    """``pk IN (the organization's rows in the subtrees, or granted)`` for a shareable model filed under its own
    department (a project, a department): one set of the model's own rows, like the parent set of a task."""
    lookup: str | None = getattr(model, "department_scope_lookup", None)
    paths = sorted(scope.department_paths) if lookup is not None else []
    user_grants, group_grants = grant_models
    return InParentSet(
        F("pk"),
        parent=model,
        department_lookup=lookup if paths else None,
        organization_id=organization if isinstance(organization, int) else organization.pk,
        paths=paths,
        grants=GrantSource(
            user_grants=user_grants,
            group_grants=group_grants if permission in effective.group_granted else None,
            permission_id=effective.grant_permission_ids[permission],
            user_id=user.pk,
        ),
        shape=Shape.ARRAY,
    )


@memoise
def _scoped_via(model: type[models.Model]) -> tuple[str, type[models.Model], str] | None:
    """For a model filed under its department through a parent (``project__department__path``): the lookup to the
    parent, the parent model and the parent's own lookup to the path; ``None`` for a model with a department of its
    own (``department__path``) or none."""
    lookup: str | None = getattr(model, "department_scope_lookup", None)
    if lookup is None or lookup.count("__") < 2:
        return None
    from rbac.grants import related_path

    *to_parent, department, path = lookup.split("__")
    parent_lookup = "__".join(to_parent)
    return parent_lookup, related_path(model, parent_lookup)[-1], f"{department}__{path}"


def _parent_grant_source(user: User, effective: EffectivePermissions, permission: str) -> GrantSource | None:
    """Where the user's grants on parents that reach ``permission`` (``grants_through``) are stored; ``None`` when the
    user holds no such grant."""
    from rbac.grants import grant_models_for, parent_reach

    reach = parent_reach().get(permission)
    if reach is None or not effective.granted_objects(reach.parent_permission):
        return None
    tables = grant_models_for(reach.parent)
    assert tables is not None  # parent_reach() refuses a parent that cannot be shared
    user_grants, group_grants = tables
    return GrantSource(
        user_grants=user_grants,
        group_grants=group_grants if reach.parent_permission in effective.group_granted else None,
        permission_id=effective.grant_permission_ids[reach.parent_permission],
        user_id=user.pk,
    )


def _grants_held(
    user: User, effective: EffectivePermissions, permission: str, grant_models: tuple[Any, Any]
) -> tuple[models.QuerySet[Any], models.QuerySet[Any] | None]:
    """The user's grants of ``permission`` and, when the cached data says some exist, their groups' grants."""
    permission_id = effective.grant_permission_ids[permission]  # read with the grants: no lookup
    user_grants, group_grants = grant_models
    by_user = user_grants.objects.filter(permission_id=permission_id, user_id=user.pk).order_by()
    if permission not in effective.group_granted:
        return by_user, None
    groups = user_groups_table().objects.filter(user_id=user.pk).values("group_id")
    return by_user, group_grants.objects.filter(permission_id=permission_id, group_id__in=groups).order_by()


def user_groups_table() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().groups.through
