"""``/health/live`` (the process answers) and ``/health/ready`` (its dependencies answer too; 503 when not)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from erp.health.checks import run_checks


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    is_healthy = all(result.is_healthy for result in results)
    body = {"status": "ok" if is_healthy else "fail", "checks": {result.name: result.as_dict() for result in results}}
    return JsonResponse(body, status=200 if is_healthy else 503)
