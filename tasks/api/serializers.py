from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from erp.api.serializers import (
    OrganizationContextMixin,
    OrganizationMemberField,
    OrganizationScopedPrimaryKeyRelatedField,
)
from organizations.models import Department
from tasks import services
from tasks.models import (
    OPEN_STATUSES,
    Comment,
    Project,
    ProjectMember,
    ProjectRole,
    Task,
    TaskDependency,
    TaskPriority,
    TaskStatus,
    TimeEntry,
)

PRIORITY_NAMES = {priority.label: priority.value for priority in TaskPriority}


class PriorityField(serializers.ChoiceField):
    """``low``, ``medium``, ``high`` or ``urgent`` (stored as 1 to 4 so that ordering follows urgency)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(PRIORITY_NAMES), **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return PRIORITY_NAMES[super().to_internal_value(data)]

    def to_representation(self, value: Any) -> str:
        return TaskPriority(value).label


class LabelsField(serializers.ListField):
    """A list of short labels; stored lower-cased and de-duplicated."""

    child = serializers.RegexField(
        r"^[^,]{1,40}$", error_messages={"invalid": "A label has 1 to 40 characters, no comma."}
    )
    max_length = 20

    def get_attribute(self, instance: Task) -> list[str]:
        return instance.label_list


# --- Projects --------------------------------------------------------------------------------------------------------


class ProjectSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    department = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False, allow_null=True
    )
    manager = OrganizationMemberField(required=False, allow_null=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "code",
            "name",
            "description",
            "status",
            "department",
            "start_date",
            "end_date",
            "manager",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Per-organization code uniqueness is checked by the model (on the "code" field) inside the service.
        validators: list[Any] = []

    def validate_code(self, value: str) -> str:
        return value.upper()

    def create(self, validated_data: dict[str, Any]) -> Project:
        return services.project_create(actor=self.actor, organization=self.organization, **validated_data)

    def update(self, instance: Project, validated_data: dict[str, Any]) -> Project:
        return services.project_update(actor=self.actor, project=instance, **validated_data)


class ProjectMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectMember
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = fields


class ProjectMemberInputSerializer(OrganizationContextMixin, serializers.Serializer):
    user = OrganizationMemberField()
    role = serializers.ChoiceField(choices=ProjectRole.choices, default=ProjectRole.CONTRIBUTOR)


class ProjectMemberRemoveInputSerializer(OrganizationContextMixin, serializers.Serializer):
    user = OrganizationMemberField()


class ProjectSummarySerializer(serializers.Serializer):
    project = serializers.IntegerField()
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    overdue = serializers.IntegerField()
    estimated_hours = serializers.DecimalField(max_digits=12, decimal_places=2)
    actual_hours = serializers.DecimalField(max_digits=12, decimal_places=2)


# --- Tasks -----------------------------------------------------------------------------------------------------------


class TaskSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    project = OrganizationScopedPrimaryKeyRelatedField(queryset=Project.objects.all(), required=False, allow_null=True)
    parent = OrganizationScopedPrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Task.objects.all(), required=False, allow_null=True
    )
    assignee = OrganizationMemberField(required=False, allow_null=True)
    priority = PriorityField(required=False)
    labels = LabelsField(required=False)
    has_open_subtasks = serializers.SerializerMethodField()
    is_overdue = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "parent",
            "title",
            "description",
            "status",
            "priority",
            "assignee",
            "reporter",
            "start_date",
            "due_date",
            "estimated_hours",
            "actual_hours",
            "progress",
            "labels",
            "completed_at",
            "comment_count",
            "has_open_subtasks",
            "is_overdue",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "reporter",
            "actual_hours",
            "completed_at",
            "comment_count",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_open_subtasks(self, task: Task) -> bool:
        found = getattr(task, "has_open_subtasks", None)
        if found is None:  # a task just written: the list's annotation is not there
            return task.subtasks.filter(status__in=OPEN_STATUSES).exists()
        return bool(found)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_overdue(self, task: Task) -> bool:
        return task.is_open and task.due_date is not None and task.due_date < timezone.localdate()

    def create(self, validated_data: dict[str, Any]) -> Task:
        return services.task_create(actor=self.actor, organization=self.organization, **validated_data)

    def update(self, instance: Task, validated_data: dict[str, Any]) -> Task:
        return services.task_update(actor=self.actor, task=instance, **validated_data)


class TaskDependencySerializer(serializers.ModelSerializer):
    depends_on_title = serializers.CharField(source="depends_on.title", read_only=True)
    depends_on_status = serializers.ChoiceField(source="depends_on.status", choices=TaskStatus.choices, read_only=True)

    class Meta:
        model = TaskDependency
        fields = ["id", "task", "depends_on", "depends_on_title", "depends_on_status", "created_at"]
        read_only_fields = fields


class TaskDependencyInputSerializer(OrganizationContextMixin, serializers.Serializer):
    depends_on = OrganizationScopedPrimaryKeyRelatedField(queryset=Task.objects.all())


# --- Comments and time entries ---------------------------------------------------------------------------------------


class CommentSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    task = OrganizationScopedPrimaryKeyRelatedField(queryset=Task.objects.all())

    class Meta:
        model = Comment
        fields = ["id", "task", "author", "body", "is_edited", "created_at", "updated_at"]
        read_only_fields = ["id", "author", "is_edited", "created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None or self.context.get("task") is not None:
            self.fields["task"].read_only = True  # a comment never moves; nested routes name the task in the URL

    def create(self, validated_data: dict[str, Any]) -> Comment:
        task = validated_data.pop("task", None) or self.context["task"]
        return services.comment_create(actor=self.actor, task=task, **validated_data)

    def update(self, instance: Comment, validated_data: dict[str, Any]) -> Comment:
        return services.comment_update(
            actor=self.actor, comment=instance, body=validated_data.get("body", instance.body)
        )


class TimeEntrySerializer(OrganizationContextMixin, serializers.ModelSerializer):
    task = OrganizationScopedPrimaryKeyRelatedField(queryset=Task.objects.all())

    class Meta:
        model = TimeEntry
        fields = ["id", "task", "member", "date", "hours", "note", "created_at", "updated_at"]
        read_only_fields = ["id", "member", "created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None or self.context.get("task") is not None:
            self.fields["task"].read_only = True

    def create(self, validated_data: dict[str, Any]) -> TimeEntry:
        task = validated_data.pop("task", None) or self.context["task"]
        return services.time_entry_create(actor=self.actor, task=task, **validated_data)

    def update(self, instance: TimeEntry, validated_data: dict[str, Any]) -> TimeEntry:
        return services.time_entry_update(actor=self.actor, entry=instance, **validated_data)


class BoardTaskSerializer(serializers.ModelSerializer):
    priority = PriorityField(read_only=True)

    class Meta:
        model = Task
        fields = ["id", "title", "priority", "assignee", "due_date", "progress", "parent"]
        read_only_fields = fields


class BoardColumnSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.IntegerField()
    tasks = BoardTaskSerializer(many=True)
