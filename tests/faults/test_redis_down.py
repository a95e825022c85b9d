"""Redis dies under the running system, and comes back.

Sessions live in the database with a copy in Redis, the shared cache fails open (permissions are computed instead),
throttles count in memory, and readiness says 503 naming the cache. What changed while Redis was down (a revoked
session, a lost role) still holds when it comes back with its old data.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts import session_store
from accounts.models import User, UserSession
from accounts.oidc import bearer
from organizations.models import Department
from rbac.models import RoleAssignment
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.faults.conftest import RedisServer

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

LOGIN_URL = "/api/v1/auth/login/"
ME_URL = "/api/v1/me/"
SESSIONS_URL = "/api/v1/me/sessions/"
READY_URL = "/health/ready"
COPY_PREFIX = "django.contrib.sessions.cached_db"  # the session engine's key for a session's copy
CACHED_SESSION_PREFIX = f"faults-sessions:1:{COPY_PREFIX}"  # the same in Redis (the cache's prefix and version)


def sign_in(user: User) -> APIClient:
    browser = APIClient()
    response = browser.post(LOGIN_URL, {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return browser


def session_key(browser: APIClient | Client) -> str:
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


def departments_url(department: Department) -> str:
    return f"/api/v1/organizations/{department.organization.slug}/departments/"


def listed_departments(browser: APIClient, department: Department) -> list[int]:
    response = browser.get(departments_url(department))
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_with_redis_down_everyone_stays_signed_in_can_sign_in_and_is_checked(on_redis: RedisServer, member, department):
    # given: the member signed in through the API and an operator in the back office, before Redis goes
    browser = sign_in(member)
    operator = SuperuserFactory()
    back_office = Client()
    assert back_office.post("/admin/login/", {"username": operator.email, "password": PASSWORD}).status_code == 302
    newcomer = UserFactory()
    assert browser.get(departments_url(department)).status_code == 200

    # when
    on_redis.kill()

    # then: both stay signed in, and permissions are computed (the member reads departments, may not add one)
    assert browser.get(ME_URL).json()["email"] == member.email
    listed = browser.get(departments_url(department))
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [department.pk]
    refused = browser.post(departments_url(department), {"name": "Sales", "code": "SAL"})
    assert refused.status_code == 403
    assert not Department.objects.filter(code="SAL").exists()
    assert back_office.get("/admin/").status_code == 200
    # a new sign-in works, and its session is listed
    newcomer_browser = sign_in(newcomer)
    assert newcomer_browser.get(ME_URL).json()["email"] == newcomer.email
    assert [row["current"] for row in newcomer_browser.get(SESSIONS_URL).json()] == [True]
    # and readiness names the cache
    ready = Client().get(READY_URL)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert {name: result["status"] for name, result in checks.items()} == {
        "database": "ok",
        "cache": "fail",
        "disk": "ok",
        "migrations": "ok",
    }
    assert checks["cache"]["detail"].startswith("ConnectionError: Error 111 connecting to 127.0.0.1:")

    # when: Redis is back
    on_redis.start()

    # then: everything answers, and sessions are cached again
    assert Client().get(READY_URL).status_code == 200
    assert [browser.get(ME_URL).status_code, newcomer_browser.get(ME_URL).status_code] == [200, 200]
    assert back_office.get("/admin/").status_code == 200
    assert on_redis.client().exists(CACHED_SESSION_PREFIX + session_key(browser)) == 1


def test_throttles_keep_counting_while_redis_is_down(on_redis: RedisServer, member, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    on_redis.kill()

    # when
    statuses = [APIClient().post(LOGIN_URL, {"email": member.email, "password": PASSWORD}) for _ in range(3)]

    # then: the third sign-in from the same address is refused, as it would be with Redis up
    assert [response.status_code for response in statuses] == [200, 200, 429]
    assert statuses[2].json()["error"]["code"] == "throttled"
    assert UserSession.objects.filter(user=member).count() == 2


def test_only_public_values_stay_in_this_process_s_memory_while_redis_is_down(on_redis: RedisServer):
    # given
    on_redis.kill()
    keys = [{"kid": "rsa-1", "kty": "RSA"}]

    # when: the provider's keys, a permission entry, and the provider's refetch allowance are cached
    cache.set("oidc:jwks:set:issuer", keys, 60)
    cache.set("rbac:effective:v3:1:1:0:0:0", "stale the moment a role changes", 60)
    allowances = [cache.add("oidc:jwks:refetch:issuer", 1, 60), cache.add("oidc:jwks:refetch:issuer", 1, 60)]

    # then: the public keys are read back, the permission entry is not (it is computed again), and one refetch a minute
    assert cache.get("oidc:jwks:set:issuer") == keys
    assert cache.get("rbac:effective:v3:1:1:0:0:0") is None
    assert allowances == [True, False]


def test_an_account_deactivated_while_redis_was_down_is_refused_to_bearer_tokens_when_it_comes_back(
    on_redis: RedisServer,
):
    # given: the account behind a bearer token's subject, cached; Redis keeps a snapshot
    person = UserFactory(oidc_subject="subject-1")
    assert bearer.user_for_subject("subject-1") == person
    on_redis.snapshot()
    on_redis.kill()

    # when: the account is deactivated while Redis is down, and Redis comes back with the copy of the active account
    person.is_active = False
    person.save()
    on_redis.start()

    # then
    with pytest.raises(bearer.TokenRejectedError) as refused:
        bearer.user_for_subject("subject-1")
    assert refused.value.reason == "inactive_user"


def test_what_changed_while_redis_was_down_holds_when_it_comes_back_with_its_old_data(
    on_redis: RedisServer, member, department
):
    # given: two sessions of the member, and the member's permissions, cached in Redis; Redis keeps a snapshot
    laptop, phone = sign_in(member), sign_in(member)
    assert listed_departments(laptop, department) == [department.pk]
    assert phone.get(ME_URL).status_code == 200
    phone_key = session_key(phone)
    on_redis.snapshot()
    on_redis.kill()

    # when: the laptop revokes the phone's session, and the member loses the role, while Redis is down
    phone_row = UserSession.objects.get(session_key=phone_key)
    assert laptop.delete(f"{SESSIONS_URL}{phone_row.pk}/").status_code == 204
    RoleAssignment.objects.filter(user=member).delete()
    assert listed_departments(laptop, department) == []
    # the copies that could not be removed (the phone's) or refreshed from the database (the laptop's) are to go
    assert session_store.stale_cache_keys() == {COPY_PREFIX + phone_key, COPY_PREFIX + session_key(laptop)}

    # and Redis comes back with what it held before
    on_redis.start()
    assert on_redis.client().exists(CACHED_SESSION_PREFIX + phone_key) == 1  # a stale copy of the revoked session

    # then: the revoked session stays revoked, the lost role stays lost
    assert phone.get(ME_URL).status_code == 401
    assert listed_departments(laptop, department) == []
    assert laptop.get(ME_URL).status_code == 200
    assert on_redis.client().exists(CACHED_SESSION_PREFIX + phone_key) == 0
    assert session_store.stale_cache_keys() == frozenset()
    assert list(UserSession.objects.filter(user=member).values_list("session_key", flat=True)) == [session_key(laptop)]
