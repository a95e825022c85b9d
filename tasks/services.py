"""State changes of projects, tasks, dependencies, comments and time entries.

Every function takes the acting user, validates with ``full_clean()`` before saving and runs in a transaction.
Business guards raise ``ValidationError`` (bad input, 400), ``PermissionDenied`` (403) or ``ConflictError`` (409).
A task's comments and time entries also record a version of the task (its comment count, its actual hours) by the
same actor, so that the task's history tells everything that happened to it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Actor, User
from erp.exceptions import ConflictError
from erp.services import assign_fields
from organizations.models import Membership, Organization
from rbac import engine
from tasks import rules, selectors
from tasks.models import (
    OPEN_STATUSES,
    Comment,
    Project,
    ProjectMember,
    ProjectRole,
    Task,
    TaskDependency,
    TaskStatus,
    TimeEntry,
)

PROJECT_FIELDS = {"code", "name", "description", "status", "department", "start_date", "end_date", "manager"}
TASK_FIELDS = {
    "project",
    "parent",
    "title",
    "description",
    "priority",
    "assignee",
    "start_date",
    "due_date",
    "estimated_hours",
    "progress",
    "labels",
}
TIME_ENTRY_FIELDS = {"date", "hours", "note"}


def _is_platform(actor: Actor) -> bool:
    """Commands and the demo act without a user; they are not held to per-user permissions."""
    return actor is None or (isinstance(actor, User) and actor.is_superuser)


def _save_with_reason(instance: Any, actor: Actor, reason: str, update_fields: Iterable[str] | None = None) -> None:
    instance.stamp(actor)
    instance._change_reason = reason
    try:
        if update_fields is None:
            instance.save()
        else:
            instance.save(update_fields=[*update_fields, "updated_at", "updated_by"])
    finally:
        del instance._change_reason


# --- Projects --------------------------------------------------------------------------------------------------------


def _ensure_member(actor: Actor, project: Project, user_id: int | None, role: str) -> None:
    if user_id is None or ProjectMember.objects.filter(project=project, user_id=user_id).exists():
        return
    member = ProjectMember(organization_id=project.organization_id, project=project, user_id=user_id, role=role)
    member.stamp(actor)
    member.full_clean()
    member.save()


@transaction.atomic
def project_create(*, actor: Actor, organization: Organization, code: str, name: str, **fields: Any) -> Project:
    """Create a project; its manager becomes a member of it (as lead)."""
    return _save_project(actor, Project(organization=organization, code=code, name=name), fields)


@transaction.atomic
def project_update(*, actor: Actor, project: Project, **fields: Any) -> Project:
    """Edit a project; a new manager becomes a member of it (as lead)."""
    return _save_project(actor, Project.objects.select_for_update().get(pk=project.pk), fields)


def _save_project(actor: Actor, project: Project, fields: dict[str, Any]) -> Project:
    """Validate and save the project with ``fields``; its manager becomes a member of it (as lead)."""
    assign_fields(project, fields, PROJECT_FIELDS)
    project.stamp(actor)
    project.full_clean()
    project.save()
    _ensure_member(actor, project, project.manager_id, ProjectRole.LEAD)
    return project


@transaction.atomic
def project_delete(*, actor: Actor, project: Project) -> None:
    """Soft-delete a project. One that still has open tasks cannot go: finish, cancel or move them first."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    if Task.objects.filter(project=project, status__in=OPEN_STATUSES).exists():
        raise ConflictError(
            "This project still has open tasks; finish, cancel or move them first.", code="project_busy"
        )
    project.mark_deleted(actor=actor)


@transaction.atomic
def project_member_set(
    *, actor: Actor, project: Project, user: User, role: str = ProjectRole.CONTRIBUTOR
) -> ProjectMember:
    """Add an active member of the organization to the project, or change their project role."""
    member = ProjectMember.objects.select_for_update().filter(project=project, user=user).first()
    if member is None:
        member = ProjectMember(organization_id=project.organization_id, project=project, user=user)
    member.role = role
    member.stamp(actor)
    member.full_clean()
    member.save()
    return member


