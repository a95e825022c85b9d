"""The business rules of projects, tasks, dependencies, comments and time entries, through the services."""

import datetime
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from erp.exceptions import ConflictError
from tasks import rules, selectors, services
from tasks.models import Comment, Project, ProjectMember, Task, TaskDependency, TaskStatus, TimeEntry
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory
from tests.tasks.factories import ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- Projects --------------------------------------------------------------------------------------------------------


def test_a_project_code_is_unique_per_organization_only(organization, other_organization, manager, project):
    # given: WEB exists in acme
    # when / then: acme cannot have another (whatever the case), globex can
    with pytest.raises(ValidationError) as excinfo:
        services.project_create(actor=manager, organization=organization, code="Web", name="Again")
    assert errors_of(excinfo) == {"code": ["Another project of this organization already has this code."]}
    other = services.project_create(actor=None, organization=other_organization, code="web", name="Globex web")
    assert (project.code, other.code) == ("WEB", "WEB")


def test_a_deleted_projects_code_can_be_used_again(organization, manager, project):
    services.project_delete(actor=manager, project=project)
    again = services.project_create(actor=manager, organization=organization, code="WEB", name="Second site")
    assert Project.all_objects.filter(code="WEB").count() == 2
    assert again.deleted_at is None


def test_a_project_ends_after_it_starts(organization, manager):
    with pytest.raises(ValidationError) as excinfo:
        services.project_create(
            actor=manager,
            organization=organization,
            code="X",
            name="X",
            start_date=datetime.date(2026, 5, 2),
            end_date=datetime.date(2026, 5, 1),
        )
    assert errors_of(excinfo) == {"end_date": ["The end date cannot be before the start date."]}


def test_the_manager_must_be_an_active_member_and_becomes_a_project_lead(organization, outsider, manager, project):
    assert list(ProjectMember.objects.filter(project=project).values_list("user", "role")) == [(manager.pk, "lead")]
    with pytest.raises(ValidationError) as excinfo:
        services.project_update(actor=manager, project=project, manager=outsider)
    assert errors_of(excinfo) == {"manager": ["The manager must be an active member of the organization."]}


def test_the_department_belongs_to_the_projects_organization(organization, other_organization, manager):
    foreign = DepartmentFactory(organization=other_organization, code="OPS")
    with pytest.raises(ValidationError) as excinfo:
        services.project_create(actor=manager, organization=organization, code="X", name="X", department=foreign)
    assert errors_of(excinfo) == {"department": ["The department belongs to another organization."]}


def test_a_project_with_open_tasks_cannot_be_deleted(manager, project, make_task):
    task = make_task()
    with pytest.raises(ConflictError):
        services.project_delete(actor=manager, project=project)
    services.task_transition(actor=manager, task=task, transition="cancel")
    services.project_delete(actor=manager, project=project)
    assert Project.objects.filter(pk=project.pk).exists() is False


def test_project_members_are_members_of_the_organization(organization, outsider, manager, project):
    with pytest.raises(ValidationError) as excinfo:
        services.project_member_set(actor=manager, project=project, user=outsider)
    assert errors_of(excinfo) == {"user": ["Project members must be active members of the organization."]}


def test_a_member_changes_role_and_leaves_unless_they_have_open_tasks(manager, project, worker, make_task):
    services.project_member_set(actor=manager, project=project, user=worker, role="observer")
    assert ProjectMember.objects.get(project=project, user=worker).role == "observer"
    task = make_task(assignee=worker)
    with pytest.raises(ConflictError):
        services.project_member_remove(actor=manager, project=project, user=worker)
    with pytest.raises(ConflictError):
        services.project_member_remove(actor=manager, project=project, user=manager)
    services.task_transition(actor=manager, task=task, transition="cancel")
    services.project_member_remove(actor=manager, project=project, user=worker)
    assert not ProjectMember.objects.filter(project=project, user=worker).exists()
    with pytest.raises(ValidationError):
        services.project_member_remove(actor=manager, project=project, user=worker)


