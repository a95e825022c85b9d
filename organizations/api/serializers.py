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
    user = MemberUserSerializer(read_only=True)
    user_email = serializers.EmailField(write_only=True, required=True, help_text="The account to add (on create).")
    department = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Membership
        fields = [
            "id",
            "user",
            "user_email",
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None:
            # The person of a membership never changes; on updates the email is not asked for.
            self.fields["user_email"].read_only = True
            self.fields["user_email"].required = False

    def validate_user_email(self, value: str) -> User:
        user = User.objects.filter(email__iexact=value, is_active=True).first()
        if user is None:
            raise serializers.ValidationError("No active account has this email address.")
        if Membership.objects.for_organization(self.organization).filter(user=user).exists():
            raise serializers.ValidationError("This person is already a member of the organization.")
        return user

    def validate_employee_number(self, value: str | None) -> str | None:
        return value or None

    def create(self, validated_data: dict[str, Any]) -> Membership:
        user = validated_data.pop("user_email")
        return services.membership_create(actor=self.actor, organization=self.organization, user=user, **validated_data)

    def update(self, instance: Membership, validated_data: dict[str, Any]) -> Membership:
        return services.membership_update(actor=self.actor, membership=instance, **validated_data)
