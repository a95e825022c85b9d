"""The rules of the tasks context in one place: the status transitions, and what a grant on a project reaches.

Transitions: todo → in progress → in review → done; any open state → cancelled; done or cancelled → reopened to in
progress. Any other move is refused with the moves that are allowed from the current status.

Project grants: a grant of ``tasks.view_project`` on a project lets its holder see the project's tasks, their comments,
dependencies and time entries; a grant of ``tasks.change_project`` lets them work on those tasks (edit and move them,
comment, log time, add and remove dependencies). Grants count only while the holder is an active member of the
organization (the engine checks this). An assignee may move their own task through the transitions without
``tasks.change_task``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import models

from rbac import engine
from tasks.models import TaskStatus

if TYPE_CHECKING:
    from organizations.models import Organization
    from tasks.models import Task

_Q = TypeVar("_Q", bound=models.QuerySet[Any])


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str


TRANSITIONS: dict[str, Transition] = {
    transition.name: transition
    for transition in (
        Transition("start", frozenset({TaskStatus.TODO}), TaskStatus.IN_PROGRESS),
        Transition("submit_for_review", frozenset({TaskStatus.IN_PROGRESS}), TaskStatus.IN_REVIEW),
        Transition("complete", frozenset({TaskStatus.IN_REVIEW}), TaskStatus.DONE),
        Transition(
            "cancel", frozenset({TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.IN_REVIEW}), TaskStatus.CANCELLED
        ),
        Transition("reopen", frozenset({TaskStatus.DONE, TaskStatus.CANCELLED}), TaskStatus.IN_PROGRESS),
    )
}


def allowed_transitions(status: str) -> list[str]:
    """The transitions that may be applied to a task in ``status``, in the table's order."""
    return [name for name, transition in TRANSITIONS.items() if status in transition.sources]


def transition_for(name: str, status: str) -> Transition:
    """The transition ``name`` from ``status``; a move the table does not allow is a ``ValidationError`` naming the
    allowed ones."""
    transition = TRANSITIONS[name]
    if status not in transition.sources:
        allowed = allowed_transitions(status)
        label = TaskStatus(status).label
        raise ValidationError(
            {
                "status": f"A task that is {label.lower()} cannot {name.replace('_', ' ')}; "
                f"allowed: {', '.join(allowed) if allowed else 'none'}."
            },
            code="invalid_transition",
        )
    return transition


# --- What a grant on a project reaches --------------------------------------------------------------------------------

PROJECT_GRANT_REACH: dict[str, frozenset[str]] = {
    "tasks.view_project": frozenset(
        {"tasks.view_task", "tasks.view_comment", "tasks.view_timeentry", "tasks.view_taskdependency"}
    ),
    "tasks.change_project": frozenset(
        {
            "tasks.change_task",
            "tasks.add_comment",
            "tasks.add_timeentry",
            "tasks.add_taskdependency",
            "tasks.delete_taskdependency",
        }
    ),
}
GRANTED_THROUGH_PROJECT: dict[str, str] = {
    permission: project_permission
    for project_permission, permissions in PROJECT_GRANT_REACH.items()
    for permission in permissions
}
# How each model reaches its project (``None``: the model is the project itself or not reached by grants).
PROJECT_LOOKUPS = {
    "task": "project",
    "comment": "task__project",
    "timeentry": "task__project",
    "taskdependency": "task__project",
}


def project_id_of(obj: models.Model) -> int | None:
    if obj._meta.model_name == "task":
        return getattr(obj, "project_id", None)
    task = getattr(obj, "task", None)
    return getattr(task, "project_id", None)


def may(user: Any, permission: str, obj: models.Model) -> bool:
    """The engine's answer for ``obj``, widened by the grants on the object's project."""
    if engine.has_perm(user, permission, obj):
        return True
    project_permission = GRANTED_THROUGH_PROJECT.get(permission)
    project_id = project_id_of(obj)
    organization_id = engine.organization_id_of(obj)
    if project_permission is None or project_id is None or organization_id is None:
        return False
    return project_id in engine.effective_permissions(user, organization_id).granted_objects(project_permission)


def may_transition(user: Any, task: Task) -> bool:
    """Whoever may change the task, and its assignee."""
    is_assignee = task.assignee_id is not None and task.assignee_id == getattr(user, "pk", None)
    return is_assignee or may(user, "tasks.change_task", task)


def visible_through_project(queryset: _Q, user: Any, organization: Organization | int, action: str) -> _Q:
    """The engine's ``visible`` (the role scope: organization-wide or the projects' departments), UNIONed with the rows
    of the projects granted to the user: one SQL statement, no id list built in Python."""
    from tasks.models import ProjectGroupObjectPermission, ProjectUserObjectPermission

    model = queryset.model
    visible = engine.visible(queryset, user, organization, action)
    permission = engine.permission_name(model, action)
    project_permission = GRANTED_THROUGH_PROJECT.get(permission)
    lookup = PROJECT_LOOKUPS.get(model._meta.model_name or "")
    if project_permission is None or lookup is None or isinstance(user, AnonymousUser) or user.is_superuser:
        return visible
    effective = engine.effective_permissions(user, organization)
    if effective.scope(permission).is_organization_wide or not effective.granted_objects(project_permission):
        return visible
    permission_id = engine.permission_pk(project_permission)
    granted = ProjectUserObjectPermission.objects.filter(permission_id=permission_id, user_id=user.pk).values(
        "content_object_id"
    )
    if project_permission in effective.group_granted:
        groups = engine.user_groups_table().objects.filter(user_id=user.pk).values("group_id")
        granted = granted.union(
            ProjectGroupObjectPermission.objects.filter(permission_id=permission_id, group_id__in=groups).values(
                "content_object_id"
            )
        )
    through_projects = (
        model._base_manager.filter(organization=organization, **{f"{lookup}_id__in": granted}).order_by().values("pk")
    )
    scoped = queryset.filter(organization=organization)
    if visible.query.is_empty():
        return scoped.filter(pk__in=through_projects)
    return scoped.filter(pk__in=visible.order_by().values("pk").union(through_projects))
