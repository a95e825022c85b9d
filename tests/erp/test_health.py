import io
import re
import shutil

import pytest
from django.core.management import base as management_base
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError
from redis.exceptions import ConnectionError as RedisConnectionError

from erp.health import checks
from erp.health.management.commands.check_health import Command as CheckHealthCommand

pytestmark = pytest.mark.django_db

LIVE_URL = "/health/live"
READY_URL = "/health/ready"
CHECK_NAMES = ["database", "cache", "disk", "migrations"]


class _ForgetfulCache:
    """A cache that accepts writes and never returns them."""

    def set(self, *args, **kwargs) -> None:
        """Drops the value."""

    def get(self, *args, **kwargs) -> None:
        return None

    def delete(self, *args, **kwargs) -> None:
        """Nothing to delete."""


class _UnreachableCache(_ForgetfulCache):
    def set(self, *args, **kwargs) -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def _raise_database_error() -> str:
    raise DatabaseError("connection to server at 127.0.0.1 failed")


def _free_mb(path) -> int:
    return shutil.disk_usage(path).free // (1024 * 1024)


def _assert_timed(checks_body: dict) -> None:
    for result in checks_body.values():
        assert isinstance(result["latency_ms"], float | int)
        assert result["latency_ms"] >= 0


# --- /health/live -----------------------------------------------------------------------------------------------------


def test_live(client):
    # given / when
    response = client.get(LIVE_URL)

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_live_answers_even_when_dependencies_fail(client, monkeypatch, settings):
    # given
    monkeypatch.setattr(checks, "caches", {alias: _UnreachableCache() for alias in settings.CACHES})
    monkeypatch.setitem(checks.READINESS_CHECKS, "database", _raise_database_error)

    # when
    response = client.get(LIVE_URL)

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("url", [LIVE_URL, READY_URL])
def test_health_endpoints_accept_only_get(client, url):
    # given / when
    response = client.post(url)

    # then
    assert response.status_code == 405


def test_health_endpoints_need_no_login(client):
    # given: an anonymous client / when
    responses = [client.get(LIVE_URL), client.get(READY_URL)]

    # then
    assert [response.status_code for response in responses] == [200, 200]


# --- /health/ready ----------------------------------------------------------------------------------------------------


def test_ready_when_everything_is_up(client, settings):
    # given / when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert list(body["checks"]) == CHECK_NAMES
    assert {name: result["status"] for name, result in body["checks"].items()} == dict.fromkeys(CHECK_NAMES, "ok")
    assert {name: sorted(result) for name, result in body["checks"].items()} == {
        name: ["detail", "latency_ms", "status"] for name in CHECK_NAMES
    }
    _assert_timed(body["checks"])
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert body["checks"]["cache"]["detail"] == "RedisCache"
    assert body["checks"]["migrations"]["detail"] == "all applied"
    assert re.fullmatch(r"\d+ MB free", body["checks"]["disk"]["detail"])


