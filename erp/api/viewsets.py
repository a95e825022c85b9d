"""The base of every org-scoped API resource (``/api/v1/organizations/{slug}/<resource>/``).

It resolves the organization from the URL, answers 404 to anyone who may not enter it, scopes every queryset to it
and checks writes through ``erp.api.access``. Subclasses only declare ``queryset``, ``serializer_class`` and
``filterset_class``; they cannot override ``get_queryset`` or ``get_object`` (a forgotten tenant filter would be a
leak) and customise reads through ``scope_queryset`` instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from rest_framework import exceptions, mixins, permissions, viewsets
from rest_framework.request import Request

from erp.api import access
from organizations.models import Organization
from organizations.selectors import organization_with_access

SEALED_METHODS = ("get_queryset", "get_object", "initial")


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    organization_url_kwarg: ClassVar[str] = "organization_slug"
    organization: Organization

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in SEALED_METHODS:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); org-scoped viewsets customise reads with scope_queryset()."
                )

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permission classes, throttles
        user = access.request_user(request)
        organization = organization_with_access(user=user, slug=kwargs.get(self.organization_url_kwarg, ""))
        if organization is None or not access.may_read(user, organization):
            raise exceptions.NotFound()
        self.organization = organization
        if request.method not in permissions.SAFE_METHODS and not access.may_write(user, organization):
            raise exceptions.PermissionDenied("You may not change this organization's data.")

    def get_queryset(self) -> QuerySet[Any]:
        assert self.queryset is not None, f"{type(self).__name__} must declare a queryset"
        queryset = self.queryset.all()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        return self.scope_queryset(queryset.filter(organization=self.organization))

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Hook for joins and annotations; the queryset is already limited to the URL's organization."""
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = getattr(self, "organization", None)
        return context


class OrganizationScopedModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    """CRUD on an org-scoped model. Deletion goes through ``destroy_instance``, which subclasses point at a service."""

    def perform_destroy(self, instance: Model) -> None:
        self.destroy_instance(instance)

    def destroy_instance(self, instance: Model) -> None:
        raise exceptions.MethodNotAllowed(self.request.method or "DELETE")
