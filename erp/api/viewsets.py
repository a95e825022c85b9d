"""The base of every org-scoped API resource (``/api/v1/organizations/{slug}/<resource>/``).

- The organization comes from the URL; anyone who is not an active member gets 404 on every path below it.
- Every action maps to a permission: GET → view, POST → add, PUT/PATCH → change, DELETE → delete, custom actions
  declare ``permission_action`` (a verb, or a full ``app.codename``), and ``action_permissions`` overrides the map.
- Reads go through the model's ``visible_to(user, organization, "view")``: what the user may not see is 404; a visible
  object the user may not change is 403. Creates and updates are re-checked after saving, inside the write's
  transaction: a row that ends up outside what the user may write is refused and rolled back.
- Refusals of something that exists are recorded as denials in the organization's chain (``_record_security_events``);
  a 404 for something that does not exist is not.
- Subclasses declare ``queryset``, ``serializer_class`` and ``filterset_class``; they cannot override the methods
  that enforce this (``SEALED_METHODS``) and customise reads with ``scope_queryset`` instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from audit import events as audit
from audit import selectors as audit_selectors
from audit.selectors import VIEW_HISTORY
from audit.serializers import VersionPageSerializer, VersionSerializer
from erp.api import access
from organizations.models import Organization
from rbac import engine

SEALED_METHODS = (
    "dispatch",
    "get_queryset",
    "get_object",
    "initial",
    "perform_create",
    "perform_update",
    "perform_destroy",
)
ACTION_VERBS = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    organization_url_kwarg: ClassVar[str] = "organization_slug"
    action_permissions: ClassVar[dict[str, str]] = {}
    permission_action: str | None = None  # set per custom action: @action(..., permission_action="view")
    organization: Organization
    user: User

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in SEALED_METHODS:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); org-scoped viewsets customise reads with scope_queryset()."
                )

    @property
    def model(self) -> type[Model]:
        assert self.queryset is not None, f"{type(self).__name__} must declare a queryset"
        return self.queryset.model

    def required_permission(self) -> str:
        """The permission this request needs, as ``app_label.codename``."""
        if self.action is None:  # the route has no handler for this method
            raise exceptions.MethodNotAllowed(self.request.method or "")
        action = self.action
        declared = self.action_permissions.get(action) or ACTION_VERBS.get(action) or self.permission_action
        if declared is None:
            raise ImproperlyConfigured(f"{type(self).__name__}.{action} must declare permission_action")
        return declared if "." in declared else engine.permission_name(self.model, declared)

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.method in permissions.SAFE_METHODS:
            response = super().dispatch(request, *args, **kwargs)
        else:
            # A write is one transaction, undone whole when the call ends in an error (a refused re-check included).
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                rolled_back = response.status_code >= 400
                if rolled_back:
                    transaction.set_rollback(True)
            if rolled_back and getattr(self, "organization", None) is not None:
                # Permissions computed after the undone change (the re-check) may sit in the cache under the version
                # that change bumped: move past it so that nobody reads them.
                engine.bump_organization(self.organization.pk)
        self._record_security_events(request, response.status_code)
        return response

    def _record_security_events(self, request: Any, status_code: int) -> None:
        """Denials and superusers' visits, written after the call's transaction so that a rollback keeps them.

        A denial is a 403, or a 404 that hid something existing: an organization the caller may not enter (recorded in
        that organization's chain, so that its auditors see who probes it) or a row of the organization the caller may
        not see. A 404 for an unknown organization, route or row is not a denial and is not recorded.
        """
        user = getattr(self, "user", None)
        organization = getattr(self, "organization", None)
        is_denial = status_code == 403 or (status_code == 404 and getattr(self, "_hid_existing", False))
        if is_denial and user is not None:
            audit.record_denial(
                actor=user,
                organization=organization or getattr(self, "_refused_organization", None),
                method=request.method,
                path=request.path,
                status=status_code,
                permission=getattr(self, "_denied_permission", None),
            )
        if organization is not None and user is not None and user.is_superuser and not organization.is_member:
            audit.record_superuser_access(user, organization)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permission classes, throttles
        self.user = access.request_user(request)
        slug = kwargs.get(self.organization_url_kwarg, "")
        try:
            self.organization = access.enter_organization(self.user, slug)
        except exceptions.NotFound:
            self._refused_organization = access.refused_organization(slug)
            self._hid_existing = self._refused_organization is not None
            raise
        permission = self.required_permission()
        # Collection-level writes need the permission somewhere here; reads are filtered, objects checked one by one.
        if not self.detail and engine.permission_verb(permission) != "view" and not self.may(permission):
            self._denied_permission = permission
            raise exceptions.PermissionDenied(f"You do not have the permission {permission} in this organization.")

    def may(self, permission: str, obj: Model | None = None) -> bool:
        """Whether the caller holds ``permission`` on ``obj`` or, without one, anywhere in the organization."""
        if obj is not None:
            return engine.has_perm(self.user, permission, obj)
        return engine.holds_here(self.user, self.organization, permission)

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.model._default_manager.none()
        visible = self.model._default_manager.visible_to(self.user, self.organization, "view")  # type: ignore[attr-defined]
        return self.scope_queryset(visible)

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Hook for joins and annotations; the queryset already holds only what the caller may see here."""
        return queryset

    def get_object(self) -> Any:
        try:
            obj = super().get_object()  # 404 when not visible
        except Http404:
            lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
            lookup = {self.lookup_field: self.kwargs.get(lookup_url_kwarg)}
            self._hid_existing = access.names_hidden_row(self.model, self.organization, self.user, lookup)
            raise
        permission = self.required_permission()
        if engine.permission_verb(permission) != "view" and not self.may(permission, obj):
            self._denied_permission = permission
            raise exceptions.PermissionDenied(f"You do not have the permission {permission} on this object.")
        return obj

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self._recheck(serializer.save())

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self._recheck(serializer.save())

    def perform_destroy(self, instance: Model) -> None:
        self.destroy_instance(instance)

    def destroy_instance(self, instance: Model) -> None:
        raise exceptions.MethodNotAllowed(self.request.method or "DELETE")

    def _recheck(self, instance: Model) -> None:
        """The saved row must still be inside what the caller may write; otherwise the transaction is rolled back."""
        permission = self.required_permission()
        if not self.may(permission, instance):
            raise exceptions.PermissionDenied("The result would be outside what you may change in this organization.")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = getattr(self, "organization", None)
        return context


class OrganizationScopedModelViewSet(
    OrganizationScopedViewSet,  # first, so that its perform_* (re-check, services) win over the mixins' defaults
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """CRUD on an org-scoped model. Deletion goes through ``destroy_instance``, which subclasses point at a service.

    Every such resource also has ``{id}/history/`` (see ``history``).
    """

    @extend_schema(
        summary="History of the object",
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="The page to read (from ``next``/``previous``)."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Versions per page."),
        ],
        responses=VersionPageSerializer,
    )
    @action(detail=True, methods=["get"], filter_backends=[], permission_action=VIEW_HISTORY, url_path="history")
    def history(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Every recorded version of the object, newest first, each with its field diff against the version before.

        The object must be visible to the caller (else 404) and the caller must hold ``audit.view_history`` on it
        (else 403); a model that keeps no history has no history here (404).
        """
        audited = audit_selectors.audited_model_for(self.model)
        if audited is None:
            raise exceptions.NotFound()
        obj = self.get_object()
        permission = self.required_permission()
        if not self.may(permission, obj):
            self._denied_permission = permission
            raise exceptions.PermissionDenied(f"You do not have the permission {permission} on this object.")
        versions = audit_selectors.object_versions(audited=audited, object_id=obj.pk, organization=self.organization)
        page = self.paginate_queryset(versions)
        records = list(page if page is not None else versions.order_by("-pk"))
        # The version before the page's oldest one, so that the oldest row's diff is complete: one query per page.
        previous = versions.filter(pk__lt=records[-1].pk).order_by("-pk").first() if records else None
        described = audit_selectors.describe_versions(
            audited=audited, records=records, previous=previous, organization=self.organization, viewer=self.user
        )
        data = VersionSerializer(described, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)
