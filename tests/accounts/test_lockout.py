"""Sign-in limits (django-axes, accounts.signin_limits): every password check — API sign-in, admin sign-in, password
change — counts per account and per client address, and the client address is the socket's unless a trusted proxy
forwarded the request."""

import datetime

import pytest
from axes.models import AccessAttempt
from django.core.cache import caches
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts import signin_limits
from accounts.models import User, UserSession
from audit.models import SecurityEvent, SecurityEventDetail, SecurityEventKind
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = "/api/v1/auth/login/"
ADMIN_LOGIN_URL = "/admin/login/"
PASSWORD_URL = "/api/v1/me/password/"
NEW_PASSWORD = "a-brand-new-passphrase-42"
LOCK = datetime.timedelta(minutes=30)


@pytest.fixture
def person() -> User:
    return UserFactory(email="ann@example.com", full_name="Ann Lee", is_staff=True)


def api_login(email: str, password: str, client: APIClient | None = None, **headers: str):
    return (client or APIClient()).post(LOGIN_URL, {"email": email, "password": password}, **headers)


def kinds() -> list[str]:
    return list(SecurityEvent.objects.order_by("pk").values_list("kind", flat=True))


def assert_locked_response(response, *, at_least: int = 1) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["error"]["code"] == "account_locked"
    assert body["error"]["message"].startswith("Too many failed sign-ins: signing in is locked for this account")
    assert body["error"]["fields"] == {}
    assert at_least <= int(response["Retry-After"]) <= LOCK.total_seconds()


# --- per account ------------------------------------------------------------------------------------------------------


def test_five_failures_lock_the_account_and_the_right_password_is_then_refused(person):
    # given: four failures leave the account open
    for _ in range(4):
        assert api_login("ann@example.com", "wrong-password").status_code == 401
    assert signin_limits.account_lock_end("ann@example.com") is None

    # when: the fifth failure, in another letter case (one count per account)
    started = timezone.now()
    fifth = api_login("ANN@example.com", "wrong-password")

    # then: locked for 30 minutes (the fifth answer says so), and the right password does not open it
    assert_locked_response(fifth, at_least=int(LOCK.total_seconds()) - 5)
    end = signin_limits.account_lock_end("ann@example.com")
    assert end is not None
    lock = end - started
    assert datetime.timedelta(minutes=29, seconds=59) < lock <= datetime.timedelta(minutes=30, seconds=5)
    assert_locked_response(api_login("ann@example.com", PASSWORD))
    assert "_auth_user_id" not in APIClient().session
    # (the lock is recorded while the fifth attempt is refused, before that attempt's failure; refusals during the lock
    # are failures but no new lock)
    assert kinds() == [SecurityEventKind.LOGIN_FAILED] * 4 + [
        SecurityEventKind.ACCOUNT_LOCKED,
        SecurityEventKind.LOGIN_FAILED,
        SecurityEventKind.LOGIN_FAILED,
    ]
    locked = SecurityEvent.objects.get(kind=SecurityEventKind.ACCOUNT_LOCKED)
    assert locked.target_user_id == person.pk
    assert (locked.data["failures"], locked.data["scope"], locked.data["limit"]) == (5, "account", 5)
    assert locked.detail.email == "ann@example.com"


def test_attempts_refused_during_a_lock_do_not_prolong_it(person):
    # given: a lock
    for _ in range(5):
        api_login("ann@example.com", "wrong-password")
    end = signin_limits.account_lock_end("ann@example.com")

    # when: more attempts while it holds
    for _ in range(3):
        assert_locked_response(api_login("ann@example.com", "wrong-password"))

    # then
    assert signin_limits.account_lock_end("ann@example.com") == end
    assert AccessAttempt.objects.get().failures_since_start == 5


def test_the_lock_ends_by_itself(person):
    # given: a lock whose last failure is just over 30 minutes old
    for _ in range(5):
        api_login("ann@example.com", "wrong-password")
    AccessAttempt.objects.update(attempt_time=timezone.now() - LOCK - datetime.timedelta(seconds=1))

    # when / then
    assert signin_limits.account_lock_end("ann@example.com") is None
    assert api_login("ann@example.com", PASSWORD).status_code == 200
    assert AccessAttempt.objects.count() == 0


def test_a_success_resets_the_counter(person):
    # given
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")

    # when
    assert api_login("ann@example.com", PASSWORD).status_code == 200

    # then: four more failures do not lock
    assert AccessAttempt.objects.count() == 0
    for _ in range(4):
        assert api_login("ann@example.com", "wrong-password").status_code == 401
    assert signin_limits.account_lock_end("ann@example.com") is None


