"""Object grants on shareable objects: ``…/{id}/grants/`` (list, grant) and ``…/{id}/grants/revoke/``.

A shareable model's viewset (one whose model has direct-FK guardian grant tables) includes ``ObjectGrantsMixin``.
Listing needs the object's ``view`` permission; granting and revoking need its ``change`` permission, and the
services also refuse to share a permission the caller does not hold on the object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from rbac import services
from rbac.api.serializers import ObjectGrantInputSerializer, ObjectGrantSerializer, grant_tables

if TYPE_CHECKING:
    from django.db import models

    from erp.api.viewsets import OrganizationScopedViewSet

    _Base = OrganizationScopedViewSet
else:
    _Base = object

GRANT_ACTION_PERMISSIONS = {"grant": "change", "revoke_grant": "change"}


def object_grants(obj: models.Model) -> list[dict[str, Any]]:
    """Every user and group grant on ``obj`` (two queries), users first, each sorted by permission then grantee."""
    user_grants, group_grants = grant_tables(obj)
    rows: list[dict[str, Any]] = [
        {"permission": f"{app_label}.{codename}", "user": user_id, "group": None}
        for app_label, codename, user_id in user_grants.objects.filter(content_object=obj)
        .order_by("permission__content_type__app_label", "permission__codename", "user_id")
        .values_list("permission__content_type__app_label", "permission__codename", "user_id")
    ]
    rows += [
        {"permission": f"{app_label}.{codename}", "user": None, "group": group_id}
        for app_label, codename, group_id in group_grants.objects.filter(content_object=obj)
        .order_by("permission__content_type__app_label", "permission__codename", "group_id")
        .values_list("permission__content_type__app_label", "permission__codename", "group_id")
    ]
    return rows


class ObjectGrantsMixin(_Base):
    """Grant, revoke and list object permissions on the viewset's objects (for shareable models only)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Merged rather than inherited: a viewset declaring its own action_permissions must not lose these (the
        # writes would otherwise fall back to the listing's "view").
        cls.action_permissions = {**GRANT_ACTION_PERMISSIONS, **cls.action_permissions}

    def _grant_input(self, request: Request, obj: models.Model, *, revoking: bool) -> dict[str, Any]:
        context = {**self.get_serializer_context(), "object": obj, "revoking": revoking}
        serializer = ObjectGrantInputSerializer(data=request.data, context=context)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @extend_schema(responses=ObjectGrantSerializer(many=True), filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path="grants",
        pagination_class=None,
        filter_backends=[],
        permission_action="view",
    )
    def grants(self, request: Request, **kwargs: Any) -> Response:
        """The user and group grants on this object."""
        return Response(ObjectGrantSerializer(object_grants(self.get_object()), many=True).data)

    @extend_schema(request=ObjectGrantInputSerializer, responses={201: ObjectGrantSerializer})
    @grants.mapping.post
    def grant(self, request: Request, **kwargs: Any) -> Response:
        """Grant one permission on this object to one active member or one group."""
        obj = self.get_object()
        grant = self._grant_input(request, obj, revoking=False)
        services.object_grant(actor=self.user, obj=obj, **grant)
        body = {"permission": grant["permission"], "user": None, "group": None}
        body.update({name: grant[name].pk for name in ("user", "group") if grant.get(name) is not None})
        return Response(ObjectGrantSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ObjectGrantInputSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="grants/revoke", filter_backends=[], permission_action="change")
    def revoke_grant(self, request: Request, **kwargs: Any) -> Response:
        """Take a permission on this object back from a user or a group (nothing to take back is not an error)."""
        obj = self.get_object()
        services.object_revoke(actor=self.user, obj=obj, **self._grant_input(request, obj, revoking=True))
        return Response(status=status.HTTP_204_NO_CONTENT)
