"""Reads of the tasks context: tree and dependency walks (recursive CTEs), rollups and the board, one query each."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Window
from django.db.models.functions import RowNumber
from django.db.models.lookups import IsNull
from django.utils import timezone

from tasks.models import OPEN_STATUSES, Comment, Project, ProjectMember, Task, TaskDependency, TaskStatus, TimeEntry

# A recursive walk never goes deeper than this, even over rows that a bug or a race left in a loop.
WALK_LIMIT = 1000
BOARD_COLUMN_LIMIT = 20


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def task_ancestor_ids(*, task_id: int) -> list[int]:
    """The ids above a task, nearest first: one recursive query."""
    table = Task._meta.db_table
    rows = _rows(
        f"""
        WITH RECURSIVE ancestors(id, parent_id, level) AS (
            SELECT id, parent_id, 0 FROM {table} WHERE id = %s
            UNION ALL
            SELECT t.id, t.parent_id, a.level + 1 FROM {table} t JOIN ancestors a ON t.id = a.parent_id
            WHERE a.level < %s
        )
        SELECT id FROM ancestors WHERE level > 0 ORDER BY level
        """,  # noqa: S608 - the table name comes from the model, the values are parameters
        [task_id, WALK_LIMIT],
    )
    return [row[0] for row in rows]


# A task and its live subtasks at every level (parameters: the task's id, WALK_LIMIT), with their distance from it.
SUBTREE = f"""
    WITH RECURSIVE subtree(id, level) AS (
        SELECT id, 0 FROM {Task._meta.db_table} WHERE id = %s
        UNION ALL
        SELECT t.id, s.level + 1 FROM {Task._meta.db_table} t JOIN subtree s ON t.parent_id = s.id
        WHERE t.deleted_at IS NULL AND s.level < %s
    )
"""  # noqa: S608 - the table name comes from the model


def task_subtree_height(*, task_id: int) -> int:
    """How many levels of live subtasks lie below a task (0 for a leaf): one recursive query."""
    rows = _rows(f"{SUBTREE} SELECT MAX(level) FROM subtree", [task_id, WALK_LIMIT])  # noqa: S608
    return int(rows[0][0] or 0)


def task_subtree_progress(*, task: Task) -> int:
    """The mean progress of a task and its live subtasks at every level, cancelled ones left out: one query."""
    table = Task._meta.db_table
    rows = _rows(
        f"{SUBTREE} SELECT AVG(t.progress) FROM {table} t JOIN subtree s ON t.id = s.id WHERE t.status <> %s",  # noqa: S608
        [task.pk, WALK_LIMIT, TaskStatus.CANCELLED],
    )
    average = rows[0][0]
    return round(average) if average is not None else 0


def dependency_reaches(*, task_id: int, target_id: int) -> bool:
    """Whether ``task_id`` depends on ``target_id`` through any chain of dependencies: one recursive query.

    ``UNION`` (not ``UNION ALL``) drops rows already reached, so the walk ends even on a cycle.
    """
    table = TaskDependency._meta.db_table
    rows = _rows(
        f"""
        WITH RECURSIVE reached(id) AS (
            SELECT depends_on_id FROM {table} WHERE task_id = %s
            UNION
            SELECT d.depends_on_id FROM {table} d JOIN reached r ON d.task_id = r.id
        )
        SELECT 1 FROM reached WHERE id = %s LIMIT 1
        """,  # noqa: S608
        [task_id, target_id],
    )
    return bool(rows)


def project_list(*, projects: QuerySet[Project]) -> QuerySet[Project]:
    return projects.select_related("manager", "department")


def task_list(*, tasks: QuerySet[Task]) -> QuerySet[Task]:
    """Tasks with the flags the list shows, computed in the same statement.

    The flag is a scalar ``(SELECT … LIMIT 1) IS NOT NULL`` rather than ``EXISTS``: PostgreSQL may turn an EXISTS over
    a large table into a hashed subplan that reads every open task of the installation before the first row, while a
    scalar probe stays one index lookup on ``parent_id`` per row of the page.
    """
    return tasks.annotate(has_open_subtasks=IsNull(Subquery(open_subtasks().order_by().values("pk")[:1]), False))


def open_subtasks() -> QuerySet[Task]:
    """The open live subtasks of the outer query's task (for a subquery)."""
    return Task.objects.filter(parent=OuterRef("pk"), status__in=OPEN_STATUSES)


def project_summary(*, project: Project, tasks: QuerySet[Task], as_of: datetime.date | None = None) -> dict[str, Any]:
    """The rollups of a project over ``tasks`` (what the caller may see): counts by status, overdue tasks, estimated
    and actual hours — one aggregate query."""
    today = as_of or timezone.localdate()
    aggregates: dict[str, Any] = {status.value: Count("pk", filter=Q(status=status.value)) for status in TaskStatus}
    rollup = tasks.filter(project=project).aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=Q(status__in=OPEN_STATUSES, due_date__lt=today)),
        estimated_hours=Sum("estimated_hours"),
        actual_hours=Sum("actual_hours"),
        **aggregates,
    )
    return {
        "project": project.pk,
        "total": rollup["total"],
        "by_status": {status.value: rollup[status.value] for status in TaskStatus},
        "overdue": rollup["overdue"],
        "estimated_hours": rollup["estimated_hours"] or Decimal(0),
        "actual_hours": rollup["actual_hours"] or Decimal(0),
    }


def project_board(*, project: Project, tasks: QuerySet[Task], limit: int = BOARD_COLUMN_LIMIT) -> list[dict[str, Any]]:
    """The board: one column per status with its most pressing tasks (at most ``limit``) and the column's full count.

    One query: window functions number the tasks and count them per status before the cap is applied.
    """
    ranked = (
        tasks.filter(project=project)
        .select_related("assignee")
        .annotate(
            column_rank=Window(
                RowNumber(),
                partition_by=[F("status")],
                order_by=[F("priority").desc(), F("due_date").asc(nulls_last=True), F("pk").asc()],
            ),
            column_count=Window(Count("pk"), partition_by=[F("status")]),
        )
        .filter(column_rank__lte=limit)
        .order_by("status", "column_rank")
    )
    columns: dict[str, dict[str, Any]] = {
        status.value: {"status": status.value, "label": status.label, "count": 0, "tasks": []} for status in TaskStatus
    }
    for task in ranked:
        column = columns[task.status]
        column["count"] = task.column_count
        column["tasks"].append(task)
    return list(columns.values())


def task_dependencies(*, task: Task) -> QuerySet[TaskDependency]:
    return TaskDependency.objects.filter(task=task).select_related("depends_on").order_by("pk")


def task_comments(*, task: Task, comments: QuerySet[Comment]) -> QuerySet[Comment]:
    return comments.filter(task=task).select_related("author")


def task_time_entries(*, task: Task, entries: QuerySet[TimeEntry]) -> QuerySet[TimeEntry]:
    return entries.filter(task=task).select_related("member")


def project_members(*, project: Project) -> QuerySet[ProjectMember]:
    return ProjectMember.objects.filter(project=project).select_related("user").order_by("pk")