def test_one_account_guessed_at_from_many_addresses_locks(person):
    # given / when: each failure from another address
    answers = [
        api_login("ann@example.com", "wrong-password", APIClient(REMOTE_ADDR=f"203.0.113.{number}")).status_code
        for number in range(1, 7)
    ]

    # then
    assert answers == [401, 401, 401, 401, 429, 429]
    assert_locked_response(api_login("ann@example.com", PASSWORD, APIClient(REMOTE_ADDR="198.51.100.1")))


def test_the_admin_login_counts_towards_the_same_lock(person):
    # given: four failures through the API
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")

    # when: a fifth through the admin's login form
    response = Client().post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": "wrong-password"})

    # then: locked, with a page that says so; the admin refuses the right password too
    assert response.status_code == 429
    assert "Too many failed sign-ins: signing in is locked for this account or this address until" in (
        response.content.decode()
    )
    assert signin_limits.account_lock_end("ann@example.com") is not None
    response = Client().post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in response.wsgi_request.session


def test_the_admin_login_form_alone_locks_after_the_limit(person):
    # given
    browser = Client()
    for _ in range(4):
        response = browser.post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": "wrong-password"})
        assert response.status_code == 200  # the form again, with its error

    # when
    fifth = browser.post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": "wrong-password"})
    right = browser.post(ADMIN_LOGIN_URL, {"username": "ann@example.com", "password": PASSWORD})

    # then
    assert (fifth.status_code, right.status_code) == (429, 429)
    assert int(right["Retry-After"]) > 0
    assert '<p class="errornote" id="signin-locked">Too many failed sign-ins' in right.content.decode()
    assert "_auth_user_id" not in right.wsgi_request.session


def test_failures_for_unknown_emails_are_recorded_and_lock_like_known_ones(person):
    # when
    first = api_login("nobody@example.com", "whatever-password")

    # then: the failure is recorded without a person
    assert first.status_code == 401
    event = SecurityEvent.objects.get()
    assert (event.kind, event.actor_id, event.target_user_id) == (SecurityEventKind.LOGIN_FAILED, None, None)
    assert event.detail.email == "nobody@example.com"
    assert "nobody@example.com" not in str(event.data)
    # and an unknown email locks after as many failures as a known one: the answers do not tell which emails exist
    answers = [api_login("nobody@example.com", "whatever-password").status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]


def test_lockout_counters_are_not_history(person):
    # when
    for _ in range(5):
        api_login("ann@example.com", "wrong-password")

    # then: the lock is a security event, not a version of the account
    assert person.history.count() == 1  # its creation


# --- per client address -----------------------------------------------------------------------------------------------


def test_sixty_sign_ins_with_a_new_forwarded_address_each_reach_429_long_before_sixty(person):
    # given: no trusted proxy, so X-Forwarded-For is the client's own words
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    # when: sixty failures, each on another account and each naming another address
    answers = [
        api_login(f"person{number}@example.com", "wrong-password", client, HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
        for number in range(60)
    ]

    # then: the address locks at its limit (25), before the throttle's 30 a minute answers too
    codes = [answer.status_code for answer in answers]
    assert codes.index(429) == 24
    assert set(codes[:24]) == {401}
    assert set(codes[24:]) == {429}
    for answer in answers[24:30]:
        assert_locked_response(answer)
    assert {answer.json()["error"]["code"] for answer in answers[30:]} == {"throttled"}
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}
    # and, once the throttle's minute is over, the address is still locked even for the right password of an account;
    # other addresses are not affected
    caches["default"].clear()
    assert_locked_response(api_login("ann@example.com", PASSWORD, client))
    assert api_login("ann@example.com", PASSWORD, APIClient(REMOTE_ADDR="203.0.113.10")).status_code == 200


def test_sixty_sign_ins_on_one_account_with_a_new_forwarded_address_each_reach_429_at_the_fifth(person):
    # when
    codes = [
        api_login("ann@example.com", "wrong-password", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}").status_code
        for number in range(60)
    ]

    # then
    assert codes.index(429) == 4
    assert codes.count(401) == 4


