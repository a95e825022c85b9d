"""The permission engine: role inheritance, validity, department scope, object grants, caching and SQL shape."""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from organizations.models import Department, Membership
from rbac import engine, services
from tests.accounts.factories import SuperuserFactory, UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, scoped_member, system_role

pytestmark = pytest.mark.django_db

VIEW = "organizations.view_department"
CHANGE = "organizations.change_department"


@pytest.fixture
def acme():
    return OrganizationFactory(slug="acme", code="ACME")


@pytest.fixture
def tree(acme):
    """HQ → FIN → AP, HQ → ENG."""
    hq = DepartmentFactory(organization=acme, code="HQ")
    fin = DepartmentFactory(organization=acme, parent=hq, code="FIN")
    ap = DepartmentFactory(organization=acme, parent=fin, code="AP")
    eng = DepartmentFactory(organization=acme, parent=hq, code="ENG")
    return {"HQ": hq, "FIN": fin, "AP": ap, "ENG": eng}


def member_of(organization, **kwargs):
    return MembershipFactory(organization=organization, **kwargs).user


def visible_codes(user, organization, action="view"):
    return sorted(Department.objects.visible_to(user, organization, action).values_list("code", flat=True))


def test_inheritance_through_three_levels(acme):
    # given: grandparent grants view, parent grants change, child grants nothing of its own
    grandparent = RoleFactory(organization=acme, permissions=[VIEW])
    parent = RoleFactory(organization=acme, parent=grandparent, permissions=[CHANGE])
    child = RoleFactory(organization=acme, parent=parent)
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=child)
    # when
    effective = engine.effective_permissions(user, acme)
    # then
    assert effective.scope(VIEW) == engine.EVERYWHERE
    assert effective.scope(CHANGE) == engine.EVERYWHERE
    assert effective.scope("organizations.delete_department") == engine.NOWHERE


def test_system_roles_ship_with_their_permissions(acme):
    viewer, org_admin = system_role("viewer"), system_role("org_admin")
    assert services.role_permission_names(viewer) == {
        "organizations.view_department",
        "organizations.view_membership",
        "organizations.view_organization",
        "organizations.view_departmentuserobjectpermission",
        "organizations.view_departmentgroupobjectpermission",
        "organizations.view_invitation",
        "rbac.view_role",
        "rbac.view_rolepermission",
        "rbac.view_roleassignment",
        "tasks.view_comment",
        "tasks.view_project",
        "tasks.view_projectgroupobjectpermission",
        "tasks.view_projectmember",
        "tasks.view_projectuserobjectpermission",
        "tasks.view_task",
        "tasks.view_taskdependency",
        "tasks.view_timeentry",
    }
    assert services.role_permission_names(system_role("auditor")) == services.role_permission_names(viewer) | {
        "audit.view_history"
    }
    admin_permissions = services.role_permission_names(org_admin)
    assert {
        "audit.view_history",
        "organizations.manage_members",
        "rbac.add_roleassignment",
        "organizations.change_organization",
    } <= (admin_permissions)
    assert "organizations.add_organization" not in admin_permissions
    assert "organizations.delete_organization" not in admin_permissions


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"is_active": False}, False),
        ({"valid_from": timezone.now() + datetime.timedelta(days=1)}, False),
        ({"valid_until": timezone.now() - datetime.timedelta(seconds=1)}, False),
        (
            {
                "valid_from": timezone.now() - datetime.timedelta(days=2),
                "valid_until": timezone.now() + datetime.timedelta(days=1),
            },
            True,
        ),
    ],
    ids=["in-force", "inactive", "future", "expired", "current-period"],
)
def test_only_assignments_in_force_grant_anything(acme, tree, changes, expected):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"), **changes)
    assert user.has_perm(VIEW, tree["FIN"]) is expected
    assert (visible_codes(user, acme) == ["AP", "ENG", "FIN", "HQ"]) is expected


def test_an_assignment_stops_counting_when_it_expires(acme, tree, monkeypatch):
    # given: an assignment that ends in an hour, already computed and cached
    user = member_of(acme)
    ends = timezone.now() + datetime.timedelta(hours=1)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"), valid_until=ends)
    assert user.has_perm(VIEW, tree["FIN"]) is True
    # when: time passes beyond the end (no change to any row, so no version bump)
    later = ends + datetime.timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    monkeypatch.setattr(engine.time, "time", lambda: later.timestamp())
    fresh = type(user).objects.get(pk=user.pk)
    # then
    assert fresh.has_perm(VIEW, tree["FIN"]) is False


