"""What the benchmarks share: a database of their own, and timing that lets the measured calls take turns."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def setup(database: str, redis_db: int) -> None:
    """Point Django at the benchmark's own PostgreSQL database and Redis db (unless the environment names others)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erp.settings")
    os.environ.setdefault("DATABASE_URL", f"postgres://127.0.0.1:5432/{database}")
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{redis_db}")
    import django

    django.setup()
    ensure_database()


def ensure_database() -> None:
    """Create the configured database when it does not exist yet."""
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = database["NAME"]
    with psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def timings(runs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, float, int]]:
    """p50, p95 (ms) and row count of each call; the calls take turns so that drift on the machine hits all alike."""
    for run in runs.values():
        run()  # warm: permission cache, plan cache, buffers
    samples: dict[str, list[float]] = {label: [] for label in runs}
    rows: dict[str, int] = {}
    for _ in range(repeat):
        for label, run in runs.items():
            started = time.perf_counter()
            rows[label] = len(run())
            samples[label].append((time.perf_counter() - started) * 1000)
    figures = {}
    for label, taken in samples.items():
        taken.sort()
        figures[label] = (statistics.median(taken), taken[int(len(taken) * 0.95) - 1], rows[label])
    return figures
