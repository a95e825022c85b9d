"""The auditor's pages under ``/audit/``: server-rendered, in the admin's look, usable without JavaScript.

Access, for every page of an organization: sign-in required (else the admin's sign-in page); an organization the user
is not an active member of (superusers excepted) is 404; a member without ``audit.view_history`` for the whole
organization is 403. Both refusals are recorded as security events, as on the API. What a page shows comes from
``audit.selectors``, which reads one organization only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse

from accounts.models import User
from audit import selectors
from audit.events import record_denial, record_event, record_superuser_access
from audit.models import Action, SecurityEventKind
from organizations.models import Organization
from organizations.selectors import organization_with_access
from rbac import engine

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 100
EXPORT_BATCH_SIZE = 500


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """Render an audit page with what the admin's base template expects (no app list: nothing to query)."""
    base = {
        "site_header": admin.site.site_header,
        "site_title": admin.site.site_title,
        "site_url": admin.site.site_url,
        "has_permission": request.user.is_active and request.user.is_staff,
        "is_nav_sidebar_enabled": False,
        "is_popup": False,
    }
    return render(request, template, {**base, **context}, status=status)


def _refuse(request: HttpRequest, user: User, organization: Organization | None, status: int) -> None:
    record_denial(
        actor=user,
        organization=organization,
        method=request.method or "",
        path=request.path,
        status=status,
        permission=selectors.VIEW_HISTORY,
    )


def enter(request: HttpRequest, slug: str) -> tuple[User, Organization]:
    """The signed-in user and the organization at ``slug``, if they may read its history (else 404 or 403)."""
    user = request.user
    assert isinstance(user, User)
    organization = organization_with_access(user=user, slug=slug)
    if organization is None:
        _refuse(request, user, None, 404)
        raise Http404("No such organization.")
    if not engine.scope_for(user, organization, selectors.VIEW_HISTORY).is_organization_wide:
        _refuse(request, user, organization, 403)
        raise PermissionDenied("You may not read this organization's history.")
    if user.is_superuser and not organization.is_member:  # type: ignore[attr-defined]
        record_superuser_access(user, organization)
    return user, organization


def audited_or_404(label: str) -> selectors.AuditedModel:
    audited = selectors.audited_model(label)
    if audited is None:
        raise Http404("No such model.")
    return audited


def object_id_or_404(audited: selectors.AuditedModel, raw: str) -> Any:
    try:
        return audited.object_id(raw)
    except ValidationError as error:
        raise Http404("No such object.") from error


def _with(request: HttpRequest, **changes: Any) -> str:
    """The current query string with some parameters replaced (``None`` drops one)."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return "?" + query.urlencode() if query else "?"


# --- Forms ----------------------------------------------------------------------------------------------------------


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


def _person_choices(organization: Organization, empty: str) -> list[tuple[str, str]]:
    return [("", empty)] + [
        (str(person.id), person.display) for person in selectors.organization_people(organization=organization)
    ]


class ChangeSearchForm(forms.Form):
    """The change search's filters (GET); ``until`` is exclusive."""

    model = forms.ChoiceField(required=False)
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    user = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Changed by")
    since = forms.DateTimeField(required=False, widget=DateTimeInput, label="From")
    until = forms.DateTimeField(required=False, widget=DateTimeInput, label="Until (exclusive)")
    field = forms.RegexField(
        regex=r"^[a-z_][a-z0-9_]{0,62}$",
        required=False,
        label="Field changed",
        error_messages={"invalid": "Use a field name such as name or parent."},
    )
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Action.choices])
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        models = selectors.audited_models().values()
        self.fields["model"].choices = [("", "Any model")] + [(m.label, m.verbose_name) for m in models]  # type: ignore[attr-defined]
        self.fields["user"].choices = _person_choices(organization, "Anyone")  # type: ignore[attr-defined]

    def clean_cursor(self) -> selectors.ChangePosition | None:
        cursor = self.cleaned_data.get("cursor")
        if not cursor:
            return None
        try:
            return selectors.ChangePosition.decode(cursor)
        except selectors.InvalidCursorError as error:
            raise forms.ValidationError("This page link is not valid.") from error

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "Must be later than From.")
        return data

    def filters(self) -> selectors.ChangeFilters:
        data = self.cleaned_data
        return selectors.ChangeFilters(
            model=data.get("model") or "",
            object_id=data.get("object_id") or "",
            user_id=data.get("user"),
            since=data.get("since"),
            until=data.get("until"),
            field=data.get("field") or "",
            action=data.get("action") or "",
        )


