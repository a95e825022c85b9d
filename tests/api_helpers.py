"""Helpers shared by the API tests: item URLs, the response bodies the API must return, and table snapshots."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from organizations.models import Department, Membership


def detail_url(collection_url: str, item: Model | int | str) -> str:
    """The URL of one item of the collection at ``collection_url``, named by a model instance, a pk or a slug."""
    key = item.pk if isinstance(item, Model) else item
    return f"{collection_url}{key}/"


def iso(moment: datetime.datetime) -> str:
    """A moment as the API writes it: ISO 8601 in UTC, with a ``Z`` for the offset."""
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def page(*bodies: dict[str, Any]) -> dict[str, Any]:
    """A single page of a cursor-paginated list: exactly ``bodies``, with no next or previous link."""
    return {"next": None, "previous": None, "results": list(bodies)}


def error(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error body the API returns for every 4xx."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def invalid(fields: dict[str, Any]) -> dict[str, Any]:
    """The error body of a 400 for input that is not valid, with these field errors."""
    return error("invalid", "The request is not valid; see the field errors.", fields)


NOT_FOUND = error("not_found", "Not found.")
NOT_AUTHENTICATED = error("not_authenticated", "Authentication credentials were not provided.")


def lacks_permission(permission: str, *, on_object: bool = False) -> dict[str, Any]:
    """The 403 body for a caller without ``permission`` in the organization, or on the object the URL names."""
    where = "on this object" if on_object else "in this organization"
    return error("permission_denied", f"You do not have the permission {permission} {where}.")


def membership_body(membership: Membership) -> dict[str, Any]:
    """What the API must return for ``membership``, as it is stored now."""
    membership.refresh_from_db()
    return {
        "id": membership.pk,
        "user": {"id": membership.user.pk, "email": membership.user.email, "full_name": membership.user.full_name},
        "department": membership.department_id,
        "job_title": membership.job_title,
        "employee_number": membership.employee_number,
        "is_active": membership.is_active,
        "joined_on": membership.joined_on.isoformat(),
        "left_on": membership.left_on.isoformat() if membership.left_on else None,
        "source": membership.source,
        "created_at": iso(membership.created_at),
        "updated_at": iso(membership.updated_at),
    }


def department_rows() -> list[dict[str, Any]]:
    """Every department of every organization, deleted ones included: what a denied call must leave untouched."""
    return list(Department.all_objects.order_by("pk").values())


def warm_queries(user: Any, url: str) -> tuple[int, Any]:
    """The queries a GET of ``url`` costs ``user`` once their permissions are cached, and the response body."""
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(url).status_code == 200  # computes and caches the caller's permissions
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), response.json()
