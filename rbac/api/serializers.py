from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.models import User
from erp.api.serializers import (
    OrganizationContextMixin,
    OrganizationMemberField,
    OrganizationScopedPrimaryKeyRelatedField,
)
from erp.db.models import OrganizationOwnedModel
from organizations.models import Department, Membership
from rbac import explain, services
from rbac.grants import grant_models_for
from rbac.models import Role, RoleAssignment

# --- Permission names ------------------------------------------------------------------------------------------------


class PermissionNamesField(serializers.ListField):
    """A list of ``app_label.codename`` strings naming catalog permissions; reads a role's own permissions.

    Input becomes the Permission rows; an unknown name is a 400 that names it (and nothing is changed).
    """

    child = serializers.CharField()

    def get_attribute(self, instance: Role) -> list[str]:
        return available_roles(self.parent).own_permissions(instance.pk)

    def to_internal_value(self, data: Any) -> list[Permission]:
        names = super().to_internal_value(data)
        found = explain.catalog_lookup(set(names))
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise serializers.ValidationError([f"Unknown permission: {name}." for name in unknown], code="unknown")
        return [found[name] for name in sorted(found)]


def available_roles(serializer: Any) -> explain.AvailableRoles:
    """The organization's roles with their permissions, read once per request and shared by every row's serializer."""
    context = serializer.context
    if "available_roles" not in context:
        context["available_roles"] = explain.AvailableRoles(context["organization"])
    return context["available_roles"]


class PermissionSerializer(serializers.ModelSerializer):
    """One permission of the catalog: what roles can grant."""

    permission = serializers.SerializerMethodField(help_text="The name roles use: app_label.codename.")
    app_label = serializers.CharField(source="content_type.app_label", read_only=True)
    model = serializers.CharField(source="content_type.model", read_only=True, help_text="The model it applies to.")

    class Meta:
        model = Permission
        fields = ["id", "permission", "name", "app_label", "model"]
        read_only_fields = fields

    def get_permission(self, permission: Permission) -> str:
        return explain.permission_label(permission.content_type.app_label, permission.codename)


# --- Roles -----------------------------------------------------------------------------------------------------------


class RoleSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    """A role: its own permissions (``permissions``, writable) and everything it grants with inheritance."""

    # "parent" shadows Field.parent in the type stubs only; DRF keeps declared fields apart from that attribute.
    parent = OrganizationScopedPrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Role.objects.all(),
        required=False,
        allow_null=True,
        help_text="A role of this organization or a system role; its permissions are inherited.",
    )
    permissions = PermissionNamesField(
        required=False, help_text="The role's own permissions as app_label.codename (see the permissions catalog)."
    )
    effective_permissions = serializers.SerializerMethodField(
        help_text="Every permission the role grants: its own and those inherited from its parents."
    )

    class Meta:
        model = Role
        fields = [
            "id",
            "code",
            "name",
            "description",
            "parent",
            "is_system",
            "permissions",
            "effective_permissions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "is_system", "created_at", "updated_at"]
        # Per-organization code uniqueness is checked by the model inside the service.
        validators: list[Any] = []

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_effective_permissions(self, role: Role) -> list[str]:
        return available_roles(self).effective_permissions(role.pk)

    def create(self, validated_data: dict[str, Any]) -> Role:
        return services.role_create(actor=self.actor, organization=self.organization, **validated_data)

    def update(self, instance: Role, validated_data: dict[str, Any]) -> Role:
        permissions = validated_data.pop("permissions", None)
        return services.role_update(
            actor=self.actor, role=instance, organization=self.organization, permissions=permissions, **validated_data
        )


# --- Role assignments ------------------------------------------------------------------------------------------------


class RoleAssignmentSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    """A role held by a member, organization-wide or for a department subtree, for a period."""

    user = OrganizationMemberField(help_text="An active member of the organization; fixed once assigned.")
    role = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Role.objects.all(), help_text="A role of this organization or a system role; fixed once assigned."
    )
    department = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Department.objects.all(),
        required=False,
        allow_null=True,
        help_text="Limits the role to this department and its sub-departments.",
    )
    is_in_force = serializers.SerializerMethodField(
        help_text=(
            "Whether the assignment grants its role now: active, already valid, not expired, and its holder still an "
            "active member."
        )
    )

    class Meta:
        model = RoleAssignment
        fields = [
            "id",
            "user",
            "role",
            "department",
            "valid_from",
            "valid_until",
            "is_active",
            "is_in_force",
            "reason",
            "source",
            "granted_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "source", "granted_by", "created_at", "updated_at"]
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            # The person and the role are what the assignment is; a different one is a new assignment.
            fixed = {
                name: ["The person and the role of an assignment cannot change; revoke it and assign again."]
                for name in ("user", "role")
                if name in attrs and attrs[name] != getattr(self.instance, name)
            }
            if fixed:
                raise serializers.ValidationError(fixed)
        return attrs

    def get_is_in_force(self, assignment: RoleAssignment) -> bool:
        now = timezone.now()
        in_force = (
            assignment.is_active
            and (assignment.valid_from is None or assignment.valid_from <= now)
            and (assignment.valid_until is None or assignment.valid_until > now)
        )
        if not in_force:
            return False
        # The assignment of someone who is no longer a member grants nothing (the engine reads only active members),
        # even while it reads active, as those of memberships ended before ending one ended its assignments do.
        # Lists annotate ``holder_is_member`` (no query per row).
        holder_is_member = getattr(assignment, "holder_is_member", None)
        if holder_is_member is None:
            holder_is_member = Membership.objects.filter(
                organization_id=assignment.organization_id, user_id=assignment.user_id, is_active=True
            ).exists()
        return bool(holder_is_member)

    def create(self, validated_data: dict[str, Any]) -> RoleAssignment:
        return services.role_assign(actor=self.actor, organization=self.organization, **validated_data)

    def update(self, instance: RoleAssignment, validated_data: dict[str, Any]) -> RoleAssignment:
        validated_data.pop("user", None)
        validated_data.pop("role", None)
        return services.role_assignment_update(actor=self.actor, assignment=instance, **validated_data)


# --- Explain ---------------------------------------------------------------------------------------------------------


class ExplainQuerySerializer(OrganizationContextMixin, serializers.Serializer):
    """The question: may ``user`` use ``permission`` here — on one object when ``object_type`` and ``object_id`` name
    one, or anywhere in the organization otherwise."""

    user = OrganizationMemberField(help_text="An active member of the organization.")
    permission = serializers.CharField(help_text="A catalog permission, app_label.codename.")
    object_type = serializers.CharField(
        required=False, help_text="The object's model as app_label.model, e.g. organizations.department."
    )
    object_id = serializers.IntegerField(required=False, min_value=1, help_text="The object's id.")

    def validate_permission(self, value: str) -> Permission:
        found = explain.catalog_lookup({value})
        if value not in found:
            raise serializers.ValidationError(f"Unknown permission: {value}.", code="unknown")
        return found[value]

    def validate_object_type(self, value: str) -> type[models.Model]:
        model: type[models.Model] | None = None
        if value.count(".") == 1:
            try:
                model = apps.get_model(value)
            except (LookupError, ValueError):
                model = None
        if model is None or not issubclass(model, OrganizationOwnedModel):
            raise serializers.ValidationError(f"Unknown object type: {value}.", code="unknown")
        return model

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        model = attrs.get("object_type")
        object_id = attrs.get("object_id")
        if (model is None) != (object_id is None):
            missing = "object_id" if object_id is None else "object_type"
            raise serializers.ValidationError({missing: ["Give object_type and object_id together."]})
        if model is None:
            attrs["object"] = None
            return attrs
        permission: Permission = attrs["permission"]
        if (permission.content_type.app_label, permission.content_type.model) != (
            model._meta.app_label,
            model._meta.model_name,
        ):
            raise serializers.ValidationError(
                {"permission": [f"This permission does not apply to {model._meta.label_lower} objects."]}
            )
        # Only what the caller may see can be asked about: anything else reads as missing.
        visible = model._default_manager.visible_to(self.actor, self.organization, "view")
        attrs["object"] = visible.filter(pk=object_id).first()
        if attrs["object"] is None:
            raise serializers.ValidationError({"object_id": [f"No {model._meta.verbose_name} {object_id} here."]})
        return attrs


class RoleReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    name = serializers.CharField()


class DepartmentReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    code = serializers.CharField()
    path = serializers.CharField()


class GroupReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()


class ExplainReasonSerializer(serializers.Serializer):
    """Why (or why not): every key is present, null when it does not apply to this kind of reason."""

    kind = serializers.ChoiceField(choices=[*explain.GRANTING_KINDS, *explain.REFUSING_KINDS])
    grants = serializers.BooleanField(help_text="Whether this reason allows the permission.")
    message = serializers.CharField()
    assignment = serializers.IntegerField(allow_null=True, help_text="The role assignment this reason is about.")
    role = RoleReferenceSerializer(allow_null=True, help_text="The assigned role.")
    inherited_from = RoleReferenceSerializer(
        allow_null=True, help_text="The ancestor role that carries the permission, when not the role itself."
    )
    inheritance = serializers.ListField(
        child=serializers.CharField(), help_text="Role codes from the assigned role to the one carrying the permission."
    )
    department = DepartmentReferenceSerializer(
        allow_null=True, help_text="The department subtree the assignment is limited to."
    )
    group = GroupReferenceSerializer(allow_null=True, help_text="The group an object grant was given to.")
    object_id = serializers.IntegerField(allow_null=True, help_text="The object an object grant is on.")


@extend_schema_serializer(many=False)
class ExplainSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reasons = ExplainReasonSerializer(many=True)


# --- Object grants ---------------------------------------------------------------------------------------------------


class ObjectGrantSerializer(serializers.Serializer):
    """One permission on one object, granted to one user or one group."""

    permission = serializers.CharField(help_text="A permission on this kind of object, app_label.codename.")
    user = serializers.IntegerField(required=False, allow_null=True, help_text="The user it is granted to.")
    group = serializers.IntegerField(required=False, allow_null=True, help_text="The group it is granted to.")


class GranteeUserField(serializers.PrimaryKeyRelatedField):
    """Granting: an active member. Revoking: also a former member who still holds a grant on the object."""

    def get_queryset(self) -> QuerySet[Any]:
        organization = self.context["organization"]
        members = Q(memberships__organization=organization, memberships__is_active=True, is_active=True)
        if self.context.get("revoking"):
            user_grants, _group_grants = grant_tables(self.context["object"])
            holders = user_grants.objects.filter(content_object=self.context["object"]).values("user_id")
            return User.objects.filter(members | Q(pk__in=holders)).distinct()
        return User.objects.filter(members)


class GranteeGroupField(serializers.PrimaryKeyRelatedField):
    """A group with active members in the organization (or, revoking, one holding a grant on the object).

    Groups are installation-wide; one that touches no member of this organization reads as not found.
    """

    def get_queryset(self) -> QuerySet[Any]:
        organization = self.context["organization"]
        present = Q(user__memberships__organization=organization, user__memberships__is_active=True)
        if self.context.get("revoking"):
            _user_grants, group_grants = grant_tables(self.context["object"])
            holders = group_grants.objects.filter(content_object=self.context["object"]).values("group_id")
            return Group.objects.filter(present | Q(pk__in=holders)).distinct()
        return Group.objects.filter(present).distinct()


def grant_tables(obj: models.Model) -> tuple[Any, Any]:
    tables = grant_models_for(type(obj))
    assert tables is not None, f"{type(obj).__name__} objects cannot be shared"
    return tables


class ObjectGrantInputSerializer(serializers.Serializer):
    """Grant (or revoke) ``permission`` on this object to (from) exactly one ``user`` or one ``group``."""

    permission = serializers.CharField(help_text="A permission on this kind of object, app_label.codename.")
    user = GranteeUserField(
        required=False,
        allow_null=True,
        queryset=User.objects.all(),
        error_messages={"does_not_exist": "User {pk_value} is not an active member here."},
    )
    group = GranteeGroupField(
        required=False,
        allow_null=True,
        queryset=Group.objects.all(),
        error_messages={"does_not_exist": "Group {pk_value} does not exist here."},
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("user") is None) == (attrs.get("group") is None):
            raise serializers.ValidationError("Name exactly one user or one group.", code="invalid")
        return attrs
