"""Django's error pages (``handler500``): a database that cannot be reached is a 503 — the API's JSON error body with
``Retry-After`` under /api/, a plain page elsewhere — whether a view or a middleware met it; any other unexpected
error under /api/ is the API's JSON 500. (The real outage, a stopped PostgreSQL under a running server, is in
tests/faults.)"""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client

from accounts import sessions
from erp.health import views as health_views
from rbac import engine

pytestmark = pytest.mark.django_db

UNAVAILABLE = {
    "error": {
        "code": "service_unavailable",
        "message": "The service is temporarily unavailable; try again shortly.",
        "fields": {},
    }
}


@pytest.fixture
def raw_client() -> Client:
    client = Client()
    client.raise_request_exception = False
    return client


def _raise(error: Exception):
    def raising(*args: object, **kwargs: object) -> None:
        raise error

    return raising


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
@pytest.mark.parametrize("path", ["/api/v1/me/", "/"])
def test_a_database_error_in_a_middleware_is_503(raw_client, member, monkeypatch, error, path):
    # given: a signed-in browser whose session check meets a database that went away
    raw_client.force_login(member)
    monkeypatch.setattr(sessions, "check_request", _raise(error))

    # when
    response = raw_client.get(path)

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Cache-Control"] == "no-store"
    if path.startswith("/api/"):
        assert response["Content-Type"] == "application/json"
        assert response.json() == UNAVAILABLE
    else:
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert "Temporarily unavailable" in response.content.decode()


def test_a_database_error_in_an_api_view_is_503(raw_client, member, organization, monkeypatch):
    # given: the permission check of a list meets a database that went away
    raw_client.force_login(member)
    monkeypatch.setattr(engine, "effective_permissions", _raise(OperationalError("connection refused")))

    # when
    response = raw_client.get(f"/api/v1/organizations/{organization.slug}/departments/")

    # then
    assert (response.status_code, response.json(), response["Retry-After"]) == (503, UNAVAILABLE, "30")


def test_any_other_error_under_the_api_is_the_json_500(raw_client, member, organization, monkeypatch):
    # given: a bug, not an outage
    raw_client.force_login(member)
    monkeypatch.setattr(engine, "effective_permissions", _raise(RuntimeError("bug")))

    # when
    response = raw_client.get(f"/api/v1/organizations/{organization.slug}/departments/")

    # then
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "server_error", "message": "An unexpected error occurred.", "fields": {}}
    }
    assert "Retry-After" not in response


def test_any_other_error_on_a_page_is_django_s_500_page(raw_client, monkeypatch):
    # given
    monkeypatch.setattr(health_views, "run_checks", _raise(RuntimeError("bug")))

    # when
    response = raw_client.get("/health/ready")

    # then
    assert response.status_code == 500
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "Retry-After" not in response