def test_an_office_behind_one_address_does_not_lock_itself_out_after_a_few_typos(person):
    # given: four people of one office mistype their passwords four times each, from the office's address
    office = APIClient(REMOTE_ADDR="192.0.2.80")
    for number in range(4):
        colleague = UserFactory(email=f"colleague{number}@example.com")
        for _ in range(4):
            assert api_login(colleague.email, "wrong-password", office).status_code == 401

    # when
    response = api_login("ann@example.com", PASSWORD, office)

    # then
    assert response.status_code == 200


def test_signing_in_to_ones_own_account_does_not_reset_the_address_count(person):
    # given: an address that tried 24 accounts
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    for number in range(24):
        assert api_login(f"person{number}@example.com", "wrong-password", client).status_code == 401

    # when: it signs in to an account of its own, then tries one more
    assert api_login("ann@example.com", PASSWORD, client).status_code == 200
    response = api_login("person99@example.com", "wrong-password", client)

    # then
    assert_locked_response(response)
    locked = SecurityEvent.objects.get(kind=SecurityEventKind.ACCOUNT_LOCKED)
    assert (locked.data["scope"], locked.data["address_limit"]) == ("address", 25)
    assert locked.detail.ip == "203.0.113.9"


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


def test_the_throttle_ignores_x_forwarded_for_without_a_trusted_proxy(person, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    client = APIClient(REMOTE_ADDR="203.0.113.9")

    # when: each attempt names a new address, on another account so that no lock answers first
    codes = [
        api_login(f"person{number}@example.com", "wrong-password", client, HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
        for number in range(4)
    ]

    # then
    assert [answer.status_code for answer in codes] == [401, 401, 401, 429]
    assert codes[3].json()["error"]["code"] == "throttled"


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(person, settings, monkeypatch):
    # given: a proxy network; the client claims an address of its own, the proxy appends the one it saw
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    proxy = APIClient(REMOTE_ADDR="10.1.2.3")

    # when: failures from one client through the proxy, then a sign-in of another client through it
    for _ in range(3):
        api_login("person1@example.com", "wrong-password", proxy, HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.7")
    throttled = api_login("ann@example.com", PASSWORD, proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    signed_in = api_login("ann@example.com", PASSWORD, proxy, HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.8")

    # then: counted, throttled and recorded under the address the proxy saw, never the claimed one or the proxy's
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    assert throttled.status_code == 429
    assert signed_in.status_code == 200
    assert UserSession.objects.get(user=person).ip == "198.51.100.8"
    failure = SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_FAILED).first()
    assert SecurityEventDetail.objects.get(event=failure).ip == "198.51.100.7"


# --- password change --------------------------------------------------------------------------------------------------


def test_wrong_current_passwords_count_as_failed_sign_ins_and_lock(person):
    # given
    session = APIClient(REMOTE_ADDR="203.0.113.9")
    session.force_login(person)
    password_before = User.objects.get(pk=person.pk).password

    # when: four wrong current passwords, then a fifth
    codes = [
        session.post(PASSWORD_URL, {"current_password": "not-my-password", "new_password": NEW_PASSWORD}).status_code
        for _ in range(4)
    ]
    fifth = session.post(PASSWORD_URL, {"current_password": "not-my-password", "new_password": NEW_PASSWORD})
    right = session.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    # then: the account is locked, for the password change and for signing in; the password is unchanged
    assert codes == [400, 400, 400, 400]
    assert_locked_response(fifth)
    assert_locked_response(right)
    assert_locked_response(api_login("ann@example.com", PASSWORD))
    assert User.objects.get(pk=person.pk).password == password_before
    failures = SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_FAILED)
    assert failures.count() == 7
    assert set(failures.values_list("target_user_id", flat=True)) == {person.pk}
    assert kinds().count(SecurityEventKind.PASSWORD_CHANGED) == 0


def test_wrong_current_passwords_count_with_sign_in_failures(person):
    # given: a signed-in session, then four failed sign-ins elsewhere
    session = APIClient()
    session.force_login(person)
    for _ in range(4):
        api_login("ann@example.com", "wrong-password")

    # when
    response = session.post(PASSWORD_URL, {"current_password": "not-my-password", "new_password": NEW_PASSWORD})

    # then
    assert_locked_response(response)


def test_password_changes_are_throttled_per_client_address(person, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    session = APIClient(REMOTE_ADDR="203.0.113.9")
    session.force_login(person)
    for _ in range(3):
        session.post(PASSWORD_URL, {"current_password": "not-my-password", "new_password": NEW_PASSWORD})

    # when
    response = session.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    # then
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    person.refresh_from_db()
    assert person.check_password(PASSWORD) is True
