from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from erp.admin import OrganizationScopedAdmin, OrganizationScopedTabularInline, refusals_as_messages
from erp.exceptions import ConflictError
from organizations import invitations, services
from organizations.models import Department, Invitation, InvitationStatus, Membership, Organization
from rbac import engine


def _changes(form: ModelForm, fields: set[str]) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}


class DepartmentInline(OrganizationScopedTabularInline):
    model = Department
    fields = ("code", "name", "parent", "depth", "manager", "display_order")
    readonly_fields = fields
    ordering = ["path"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # departments are created on their own page, where the tree rules are checked


class MembershipInline(OrganizationScopedTabularInline):
    model = Membership
    fields = ("user", "department", "job_title", "employee_number", "is_active", "joined_on")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    """An organization's own row is seen by whoever holds ``view_organization`` in it, even for a department only.

    Changing it (its settings apply to everything inside) needs ``change_organization`` for the whole organization.
    """

    list_display = ["name", "slug", "code", "parent", "is_active", "currency_code", "time_zone"]
    list_filter = ["is_active", "currency_code"]
    search_fields = ["name", "slug", "code"]
    readonly_fields = ["created_at", "updated_at", "created_by", "updated_by"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "code", "parent", "is_active"]}),
        (
            "Settings",
            {
                "fields": [
                    "time_zone",
                    "currency_code",
                    "fiscal_year_start_month",
                    "max_department_depth",
                    "history_retention_days",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "created_by", "updated_at", "updated_by"], "classes": ["collapse"]}),
    ]
    inlines = [DepartmentInline, MembershipInline]

    def rows_in(self, request: HttpRequest, organization_id: int, action: str) -> QuerySet[Organization]:
        if self._holds(request, organization_id, action):
            return Organization.objects.filter(pk=organization_id)
        return Organization.objects.none()

    def has_object_permission(self, request: HttpRequest, action: str, obj: Any) -> bool:
        return self._holds(request, obj.pk, action)

    def _holds(self, request: HttpRequest, organization_id: int, action: str) -> bool:
        permission = f"organizations.{action}_organization"
        if action == "view":
            return engine.holds_here(request.user, organization_id, permission)
        return engine.scope_for(request.user, organization_id, permission).is_organization_wide

    def save_model(self, request: HttpRequest, obj: Organization, form: ModelForm, change: bool) -> None:
        if change:
            services.organization_update(
                actor=request.user, organization=obj, **_changes(form, services.ORGANIZATION_FIELDS)
            )
        else:
            created = services.organization_create(
                actor=request.user,
                **{name: form.cleaned_data[name] for name in services.ORGANIZATION_FIELDS if name in form.cleaned_data},
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Organization) -> None:
        services.organization_delete(actor=request.user, organization=obj)


