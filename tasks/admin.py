"""Back office for projects and tasks: every save, delete and bulk action goes through ``tasks.services``, so the rules
and the history are the API's. Status changes are the bulk actions (and the API's transitions), never a form field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join

from accounts.models import User
from erp.admin import OrganizationScopedAdmin, OrganizationScopedTabularInline, refusals_as_messages
from tasks import rules, selectors, services
from tasks.models import OPEN_STATUSES, Comment, Project, ProjectMember, Task, TimeEntry


def _changes(form: ModelForm, fields: set[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}


class ProjectMemberInline(OrganizationScopedTabularInline):
    """Members and their project roles; added, re-roled and removed through the services."""

    model = ProjectMember
    fields = ("user", "role")
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(OrganizationScopedAdmin):
    list_display = ["code", "name", "organization", "status", "department", "manager", "start_date", "end_date"]
    list_filter = [
        ("organization", admin.RelatedOnlyFieldListFilter),
        "status",
        ("department", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["code", "name"]
    list_select_related = ["organization", "department", "manager"]
    autocomplete_fields = ["manager"]
    readonly_fields = ["rollups", "created_at", "updated_at", "created_by", "updated_by"]
    fields = [
        "organization",
        "code",
        "name",
        "description",
        "status",
        "department",
        "manager",
        "start_date",
        "end_date",
        *readonly_fields,
    ]
    inlines = [ProjectMemberInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> Any:
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    @admin.display(description="rollups")
    def rollups(self, obj: Project) -> str:
        if obj.pk is None:
            return "-"
        summary = selectors.project_summary(project=obj, tasks=Task.objects.all())
        lines = [
            ("Tasks", summary["total"]),
            *((status.replace("_", " ").capitalize(), count) for status, count in summary["by_status"].items()),
            ("Overdue", summary["overdue"]),
            ("Estimated hours", summary["estimated_hours"]),
            ("Actual hours", summary["actual_hours"]),
        ]
        return format_html_join("", "<div>{}: {}</div>", lines)

    def save_model(self, request: HttpRequest, obj: Project, form: ModelForm, change: bool) -> None:
        with refusals_as_messages():
            if change:
                services.project_update(actor=request.user, project=obj, **_changes(form, services.PROJECT_FIELDS))
            else:
                created = services.project_create(
                    actor=request.user,
                    organization=form.cleaned_data["organization"],
                    **{name: form.cleaned_data[name] for name in services.PROJECT_FIELDS if name in form.cleaned_data},
                )
                obj.pk = created.pk

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: Any, change: bool) -> None:
        project = Project.objects.get(pk=form.instance.pk)
        # The admin's change message reads these; the services below did the writing.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        with refusals_as_messages():
            for member_form in formset.forms:
                if not member_form.has_changed() and not formset._should_delete_form(member_form):
                    continue
                user = member_form.cleaned_data.get("user")
                if user is None:
                    continue
                if formset._should_delete_form(member_form):
                    services.project_member_remove(actor=request.user, project=project, user=user)
                else:
                    services.project_member_set(
                        actor=request.user, project=project, user=user, role=member_form.cleaned_data["role"]
                    )

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        services.project_delete(actor=request.user, project=obj)


class SubtaskInline(OrganizationScopedTabularInline):
    model = Task
    fk_name = "parent"
    fields = ("title", "status", "priority", "assignee", "due_date", "progress")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = "subtask"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # subtasks are created on their own page, where the tree rules are checked


class CommentInline(OrganizationScopedTabularInline):
    model = Comment
    fields = ("author", "body", "is_edited", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # comments are written by their authors, through the API


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        late = {"status__in": OPEN_STATUSES, "due_date__lt": timezone.localdate()}
        if self.value() == "yes":
            return queryset.filter(**late)
        if self.value() == "no":
            return queryset.exclude(**late)
        return queryset


class ReassignForm(ActionForm):
    assignee_email = forms.EmailField(required=False, label="Reassign to (email; empty: unassign)")


@admin.register(Task)
class TaskAdmin(OrganizationScopedAdmin):
    list_display = ["title", "project", "status", "priority", "assignee", "due_date", "progress", "is_overdue"]
    list_filter = [
        "status",
        "priority",
        ("project", admin.RelatedOnlyFieldListFilter),
        ("assignee", admin.RelatedOnlyFieldListFilter),
        OverdueFilter,
    ]
    search_fields = ["title", "description"]
    list_select_related = ["project", "assignee"]
    autocomplete_fields = ["assignee"]
    readonly_fields = [
        "status",
        "actual_hours",
        "subtree_progress",
        "completed_at",
        "comment_count",
        "reporter",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ]
    fields = [
        "organization",
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
        *readonly_fields,
    ]
    inlines = [SubtaskInline, CommentInline]
    action_form = ReassignForm
    actions = ["complete_tasks", "reassign_tasks"]

    @admin.display(boolean=True, description="overdue")
    def is_overdue(self, obj: Task) -> bool:
        return obj.is_open and obj.due_date is not None and obj.due_date < timezone.localdate()

    @admin.display(description="subtree progress (%)")
    def subtree_progress(self, obj: Task) -> int | str:
        return selectors.task_subtree_progress(task=obj) if obj.pk is not None else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> Any:
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Task, form: ModelForm, change: bool) -> None:
        with refusals_as_messages():
            if change:
                services.task_update(actor=request.user, task=obj, **_changes(form, services.TASK_FIELDS))
            else:
                created = services.task_create(
                    actor=request.user,
                    organization=form.cleaned_data["organization"],
                    **{name: form.cleaned_data[name] for name in services.TASK_FIELDS if name in form.cleaned_data},
                )
                obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        services.task_delete(actor=request.user, task=obj)

    def _changeable(self, request: HttpRequest, queryset: QuerySet[Task], may: Any) -> list[Task]:
        tasks = list(queryset)
        refused = [task for task in tasks if not may(task)]
        if refused:
            raise ValidationError(f"You may not change: {', '.join(str(task) for task in refused)}.")
        return tasks

    @admin.action(description="Complete the selected tasks")
    def complete_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        tasks = self._changeable(request, queryset, lambda task: rules.may_transition(request.user, task))
        count = services.tasks_complete(actor=request.user, tasks=tasks)
        self.message_user(request, f"{count} task(s) completed.", messages.SUCCESS)

    @admin.action(description="Reassign the selected tasks")
    def reassign_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        email = request.POST.get("assignee_email", "").strip()
        assignee = User.objects.filter(email__iexact=email).first() if email else None
        if email and assignee is None:
            raise ValidationError(f"Nobody has the email address {email}.")
        tasks = self._changeable(request, queryset, lambda task: request.user.has_perm("tasks.change_task", task))
        with refusals_as_messages():
            count = services.tasks_reassign(actor=request.user, tasks=tasks, assignee=assignee)
        self.message_user(request, f"{count} task(s) reassigned.", messages.SUCCESS)


class ReadOnlyTaskPartAdmin(OrganizationScopedAdmin):
    """Comments and time entries are written through the API by the people concerned; the back office reads them,
    their history, and deletes through the services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Comment)
class CommentAdmin(ReadOnlyTaskPartAdmin):
    list_display = ["task", "author", "is_edited", "created_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "is_edited"]
    search_fields = ["body"]
    list_select_related = ["task", "author"]

    def delete_model(self, request: HttpRequest, obj: Comment) -> None:
        services.comment_delete(actor=request.user, comment=obj)


@admin.register(TimeEntry)
class TimeEntryAdmin(ReadOnlyTaskPartAdmin):
    list_display = ["task", "member", "date", "hours"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "date"]
    list_select_related = ["task", "member"]

    def delete_model(self, request: HttpRequest, obj: TimeEntry) -> None:
        services.time_entry_delete(actor=request.user, entry=obj)
