"""Roles and role assignments in the back office: every write goes through ``rbac.services`` (no escalation).

Staff who are not superusers see the roles available in their organizations (their own and the system templates) and
the assignments the engine lets them view; system roles are read-only to them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from erp.admin import OrganizationScopedAdmin, refusals_as_messages
from rbac import services
from rbac.models import Role, RoleAssignment
from rbac.system_roles import PLATFORM_PERMISSIONS, catalog_apps


def _changes(form: forms.ModelForm, fields: set[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}


def _listing(names: set[str]) -> str:
    return format_html_join(", ", "{}", ((name,) for name in sorted(names))) if names else "—"


def catalog_permissions() -> QuerySet[Permission]:
    """The permissions organizations can put into roles: those of the catalog apps, without the platform ones."""
    platform = Q()
    for name in PLATFORM_PERMISSIONS:
        app_label, codename = name.split(".", 1)
        platform |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(content_type__app_label__in=catalog_apps()).exclude(platform)


class PermissionChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{services.permission_label(obj)} — {obj.name}"


class RoleForm(forms.ModelForm):
    """A role with its own permissions (inherited ones come from the parent and are shown apart)."""

    own_permissions = PermissionChoiceField(
        queryset=Permission.objects.none(),
        required=False,
        label="Permissions",
        widget=FilteredSelectMultiple("permissions", is_stacked=False),
        help_text="Granted by this role itself; the parent role's permissions are inherited on top.",
    )

    class Meta:
        model = Role
        fields = ["organization", "code", "name", "description", "parent"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.role_permissions.values("permission_id") if self.instance.pk else []
        # A role's current permissions stay choosable even outside the catalog: saving the form must not drop them.
        permissions_field: Any = self.fields["own_permissions"]
        permissions_field.queryset = (
            (catalog_permissions() | Permission.objects.filter(pk__in=current))
            .select_related("content_type")
            .order_by("content_type__app_label", "codename")
        )
        if self.instance.pk:
            permissions_field.initial = list(self.instance.role_permissions.values_list("permission_id", flat=True))
        if "organization" in self.fields:
            # Roles made here belong to an organization; system roles come from ``manage.py sync_system_roles``.
            self.fields["organization"].required = True


@admin.register(Role)
class RoleAdmin(OrganizationScopedAdmin):
    form = RoleForm
    list_display = ["code", "name", "organization", "parent", "is_system"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "is_system"]
    search_fields = ["code", "name"]
    list_select_related = ["organization", "parent"]
    ordering = ["-is_system", "organization__name", "code"]
    fields = ["organization", "code", "name", "description", "parent", "own_permissions", "inherited_permissions"]
    readonly_fields = ["is_system", "inherited_permissions", "created_at", "updated_at", "created_by", "updated_by"]

    def get_fields(self, request: HttpRequest, obj: Role | None = None) -> Any:
        fields = list(super().get_fields(request, obj))
        return [*fields, "is_system", "created_at", "created_by", "updated_at", "updated_by"] if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Role | None = None) -> Any:
        # A role never changes organization: its assignments and children belong to the first one.
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    @admin.display(description="permissions")
    def own_permissions(self, obj: Role) -> str:
        # Shown when the page is read-only (system roles for staff, viewers).
        labels = {
            services.permission_label(permission) for permission in obj.permissions.select_related("content_type")
        }
        return _listing(labels)

    @admin.display(description="inherited permissions")
    def inherited_permissions(self, obj: Role) -> str:
        return _listing(services.role_permission_names(obj.parent) if obj.pk and obj.parent else set())

    def has_object_permission(self, request: HttpRequest, action: str, obj: Any) -> bool:
        if obj.organization_id is None:
            # System templates: everyone who may view roles sees them; only superusers (not here) change them.
            return action == "view" and super().has_view_permission(request)
        return super().has_object_permission(request, action, obj)

    def save_model(self, request: HttpRequest, obj: Role, form: forms.ModelForm, change: bool) -> None:
        permissions = list(form.cleaned_data["own_permissions"])
        with refusals_as_messages():
            if change:
                services.role_update(
                    actor=request.user,
                    role=obj,
                    organization=obj.organization,
                    permissions=permissions,
                    **_changes(form, services.ROLE_FIELDS),
                )
            else:
                created = services.role_create(
                    actor=request.user,
                    organization=form.cleaned_data["organization"],
                    code=form.cleaned_data["code"],
                    name=form.cleaned_data["name"],
                    permissions=permissions,
                    description=form.cleaned_data["description"],
                    parent=form.cleaned_data["parent"],
                )
                obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Role) -> None:
        with refusals_as_messages():
            services.role_delete(actor=request.user, role=obj)


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(OrganizationScopedAdmin):
    list_display = ["user", "role", "organization", "department", "valid_from", "valid_until", "is_active", "source"]
    list_filter = [
        ("organization", admin.RelatedOnlyFieldListFilter),
        ("role", admin.RelatedOnlyFieldListFilter),
        ("department", admin.RelatedOnlyFieldListFilter),
        "is_active",
        "source",
    ]
    search_fields = ["user__email", "user__full_name", "role__code", "reason"]
    list_select_related = ["user", "role", "organization", "department"]
    autocomplete_fields = ["user", "department"]
    fields = ["organization", "user", "role", "department", "valid_from", "valid_until", "is_active", "reason"]
    readonly_fields = ["source", "granted_by", "created_at", "updated_at", "created_by", "updated_by"]

    def get_fields(self, request: HttpRequest, obj: RoleAssignment | None = None) -> Any:
        if obj is None:
            # A new assignment is active; it can be suspended afterwards.
            return [name for name in self.fields if name != "is_active"]
        return [*self.fields, *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: RoleAssignment | None = None) -> Any:
        # Who holds which role where is the assignment itself: to change it, revoke and assign again.
        return [*self.readonly_fields, "organization", "user", "role"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RoleAssignment, form: forms.ModelForm, change: bool) -> None:
        with refusals_as_messages():
            if change:
                services.role_assignment_update(
                    actor=request.user, assignment=obj, **_changes(form, services.ASSIGNMENT_FIELDS)
                )
            else:
                created = services.role_assign(
                    actor=request.user,
                    organization=form.cleaned_data["organization"],
                    user=form.cleaned_data["user"],
                    role=form.cleaned_data["role"],
                    department=form.cleaned_data.get("department"),
                    valid_from=form.cleaned_data.get("valid_from"),
                    valid_until=form.cleaned_data.get("valid_until"),
                    reason=form.cleaned_data.get("reason", ""),
                )
                obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: RoleAssignment) -> None:
        with refusals_as_messages():
            services.role_revoke(actor=request.user, assignment=obj)
