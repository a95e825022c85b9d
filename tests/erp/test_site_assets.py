"""What every page asks the site for besides itself: the icon (/favicon.ico) and, on Redoc, its bundle — served
locally, with nothing left for the Content Security Policy to block."""

from __future__ import annotations

import pytest
from django.test import Client

from erp import redoc

pytestmark = pytest.mark.django_db


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


def test_redoc_loads_its_bundle_from_this_site_without_the_remote_logo():
    # when
    page = Client().get("/redoc/").content.decode()
    bundle = Client().get("/redoc/redoc.standalone.js")
    # then
    assert '<script src="/redoc/redoc.standalone.js"></script>' in page
    assert bundle.status_code == 200
    assert bundle["Content-Type"] == "text/javascript; charset=utf-8"
    assert b"cdn.redoc.ly" not in bundle.content
    assert redoc.NO_LOGO in bundle.content
    assert b"API docs by Redocly" in bundle.content
