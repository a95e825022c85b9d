from __future__ import annotations

from typing import Any, Literal

from rest_framework import serializers

from accounts.models import User


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