@transaction.atomic
def project_member_remove(*, actor: Actor, project: Project, user: User) -> None:
    """Take a person off a project. The manager stays, and so does anyone still assigned open tasks of it."""
    member = ProjectMember.objects.select_for_update().filter(project=project, user=user).first()
    if member is None:
        raise ValidationError({"user": "This person is not a member of the project."}, code="not_member")
    if project.manager_id == user.pk:
        raise ConflictError("The project's manager stays a member; choose another manager first.", code="manager")
    if Task.objects.filter(project=project, assignee=user, status__in=OPEN_STATUSES).exists():
        raise ConflictError(
            "This person is still assigned open tasks of the project; reassign them first.", code="has_open_tasks"
        )
    member.stamp(actor)  # the deletion's version names the actor
    member.delete()


# --- Tasks -----------------------------------------------------------------------------------------------------------


def _requireassign_fields(actor: Actor, task: Task) -> None:
    if not _is_platform(actor) and not engine.has_perm(actor, "tasks.assign_task", task):
        raise PermissionDenied("You do not have the permission tasks.assign_task, needed to choose who does a task.")


def _normalise(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("labels"), list | tuple):
        return {**fields, "labels": Task.join_labels(list(fields["labels"]))}
    return fields


@transaction.atomic
def task_create(*, actor: Actor, organization: Organization, title: str, **fields: Any) -> Task:
    """Create a task (to do), reported by the actor unless a reporter is given. Choosing the assignee needs
    ``tasks.assign_task``."""
    reporter = fields.pop("reporter", actor if isinstance(actor, User) else None)
    task = Task(organization=organization, title=title, reporter=reporter)
    assign_fields(task, _normalise(fields), TASK_FIELDS)
    if task.assignee_id is not None:
        _requireassign_fields(actor, task)
    task.stamp(actor)
    task.full_clean()
    task.save()
    return task


@transaction.atomic
def task_update(*, actor: Actor, task: Task, **fields: Any) -> Task:
    """Edit a task. Its status changes only through ``task_transition``; a new assignee needs ``tasks.assign_task``.

    A done task keeps progress 100.
    """
    task = Task.objects.select_for_update().get(pk=task.pk)
    previous_assignee, previous_project = task.assignee_id, task.project_id
    assign_fields(task, _normalise(fields), TASK_FIELDS)
    if task.assignee_id != previous_assignee:
        _requireassign_fields(actor, task)
    if task.status == TaskStatus.DONE and task.progress != 100:
        raise ValidationError({"progress": "A done task is 100% complete; reopen it first."}, code="done")
    if task.project_id != previous_project and task.subtasks.exists():
        raise ValidationError({"project": "Move the subtasks together with their parent task."}, code="subtasks")
    task.stamp(actor)
    task.full_clean()
    task.save()
    return task


@transaction.atomic
def task_transition(*, actor: Actor, task: Task, transition: str) -> Task:
    """Move a task through one transition of ``tasks.rules.TRANSITIONS``.

    A task cannot start while a task it depends on is not done, nor be done while one of its subtasks is open. Done
    sets ``completed_at`` and progress 100; reopening clears both.
    """
    task = Task.objects.select_for_update().get(pk=task.pk)
    move = rules.transition_for(transition, task.status)
    if transition == "start":
        blocking = list(
            TaskDependency.objects.filter(task=task, depends_on__deleted_at__isnull=True)
            .exclude(depends_on__status=TaskStatus.DONE)
            .order_by("depends_on_id")
            .values_list("depends_on_id", flat=True)
        )
        if blocking:
            raise ValidationError(
                {"status": f"This task cannot start before the tasks it depends on are done: {blocking}."},
                code="blocked",
            )
    if move.target == TaskStatus.DONE:
        open_subtasks = list(task.subtasks.filter(status__in=OPEN_STATUSES).order_by("pk").values_list("pk", flat=True))
        if open_subtasks:
            raise ValidationError(
                {"status": f"This task cannot be done while subtasks are open: {open_subtasks}."}, code="open_subtasks"
            )
        task.completed_at = timezone.now()
        task.progress = 100
    elif transition == "reopen":
        task.completed_at = None
        task.progress = 0
    task.status = move.target
    _save_with_reason(task, actor, transition)
    return task


