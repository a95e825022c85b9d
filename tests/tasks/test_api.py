"""The projects, tasks, comments and time-entries API: rules, permissions, filters and errors."""

import datetime
from decimal import Decimal

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from tasks import services
from tasks.models import Comment, Project, ProjectMember, Task, TaskDependency, TimeEntry
from tests.api_helpers import invalid, lacks_permission
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, system_role

pytestmark = pytest.mark.django_db

BASE = "/api/v1/organizations/acme"
PROJECTS = f"{BASE}/projects/"
TASKS = f"{BASE}/tasks/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def task_rows() -> list[tuple]:
    return list(Task.all_objects.order_by("pk").values_list("pk", "status", "assignee_id", "title", "progress"))


# --- Projects --------------------------------------------------------------------------------------------------------


def test_create_a_project(organization, manager):
    response = client_for(manager).post(
        PROJECTS, {"code": "crm", "name": "CRM rollout", "manager": manager.pk, "status": "active"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    project = Project.objects.get()
    assert {key: body[key] for key in ("id", "code", "name", "status", "manager", "department")} == {
        "id": project.pk,
        "code": "CRM",
        "name": "CRM rollout",
        "status": "active",
        "manager": manager.pk,
        "department": None,
    }
    assert list(ProjectMember.objects.values_list("user", "role")) == [(manager.pk, "lead")]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"code": "web", "name": "Again"}, {"code": ["Another project of this organization already has this code."]}),
        (
            {"code": "X", "name": "X", "start_date": "2026-02-02", "end_date": "2026-02-01"},
            {"end_date": ["The end date cannot be before the start date."]},
        ),
        ({"code": "X", "name": "X", "status": "sleeping"}, {"status": ['"sleeping" is not a valid choice.']}),
        ({"code": "X", "name": "X", "manager": 999999}, {"manager": ["User 999999 is not an active member here."]}),
        (
            {"code": "bad code", "name": "X"},
            {"code": ["Use letters, digits, '.', '_' and '-', starting with a letter or digit."]},
        ),
    ],
)
def test_bad_project_input_is_400_and_changes_nothing(manager, project, body, fields):
    before = list(Project.all_objects.values_list("pk", "code"))
    response = client_for(manager).post(PROJECTS, body, format="json")
    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert list(Project.all_objects.values_list("pk", "code")) == before


def test_project_filters_search_and_ordering(organization, manager, project, worker, tree):
    other = services.project_create(
        actor=manager,
        organization=organization,
        code="ALPHA",
        name="Alpha research",
        department=tree["FIN"],
        status="active",
    )
    client = client_for(manager)

    def codes(query: str) -> list[str]:
        response = client.get(f"{PROJECTS}?{query}")
        assert response.status_code == 200, response.content
        return [row["code"] for row in response.json()["results"]]

    assert codes("") == ["ALPHA", "WEB"]
    assert codes("ordering=-code") == ["WEB", "ALPHA"]
    assert codes("status=active") == ["ALPHA"]
    assert codes(f"department={tree['FIN'].pk}") == ["ALPHA"]
    assert codes(f"manager={manager.pk}") == ["WEB"]
    assert codes(f"member={worker.pk}") == ["WEB"]
    assert codes("search=alpha") == ["ALPHA"]
    assert other.code == "ALPHA"
    assert client.get(f"{PROJECTS}?colour=red").status_code == 400
    assert client.get(f"{PROJECTS}?ordering=manager").status_code == 400


def test_delete_a_project(manager, project, make_task):
    task = make_task()
    client = client_for(manager)
    assert client.delete(f"{PROJECTS}{project.pk}/").status_code == 409
    services.task_transition(actor=manager, task=task, transition="cancel")
    assert client.delete(f"{PROJECTS}{project.pk}/").status_code == 204
    assert Project.all_objects.get().deleted_at is not None