class EventSearchForm(forms.Form):
    """The security events' filters (GET); ``until`` is exclusive."""

    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *SecurityEventKind.choices])
    actor = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="By")
    since = forms.DateTimeField(required=False, widget=DateTimeInput, label="From")
    until = forms.DateTimeField(required=False, widget=DateTimeInput, label="Until (exclusive)")
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = _person_choices(organization, "Anyone")  # type: ignore[attr-defined]

    def clean_cursor(self) -> tuple[datetime, int] | None:
        cursor = self.cleaned_data.get("cursor")
        if not cursor:
            return None
        try:
            occurred_at, pk = selectors.decode_cursor(cursor, (datetime, int))
        except selectors.InvalidCursorError as error:
            raise forms.ValidationError("This page link is not valid.") from error
        return occurred_at, pk

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "Must be later than From.")
        return data

    def filters(self) -> selectors.EventFilters:
        data = self.cleaned_data
        return selectors.EventFilters(
            kind=data.get("kind") or "", actor_id=data.get("actor"), since=data.get("since"), until=data.get("until")
        )


class AsOfForm(forms.Form):
    moment = forms.DateTimeField(widget=DateTimeInput, label="As of")


# --- Pages ----------------------------------------------------------------------------------------------------------


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The organizations whose history the user may read; a single one opens directly in the list."""
    user = request.user
    assert isinstance(user, User)
    organizations = selectors.auditable_organizations(user=user)
    return _page(request, "audit/index.html", {"title": "Audit trail", "organizations": organizations})


@login_required
def changes(request: HttpRequest, slug: str) -> HttpResponse:
    """The change search: every audited model's versions in the organization, newest first, filtered by the GET form,
    one page at a time along a keyset cursor ("next" link, no offsets, no counts)."""
    user, organization = enter(request, slug)
    form = ChangeSearchForm(request.GET or {}, organization=organization)
    found: list[selectors.Change] = []
    next_url = None
    if form.is_valid():
        found, position = selectors.search_changes(
            organization=organization,
            viewer=user,
            filters=form.filters(),
            after=form.cleaned_data.get("cursor"),
            limit=PAGE_SIZE,
        )
        if position is not None:
            next_url = _with(request, cursor=position.encode())
    export_url = reverse("audit:export", args=[organization.slug]) + _with(request, cursor=None)
    return _page(
        request,
        "audit/changes.html",
        {
            "title": f"Changes in {organization.name}",
            "organization": organization,
            "form": form,
            "changes": found,
            "next_url": next_url,
            "first_url": _with(request, cursor=None) if request.GET.get("cursor") else None,
            "export_url": export_url,
        },
        status=200 if form.is_valid() else 400,
    )


class _Echo:
    """A write-only file that hands each CSV line back to the streaming response."""

    def write(self, value: str) -> str:
        return value


EXPORT_COLUMNS = [
    "When (UTC)",
    "Model",
    "Object id",
    "Action",
    "Changed by",
    "Reason",
    "Changed fields",
    "Client address",
    "Request id",
    "Source",
]


def csv_cell(value: Any) -> str:
    """A cell that a spreadsheet will not run as a formula (a reason typed as ``=HYPERLINK(…)``)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_rows(changes: Any) -> Iterator[list[str]]:
    yield EXPORT_COLUMNS
    for change in changes:
        yield [
            csv_cell(value)
            for value in (
                change.history_date.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                change.model.label,
                change.object_id,
                change.action_display,
                change.user.display,
                change.reason,
                "; ".join(change.changed_field_labels),
                change.ip or "",
                change.request_id,
                change.source,
            )
        ]


@login_required
def export(request: HttpRequest, slug: str) -> HttpResponseBase:
    """The change search's results (same filters, every page) as CSV, streamed batch by batch along the keyset.

    The export itself is a security event, recorded with its filters before the first row leaves.
    """
    user, organization = enter(request, slug)
    form = ChangeSearchForm(request.GET or {}, organization=organization)
    if not form.is_valid():
        return HttpResponseBadRequest("The filters are not valid: " + form.errors.as_text())
    filters = form.filters()
    record_event(
        SecurityEventKind.DATA_EXPORTED,
        organization=organization,
        actor=user,
        data={"export": "changes", "format": "csv", "filters": filters.as_data()},
    )
    changes = selectors.iterate_changes(
        organization=organization, viewer=user, filters=filters, batch_size=EXPORT_BATCH_SIZE
    )
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in export_rows(changes)), content_type="text/csv; charset=utf-8"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="changes-{organization.slug}-{stamp}.csv"'
    return response


