"""The parents a user reaches (through department subtrees or grants), as one SQL condition on a child's foreign key.

A task is visible to a department manager when its project is in the manager's subtrees or was shared with them:
``project_id IN (SELECT id FROM project WHERE organization = … AND department in the subtrees UNION ALL SELECT id FROM
project WHERE organization = … AND id granted)``. (Two branches rather than one OR: each branch reads its own index,
where the OR read every project of the organization; 0.28 ms against 0.57 ms for a manager's page of tasks.)
Built by the ORM, that nested condition cost more Python (building the filters, relabelling the subqueries,
compiling them) than PostgreSQL spends answering it, on every list request. Here it is written once per shape from
the models' ``_meta`` and filled with parameters, so a request only formats a few strings.

The condition comes in two shapes that return the same rows and differ in the plan PostgreSQL picks:

- ``ARRAY``, for a narrow set of parents: ``project_id = ANY(ARRAY(SELECT …))``. The set is read once and the
  children of each parent are fetched through the (organization, parent) index, then sorted.
- ``WALK``, for a wide set: ``(project_id IN (SELECT …)) IS TRUE``. PostgreSQL keeps the set as a hash and walks the
  list's index in page order, stopping after one page, instead of reading every child of half the organization's
  parents. (It cannot estimate how many children a set of parents has, since it multiplies the organization's and
  the parents' selectivity; left to itself it always fetches and sorts.)

Other databases get a plain ``IN``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression
from django.db.models.sql.compiler import SQLCompiler


class Shape(enum.Enum):
    ARRAY = "array"
    WALK = "walk"


@dataclass(frozen=True)
class GrantSource:
    """Where a user's grants of one permission on the parent are stored: their own grant table and, when some of
    their grants come through groups, the group grant table."""

    user_grants: type[models.Model]
    group_grants: type[models.Model] | None
    permission_id: int
    user_id: int


class InParentSet(Expression):
    """``<child's foreign key> IN (the organization's parents in ``paths`` OR granted through ``grants``)``.

    ``paths`` are department path prefixes, matched through ``department_lookup`` from the parent
    (``department__path``, or ``path`` for a department; ``None`` without paths); ``grants`` is ``None`` when the user
    holds no grant on a parent. The parent may be the model itself (``pk`` in the set of its rows the user reaches).
    Usable in ``filter()`` and inside ``Q``.
    """

    conditional = True
    output_field = models.BooleanField()

    def __init__(
        self,
        column: Any,
        *,
        parent: type[models.Model],
        department_lookup: str | None,
        organization_id: int,
        paths: Sequence[str],
        grants: GrantSource | None,
        shape: Shape,
    ) -> None:
        super().__init__()
        self.column = column
        self.parent = parent
        self.department_lookup = department_lookup
        self.organization_id = organization_id
        self.paths = tuple(paths)
        self.grants = grants
        self.shape = shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.column!r}, {self.parent.__name__}, {self.paths!r}, {self.shape.value})"

    @property
    def identity(self) -> tuple[Any, ...]:
        return (
            type(self),
            self.column,
            self.parent,
            self.department_lookup,
            self.organization_id,
            self.paths,
            self.grants,
            self.shape,
        )

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        column_sql, column_params = compiler.compile(self.column)
        grants = self.grants
        template = _template(
            connection,
            self.parent,
            self.department_lookup,
            len(self.paths),
            None if grants is None else (grants.user_grants, grants.group_grants),
        )
        params: list[Any] = []
        if self.paths:
            params += [self.organization_id, self.organization_id]
            params.extend(connection.ops.prep_for_like_query(path) + "%" for path in self.paths)
        if grants is not None:
            params += [self.organization_id, grants.permission_id, grants.user_id]
            if grants.group_grants is not None:
                params += [grants.permission_id, grants.user_id]
        if connection.vendor != "postgresql":
            sql = f"{column_sql} IN ({template})"
        elif self.shape is Shape.WALK:
            sql = f"({column_sql} IN ({template})) IS TRUE"
        else:
            sql = f"{column_sql} = ANY(ARRAY({template}))"
        return sql, [*column_params, *params]


_GrantTables = tuple[type[models.Model], type[models.Model] | None]
_templates: dict[tuple[str, type[models.Model], str | None, int, _GrantTables | None], str] = {}


def _template(
    connection: BaseDatabaseWrapper,
    parent: type[models.Model],
    department_lookup: str | None,
    paths: int,
    grant_tables: _GrantTables | None,
) -> str:
    """The parent set's SELECT: a branch for the subtrees (``%s`` for the organization twice, then each path prefix)
    and one for the grants (the organization, then the permission and user of each grant table), joined by UNION ALL;
    written once per database vendor and shape."""
    key = (connection.vendor, parent, department_lookup, paths, grant_tables)
    if key in _templates:
        return _templates[key]
    quote = connection.ops.quote_name

    def column(model: type[models.Model], name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        assert field.column is not None
        return quote(field.column)

    def primary_key(model: type[models.Model]) -> str:
        assert model._meta.pk is not None
        return column(model, model._meta.pk.name)

    def table(model: type[models.Model]) -> str:
        return quote(model._meta.db_table)

    parent_pk = f"p.{primary_key(parent)}"
    organization = f"p.{column(parent, 'organization')}"
    branches: list[str] = []
    if paths:
        assert department_lookup is not None
        like = connection.operators["startswith"] % "%s"
        if "__" in department_lookup:  # the parent's department (department__path)
            department_field, path_field = department_lookup.split("__")
            department = parent._meta.get_field(department_field).related_model
            assert isinstance(department, type)  # a foreign key: engine._scoped_via() walked it
            join = f" JOIN {table(department)} d ON d.{primary_key(department)} = p.{column(parent, department_field)}"
            alias = "d"
        else:  # the parent is a department itself (path)
            department, path_field, alias, join = parent, department_lookup, "p", ""
        prefixes = " OR ".join(f"{alias}.{column(department, path_field)} {like}" for _ in range(paths))
        branches.append(
            f"SELECT {parent_pk} FROM {table(parent)} p{join}"  # noqa: S608 - names from _meta, values are parameters
            f" WHERE {organization} = %s AND {alias}.{column(department, 'organization')} = %s AND ({prefixes})"
        )
    if grant_tables is not None:
        user_grants, group_grants = grant_tables
        granted = (
            f"SELECT g.{column(user_grants, 'content_object')} FROM {table(user_grants)} g"  # noqa: S608 - names from _meta
            f" WHERE g.{column(user_grants, 'permission')} = %s AND g.{column(user_grants, 'user')} = %s"
        )
        if group_grants is not None:
            from rbac.engine import user_groups_table

            memberships = user_groups_table()
            granted += (
                f" UNION SELECT h.{column(group_grants, 'content_object')} FROM {table(group_grants)} h"  # noqa: S608
                f" WHERE h.{column(group_grants, 'permission')} = %s AND h.{column(group_grants, 'group')} IN ("
                f"SELECT m.{column(memberships, 'group')} FROM {table(memberships)} m"
                f" WHERE m.{column(memberships, 'user')} = %s)"
            )
        branches.append(
            f"SELECT {parent_pk} FROM {table(parent)} p"  # noqa: S608 - names from _meta, values are parameters
            f" WHERE {organization} = %s AND {parent_pk} IN ({granted})"
        )
    assert branches, "a parent set needs department paths or grants"
    _templates[key] = " UNION ALL ".join(branches)
    return _templates[key]
