"""Puts every request under an audit context: request id, client address, change reason, and where it came from."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from audit.context import REASON_MAX_LENGTH, Source, audit_context, new_request_id

REQUEST_ID_HEADER = "X-Request-ID"
REASON_HEADER = "X-Change-Reason"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, the one place every part of the project takes it from (audit trail, sessions list, sign-in
    throttles and lockouts).

    It is the socket's address (REMOTE_ADDR), because a client writes whatever it likes into X-Forwarded-For. Only when
    the socket's address is one of ``TRUSTED_PROXIES`` (addresses or networks) is the header read, from the right: each
    hop a trusted proxy appended is skipped, and the first hop that is not a trusted proxy is the caller. Hops further
    left were written by the client itself and are never believed. A malformed hop ends the walk at the last proxy.
    """
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in forwarded.split(",") if hop.strip()]
    while any(remote in network for network in trusted) and hops:
        hop = _address(hops.pop())
        if hop is None:
            break
        remote = hop
    return str(remote)


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
