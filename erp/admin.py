"""Admin plumbing shared by every context: writes through services, guards reported as messages, tenant scoping."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from erp.exceptions import ConflictError


def member_organization_ids(request: HttpRequest) -> QuerySet[Any]:
    """The organizations a staff user belongs to, as a subquery (never an id list)."""
    from organizations.models import Membership

    return Membership.objects.filter(user_id=request.user.pk, is_active=True).values("organization_id")


class ServiceAdmin(admin.ModelAdmin):
    """Saves and deletes through the context's services; their business guards come back as error messages."""

    def _refuse(self, request: HttpRequest, error: ConflictError | ValidationError) -> HttpResponse:
        message = error.message if isinstance(error, ConflictError) else "; ".join(error.messages)
        self.message_user(request, message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except (ConflictError, ValidationError) as error:
            return self._refuse(request, error)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)
        except (ConflictError, ValidationError) as error:
            return self._refuse(request, error)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            # Bulk actions and list edits are all or nothing: a refused row rolls back the rows (and the log entries)
            # handled before it, as the change and delete views do for their one object.
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().changelist_view(request, *args, **kwargs)
        except (ConflictError, ValidationError) as error:
            return self._refuse(request, error)

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[Any], list[Any]]:
        # Deletion is a service call (usually a soft delete with its own guards), not Django's cascade. The bulk action
        # relies on this answer for per-object permissions, so objects this user may not delete are reported here.
        objs = list(objs)
        perms_needed = {str(self.opts.verbose_name) for obj in objs if not self.has_delete_permission(request, obj)}
        return [str(obj) for obj in objs], {}, perms_needed, []

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must delete through a service")


class OrganizationScopedAdmin(ServiceAdmin):
    """Staff who are not superusers see and choose only rows of the organizations they belong to."""

    organization_lookup = "organization"
    scoped_foreign_keys: dict[str, str] = {}  # field name -> lookup of its organization

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_lookup}__in": member_organization_ids(request)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and field.queryset is not None and not request.user.is_superuser:
            lookup = self.scoped_foreign_keys.get(db_field.name)
            if lookup is not None:
                field.queryset = field.queryset.filter(**{f"{lookup}__in": member_organization_ids(request)})
        return field
