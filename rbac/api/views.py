"""Roles, role assignments, the permission catalog and the explain endpoint of one organization."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api import access
from erp.api.viewsets import OrganizationScopedModelViewSet, OrganizationScopedViewSet
from organizations.models import Membership
from rbac import engine, explain, services
from rbac.api.filters import RoleAssignmentFilterSet, RoleFilterSet
from rbac.api.serializers import (
    ExplainQuerySerializer,
    ExplainSerializer,
    PermissionSerializer,
    RoleAssignmentSerializer,
    RoleSerializer,
)
from rbac.models import Role, RoleAssignment


def reject_query_parameters(request: Request, allowed: set[str]) -> None:
    """A parameter the endpoint does not read is a 400, not silently ignored."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})


class RoleViewSet(OrganizationScopedModelViewSet):
    """The organization's own roles and the system roles every organization can assign.

    Creating or changing a role needs every permission it would grant (inherited ones too); system roles change only
    through superusers; a role still assigned (active assignments) cannot be deleted (409 ``role_in_use``).
    """

    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    filterset_class = RoleFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at"]
    ordering = ["code"]

    def destroy_instance(self, instance: Role) -> None:  # type: ignore[override]
        services.role_delete(actor=access.request_user(self.request), role=instance)


class RoleAssignmentViewSet(OrganizationScopedModelViewSet):
    """Who holds which role here, organization-wide or for a department subtree, and for which period.

    Assigning, changing and revoking need every permission of the role over the assignment's scope (a change: over its
    scope before and after). The last assignment that makes an active member an administrator of the organization is
    neither revoked nor suspended, narrowed to a department or given an earlier end (409 ``last_administrator``).
    """

    queryset = RoleAssignment.objects.all()
    serializer_class = RoleAssignmentSerializer
    filterset_class = RoleAssignmentFilterSet
    ordering_fields = ["created_at", "valid_from", "valid_until"]
    ordering = ["-created_at"]

    def scope_queryset(self, queryset: QuerySet[RoleAssignment]) -> QuerySet[RoleAssignment]:
        holder_is_member = Membership.objects.filter(
            organization_id=OuterRef("organization_id"), user_id=OuterRef("user_id"), is_active=True
        )
        return queryset.annotate(holder_is_member=Exists(holder_is_member))

    def destroy_instance(self, instance: RoleAssignment) -> None:  # type: ignore[override]
        services.role_revoke(actor=access.request_user(self.request), assignment=instance)


class PermissionViewSet(OrganizationScopedViewSet):
    """The permission catalog: what roles of this organization can grant (readable by whoever may read roles)."""

    queryset = Role.objects.all()  # the gate (rbac.view_role); the rows listed are Permission rows
    serializer_class = PermissionSerializer
    action_permissions = {"list": "rbac.view_role"}
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(responses=PermissionSerializer(many=True))
    def list(self, request: Request, **kwargs: Any) -> Response:
        reject_query_parameters(request, set())
        permissions: QuerySet[Any] = explain.catalog_permissions()
        if not self.may(self.required_permission()):
            permissions = permissions.none()  # reads are filtered, as every list is
        return Response(PermissionSerializer(permissions, many=True).data)


class ExplainViewSet(OrganizationScopedViewSet):
    """Whether a member holds a permission here (on one object, or anywhere), and why: ``GET …/explain/``.

    For holders of ``rbac.view_roleassignment`` across the whole organization (the answer reveals every assignment).
    """

    queryset = RoleAssignment.objects.all()
    serializer_class = ExplainSerializer
    action_permissions = {"list": "rbac.view_roleassignment"}
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(parameters=[ExplainQuerySerializer], responses=ExplainSerializer)
    def list(self, request: Request, **kwargs: Any) -> Response:
        permission = self.required_permission()
        if not engine.scope_for(self.user, self.organization, permission).is_organization_wide:
            self._denied_permission = permission
            raise exceptions.PermissionDenied(f"You do not have the permission {permission} in this organization.")
        reject_query_parameters(request, {"user", "permission", "object_type", "object_id"})
        query = ExplainQuerySerializer(data=request.query_params, context=self.get_serializer_context())
        query.is_valid(raise_exception=True)
        asked = query.validated_data["permission"]
        answer = explain.explain(
            user=query.validated_data["user"],
            organization=self.organization,
            permission=explain.permission_label(asked.content_type.app_label, asked.codename),
            obj=query.validated_data["object"],
        )
        return Response(ExplainSerializer(answer).data)
