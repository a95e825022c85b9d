import datetime

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.factories import PASSWORD, UserFactory
from tests.api_helpers import NOT_AUTHENTICATED, invalid

pytestmark = pytest.mark.django_db

ME_URL = "/api/v1/me/"
PASSWORD_URL = "/api/v1/me/password/"
NEW_PASSWORD = "a-brand-new-passphrase-42"


@pytest.fixture
def person() -> User:
    return UserFactory(
        email="ann@example.com",
        full_name="Ann Lee",
        phone="+1 555 0100",
        locale="en",
        time_zone="UTC",
        date_joined=datetime.datetime(2024, 3, 1, 9, 30, tzinfo=datetime.UTC),
    )


@pytest.fixture
def session(person) -> APIClient:
    """A signed-in session (a real session cookie, not forced authentication)."""
    client = APIClient()
    client.force_login(person)
    return client


def _snapshot(user: User) -> dict:
    return User.objects.filter(pk=user.pk).values(
        "email", "full_name", "phone", "locale", "time_zone", "is_active", "is_staff", "is_superuser", "password"
    )[0]


# --- GET /me ----------------------------------------------------------------------------------------------------------


def test_get_me(session, person):
    # given / when
    response = session.get(ME_URL)

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": person.pk,
        "email": "ann@example.com",
        "full_name": "Ann Lee",
        "phone": "+1 555 0100",
        "locale": "en",
        "time_zone": "UTC",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "date_joined": "2024-03-01T09:30:00Z",
    }


def test_get_me_never_shows_the_password(session):
    # given / when
    response = session.get(ME_URL)

    # then
    assert "password" not in response.json()
    assert PASSWORD not in response.content.decode()


@pytest.mark.parametrize("method", ["get", "patch"])
def test_anonymous_callers_get_401_on_me(method):
    # given
    client = APIClient()

    # when
    response = getattr(client, method)(ME_URL, {"full_name": "X"} if method == "patch" else None)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Session realm="api"'


# --- PATCH /me --------------------------------------------------------------------------------------------------------


def test_patch_profile_fields(session, person):
    # given
    changes = {"full_name": "Ann Smith", "phone": "+49 30 1234567", "locale": "de", "time_zone": "Europe/Berlin"}

    # when
    response = session.patch(ME_URL, changes)

    # then
    assert response.status_code == 200
    assert {name: response.json()[name] for name in changes} == changes
    person.refresh_from_db()
    assert (person.full_name, person.phone, person.locale, person.time_zone) == (
        "Ann Smith",
        "+49 30 1234567",
        "de",
        "Europe/Berlin",
    )


def test_patch_one_field_keeps_the_others(session, person):
    # given / when
    response = session.patch(ME_URL, {"phone": ""})

    # then
    assert response.status_code == 200
    person.refresh_from_db()
    assert (person.full_name, person.phone, person.locale, person.time_zone) == ("Ann Lee", "", "en", "UTC")


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        ({"email": "other@example.com"}, ["email"]),
        ({"is_superuser": True}, ["is_superuser"]),
        ({"is_staff": True}, ["is_staff"]),
        ({"is_active": False}, ["is_active"]),
        ({"id": 999}, ["id"]),
        ({"date_joined": "2020-01-01T00:00:00Z"}, ["date_joined"]),
        ({"full_name": "Sneaky", "email": "other@example.com", "is_superuser": True}, ["email", "is_superuser"]),
    ],
)
def test_patch_email_or_flags_is_refused_and_changes_nothing(session, person, payload, refused):
    # given
    before = _snapshot(person)

    # when
    response = session.patch(ME_URL, payload)

    # then
    assert response.status_code == 400
    assert response.json() == invalid({name: ["This field cannot be changed here."] for name in refused})
    assert _snapshot(person) == before


def test_patch_with_an_unknown_time_zone(session, person):
    # given
    before = _snapshot(person)

    # when
    response = session.patch(ME_URL, {"time_zone": "Mars/Olympus", "full_name": "Ann Smith"})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"time_zone": ["Mars/Olympus is not a known IANA time zone."]})
    assert _snapshot(person) == before


def test_patch_with_a_too_long_name(session, person):
    # given
    before = _snapshot(person)

    # when
    response = session.patch(ME_URL, {"full_name": "x" * 151})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"full_name": ["Ensure this field has no more than 150 characters."]})
    assert _snapshot(person) == before


def test_patch_cannot_set_the_password(session, person):
    # given
    before = _snapshot(person)

    # when: the password is no profile field, so it is ignored
    response = session.patch(ME_URL, {"password": NEW_PASSWORD})

    # then
    assert response.status_code == 200
    assert _snapshot(person) == before


# --- POST /me/password ------------------------------------------------------------------------------------------------


def test_change_password_with_a_wrong_current_password(session, person):
    # given
    before = _snapshot(person)

    # when
    response = session.post(PASSWORD_URL, {"current_password": "not-my-password", "new_password": NEW_PASSWORD})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"current_password": ["The current password is not correct."]})
    assert _snapshot(person) == before


@pytest.mark.parametrize(
    ("new_password", "messages"),
    [
        ("short-pw", ["This password is too short. It must contain at least 12 characters."]),
        ("password1234", ["This password is too common."]),
        ("123456789012345", ["This password is entirely numeric."]),
        (PASSWORD, ["The new password must differ from the current one."]),
    ],
)
def test_change_password_to_a_weak_password(session, person, new_password, messages):
    # given
    before = _snapshot(person)

    # when
    response = session.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": new_password})

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"new_password": messages})
    assert _snapshot(person) == before


def test_change_password_with_missing_fields(session, person):
    # given
    before = _snapshot(person)

    # when
    response = session.post(PASSWORD_URL, {})

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"current_password": ["This field is required."], "new_password": ["This field is required."]}
    )
    assert _snapshot(person) == before


def test_change_password(session, person):
    # given
    other_session = APIClient()
    other_session.force_login(person)

    # when
    response = session.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    # then: the new password works, the old one does not, this session stays, other sessions end
    assert response.status_code == 204
    assert response.content == b""
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD) is True
    assert person.check_password(PASSWORD) is False
    assert session.get(ME_URL).status_code == 200
    assert other_session.get(ME_URL).status_code == 401
    # (password checks need the request: the sign-in limits count per client address)
    sign_in = RequestFactory().post("/admin/login/")
    assert APIClient().login(request=sign_in, email="ann@example.com", password=PASSWORD) is False
    assert APIClient().login(request=sign_in, email="ann@example.com", password=NEW_PASSWORD) is True


def test_change_password_anonymous():
    # given
    client = APIClient()

    # when
    response = client.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_change_password_requires_the_csrf_token_in_a_browser_session(person):
    # given
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(person)
    before = _snapshot(person)

    # when
    response = browser.post(PASSWORD_URL, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert _snapshot(person) == before