# --- Tasks -----------------------------------------------------------------------------------------------------------


def test_a_task_stays_in_its_organization(organization, other_organization, manager):
    foreign = ProjectFactory(organization=other_organization)
    with pytest.raises(ValidationError) as excinfo:
        services.task_create(actor=manager, organization=organization, title="T", project=foreign)
    assert errors_of(excinfo) == {"project": ["The project belongs to another organization."]}
    foreign_parent = TaskFactory(organization=other_organization)
    with pytest.raises(ValidationError) as excinfo:
        services.task_create(actor=manager, organization=organization, title="T", parent=foreign_parent)
    assert errors_of(excinfo) == {"parent": ["The parent task belongs to another organization."]}


def test_a_subtask_belongs_to_its_parents_project(organization, manager, project, make_task):
    parent = make_task()
    with pytest.raises(ValidationError) as excinfo:
        services.task_create(actor=manager, organization=organization, title="T", parent=parent)
    assert errors_of(excinfo) == {"parent": ["A subtask belongs to the same project as its parent."]}


def test_parents_never_form_a_cycle(manager, make_task):
    root = make_task()
    child = make_task(parent=root)
    grandchild = make_task(parent=child)
    for new_parent in (root, grandchild):
        with pytest.raises(ValidationError) as excinfo:
            services.task_update(actor=manager, task=root, parent=new_parent)
        assert errors_of(excinfo) == {"parent": ["A task cannot be placed under itself or one of its subtasks."]}


def test_task_trees_are_at_most_five_levels_deep(manager, make_task):
    level = make_task()
    for _ in range(4):
        level = make_task(parent=level)
    with pytest.raises(ValidationError) as excinfo:
        make_task(parent=level)
    assert errors_of(excinfo) == {"parent": ["Tasks can be nested at most 5 levels deep."]}
    # moving a two-level subtree under the fourth level would also go too deep
    other = make_task()
    make_task(parent=other)
    with pytest.raises(ValidationError):
        services.task_update(actor=manager, task=other, parent=level.parent)


def test_the_assignee_is_a_member_of_the_project(organization, manager, project, make_task):
    stranger = MembershipFactory(organization=organization, role="member").user
    with pytest.raises(ValidationError) as excinfo:
        make_task(assignee=stranger)
    assert errors_of(excinfo) == {"assignee": ["The assignee must be a member of the task's project."]}
    gone = MembershipFactory(organization=organization, is_active=False).user
    with pytest.raises(ValidationError) as excinfo:
        services.task_create(actor=manager, organization=organization, title="T", assignee=gone)
    assert errors_of(excinfo) == {"assignee": ["The assignee must be an active member of the organization."]}


def test_choosing_the_assignee_needs_the_assign_permission(organization, project, worker, manager):
    # given: a member (may add and change tasks, may not assign them)
    # when / then
    with pytest.raises(PermissionDenied):
        services.task_create(actor=worker, organization=organization, title="T", project=project, assignee=worker)
    task = services.task_create(actor=worker, organization=organization, title="T", project=project)
    with pytest.raises(PermissionDenied):
        services.task_update(actor=worker, task=task, assignee=manager)
    task = services.task_update(actor=worker, task=task, title="Renamed", labels=["UI", " backend", "ui"])
    assert (task.title, task.labels, task.label_list, task.reporter) == (
        "Renamed",
        ",backend,ui,",
        ["backend", "ui"],
        worker,
    )


def test_a_task_with_subtasks_keeps_its_project_and_cannot_be_deleted(organization, manager, make_task):
    parent = make_task()
    child = make_task(parent=parent)
    other = services.project_create(actor=manager, organization=organization, code="OTHER", name="Other")
    with pytest.raises(ValidationError):
        services.task_update(actor=manager, task=parent, project=other)
    with pytest.raises(ConflictError):
        services.task_delete(actor=manager, task=parent)
    services.task_delete(actor=manager, task=child)
    services.task_delete(actor=manager, task=parent)
    assert Task.objects.count() == 0
    assert Task.all_objects.count() == 2


