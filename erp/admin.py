"""Admin plumbing shared by every context: writes through services, guards reported as messages, tenant scoping.

For staff who are not superusers, what the admin shows and allows comes from the permission engine (``rbac.engine``):
changelists, change forms, inlines, foreign-key choices and autocompletes list only the rows the user may view in
their organizations, object pages ask ``user.has_perm(permission, obj)``, and every saved row is checked again, inside
the transaction, against what the user may add or change.

Every admin keeps simple-history's history pages, for the objects the user may view (a deleted object: when its last
version belongs to one of the user's organizations and they could have viewed it); anything else is 404. Versions are
read, never reverted from there (a revert would bypass the services), and read like the audit pages: choices by their
label ("High → Urgent"), lists by their items, the author by the rule of the audit pages and linked only when the viewer
may open that account here. Change forms take an optional reason for the change, recorded in the history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper

from audit import selectors
from audit.context import REASON_MAX_LENGTH, audit_context
from audit.history import display_value
from erp.exceptions import ConflictError
from rbac import engine


@contextmanager
def refusals_as_messages() -> Iterator[None]:
    """A service's own refusal (e.g. "you cannot hand out permissions you do not hold") is shown like its other guards.

    Only around service calls: the admin's own permission checks still answer 403.
    """
    try:
        yield
    except PermissionDenied as error:
        raise ValidationError(str(error) or "You are not allowed to do this.", code="permission_denied") from error


def rows_in_organizations(queryset: QuerySet[Any], user: Any, rows_in: Callable[[int], QuerySet[Any]]) -> QuerySet[Any]:
    """The rows of ``queryset`` that ``rows_in(organization_id)`` allows in any of the user's organizations.

    One statement: the organizations' parts are UNIONed into a single ``pk IN (…)`` subquery — never an id list built
    in Python, never an OR of subqueries.
    """
    parts = [
        rows_in(organization_id).order_by().values("pk") for organization_id in engine.member_organization_ids(user)
    ]
    parts = [part for part in parts if not part.query.is_empty()]
    if not parts:
        return queryset.none()
    first, *others = parts
    return queryset.filter(pk__in=first.union(*others) if others else first)


def limit_to_viewable(admin_site: admin.AdminSite, request: HttpRequest, model: type[models.Model], field: Any) -> Any:
    """Restrict a relation's choices to the rows the related model's admin shows this user."""
    if field is None or getattr(field, "queryset", None) is None or request.user.is_superuser:
        return field
    try:
        related_admin = admin_site.get_model_admin(model)
    except NotRegistered:
        return field
    field.queryset = field.queryset.filter(pk__in=related_admin.get_queryset(request).order_by().values("pk"))
    return field


CHANGE_REASON_FIELD = "_change_reason"


def change_reason(request: HttpRequest) -> str:
    """The reason typed in the change form's "Reason for change" field (empty when none)."""
    if request.method != "POST":
        return ""
    return str(request.POST.get(CHANGE_REASON_FIELD, "")).strip()[:REASON_MAX_LENGTH]


class ReadableHistoryContext(HistoricalRecordContextHelper):
    """The admin history's old and new values as the audit pages show them (related rows stay simple-history's)."""

    def prepare_delta_change_value(self, change: ModelChange, value: Any) -> Any:
        model_field = self.model._meta.get_field(change.field)
        if model_field.is_relation:
            return super().prepare_delta_change_value(change, value)
        return display_value(model_field, value)