@login_required
def timeline(request: HttpRequest, slug: str, label: str, object_id: str) -> HttpResponse:
    """Every version of one object, newest first — who, when, why, what changed — with forms to compare two versions
    and to see the object as of a date. Deleted objects keep their timeline; unknown ones (or another organization's)
    are 404."""
    user, organization = enter(request, slug)
    audited = audited_or_404(label)
    pk = object_id_or_404(audited, object_id)
    before = request.GET.get("before")
    page = selectors.object_timeline(
        audited=audited,
        object_id=pk,
        organization=organization,
        viewer=user,
        before=int(before) if before and before.isdigit() else None,
        limit=TIMELINE_PAGE_SIZE,
    )
    if page is None:
        raise Http404("No history for this object.")
    return _page(
        request,
        "audit/timeline.html",
        {
            "title": page.title,
            "organization": organization,
            "audited": audited,
            "object_id": pk,
            "page": page,
            "older_url": _with(request, before=str(page.next_before)) if page.next_before else None,
            "as_of_form": AsOfForm(),
        },
    )


@login_required
def diff(request: HttpRequest, slug: str, label: str, object_id: str) -> HttpResponse:
    """The differences between two versions (``from`` and ``to``, in either order) of one object: field labels, old
    and new values, related rows by name. Versions of another object or organization are 404."""
    user, organization = enter(request, slug)
    audited = audited_or_404(label)
    pk = object_id_or_404(audited, object_id)
    first, second = (
        selectors.version_of(audited=audited, object_id=pk, organization=organization, history_id=request.GET.get(name))
        for name in ("from", "to")
    )
    if first is None or second is None:
        raise Http404("Choose two versions of this object.")
    result = selectors.diff_versions(
        audited=audited, first=first, second=second, organization=organization, viewer=user
    )
    return _page(
        request,
        "audit/diff.html",
        {
            "title": f"Changes to {selectors.object_title(audited, result.newer.record)}",
            "organization": organization,
            "audited": audited,
            "object_id": pk,
            "diff": result,
        },
    )


@login_required
def as_of(request: HttpRequest, slug: str, label: str, object_id: str) -> HttpResponse:
    """One object as it was at a chosen moment: its field values then, or that it did not exist yet, or that it had
    been deleted."""
    user, organization = enter(request, slug)
    audited = audited_or_404(label)
    pk = object_id_or_404(audited, object_id)
    form = AsOfForm(request.GET or None)
    result = None
    if form.is_valid():
        result = selectors.object_as_of(
            audited=audited, object_id=pk, organization=organization, viewer=user, moment=form.cleaned_data["moment"]
        )
        if result is None:
            raise Http404("No history for this object.")
    elif not selectors.object_versions(audited=audited, object_id=pk, organization=organization).exists():
        raise Http404("No history for this object.")
    return _page(
        request,
        "audit/as_of.html",
        {
            "title": f"{audited.verbose_name} #{pk} as of a date",
            "organization": organization,
            "audited": audited,
            "object_id": pk,
            "form": form,
            "result": result,
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@login_required
def events(request: HttpRequest, slug: str) -> HttpResponse:
    """The organization's security events, newest first, filtered by kind, actor and date range, one keyset page at a
    time."""
    user, organization = enter(request, slug)
    form = EventSearchForm(request.GET or {}, organization=organization)
    rows: list[selectors.EventRow] = []
    next_url = None
    if form.is_valid():
        found, position = selectors.event_page(
            selectors.security_events(organization=organization, filters=form.filters()),
            after=form.cleaned_data.get("cursor"),
            limit=PAGE_SIZE,
        )
        rows = selectors.describe_events(found, organization=organization, viewer=user)
        if position is not None:
            next_url = _with(request, cursor=selectors.encode_cursor(position))
    return _page(
        request,
        "audit/events.html",
        {
            "title": f"Security events of {organization.name}",
            "organization": organization,
            "form": form,
            "rows": rows,
            "next_url": next_url,
            "first_url": _with(request, cursor=None) if request.GET.get("cursor") else None,
        },
        status=200 if form.is_valid() else 400,
    )