# --- Transitions -----------------------------------------------------------------------------------------------------


def test_a_task_goes_through_the_whole_workflow(manager, make_task):
    task = make_task()
    for transition, status in [("start", "in_progress"), ("submit_for_review", "in_review"), ("complete", "done")]:
        task = services.task_transition(actor=manager, task=task, transition=transition)
        assert task.status == status
    assert task.progress == 100
    assert task.completed_at is not None
    task = services.task_transition(actor=manager, task=task, transition="reopen")
    assert (task.status, task.progress, task.completed_at) == ("in_progress", 0, None)


@pytest.mark.parametrize("start", ["start", "start,submit_for_review", ""])
def test_every_open_task_can_be_cancelled_and_reopened(manager, make_task, start):
    task = make_task()
    for transition in filter(None, start.split(",")):
        task = services.task_transition(actor=manager, task=task, transition=transition)
    task = services.task_transition(actor=manager, task=task, transition="cancel")
    assert task.status == "cancelled"
    assert services.task_transition(actor=manager, task=task, transition="reopen").status == "in_progress"


@pytest.mark.parametrize(
    ("transitions", "refused", "message"),
    [
        ("", "complete", "A task that is to do cannot complete; allowed: start, cancel."),
        ("", "reopen", "A task that is to do cannot reopen; allowed: start, cancel."),
        ("start", "start", "A task that is in progress cannot start; allowed: submit_for_review, cancel."),
        ("start,submit_for_review", "start", "A task that is in review cannot start; allowed: complete, cancel."),
        ("start,submit_for_review,complete", "cancel", "A task that is done cannot cancel; allowed: reopen."),
        ("cancel", "complete", "A task that is cancelled cannot complete; allowed: reopen."),
    ],
)
def test_invalid_transitions_name_the_allowed_ones(manager, make_task, transitions, refused, message):
    task = make_task()
    for transition in filter(None, transitions.split(",")):
        task = services.task_transition(actor=manager, task=task, transition=transition)
    before = task.status
    with pytest.raises(ValidationError) as excinfo:
        services.task_transition(actor=manager, task=task, transition=refused)
    assert errors_of(excinfo) == {"status": [message]}
    task.refresh_from_db()
    assert task.status == before


def test_the_transition_table_is_the_issues_workflow():
    assert {name: (sorted(t.sources), t.target) for name, t in rules.TRANSITIONS.items()} == {
        "start": (["todo"], "in_progress"),
        "submit_for_review": (["in_progress"], "in_review"),
        "complete": (["in_review"], "done"),
        "cancel": (["in_progress", "in_review", "todo"], "cancelled"),
        "reopen": (["cancelled", "done"], "in_progress"),
    }


def test_a_task_cannot_be_done_while_a_subtask_is_open(manager, make_task):
    parent = make_task()
    child = make_task(parent=parent)
    for transition in ("start", "submit_for_review"):
        parent = services.task_transition(actor=manager, task=parent, transition=transition)
    with pytest.raises(ValidationError) as excinfo:
        services.task_transition(actor=manager, task=parent, transition="complete")
    assert errors_of(excinfo) == {"status": [f"This task cannot be done while subtasks are open: [{child.pk}]."]}
    services.task_transition(actor=manager, task=child, transition="cancel")
    assert services.task_transition(actor=manager, task=parent, transition="complete").status == "done"


