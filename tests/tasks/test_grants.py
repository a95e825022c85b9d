"""Grants on a project reach its tasks, comments, time entries and dependencies through the engine (``grants_through``):
the same answer from ``has_perm``, ``visible``, the flat and nested API routes, the admin and ``explain``."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from organizations.models import Membership
from rbac import engine
from rbac.explain import explain
from rbac.grants import ReachedThrough, parent_reach
from tasks import services
from tasks.models import Comment, Project, Task, TaskDependency, TimeEntry
from tests.organizations.factories import MembershipFactory

BASE = "/api/v1/organizations/acme"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def projects(organization, manager):
    return [
        services.project_create(actor=manager, organization=organization, code=code, name=code, manager=manager)
        for code in ("ONE", "TWO")
    ]


@pytest.fixture
def tasks(organization, manager, projects):
    return [services.task_create(actor=manager, organization=organization, title=p.code, project=p) for p in projects]


@pytest.fixture
def grantee(organization):
    """A member without any role."""
    return MembershipFactory(organization=organization).user


def test_the_tasks_models_declare_what_a_project_grant_reaches():
    reached = {
        permission: (reach.lookup, reach.parent_permission)
        for permission, reach in parent_reach().items()
        if permission.startswith("tasks.")
    }
    assert reached == {
        "tasks.view_task": ("project", "tasks.view_project"),
        "tasks.change_task": ("project", "tasks.change_project"),
        "tasks.view_comment": ("task__project", "tasks.view_project"),
        "tasks.add_comment": ("task__project", "tasks.change_project"),
        "tasks.view_timeentry": ("task__project", "tasks.view_project"),
        "tasks.add_timeentry": ("task__project", "tasks.change_project"),
        "tasks.view_taskdependency": ("task__project", "tasks.view_project"),
        "tasks.add_taskdependency": ("task__project", "tasks.change_project"),
        "tasks.delete_taskdependency": ("task__project", "tasks.change_project"),
    }


def test_a_declaration_must_follow_foreign_keys_to_a_shareable_model(monkeypatch):
    parent_reach.cache_clear()
    try:
        monkeypatch.setattr(Task, "grants_through", ReachedThrough("title", {"view": "view"}), raising=False)
        with pytest.raises(ImproperlyConfigured, match="does not follow foreign keys"):
            parent_reach()
        monkeypatch.setattr(Task, "grants_through", ReachedThrough("assignee", {"view": "view"}), raising=False)
        with pytest.raises(ImproperlyConfigured, match="User cannot be shared"):
            parent_reach()
    finally:
        monkeypatch.undo()
        parent_reach.cache_clear()


def test_has_perm_counts_the_grant_on_the_project_above_the_object(organization, manager, projects, tasks, grantee):
    one, two = tasks
    assign_perm("tasks.change_project", grantee, projects[0])
    services.project_member_set(actor=manager, project=projects[0], user=grantee)
    comment = services.comment_create(actor=manager, task=one, body="on ONE")

    assert engine.has_perm(grantee, "tasks.change_task", one)
    assert not engine.has_perm(grantee, "tasks.change_task", two)
    # the permission to comment is asked of the task the comment would go on, and of the comment itself
    assert engine.has_perm(grantee, "tasks.add_comment", one)
    assert engine.has_perm(grantee, "tasks.add_comment", comment)
    assert not engine.has_perm(grantee, "tasks.add_comment", two)
    # a change grant does not reach what the declaration leaves out
    assert not engine.has_perm(grantee, "tasks.view_task", one)
    assert not engine.has_perm(grantee, "tasks.delete_task", one)
    assert not engine.has_perm(grantee, "tasks.assign_task", one)
    assert not engine.has_perm(grantee, "tasks.change_comment", comment)
    # a task without a project is reached by no project grant
    loose = services.task_create(actor=manager, organization=organization, title="loose")
    assert not engine.has_perm(grantee, "tasks.change_task", loose)
    # and a grant counts only while the grantee is an active member
    Membership.objects.filter(user=grantee).update(is_active=False)
    engine.bump_user(grantee.pk)
    assert not engine.has_perm(grantee, "tasks.change_task", one)


def test_visible_counts_group_grants_on_the_project(organization, manager, projects, tasks, grantee):
    team = Group.objects.create(name="contractors")
    grantee.groups.add(team)
    assign_perm("tasks.view_project", team, projects[1])
    engine.bump_user(grantee.pk)
    comment = services.comment_create(actor=manager, task=tasks[1], body="on TWO")
    services.comment_create(actor=manager, task=tasks[0], body="on ONE")

    assert list(Task.objects.visible_to(grantee, organization, "view")) == [tasks[1]]
    assert list(Comment.objects.visible_to(grantee, organization, "view")) == [comment]
    assert not Task.objects.visible_to(grantee, organization, "change").exists()


def test_dependencies_and_time_entries_are_reached_too(organization, manager, projects, tasks, grantee):
    assign_perm("tasks.view_project", grantee, projects[0])
    extra = services.task_create(actor=manager, organization=organization, title="ONE-b", project=projects[0])
    dependency = services.task_dependency_add(actor=manager, task=tasks[0], depends_on=extra)
    services.task_dependency_add(actor=manager, task=tasks[1], depends_on=tasks[0])
    entry = services.time_entry_create(actor=manager, task=tasks[0], hours=Decimal(2), member=manager)
    services.time_entry_create(actor=manager, task=tasks[1], hours=Decimal(3), member=manager)

    assert list(TaskDependency.objects.visible_to(grantee, organization, "view")) == [dependency]
    assert list(TimeEntry.objects.visible_to(grantee, organization, "view")) == [entry]


def test_a_change_grant_opens_the_flat_create_routes_for_its_projects_tasks_only(manager, projects, tasks, grantee):
    one, two = tasks
    assign_perm("tasks.change_project", grantee, projects[0])
    assign_perm("tasks.view_project", grantee, projects[0])
    assign_perm("tasks.view_project", grantee, projects[1])
    services.project_member_set(actor=manager, project=projects[0], user=grantee)
    services.project_member_set(actor=manager, project=projects[1], user=grantee)
    client = client_for(grantee)

    response = client.post(f"{BASE}/comments/", {"task": one.pk, "body": "flat"}, format="json")
    assert response.status_code == 201, response.content
    response = client.post(f"{BASE}/time-entries/", {"task": one.pk, "hours": "1.5"}, format="json")
    assert response.status_code == 201, response.content

    # TWO is visible to them but not theirs to work on: refused, and nothing is written
    response = client.post(f"{BASE}/comments/", {"task": two.pk, "body": "flat"}, format="json")
    assert response.status_code == 403, response.content
    response = client.post(f"{BASE}/time-entries/", {"task": two.pk, "hours": "1"}, format="json")
    assert response.status_code == 403, response.content
    assert list(Comment.objects.values_list("task_id", "body")) == [(one.pk, "flat")]
    assert list(TimeEntry.objects.values_list("task_id", flat=True)) == [one.pk]
    assert Task.objects.get(pk=two.pk).actual_hours == 0


def test_a_view_grant_alone_opens_no_write_route(projects, tasks, grantee):
    assign_perm("tasks.view_project", grantee, projects[0])
    client = client_for(grantee)

    assert client.post(f"{BASE}/comments/", {"task": tasks[0].pk, "body": "x"}, format="json").status_code == 403
    assert client.post(f"{BASE}/time-entries/", {"task": tasks[0].pk, "hours": "1"}, format="json").status_code == 403
    assert not Comment.objects.exists()
    assert not TimeEntry.objects.exists()


def test_explain_names_the_project_grant_that_reaches_a_task(organization, manager, projects, tasks, grantee):
    team = Group.objects.create(name="contractors")
    grantee.groups.add(team)
    assign_perm("tasks.view_project", grantee, projects[0])
    assign_perm("tasks.view_project", team, projects[0])
    project_id = projects[0].pk

    verdict = explain(user=grantee, organization=organization, permission="tasks.view_task", obj=tasks[0])
    assert verdict.allowed
    assert [(reason.kind, reason.message) for reason in verdict.reasons] == [
        (
            "user_grant",
            f"A grant of tasks.view_project on project {project_id} to the user, which reaches tasks.view_task.",
        ),
        (
            "group_grant",
            f"A grant of tasks.view_project on project {project_id} to the group contractors, "
            "which reaches tasks.view_task.",
        ),
    ]
    # the verdict is the engine's, object by object and without an object
    for task in tasks:
        for permission in ("tasks.view_task", "tasks.change_task"):
            verdict = explain(user=grantee, organization=organization, permission=permission, obj=task)
            assert verdict.allowed == engine.has_perm(grantee, permission, task)
    assert explain(user=grantee, organization=organization, permission="tasks.view_comment").allowed
    assert not explain(user=grantee, organization=organization, permission="tasks.add_comment").allowed


# --- One set of projects: the department scope and the project grants together --------------------------------------


@pytest.fixture
def spread(organization, other_organization, manager, tree):
    """Projects in FIN, AP, ENG, a soft-deleted one in AP and one without a department; each with a task, a comment
    and a time entry; a task without a project; and a project of another organization whose department is named FIN
    too (the path prefixes must stay inside the organization)."""
    projects = {}
    for code, department in (("FIN", "FIN"), ("AP", "AP"), ("ENG", "ENG"), ("GONE", "AP"), ("NONE", None)):
        projects[code] = services.project_create(
            actor=manager,
            organization=organization,
            code=code,
            name=code,
            manager=manager,
            department=tree[department] if department else None,
        )
        task = services.task_create(actor=manager, organization=organization, title=code, project=projects[code])
        services.comment_create(actor=manager, task=task, body=code)
        services.time_entry_create(actor=manager, task=task, hours=Decimal(1), member=manager)
    services.task_create(actor=manager, organization=organization, title="loose")
    gone = Task.objects.get(project=projects["GONE"])
    services.task_transition(actor=manager, task=gone, transition="cancel")
    services.project_delete(actor=manager, project=projects["GONE"])
    other_manager = MembershipFactory(organization=other_organization, role="org_admin").user
    from tests.organizations.factories import DepartmentFactory

    other_fin = DepartmentFactory(organization=other_organization, code="FIN")
    other = services.project_create(
        actor=other_manager, organization=other_organization, code="X", name="X", department=other_fin
    )
    services.task_create(actor=other_manager, organization=other_organization, title="other", project=other)
    return projects


def kinds_of_user(organization, tree, projects):
    """Members scoped to a subtree, holding grants, both, both through a group, and neither."""
    from tests.rbac.factories import scoped_member

    def member(department=None, view=(), change=(), group=None):
        grants = [("tasks.view_project", projects[code]) for code in view]
        grants += [("tasks.change_project", projects[code]) for code in change]
        department = tree[department] if department is not None else None
        return scoped_member(organization, department=department, grants=grants, group=group)

    return {
        "FIN subtree": member("FIN"),
        "ENG subtree + grant on NONE": member("ENG", view=["NONE"], change=["NONE"]),
        "grants only": member(view=["AP", "NONE"], change=["AP"]),
        "group grants + AP subtree": member("AP", view=["ENG"], change=["ENG"], group="contractors"),
        "nothing": member(),
    }


@pytest.mark.parametrize("action", ["view", "change", "add"])
@pytest.mark.parametrize("wide_share", [1.1, 0.0], ids=["array", "walk"])
def test_visible_is_has_perm_row_by_row(organization, tree, spread, action, wide_share, monkeypatch):
    # both shapes of the parent set (rbac.parent_set) must return the same rows
    monkeypatch.setattr(engine, "WIDE_SHARE", wide_share)
    users = kinds_of_user(organization, tree, spread)
    for model in (Task, Comment, TimeEntry, Project):
        rows = list(model._base_manager.all())
        permission = engine.permission_name(model, action)
        for label, user in users.items():
            expected = {row.pk for row in rows if engine.has_perm(user, permission, row)}
            visible = set(
                engine.visible(model._base_manager.all(), user, organization, action).values_list("pk", flat=True)
            )
            assert visible == expected, (model.__name__, label)


def test_the_scope_and_the_grants_are_one_set_of_projects(organization, tree, spread, monkeypatch):
    monkeypatch.setattr(engine, "WIDE_SHARE", 0.5)  # ENG holds a fifth of the projects: the narrow shape
    user = kinds_of_user(organization, tree, spread)["ENG subtree + grant on NONE"]
    sql = str(Task.objects.visible_to(user, organization, "view").query)
    assert sql.count(" UNION ALL ") == 1  # the branches of the one set: no UNION of task ids
    assert sql.count('"tasks_task"."project_id" = ANY(ARRAY(SELECT') == 1
    assert sorted(Task.objects.visible_to(user, organization, "view").values_list("title", flat=True)) == [
        "ENG",
        "NONE",
    ]


def test_a_scope_over_a_wide_share_of_the_projects_walks_the_list(organization, tree, spread):
    users = kinds_of_user(organization, tree, spread)
    # the organization has 5 projects (one soft-deleted); the FIN subtree holds FIN, AP and the deleted one in AP
    wide = engine.effective_permissions(users["FIN subtree"], organization)
    narrow = engine.effective_permissions(users["ENG subtree + grant on NONE"], organization)
    assert wide.parent_shares["tasks.view_task"] == pytest.approx(3 / 5)
    assert wide.parent_shares["tasks.view_comment"] == pytest.approx(3 / 5)
    assert narrow.parent_shares["tasks.view_task"] == pytest.approx(1 / 5)
    assert "tasks.view_project" not in wide.parent_shares  # a project is filed under its own department

    sql = str(Task.objects.visible_to(users["FIN subtree"], organization, "view").query)
    assert '("tasks_task"."project_id" IN (SELECT' in sql
    assert ") IS TRUE" in sql
    assert "ANY(ARRAY(" not in sql
    user = users["FIN subtree"]
    visible = set(Task.objects.visible_to(user, organization, "view").values_list("title", flat=True))
    assert visible == {task.title for task in Task.objects.all() if engine.has_perm(user, "tasks.view_task", task)}
    assert {"FIN", "AP"} <= visible


def test_a_department_path_is_matched_as_a_prefix_not_a_pattern(organization, manager, tree):
    from rbac.parent_set import InParentSet, Shape

    condition = InParentSet(
        engine.F("project"),
        parent=Task._meta.get_field("project").related_model,
        department_lookup="department__path",
        organization_id=organization.pk,
        paths=["F_N/", "%"],
        grants=None,
        shape=Shape.ARRAY,
    )
    services.task_create(
        actor=manager,
        organization=organization,
        title="in FIN",
        project=services.project_create(
            actor=manager, organization=organization, code="P", name="P", manager=manager, department=tree["FIN"]
        ),
    )
    assert not Task.objects.filter(condition).exists()  # neither "_" nor "%" is a wildcard in a path


def test_the_board_decides_once_per_project_what_the_row_predicate_decides(organization, tree, spread):
    from tasks.api.views import ProjectViewSet

    for user in kinds_of_user(organization, tree, spread).values():
        view = ProjectViewSet()
        view.user, view.organization = user, organization
        for project in spread.values():
            board = set(view.visible_tasks(project).values_list("pk", flat=True))
            rows = Task.objects.visible_to(user, organization, "view").filter(project=project)
            assert board == set(rows.values_list("pk", flat=True))
