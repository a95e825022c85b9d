from __future__ import annotations

from typing import Any, Literal

from rest_framework import serializers

from accounts import sessions
from accounts.models import User, UserSession


class ProfileSerializer(serializers.ModelSerializer):
    """The signed-in person's own profile. Email and flags are shown but only changeable by administrators."""

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "full_name",
            "phone",
            "locale",
            "time_zone",
            "is_active",
            "is_staff",
            "is_superuser",
            "date_joined",
        ]
        read_only_fields = ["id", "email", "is_active", "is_staff", "is_superuser", "date_joined"]


class LoginInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class PasswordChangeInputSerializer(serializers.Serializer):
    current_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    new_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class UserSessionSerializer(serializers.ModelSerializer):
    """One of my signed-in sessions. ``current`` marks the session this request comes from."""

    device = serializers.SerializerMethodField(help_text='A summary of the browser, e.g. "Firefox on Linux".')
    current = serializers.SerializerMethodField(help_text="Whether this request comes from this session.")

    class Meta:
        model = UserSession
        fields = ["id", "device", "user_agent", "ip", "created_at", "last_seen_at", "current"]
        read_only_fields = fields

    def get_device(self, session: UserSession) -> str:
        return sessions.describe_device(session.user_agent)

    def get_current(self, session: UserSession) -> bool:
        return bool(session.session_key) and session.session_key == self.context.get("current_session_key")


class SessionsRevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many sessions were ended.")


class CsrfTokenSerializer(serializers.Serializer):
    csrf_token = serializers.CharField()


class MyPermissionsQuerySerializer(serializers.Serializer):
    organization = serializers.SlugField(help_text="The organization's slug.")


class ScopeDepartmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    path = serializers.CharField()


class PermissionScopeSerializer(serializers.Serializer):
    """One permission and where it applies: the whole organization, or these departments and their subtrees."""

    permission = serializers.CharField(help_text="app_label.codename")
    scope = serializers.SerializerMethodField(help_text="organization or departments")
    departments = ScopeDepartmentSerializer(many=True, help_text="The subtree roots, when scope is departments.")

    def get_scope(self, scope: Any) -> Literal["organization", "departments"]:
        return "organization" if scope.is_organization_wide else "departments"


class ObjectGrantSetSerializer(serializers.Serializer):
    permission = serializers.CharField(help_text="app_label.codename")
    object_ids = serializers.ListField(child=serializers.IntegerField(), help_text="The objects it is granted on.")


class MyPermissionsSerializer(serializers.Serializer):
    """My effective permissions in one organization, as the permission engine applies them."""

    organization = serializers.SlugField()
    is_superuser = serializers.BooleanField(help_text="Platform operators hold every permission.")
    permissions = PermissionScopeSerializer(many=True)
    object_grants = ObjectGrantSetSerializer(many=True)


class LogoutSerializer(serializers.Serializer):
    logout_url = serializers.URLField(help_text="Where the browser goes to end the identity provider's session too.")