def test_a_task_cannot_start_while_a_task_it_depends_on_is_not_done(manager, make_task):
    first, second = make_task(), make_task()
    services.task_dependency_add(actor=manager, task=second, depends_on=first)
    with pytest.raises(ValidationError) as excinfo:
        services.task_transition(actor=manager, task=second, transition="start")
    assert errors_of(excinfo) == {
        "status": [f"This task cannot start before the tasks it depends on are done: [{first.pk}]."]
    }
    for transition in ("start", "submit_for_review", "complete"):
        services.task_transition(actor=manager, task=first, transition=transition)
    assert services.task_transition(actor=manager, task=second, transition="start").status == "in_progress"


def test_a_done_task_keeps_progress_100(manager, make_task):
    task = make_task()
    for transition in ("start", "submit_for_review", "complete"):
        task = services.task_transition(actor=manager, task=task, transition=transition)
    with pytest.raises(ValidationError):
        services.task_update(actor=manager, task=task, progress=50)


# --- Dependencies ----------------------------------------------------------------------------------------------------


def test_a_task_cannot_depend_on_itself_or_twice(manager, make_task):
    task, other = make_task(), make_task()
    with pytest.raises(ValidationError) as excinfo:
        services.task_dependency_add(actor=manager, task=task, depends_on=task)
    assert errors_of(excinfo) == {"depends_on": ["A task cannot depend on itself."]}
    services.task_dependency_add(actor=manager, task=task, depends_on=other)
    with pytest.raises(ValidationError) as excinfo:
        services.task_dependency_add(actor=manager, task=task, depends_on=other)
    assert errors_of(excinfo) == {"depends_on": ["The task already depends on this task."]}


def test_dependencies_stay_in_one_organization(organization, other_organization, manager, make_task):
    foreign = TaskFactory(organization=other_organization)
    with pytest.raises(ValidationError) as excinfo:
        services.task_dependency_add(actor=manager, task=make_task(), depends_on=foreign)
    assert errors_of(excinfo) == {"depends_on": ["The task depended on belongs to another organization."]}


@pytest.mark.parametrize("length", [2, 3, 50])
def test_a_dependency_closing_a_cycle_of_any_length_is_refused(organization, manager, length):
    # given: a chain t0 ← t1 ← … ← t(n-1) (each depends on the one before)
    chain = [TaskFactory(organization=organization) for _ in range(length)]
    for earlier, later in itertools.pairwise(chain):
        services.task_dependency_add(actor=manager, task=later, depends_on=earlier)
    # when: the first would depend on the last
    with pytest.raises(ValidationError) as excinfo:
        services.task_dependency_add(actor=manager, task=chain[0], depends_on=chain[-1])
    # then
    assert errors_of(excinfo) == {
        "depends_on": [f"Task {chain[-1].pk} already depends on task {chain[0].pk}: that would make a cycle."]
    }
    assert TaskDependency.objects.count() == length - 1


def test_the_cycle_check_is_one_query_however_long_the_chain(organization, manager):
    chain = [TaskFactory(organization=organization) for _ in range(30)]
    for earlier, later in itertools.pairwise(chain):
        services.task_dependency_add(actor=manager, task=later, depends_on=earlier)
    with CaptureQueriesContext(connection) as captured:
        assert selectors.dependency_reaches(task_id=chain[-1].pk, target_id=chain[0].pk) is True
    assert len(captured.captured_queries) == 1


def test_a_dependency_is_removed(manager, make_task):
    task, other = make_task(), make_task()
    services.task_dependency_add(actor=manager, task=task, depends_on=other)
    services.task_dependency_remove(actor=manager, task=task, depends_on=other)
    assert TaskDependency.objects.count() == 0
    with pytest.raises(ValidationError):
        services.task_dependency_remove(actor=manager, task=task, depends_on=other)


# --- Comments --------------------------------------------------------------------------------------------------------


