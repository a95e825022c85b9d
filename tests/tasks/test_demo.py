"""The demo projects and tasks: a few hundred tasks in every status, with their parts, and no change on a second run."""

import pytest

from organizations.demo import seed_demo
from tasks.models import Comment, Project, ProjectMember, Task, TaskDependency, TaskStatus, TimeEntry

pytestmark = pytest.mark.django_db


def state() -> dict[str, int]:
    return {
        "projects": Project.all_objects.count(),
        "members": ProjectMember.objects.count(),
        "tasks": Task.all_objects.count(),
        "subtasks": Task.objects.filter(parent__isnull=False).count(),
        "dependencies": TaskDependency.objects.count(),
        "comments": Comment.objects.count(),
        "time entries": TimeEntry.objects.count(),
    }


def test_the_demo_has_a_few_hundred_tasks_in_every_status_and_seeding_again_changes_nothing():
    report = seed_demo()
    first = state()
    assert report.created["projects"] == 7
    assert report.created["tasks"] == first["tasks"] >= 300
    assert all(count > 0 for count in first.values())
    assert set(Task.objects.values_list("status", flat=True)) == {status.value for status in TaskStatus}
    # the rules held: done tasks are complete, and their subtasks are closed
    assert not Task.objects.filter(status="done").exclude(progress=100).exists()
    assert not Task.objects.filter(parent__status="done", status__in=["todo", "in_progress", "in_review"]).exists()
    again = seed_demo()
    assert (again.created["projects"], again.created["tasks"]) == (0, 0)
    assert state() == first