@admin.register(Department)
class DepartmentAdmin(OrganizationScopedAdmin):
    list_display = ["indented_name", "code", "organization", "parent", "manager", "headcount_limit", "display_order"]
    # Related-only filters: a plain one would list every organization's name to staff scoped to their own.
    list_filter = [
        ("organization", admin.RelatedOnlyFieldListFilter),
        ("parent", admin.RelatedOnlyFieldListFilter),
        "depth",
    ]
    search_fields = ["code", "name", "path"]
    ordering = ["organization__name", "path"]
    list_select_related = ["organization", "parent", "manager"]
    readonly_fields = ["path", "depth", "created_at", "updated_at", "created_by", "updated_by"]
    autocomplete_fields = ["manager"]
    fields = ["organization", "code", "name", "parent", "manager", "headcount_limit", "display_order", *readonly_fields]

    @admin.display(description="name", ordering="path")
    def indented_name(self, obj: Department) -> str:
        return f"{'— ' * (obj.depth - 1)}{obj.name}"

    def get_readonly_fields(self, request: HttpRequest, obj: Department | None = None) -> Any:
        # A department never changes organization: its subtree, members and history belong to the first one.
        return [*self.readonly_fields, "organization"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Department, form: ModelForm, change: bool) -> None:
        if change:
            saved = services.department_update(
                actor=request.user, department=obj, **_changes(form, services.DEPARTMENT_FIELDS)
            )
        else:
            saved = services.department_create(
                actor=request.user,
                organization=form.cleaned_data["organization"],
                **{name: form.cleaned_data[name] for name in services.DEPARTMENT_FIELDS if name in form.cleaned_data},
            )
        obj.pk, obj.path, obj.depth = saved.pk, saved.path, saved.depth

    def delete_model(self, request: HttpRequest, obj: Department) -> None:
        services.department_delete(actor=request.user, department=obj)


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    """Memberships change and end through the services, under the same rules as in the API: nobody acts on a
    membership carrying access they could not have given, ending one ends its access, an ended one is not restored and
    the last administrator stays (those refusals come back as error messages)."""

    list_display = ["user", "organization", "department", "job_title", "employee_number", "is_active", "source"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "is_active", "source"]
    search_fields = ["user__email", "user__full_name", "employee_number", "job_title"]
    list_select_related = ["user", "organization", "department"]
    autocomplete_fields = ["user"]
    readonly_fields = ["source", "created_at", "updated_at", "created_by", "updated_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return [*self.readonly_fields, "organization", "user"] if obj is not None else self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Picking an account here would attach an existing person without their consent: staff invite instead
        # (the API's invitations/). Platform operators keep the back-office way for repairs.
        return bool(request.user.is_superuser) and super().has_add_permission(request)

    def save_model(self, request: HttpRequest, obj: Membership, form: ModelForm, change: bool) -> None:
        if change:
            with refusals_as_messages():
                services.membership_update(
                    actor=request.user, membership=obj, **_changes(form, services.MEMBERSHIP_FIELDS)
                )
        else:
            created = services.membership_create(
                actor=request.user,
                organization=form.cleaned_data["organization"],
                user=form.cleaned_data["user"],
                **{name: form.cleaned_data[name] for name in services.MEMBERSHIP_FIELDS if name in form.cleaned_data},
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        with refusals_as_messages():
            services.membership_end(actor=request.user, membership=obj)


@admin.register(Invitation)
class InvitationAdmin(OrganizationScopedAdmin):
    """Invitations are sent through the API and never edited here; a pending one can be revoked (the same service)."""

    list_display = ["email", "organization", "department", "role", "status", "invited_by", "expires_at", "accepted_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter), "status"]
    search_fields = ["email"]
    list_select_related = ["organization", "department", "role", "invited_by"]
    ordering = ["-created_at"]
    actions = ["revoke"]
    fields = [
        "organization",
        "email",
        "department",
        "role",
        "job_title",
        "status",
        "invited_by",
        "sent_at",
        "send_count",
        "expires_at",
        "accepted_by",
        "accepted_at",
        "closed_at",
        "created_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) or request.user.has_perm(invitations.MANAGE_MEMBERS)

    @admin.action(description="Revoke the selected pending invitations", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked = 0
        for invitation in queryset.filter(status=InvitationStatus.PENDING):
            try:
                invitations.invitation_revoke(actor=request.user, invitation=invitation)
            except (PermissionDenied, ConflictError, ValidationError) as error:
                # One refusal is reported and the rest of the selection still goes through.
                reason = error.message if isinstance(error, ConflictError) else "; ".join(_messages_of(error))
                self.message_user(request, f"{invitation.email}: {reason}", messages.ERROR)
            else:
                revoked += 1
        self.message_user(request, f"{revoked} invitation(s) revoked.", messages.SUCCESS)


def _messages_of(error: PermissionDenied | ValidationError) -> list[str]:
    if isinstance(error, ValidationError):
        return error.messages
    return [str(error) or "You are not allowed to do this."]