def test_only_the_author_edits_a_comment_and_it_is_marked_edited(manager, worker, make_task):
    task = make_task()
    comment = services.comment_create(actor=worker, task=task, body="First")
    with pytest.raises(PermissionDenied):
        services.comment_update(actor=manager, comment=comment, body="Changed by someone else")
    comment = services.comment_update(actor=worker, comment=comment, body="First, edited")
    assert (comment.body, comment.is_edited, comment.author) == ("First, edited", True, worker)
    with pytest.raises(ValidationError):
        services.comment_update(actor=worker, comment=comment, body="  ")


def test_a_comment_is_soft_deleted_by_its_author_or_a_holder_of_delete_comment(
    organization, manager, worker, make_task
):
    task = make_task()
    first = services.comment_create(actor=worker, task=task, body="First")
    second = services.comment_create(actor=manager, task=task, body="Second")
    other = MembershipFactory(organization=organization, role="member").user
    with pytest.raises(PermissionDenied):
        services.comment_delete(actor=other, comment=first)
    services.comment_delete(actor=worker, comment=first)
    services.comment_delete(actor=manager, comment=second)  # an org admin holds tasks.delete_comment
    task.refresh_from_db()
    assert (Comment.objects.count(), Comment.all_objects.count(), task.comment_count) == (0, 2, 0)


# --- Time entries ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "message"), [("0", "greater than or equal to 0.01"), ("24.5", "less than or equal to 24")]
)
def test_hours_are_more_than_zero_and_at_most_24(worker, make_task, hours, message):
    with pytest.raises(ValidationError) as excinfo:
        services.time_entry_create(actor=worker, task=make_task(), hours=Decimal(hours))
    assert message in errors_of(excinfo)["hours"][0]


def test_a_member_logs_at_most_24_hours_a_day(worker, make_task):
    day = datetime.date(2026, 3, 2)
    task, other = make_task(), make_task()
    services.time_entry_create(actor=worker, task=task, hours=Decimal(20), date=day)
    with pytest.raises(ValidationError) as excinfo:
        services.time_entry_create(actor=worker, task=other, hours=Decimal(5), date=day)
    assert errors_of(excinfo) == {"hours": ["At most 24 hours a day: 20.00 hours are already logged on 2026-03-02."]}
    services.time_entry_create(actor=worker, task=other, hours=Decimal(4), date=day)
    services.time_entry_create(actor=worker, task=other, hours=Decimal(5), date=day + datetime.timedelta(days=1))
    assert TimeEntry.objects.count() == 3


def test_actual_hours_are_the_sum_of_the_entries(manager, worker, make_task):
    task = make_task()
    first = services.time_entry_create(actor=worker, task=task, hours=Decimal("1.5"))
    services.time_entry_create(actor=manager, task=task, hours=Decimal(2))
    task.refresh_from_db()
    assert task.actual_hours == Decimal("3.5")
    services.time_entry_update(actor=worker, entry=first, hours=Decimal(3), note="more")
    task.refresh_from_db()
    assert task.actual_hours == Decimal(5)
    services.time_entry_delete(actor=worker, entry=first)
    task.refresh_from_db()
    assert task.actual_hours == Decimal(2)


def test_only_project_members_log_time_and_only_their_own(organization, manager, worker, make_task):
    task = make_task()
    stranger = MembershipFactory(organization=organization, role="member").user
    with pytest.raises(ValidationError) as excinfo:
        services.time_entry_create(actor=stranger, task=task, hours=Decimal(1))
    assert errors_of(excinfo) == {"member": ["Only members of the task's project log time on it."]}
    entry = services.time_entry_create(actor=worker, task=task, hours=Decimal(1))
    with pytest.raises(PermissionDenied):
        services.time_entry_update(actor=stranger, entry=entry, hours=Decimal(2))
    with pytest.raises(PermissionDenied):
        services.time_entry_delete(actor=stranger, entry=entry)
    with pytest.raises(ValidationError):
        services.time_entry_create(actor=None, task=task, hours=Decimal(1))


# --- History ---------------------------------------------------------------------------------------------------------


