"""Security headers on every kind of response, and pages that work under the Content Security Policy: no inline
script runs without the response's nonce."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client

from tests.accounts.factories import SuperuserFactory

pytestmark = pytest.mark.django_db

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")
SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PAGES = [
    "/admin/",
    "/admin/accounts/user/",
    "/admin/accounts/user/add/",
    "/docs/",
    "/redoc/",
    "/audit/",
    "/api/v1/",
    "/api/v1/me/sessions/",
    "/api/schema/",
]


@pytest.fixture
def operator_browser() -> Client:
    browser = Client()
    browser.force_login(SuperuserFactory())
    return browser


def policy_nonce(response) -> str:
    found = NONCE.search(response["Content-Security-Policy"])
    assert found is not None
    return found.group(1)


def assert_security_headers(response) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Content-Security-Policy"] == POLICY.format(nonce=policy_nonce(response))


@pytest.mark.parametrize("url", PAGES)
def test_every_page_carries_the_security_headers(operator_browser, url):
    # when
    response = operator_browser.get(url)

    # then
    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.parametrize(
    ("url", "status"), [("/admin/login/", 200), ("/api/v1/me/", 401), ("/no-such-page/", 404), ("/health/live", 200)]
)
def test_anonymous_and_error_responses_carry_them_too(url, status):
    # when
    response = Client().get(url)

    # then
    assert response.status_code == status
    assert_security_headers(response)


@pytest.mark.parametrize(
    "url", ["/admin/", "/admin/login/", "/admin/accounts/user/add/", "/docs/", "/redoc/", "/audit/"]
)
def test_no_inline_script_runs_without_the_responses_nonce(operator_browser, url):
    # when
    response = operator_browser.get(url)

    # then: every script is a file of this site, or inline with this response's nonce
    nonce = policy_nonce(response)
    for attributes in SCRIPT.findall(response.content.decode()):
        source = re.search(r'\bsrc="([^"]*)"', attributes)
        if source is not None:
            assert source.group(1).startswith("/"), attributes
        else:
            assert f'nonce="{nonce}"' in attributes, attributes
    assert " on" + "load=" not in response.content.decode()


def test_swagger_ui_runs_its_set_up_inline_with_the_nonce_and_loads_no_cdn(operator_browser):
    # when
    response = operator_browser.get("/docs/")

    # then
    html = response.content.decode()
    assert f'<script nonce="{policy_nonce(response)}">' in html
    assert "SwaggerUIBundle(" in html
    assert "https://" not in html


def test_redoc_needs_no_inline_script_and_loads_no_cdn(operator_browser):
    # when
    html = operator_browser.get("/redoc/").content.decode()

    # then
    assert '<redoc spec-url="/api/schema/"></redoc>' in html
    assert [attributes for attributes in SCRIPT.findall(html) if "src=" not in attributes] == []
    assert "https://" not in html


def test_redoc_settings_run_inline_with_the_nonce(rf):
    # given: Redoc configured with REDOC_UI_SETTINGS, which drf-spectacular passes to the page as "settings"
    request = rf.get("/redoc/")
    request.csp_nonce = "n0nce"

    # when
    html = render_to_string(
        "drf_spectacular/redoc.html",
        {"settings": '{"hideDownloadButton": true}', "redoc_standalone": "/static/redoc.js", "schema_url": "/s/"},
        request=request,
    )

    # then
    assert [attributes.strip() for attributes in SCRIPT.findall(html)] == ['src="/static/redoc.js"', 'nonce="n0nce"']


def test_each_response_gets_a_fresh_nonce():
    client = Client()

    assert policy_nonce(client.get("/admin/login/")) != policy_nonce(client.get("/admin/login/"))


def test_forms_may_lead_to_the_identity_provider_when_one_is_configured(settings):
    # given
    settings.OIDC_ISSUER = "https://sso.example.com/realms/itdo"
    settings.OIDC_OP_LOGOUT_ENDPOINT = "https://logout.example.com/end"

    # when
    response = Client().get("/admin/login/")

    # then
    assert (
        "form-action 'self' https://sso.example.com https://logout.example.com;"
        in (response["Content-Security-Policy"])
    )


def test_the_policy_is_a_setting(settings):
    # given
    settings.CONTENT_SECURITY_POLICY = "default-src 'none'"

    # when
    response = Client().get("/api/v1/")

    # then
    assert response["Content-Security-Policy"] == "default-src 'none'"
