"""Signed-in sessions: the index, listing and revoking them, the cap per person, idle and absolute timeouts, and the
sessions that end when a password changes or an account is deactivated or deleted.

These hold on either session engine: the database with a copy in Redis (``make test``) and the database alone (the
embedded default). With Redis down, see tests/faults/test_redis_down.py.
"""

from __future__ import annotations

import datetime
from importlib import import_module
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.management.commands import changepassword
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services, sessions
from accounts.models import User, UserSession
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.api_helpers import NOT_AUTHENTICATED, NOT_FOUND, iso

pytestmark = pytest.mark.django_db

LOGIN_URL = "/api/v1/auth/login/"
LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/me/"
SESSIONS_URL = "/api/v1/me/sessions/"
REVOKE_OTHERS_URL = "/api/v1/me/sessions/revoke-others/"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def person() -> User:
    return UserFactory(email="ann@example.com")


def sign_in(user: User, *, user_agent: str = FIREFOX, ip: str = "198.51.100.7") -> APIClient:
    """A browser that signed in through the API login."""
    client = APIClient(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post(LOGIN_URL, {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return client


def session_key(client: APIClient) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def row_of(client: APIClient) -> UserSession:
    return UserSession.objects.get(session_key=session_key(client))


def is_signed_in(client: APIClient) -> bool:
    response = client.get(ME_URL)
    assert response.status_code in (200, 401), response.content
    return response.status_code == 200


def store_holds(key: str) -> bool:
    return import_module(settings.SESSION_ENGINE).SessionStore().exists(key)


def revocations() -> list[tuple[int | None, int | None, dict]]:
    return list(
        SecurityEvent.objects.filter(kind=SecurityEventKind.SESSION_REVOKED)
        .order_by("sequence")
        .values_list("actor_id", "target_user_id", "data")
    )


@pytest.fixture
def clock(monkeypatch):
    """Moves the sessions' clock forward: ``clock(minutes=31)`` makes every later request happen 31 minutes on."""
    start = timezone.now()

    def shift(**delta: float) -> datetime.datetime:
        moment = start + datetime.timedelta(**delta)
        monkeypatch.setattr(sessions, "now", lambda: moment)
        return moment

    return shift


# --- The index and the list ------------------------------------------------------------------------------------------


def test_signing_in_indexes_the_session_and_the_person_lists_it(person):
    # given
    browser = sign_in(person)

    # when
    response = browser.get(SESSIONS_URL)

    # then
    row = row_of(browser)
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": row.pk,
            "device": "Firefox on Linux",
            "user_agent": FIREFOX,
            "ip": "198.51.100.7",
            "created_at": iso(row.created_at),
            "last_seen_at": iso(row.last_seen_at),
            "current": True,
        }
    ]
    assert row.user == person


def test_the_list_holds_only_my_sessions_newest_first_and_marks_the_current_one(person):
    # given
    laptop = sign_in(person)
    phone = sign_in(person, user_agent=SAFARI, ip="203.0.113.9")
    sign_in(UserFactory())

    # when
    body = laptop.get(SESSIONS_URL).json()

    # then
    assert [(item["id"], item["device"], item["ip"], item["current"]) for item in body] == [
        (row_of(phone).pk, "Safari on iOS", "203.0.113.9", False),
        (row_of(laptop).pk, "Firefox on Linux", "198.51.100.7", True),
    ]


def test_a_session_the_store_has_dropped_is_no_longer_listed(person):
    # given: the store lost one session (expired there, or the store restarted)
    laptop, phone = sign_in(person), sign_in(person)
    dropped = row_of(phone)
    import_module(settings.SESSION_ENGINE).SessionStore().delete(dropped.session_key)

    # when
    body = laptop.get(SESSIONS_URL).json()

    # then
    assert [item["id"] for item in body] == [row_of(laptop).pk]
    assert not UserSession.objects.filter(pk=dropped.pk).exists()


def test_anonymous_callers_cannot_list_or_revoke_sessions(api_client, person):
    # given
    sign_in(person)
    row = UserSession.objects.get()

    # when
    responses = [
        api_client.get(SESSIONS_URL),
        api_client.delete(f"{SESSIONS_URL}{row.pk}/"),
        api_client.post(REVOKE_OTHERS_URL),
    ]

    # then
    assert [(response.status_code, response.json()) for response in responses] == [(401, NOT_AUTHENTICATED)] * 3
    assert UserSession.objects.filter(pk=row.pk).exists()


def test_signing_out_removes_the_session_from_the_index(person):
    # given
    browser = sign_in(person)
    key = session_key(browser)

    # when
    response = browser.post(LOGOUT_URL)

    # then
    assert response.status_code == 204
    assert not UserSession.objects.exists()
    assert not store_holds(key)


def test_signing_in_over_another_persons_session_replaces_its_row(person):
    # given: one browser, first signed in as someone else
    browser = sign_in(UserFactory())

    # when
    response = browser.post(LOGIN_URL, {"email": person.email, "password": PASSWORD})

    # then
    assert response.status_code == 200
    assert list(UserSession.objects.values_list("user_id", "session_key")) == [(person.pk, session_key(browser))]


# --- Revoking --------------------------------------------------------------------------------------------------------


def test_revoking_one_session_signs_it_out_at_once(person):
    # given
    laptop, phone = sign_in(person), sign_in(person)
    target = row_of(phone)

    # when
    response = laptop.delete(f"{SESSIONS_URL}{target.pk}/")

    # then
    assert response.status_code == 204
    assert not is_signed_in(phone)
    assert is_signed_in(laptop)
    assert not store_holds(target.session_key)
    assert list(UserSession.objects.values_list("pk", flat=True)) == [row_of(laptop).pk]
    assert revocations() == [(person.pk, person.pk, {"reason": "revoked", "ended": 1})]


def test_revoking_my_current_session_signs_me_out(person):
    # given
    browser = sign_in(person)

    # when
    response = browser.delete(f"{SESSIONS_URL}{row_of(browser).pk}/")

    # then
    assert response.status_code == 204
    assert browser.get(ME_URL).json() == NOT_AUTHENTICATED
    assert not UserSession.objects.exists()


def test_another_persons_session_is_not_found_and_nothing_changes(person):
    # given
    mine = sign_in(person)
    theirs = sign_in(UserFactory())
    their_row = row_of(theirs)

    # when
    response = mine.delete(f"{SESSIONS_URL}{their_row.pk}/")

    # then
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert is_signed_in(theirs)
    assert UserSession.objects.filter(pk=their_row.pk, session_key=their_row.session_key).exists()
    assert revocations() == []


def test_revoking_all_other_sessions_keeps_only_mine(person):
    # given
    laptop, phone, tablet = sign_in(person), sign_in(person), sign_in(person)
    stranger = sign_in(UserFactory())

    # when
    response = laptop.post(REVOKE_OTHERS_URL)

    # then
    assert (response.status_code, response.json()) == (200, {"revoked": 2})
    assert [is_signed_in(client) for client in (laptop, phone, tablet, stranger)] == [True, False, False, True]
    assert [item["current"] for item in laptop.get(SESSIONS_URL).json()] == [True]
    assert revocations() == [(person.pk, person.pk, {"reason": "others_revoked", "ended": 2})]


def test_a_caller_without_a_session_lists_none_as_current_and_revokes_them_all(person, client_for):
    # given: an API client authenticated otherwise than by a session cookie (a bearer token)
    laptop = sign_in(person)
    token_client = client_for(person)

    # when
    listed = token_client.get(SESSIONS_URL).json()
    response = token_client.post(REVOKE_OTHERS_URL)

    # then
    assert [item["current"] for item in listed] == [False]
    assert response.json() == {"revoked": 1}
    assert not is_signed_in(laptop)


# --- The cap ---------------------------------------------------------------------------------------------------------


def test_a_sixth_sign_in_ends_the_oldest_session(person):
    # given
    browsers = [sign_in(person) for _ in range(settings.SESSION_MAX_PER_USER)]

    # when
    newest = sign_in(person)

    # then
    assert [is_signed_in(client) for client in [*browsers, newest]] == [False, True, True, True, True, True]
    assert UserSession.objects.filter(user=person).count() == 5
    assert revocations() == [(person.pk, person.pk, {"reason": "session_limit", "ended": 1})]


def test_the_cap_is_a_setting(person, settings):
    # given
    settings.SESSION_MAX_PER_USER = 2
    first, second = sign_in(person), sign_in(person)

    # when
    third = sign_in(person)

    # then
    assert [is_signed_in(client) for client in (first, second, third)] == [False, True, True]


# --- Timeouts --------------------------------------------------------------------------------------------------------


def test_an_idle_session_is_signed_out(person, clock):
    # given
    browser = sign_in(person)
    key = session_key(browser)

    # when: no request for the idle timeout (30 minutes)
    clock(minutes=30, seconds=1)
    response = browser.get(ME_URL)

    # then
    assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED)
    assert not UserSession.objects.exists()
    assert not store_holds(key)
    assert revocations() == [(None, person.pk, {"reason": "idle_timeout", "ended": 1})]


