"""What every page asks the site for besides itself: the icon (/favicon.ico) and, on Redoc, its scripts — served
locally, with nothing left for the Content Security Policy to block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.test import Client

pytestmark = pytest.mark.django_db

SCRIPT_SOURCE = re.compile(r'<script src="([^"]*)"></script>')


def test_the_favicon_is_served_on_every_environment():
    # when
    response = Client().get("/favicon.ico")
    # then
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert response["Cache-Control"] == "max-age=86400, public"


@pytest.mark.parametrize("url", ["/", "/admin/login/", "/audit/login/", "/redoc/"])
def test_the_html_pages_name_the_icon(url):
    # when
    html = Client().get(url).content.decode()
    # then
    assert '<link rel="icon" href="/favicon.ico">' in html


def test_redoc_replaces_the_remote_logo_before_the_bundle_renders():
    # when
    html = Client().get("/redoc/").content.decode()
    # then: the replacement runs first, then the bundle
    sources = SCRIPT_SOURCE.findall(html)
    assert sources == [
        "/static/erp/redoc-local.js",
        "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
    ]
    script = finders.find("erp/redoc-local.js")
    assert isinstance(script, str)
    assert '"https://cdn.redoc.ly/redoc/logo-mini.svg"' in Path(script).read_text()


def test_redoc_with_settings_replaces_the_remote_logo_in_its_set_up(rf):
    # given
    request = rf.get("/redoc/")
    request.csp_nonce = "n0nce"
    # when
    html = render_to_string(
        "drf_spectacular/redoc.html",
        {"settings": "{}", "redoc_standalone": "/static/redoc.js", "schema_url": "/s/"},
        request=request,
    )
    # then: the replacement comes before Redoc.init
    assert html.index('const remoteLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg";') < html.index("Redoc.init(")
