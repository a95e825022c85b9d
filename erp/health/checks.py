"""Readiness checks: database, cache, free disk and migrations, each timed."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError


class CheckFailedError(Exception):
    """A dependency answered, but not as a healthy one would."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    is_healthy: bool
    latency_ms: float
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"status": "ok" if self.is_healthy else "fail", "latency_ms": self.latency_ms, "detail": self.detail}


def check_database() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connections[DEFAULT_DB_ALIAS].vendor


def check_cache() -> str:
    """Every cache alias (the shared cache and the sessions' one) writes and reads back. The shared cache fails open
    (``erp.cache``), so Redis is asked through its client, which raises what the cache would have ignored."""
    for alias in settings.CACHES:
        backend = caches[alias]
        target = backend.client if isinstance(backend, RedisCache) else backend
        key, value = f"health:{uuid.uuid4().hex}", uuid.uuid4().hex
        target.set(key, value, 10)
        read = target.get(key)
        target.delete(key)
        if read != value:
            raise CheckFailedError("the cache did not return what was written")
    return str(settings.CACHES["default"]["BACKEND"]).rsplit(".", 1)[-1]


def _nearest_existing_directory(path: Path) -> Path:
    # DATA_DIR is created only for the embedded SQLite database; on PostgreSQL it may not exist, and the disk it would
    # be written to is then the one of its nearest existing parent.
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk() -> str:
    free_mb = shutil.disk_usage(_nearest_existing_directory(Path(settings.DATA_DIR))).free // (1024 * 1024)
    if free_mb < settings.HEALTH_MIN_FREE_DISK_MB:
        raise CheckFailedError(f"{free_mb} MB free, below the {settings.HEALTH_MIN_FREE_DISK_MB} MB threshold")
    return f"{free_mb} MB free"


def check_migrations() -> str:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _backwards in plan[:5])
        raise CheckFailedError(f"{len(plan)} unapplied migration(s): {names}")
    return "all applied"


READINESS_CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "cache": check_cache,
    "disk": check_disk,
    "migrations": check_migrations,
}


def run_checks(checks: dict[str, Callable[[], str]] | None = None) -> list[CheckResult]:
    results = []
    for name, check in (checks or READINESS_CHECKS).items():
        started = time.perf_counter()
        try:
            detail, is_healthy = check(), True
        except (CheckFailedError, DatabaseError, OSError, RedisError, ConnectionInterrupted) as error:
            if isinstance(error, ConnectionInterrupted) and error.__cause__ is not None:
                error = error.__cause__  # django-redis wraps the client's error: name the one that happened
            detail, is_healthy = f"{type(error).__name__}: {error}", False
        results.append(CheckResult(name, is_healthy, round((time.perf_counter() - started) * 1000, 2), detail))
    return results
