"""Reads of organizations, departments and memberships that more than one interface needs."""

from __future__ import annotations

from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet

from accounts.models import User
from organizations.models import Department, Membership, Organization


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    """The live organizations a user belongs to (as an active member); superusers see every organization."""
    organizations = Organization.objects.select_related("parent")
    if user.is_superuser:
        return organizations
    return organizations.filter(memberships__user=user, memberships__is_active=True, is_active=True)


# Every org-scoped API request starts here, so the statement is written once rather than built by the ORM per request
# (building and compiling the EXISTS cost about four times what PostgreSQL spends answering it), and the row becomes
# an Organization through the fields' own converters rather than through a raw queryset, which costs as much again.
_ORGANIZATION_FIELDS = tuple(Organization._meta.concrete_fields)
ORGANIZATION_WITH_ACCESS = f"""
    SELECT {", ".join(f"o.{field.column}" for field in _ORGANIZATION_FIELDS)}, EXISTS (
        SELECT 1 FROM {Membership._meta.db_table} m WHERE m.organization_id = o.id AND m.user_id = %s AND m.is_active
    ) AS is_member
    FROM {Organization._meta.db_table} o
    WHERE o.slug = %s AND o.deleted_at IS NULL
"""  # noqa: S608 - table and column names come from the models, the values are parameters


def organization_with_access(*, user: User, slug: str) -> Organization | None:
    """The live organization at ``slug`` with an ``is_member`` flag for ``user``, in one query.

    ``None`` when it does not exist or the user may not enter it: inactive organizations are closed to members.
    """
    connection = connections[router.db_for_read(Organization)]
    with connection.cursor() as cursor:
        cursor.execute(ORGANIZATION_WITH_ACCESS, [user.pk, slug])
        row = cursor.fetchone()
    if row is None:
        return None
    *values, is_member = row
    for index, converters in _converters(connection):
        for converter in converters:
            values[index] = converter(values[index], _ORGANIZATION_FIELDS[index], connection)
    organization = Organization.from_db(connection.alias, [field.attname for field in _ORGANIZATION_FIELDS], values)
    organization.is_member = bool(is_member)  # type: ignore[attr-defined]
    if user.is_superuser:
        return organization
    if not is_member or not organization.is_active:
        return None
    return organization


_converters_by_vendor: dict[str, list[tuple[int, list[Any]]]] = {}


def _converters(connection: BaseDatabaseWrapper) -> list[tuple[int, list[Any]]]:
    """The converters each column needs on this database (SQLite's dates arrive as text, say), as the ORM applies
    them."""
    found = _converters_by_vendor.get(connection.vendor)
    if found is None:
        found = _converters_by_vendor[connection.vendor] = [
            (index, converters)
            for index, field in enumerate(_ORGANIZATION_FIELDS)
            if (
                converters := [
                    *connection.ops.get_db_converters(field.get_col("o")),
                    *_field_converters(field, connection),
                ]
            )
        ]
    return found


def _field_converters(field: Any, connection: BaseDatabaseWrapper) -> list[Any]:
    return list(field.get_db_converters(connection))


def department_tree(*, departments: QuerySet[Department]) -> list[dict[str, object]]:
    """Nest departments (any scope, one query ordered by path) into a tree of plain dicts with ``children``."""
    nodes: dict[int, dict[str, object]] = {}
    roots: list[dict[str, object]] = []
    for department in departments.order_by("path"):
        node: dict[str, object] = {
            "id": department.pk,
            "code": department.code,
            "name": department.name,
            "path": department.path,
            "depth": department.depth,
            "display_order": department.display_order,
            "manager": department.manager_id,
            "children": [],
        }
        nodes[department.pk] = node
        parent = nodes.get(department.parent_id) if department.parent_id is not None else None
        if parent is None:
            roots.append(node)
        else:
            parent["children"].append(node)  # type: ignore[attr-defined]
    for node in nodes.values():
        node["children"].sort(key=lambda child: (child["display_order"], child["code"]))  # type: ignore[attr-defined]
    roots.sort(key=lambda root: (root["display_order"], root["code"]))
    return roots


def department_members(
    *, department: Department, include_descendants: bool, memberships: QuerySet[Membership] | None = None
) -> QuerySet[Membership]:
    """Current (active) members of a department, or of its whole subtree: one query joining the department paths.

    ``memberships`` narrows the result further (e.g. to what a user may see).
    """
    base = memberships if memberships is not None else Membership.objects.all()
    current = base.filter(organization_id=department.organization_id, is_active=True).select_related(
        "user", "department"
    )
    if include_descendants:
        return current.filter(department__path__startswith=department.path, department__deleted_at__isnull=True)
    return current.filter(department=department)