def test_transitions_comments_and_time_entries_show_in_the_tasks_history_with_the_actor(manager, worker, make_task):
    task = make_task()
    services.task_transition(actor=worker, task=task, transition="start")
    comment = services.comment_create(actor=worker, task=task, body="Working on it")
    entry = services.time_entry_create(actor=worker, task=task, hours=Decimal(2), date=datetime.date(2026, 1, 5))
    services.task_transition(actor=manager, task=task, transition="cancel")
    versions = list(
        task.history.order_by("history_id").values_list("history_user_id", "history_change_reason", "status")
    )
    assert versions == [
        (manager.pk, "", "todo"),
        (worker.pk, "start", "in_progress"),
        (worker.pk, f"comment {comment.pk} added", "in_progress"),
        (worker.pk, f"time entry {entry.pk} logged: 2.00 h on 2026-01-05", "in_progress"),
        (manager.pk, "cancel", "cancelled"),
    ]


# --- Rollups ---------------------------------------------------------------------------------------------------------


def test_the_project_summary_is_one_query(organization, manager, project, make_task):
    today = datetime.date(2026, 6, 1)
    late = make_task(due_date=datetime.date(2026, 5, 1), estimated_hours=Decimal(3))
    make_task(estimated_hours=Decimal(2))
    done = make_task(due_date=datetime.date(2026, 5, 1))
    for transition in ("start", "submit_for_review", "complete"):
        services.task_transition(actor=manager, task=done, transition=transition)
    services.time_entry_create(actor=manager, task=late, hours=Decimal(4))
    with CaptureQueriesContext(connection) as captured:
        summary = selectors.project_summary(project=project, tasks=Task.objects.all(), as_of=today)
    assert len(captured.captured_queries) == 1
    assert summary == {
        "project": project.pk,
        "total": 3,
        "by_status": {"todo": 2, "in_progress": 0, "in_review": 0, "done": 1, "cancelled": 0},
        "overdue": 1,
        "estimated_hours": Decimal(5),
        "actual_hours": Decimal(4),
    }


def test_subtree_progress_is_one_query_over_every_level(manager, make_task):
    root = make_task(progress=10)
    child = make_task(parent=root, progress=50)
    make_task(parent=child, progress=90)
    cancelled = make_task(parent=root, progress=0)
    services.task_transition(actor=manager, task=cancelled, transition="cancel")
    with CaptureQueriesContext(connection) as captured:
        progress = selectors.task_subtree_progress(task=root)
    assert (progress, len(captured.captured_queries)) == (50, 1)
    assert selectors.task_subtree_progress(task=cancelled) == 0


def test_the_board_caps_columns_and_counts_every_task(manager, project, make_task):
    urgent = make_task(priority=4)
    for _ in range(4):
        make_task()
    started = services.task_transition(actor=manager, task=make_task(), transition="start")
    with CaptureQueriesContext(connection) as captured:
        board = selectors.project_board(project=project, tasks=Task.objects.all(), limit=3)
    assert len(captured.captured_queries) == 1
    summary = [(column["status"], column["count"], len(column["tasks"])) for column in board]
    assert summary == [("todo", 5, 3), ("in_progress", 1, 1), ("in_review", 0, 0), ("done", 0, 0), ("cancelled", 0, 0)]
    assert board[0]["tasks"][0] == urgent
    assert board[1]["tasks"] == [started]


def test_status_choices_cover_the_board():
    assert [status.value for status in TaskStatus] == ["todo", "in_progress", "in_review", "done", "cancelled"]


def test_unknown_fields_are_a_programming_error(organization, manager):
    with pytest.raises(TypeError):
        services.task_create(actor=manager, organization=organization, title="T", status="done")


def test_a_task_in_another_organization_cannot_be_a_parent(other_organization):
    org = OrganizationFactory()
    parent = TaskFactory(organization=other_organization)
    task = Task(organization=org, title="x", parent=parent)
    with pytest.raises(ValidationError):
        task.full_clean()
