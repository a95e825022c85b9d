"""Projects, tasks, comments and time entries under ``/api/v1/organizations/{slug}/``.

Every transition is a POST action (input → ``get_object()`` → service → output). Object checks are the engine's, which
counts grants on the object's project (the models' ``grants_through``); besides, a task's assignee may make its
transitions, a comment is edited by its author and a time entry by the member who logged it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api.viewsets import OrganizationScopedModelViewSet
from rbac import engine
from rbac.api.grants import ObjectGrantsMixin
from tasks import rules, selectors, services
from tasks.api.filters import CommentFilterSet, ProjectFilterSet, TaskFilterSet, TimeEntryFilterSet
from tasks.api.serializers import (
    BoardColumnSerializer,
    CommentSerializer,
    ProjectMemberInputSerializer,
    ProjectMemberRemoveInputSerializer,
    ProjectMemberSerializer,
    ProjectSerializer,
    ProjectSummarySerializer,
    TaskDependencyInputSerializer,
    TaskDependencySerializer,
    TaskSerializer,
    TimeEntrySerializer,
)
from tasks.models import Comment, Project, Task, TimeEntry

TRANSITION_ACTIONS = {"start", "submit_for_review", "complete", "reopen", "cancel"}


class ProjectViewSet(ObjectGrantsMixin, OrganizationScopedModelViewSet):
    """The organization's projects. A project can be shared (``{id}/grants/``); the grant reaches its tasks.

    Deleting a project that still has open tasks is 409.
    """

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "status", "start_date", "end_date", "created_at", "updated_at"]
    ordering = ["code"]
    action_permissions = {"add_member": "tasks.manage_project_members", "remove_member": "tasks.manage_project_members"}

    def scope_queryset(self, queryset: QuerySet[Project]) -> QuerySet[Project]:
        if self.action in ("board", "summary"):
            # These answer from the project's tasks; the department is what visible_tasks() decides on.
            return queryset.select_related("department")
        return selectors.project_list(projects=queryset)

    def destroy_instance(self, instance: Project) -> None:  # type: ignore[override]
        services.project_delete(actor=self.user, project=instance)

    def visible_tasks(self, project: Project) -> QuerySet[Task]:
        """The project's tasks that the caller may see: all of them or none, since what decides it (an organization-wide
        role, the project's department, a grant on the project) is the same for every task of the project. Deciding
        it once here keeps the permission predicate out of the board's and the summary's query."""
        tasks = Task.objects.filter(organization=self.organization, project=project)
        probe = Task(organization=self.organization, project=project)
        return tasks if engine.has_perm(self.user, "tasks.view_task", probe) else tasks.none()

    @extend_schema(responses=BoardColumnSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[], permission_action="view")
    def board(self, request: Request, **kwargs: Any) -> Response:
        """One column per status: its most pressing tasks (priority, then due date; capped) and its full count."""
        project = self.get_object()
        columns = selectors.project_board(project=project, tasks=self.visible_tasks(project))
        return Response(BoardColumnSerializer(columns, many=True).data)

    @extend_schema(responses=ProjectSummarySerializer, filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[], permission_action="view")
    def summary(self, request: Request, **kwargs: Any) -> Response:
        """Task counts by status, overdue tasks, estimated and actual hours (over the tasks the caller may see)."""
        project = self.get_object()
        return Response(
            ProjectSummarySerializer(selectors.project_summary(project=project, tasks=self.visible_tasks(project))).data
        )

    @extend_schema(responses=ProjectMemberSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[], permission_action="view")
    def members(self, request: Request, **kwargs: Any) -> Response:
        """The project's members and their project roles."""
        project = self.get_object()
        return Response(ProjectMemberSerializer(selectors.project_members(project=project), many=True).data)

    @extend_schema(request=ProjectMemberInputSerializer, responses={200: ProjectMemberSerializer})
    @members.mapping.post
    def add_member(self, request: Request, **kwargs: Any) -> Response:
        """Add a member of the organization to the project, or change their project role."""
        project = self.get_object()
        serializer = ProjectMemberInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        member = services.project_member_set(actor=self.user, project=project, **serializer.validated_data)
        return Response(ProjectMemberSerializer(member).data)

    @extend_schema(request=ProjectMemberRemoveInputSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="members/remove", filter_backends=[])
    def remove_member(self, request: Request, **kwargs: Any) -> Response:
        """Take a person off the project (not its manager, nor anyone still assigned its open tasks)."""
        project = self.get_object()
        serializer = ProjectMemberRemoveInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        services.project_member_remove(actor=self.user, project=project, user=serializer.validated_data["user"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class TaskViewSet(OrganizationScopedModelViewSet):
    """The organization's tasks: those the caller's roles reach, and those of projects shared with them.

    The status changes only through the POST actions; their assignee may move a task without ``tasks.change_task``.
    Choosing an assignee needs ``tasks.assign_task``.
    """

    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilterSet
    search_fields = ["title", "description"]
    ordering_fields = ["due_date", "priority", "updated_at", "created_at", "title"]
    ordering = ["-pk"]
    action_permissions = {
        **dict.fromkeys(TRANSITION_ACTIONS, "change"),
        "dependencies": "view",
        "add_dependency": "tasks.add_taskdependency",
        "remove_dependency": "tasks.delete_taskdependency",
        "comments": "view",
        "add_comment": "tasks.add_comment",
        "time_entries": "view",
        "add_time_entry": "tasks.add_timeentry",
    }

    def scope_queryset(self, queryset: QuerySet[Task]) -> QuerySet[Task]:
        return selectors.task_list(tasks=queryset)

    def may(self, permission: str, obj: Model | None = None) -> bool:
        if obj is None:
            return super().may(permission)
        if self.action in TRANSITION_ACTIONS and isinstance(obj, Task):
            return rules.may_transition(self.user, obj)
        return super().may(permission, obj)

    def destroy_instance(self, instance: Task) -> None:  # type: ignore[override]
        services.task_delete(actor=self.user, task=instance)

    def _transition(self, name: str) -> Response:
        task = services.task_transition(actor=self.user, task=self.get_object(), transition=name)
        return Response(self.get_serializer(task).data)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def start(self, request: Request, **kwargs: Any) -> Response:
        """To do → in progress; refused while a task it depends on is not done."""
        return self._transition("start")

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], url_path="submit-for-review", filter_backends=[])
    def submit_for_review(self, request: Request, **kwargs: Any) -> Response:
        """In progress → in review."""
        return self._transition("submit_for_review")

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def complete(self, request: Request, **kwargs: Any) -> Response:
        """In review → done (sets ``completed_at`` and progress 100); refused while a subtask is open."""
        return self._transition("complete")

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def reopen(self, request: Request, **kwargs: Any) -> Response:
        """Done or cancelled → in progress (clears ``completed_at`` and progress)."""
        return self._transition("reopen")

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request: Request, **kwargs: Any) -> Response:
        """Any open status → cancelled."""
        return self._transition("cancel")

    @extend_schema(responses=TaskDependencySerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def dependencies(self, request: Request, **kwargs: Any) -> Response:
        """The tasks this task depends on."""
        task = self.get_object()
        return Response(TaskDependencySerializer(selectors.task_dependencies(task=task), many=True).data)

    @extend_schema(request=TaskDependencyInputSerializer, responses={201: TaskDependencySerializer})
    @dependencies.mapping.post
    def add_dependency(self, request: Request, **kwargs: Any) -> Response:
        """Make this task depend on another (same organization; no cycles)."""
        task = self.get_object()
        serializer = TaskDependencyInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        dependency = services.task_dependency_add(actor=self.user, task=task, **serializer.validated_data)
        return Response(TaskDependencySerializer(dependency).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TaskDependencyInputSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="dependencies/remove", filter_backends=[])
    def remove_dependency(self, request: Request, **kwargs: Any) -> Response:
        """Remove one dependency of this task."""
        task = self.get_object()
        serializer = TaskDependencyInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        services.task_dependency_remove(actor=self.user, task=task, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=CommentSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filter_backends=[])
    def comments(self, request: Request, **kwargs: Any) -> Response:
        """The task's comments, newest first."""
        task = self.get_object()
        comments = selectors.task_comments(
            task=task, comments=Comment.objects.visible_to(self.user, self.organization, "view")
        )
        page = self.paginate_queryset(comments.order_by("-pk"))
        return self.get_paginated_response(
            CommentSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(request=CommentSerializer, responses={201: CommentSerializer})
    @comments.mapping.post
    def add_comment(self, request: Request, **kwargs: Any) -> Response:
        """Comment on the task as the caller."""
        task = self.get_object()
        context = {**self.get_serializer_context(), "task": task}
        serializer = CommentSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TimeEntrySerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], url_path="time-entries", filter_backends=[])
    def time_entries(self, request: Request, **kwargs: Any) -> Response:
        """The hours logged on the task, newest first."""
        task = self.get_object()
        entries = selectors.task_time_entries(
            task=task, entries=TimeEntry.objects.visible_to(self.user, self.organization, "view")
        )
        page = self.paginate_queryset(entries.order_by("-pk"))
        return self.get_paginated_response(
            TimeEntrySerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(request=TimeEntrySerializer, responses={201: TimeEntrySerializer})
    @time_entries.mapping.post
    def add_time_entry(self, request: Request, **kwargs: Any) -> Response:
        """Log the caller's hours on the task."""
        task = self.get_object()
        context = {**self.get_serializer_context(), "task": task}
        serializer = TimeEntrySerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class CommentViewSet(OrganizationScopedModelViewSet):
    """Comments on the tasks the caller may see. Only the author edits a comment; the author or a holder of
    ``tasks.delete_comment`` deletes it."""

    queryset = Comment.objects.all()
    serializer_class = CommentSerializer
    filterset_class = CommentFilterSet
    search_fields = ["body"]
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-pk"]

    def may(self, permission: str, obj: Model | None = None) -> bool:
        if obj is None:
            return super().may(permission)
        own = isinstance(obj, Comment) and obj.author_id == self.user.pk
        if own and self.action in ("update", "partial_update", "destroy"):
            return True
        return super().may(permission, obj)

    def destroy_instance(self, instance: Comment) -> None:  # type: ignore[override]
        services.comment_delete(actor=self.user, comment=instance)


class TimeEntryViewSet(OrganizationScopedModelViewSet):
    """Hours logged on the tasks the caller may see. The member who logged them, or a holder of the change or delete
    permission, corrects or removes an entry."""

    queryset = TimeEntry.objects.all()
    serializer_class = TimeEntrySerializer
    filterset_class = TimeEntryFilterSet
    ordering_fields = ["date", "hours", "created_at"]
    ordering = ["-pk"]

    def may(self, permission: str, obj: Model | None = None) -> bool:
        if obj is None:
            return super().may(permission)
        own = isinstance(obj, TimeEntry) and obj.member_id == self.user.pk
        if own and self.action in ("update", "partial_update", "destroy"):
            return True
        return super().may(permission, obj)

    def destroy_instance(self, instance: TimeEntry) -> None:  # type: ignore[override]
        services.time_entry_delete(actor=self.user, entry=instance)