def test_department_scoped_assignment_sees_its_subtree_and_nothing_else(acme, tree):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("manager"), department=tree["FIN"])
    assert visible_codes(user, acme) == ["AP", "FIN"]
    assert user.has_perm(CHANGE, tree["AP"]) is True
    assert user.has_perm(CHANGE, tree["ENG"]) is False
    assert user.has_perm(CHANGE, tree["HQ"]) is False


def test_an_object_grant_alone_gives_exactly_that_object(acme, tree):
    user = member_of(acme)
    assign_perm(VIEW, user, tree["ENG"])
    assert visible_codes(user, acme) == ["ENG"]
    assert user.has_perm(VIEW, tree["ENG"]) is True
    assert user.has_perm(VIEW, tree["HQ"]) is False
    assert user.has_perm(CHANGE, tree["ENG"]) is False


def test_a_group_grant_counts_for_the_group_members(acme, tree):
    user = member_of(acme)
    group = Group.objects.create(name="auditors")
    user.groups.add(group)
    assign_perm(VIEW, group, tree["FIN"])
    assert visible_codes(user, acme) == ["FIN"]
    assert user.has_perm(VIEW, tree["FIN"]) is True


def test_a_grant_to_a_non_member_gives_nothing(acme, tree):
    outsider = member_of(OrganizationFactory())
    assign_perm(VIEW, outsider, tree["FIN"])
    assert visible_codes(outsider, acme) == []
    assert outsider.has_perm(VIEW, tree["FIN"]) is False


def test_a_grant_stops_counting_when_the_membership_ends(acme, tree):
    user = member_of(acme)
    assign_perm(VIEW, user, tree["FIN"])
    assert visible_codes(user, acme) == ["FIN"]
    Membership.objects.filter(user=user).update(is_active=False)
    engine.bump_organization(acme.pk)  # update() sends no signal; the membership service does
    fresh = type(user).objects.get(pk=user.pk)
    assert visible_codes(fresh, acme) == []
    assert fresh.has_perm(VIEW, tree["FIN"]) is False


def test_superusers_see_the_whole_organization(acme, tree):
    superuser = SuperuserFactory()
    assert visible_codes(superuser, acme) == ["AP", "ENG", "FIN", "HQ"]
    assert superuser.has_perm("organizations.delete_department", tree["HQ"]) is True


def test_anonymous_and_inactive_users_hold_nothing(acme, tree):
    from django.contrib.auth.models import AnonymousUser

    inactive = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=inactive, role=system_role("org_admin"))
    inactive.is_active = False
    inactive.save()
    for user in (AnonymousUser(), inactive):
        assert visible_codes(user, acme) == []
        assert engine.has_perm(user, VIEW, tree["HQ"]) is False


def test_has_perm_without_an_object_answers_for_any_organization(acme):
    user = member_of(acme)
    assert user.has_perm(VIEW) is False
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"))
    fresh = type(user).objects.get(pk=user.pk)
    assert fresh.has_perm(VIEW) is True
    assert fresh.has_perm(CHANGE) is False
    assert fresh.has_module_perms("organizations") is True
    assert fresh.has_module_perms("accounts") is False


def test_changes_invalidate_the_cache_without_help(acme, tree):
    user = member_of(acme)
    assert user.has_perm(VIEW, tree["HQ"]) is False
    assignment = services.role_assign(actor=None, organization=acme, user=user, role=system_role("viewer"))
    assert user.has_perm(VIEW, tree["HQ"]) is True
    services.role_revoke(actor=None, assignment=assignment)
    assert user.has_perm(VIEW, tree["HQ"]) is False


def test_a_warm_permission_check_makes_no_query(acme, tree, django_assert_num_queries):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("manager"), department=tree["FIN"])
    assign_perm(VIEW, user, tree["ENG"])
    user.has_perm(VIEW, tree["HQ"])  # computes and caches
    fresh = type(user).objects.get(pk=user.pk)  # a new request: no memo, the cache is warm
    with django_assert_num_queries(0):
        assert fresh.has_perm(CHANGE, tree["AP"]) is True
        assert fresh.has_perm(CHANGE, tree["ENG"]) is False
        assert fresh.has_perm(VIEW, tree["ENG"]) is True
        assert fresh.has_perm(VIEW, tree["HQ"]) is False