def test_board_and_summary(manager, project, make_task):
    make_task(priority=4, title="Urgent", due_date=datetime.date(2020, 1, 1), estimated_hours=Decimal(2))
    started = services.task_transition(actor=manager, task=make_task(title="Started"), transition="start")
    client = client_for(manager)
    board = client.get(f"{PROJECTS}{project.pk}/board/").json()
    assert [(column["status"], column["count"], [task["title"] for task in column["tasks"]]) for column in board] == [
        ("todo", 1, ["Urgent"]),
        ("in_progress", 1, ["Started"]),
        ("in_review", 0, []),
        ("done", 0, []),
        ("cancelled", 0, []),
    ]
    assert board[1]["tasks"][0]["id"] == started.pk
    summary = client.get(f"{PROJECTS}{project.pk}/summary/").json()
    assert summary == {
        "project": project.pk,
        "total": 2,
        "by_status": {"todo": 1, "in_progress": 1, "in_review": 0, "done": 0, "cancelled": 0},
        "overdue": 1,
        "estimated_hours": "2.00",
        "actual_hours": "0.00",
    }


def test_project_members_are_managed_with_their_own_permission(organization, manager, project, worker):
    newcomer = MembershipFactory(organization=organization, role="member").user
    url = f"{PROJECTS}{project.pk}/members/"
    # a member (no tasks.manage_project_members) is refused and nothing changes
    response = client_for(worker).post(url, {"user": newcomer.pk}, format="json")
    assert response.status_code == 403
    assert response.json() == lacks_permission("tasks.manage_project_members", on_object=True)
    assert not ProjectMember.objects.filter(user=newcomer).exists()
    # the manager adds, re-roles and removes
    client = client_for(manager)
    assert client.post(url, {"user": newcomer.pk, "role": "observer"}, format="json").json()["role"] == "observer"
    assert [row["user"] for row in client.get(url).json()] == [manager.pk, worker.pk, newcomer.pk]
    assert client.post(f"{url}remove/", {"user": newcomer.pk}, format="json").status_code == 204
    assert client.post(f"{url}remove/", {"user": manager.pk}, format="json").status_code == 409
    assert client.post(url, {"user": "x"}, format="json").status_code == 400
    assert client.post(url, {"user": newcomer.pk, "role": "boss"}, format="json").status_code == 400


# --- Tasks -----------------------------------------------------------------------------------------------------------


def test_create_a_task(organization, project, worker, manager):
    response = client_for(manager).post(
        TASKS,
        {
            "title": "Design the home page",
            "project": project.pk,
            "priority": "high",
            "assignee": worker.pk,
            "labels": ["UI", "design"],
            "due_date": "2030-01-31",
            "estimated_hours": "8",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    task = Task.objects.get()
    body = response.json()
    assert {key: body[key] for key in ("id", "status", "priority", "assignee", "reporter", "labels", "progress")} == {
        "id": task.pk,
        "status": "todo",
        "priority": "high",
        "assignee": worker.pk,
        "reporter": manager.pk,
        "labels": ["design", "ui"],
        "progress": 0,
    }
    assert (body["has_open_subtasks"], body["is_overdue"], body["completed_at"]) == (False, False, None)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"title": "T", "priority": "asap"}, {"priority": ['"asap" is not a valid choice.']}),
        ({"title": "T", "progress": 101}, {"progress": ["Ensure this value is less than or equal to 100."]}),
        ({"title": "T", "project": 999999}, {"project": ['Invalid pk "999999" - object does not exist.']}),
        ({"title": "T", "labels": ["a,b"]}, {"labels": {"0": ["A label has 1 to 40 characters, no comma."]}}),
        ({"title": "T", "status": "done"}, None),  # read-only: ignored, the task starts as to do
        (
            {"title": "T", "start_date": "2026-02-02", "due_date": "2026-02-01"},
            {"due_date": ["The due date cannot be before the start date."]},
        ),
        ({"title": ""}, {"title": ["This field may not be blank."]}),
    ],
)
def test_bad_task_input_is_400(manager, project, body, fields):
    response = client_for(manager).post(TASKS, body, format="json")
    if fields is None:
        assert response.json()["status"] == "todo"
        return
    assert response.status_code == 400, response.content
    assert response.json() == invalid(fields)
    assert Task.objects.count() == 0


