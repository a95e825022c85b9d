"""The shared cache on Redis, failing open: Redis being down slows the system down, it does not stop it.

Everything kept in the shared cache can be computed again (effective permissions, the organizations of a user, the
identity provider's keys, the account behind a bearer token), so an unreachable Redis reads as a miss and a write to it
is dropped and logged — never an error for the request. Some values are kept working rather than skipped: they fall
back to this process's memory while Redis is down (``LOCAL_FALLBACK_PREFIXES``):

- request throttles (Django REST framework keeps their histories under ``throttle_…`` keys): a rate limit then holds
  per process instead of not at all;
- the identity provider's discovery document and keys (public, and refetched at most once a minute for an unknown key
  id): bearer tokens are checked without a call to the provider per request.

Nothing that is invalidated when data changes falls back (permissions, the account behind a bearer token): another
process would not see the invalidation. Callers that must know whether a write reached the cache (the permission
engine's version counters) read it back.

Sessions do not use this cache: they have their own alias and engine (``accounts.session_store``), which must tell a
failed write from a successful one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import CONNECTION_INTERRUPTED
from django_redis.cache import RedisCache as DjangoRedisCache

LOCAL_FALLBACK_PREFIXES = ("throttle_", "oidc:jwks:", "oidc:discovery:")
OUTAGE_LOG_INTERVAL_SECONDS = 10.0

logger = logging.getLogger(__name__)


class _OutageLog:
    """Stands for django-redis's logger of ignored errors: one warning, without traceback, every few seconds of an
    outage instead of a traceback for each of the many cache calls of every request."""

    def __init__(self) -> None:
        self._last_logged = 0.0

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        moment = time.monotonic()
        if moment - self._last_logged >= OUTAGE_LOG_INTERVAL_SECONDS:
            self._last_logged = moment
            logger.warning("Redis is unreachable: the shared cache is skipped (values are computed instead)")


class RedisCache(DjangoRedisCache):
    """django-redis with its connection errors ignored (and logged), and the values of ``LOCAL_FALLBACK_PREFIXES`` kept
    in memory when Redis cannot keep them."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._ignore_exceptions = True
        self._log_ignored_exceptions = True
        self.logger = _OutageLog()
        self._fallback = LocMemCache(f"redis-fallback-{id(self)}", {"OPTIONS": {"MAX_ENTRIES": 10_000}})

    @staticmethod
    def _falls_back(key: Any) -> bool:
        return isinstance(key, str) and key.startswith(LOCAL_FALLBACK_PREFIXES)

    def get(self, key: Any, default: Any = None, version: int | None = None, client: Any = None) -> Any:
        value = self._get(key, default, version, client)
        if value is CONNECTION_INTERRUPTED:
            return self._fallback.get(key, default, version) if self._falls_back(key) else default
        return value

    # django-redis answers True or False to set and add, and None when Redis was unreachable.

    def set(self, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        stored = super().set(key, value, *args, **kwargs)
        if stored is None and self._falls_back(key):
            self._fallback.set(key, value, kwargs.get("timeout", args[0] if args else DEFAULT_TIMEOUT))
            return True
        return stored

    def add(self, key: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        added = super().add(key, value, *args, **kwargs)
        if added is None and self._falls_back(key):
            return self._fallback.add(key, value, kwargs.get("timeout", args[0] if args else DEFAULT_TIMEOUT))
        return added
