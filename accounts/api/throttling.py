"""Throttles of the account endpoints, keyed on the client address that the whole project uses."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import ScopedRateThrottle

from audit.middleware import client_ip


class ClientAddressThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, counted per client address as ``audit.middleware.client_ip`` gives it: the socket's
    address unless a trusted proxy forwarded the request. DRF's own ``get_ident`` believes any X-Forwarded-For, so a
    client naming a new address in it each time would never be throttled."""

    def get_ident(self, request: Any) -> str:
        return client_ip(request._request) or "unknown"
