"""The session engine: sessions kept in the database, with a copy in the cache (Redis) in front of it.

Django's ``cached_db`` engine, made to survive the loss of the cache. The database holds every session (it is the
truth); the cache only saves the query that would load one. When the cache cannot be reached a session is read from
and written to the database alone, so people stay signed in and can sign in while Redis is down.

A copy left in the cache must never outlive its session: when a session is deleted (signed out, revoked, erased) or
changed while its copy cannot be removed or replaced, the key is remembered and its copy dropped at this process's next
successful contact with the cache, before anything is read from it. Whatever stale copy remains beyond that (another
process remembered the key and has not been called since) is caught by the session index: a copy whose last recorded
activity is older than ``SESSION_ACTIVITY_RESOLUTION`` is checked against its index row, which a revocation deleted
(``accounts.sessions.check_request``).

Expired rows are removed by ``manage.py clearsessions``; a row past its expiry is neither loaded nor reported as
existing meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.core.cache.backends.base import BaseCache
from django.utils import timezone
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a cache that cannot be reached raises (django-redis wraps the client's errors, or lets them through).
CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)

_stale_lock = threading.Lock()
_stale_cache_keys: set[str] = set()


def stale_cache_keys() -> frozenset[str]:
    """Cache keys of sessions whose cached copy may be stale and is still to be dropped (by this process)."""
    with _stale_lock:
        return frozenset(_stale_cache_keys)


def _remember_stale(cache_key: str) -> None:
    with _stale_lock:
        _stale_cache_keys.add(cache_key)


class SessionStore(cached_db.SessionStore):
    """``cached_db`` that falls back to the database alone when the cache fails, and drops stale copies later."""

    _cache: BaseCache  # set by cached_db's constructor: caches[SESSION_CACHE_ALIAS]

    def _drop_stale_copies(self) -> None:
        """Before the cache is trusted again, the copies that could not be removed while it was down go; raises the
        cache's error when it is still down."""
        with _stale_lock:
            if not _stale_cache_keys:
                return
            pending = list(_stale_cache_keys)
        self._cache.delete_many(pending)
        with _stale_lock:
            _stale_cache_keys.difference_update(pending)

    def _cache_get(self, cache_key: str) -> Any:
        self._drop_stale_copies()
        return self._cache.get(cache_key)

    def _cache_set(self, cache_key: str, data: Any, timeout: int) -> None:
        try:
            self._drop_stale_copies()
            self._cache.set(cache_key, data, timeout)
        except CACHE_ERRORS:
            logger.warning("The session cache is unreachable: a session is kept in the database only")
            _remember_stale(cache_key)

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache_get(self.cache_key)
        except CACHE_ERRORS:
            logger.warning("The session cache is unreachable; sessions are read from the database")
            data = None
        if data is None:
            row = self._get_session_from_db()  # type: ignore[attr-defined]
            if row is None:
                return {}
            data = self.decode(row.session_data)
            self._cache_set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        return data

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        with contextlib.suppress(*CACHE_ERRORS):  # without the cache the database answers alone
            if self._cache_get(self.cache_key_prefix + session_key) is not None:
                return True
        return self.model.objects.filter(session_key=session_key, expire_date__gt=timezone.now()).exists()

    def save(self, must_create: bool = False) -> None:
        DatabaseStore.save(self, must_create)
        self._cache_set(self.cache_key, self._get_session(), self.get_expiry_age())  # type: ignore[attr-defined]

    def delete(self, session_key: str | None = None) -> None:
        DatabaseStore.delete(self, session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        cache_key = self.cache_key_prefix + session_key
        try:
            self._drop_stale_copies()
            self._cache.delete(cache_key)
        except CACHE_ERRORS:
            logger.warning("The session cache is unreachable: an ended session's cached copy is dropped later")
            _remember_stale(cache_key)
