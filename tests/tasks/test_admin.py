"""The back office for projects and tasks: writes and bulk actions through the services, scoped like the API."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tasks import services
from tasks.models import Comment, Project, ProjectMember, Task, TimeEntry
from tests.organizations.factories import MembershipFactory
from tests.tasks.factories import ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def staff(manager):
    manager.is_staff = True
    manager.save()
    return signed_in(manager)


@pytest.mark.parametrize("model", ["project", "task", "comment", "timeentry"])
def test_the_changelists_open(staff, project, make_task, manager, model):
    task = make_task(title="Visible")
    services.comment_create(actor=manager, task=task, body="x")
    services.time_entry_create(actor=manager, task=task, hours=Decimal(1))
    response = staff.get(reverse(f"admin:tasks_{model}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_the_project_page_shows_members_and_rollups(staff, project, make_task, worker):
    make_task(estimated_hours=Decimal(3))
    response = staff.get(reverse("admin:tasks_project_change", args=[project.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Tasks: 1" in content
    assert "Estimated hours: 3" in content
    assert worker.email in content or str(worker.pk) in content


def test_creating_a_project_in_the_admin_goes_through_the_service(staff, organization, manager):
    response = staff.post(
        reverse("admin:tasks_project_add"),
        {
            "organization": organization.pk,
            "code": "ops",
            "name": "Operations",
            "description": "",
            "status": "planning",
            "department": "",
            "manager": manager.pk,
            "start_date": "",
            "end_date": "",
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content
    project = Project.objects.get(code="OPS")
    assert list(ProjectMember.objects.filter(project=project).values_list("user", "role")) == [(manager.pk, "lead")]
    assert project.history.get().history_user_id == manager.pk


def test_project_members_are_added_in_the_inline(staff, organization, project, manager):
    newcomer = MembershipFactory(organization=organization).user
    lead = ProjectMember.objects.get(project=project)
    response = staff.post(
        reverse("admin:tasks_project_change", args=[project.pk]),
        {
            "code": "WEB",
            "name": "Website",
            "description": "",
            "status": "active",
            "department": "",
            "manager": manager.pk,
            "start_date": "",
            "end_date": "",
            "members-TOTAL_FORMS": "2",
            "members-INITIAL_FORMS": "1",
            "members-0-id": lead.pk,
            "members-0-project": project.pk,
            "members-0-user": manager.pk,
            "members-0-role": "lead",
            "members-1-id": "",
            "members-1-project": project.pk,
            "members-1-user": newcomer.pk,
            "members-1-role": "observer",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content
    assert ProjectMember.objects.get(project=project, user=newcomer).role == "observer"
    assert Project.objects.get().status == "active"


def test_bulk_complete_goes_through_the_rules_and_records_history(staff, manager, make_task):
    ready = make_task(title="Ready")
    for transition in ("start", "submit_for_review"):
        services.task_transition(actor=manager, task=ready, transition=transition)
    fresh = make_task(title="Fresh")
    changelist = reverse("admin:tasks_task_changelist")
    # all or nothing: the fresh task cannot be completed, so neither is
    response = staff.post(changelist, {"action": "complete_tasks", "_selected_action": [ready.pk, fresh.pk]})
    assert response.status_code == 302
    assert "cannot complete" in " ".join(messages_of(response))
    assert Task.objects.get(pk=ready.pk).status == "in_review"
    response = staff.post(changelist, {"action": "complete_tasks", "_selected_action": [ready.pk]})
    assert Task.objects.get(pk=ready.pk).status == "done"
    latest = Task.objects.get(pk=ready.pk).history.order_by("-history_id").first()
    assert (latest.history_user_id, latest.history_change_reason) == (manager.pk, "complete")


def test_bulk_reassign(staff, manager, worker, make_task):
    tasks = [make_task(), make_task()]
    changelist = reverse("admin:tasks_task_changelist")
    response = staff.post(
        changelist,
        {"action": "reassign_tasks", "assignee_email": worker.email, "_selected_action": [task.pk for task in tasks]},
    )
    assert response.status_code == 302
    assert set(Task.objects.values_list("assignee", flat=True)) == {worker.pk}
    response = staff.post(
        changelist,
        {"action": "reassign_tasks", "assignee_email": "nobody@example.com", "_selected_action": [tasks[0].pk]},
    )
    assert "Nobody has the email address" in " ".join(messages_of(response))
    staff.post(changelist, {"action": "reassign_tasks", "assignee_email": "", "_selected_action": [tasks[0].pk]})
    assert Task.objects.get(pk=tasks[0].pk).assignee_id is None


def test_task_filters_and_pages(staff, manager, make_task):
    parent = make_task(title="Parent", due_date="2020-01-01")
    make_task(title="Child", parent=parent)
    changelist = reverse("admin:tasks_task_changelist")
    assert staff.get(f"{changelist}?overdue=yes").context["cl"].result_count == 1
    assert staff.get(f"{changelist}?overdue=no").context["cl"].result_count == 1
    response = staff.get(reverse("admin:tasks_task_change", args=[parent.pk]))
    assert response.status_code == 200
    assert "Child" in response.content.decode()
    history = staff.get(reverse("admin:tasks_task_history", args=[parent.pk]))
    assert history.status_code == 200


def test_editing_and_deleting_a_task_in_the_admin(staff, organization, manager, project, make_task):
    task = make_task(title="Old")
    response = staff.post(
        reverse("admin:tasks_task_change", args=[task.pk]),
        {
            "project": project.pk,
            "parent": "",
            "title": "New",
            "description": "",
            "priority": "3",
            "assignee": "",
            "start_date": "",
            "due_date": "",
            "estimated_hours": "",
            "progress": "10",
            "labels": "",
            "subtasks-TOTAL_FORMS": "0",
            "subtasks-INITIAL_FORMS": "0",
            "comments-TOTAL_FORMS": "0",
            "comments-INITIAL_FORMS": "0",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content
    assert (Task.objects.get().title, Task.objects.get().priority) == ("New", 3)
    response = staff.post(reverse("admin:tasks_task_delete", args=[task.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert Task.all_objects.get().deleted_at is not None


def test_comments_and_time_entries_are_deleted_through_the_services(staff, manager, make_task):
    task = make_task()
    comment = services.comment_create(actor=manager, task=task, body="x")
    entry = services.time_entry_create(actor=manager, task=task, hours=Decimal(2))
    staff.post(reverse("admin:tasks_comment_delete", args=[comment.pk]), {"post": "yes"})
    staff.post(reverse("admin:tasks_timeentry_delete", args=[entry.pk]), {"post": "yes"})
    task.refresh_from_db()
    assert (Comment.all_objects.get().deleted_at is not None, TimeEntry.objects.count(), task.actual_hours) == (
        True,
        0,
        Decimal(0),
    )


def test_staff_of_another_organization_see_nothing(other_organization, project, make_task):
    make_task()
    outsider = MembershipFactory(organization=other_organization, role="org_admin").user
    outsider.is_staff = True
    outsider.save()
    client = signed_in(outsider)
    ProjectFactory(organization=other_organization, code="THEIRS")
    TaskFactory(organization=other_organization)
    assert client.get(reverse("admin:tasks_task_changelist")).context["cl"].result_count == 1
    assert client.get(reverse("admin:tasks_project_changelist")).context["cl"].result_count == 1
    assert client.get(reverse("admin:tasks_project_change", args=[project.pk])).status_code in (302, 404)
