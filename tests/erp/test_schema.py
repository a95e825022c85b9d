"""The OpenAPI document: generated without warnings, valid OpenAPI 3, served with local UI assets."""

import pytest
from django.core.management import call_command
from django.test import Client


def test_schema_generates_without_warnings_and_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert text.startswith("openapi: 3.")
    for path in (
        "/api/v1/organizations/{organization_slug}/departments/",
        "/api/v1/organizations/{organization_slug}/departments/tree/",
        "/api/v1/organizations/{organization_slug}/departments/{id}/members/",
        "/api/v1/organizations/{organization_slug}/members/",
        "/api/v1/organizations/{slug}/",
        "/api/v1/auth/login/",
        "/api/v1/me/password/",
    ):
        assert f"  {path}:" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/api/schema/", "application/vnd.oai.openapi"),
        ("/docs/", "text/html"),
        ("/redoc/", "text/html"),
    ],
)
def test_documentation_pages_are_served(url, content_type):
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/docs/", "/redoc/"])
def test_documentation_ui_assets_come_from_local_static_files(url):
    html = Client().get(url).content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr.net" not in html
    assert "unpkg.com" not in html
    assert "fonts.googleapis.com" not in html


@pytest.mark.django_db
def test_the_api_root_links_the_entry_points():
    response = Client().get("/api/v1/")
    assert response.status_code == 200
    assert response.json() == {
        "auth": {
            "csrf": "http://testserver/api/v1/auth/csrf/",
            "login": "http://testserver/api/v1/auth/login/",
            "logout": "http://testserver/api/v1/auth/logout/",
        },
        "me": "http://testserver/api/v1/me/",
        "organizations": "http://testserver/api/v1/organizations/",
        "organization_resources": "http://testserver/api/v1/organizations/{slug}/<resource>/",
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/docs/",
        "redoc": "http://testserver/redoc/",
    }