def test_changing_the_assignee_needs_tasks_assign_task(manager, project, worker, make_task):
    task = make_task()
    before = task_rows()
    response = client_for(worker).patch(f"{TASKS}{task.pk}/", {"assignee": worker.pk}, format="json")
    assert response.status_code == 403
    assert task_rows() == before
    response = client_for(worker).patch(f"{TASKS}{task.pk}/", {"title": "Renamed"}, format="json")
    assert response.json()["title"] == "Renamed"
    response = client_for(manager).patch(f"{TASKS}{task.pk}/", {"assignee": worker.pk}, format="json")
    assert response.json()["assignee"] == worker.pk


def test_task_filters(organization, manager, project, worker, make_task):
    today = datetime.date.today()
    late = make_task(title="Late", due_date=today - datetime.timedelta(days=3), assignee=worker, labels=["backend"])
    soon = make_task(title="Soon", due_date=today + datetime.timedelta(days=3), priority=4, labels=["ui", "backend"])
    parent = make_task(title="Parent")
    child = make_task(title="Child", parent=parent)
    loose = services.task_create(actor=manager, organization=organization, title="Loose")
    client = client_for(worker)

    def titles(query: str) -> list[str]:
        response = client.get(f"{TASKS}?{query}")
        assert response.status_code == 200, response.content
        return [row["title"] for row in response.json()["results"]]

    assert titles("") == ["Loose", "Child", "Parent", "Soon", "Late"]
    assert titles(f"project={project.pk}") == ["Child", "Parent", "Soon", "Late"]
    assert titles("assignee=me") == ["Late"]
    assert titles(f"assignee={worker.pk}") == ["Late"]
    assert titles("label=backend") == ["Soon", "Late"]
    assert titles("label=UI") == ["Soon"]
    assert titles("overdue=true") == ["Late"]
    assert "Late" not in titles("overdue=false")
    assert titles(f"due_before={today.isoformat()}") == ["Late"]
    assert titles(f"due_after={today.isoformat()}") == ["Soon"]
    assert titles("priority=urgent") == ["Soon"]
    assert titles(f"parent={parent.pk}") == ["Child"]
    assert titles("has_open_subtasks=true") == ["Parent"]
    assert titles("status=todo&search=par") == ["Parent"]
    assert titles("ordering=-priority")[0] == "Soon"
    assert titles("ordering=due_date&due_before=2999-01-01") == ["Late", "Soon"]
    assert (late.pk, soon.pk, child.pk, loose.pk) != ()
    for bad in ("assignee=someone", "overdue=maybe", "priority=asap", "status=later", "due_before=yesterday", "x=1"):
        response = client.get(f"{TASKS}?{bad}")
        assert response.status_code == 400, bad


@pytest.mark.parametrize("ordering", ["due_date", "-due_date"])
def test_pages_ordered_by_a_field_that_may_be_empty_hold_every_task_once(manager, make_task, ordering):
    # given: seven tasks, three without a due date, two sharing one
    today = datetime.date.today()
    for index, days in enumerate([None, 3, None, 1, 3, None, 2]):
        make_task(title=f"T{index}", due_date=None if days is None else today + datetime.timedelta(days=days))
    client = client_for(manager)

    # when: read two at a time
    seen, url = [], f"{TASKS}?ordering={ordering}&page_size=2"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        seen += [(row["title"], row["due_date"]) for row in response.json()["results"]]
        url = response.json()["next"]

    # then: every task once, those without a value after the others (or before them, read backwards)
    assert sorted(title for title, _ in seen) == [f"T{index}" for index in range(7)]
    dated = [due for _, due in seen if due is not None]
    undated_at = [position for position, (_, due) in enumerate(seen) if due is None]
    if ordering.startswith("-"):
        assert undated_at == [0, 1, 2]
        assert dated == sorted(dated, reverse=True)
    else:
        assert undated_at == [4, 5, 6]
        assert dated == sorted(dated)


def test_delete_a_task(manager, make_task):
    parent = make_task()
    child = make_task(parent=parent)
    client = client_for(manager)
    assert client.delete(f"{TASKS}{parent.pk}/").status_code == 409
    assert client.delete(f"{TASKS}{child.pk}/").status_code == 204
    assert client.get(f"{TASKS}{child.pk}/").status_code == 404


# --- Transitions -----------------------------------------------------------------------------------------------------


