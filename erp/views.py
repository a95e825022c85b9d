"""Site-level pages: the landing page, and the error pages — JSON for API paths, plain HTML elsewhere."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import defaults

from erp.api.exceptions import error_body

# Seconds a client is asked to wait before trying again while the database cannot be reached.
RETRY_AFTER_SECONDS = 30
# The database's errors that mean "unreachable" (refused, dropped, shut down), as opposed to a bug in a query.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's ``handler500``: it runs while the exception is being handled, so ``sys.exc_info()`` names it. A database
    that cannot be reached — in a view or in a middleware (sessions, authentication) — is no bug: 503."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE_ERRORS):
        return service_unavailable(request)
    if _is_api(request):
        return JsonResponse(error_body("server_error", "An unexpected error occurred."), status=500)
    return defaults.server_error(request)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After``: the API's error body under /api/, a plain page elsewhere. Nothing here may need the
    database: the page is rendered without a request (no context processors, no session, no user)."""
    response: HttpResponse
    if _is_api(request):
        message = "The service is temporarily unavailable; try again shortly."
        response = JsonResponse(error_body("service_unavailable", message), status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response
