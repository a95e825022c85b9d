"""Projects and their tasks: subtasks, dependencies, comments and time entries.

Every row belongs to one organization and every relation between two rows stays inside it. Status changes of tasks
follow the transition table in ``tasks.rules``; state changes go through ``tasks.services``.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from audit.history import AuditHistory
from erp.db.models import (
    OrganizationOwnedModel,
    SoftDeleteOrganizationManager,
    SoftDeleteOrganizationOwnedModel,
    SoftDeleteOrganizationQuerySet,
)
from organizations.models import Department, Membership, Organization, code_validator
from rbac.grants import ReachedThrough

MAX_TASK_DEPTH = 5
MAX_HOURS_PER_DAY = Decimal(24)
LABEL_SEPARATOR = ","


def is_active_member(organization_id: int, user_id: int) -> bool:
    return Membership.objects.filter(
        organization_id=organization_id, user_id=user_id, is_active=True, user__is_active=True
    ).exists()


# --- Projects --------------------------------------------------------------------------------------------------------


class ProjectStatus(models.TextChoices):
    PLANNING = "planning", "Planning"
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Project(SoftDeleteOrganizationOwnedModel):
    """A project of an organization, optionally filed under one of its departments.

    The code is unique among the organization's live projects; the end date is not before the start date; the manager
    is an active member of the organization (and, through the services, a member of the project). A project can be
    shared with a user or a group through an object grant, which also reaches its tasks (their ``grants_through``).
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="projects")
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.PROTECT, related_name="projects")
    code = models.CharField(max_length=32, validators=[code_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=ProjectStatus.choices, default=ProjectStatus.PLANNING)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_projects"
    )

    department_scope_lookup = "department__path"

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "code"]
        permissions = [("manage_project_members", "Add and remove the members of a project and set their roles")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="project_code_unique_per_organization",
                violation_error_message="Another project of this organization already has this code.",
            ),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(end_date__isnull=True)
                | Q(end_date__gte=models.F("start_date")),
                name="project_end_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "department"], name="project_org_department_idx"),
            models.Index(fields=["organization", "status"], name="project_org_status_idx"),
            models.Index(fields=["organization", "manager"], name="project_org_manager_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self) -> None:
        super().clean()
        if self.code:
            self.code = self.code.upper()
        if self.organization_id is None:
            return
        errors: dict[str, str] = {}
        if self.department is not None:
            if self.department.organization_id != self.organization_id:
                errors["department"] = "The department belongs to another organization."
            elif self.department.is_deleted:
                errors["department"] = "The department has been deleted."
        if (
            self.code
            and Project.objects.for_organization(self.organization_id)
            .filter(code=self.code)
            .exclude(pk=self.pk)
            .exists()
        ):
            errors["code"] = "Another project of this organization already has this code."
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date cannot be before the start date."
        if self.manager_id is not None and not is_active_member(self.organization_id, self.manager_id):
            errors["manager"] = "The manager must be an active member of the organization."
        if errors:
            raise ValidationError(errors)


class ProjectRole(models.TextChoices):
    LEAD = "lead", "Lead"
    CONTRIBUTOR = "contributor", "Contributor"
    OBSERVER = "observer", "Observer"


class ProjectMember(OrganizationOwnedModel):
    """A person's place in a project, with a project role: an active member of the project's organization, once."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    role = models.CharField(max_length=16, choices=ProjectRole.choices, default=ProjectRole.CONTRIBUTOR)

    department_scope_lookup = "project__department__path"

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "project_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "project", "user"],
                name="project_member_unique_per_project",
                violation_error_message="This person is already a member of the project.",
            ),
        ]
        indexes = [models.Index(fields=["organization", "user"], name="project_member_org_user_idx")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project.code} ({self.role})"

    def clean(self) -> None:
        super().clean()
        if self.organization_id is None:
            return  # an admin inline row before the service sets it
        errors: dict[str, str] = {}
        if self.project_id is not None and self.project.organization_id != self.organization_id:
            errors["project"] = "The project belongs to another organization."
        if self.user_id is not None and not is_active_member(self.organization_id, self.user_id):
            errors["user"] = "Project members must be active members of the organization."
        if errors:
            raise ValidationError(errors)


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """A permission on one project granted to one user (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="user_grants")

    history = AuditHistory()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "project grant to a user"

    def audit_organization_id(self) -> int | None:
        return self.content_object.organization_id


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    """A permission on one project granted to a group (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="group_grants")

    history = AuditHistory()

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "project grant to a group"

    def audit_organization_id(self) -> int | None:
        return self.content_object.organization_id


# --- Tasks -----------------------------------------------------------------------------------------------------------


class TaskStatus(models.TextChoices):
    TODO = "todo", "To do"
    IN_PROGRESS = "in_progress", "In progress"
    IN_REVIEW = "in_review", "In review"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.IN_REVIEW)


class TaskPriority(models.IntegerChoices):
    """Stored as numbers so that ordering by priority is ordering by urgency."""

    LOW = 1, "low"
    MEDIUM = 2, "medium"
    HIGH = 3, "high"
    URGENT = 4, "urgent"


class TaskQuerySet(SoftDeleteOrganizationQuerySet["Task"]):  # type: ignore[override]
    def open(self) -> TaskQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def overdue(self, *, as_of: datetime.date | None = None) -> TaskQuerySet:
        """Open tasks whose due date has passed."""
        return self.open().filter(due_date__lt=as_of or timezone.localdate())

    def with_label(self, label: str) -> TaskQuerySet:
        return self.filter(labels__contains=f"{LABEL_SEPARATOR}{label.strip().lower()}{LABEL_SEPARATOR}")


class TaskManager(SoftDeleteOrganizationManager["Task"]):
    def get_queryset(self) -> TaskQuerySet:
        queryset = TaskQuerySet(self.model, using=self._db)
        return queryset if self.include_deleted else queryset.alive()

    def for_organization(self, organization: Organization | int) -> TaskQuerySet:
        return self.get_queryset().for_organization(organization)

    def visible_to(self, user: Any, organization: Organization | int, action: str) -> TaskQuerySet:
        return self.get_queryset().visible_to(user, organization, action)


class AllTasksManager(TaskManager):
    include_deleted = True


class Task(SoftDeleteOrganizationOwnedModel):
    """A piece of work, optionally in a project and under a parent task.

    The project, parent and assignee stay inside the task's organization; the parent belongs to the same project,
    never lies below the task (no cycles) and the tree is at most ``MAX_TASK_DEPTH`` levels deep. The assignee is an
    active member and, when the task has a project, a member of it. A done task has ``completed_at`` and progress 100;
    the status changes only through the transitions of ``tasks.rules``. ``actual_hours`` is the sum of the task's time
    entries and ``comment_count`` the number of its live comments (both kept by the services).
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="subtasks")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.TODO, editable=False)
    priority = models.PositiveSmallIntegerField(choices=TaskPriority.choices, default=TaskPriority.MEDIUM)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tasks"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reported_tasks"
    )
    start_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    estimated_hours = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    actual_hours = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal(0), editable=False)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MinValueValidator(0), MaxValueValidator(100)])
    # Stored as ",backend,ui," so that one label is one LIKE on every database.
    labels = models.CharField(max_length=500, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    comment_count = models.PositiveIntegerField(default=0, editable=False)

    department_scope_lookup = "project__department__path"
    # A grant on the project: view_project reads its tasks, change_project works on them.
    grants_through = ReachedThrough("project", {"view": "view", "change": "change"})

    objects: ClassVar[TaskManager] = TaskManager()
    all_objects: ClassVar[AllTasksManager] = AllTasksManager()  # type: ignore[assignment]
    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "-pk"]
        permissions = [("assign_task", "Assign tasks to people")]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0, progress__lte=100), name="task_progress_range"),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(due_date__isnull=True)
                | Q(due_date__gte=models.F("start_date")),
                name="task_due_after_start",
            ),
            models.CheckConstraint(
                condition=Q(estimated_hours__isnull=True) | Q(estimated_hours__gte=0), name="task_estimate_positive"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="task_not_own_parent"),
            models.CheckConstraint(
                condition=Q(status=TaskStatus.DONE, completed_at__isnull=False, progress=100)
                | (~Q(status=TaskStatus.DONE) & Q(completed_at__isnull=True)),
                name="task_done_has_completion",
            ),
        ]
        indexes = [
            # The list's default order (newest first within an organization) is read straight from this index.
            models.Index(fields=["organization", "id"], name="task_org_id_idx"),
            models.Index(fields=["organization", "project", "status"], name="task_org_project_status_idx"),
            models.Index(fields=["organization", "assignee", "status"], name="task_org_assignee_status_idx"),
            models.Index(fields=["organization", "status", "due_date"], name="task_org_status_due_idx"),
            # A list filtered by status, newest first; with a wide department scope PostgreSQL walks it (see
            # rbac.parent_set) and stops after one page.
            models.Index(fields=["organization", "status", "id"], name="task_org_status_id_idx"),
            models.Index(fields=["organization", "parent"], name="task_org_parent_idx"),
            models.Index(fields=["organization", "updated_at"], name="task_org_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def label_list(self) -> list[str]:
        return [label for label in self.labels.split(LABEL_SEPARATOR) if label]

    @staticmethod
    def join_labels(labels: list[str]) -> str:
        cleaned = sorted({label.strip().lower() for label in labels if label.strip()})
        return f"{LABEL_SEPARATOR}{LABEL_SEPARATOR.join(cleaned)}{LABEL_SEPARATOR}" if cleaned else ""

    def clean(self) -> None:
        super().clean()
        if self.organization_id is None:
            return
        errors: dict[str, str] = {}
        project = self.project
        if project is not None:
            if project.organization_id != self.organization_id:
                errors["project"] = "The project belongs to another organization."
            elif project.is_deleted:
                errors["project"] = "The project has been deleted."
        parent_error = self._parent_error()
        if parent_error:
            errors["parent"] = parent_error
        if self.assignee_id is not None and "project" not in errors:
            if not is_active_member(self.organization_id, self.assignee_id):
                errors["assignee"] = "The assignee must be an active member of the organization."
            elif (
                project is not None
                and not ProjectMember.objects.filter(project=project, user_id=self.assignee_id).exists()
            ):
                errors["assignee"] = "The assignee must be a member of the task's project."
        if self.start_date and self.due_date and self.due_date < self.start_date:
            errors["due_date"] = "The due date cannot be before the start date."
        if errors:
            raise ValidationError(errors)

    def _parent_error(self) -> str | None:
        parent = self.parent
        if parent is None:
            return None
        if parent.organization_id != self.organization_id:
            return "The parent task belongs to another organization."
        if parent.is_deleted:
            return "The parent task has been deleted."
        if parent.project_id != self.project_id:
            return "A subtask belongs to the same project as its parent."
        from tasks import selectors

        ancestors = selectors.task_ancestor_ids(task_id=parent.pk)
        if self.pk is not None and (parent.pk == self.pk or self.pk in ancestors):
            return "A task cannot be placed under itself or one of its subtasks."
        height = selectors.task_subtree_height(task_id=self.pk) if self.pk is not None else 0
        if len(ancestors) + 2 + height > MAX_TASK_DEPTH:
            return f"Tasks can be nested at most {MAX_TASK_DEPTH} levels deep."
        return None


class TaskDependency(OrganizationOwnedModel):
    """``task`` cannot start before ``depends_on`` is done. Both tasks belong to the dependency's organization; a task
    never depends on itself, and the dependencies never form a cycle, however long (checked by the services)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="dependents")

    department_scope_lookup = "task__project__department__path"
    grants_through = ReachedThrough("task__project", {"view": "view", "add": "change", "delete": "change"})

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "pk"]
        verbose_name_plural = "task dependencies"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "task", "depends_on"],
                name="task_dependency_unique",
                violation_error_message="The task already depends on this task.",
            ),
            models.CheckConstraint(condition=~Q(task=models.F("depends_on")), name="task_dependency_not_self"),
        ]
        indexes = [models.Index(fields=["organization", "depends_on"], name="task_dependency_org_target_idx")]

    def __str__(self) -> str:
        return f"{self.task_id} depends on {self.depends_on_id}"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.task_id is not None and self.task.organization_id != self.organization_id:
            errors["task"] = "The task belongs to another organization."
        if self.depends_on_id is not None:
            if self.depends_on.organization_id != self.organization_id:
                errors["depends_on"] = "The task depended on belongs to another organization."
            elif self.depends_on_id == self.task_id:
                errors["depends_on"] = "A task cannot depend on itself."
            elif self.depends_on.is_deleted:
                errors["depends_on"] = "The task depended on has been deleted."
        if errors:
            raise ValidationError(errors)


class Comment(SoftDeleteOrganizationOwnedModel):
    """A remark on a task by its author, who alone may edit it (an edit sets ``is_edited``)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="task_comments"
    )
    body = models.TextField()
    is_edited = models.BooleanField(default=False, editable=False)

    department_scope_lookup = "task__project__department__path"
    grants_through = ReachedThrough("task__project", {"view": "view", "add": "change"})

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "pk"]
        indexes = [models.Index(fields=["organization", "task"], name="comment_org_task_idx")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on task {self.task_id}"

    def clean(self) -> None:
        super().clean()
        if self.task_id is not None and self.task.organization_id != self.organization_id:
            raise ValidationError({"task": "The task belongs to another organization."})
        if not self.body.strip():
            raise ValidationError({"body": "A comment needs some text."})


class TimeEntry(OrganizationOwnedModel):
    """Hours a member worked on a task on one day: more than 0, and at most 24 per member and day over all entries.

    The member is an active member of the organization and, when the task has a project, a member of it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="time_entries")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="time_entries")
    date = models.DateField(default=timezone.localdate)
    hours = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(MAX_HOURS_PER_DAY)],
    )
    note = models.CharField(max_length=500, blank=True)

    department_scope_lookup = "task__project__department__path"
    grants_through = ReachedThrough("task__project", {"view": "view", "add": "change"})

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "-date", "-pk"]
        verbose_name_plural = "time entries"
        constraints = [
            models.CheckConstraint(condition=Q(hours__gt=0, hours__lte=24), name="time_entry_hours_range"),
        ]
        indexes = [
            models.Index(fields=["organization", "member", "date"], name="time_entry_org_member_date_idx"),
            models.Index(fields=["organization", "task"], name="time_entry_org_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hours} h on task {self.task_id} ({self.date})"

    def clean(self) -> None:
        super().clean()
        if self.organization_id is None:
            return
        errors: dict[str, str] = {}
        task = self.task if self.task_id is not None else None
        if task is not None and task.organization_id != self.organization_id:
            errors["task"] = "The task belongs to another organization."
        if self.member_id is not None and "task" not in errors:
            if not is_active_member(self.organization_id, self.member_id):
                errors["member"] = "Only active members of the organization log time."
            elif (
                task is not None
                and task.project_id is not None
                and not ProjectMember.objects.filter(project_id=task.project_id, user_id=self.member_id).exists()
            ):
                errors["member"] = "Only members of the task's project log time on it."
        if self.member_id is not None and self.date is not None and isinstance(self.hours, Decimal) and not errors:
            logged = (
                TimeEntry.objects.for_organization(self.organization_id)
                .filter(member_id=self.member_id, date=self.date)
                .exclude(pk=self.pk)
                .aggregate(total=models.Sum("hours"))["total"]
            ) or Decimal(0)
            if logged + self.hours > MAX_HOURS_PER_DAY:
                errors["hours"] = (
                    f"At most {MAX_HOURS_PER_DAY} hours a day: {logged} hours are already logged on {self.date}."
                )
        if errors:
            raise ValidationError(errors)
