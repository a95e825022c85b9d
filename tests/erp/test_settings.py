"""The settings module: one module for every environment, switched by environment variables."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def run_manage(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"ERP_ENV", "SECRET_KEY", "DEBUG"}}
    env.update(environment)
    return subprocess.run(  # noqa: S603 - a fixed command line built by the test
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_suite_runs_on_postgresql_and_redis():
    # make test points DATABASE_URL and REDIS_URL at the real services; the embedded SQLite default is not tested here.
    assert connection.vendor == "postgresql"
    assert settings.CACHES["default"]["BACKEND"] == "erp.cache.RedisCache"
    assert settings.SESSION_ENGINE == "accounts.session_store"


@pytest.mark.django_db
def test_postgresql_connections_are_persistent_with_a_statement_timeout():
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"]["options"] == "-c statement_timeout=30000"
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)


@pytest.mark.django_db
def test_statements_sent_often_are_prepared_on_the_server():
    database = settings.DATABASES["default"]
    assert database["OPTIONS"]["server_side_binding"] is True
    assert database["OPTIONS"]["prepare_threshold"] == 5
    statement = "SELECT count(*) FROM django_content_type WHERE app_label = %s"
    with connection.cursor() as cursor:
        for _ in range(6):
            cursor.execute(statement, ["tasks"])
            assert cursor.fetchone()[0] > 0
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert "SELECT count(*) FROM django_content_type WHERE app_label = $1" in prepared


def database_options(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_PREPARE_THRESHOLD"}
    env.update(environment)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'erp.settings'); django.setup();"
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS'];"
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    return subprocess.run(  # noqa: S603 - a fixed command line built by the test
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_prepared_statements_can_be_turned_off_or_prepared_sooner():
    turned_off = database_options(DATABASE_PREPARE_THRESHOLD="off")
    assert turned_off.returncode == 0, turned_off.stderr
    assert turned_off.stdout.split() == ["None", "None"]
    sooner = database_options(DATABASE_PREPARE_THRESHOLD="0")
    assert sooner.returncode == 0, sooner.stderr
    assert sooner.stdout.split() == ["True", "0"]


def test_a_prepare_threshold_that_is_not_a_number_is_refused():
    result = database_options(DATABASE_PREPARE_THRESHOLD="sometimes")
    assert result.returncode != 0
    assert "DATABASE_PREPARE_THRESHOLD must be a whole number of uses or off, not 'sometimes'" in result.stderr


def test_prod_passes_the_deployment_checks():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ERP_ENV="prod",
        SECRET_KEY="a-long-production-secret-" + "x" * 40,
        ALLOWED_HOSTS="erp.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_prod_refuses_to_start_without_a_secret_key():
    result = run_manage("check", ERP_ENV="prod", ALLOWED_HOSTS="erp.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_an_unknown_environment_name_is_refused():
    result = run_manage("check", ERP_ENV="production")
    assert result.returncode != 0
    assert "ERP_ENV must be dev, staging or prod" in result.stderr


def test_dev_without_database_url_uses_the_embedded_sqlite_file(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "ERP_ENV"}}
    env["ERP_DATA_DIR"] = str(tmp_path)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'erp.settings'); django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CACHES['default']['BACKEND'],"
        " s.SESSION_ENGINE)"
    )
    result = subprocess.run(  # noqa: S603 - a fixed command line built by the test
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        str(tmp_path / "db.sqlite3"),
        "django.core.cache.backends.locmem.LocMemCache",
        "django.contrib.sessions.backends.db",
    ]
