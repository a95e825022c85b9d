"""The rules of the tasks context in one place: the status transitions, and who may make them.

Transitions: todo → in progress → in review → done; any open state → cancelled; done or cancelled → reopened to in
progress. Any other move is refused with the moves that are allowed from the current status.

Whoever holds ``tasks.change_task`` on a task may move it (a grant of ``tasks.change_project`` on its project counts,
see the models' ``grants_through``), and so may its assignee without that permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from rbac import engine
from tasks.models import TaskStatus

if TYPE_CHECKING:
    from tasks.models import Task


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


def may_transition(user: Any, task: Task) -> bool:
    """Whoever may change the task, and its assignee."""
    is_assignee = task.assignee_id is not None and task.assignee_id == getattr(user, "pk", None)
    return is_assignee or engine.has_perm(user, "tasks.change_task", task)
