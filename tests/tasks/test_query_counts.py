"""Every list, the board and the summary cost the same number of queries whoever asks and however many tasks exist.

Measured with a warm permission cache for a superuser, an organization administrator, a department-scoped manager
and a member who holds only an object grant on the project.
"""

import pytest
from guardian.shortcuts import assign_perm

from tasks import services
from tests.accounts.factories import SuperuserFactory
from tests.api_helpers import warm_queries
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, system_role
from tests.tasks.factories import CommentFactory, TaskFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/organizations/acme"
# endpoint -> (URL, queries: the organization check, then the page, the object and its data)
ENDPOINTS = {
    "projects": (f"{BASE}/projects/?page_size=200", 2),
    "tasks": (f"{BASE}/tasks/?page_size=200", 2),
    "tasks by assignee": (f"{BASE}/tasks/?assignee=me&page_size=200", 2),
    "tasks by status": (f"{BASE}/tasks/?status=todo&page_size=200", 2),
    "comments": (f"{BASE}/comments/?page_size=200", 2),
    "time entries": (f"{BASE}/time-entries/?page_size=200", 2),
    "task comments": (f"{BASE}/tasks/{{task}}/comments/?page_size=200", 3),
    "task time entries": (f"{BASE}/tasks/{{task}}/time-entries/?page_size=200", 3),
    "board": (f"{BASE}/projects/{{project}}/board/", 3),
    "summary": (f"{BASE}/projects/{{project}}/summary/", 3),
}
CALLERS = ("superuser", "org_admin", "department_manager", "grant_only")


@pytest.fixture
def build(organization):
    def _build(size: int) -> dict[str, object]:
        """A project in department SCOPE with ``size`` tasks (one comment and one time entry on each, all assigned to
        one person), and a project outside it."""
        admin = MembershipFactory(organization=organization, role="org_admin").user
        scope = DepartmentFactory(organization=organization, code="SCOPE")
        outside = DepartmentFactory(organization=organization, code="OUTSIDE")
        project = services.project_create(
            actor=admin, organization=organization, code="IN", name="In", department=scope
        )
        services.project_create(actor=admin, organization=organization, code="OUT", name="Out", department=outside)
        manager = MembershipFactory(organization=organization).user
        RoleAssignmentFactory(organization=organization, user=manager, role=system_role("manager"), department=scope)
        grantee = MembershipFactory(organization=organization).user
        assign_perm("tasks.view_project", grantee, project)
        people = {
            "superuser": SuperuserFactory(),
            "org_admin": admin,
            "department_manager": manager,
            "grant_only": grantee,
        }
        for user in people.values():
            if not user.is_superuser:
                services.project_member_set(actor=admin, project=project, user=user)
        members = list(people.values())[1:]
        tasks = [
            # everyone is the assignee of some task, so that "assignee=me" finds rows for each caller
            TaskFactory(organization=organization, title=f"Task {n}", project=project, assignee=members[n % 3])
            for n in range(size)
        ]
        for task in tasks:
            CommentFactory(task=task, author=admin)
        for task in tasks[:10]:
            services.time_entry_create(actor=admin, task=task, hours=1)
        return {"people": people, "project": project, "task": tasks[0]}

    return _build


@pytest.mark.parametrize("size", [10, 200])
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_queries_do_not_depend_on_the_caller_or_the_size(build, endpoint, caller, size):
    world = build(size)
    url, expected = ENDPOINTS[endpoint]
    url = url.format(task=world["task"].pk, project=world["project"].pk)
    count, body = warm_queries(world["people"][caller], url)
    assert count == expected
    rows = body if isinstance(body, list) else body.get("results", [body])
    # the caller really sees data (a superuser is nobody's assignee)
    assert rows or (caller, endpoint) == ("superuser", "tasks by assignee")


@pytest.mark.parametrize(
    ("caller", "projects", "tasks"), [("department_manager", 1, 200), ("grant_only", 1, 200), ("org_admin", 2, 200)]
)
def test_each_caller_sees_exactly_their_scope(build, caller, projects, tasks):
    world = build(200)
    user = world["people"][caller]
    assert len(warm_queries(user, ENDPOINTS["projects"][0])[1]["results"]) == projects
    assert len(warm_queries(user, ENDPOINTS["tasks"][0])[1]["results"]) == tasks
