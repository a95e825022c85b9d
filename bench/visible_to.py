"""Benchmark of the permission predicate: ``Department.objects.visible_to(...)`` first pages at 1M rows.

Generates (once; ``--rebuild`` starts over) about 1M departments across 100 organizations in a separate PostgreSQL
database, then times the first page (51 rows by path, as the cursor paginator asks) for each kind of user next to the
organization-filter-only query, and prints p50/p95 in milliseconds. Target: within 2x of the baseline and under 10 ms.

    DATABASE_URL=postgres://127.0.0.1:5432/itdo_erp_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        uv run python bench/visible_to.py [--organizations 100] [--repeat 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from common import setup, timings

PAGE = 51  # page size 50 + 1, as the cursor paginator fetches


def generate(organizations: int, *, rebuild: bool = False) -> None:
    from django.core.management import call_command
    from django.db import connection

    from organizations.models import Organization

    call_command("migrate", verbosity=0)
    if not rebuild and Organization.objects.filter(slug__startswith="bench-").count() == organizations:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE organizations_department, organizations_membership, rbac_roleassignment, "
            "organizations_departmentuserobjectpermission, organizations_departmentgroupobjectpermission "
            "RESTART IDENTITY CASCADE"
        )
        cursor.execute("DELETE FROM organizations_organization WHERE slug LIKE 'bench-%%'")
        cursor.execute(
            """
            INSERT INTO organizations_organization (created_at, updated_at, slug, code, name, is_active, time_zone,
                currency_code, fiscal_year_start_month, max_department_depth)
            SELECT now(), now(), 'bench-' || lpad(i::text, 3, '0'), 'BENCH' || i, 'Bench ' || i, true, 'UTC', 'EUR',
                1, 10
            FROM generate_series(1, %s) i
            """,
            [organizations],
        )
        # 10 roots, 10 children each, 100 grandchildren each: 10,110 departments per organization.
        cursor.execute(
            """
            INSERT INTO organizations_department (created_at, updated_at, organization_id, code, name, path, depth,
                display_order)
            SELECT now(), now(), o.id, 'R' || i, 'Root ' || i, 'R' || i || '/', 1, i
            FROM organizations_organization o, generate_series(1, 10) i WHERE o.slug LIKE 'bench-%%'
            """
        )
        for depth, fan_out, label in ((2, 10, "C"), (3, 100, "G")):
            cursor.execute(
                """
                INSERT INTO organizations_department (created_at, updated_at, organization_id, code, name, parent_id,
                    path, depth, display_order)
                SELECT now(), now(), p.organization_id, p.code || '-' || %s || j, p.name || ' ' || j, p.id,
                    p.path || p.code || '-' || %s || j || '/', %s, j
                FROM organizations_department p, generate_series(1, %s) j WHERE p.depth = %s
                """,
                [label, label, depth, fan_out, depth - 1],
            )
        cursor.execute("ANALYZE")
    count = Organization.objects.filter(slug__startswith="bench-").count()
    print(f"generated {count} organizations in {time.perf_counter() - started:.1f} s")


def people() -> dict[str, Any]:
    """One user of each kind in the first organization (re-created on every run)."""
    from django.contrib.auth.models import Permission
    from django.db import connection

    from accounts.models import User
    from organizations.models import Department, Membership, Organization
    from rbac.models import Role, RoleAssignment

    organization = Organization.objects.get(slug="bench-001")
    User.objects.filter(email__endswith="@bench.example").delete()
    view = Permission.objects.get(codename="view_department", content_type__app_label="organizations")

    def member(email: str, **flags: bool) -> User:
        user = User.objects.create_user(email, "bench-password", **flags)
        Membership.objects.create(organization=organization, user=user)
        return user

    superuser = User.objects.create_user("superuser@bench.example", "bench-password", is_superuser=True)
    admin = member("admin@bench.example")
    RoleAssignment.objects.create(organization=organization, user=admin, role=Role.objects.get(code="org_admin"))
    manager = member("manager@bench.example")
    RoleAssignment.objects.create(
        organization=organization,
        user=manager,
        role=Role.objects.get(code="manager"),
        department=Department.objects.get(organization=organization, code="R5"),
    )
    dense, sparse = member("dense@bench.example"), member("sparse@bench.example")
    with connection.cursor() as cursor:
        for user, limit in ((dense, 5000), (sparse, 10)):
            cursor.execute(
                """
                INSERT INTO organizations_departmentuserobjectpermission (user_id, permission_id, content_object_id)
                SELECT %s, %s, id FROM organizations_department
                WHERE organization_id = %s AND depth = 3 ORDER BY md5(id::text) LIMIT %s
                """,
                [user.pk, view.pk, organization.pk, limit],
            )
        cursor.execute("ANALYZE organizations_departmentuserobjectpermission")
    from rbac import engine

    engine.bump_organization(organization.pk)
    return {
        "organization": organization,
        "superuser": superuser,
        "org admin": admin,
        "department manager (1,011 rows)": manager,
        "grants only, dense (5,000)": dense,
        "grants only, sparse (10)": sparse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--organizations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    options = parser.parse_args()
    setup("itdo_erp_bench", 9)
    generate(options.organizations, rebuild=options.rebuild)

    from organizations.models import Department

    print(f"departments: {Department.objects.count():,} in {options.organizations} organizations")
    world = people()
    organization = world.pop("organization")

    def baseline() -> list[Any]:
        return list(Department.objects.filter(organization=organization).order_by("path", "pk")[:PAGE])

    def page(user: Any) -> Callable[[], list[Any]]:
        return lambda: list(Department.objects.visible_to(user, organization, "view").order_by("path", "pk")[:PAGE])

    runs = {"organization filter only": baseline} | {
        f"visible_to: {label}": page(user) for label, user in world.items()
    }
    figures = timings(runs, options.repeat)
    base_p50, base_p95, _ = figures["organization filter only"]
    print(f"{'query':<48} {'p50 ms':>7} {'p95 ms':>7} {'rows':>5} {'p50 / base':>11} {'p95 / base':>11}")
    for label, (p50, p95, rows) in figures.items():
        print(f"{label:<48} {p50:>7.2f} {p95:>7.2f} {rows:>5} {p50 / base_p50:>11.2f} {p95 / base_p95:>11.2f}")


if __name__ == "__main__":
    main()
