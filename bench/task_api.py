"""Benchmark of the task API at 1M tasks: the tenant viewset next to a bare DRF list of the same table.

Generates (once; ``--rebuild`` starts over) 100 organizations with 20 members, 10 departments and 100 projects each,
and 100 tasks per project (1M tasks; a third of them subtasks) in a separate PostgreSQL database. Then, for each kind
of user, it calls the task list (first page; filtered by assignee; filtered by status) and the project board through
the real viewsets (authentication forced, permission engine, filters, cursor pagination, serializer, JSON rendering),
next to a bare ``ListAPIView`` over the organization's tasks with the same serializer, page size and rendering, in the
same run, and prints p50/p95 in milliseconds and the throughput ratio (bare p50 / viewset p50; target >= 0.85).

    uv run python bench/task_api.py [--organizations 100] [--repeat 100] [--rebuild]

The database is ``itdo_erp_bench_tasks`` and the Redis db 8 unless DATABASE_URL / REDIS_URL say otherwise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from common import setup, timings

MEMBERS = 20
DEPARTMENTS = 10
PROJECTS = 100
TASKS_PER_PROJECT = 100


def generate(organizations: int, *, rebuild: bool = False) -> None:
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from organizations.models import Membership, Organization

    call_command("migrate", verbosity=0)
    if not rebuild and Organization.objects.filter(slug__startswith="tbench-").count() == organizations:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE tasks_task, tasks_project, tasks_projectmember, organizations_membership, rbac_roleassignment, "
            "tasks_projectuserobjectpermission, organizations_department RESTART IDENTITY CASCADE"
        )
        cursor.execute("DELETE FROM organizations_organization WHERE slug LIKE 'tbench-%%'", [])
    User.objects.filter(email__endswith="@tbench.example").delete()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO organizations_organization (created_at, updated_at, slug, code, name, is_active, time_zone,
                currency_code, fiscal_year_start_month, max_department_depth, history_retention_days)
            SELECT now(), now(), 'tbench-' || lpad(i::text, 3, '0'), 'TBENCH' || i, 'Task bench ' || i, true, 'UTC',
                'EUR', 1, 10, 3650
            FROM generate_series(1, %s) i
            """,
            [organizations],
        )
    bench_organizations = list(Organization.objects.filter(slug__startswith="tbench-").order_by("pk"))
    users = User.objects.bulk_create(
        User(email=f"m{index:02d}.{organization.slug}@tbench.example", full_name=f"Member {index}", password="!")
        for organization in bench_organizations
        for index in range(MEMBERS)
    )
    Membership.objects.bulk_create(
        Membership(organization=organization, user=users[position * MEMBERS + index])
        for position, organization in enumerate(bench_organizations)
        for index in range(MEMBERS)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO organizations_department (created_at, updated_at, organization_id, code, name, path, depth,
                display_order)
            SELECT now(), now(), o.id, 'D' || i, 'Department ' || i, 'D' || i || '/', 1, i
            FROM organizations_organization o, generate_series(1, %s) i WHERE o.slug LIKE 'tbench-%%'
            """,
            [DEPARTMENTS],
        )
        # Projects: manager is the organization's first member; every member is on every project.
        cursor.execute(
            """
            INSERT INTO tasks_project (created_at, updated_at, organization_id, department_id, code, name,
                description, status, manager_id)
            SELECT now(), now(), o.id, d.id, 'P' || i, 'Project ' || i, '', 'active',
                (SELECT min(m.user_id) FROM organizations_membership m WHERE m.organization_id = o.id)
            FROM organizations_organization o, generate_series(1, %s) i
            JOIN LATERAL (
                SELECT id FROM organizations_department WHERE organization_id = o.id AND code = 'D' || (1 + i %% %s)
            ) d ON true
            WHERE o.slug LIKE 'tbench-%%'
            """,
            [PROJECTS, DEPARTMENTS],
        )
        cursor.execute(
            """
            INSERT INTO tasks_projectmember (created_at, updated_at, organization_id, project_id, user_id, role)
            SELECT now(), now(), p.organization_id, p.id, m.user_id, 'contributor'
            FROM tasks_project p JOIN organizations_membership m ON m.organization_id = p.organization_id
            """
        )
        # Tasks: statuses, priorities, assignees and due dates spread evenly; done ones are complete.
        cursor.execute(
            """
            INSERT INTO tasks_task (created_at, updated_at, organization_id, project_id, title, description, status,
                priority, assignee_id, reporter_id, due_date, estimated_hours, actual_hours, progress, labels,
                completed_at, comment_count)
            SELECT now() - make_interval(mins => i), now() - make_interval(mins => i), p.organization_id, p.id,
                'Task ' || p.code || '-' || i, '', s.status, 1 + (i * 7) %% 4, a.members[1 + (i * 13) %% %s],
                a.members[1], current_date + (i %% 90) - 30, 4, 0,
                CASE WHEN s.status = 'done' THEN 100 ELSE 0 END, ',bench,',
                CASE WHEN s.status = 'done' THEN now() END, 0
            FROM tasks_project p
            CROSS JOIN generate_series(1, %s) i
            JOIN LATERAL (
                SELECT (ARRAY['todo', 'in_progress', 'in_review', 'done', 'cancelled'])[1 + i %% 5] AS status
            ) s ON true
            JOIN LATERAL (
                SELECT array_agg(m.user_id ORDER BY m.user_id) AS members
                FROM organizations_membership m WHERE m.organization_id = p.organization_id
            ) a ON true
            ORDER BY p.id, i
            """,
            [MEMBERS, TASKS_PER_PROJECT],
        )
        # A third of the tasks become subtasks of the task that opens their block of ten (same project).
        cursor.execute(
            """
            UPDATE tasks_task t SET parent_id = parent.id
            FROM tasks_task parent
            WHERE parent.id = t.id - t.id %% 10 AND parent.project_id = t.project_id AND t.id %% 10 BETWEEN 1 AND 3
            """,
            [],
        )
        cursor.execute("ANALYZE")
    print(f"generated {len(bench_organizations)} organizations in {time.perf_counter() - started:.1f} s")


def people(organization: Any) -> dict[str, Any]:
    """One user of each kind in the first organization (re-created on every run)."""
    from django.contrib.auth.models import Permission
    from guardian.shortcuts import assign_perm

    from accounts.models import User
    from organizations.models import Department, Membership
    from rbac import engine
    from rbac.models import Role, RoleAssignment
    from tasks.models import Project

    User.objects.filter(email__endswith="@kinds.tbench.example").delete()

    def member(email: str, role: str | None = None, departments: tuple[str | None, ...] = (None,)) -> User:
        user = User.objects.create_user(f"{email}@kinds.tbench.example", None)
        Membership.objects.create(organization=organization, user=user)
        for code in departments if role else ():
            department = Department.objects.get(organization=organization, code=code) if code else None
            RoleAssignment.objects.create(
                organization=organization, user=user, role=Role.objects.get(code=role), department=department
            )
        return user

    def share(user: User, department: str, count: int) -> None:
        view = Permission.objects.get(codename="view_project", content_type__app_label="tasks")
        for project in Project.objects.filter(organization=organization, department__code=department).order_by("pk")[
            :count
        ]:
            assign_perm(view, user, project)

    superuser = User.objects.create_user("superuser@kinds.tbench.example", None, is_superuser=True)
    admin = member("admin", "org_admin")
    plain = member("member", "member")
    manager = member("manager", "manager", ("D5",))
    wide = member("wide", "manager", ("D1", "D2", "D3", "D4", "D5"))
    shared = member("shared")
    share(shared, "D5", 3)
    mixed = member("mixed", "manager", ("D5",))
    share(mixed, "D6", 3)
    engine.bump_organization(organization.pk)
    return {
        "superuser": superuser,
        "org admin": admin,
        "member (organization-wide)": plain,
        "department manager (10 projects)": manager,
        "department manager of 5 departments (50 projects)": wide,
        "grants only (3 projects of D5)": shared,
        "department manager + grants on 3 projects of D6": mixed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organizations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rebuild", action="store_true")
    options = parser.parse_args()
    setup("itdo_erp_bench_tasks", 8)
    generate(options.organizations, rebuild=options.rebuild)

    from rest_framework import generics, views
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory, force_authenticate

    from organizations.models import Organization
    from tasks import selectors
    from tasks.api.filters import TaskFilterSet
    from tasks.api.serializers import BoardColumnSerializer, TaskSerializer
    from tasks.api.views import ProjectViewSet, TaskViewSet
    from tasks.models import Project, Task

    organization = Organization.objects.get(slug="tbench-001")
    print(f"tasks: {Task.objects.count():,} in {Organization.objects.filter(slug__startswith='tbench-').count()} orgs")
    world = people(organization)
    factory = APIRequestFactory()
    task_list = TaskViewSet.as_view({"get": "list"})
    board = ProjectViewSet.as_view({"get": "board"}, **ProjectViewSet.board.kwargs)

    class BareTaskList(generics.ListAPIView):
        """DRF with no tenancy: the organization's tasks through the project's default filter backends (the same
        filterset), cursor pagination, serializer and rendering, but no organization lookup, membership check,
        permission engine or audit bookkeeping."""

        serializer_class = TaskSerializer
        permission_classes = [IsAuthenticated]
        filterset_class = TaskFilterSet
        search_fields = TaskViewSet.search_fields
        ordering_fields = TaskViewSet.ordering_fields
        ordering = TaskViewSet.ordering

        def get_queryset(self) -> Any:
            return selectors.task_list(tasks=Task.objects.filter(organization=organization))

        def get_serializer_context(self) -> dict[str, Any]:
            return super().get_serializer_context() | {"organization": organization}

    class BareBoard(views.APIView):
        """The same board (selector and serializer) over the organization's tasks, without tenancy."""

        permission_classes = [IsAuthenticated]

        def get(self, request: Request, pk: int) -> Response:
            project = Project.objects.get(organization=organization, pk=pk)
            tasks = Task.objects.filter(organization=organization)
            return Response(
                BoardColumnSerializer(selectors.project_board(project=project, tasks=tasks), many=True).data
            )

    bare = BareTaskList.as_view()
    bare_board = BareBoard.as_view()
    slug = organization.slug
    assignee = Task.objects.filter(organization=organization).order_by("pk").values_list("assignee_id", flat=True)[0]
    project = Project.objects.filter(organization=organization, department__code="D5").order_by("pk").first()
    assert project is not None  # the department manager's first project, shared with the grants-only user too
    queries: dict[str, dict[str, Any]] = {
        "first page": {},
        "by assignee": {"assignee": assignee},
        "by status": {"status": "in_progress"},
    }

    def call(
        view: Callable[..., Any], user: Any, path: str, params: dict[str, Any], **kwargs: Any
    ) -> Callable[[], Any]:
        def run() -> Any:
            request = factory.get(path, params)
            force_authenticate(request, user=user)
            response = view(request, **kwargs)
            response.render()
            if response.status_code != 200:
                raise SystemExit(f"{path} {params} answered {response.status_code}: {response.content[:300]!r}")
            data = response.data
            return data["results"] if isinstance(data, dict) else data  # a page, or the board's columns

        return run

    header = f"{'call':<64} {'p50 ms':>7} {'p95 ms':>7} {'rows':>5} {'bare/p50':>9}"
    for kind, params in queries.items():
        runs: dict[str, Callable[[], Any]] = {"bare DRF list": call(bare, world["superuser"], "/bench/tasks/", params)}
        for label, user in world.items():
            runs[f"task list, {label}"] = call(
                task_list, user, f"/api/v1/organizations/{slug}/tasks/", params, organization_slug=slug
            )
        figures = timings(runs, options.repeat)
        base_p50 = figures["bare DRF list"][0]
        print(f"\n{kind}\n{header}")
        for label, (p50, p95, rows) in figures.items():
            print(f"{label:<64} {p50:>7.2f} {p95:>7.2f} {rows:>5} {base_p50 / p50:>9.2f}")

    runs = {"bare DRF board": call(bare_board, world["superuser"], "/bench/board/", {}, pk=project.pk)}
    for label, user in world.items():
        runs[f"board, {label}"] = call(
            board,
            user,
            f"/api/v1/organizations/{slug}/projects/{project.pk}/board/",
            {},
            organization_slug=slug,
            pk=project.pk,
        )
    figures = timings(runs, options.repeat)
    base_p50 = figures["bare DRF board"][0]
    print(f"\nboard (rows = columns)\n{header}")
    for label, (p50, p95, rows) in figures.items():
        print(f"{label:<64} {p50:>7.2f} {p95:>7.2f} {rows:>5} {base_p50 / p50:>9.2f}")


if __name__ == "__main__":
    main()
