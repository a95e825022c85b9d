"""A person's rights over their data in the API: ``GET /api/v1/me/export/`` (access, for oneself) and
``POST /api/v1/users/{id}/erase/`` (erasure, for superusers only)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from audit.erasure import user_data_export, user_erase
from erp.api import access


class IsSuperuser(permissions.BasePermission):
    message = "Only superusers may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


class UserErasureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    is_changed = serializers.BooleanField(help_text="False when the person had already been erased.")
    versions = serializers.IntegerField(help_text="History versions anonymised.")
    event_details = serializers.IntegerField(help_text="Personal details of security events blanked.")
    admin_log_entries = serializers.IntegerField()


class UserEraseView(APIView):
    """Erases a person (GDPR): anonymised account and history, blanked event details, sessions ended. Idempotent."""

    permission_classes = [permissions.IsAuthenticated, IsSuperuser]

    @extend_schema(request=None, responses=UserErasureSerializer)
    def post(self, request: Request, pk: int) -> Response:
        actor = access.request_user(request)
        user = get_object_or_404(User, pk=pk)
        result = user_erase(actor=actor, user=user)
        body = {
            "id": user.pk,
            "is_changed": result.is_changed,
            "versions": result.versions,
            "event_details": result.event_details,
            "admin_log_entries": result.admin_log_entries,
        }
        return Response(UserErasureSerializer(body).data)


class ExportedProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    full_name = serializers.CharField()
    phone = serializers.CharField()
    locale = serializers.CharField()
    time_zone = serializers.CharField()
    is_active = serializers.BooleanField()
    date_joined = serializers.CharField()
    last_login = serializers.CharField(allow_null=True)


class ExportedMembershipSerializer(serializers.Serializer):
    organization = serializers.CharField()
    department = serializers.CharField(allow_null=True, help_text="The department's code.")
    job_title = serializers.CharField()
    employee_number = serializers.CharField(allow_null=True)
    is_active = serializers.BooleanField()
    joined_on = serializers.CharField()
    left_on = serializers.CharField(allow_null=True)


class ExportedRoleAssignmentSerializer(serializers.Serializer):
    organization = serializers.CharField()
    role = serializers.CharField(help_text="The role's code.")
    department = serializers.CharField(allow_null=True, help_text="The department's code.")
    is_active = serializers.BooleanField()
    valid_from = serializers.CharField(allow_null=True)
    valid_until = serializers.CharField(allow_null=True)


class ExportedChangeSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="app_label.model")
    object_id = serializers.CharField()
    date = serializers.CharField()
    action = serializers.CharField()
    changed_fields = serializers.ListField(child=serializers.CharField())
    organization = serializers.CharField(allow_null=True)


class ExportedSecurityEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    occurred_at = serializers.CharField()
    organization = serializers.CharField(allow_null=True)


class PersonalDataSerializer(serializers.Serializer):
    profile = ExportedProfileSerializer()
    memberships = ExportedMembershipSerializer(many=True)
    role_assignments = ExportedRoleAssignmentSerializer(many=True)
    changes = ExportedChangeSerializer(many=True, help_text="Every version of a record that this person changed.")
    security_events = ExportedSecurityEventSerializer(many=True)


class MyDataExportView(APIView):
    """Everything kept about me (right of access), as JSON. Each export is recorded as a security event."""

    @extend_schema(responses=PersonalDataSerializer)
    def get(self, request: Request) -> Response:
        user = access.request_user(request)
        return Response(PersonalDataSerializer(user_data_export(actor=user, user=user)).data)