def test_activity_slides_the_idle_timeout_and_is_written_at_most_once_a_minute(person, clock):
    # given
    browser = sign_in(person)
    signed_in_at = row_of(browser).last_seen_at

    # when / then: within the resolution nothing is written
    clock(seconds=30)
    assert is_signed_in(browser)
    assert row_of(browser).last_seen_at == signed_in_at

    # when / then: later, the activity is recorded, and the idle timeout counts from it
    later = clock(minutes=20)
    assert is_signed_in(browser)
    assert row_of(browser).last_seen_at == later
    clock(minutes=45)
    assert is_signed_in(browser)
    clock(minutes=75, seconds=1)
    assert not is_signed_in(browser)


def test_a_session_ends_at_the_absolute_timeout_however_active(person, clock, settings):
    # given
    settings.SESSION_ABSOLUTE_TIMEOUT = 60 * 60
    browser = sign_in(person)

    # when: used every 25 minutes
    clock(minutes=25)
    assert is_signed_in(browser)
    clock(minutes=50)
    assert is_signed_in(browser)
    clock(minutes=60)

    # then
    assert not is_signed_in(browser)
    assert revocations() == [(None, person.pk, {"reason": "absolute_timeout", "ended": 1})]


def test_the_store_keeps_a_session_for_the_idle_timeout_and_never_beyond_the_absolute_one(person, settings):
    # given
    settings.SESSION_ABSOLUTE_TIMEOUT = 20 * 60

    # when
    browser = sign_in(person)

    # then
    assert browser.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 20 * 60
    assert sessions._expiry_seconds(started=0, moment=0) == 20 * 60
    settings.SESSION_ABSOLUTE_TIMEOUT = 12 * 60 * 60
    assert sessions._expiry_seconds(started=0, moment=0) == 30 * 60 + 60
    assert sessions._expiry_seconds(started=0, moment=12 * 60 * 60 - 5) == 5


