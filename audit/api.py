"""The auditor's API: ``…/organizations/{slug}/audit/changes/`` and ``…/audit/events/``.

Both need ``audit.view_history`` for the whole organization (a holder for some departments only would otherwise read
every department's changes): anyone else who is a member gets 403, non-members 404 (the base viewset). Pages are read
forward along a keyset cursor (``next``); there is no offset and no count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param

from audit import selectors
from audit.models import SecurityEvent
from audit.serializers import (
    ChangePageSerializer,
    ChangeQuerySerializer,
    ChangeSerializer,
    SecurityEventPageSerializer,
    SecurityEventQuerySerializer,
    SecurityEventSerializer,
)
from erp.api.viewsets import OrganizationScopedViewSet
from rbac import engine


class AuditViewSet(OrganizationScopedViewSet):
    """Shared by the audit feeds: the gate, strict query parameters and the page size."""

    queryset = SecurityEvent.objects.all()  # the gate's model; the rows come from the selectors
    action_permissions = {"list": selectors.VIEW_HISTORY}
    pagination_class = None
    filter_backends: list[Any] = []

    def require_history_permission(self) -> None:
        """``audit.view_history`` for the whole organization, else 403 (reads of other resources are filtered, but
        an empty audit feed would hide that the caller is not allowed to read it)."""
        permission = self.required_permission()
        if not engine.scope_for(self.user, self.organization, permission).is_organization_wide:
            self._denied_permission = permission
            raise exceptions.PermissionDenied(f"You do not have the permission {permission} in this organization.")

    def validated_query(self, serializer_class: type[Any]) -> Any:
        unknown = sorted(set(self.request.query_params) - set(serializer_class().fields))
        if unknown:
            allowed = ", ".join(sorted(serializer_class().fields))
            raise exceptions.ValidationError(
                {name: [f"Unknown query parameter. Allowed: {allowed}."] for name in unknown}
            )
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query

    def page_size(self, query: Any) -> int:
        return int(query.validated_data.get("page_size") or api_settings.PAGE_SIZE or 50)

    def next_link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)


def _invalid_cursor() -> exceptions.ValidationError:
    return exceptions.ValidationError({"cursor": ["This cursor is not valid."]})


class AuditChangeViewSet(AuditViewSet):
    """The organization's changes across every audited model, newest first: who changed what, when, from where and
    why, filtered by model, object, user, date range, field changed and action."""

    serializer_class = ChangeSerializer

    @extend_schema(parameters=[ChangeQuerySerializer], responses=ChangePageSerializer)
    def list(self, request: Request, **kwargs: Any) -> Response:
        self.require_history_permission()
        query = self.validated_query(ChangeQuerySerializer)
        after = None
        if "cursor" in query.validated_data:
            try:
                after = selectors.ChangePosition.decode(query.validated_data["cursor"])
            except selectors.InvalidCursorError as error:
                raise _invalid_cursor() from error
        changes, position = selectors.search_changes(
            organization=self.organization,
            viewer=self.user,
            filters=query.filters(),
            after=after,
            limit=self.page_size(query),
        )
        return Response(
            {
                "next": self.next_link(position.encode() if position is not None else None),
                "results": ChangeSerializer(changes, many=True).data,
            }
        )


class AuditEventViewSet(AuditViewSet):
    """The organization's security events, newest first, filtered by kind, actor and date range: what happened in it,
    its members' sign-ins, failed sign-ins, lockouts, sign-outs and revoked sessions, and the requests refused on its
    paths (a non-member shows as ``User #id``). An unknown ``kind`` is a 400 that lists the valid ones."""

    serializer_class = SecurityEventSerializer

    @extend_schema(parameters=[SecurityEventQuerySerializer], responses=SecurityEventPageSerializer)
    def list(self, request: Request, **kwargs: Any) -> Response:
        self.require_history_permission()
        query = self.validated_query(SecurityEventQuerySerializer)
        after = None
        if "cursor" in query.validated_data:
            try:
                occurred_at, pk = selectors.decode_cursor(query.validated_data["cursor"], (datetime, int))
            except selectors.InvalidCursorError as error:
                raise _invalid_cursor() from error
            after = (occurred_at, pk)
        events = selectors.security_events(organization=self.organization, filters=query.filters())
        rows, position = selectors.event_page(events, after=after, limit=self.page_size(query))
        described = selectors.describe_events(rows, organization=self.organization, viewer=self.user)
        return Response(
            {
                "next": self.next_link(selectors.encode_cursor(position) if position is not None else None),
                "results": SecurityEventSerializer(described, many=True).data,
            }
        )