def test_transitions_through_the_api(manager, make_task):
    task = make_task()
    client = client_for(manager)
    for path, status in [("start", "in_progress"), ("submit-for-review", "in_review"), ("complete", "done")]:
        response = client.post(f"{TASKS}{task.pk}/{path}/")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == status
    assert response.json()["progress"] == 100
    assert response.json()["completed_at"] is not None
    response = client.post(f"{TASKS}{task.pk}/cancel/")
    assert response.status_code == 400
    assert response.json() == invalid({"status": ["A task that is done cannot cancel; allowed: reopen."]})
    response = client.post(f"{TASKS}{task.pk}/reopen/")
    assert (response.json()["status"], response.json()["completed_at"], response.json()["progress"]) == (
        "in_progress",
        None,
        0,
    )


def test_the_assignee_moves_their_own_task_without_change_task(organization, manager, project, make_task):
    # given: two viewers on the project; one is the assignee
    assignee = MembershipFactory(organization=organization, role="viewer").user
    bystander = MembershipFactory(organization=organization, role="viewer").user
    for user in (assignee, bystander):
        services.project_member_set(actor=manager, project=project, user=user)
    task = make_task(assignee=assignee)
    before = task_rows()
    # when / then: the bystander is refused, nothing changes; the assignee may
    response = client_for(bystander).post(f"{TASKS}{task.pk}/start/")
    assert response.status_code == 403
    assert task_rows() == before
    assert client_for(assignee).post(f"{TASKS}{task.pk}/start/").json()["status"] == "in_progress"
    # but editing the task itself still needs tasks.change_task
    assert client_for(assignee).patch(f"{TASKS}{task.pk}/", {"title": "x"}, format="json").status_code == 403