def test_a_session_whose_row_has_gone_is_signed_out_at_its_next_recorded_activity(person, clock):
    # given: revoked while one of its requests was under way, which saved it back into the store
    browser = sign_in(person)
    UserSession.objects.all().delete()

    # when
    clock(minutes=2)

    # then
    assert not is_signed_in(browser)
    assert revocations() == []


def test_a_session_signed_in_before_the_index_existed_is_signed_out(person):
    # given
    browser = Client()
    browser.force_login(person)
    session = browser.session
    del session[sessions.INDEX_ID]
    session.save()

    # when
    response = browser.get(ME_URL)

    # then
    assert response.status_code == 401


# --- Password changes, deactivation, deletion ------------------------------------------------------------------------


def test_changing_my_password_ends_my_other_sessions_and_keeps_this_one(person, django_capture_on_commit_callbacks):
    # given
    laptop, phone = sign_in(person), sign_in(person)
    phone_key = session_key(phone)
    stranger = sign_in(UserFactory())

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = laptop.post(
            "/api/v1/me/password/", {"current_password": PASSWORD, "new_password": "a-brand-new-passphrase-7"}
        )

    # then
    assert response.status_code == 204
    assert [is_signed_in(client) for client in (laptop, phone, stranger)] == [True, False, True]
    # the current session got a new key (and a new password hash); its row followed it
    assert [(item["id"], item["current"]) for item in laptop.get(SESSIONS_URL).json()] == [(row_of(laptop).pk, True)]
    kinds = list(SecurityEvent.objects.filter(target_user_id=person.pk).values_list("kind", "data"))
    assert (SecurityEventKind.PASSWORD_CHANGED, {}) in kinds
    assert (SecurityEventKind.SESSION_REVOKED, {"reason": "password_changed", "ended": 1}) in kinds
    assert not store_holds(phone_key)