@transaction.atomic
def task_delete(*, actor: Actor, task: Task) -> None:
    """Soft-delete a task. One with live subtasks cannot go: they would lose their parent."""
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.subtasks.exists():
        raise ConflictError("This task has subtasks; delete or move them first.", code="task_has_subtasks")
    task.mark_deleted(actor=actor)


# --- Dependencies ----------------------------------------------------------------------------------------------------


@transaction.atomic
def task_dependency_add(*, actor: Actor, task: Task, depends_on: Task) -> TaskDependency:
    """Make ``task`` depend on ``depends_on`` (same organization). A dependency on itself or one that closes a cycle,
    however long, is refused. Additions are serialised per organization so that two of them cannot close a cycle."""
    Organization.objects.select_for_update().filter(pk=task.organization_id).first()
    if TaskDependency.objects.filter(task=task, depends_on=depends_on).exists():
        raise ValidationError({"depends_on": "The task already depends on this task."}, code="duplicate")
    dependency = TaskDependency(organization_id=task.organization_id, task=task, depends_on=depends_on)
    dependency.full_clean(validate_constraints=False)
    if selectors.dependency_reaches(task_id=depends_on.pk, target_id=task.pk):
        raise ValidationError(
            {"depends_on": f"Task {depends_on.pk} already depends on task {task.pk}: that would make a cycle."},
            code="cycle",
        )
    dependency.stamp(actor)
    dependency.save()
    return dependency


@transaction.atomic
def task_dependency_remove(*, actor: Actor, task: Task, depends_on: Task) -> None:
    dependency = TaskDependency.objects.filter(task=task, depends_on=depends_on).first()
    if dependency is None:
        raise ValidationError({"depends_on": "The task does not depend on this task."}, code="not_found")
    dependency.stamp(actor)
    dependency.delete()


# --- Comments --------------------------------------------------------------------------------------------------------


def _count_comments(actor: Actor, task: Task, reason: str) -> None:
    task = Task.all_objects.select_for_update().get(pk=task.pk)
    task.comment_count = Comment.objects.filter(task=task).count()
    _save_with_reason(task, actor, reason, update_fields=["comment_count"])


@transaction.atomic
def comment_create(*, actor: Actor, task: Task, body: str, author: User | None = None) -> Comment:
    """Comment on a task as the actor."""
    comment = Comment(organization_id=task.organization_id, task=task, body=body, author=author or _user_or_none(actor))
    comment.stamp(actor)
    comment.full_clean()
    comment.save()
    _count_comments(actor, task, f"comment {comment.pk} added")
    return comment


@transaction.atomic
def comment_update(*, actor: Actor, comment: Comment, body: str) -> Comment:
    """Edit a comment: only its author may, and the comment is then marked as edited."""
    comment = Comment.objects.select_for_update().get(pk=comment.pk)
    if comment.author_id is None or comment.author_id != getattr(actor, "pk", None):
        raise PermissionDenied("Only the author of a comment may edit it.")
    comment.body = body
    comment.is_edited = True
    comment.stamp(actor)
    comment.full_clean()
    comment.save()
    return comment


@transaction.atomic
def comment_delete(*, actor: Actor, comment: Comment) -> None:
    """Soft-delete a comment: its author, or whoever holds ``tasks.delete_comment`` on it."""
    comment = Comment.objects.select_for_update().get(pk=comment.pk)
    is_author = comment.author_id is not None and comment.author_id == getattr(actor, "pk", None)
    if not is_author and not _is_platform(actor) and not engine.has_perm(actor, "tasks.delete_comment", comment):
        raise PermissionDenied("Only the author of a comment or a holder of tasks.delete_comment may delete it.")
    comment.mark_deleted(actor=actor)
    _count_comments(actor, comment.task, f"comment {comment.pk} deleted")


