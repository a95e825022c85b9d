"""Real services that the fault tests stop and start under the running system.

- ``redis_server``: a Redis server of the test's own, on a free port, killed and started again by the test (with
  ``snapshot()`` first, a restart brings back what it held — as a Redis with persistence, or a network partition, does).
- ``faults_cluster``: a PostgreSQL cluster of the tests' own (``pg_createcluster <version> faults``), created when
  missing, with trust authentication on local TCP, and a migrated database; the tests stop and start it.

Both need the server binaries (``redis-server``; ``pg_createcluster`` / ``pg_ctlcluster`` from postgresql-common) and,
for the cluster, root (the cluster belongs to the ``postgres`` account, as the main one does).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from accounts import session_store
from accounts.oidc import bearer
from rbac import engine

BASE_DIR = Path(__file__).resolve().parents[2]
CLUSTER_NAME = "faults"
FAULTS_DATABASE = "itdo_erp_faults"
# The person who signs in to the server under test (tests/faults/test_database_down.py).
PERSON_EMAIL = "faults@example.com"
PERSON_PASSWORD = "Outage-proof passphrase 2026"
# One process migrates and seeds: starting Django costs more than both when there is nothing to migrate.
PREPARE_DATABASE = (
    "from django.core.management import call_command\n"
    "from accounts.models import User\n"
    "call_command('migrate', interactive=False, verbosity=0)\n"
    f"person = User.objects.filter(email={PERSON_EMAIL!r}).first()\n"
    f"person = person or User.objects.create_user(email={PERSON_EMAIL!r})\n"
    f"person.set_password({PERSON_PASSWORD!r})\n"
    "person.is_active = True\n"
    "person.save()\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: object, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {seconds} s")


def require(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        pytest.fail(f"{binary} is not installed: the fault tests need the real server")
    return found


# --- Redis -----------------------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A ``redis-server`` child process on ``port``, keeping its snapshot in ``directory``."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=1)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        command = [require("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        wait_until(self._answers, seconds=10, what="redis-server did not answer")

    def snapshot(self) -> None:
        """Write what Redis holds to disk: the next start loads it."""
        self.client().save()

    def kill(self) -> None:
        """As a crash: no shutdown, no saving."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    yield server
    server.kill()


def redis_caches(url: str) -> dict[str, dict[str, object]]:
    """The project's cache settings (erp.settings), pointed at ``url``."""
    options = {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1}
    return {
        "default": {"BACKEND": "erp.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "faults", "OPTIONS": options},
        "sessions": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "faults-sessions",
            "OPTIONS": options,
        },
    }


@pytest.fixture
def on_redis(settings, redis_server: RedisServer) -> Iterator[RedisServer]:
    """The application's caches and sessions on the test's own Redis, as in production."""
    settings.CACHES = redis_caches(redis_server.url)
    settings.SESSION_ENGINE = "accounts.session_store"
    settings.SESSION_CACHE_ALIAS = "sessions"
    yield redis_server
    # What this process remembered to drop or move belongs to the test's Redis, which is gone.
    session_store._stale_cache_keys.clear()
    engine._unmoved_counters.clear()
    bearer._undropped_keys.clear()


# --- PostgreSQL ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The ``faults`` PostgreSQL cluster: its version and port, and the database the server under test uses."""

    version: str
    port: int

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{FAULTS_DATABASE}"

    def control(self, action: str) -> None:
        command = [require("pg_ctlcluster"), "--skip-systemctl-redirect", self.version, CLUSTER_NAME, action]
        if action == "stop":
            command += ["--mode", "fast"]  # the connections are cut, as when the server goes away
        subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603

    def is_ready(self) -> bool:
        command = [require("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(command, check=False, timeout=10).returncode == 0  # noqa: S603

    def start(self) -> None:
        if not self.is_ready():
            self.control("start")
        wait_until(self.is_ready, seconds=30, what=f"the {CLUSTER_NAME} cluster did not start")

    def stop(self) -> None:
        self.control("stop")
        wait_until(lambda: not self.is_ready(), seconds=30, what=f"the {CLUSTER_NAME} cluster did not stop")

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        command = [require("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        command += ["-tAc", sql]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout.strip()  # noqa: S603


def _clusters() -> dict[str, tuple[str, int]]:
    """Cluster name -> (version, port), from ``pg_lsclusters``."""
    listing = subprocess.run(  # noqa: S603
        [require("pg_lsclusters"), "--no-header"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    clusters = {}
    for line in listing.splitlines():
        version, name, port, *_rest = line.split()
        clusters[name] = (version, int(port))
    return clusters


TRUST_LOCAL = """# The fault tests' own cluster (tests/faults): local connections only, trusted.
local   all all                 trust
host    all all 127.0.0.1/32    trust
host    all all ::1/128         trust
"""


def manage(cluster: Cluster, *arguments: str) -> None:
    environment = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DEBUG"}}
    environment["DATABASE_URL"] = cluster.database_url
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *arguments],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def faults_cluster() -> Iterator[Cluster]:
    """The cluster, created when missing (it is kept between runs: creating and migrating cost the most), started,
    with its database migrated and the person of ``PERSON_EMAIL`` in it."""
    clusters = _clusters()
    if CLUSTER_NAME not in clusters:
        version = max(clusters.values(), key=lambda found: int(found[0].split(".")[0]))[0] if clusters else "15"
        subprocess.run(  # noqa: S603
            [require("pg_createcluster"), version, CLUSTER_NAME, "--port", str(free_port())],
            check=True,
            capture_output=True,
            timeout=120,
        )
        clusters = _clusters()
    version, port = clusters[CLUSTER_NAME]
    cluster = Cluster(version=version, port=port)
    hba = Path("/etc/postgresql") / version / CLUSTER_NAME / "pg_hba.conf"
    if hba.read_text() != TRUST_LOCAL:
        hba.write_text(TRUST_LOCAL)
        shutil.chown(hba, "postgres", "postgres")
        if cluster.is_ready():
            cluster.control("reload")
    cluster.start()
    if not cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{FAULTS_DATABASE}'"):  # noqa: S608 - a constant
        cluster.psql(f"CREATE DATABASE {FAULTS_DATABASE}")
    manage(cluster, "shell", "-c", PREPARE_DATABASE)
    yield cluster
    # Stopped again (whatever a test left it in): nothing keeps running after the tests.
    if cluster.is_ready():
        cluster.stop()
