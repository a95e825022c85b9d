"""Puts every request under an audit context: request id, client address, change reason, and where it came from."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from audit.context import REASON_MAX_LENGTH, Source, audit_context, new_request_id

REQUEST_ID_HEADER = "X-Request-ID"
REASON_HEADER = "X-Change-Reason"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or the first hop of X-Forwarded-For when the request came through one of the
    trusted proxies (``AUDIT_TRUSTED_PROXIES``)."""
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in settings.AUDIT_TRUSTED_PROXIES:
        remote = forwarded.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(remote)) if remote else None
    except ValueError:
        return None


def source_of(request: HttpRequest) -> str:
    if request.path.startswith("/api/"):
        return Source.API
    if request.path.startswith("/admin/"):
        return Source.ADMIN
    return Source.WEB


class AuditContextMiddleware:
    """A request id (the caller's ``X-Request-ID`` when well-formed, else a new one, echoed in the response)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.match(given) else new_request_id()
        reason = request.headers.get(REASON_HEADER, "").strip()[:REASON_MAX_LENGTH]
        with audit_context(
            source=source_of(request), request=request, ip=client_ip(request), request_id=request_id, reason=reason
        ):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response
