"""The auditor's pages under ``/audit/``: server-rendered, in the admin's look, usable without JavaScript.

Auditors need not be staff, so ``/audit/`` has its own sign-in (``/audit/login/``: a password, or the identity
provider when one is configured) and sign-out; every other page sends an anonymous visitor there. For every page of an
organization: an organization the user is not an active member of (superusers excepted) is 404; a member without
``audit.view_history`` for the whole organization is 403 — as is the index for someone who is an auditor nowhere. Every
refusal is recorded as a security event, as on the API, and a 403 is a page of its own, never an empty list. What a
page shows comes from ``audit.selectors``, which reads one organization only.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.oidc.logout import is_provider_session, provider_logout_url
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
        # The admin's base template shows its own user links only to staff; the audit pages draw their own menu.
        "has_permission": False,
        "is_staff": request.user.is_active and request.user.is_staff,
        "is_nav_sidebar_enabled": False,
        "is_popup": False,
    }
    return render(request, template, {**base, **context}, status=status)


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return _page(request, "audit/403.html", {"title": "Access denied", "message": message}, status=403)


def auditor_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """An audit page: anonymous visitors go to the audit sign-in (with ``next``); a refusal is the styled 403 page."""

    @functools.wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as error:
            return _forbidden(request, str(error) or "You may not open this page.")

    return login_required(page, login_url="audit:login")


# --- Signing in and out ---------------------------------------------------------------------------------------------


class AuditLoginForm(AuthenticationForm):
    """A password sign-in for anyone with an active account: auditors need not be staff."""


class AuditLoginView(auth_views.LoginView):
    """``/audit/login/``: the password form (``authenticate(request=…)``, so the sign-in limits apply) and, when an
    identity provider is configured, "Sign in with <provider>"; afterwards the page asked for, else the audit index."""

    template_name = "audit/login.html"
    authentication_form = AuditLoginForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("audit:index")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            site_header=admin.site.site_header,
            site_title=admin.site.site_title,
            site_url=admin.site.site_url,
            title="Sign in to the audit trail",
            has_permission=False,
            is_nav_sidebar_enabled=False,
            is_popup=False,
        )
        return context


login = AuditLoginView.as_view()


@require_POST
@csrf_protect
@never_cache
def logout(request: HttpRequest) -> HttpResponseBase:
    """Sign out (a POST, as Django requires); a session opened at the identity provider ends there too."""
    if is_provider_session(request):
        url = provider_logout_url(request)
        auth.logout(request)
        return HttpResponseRedirect(url)
    auth.logout(request)
    return HttpResponseRedirect(reverse("audit:login"))


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
        # Someone probing an organization they may not enter is that organization's business; a slug that names no
        # organization is a mistyped address, not a denial.
        probed = Organization.objects.filter(slug=slug).first()
        if probed is not None:
            _refuse(request, user, probed, 404)
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


@auditor_page
def index(request: HttpRequest) -> HttpResponse:
    """The organizations whose history the user may read; someone who may read none gets the 403 page (recorded) —
    except a platform operator, who may read every organization's and is only told that there is none yet."""
    user = request.user
    assert isinstance(user, User)
    organizations = selectors.auditable_organizations(user=user)
    if not organizations and not user.is_superuser:
        _refuse(request, user, None, 403)
        raise PermissionDenied("You may not read the history of any organization.")
    return _page(request, "audit/index.html", {"title": "Audit trail", "organizations": organizations})


@auditor_page
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


@auditor_page
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


@auditor_page
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


@auditor_page
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


@auditor_page
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


@auditor_page
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
