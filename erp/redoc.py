"""Redoc's bundle as the documentation page loads it: the local copy from drf-spectacular-sidecar, with its one remote
asset — the Redocly logo in the sidebar's footer, fetched from a CDN — dropped, so that the page runs under the Content
Security Policy (``img-src 'self' data:``) without a blocked request. The link to Redocly stays."""

from __future__ import annotations

import functools
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView

BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REMOTE_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# An empty picture in place of the logo: data URIs are allowed images; the quotes are escaped for the JS string.
NO_LOGO = b"data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%220%22 height=%220%22/%3E"


@functools.cache
def bundle() -> bytes:
    """The bundle without the remote logo (read once per process)."""
    found = finders.find(BUNDLE)
    if not isinstance(found, str):
        raise FileNotFoundError(BUNDLE)
    return Path(found).read_bytes().replace(REMOTE_LOGO, NO_LOGO)


@require_GET
@cache_control(max_age=86400, public=True)
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    return HttpResponse(bundle(), content_type="text/javascript; charset=utf-8")


class RedocView(SpectacularRedocView):
    """drf-spectacular's Redoc page, loading the bundle above."""

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("redoc-bundle")