def test_blocked_transitions_are_400(manager, make_task):
    first, second = make_task(), make_task()
    client = client_for(manager)
    response = client.post(f"{TASKS}{second.pk}/dependencies/", {"depends_on": first.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["depends_on"] == first.pk
    response = client.post(f"{TASKS}{second.pk}/start/")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "status": [f"This task cannot start before the tasks it depends on are done: [{first.pk}]."]
    }


# --- Dependencies ----------------------------------------------------------------------------------------------------


def test_dependencies_are_listed_added_and_removed(manager, make_task, other_organization):
    first, second, third = make_task(), make_task(), make_task()
    client = client_for(manager)
    url = f"{TASKS}{third.pk}/dependencies/"
    assert client.post(url, {"depends_on": second.pk}, format="json").status_code == 201
    assert client.post(f"{TASKS}{second.pk}/dependencies/", {"depends_on": first.pk}, format="json").status_code == 201
    # a cycle through three tasks
    response = client.post(f"{TASKS}{first.pk}/dependencies/", {"depends_on": third.pk}, format="json")
    assert response.status_code == 400
    assert response.json() == invalid(
        {"depends_on": [f"Task {third.pk} already depends on task {first.pk}: that would make a cycle."]}
    )
    assert [row["depends_on"] for row in client.get(url).json()] == [second.pk]
    assert client.post(url, {"depends_on": "abc"}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    assert client.post(f"{url}remove/", {"depends_on": second.pk}, format="json").status_code == 204
    assert client.post(f"{url}remove/", {"depends_on": second.pk}, format="json").status_code == 400
    assert TaskDependency.objects.count() == 1


# --- Comments and time entries ---------------------------------------------------------------------------------------


def test_comments_nested_and_flat(organization, manager, worker, make_task):
    task = make_task()
    url = f"{TASKS}{task.pk}/comments/"
    response = client_for(worker).post(url, {"body": "On it"}, format="json")
    assert response.status_code == 201, response.content
    comment = Comment.objects.get()
    assert (response.json()["author"], response.json()["task"], response.json()["is_edited"]) == (
        worker.pk,
        task.pk,
        False,
    )
    assert [row["body"] for row in client_for(manager).get(url).json()["results"]] == ["On it"]
    assert client_for(worker).post(url, {"body": ""}, format="json").status_code == 400
    flat = f"{BASE}/comments/{comment.pk}/"
    # the organization's admin may not edit someone else's comment
    assert client_for(manager).patch(flat, {"body": "Hijacked"}, format="json").status_code == 403
    response = client_for(worker).patch(flat, {"body": "On it, really"}, format="json")
    assert (response.json()["body"], response.json()["is_edited"]) == ("On it, really", True)
    # a comment never moves to another task
    client_for(worker).patch(flat, {"task": make_task().pk}, format="json")
    assert Comment.objects.get().task_id == task.pk
    # flat create names the task
    response = client_for(worker).post(f"{BASE}/comments/", {"task": task.pk, "body": "Second"}, format="json")
    assert response.status_code == 201
    other = MembershipFactory(organization=organization, role="member").user
    assert client_for(other).delete(flat).status_code == 403
    assert client_for(worker).delete(flat).status_code == 204
    task.refresh_from_db()
    assert task.comment_count == 1


def test_time_entries_nested_and_flat(organization, manager, worker, make_task):
    task = make_task()
    url = f"{TASKS}{task.pk}/time-entries/"
    response = client_for(worker).post(url, {"hours": "2.5", "date": "2026-03-02", "note": "pairing"}, format="json")
    assert response.status_code == 201, response.content
    entry = TimeEntry.objects.get()
    assert (response.json()["member"], response.json()["hours"]) == (worker.pk, "2.50")
    for hours in ("0", "25", "-1", "abc"):
        assert client_for(worker).post(url, {"hours": hours, "date": "2026-03-02"}, format="json").status_code == 400
    response = client_for(worker).post(url, {"hours": "22", "date": "2026-03-02"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "hours": ["At most 24 hours a day: 2.50 hours are already logged on 2026-03-02."]
    }
    assert [row["id"] for row in client_for(manager).get(url).json()["results"]] == [entry.pk]
    flat = f"{BASE}/time-entries/{entry.pk}/"
    other = MembershipFactory(organization=organization, role="member").user
    assert client_for(other).patch(flat, {"hours": "1"}, format="json").status_code == 403
    assert client_for(worker).patch(flat, {"hours": "4"}, format="json").json()["hours"] == "4.00"
    task.refresh_from_db()
    assert task.actual_hours == Decimal(4)
    response = client_for(worker).post(f"{BASE}/time-entries/", {"task": task.pk, "hours": "1"}, format="json")
    assert response.status_code == 201
    assert client_for(worker).delete(flat).status_code == 204
    task.refresh_from_db()
    assert task.actual_hours == Decimal(1)
    assert client_for(manager).get(f"{BASE}/time-entries/?member={worker.pk}").json()["results"][0]["hours"] == "1.00"


def test_the_tasks_history_shows_transitions_comments_and_time_entries_with_the_actor(manager, worker, make_task):
    task = make_task()
    client_for(worker).post(f"{TASKS}{task.pk}/start/")
    client_for(worker).post(f"{TASKS}{task.pk}/comments/", {"body": "Started"}, format="json")
    client_for(worker).post(f"{TASKS}{task.pk}/time-entries/", {"hours": "1", "date": "2026-01-02"}, format="json")
    client_for(manager).post(f"{TASKS}{task.pk}/cancel/")
    response = client_for(manager).get(f"{TASKS}{task.pk}/history/")
    assert response.status_code == 200, response.content
    rows = [(row["user"]["id"], row["reason"], row["changed_fields"]) for row in response.json()["results"]]
    comment, entry = Comment.objects.get(), TimeEntry.objects.get()
    assert rows[:4] == [
        (manager.pk, "cancel", ["status"]),
        (worker.pk, f"time entry {entry.pk} logged: 1.00 h on 2026-01-02", ["actual_hours"]),
        (worker.pk, f"comment {comment.pk} added", ["comment_count"]),
        (worker.pk, "start", ["status"]),
    ]


# --- Who sees what ---------------------------------------------------------------------------------------------------


@pytest.fixture
def shared(organization, manager):
    """Two projects with two tasks each; ``grantee`` (a member without any role) holds a grant on the first."""
    projects = [
        services.project_create(actor=manager, organization=organization, code=code, name=code)
        for code in ("ONE", "TWO")
    ]
    tasks = {
        project.code: [
            services.task_create(actor=manager, organization=organization, title=f"{project.code}-{n}", project=project)
            for n in range(2)
        ]
        for project in projects
    }
    services.task_create(actor=manager, organization=organization, title="No project")
    grantee = MembershipFactory(organization=organization).user
    assign_perm("tasks.view_project", grantee, projects[0])
    return {"projects": projects, "tasks": tasks, "grantee": grantee}


def test_a_grant_only_user_sees_exactly_the_shared_project_and_its_tasks(shared):
    client = client_for(shared["grantee"])
    assert [row["code"] for row in client.get(PROJECTS).json()["results"]] == ["ONE"]
    assert sorted(row["title"] for row in client.get(TASKS).json()["results"]) == ["ONE-0", "ONE-1"]
    hidden = shared["tasks"]["TWO"][0]
    assert client.get(f"{TASKS}{hidden.pk}/").status_code == 404
    assert client.get(f"{PROJECTS}{shared['projects'][1].pk}/board/").status_code == 404
    board = client.get(f"{PROJECTS}{shared['projects'][0].pk}/board/").json()
    assert board[0]["count"] == 2
    # a view grant does not let them work on the tasks
    task = shared["tasks"]["ONE"][0]
    assert client.post(f"{TASKS}{task.pk}/start/").status_code == 403
    assert client.post(f"{TASKS}{task.pk}/comments/", {"body": "hi"}, format="json").status_code == 403
    assert Task.objects.get(pk=task.pk).status == "todo"


def test_a_change_grant_lets_a_non_role_member_work_on_the_projects_tasks(manager, shared):
    grantee, project = shared["grantee"], shared["projects"][0]
    assign_perm("tasks.change_project", grantee, project)
    services.project_member_set(actor=manager, project=project, user=grantee)
    task = shared["tasks"]["ONE"][0]
    client = client_for(grantee)
    assert client.post(f"{TASKS}{task.pk}/start/").json()["status"] == "in_progress"
    assert client.post(f"{TASKS}{task.pk}/comments/", {"body": "hi"}, format="json").status_code == 201
    response = client.post(f"{TASKS}{task.pk}/time-entries/", {"hours": "1"}, format="json")
    assert response.status_code == 201, response.content
    assert client.patch(f"{TASKS}{task.pk}/", {"title": "Renamed"}, format="json").status_code == 200
    # creating tasks needs a role
    assert client.post(TASKS, {"title": "new", "project": project.pk}, format="json").status_code == 403
    # the other project stays out of reach
    other = shared["tasks"]["TWO"][0]
    assert client.post(f"{TASKS}{other.pk}/start/").status_code == 404


def test_a_grant_counts_only_while_the_grantee_is_a_member(organization, shared):
    from organizations import services as organization_services
    from tests.conftest import membership_of

    grantee = shared["grantee"]
    organization_services.membership_end(actor=None, membership=membership_of(grantee, organization))
    assert client_for(grantee).get(TASKS).status_code == 404


def test_a_department_scoped_manager_sees_only_the_departments_projects(organization, manager, tree):
    fin = services.project_create(
        actor=manager, organization=organization, code="FIN1", name="F", department=tree["AP"]
    )
    services.project_create(actor=manager, organization=organization, code="ENG1", name="E", department=tree["ENG"])
    services.project_create(actor=manager, organization=organization, code="ORG1", name="O")
    services.task_create(actor=manager, organization=organization, title="fin task", project=fin)
    boss = MembershipFactory(organization=organization, department=tree["FIN"]).user
    RoleAssignmentFactory(organization=organization, user=boss, role=system_role("manager"), department=tree["FIN"])
    client = client_for(boss)
    assert [row["code"] for row in client.get(PROJECTS).json()["results"]] == ["FIN1"]
    assert [row["title"] for row in client.get(TASKS).json()["results"]] == ["fin task"]
    # and may create projects only inside the department
    assert (
        client.post(PROJECTS, {"code": "IN", "name": "In", "department": tree["AP"].pk}, format="json").status_code
        == 201
    )
    response = client.post(PROJECTS, {"code": "OUT", "name": "Out"}, format="json")
    assert response.status_code == 403
    assert not Project.objects.filter(code="OUT").exists()