def test_visible_to_is_one_statement_with_one_set_and_no_id_list(acme, tree):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"), department=tree["FIN"])
    assign_perm(VIEW, user, tree["ENG"])
    visible_codes(user, acme)  # warms the permission cache
    with CaptureQueriesContext(connection) as captured:
        codes = visible_codes(user, acme)
    assert codes == ["AP", "ENG", "FIN"]
    assert len(captured.captured_queries) == 1
    sql = captured.captured_queries[0]["sql"]
    # the subtree and the user's grants are one set of departments (no group grants exist for this user)
    assert '"organizations_department"."id" = ANY(ARRAY(SELECT p."id" FROM "organizations_department" p' in sql
    assert sql.count("ANY(ARRAY(") == 1
    assert sql.count(" UNION ALL ") == 1  # the subtree's branch and the grants' branch of the one set
    assert str(tree["ENG"].pk) not in sql  # the grant is read from its table, not listed


def test_a_group_grant_joins_the_same_set(acme, tree):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"), department=tree["AP"])
    group = Group.objects.create(name="auditors")
    user.groups.add(group)
    assign_perm(VIEW, group, tree["ENG"])
    sql = str(Department.objects.visible_to(user, acme, "view").query)
    assert sql.count("ANY(ARRAY(SELECT") == 1
    assert sql.count(" UNION ALL ") == 1  # the subtree's branch and the grants' branch
    assert sql.count(" UNION SELECT ") == 1  # the user's grants and their groups' grants, inside the grants' branch
    assert visible_codes(user, acme) == ["AP", "ENG"]


def test_visible_to_is_empty_without_any_permission(acme, tree, django_assert_num_queries):
    user = member_of(acme)
    engine.effective_permissions(user, acme)
    with django_assert_num_queries(0):
        assert list(Department.objects.visible_to(user, acme, "view")) == []


def test_effective_permissions_are_computed_once_per_request(acme, tree, django_assert_max_num_queries):
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"))
    with django_assert_max_num_queries(6):
        for _ in range(20):
            engine.effective_permissions(user, acme)


def test_non_members_hold_nothing_even_with_assignments(acme, tree):
    user = UserFactory()
    membership = Membership.objects.create(organization=acme, user=user)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"))
    membership.is_active = False
    membership.save()
    fresh = type(user).objects.get(pk=user.pk)
    assert visible_codes(fresh, acme) == []


@pytest.mark.parametrize("action", ["view", "change"])
def test_visible_departments_are_has_perm_row_by_row(acme, tree, action):
    other = OrganizationFactory()
    DepartmentFactory(organization=other, code="FIN")  # the same path in another organization stays out
    permission = f"organizations.{action}_department"

    def member(department=None, grants=(), group=None):
        return scoped_member(
            acme,
            role="manager",
            department=tree[department] if department else None,
            grants=[(permission, tree[code]) for code in grants],
            group=group,
        )

    users = {
        "FIN subtree": member("FIN"),
        "ENG subtree + grant on AP": member("ENG", grants=["AP"]),
        "grants only": member(grants=["HQ", "ENG"]),
        "group grant + AP subtree": member("AP", grants=["HQ"], group="auditors"),
        "nothing": member(),
    }
    rows = list(Department._base_manager.all())
    seen = {}
    for label, user in users.items():
        expected = {row.pk for row in rows if engine.has_perm(user, permission, row)}
        visible = set(engine.visible(Department._base_manager.all(), user, acme, action).values_list("pk", flat=True))
        assert visible == expected, label
        seen[label] = {row.code for row in rows if row.pk in visible}
    assert seen == {
        "FIN subtree": {"FIN", "AP"},
        "ENG subtree + grant on AP": {"ENG", "AP"},
        "grants only": {"HQ", "ENG"},
        "group grant + AP subtree": {"AP", "HQ"},
        "nothing": set(),
    }


@pytest.mark.parametrize("dense_threshold", [1000, 1], ids=["hashed-union", "per-row-probes"])
def test_both_grant_strategies_give_the_same_rows(acme, tree, monkeypatch, dense_threshold):
    # given: a FIN-scoped viewer who also holds a user grant on ENG and a group grant on HQ
    monkeypatch.setattr(engine, "DENSE_GRANTS", dense_threshold)
    user = member_of(acme)
    RoleAssignmentFactory(organization=acme, user=user, role=system_role("viewer"), department=tree["FIN"])
    assign_perm(VIEW, user, tree["ENG"])
    group = Group.objects.create(name="readers")
    user.groups.add(group)
    assign_perm(VIEW, group, tree["HQ"])
    # when / then
    assert visible_codes(user, acme) == ["AP", "ENG", "FIN", "HQ"]
    assert visible_codes(member_of(acme), acme) == []
