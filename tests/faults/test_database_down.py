"""PostgreSQL stops under a running server (gunicorn, a process of its own), and starts again.

While the database is down every request that needs it answers 503 with ``Retry-After`` — the API's JSON error body
under /api/, a plain page elsewhere — whether the database was needed by a view or by a middleware (the session);
readiness says 503 naming the database and liveness stays 200. Once the database is back, the same server answers
again, the same session still signed in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest
import requests

from tests.faults.conftest import BASE_DIR, PERSON_EMAIL, PERSON_PASSWORD, Cluster, free_port, wait_until

pytestmark = pytest.mark.faults

UNAVAILABLE = {
    "error": {
        "code": "service_unavailable",
        "message": "The service is temporarily unavailable; try again shortly.",
        "fields": {},
    }
}


@pytest.fixture(scope="module")
def server(faults_cluster: Cluster) -> Iterator[str]:
    """A gunicorn server on the faults cluster (no Redis: the embedded cache, sessions in the database)."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DEBUG"}}
    environment.update(
        DATABASE_URL=faults_cluster.database_url,
        DATABASE_CONNECT_TIMEOUT="2",
        ERP_ENV="dev",
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "gunicorn", "erp.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--timeout", "30"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=environment, stdout=log, stderr=log)  # noqa: S603
        address = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{address}/health/live", timeout=5).status_code == 200
            except requests.RequestException:
                return process.poll() is not None  # exited: stop waiting, the assertion below says why

        wait_until(answers, seconds=60, what="gunicorn did not answer")
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"gunicorn exited: {log.read().decode(errors='replace')}")
        yield address
        process.terminate()
        process.wait(timeout=30)


def signed_in(address: str) -> requests.Session:
    browser = requests.Session()
    token = browser.get(f"{address}/api/v1/auth/csrf/", timeout=10).json()["csrf_token"]
    response = browser.post(
        f"{address}/api/v1/auth/login/",
        json={"email": PERSON_EMAIL, "password": PERSON_PASSWORD},
        headers={"X-CSRFToken": token, "Referer": f"{address}/"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return browser


def test_with_the_database_down_requests_answer_503_and_the_server_recovers_by_itself(
    server: str, faults_cluster: Cluster
):
    # given: a signed-in browser, another one about to sign in, and everything up
    browser = signed_in(server)
    newcomer = requests.Session()
    token = newcomer.get(f"{server}/api/v1/auth/csrf/", timeout=10).json()["csrf_token"]
    assert browser.get(f"{server}/api/v1/me/", timeout=10).json()["email"] == PERSON_EMAIL
    assert requests.get(f"{server}/health/ready", timeout=10).status_code == 200

    # when
    faults_cluster.stop()
    try:
        api_in_middleware = browser.get(f"{server}/api/v1/me/", timeout=10)  # the session is read before any view
        api_in_view = newcomer.post(
            f"{server}/api/v1/auth/login/",
            json={"email": PERSON_EMAIL, "password": PERSON_PASSWORD},
            headers={"X-CSRFToken": token, "Referer": f"{server}/"},
            timeout=10,
        )
        page = browser.get(f"{server}/", timeout=10)
        ready = requests.get(f"{server}/health/ready", timeout=10)
        live = requests.get(f"{server}/health/live", timeout=10)
    finally:
        faults_cluster.start()

    # then: the API's error body with Retry-After, wherever the database was needed
    for response in (api_in_middleware, api_in_view):
        assert (response.status_code, response.headers["Content-Type"]) == (503, "application/json")
        assert response.json() == UNAVAILABLE
        assert response.headers["Retry-After"] == "30"
    # a plain page elsewhere, without a stack
    assert (page.status_code, page.headers["Content-Type"]) == (503, "text/html; charset=utf-8")
    assert page.headers["Retry-After"] == "30"
    assert "Temporarily unavailable" in page.text
    assert "Traceback" not in page.text
    # readiness names the database; liveness does not need it
    assert ready.status_code == 503
    assert {name: result["status"] for name, result in ready.json()["checks"].items()} == {
        "database": "fail",
        "cache": "ok",
        "disk": "ok",
        "migrations": "fail",
    }
    assert ready.json()["checks"]["database"]["detail"].startswith("OperationalError: ")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})

    # and once the database is back, the same server answers, the same session still signed in
    assert requests.get(f"{server}/health/ready", timeout=10).status_code == 200
    assert browser.get(f"{server}/api/v1/me/", timeout=10).json()["email"] == PERSON_EMAIL
    home = browser.get(f"{server}/", timeout=10)
    assert home.status_code == 200
    assert f"Signed in as {PERSON_EMAIL}." in home.text
    assert signed_in(server).get(f"{server}/api/v1/me/", timeout=10).status_code == 200
