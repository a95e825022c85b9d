import pytest
from django.conf import settings
from django.middleware.csrf import _unmask_cipher_token
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.factories import PASSWORD, UserFactory
from tests.api_helpers import NOT_AUTHENTICATED, error, invalid

pytestmark = pytest.mark.django_db

CSRF_URL = "/api/v1/auth/csrf/"
LOGIN_URL = "/api/v1/auth/login/"
LOGOUT_URL = "/api/v1/auth/logout/"
ME_URL = "/api/v1/me/"

INVALID_CREDENTIALS = error(
    "invalid_credentials",
    "The email or password is not correct.",
)


@pytest.fixture
def browser() -> APIClient:
    """A client that, like a browser, must send the CSRF token back on unsafe requests."""
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def person() -> User:
    return UserFactory(email="ann@example.com", full_name="Ann Lee")


def _csrf_token(client: APIClient) -> str:
    return client.get(CSRF_URL).json()["csrf_token"]


def _login(client: APIClient, email: str, password: str = PASSWORD):
    token = _csrf_token(client)
    return client.post(LOGIN_URL, {"email": email, "password": password}, HTTP_X_CSRFTOKEN=token)


def _current_csrf_secret(client: APIClient) -> str:
    return client.cookies[settings.CSRF_COOKIE_NAME].value


# --- CSRF -------------------------------------------------------------------------------------------------------------


def test_csrf_endpoint_sets_the_cookie_and_returns_a_matching_token(browser):
    # given / when
    response = browser.get(CSRF_URL)

    # then
    assert response.status_code == 200
    cookie = response.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert list(response.json()) == ["csrf_token"]
    assert _unmask_cipher_token(response.json()["csrf_token"]) == cookie.value


def test_csrf_endpoint_is_open_to_anonymous_callers(browser):
    # given / when
    response = browser.get(CSRF_URL)

    # then
    assert response.status_code == 200
    assert browser.get(ME_URL).status_code == 401


# --- Login ------------------------------------------------------------------------------------------------------------


def test_login_without_the_csrf_token_is_forbidden(browser, person):
    # given: no CSRF cookie and no header
    # when
    response = browser.post(LOGIN_URL, {"email": "ann@example.com", "password": PASSWORD})

    # then
    assert response.status_code == 403
    assert response.json() == error("permission_denied", "CSRF Failed: CSRF cookie not set.")
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert browser.get(ME_URL).status_code == 401


def test_login_with_the_cookie_but_without_the_header_is_forbidden(browser, person):
    # given
    browser.get(CSRF_URL)

    # when
    response = browser.post(LOGIN_URL, {"email": "ann@example.com", "password": PASSWORD})

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert response.json()["error"]["message"].startswith("CSRF Failed: CSRF token missing")
    assert browser.get(ME_URL).status_code == 401


def test_login_with_a_wrong_csrf_token_is_forbidden(browser, person):
    # given
    browser.get(CSRF_URL)

    # when
    response = browser.post(LOGIN_URL, {"email": "ann@example.com", "password": PASSWORD}, HTTP_X_CSRFTOKEN="x" * 64)

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert browser.get(ME_URL).status_code == 401


def test_login_with_the_csrf_token_starts_a_session(browser, person):
    # given / when
    response = _login(browser, "ann@example.com")

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["email"], body["full_name"]) == (person.pk, "ann@example.com", "Ann Lee")
    assert settings.SESSION_COOKIE_NAME in response.cookies
    me = browser.get(ME_URL)
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    person.refresh_from_db()
    assert person.last_login is not None


def test_login_rotates_the_csrf_token(browser, person):
    # given
    token = _csrf_token(browser)
    secret_before = _current_csrf_secret(browser)

    # when
    browser.post(LOGIN_URL, {"email": "ann@example.com", "password": PASSWORD}, HTTP_X_CSRFTOKEN=token)

    # then
    assert _current_csrf_secret(browser) != secret_before


def test_login_email_is_case_insensitive(browser, person):
    # given / when
    response = _login(browser, "ANN@Example.COM")

    # then
    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com"
    assert browser.get(ME_URL).json()["id"] == person.pk


def test_login_with_a_wrong_password(browser, person):
    # given / when
    response = _login(browser, "ann@example.com", "not-the-password")

    # then
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Session realm="api"'
    assert browser.get(ME_URL).status_code == 401
    person.refresh_from_db()
    assert person.last_login is None


def test_login_with_an_unknown_email(browser, person):
    # given / when
    response = _login(browser, "nobody@example.com")

    # then
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS


def test_an_inactive_user_cannot_log_in(browser):
    # given
    UserFactory(email="gone@example.com", is_active=False)

    # when
    response = _login(browser, "gone@example.com")

    # then
    assert response.status_code == 401
    assert response.json() == INVALID_CREDENTIALS
    assert browser.get(ME_URL).status_code == 401


def test_a_user_without_a_usable_password_cannot_log_in(browser):
    # given
    user = UserFactory(email="sso@example.com")
    user.set_unusable_password()
    user.save()

    # when
    response = _login(browser, "sso@example.com", "")

    # then: an empty password is not even a valid request
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"password": ["This field may not be blank."]}


def test_login_with_missing_fields(browser):
    # given
    token = _csrf_token(browser)

    # when
    response = browser.post(LOGIN_URL, {"email": "not-an-email"}, HTTP_X_CSRFTOKEN=token)

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"email": ["Enter a valid email address."], "password": ["This field is required."]}
    )


# --- Logout -----------------------------------------------------------------------------------------------------------


def test_logout_ends_the_session(browser, person):
    # given
    _login(browser, "ann@example.com")

    # when
    response = browser.post(LOGOUT_URL, HTTP_X_CSRFTOKEN=_current_csrf_secret(browser))

    # then
    assert response.status_code == 204
    assert browser.get(ME_URL).json() == NOT_AUTHENTICATED
    assert browser.get(ME_URL).status_code == 401


def test_logout_without_the_csrf_token_is_forbidden_and_keeps_the_session(browser, person):
    # given
    _login(browser, "ann@example.com")

    # when
    response = browser.post(LOGOUT_URL)

    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert browser.get(ME_URL).status_code == 200


def test_logout_when_not_signed_in(browser):
    # given
    token = _csrf_token(browser)

    # when
    response = browser.post(LOGOUT_URL, HTTP_X_CSRFTOKEN=token)

    # then
    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_a_stolen_session_cookie_is_useless_after_logout(browser, person):
    # given
    _login(browser, "ann@example.com")
    session_cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    browser.post(LOGOUT_URL, HTTP_X_CSRFTOKEN=_current_csrf_secret(browser))

    # when
    thief = APIClient()
    thief.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
    response = thief.get(ME_URL)

    # then
    assert response.status_code == 401
