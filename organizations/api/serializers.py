from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import User
from erp.api.serializers import (
    OrganizationContextMixin,
    OrganizationMemberField,
    OrganizationScopedPrimaryKeyRelatedField,
)
from organizations import services
from organizations.models import Department, Membership, Organization

SETTINGS_FIELDS = [
    "time_zone",
    "currency_code",
    "fiscal_year_start_month",
    "max_department_depth",
    "history_retention_days",
]


class OrganizationSerializer(serializers.ModelSerializer):
    # "parent" shadows Field.parent in the type stubs only; DRF keeps declared fields apart from that attribute.
    parent = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="slug", queryset=Organization.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Organization
        fields = ["id", "slug", "code", "name", "parent", "is_active", *SETTINGS_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_code(self, value: str) -> str:
        return value.upper()

    def create(self, validated_data: dict[str, Any]) -> Organization:
        return services.organization_create(actor=self.context["request"].user, **validated_data)

    def update(self, instance: Organization, validated_data: dict[str, Any]) -> Organization:
        return services.organization_update(actor=self.context["request"].user, organization=instance, **validated_data)


class OrganizationAdminUpdateSerializer(OrganizationSerializer):
    """What an organization's administrators may change: its name and settings, not its identity or parent."""

    # ``read_only_fields`` does not reach declared fields: without this, an admin could move the organization under
    # any other organization by sending its slug.
    parent: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta(OrganizationSerializer.Meta):
        read_only_fields = ["id", "slug", "code", "parent", "is_active", "created_at", "updated_at"]


class DepartmentSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    parent = OrganizationScopedPrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Department.objects.all(), required=False, allow_null=True
    )
    manager = OrganizationMemberField(required=False, allow_null=True)

    class Meta:
        model = Department
        fields = [
            "id",
            "code",
            "name",
            "parent",
            "path",
            "depth",
            "manager",
            "headcount_limit",
            "display_order",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "path", "depth", "created_at", "updated_at"]
        # Per-organization code uniqueness is checked by the model (on the "code" field) inside the service.
        validators: list[Any] = []

    def validate_code(self, value: str) -> str:
        return value.upper()

    def create(self, validated_data: dict[str, Any]) -> Department:
        return services.department_create(actor=self.actor, organization=self.organization, **validated_data)

    def update(self, instance: Department, validated_data: dict[str, Any]) -> Department:
        return services.department_update(actor=self.actor, department=instance, **validated_data)


class DepartmentTreeNodeSerializer(serializers.Serializer):
    """One node of the department tree, with its sub-departments nested."""

    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    path = serializers.CharField()
    depth = serializers.IntegerField()
    display_order = serializers.IntegerField()
    manager = serializers.IntegerField(allow_null=True)
    children = serializers.ListField(child=serializers.DictField())


class MemberUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "full_name"]
        read_only_fields = fields


class MembershipSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    """A membership. People join through invitations (``invitations/``), never by naming an account here."""

    user = MemberUserSerializer(read_only=True)
    department = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Membership
        fields = [
            "id",
            "user",
            "department",
            "job_title",
            "employee_number",
            "is_active",
            "joined_on",
            "left_on",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "source", "created_at", "updated_at"]
        validators: list[Any] = []

    def validate_employee_number(self, value: str | None) -> str | None:
        return value or None

    def update(self, instance: Membership, validated_data: dict[str, Any]) -> Membership:
        return services.membership_update(actor=self.actor, membership=instance, **validated_data)
