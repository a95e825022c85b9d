from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import services, signin_limits
from accounts.models import User
from erp.admin import ServiceAdmin, rows_in_organizations
from organizations.models import Membership
from rbac import engine


def memberships_in_scope(user: Any, permission: str) -> QuerySet[Membership]:
    """Active memberships on which ``user`` holds ``permission``: every one of an organization where they hold it
    organization-wide, the members of their departments' subtrees where they hold it for departments only."""
    reach = Q()
    for organization_id in engine.member_organization_ids(user):
        scope = engine.scope_for(user, organization_id, permission)
        if scope.is_organization_wide:
            reach |= Q(organization_id=organization_id)
        for path in sorted(scope.department_paths):
            reach |= Q(organization_id=organization_id, department__path__startswith=path)
    if not reach:
        return Membership.objects.none()
    return Membership.objects.filter(reach, is_active=True)


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
    list_display = ["email", "full_name", "is_active", "is_staff", "is_superuser", "sign_in_lock", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    readonly_fields = ["password_status", "sign_in_lock", "oidc_subject", "date_joined", "last_login", "updated_at"]
    fieldsets = [
        (None, {"fields": ["email", "password_status"]}),
        ("Profile", {"fields": ["full_name", "phone", "locale", "time_zone"]}),
        ("Access", {"fields": ["is_active", "sign_in_lock", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Identity and dates", {"fields": ["oidc_subject", "date_joined", "last_login", "updated_at"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "usable_password", "password1", "password2"]}),
    ]
    filter_horizontal = ["groups", "user_permissions"]
    actions = ["unlock"]

    @admin.display(description="sign-in")
    def sign_in_lock(self, obj: User) -> str:
        """Whether too many failed sign-ins lock the account, and until when (its address may be locked as well: see
        the access attempts)."""
        if obj.pk is None:
            return "—"
        failures = getattr(obj, "recent_sign_in_failures", None)
        if failures is not None and failures < settings.LOGIN_FAILURE_LIMIT:
            return "open"
        end = signin_limits.account_lock_end(obj.email)
        if end is None:
            return "open"
        return f"locked until {timezone.localtime(end):%Y-%m-%d %H:%M %Z}"

    @admin.action(description="Unlock the selected accounts (after too many failed sign-ins)", permissions=["change"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        unlocked = [user for user in queryset if self.has_change_permission(request, user)]
        for user in unlocked:
            services.user_unlock(actor=request.user, user=user)
        skipped = queryset.count() - len(unlocked)
        self.message_user(request, f"Unlocked {len(unlocked)} account(s); each unlock is a security event.")
        if skipped:
            self.message_user(request, f"{skipped} account(s) you may not change were left alone.", messages.WARNING)

    @admin.display(description="password")
    def password_status(self, obj: User) -> str:
        if obj.pk is None:
            return "—"
        # Django's UserAdmin names this URL after auth.User whatever the user model is.
        url = reverse(f"{self.admin_site.name}:auth_user_password_change", args=[obj.pk])
        state = "set" if obj.has_usable_password() else "not set (signs in through the identity provider)"
        return format_html('{} · <a href="{}">change the password</a>', state, url)

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The account's recent failed sign-ins, so that the list tells locked accounts without a query per row.
        recent = (
            AccessAttempt.objects.filter(
                username=Lower(OuterRef("email")), attempt_time__gte=timezone.now() - signin_limits.cool_off()
            )
            .order_by()
            .values("username")
            .annotate(total=Sum("failures_since_start"))
            .values("total")
        )
        queryset = super().get_queryset(request).annotate(recent_sign_in_failures=Subquery(recent[:1]))
        if request.user.is_superuser:
            return queryset
        # Staff see the people of their own organizations: those whose membership the engine lets them view, and those
        # they may view as accounts (accounts.view_user) in a whole organization or in their departments' subtrees.
        memberships = rows_in_organizations(
            Membership.objects.filter(is_active=True),
            request.user,
            lambda organization_id: Membership.objects.visible_to(request.user, organization_id, "view"),
        )
        people = (
            memberships.order_by()
            .values("user_id")
            .union(memberships_in_scope(request.user, "accounts.view_user").order_by().values("user_id"))
        )
        return queryset.filter(pk__in=people)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # People are picked in forms (a department's manager, an assignment's holder) by whoever may see memberships;
        # changing an account still needs accounts.change_user.
        return super().has_view_permission(request, obj) or request.user.has_perm("organizations.view_membership")

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
        return self._may(request, "change", obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, "delete", obj) and super().has_delete_permission(request, obj)

    def _may(self, request: HttpRequest, action: str, obj: User | None) -> bool:
        """For one account, staff need the permission where that person is a member; never on a superuser's account
        (a staff member who could edit a superuser's email or password could take over the platform operator)."""
        if obj is None or request.user.is_superuser:
            return True
        if obj.is_superuser:
            return False
        return memberships_in_scope(request.user, f"accounts.{action}_user").filter(user_id=obj.pk).exists()


class SuperusersOnly:
    """Sign-in attempts name accounts and addresses of every organization: platform operators' business only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting attempts would unlock without a security event: the "Unlock" action does it with one.
        return False


class SignInAttemptAdmin(SuperusersOnly, AccessAttemptAdmin):
    """Failed sign-ins of the last ``LOGIN_LOCKOUT_SECONDS`` per account, address and browser (django-axes)."""

    actions = ["cleanup_expired_attempts", "unlock"]

    @admin.action(description="Unlock the accounts and addresses of the selected attempts", permissions=["view"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        usernames = sorted({username for username in queryset.values_list("username", flat=True) if username})
        addresses = sorted({address for address in queryset.values_list("ip_address", flat=True) if address})
        services.sign_in_locks_reset(actor=request.user, emails=usernames, ip_addresses=addresses)
        self.message_user(request, f"Unlocked {len(usernames)} account(s) and {len(addresses)} address(es).")


class SignInLogAdmin(SuperusersOnly, AccessLogAdmin):
    """Axes' sign-in log, for platform operators only."""


class SignInFailureLogAdmin(SuperusersOnly, AccessFailureLogAdmin):
    """Axes' failed sign-in log, for platform operators only."""


sign_in_admins: list[tuple[type[Any], type[admin.ModelAdmin[Any]]]] = [
    (AccessAttempt, SignInAttemptAdmin),
    (AccessLog, SignInLogAdmin),
    (AccessFailureLog, SignInFailureLogAdmin),
]
for model, model_admin in sign_in_admins:
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
