from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from rest_framework import exceptions

from erp.api.filters import BooleanFilter, FilterSet, IntegerFilter
from tasks.api.serializers import PRIORITY_NAMES
from tasks.models import OPEN_STATUSES, Comment, Project, ProjectMember, ProjectStatus, Task, TaskStatus, TimeEntry


class ProjectFilterSet(FilterSet):
    status = django_filters.ChoiceFilter(choices=ProjectStatus.choices)
    manager = IntegerFilter(field_name="manager_id")
    department = IntegerFilter(field_name="department_id")
    member = IntegerFilter(method="filter_member", help_text="Projects this user is a member of.")

    class Meta:
        model = Project
        fields = ["status", "manager", "department", "member", "code"]

    def filter_member(self, queryset: QuerySet[Project], name: str, value: int) -> QuerySet[Project]:
        return queryset.filter(Exists(ProjectMember.objects.filter(project=OuterRef("pk"), user_id=value)))


class TaskFilterSet(FilterSet):
    project = IntegerFilter(field_name="project_id")
    parent = IntegerFilter(field_name="parent_id")
    status = django_filters.ChoiceFilter(choices=TaskStatus.choices)
    priority = django_filters.ChoiceFilter(choices=[(name, name) for name in PRIORITY_NAMES], method="filter_priority")
    assignee = django_filters.CharFilter(method="filter_assignee", help_text="A user id, or ``me``.")
    label = django_filters.CharFilter(method="filter_label")
    due_before = django_filters.DateFilter(field_name="due_date", lookup_expr="lte")
    due_after = django_filters.DateFilter(field_name="due_date", lookup_expr="gte")
    overdue = BooleanFilter(method="filter_overdue", help_text="Open tasks whose due date has passed.")
    has_open_subtasks = BooleanFilter(field_name="has_open_subtasks")

    class Meta:
        model = Task
        fields = [
            "project",
            "parent",
            "status",
            "priority",
            "assignee",
            "label",
            "due_before",
            "due_after",
            "overdue",
            "has_open_subtasks",
        ]

    def filter_priority(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        return queryset.filter(priority=PRIORITY_NAMES[value])

    def filter_assignee(self, queryset: QuerySet[Task], name: str, value: str) -> QuerySet[Task]:
        if value == "me":
            return queryset.filter(assignee_id=self.request.user.pk)
        if not (value.isascii() and value.isdigit()):
            raise exceptions.ValidationError({"assignee": ["Enter a user id or me."]})
        return queryset.filter(assignee_id=int(value))

    def filter_label(self, queryset: Any, name: str, value: str) -> QuerySet[Task]:
        return queryset.with_label(value)

    def filter_overdue(self, queryset: QuerySet[Task], name: str, value: bool) -> QuerySet[Task]:
        late = {"status__in": OPEN_STATUSES, "due_date__lt": timezone.localdate()}
        return queryset.filter(**late) if value else queryset.exclude(**late)


class CommentFilterSet(FilterSet):
    task = IntegerFilter(field_name="task_id")
    author = IntegerFilter(field_name="author_id")

    class Meta:
        model = Comment
        fields = ["task", "author"]


class TimeEntryFilterSet(FilterSet):
    task = IntegerFilter(field_name="task_id")
    member = IntegerFilter(field_name="member_id")
    date_after = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_before = django_filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = TimeEntry
        fields = ["task", "member", "date_after", "date_before"]