@pytest.mark.parametrize(
    ("cache", "detail"),
    [
        (_ForgetfulCache, "CheckFailedError: the cache did not return what was written"),
        (_UnreachableCache, "ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    ],
    ids=["cache-loses-what-was-written", "cache-raises"],
)
def test_ready_fails_when_the_cache_fails(client, monkeypatch, settings, cache, detail):
    # given
    monkeypatch.setattr(checks, "caches", {alias: cache() for alias in settings.CACHES})

    # when
    response = client.get(READY_URL)

    # then: only the cache check fails, with the reason; every check is still timed
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert {name: result["status"] for name, result in body["checks"].items()} == {
        "database": "ok",
        "cache": "fail",
        "disk": "ok",
        "migrations": "ok",
    }
    assert body["checks"]["cache"] == {
        "status": "fail",
        "latency_ms": body["checks"]["cache"]["latency_ms"],
        "detail": detail,
    }
    _assert_timed(body["checks"])


@pytest.mark.parametrize(
    ("alias", "backend"),
    [
        ("default", "django_redis.cache.RedisCache"),
        ("default", "erp.cache.RedisCache"),  # fails open for the application, not for readiness
        ("sessions", "django_redis.cache.RedisCache"),
    ],
)
def test_ready_fails_when_redis_is_unreachable(client, settings, alias, backend):
    # given: one cache points at a port where nothing listens
    settings.CACHES = {
        **settings.CACHES,
        alias: {
            "BACKEND": backend,
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        },
    }

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["cache"]["status"] == "fail"
    assert re.fullmatch(
        r"ConnectionError: Error \d+ connecting to 127\.0\.0\.1:1\. Connection refused\.",
        body["checks"]["cache"]["detail"],
    )
    assert [result["status"] for name, result in body["checks"].items() if name != "cache"] == ["ok", "ok", "ok"]


def test_ready_fails_when_free_disk_is_below_the_threshold(client, settings, tmp_path):
    # given: a data directory that exists wherever the checkout lives (var/ is created on first use, not checked in)
    settings.DATA_DIR = tmp_path
    settings.HEALTH_MIN_FREE_DISK_MB = 10**12

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["disk"]["status"] == "fail"
    match = re.fullmatch(
        r"CheckFailedError: (\d+) MB free, below the 1000000000000 MB threshold", body["checks"]["disk"]["detail"]
    )
    assert match is not None
    assert abs(int(match.group(1)) - _free_mb(tmp_path)) < 1024
    assert [result["status"] for name, result in body["checks"].items() if name != "disk"] == ["ok", "ok", "ok"]


def test_disk_check_measures_the_nearest_existing_parent_of_a_missing_data_dir(client, settings, tmp_path):
    # given: on PostgreSQL the data directory (only used by SQLite) need not exist
    settings.DATA_DIR = tmp_path / "not" / "created"

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 200
    disk = response.json()["checks"]["disk"]
    assert disk["status"] == "ok"
    free = int(re.fullmatch(r"(\d+) MB free", disk["detail"]).group(1))
    assert abs(free - _free_mb(tmp_path)) < 1024
    assert not (tmp_path / "not").exists()


def test_ready_fails_when_the_database_check_raises(client, monkeypatch):
    # given
    monkeypatch.setitem(checks.READINESS_CHECKS, "database", _raise_database_error)

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["database"]["detail"] == "DatabaseError: connection to server at 127.0.0.1 failed"
    assert list(body["checks"]) == CHECK_NAMES


def test_ready_fails_when_the_database_cursor_raises(client, monkeypatch):
    # given: the real check function, with a connection whose cursor fails
    class _BrokenConnection:
        vendor = "postgresql"

        def cursor(self):
            raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(checks, "connections", {"default": _BrokenConnection()})
    monkeypatch.setitem(checks.READINESS_CHECKS, "migrations", lambda: "all applied")

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["detail"] == (
        "DatabaseError: server closed the connection unexpectedly"
    )


def test_ready_fails_when_migrations_are_pending(client, monkeypatch):
    # given
    class _Migration:
        app_label, name = "accounts", "0099_future"

    monkeypatch.setattr(checks.MigrationExecutor, "migration_plan", lambda self, targets: [(_Migration(), False)])

    # when
    response = client.get(READY_URL)

    # then
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"]["detail"] == (
        "CheckFailedError: 1 unapplied migration(s): accounts.0099_future"
    )


# --- run_checks -------------------------------------------------------------------------------------------------------


def test_run_checks_runs_the_given_checks_in_order():
    # given
    def failing() -> str:
        raise OSError("disk gone")

    # when
    results = checks.run_checks({"first": lambda: "fine", "second": failing})

    # then
    assert [(result.name, result.is_healthy, result.detail) for result in results] == [
        ("first", True, "fine"),
        ("second", False, "OSError: disk gone"),
    ]
    assert results[1].as_dict() == {
        "status": "fail",
        "latency_ms": results[1].latency_ms,
        "detail": "OSError: disk gone",
    }


# --- check_health command ---------------------------------------------------------------------------------------------


def test_check_health_command_when_healthy():
    # given
    out = io.StringIO()

    # when
    call_command("check_health", stdout=out)

    # then
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", name] for name in CHECK_NAMES]
    assert re.fullmatch(r"ok {3}database {4}\s*\d+\.\d\d ms {2}postgresql", lines[0])
    assert lines[-1] == "healthy"


def test_check_health_command_when_unhealthy(monkeypatch, settings):
    # given
    monkeypatch.setattr(checks, "caches", {alias: _ForgetfulCache() for alias in settings.CACHES})
    settings.HEALTH_MIN_FREE_DISK_MB = 10**12
    out = io.StringIO()

    # when
    with pytest.raises(CommandError) as caught:
        call_command("check_health", stdout=out)

    # then
    assert str(caught.value) == "unhealthy: cache, disk"
    lines = out.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "database"],
        ["FAIL", "cache"],
        ["FAIL", "disk"],
        ["ok", "migrations"],
    ]
    assert lines[1].endswith("ms  CheckFailedError: the cache did not return what was written")
    assert "healthy" not in out.getvalue()


def test_check_health_command_exits_non_zero_when_unhealthy(monkeypatch):
    # given: run the way manage.py runs it, so that a CommandError becomes the exit status
    monkeypatch.setitem(checks.READINESS_CHECKS, "database", _raise_database_error)
    monkeypatch.setattr(management_base.connections, "close_all", lambda: None)  # keep the test's transaction
    out, err = io.StringIO(), io.StringIO()
    command = CheckHealthCommand(stdout=out, stderr=err)

    # when
    with pytest.raises(SystemExit) as caught:
        command.run_from_argv(["manage.py", "check_health"])

    # then
    assert caught.value.code == 1
    assert err.getvalue() == "CommandError: unhealthy: database\n"
    assert out.getvalue().splitlines()[0].endswith("ms  DatabaseError: connection to server at 127.0.0.1 failed")