class ServiceAdmin(SimpleHistoryAdmin):
    """Saves and deletes through the context's services; their business guards come back as error messages."""

    change_form_template: Any = "audit/admin_change_form.html"  # adds the "Reason for change" field
    object_history_list_template = "audit/admin_history_list.html"

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> Any:
        return ReadableHistoryContext(self.model, historical_record)

    def set_history_delta_changes(self, request: HttpRequest, historical_records: Any, **options: Any) -> None:
        super().set_history_delta_changes(request, historical_records, **options)
        self.describe_authors(request, list(historical_records))

    def describe_authors(self, request: HttpRequest, records: list[Any]) -> None:
        """Give each version ``author`` (shown as on the audit pages) and ``author_url`` (set only when this viewer may
        open that account in the admin). Two queries, whatever the number of versions."""
        user_ids = {record.history_user_id for record in records if record.history_user_id is not None}
        organization_id = next((record.history_organization_id for record in records), None)
        viewer: Any = request.user
        known = selectors.people(user_ids, organization=organization_id or 0, viewer=viewer) if user_ids else {}
        openable: set[int] = set()
        user_model = get_user_model()
        user_admin = self.admin_site._registry.get(user_model)
        if user_ids and user_admin is not None and user_admin.has_view_permission(request):
            openable = set(user_admin.get_queryset(request).filter(pk__in=user_ids).values_list("pk", flat=True))
        for record in records:
            record.author = selectors.actor(record.history_user_id, record.history_user_subject, known)
            record.author_url = (
                reverse(
                    f"{self.admin_site.name}:{user_model._meta.app_label}_{user_model._meta.model_name}_change",
                    args=[record.history_user_id],
                )
                if record.history_user_id in openable
                else None
            )

    def _refuse(self, request: HttpRequest, error: ConflictError | ValidationError) -> HttpResponse:
        message = error.message if isinstance(error, ConflictError) else "; ".join(error.messages)
        self.message_user(request, message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            # The reason goes where every version reads it from: the audit context around the save.
            with audit_context(reason=change_reason(request)):
                return super().changeform_view(request, *args, **kwargs)
        except (ConflictError, ValidationError) as error:
            return self._refuse(request, error)

    def history_subject(self, request: HttpRequest, object_id: str) -> Any:
        """The object whose history may be shown: one this admin lists for the user or — once deleted (or soft
        deleted) — its last version, when that belongs to one of the user's organizations and the user could view it
        there. Anything else, another organization's object included, reads as missing (404)."""
        pk = unquote(object_id)
        # A live row this admin lists is the answer; otherwise its last version decides below.
        with contextlib.suppress(self.model.DoesNotExist, ValueError, ValidationError):
            return self.get_queryset(request).get(pk=pk)
        history = getattr(self.model, self.model._meta.simple_history_manager_attribute)
        try:
            latest = (
                history.filter(**{self.model._meta.pk.attname: pk}).order_by("-history_date", "-history_id").first()
            )
        except (ValueError, ValidationError):
            latest = None
        if latest is None:
            raise Http404
        if request.user.is_superuser:
            return latest.instance
        organizations = engine.member_organization_ids(request.user)  # type: ignore[arg-type]
        if latest.history_organization_id not in organizations:
            raise Http404
        if self.model._default_manager.filter(pk=pk).exists():
            raise Http404  # it still exists, and this user may not see it
        if not self.has_view_or_change_permission(request, latest.instance):
            raise Http404
        return latest.instance

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self.history_subject(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method != "GET":
            # simple-history would save the old version through the form, bypassing the services and their guards.
            raise PermissionDenied
        self.history_subject(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

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
    """Staff who are not superusers see, choose and change only what the permission engine allows them.

    Superusers are platform operators and see every organization. Subclasses with rows that are not plain tenant rows
    override two hooks: ``rows_in`` (the rows of one organization the user may act on) and ``has_object_permission``.
    """

    def rows_in(self, request: HttpRequest, organization_id: int, action: str) -> QuerySet[Any]:
        """The rows of one organization on which the user holds ``action``: the model's ``visible_to`` entry point."""
        return self.model._default_manager.visible_to(request.user, organization_id, action)

    def has_object_permission(self, request: HttpRequest, action: str, obj: Any) -> bool:
        permission = f"{self.opts.app_label}.{get_permission_codename(action, self.opts)}"
        return request.user.has_perm(permission, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return rows_in_organizations(
            queryset, request.user, lambda organization_id: self.rows_in(request, organization_id, "view")
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self.has_object_permission(request, "view", obj) or self.has_object_permission(request, "change", obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self.has_object_permission(request, "change", obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self.has_object_permission(request, "delete", obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return limit_to_viewable(self.admin_site, request, db_field.remote_field.model, field)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        return limit_to_viewable(self.admin_site, request, db_field.remote_field.model, field)

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if request.user.is_superuser:
            return
        # Write re-check, still inside the admin's transaction: the row as saved (a department moved under another
        # parent, an assignment in another organization) must lie where the user may add or change rows; if not,
        # PermissionDenied rolls the whole change back.
        saved = self.model._default_manager.get(pk=form.instance.pk)
        if not self.has_object_permission(request, "change" if change else "add", saved):
            raise PermissionDenied


class OrganizationScopedTabularInline(admin.TabularInline):
    """An inline that lists only the rows the user may view (the same rule as ``OrganizationScopedAdmin``)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        manager: Any = self.model._default_manager
        return rows_in_organizations(
            queryset, request.user, lambda organization_id: manager.visible_to(request.user, organization_id, "view")
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return limit_to_viewable(self.admin_site, request, db_field.remote_field.model, field)
