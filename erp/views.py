"""Site-level pages: the landing page and JSON error pages for API paths."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        body = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        body = {"error": {"code": "server_error", "message": "An unexpected error occurred.", "fields": {}}}
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
