from __future__ import annotations

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
