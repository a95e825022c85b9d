from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from erp.api import access
from erp.api.viewsets import OrganizationScopedModelViewSet
from organizations import selectors, services
from organizations.api.filters import DepartmentFilterSet, MembershipFilterSet, OrganizationFilterSet
from organizations.api.serializers import (
    DepartmentSerializer,
    DepartmentTreeNodeSerializer,
    MembershipSerializer,
    OrganizationAdminUpdateSerializer,
    OrganizationSerializer,
)
from organizations.models import Department, Membership, Organization
from rbac import engine
from rbac.api.grants import ObjectGrantsMixin


class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The organizations I belong to (superusers: all of them). Superusers create and delete; admins update."""

    queryset = Organization.objects.all()
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilterSet
    lookup_field = "slug"
    # Only slug characters reach the database: anything else (a NUL byte, say) is an unknown path, not a 500.
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    search_fields = ["slug", "code", "name"]
    ordering_fields = ["name", "slug", "code", "created_at"]
    ordering = ["slug"]

    def get_queryset(self) -> QuerySet[Organization]:
        if getattr(self, "swagger_fake_view", False):
            return Organization.objects.none()
        return selectors.organizations_for_user(user=access.request_user(self.request))

    def get_object(self) -> Organization:
        user = access.request_user(self.request)
        organization = access.enter_organization(user, self.kwargs[self.lookup_field])
        if self.request.method in ("PUT", "PATCH") and not engine.has_perm(
            user, "organizations.change_organization", organization
        ):
            raise exceptions.PermissionDenied("Only the organization's administrators may change it.")
        return organization

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action in ("update", "partial_update") and not self.request.user.is_superuser:
            return OrganizationAdminUpdateSerializer
        return OrganizationSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.is_superuser:
            raise exceptions.PermissionDenied("Only platform operators may create organizations.")
        return super().create(request, *args, **kwargs)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        organization = self.get_object()
        if not request.user.is_superuser:
            raise exceptions.PermissionDenied("Only platform operators may delete organizations.")
        services.organization_delete(actor=request.user, organization=organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    tree=extend_schema(responses=DepartmentTreeNodeSerializer(many=True)),
    members=extend_schema(
        responses=MembershipSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "include_descendants", OpenApiTypes.BOOL, description="Also list members of sub-departments."
            )
        ],
    ),
)
class DepartmentViewSet(ObjectGrantsMixin, OrganizationScopedModelViewSet):
    """The organization's department tree. Deleting a department that still has sub-departments or members is 409.

    Departments can be shared: ``{id}/grants/`` lists and makes object grants, ``{id}/grants/revoke/`` takes them back.
    """

    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    filterset_class = DepartmentFilterSet
    search_fields = ["code", "name"]
    ordering_fields = ["path", "code", "name", "display_order", "depth", "created_at"]
    ordering = ["path"]

    def destroy_instance(self, instance: Department) -> None:  # type: ignore[override]
        services.department_delete(actor=access.request_user(self.request), department=instance)

    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[], permission_action="view")
    def tree(self, request: Request, organization_slug: str) -> Response:
        """The whole department tree, nested, from one query."""
        return Response(selectors.department_tree(departments=self.get_queryset()))

    @action(detail=True, methods=["get"], filter_backends=[], permission_action="view")
    def members(self, request: Request, organization_slug: str, pk: str) -> Response:
        """Members of the department; with ``include_descendants=true`` also those of its sub-departments."""
        unknown = set(request.query_params) - {"include_descendants", "cursor", "page_size"}
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in sorted(unknown)})
        flag = serializers.BooleanField(required=False, default=False)
        try:
            include_descendants = flag.run_validation(request.query_params.get("include_descendants", False))
        except serializers.ValidationError as error:
            # Name the parameter, as the filters do, instead of reporting a bare non-field error.
            raise serializers.ValidationError({"include_descendants": error.detail}) from error
        department = self.get_object()
        memberships = selectors.department_members(
            department=department,
            include_descendants=include_descendants,
            memberships=Membership.objects.visible_to(self.user, self.organization, "view"),
        )
        page = self.paginate_queryset(memberships.order_by("-pk"))
        serializer = MembershipSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


class MembershipViewSet(OrganizationScopedModelViewSet):
    """Members of the organization. Deleting a membership ends it (``is_active`` false, ``left_on`` today).

    Nobody is added here: people join by accepting an invitation (``invitations/``). Nobody may end, change or
    restore access they could not have given: changing or ending a membership needs every permission the person's
    assignments and grants give them, over each one's scope (403 otherwise). Ending it ends its role assignments and
    object grants for good; an ended membership is not set active again (409 ``membership_ended``: coming back is a
    new membership, by invitation). The last active administrator's membership does not end
    (409 ``last_administrator``).
    """

    queryset = Membership.objects.all()
    serializer_class = MembershipSerializer
    action_permissions = {
        "create": "organizations.manage_members",
        "update": "organizations.manage_members",
        "partial_update": "organizations.manage_members",
        "destroy": "organizations.manage_members",
    }
    filterset_class = MembershipFilterSet
    search_fields = ["user__email", "user__full_name", "job_title", "employee_number"]
    ordering_fields = ["joined_on", "created_at", "employee_number"]
    ordering = ["-created_at"]

    def scope_queryset(self, queryset: QuerySet[Membership]) -> QuerySet[Membership]:
        return queryset.select_related("user", "department")

    @extend_schema(exclude=True)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Naming an account by email here let administrators look up and attach anyone on the installation.
        raise exceptions.MethodNotAllowed(
            request.method or "POST",
            detail="Members join by invitation: POST to this organization's invitations/ instead.",
        )

    def destroy_instance(self, instance: Membership) -> None:  # type: ignore[override]
        services.membership_end(actor=access.request_user(self.request), membership=instance)