def test_an_administrator_setting_a_password_ends_all_of_that_persons_sessions(django_capture_on_commit_callbacks):
    # given
    person = UserFactory()
    laptop, phone = sign_in(person), sign_in(person)
    keys = [session_key(laptop), session_key(phone)]
    operator = SuperuserFactory()
    admin = Client()
    admin.force_login(operator)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            f"/admin/accounts/user/{person.pk}/password/",
            {"password1": "a-brand-new-passphrase-7", "password2": "a-brand-new-passphrase-7"},
        )

    # then
    assert response.status_code == 302
    assert [is_signed_in(laptop), is_signed_in(phone)] == [False, False]
    assert admin.get("/admin/").status_code == 200
    assert [store_holds(key) for key in keys] == [False, False]
    event = SecurityEvent.objects.get(kind=SecurityEventKind.PASSWORD_CHANGED)
    assert (event.actor_id, event.target_user_id) == (operator.pk, person.pk)
    assert revocations() == [(operator.pk, person.pk, {"reason": "password_changed", "ended": 2})]


def test_the_changepassword_command_ends_all_sessions_and_refuses_recent_passwords(
    person, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    browser = sign_in(person)
    typed = iter([PASSWORD, PASSWORD, "a-brand-new-passphrase-7", "a-brand-new-passphrase-7"])
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": next(typed))
    errors = StringIO()

    # when: the current password is refused first (one of the last five), the new one is then taken
    with django_capture_on_commit_callbacks(execute=True):
        call_command("changepassword", person.email, stdout=StringIO(), stderr=errors)

    # then
    assert "The password cannot be one of your last 5 passwords." in errors.getvalue()
    person.refresh_from_db()
    assert person.check_password("a-brand-new-passphrase-7")
    assert not is_signed_in(browser)
    assert revocations() == [(None, person.pk, {"reason": "password_changed", "ended": 1})]


def test_deactivating_an_account_ends_all_its_sessions(person, django_capture_on_commit_callbacks):
    # given
    laptop, phone = sign_in(person), sign_in(person)
    operator = SuperuserFactory()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(actor=operator, user=person, is_active=False)

    # then
    assert [is_signed_in(laptop), is_signed_in(phone)] == [False, False]
    assert not UserSession.objects.exists()
    assert revocations() == [(None, person.pk, {"reason": "deactivated", "ended": 2})]


def test_other_changes_to_an_account_leave_its_sessions_alone(person, django_capture_on_commit_callbacks):
    # given
    browser = sign_in(person)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.user_update(actor=SuperuserFactory(), user=person, full_name="Ann Other")

    # then
    assert is_signed_in(browser)
    assert revocations() == []


def test_deleting_an_account_deletes_its_sessions_from_the_store(person, django_capture_on_commit_callbacks):
    # given
    browser = sign_in(person)
    key = session_key(browser)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.user_delete(actor=SuperuserFactory(), user=person)

    # then
    assert not store_holds(key)
    assert not UserSession.objects.exists()


# --- Presentation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (FIREFOX, "Firefox on Linux"),
        (SAFARI, "Safari on iOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        ("curl/8.5.0", "curl"),
        ("Dalvik/2.1.0 (Linux; U; Android 14)", "Android"),
        ("", "Unknown device"),
    ],
)
def test_the_device_is_summarised_from_the_user_agent(user_agent, device):
    assert sessions.describe_device(user_agent) == device


def test_a_row_past_either_timeout_is_not_alive_whatever_the_store_says(person):
    # given
    browser = sign_in(person)
    row = row_of(browser)
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    moment = timezone.now()

    # then
    assert sessions.is_alive(row, moment=moment, store=store)
    assert not sessions.is_alive(row, moment=moment + datetime.timedelta(minutes=31, seconds=1), store=store)
    row.last_seen_at = moment + datetime.timedelta(hours=11, minutes=59)
    assert not sessions.is_alive(row, moment=moment + datetime.timedelta(hours=12), store=store)
