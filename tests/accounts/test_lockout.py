"""Account lockout and sign-in throttling for local password sign-ins (API and admin alike)."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import User
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = "/api/v1/auth/login/"
ADMIN_LOGIN_URL = "/admin/login/"


@pytest.fixture
def person() -> User:
    return UserFactory(email="ann@example.com", full_name="Ann Lee", is_staff=True)


def api_login(email: str, password: str, client: APIClient | None = None):
    return (client or APIClient()).post(LOGIN_URL, {"email": email, "password": password})


def kinds() -> list[str]:
    return list(SecurityEvent.objects.order_by("pk").values_list("kind", flat=True))


def test_five_failures_lock_the_account_and_the_right_password_is_then_refused(person):
    # given: four failures leave the account open
    for _ in range(4):
        assert api_login("ann@example.com", "wrong-password").status_code == 401
    person.refresh_from_db()
    assert (person.failed_login_count, person.locked_until) == (4, None)

    # when: the fifth failure
    started = timezone.now()
    assert api_login("ANN@example.com", "wrong-password").status_code == 401

    # then: locked for 30 minutes, and the right password does not open it
    person.refresh_from_db()
    assert person.failed_login_count == 0
    assert person.locked_until is not None
    lock = person.locked_until - started
    assert datetime.timedelta(minutes=29, seconds=59) < lock <= datetime.timedelta(minutes=30, seconds=5)
    response = api_login("ann@example.com", PASSWORD)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    # (the lock is recorded while the fifth attempt is refused, before that attempt's failure)
    assert kinds() == [SecurityEventKind.LOGIN_FAILED] * 4 + [
        SecurityEventKind.ACCOUNT_LOCKED,
        SecurityEventKind.LOGIN_FAILED,
        SecurityEventKind.LOGIN_FAILED,
    ]
    locked = SecurityEvent.objects.get(kind=SecurityEventKind.ACCOUNT_LOCKED)
    assert locked.target_user_id == person.pk
    assert locked.data["failures"] == 5


def test_the_lock_ends_by_itself(person):
    # given: a lock that has just expired
    User.objects.filter(pk=person.pk).update(locked_until=timezone.now() - datetime.timedelta(seconds=1))

    # when / then
    assert api_login("ann@example.com", PASSWORD).status_code == 200
    person.refresh_from_db()
    assert person.locked_until is None


def test_a_success_resets_the_counter(person):
    # given
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")

    # when
    assert api_login("ann@example.com", PASSWORD).status_code == 200

    # then: four more failures do not lock
    person.refresh_from_db()
    assert person.failed_login_count == 0
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")
    person.refresh_from_db()
    assert person.locked_until is None


def test_the_admin_login_counts_towards_the_same_lock(person):
    # given: four failures through the API
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")

    # when: a fifth through the admin's login form
    response = Client().post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": "wrong-password"})

    # then: locked, and the admin refuses the right password too
    assert response.status_code == 200  # the form again, with its error
    person.refresh_from_db()
    assert person.locked_until is not None
    response = Client().post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in response.wsgi_request.session


def test_failures_for_unknown_emails_lock_nothing_and_are_recorded(person):
    # when
    api_login("nobody@example.com", "whatever-password")

    # then
    event = SecurityEvent.objects.get()
    assert (event.kind, event.actor_id, event.target_user_id) == (SecurityEventKind.LOGIN_FAILED, None, None)
    assert event.detail.email == "nobody@example.com"
    assert "nobody@example.com" not in str(event.data)


def test_lockout_counters_are_not_history(person):
    # when
    for _ in range(5):
        api_login("ann@example.com", "wrong-password")

    # then: the lock is a security event, not a version of the account
    assert person.history.count() == 1  # its creation


def test_sign_in_attempts_are_throttled_per_client_address(person, monkeypatch):
    # given: a rate of 3 a minute (the throttle reads its rates at class level)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    for _ in range(3):
        assert api_login("ann@example.com", "wrong-password", client).status_code == 401
    # when
    response = api_login("ann@example.com", PASSWORD, client)
    other = api_login("ann@example.com", "wrong-password", APIClient(REMOTE_ADDR="203.0.113.10"))

    # then
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert other.status_code == 401
