from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from accounts import services
from accounts.models import User
from erp.admin import ServiceAdmin, member_organization_ids


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserChangeForm(forms.ModelForm):
    """Edits an account without ever showing its password hash."""

    class Meta:
        model = User
        fields = ("email", "full_name", "phone", "locale", "time_zone", "is_active", "is_staff", "is_superuser")


@admin.register(User)
class UserAdmin(ServiceAdmin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ["email", "full_name", "is_active", "is_staff", "is_superuser", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    readonly_fields = ["password_status", "oidc_subject", "date_joined", "last_login", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password_status"]}),
        ("Profile", {"fields": ["full_name", "phone", "locale", "time_zone"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Identity and dates", {"fields": ["oidc_subject", "date_joined", "last_login", "updated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "usable_password", "password1", "password2"]}),
    ]
    filter_horizontal = ["groups", "user_permissions"]

    @admin.display(description="password")
    def password_status(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        # Django's UserAdmin names this URL after auth.User whatever the user model is.
        url = reverse(f"{self.admin_site.name}:auth_user_password_change", args=[obj.pk])
        state = "set" if obj.has_usable_password() else "not set (signs in through the identity provider)"
        return format_html('{} · <a href="{}">change the password</a>', state, url)

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        # Staff see the people of their own organizations only.
        return queryset.filter(memberships__organization__in=member_organization_ids(request)).distinct()

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)  # the creation form validated and hashed the password
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in services.ADMIN_FIELDS}
        services.user_update(actor=request.user, user=obj, **changes)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(actor=request.user, user=obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Only superusers make superusers or hand out permissions: staff could otherwise grant themselves anything.
            readonly += ["is_superuser", "groups", "user_permissions"]
        return readonly

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A staff member who could edit a superuser (email, password) could take over the platform operator's account.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)