# --- Time entries ----------------------------------------------------------------------------------------------------


def _user_or_none(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _sum_hours(actor: Actor, task: Task, reason: str) -> None:
    task = Task.all_objects.select_for_update().get(pk=task.pk)
    task.actual_hours = TimeEntry.objects.filter(task=task).aggregate(total=Sum("hours"))["total"] or Decimal(0)
    _save_with_reason(task, actor, reason, update_fields=["actual_hours"])


def _lock_member_day(organization_id: int, member_id: int) -> None:
    """Serialise a member's entries so that two at once cannot pass the 24-hour check together."""
    Membership.objects.select_for_update().filter(organization_id=organization_id, user_id=member_id).first()


@transaction.atomic
def time_entry_create(
    *,
    actor: Actor,
    task: Task,
    hours: Decimal,
    date: datetime.date | None = None,
    note: str = "",
    member: User | None = None,
) -> TimeEntry:
    """Log hours on a task (by default the actor's own); the task's actual hours become the sum of its entries."""
    member = member or _user_or_none(actor)
    if member is None:
        raise ValidationError({"member": "Say who worked these hours."}, code="required")
    _lock_member_day(task.organization_id, member.pk)
    entry = TimeEntry(
        organization_id=task.organization_id,
        task=task,
        member=member,
        hours=hours,
        date=date or timezone.localdate(),
        note=note,
    )
    entry.stamp(actor)
    entry.full_clean()
    entry.save()
    _sum_hours(actor, task, f"time entry {entry.pk} logged: {entry.hours:.2f} h on {entry.date}")
    return entry


def _require_own_entry(actor: Actor, entry: TimeEntry, permission: str) -> None:
    if (
        entry.member_id != getattr(actor, "pk", None)
        and not _is_platform(actor)
        and not engine.has_perm(actor, permission, entry)
    ):
        raise PermissionDenied(f"Only the member who logged the time or a holder of {permission} may do this.")


@transaction.atomic
def time_entry_update(*, actor: Actor, entry: TimeEntry, **fields: Any) -> TimeEntry:
    """Correct a time entry (the member's own, or with ``tasks.change_timeentry``); the task's total follows."""
    entry = TimeEntry.objects.select_for_update().get(pk=entry.pk)
    _require_own_entry(actor, entry, "tasks.change_timeentry")
    _lock_member_day(entry.organization_id, entry.member_id)
    assign_fields(entry, fields, TIME_ENTRY_FIELDS)
    entry.stamp(actor)
    entry.full_clean()
    entry.save()
    _sum_hours(actor, entry.task, f"time entry {entry.pk} changed: {entry.hours:.2f} h on {entry.date}")
    return entry


@transaction.atomic
def time_entry_delete(*, actor: Actor, entry: TimeEntry) -> None:
    """Remove a time entry (the member's own, or with ``tasks.delete_timeentry``); the task's total follows."""
    entry = TimeEntry.objects.select_for_update().get(pk=entry.pk)
    _require_own_entry(actor, entry, "tasks.delete_timeentry")
    task, pk = entry.task, entry.pk
    entry.stamp(actor)
    entry.delete()
    _sum_hours(actor, task, f"time entry {pk} removed")


# --- Bulk (admin) ----------------------------------------------------------------------------------------------------


def tasks_complete(*, actor: Actor, tasks: Iterable[Task]) -> int:
    """Complete several tasks (each through the transition rules); all or nothing."""
    count = 0
    with transaction.atomic():
        for task in tasks:
            task_transition(actor=actor, task=task, transition="complete")
            count += 1
    return count


def tasks_reassign(*, actor: Actor, tasks: Iterable[Task], assignee: User | None) -> int:
    """Give several tasks to one person (each checked like a single change); all or nothing."""
    count = 0
    with transaction.atomic():
        for task in tasks:
            task_update(actor=actor, task=task, assignee=assignee)
            count += 1
    return count
