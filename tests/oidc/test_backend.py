"""The browser sign-in's parts one by one: discovery, the person from the claims, the ID token checks, refusals."""

import time
from types import SimpleNamespace

import pytest
import requests
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, authenticate
from django.contrib.sessions.backends.cache import SessionStore
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.test import RequestFactory

from accounts.models import User
from accounts.oidc import discovery
from accounts.oidc.backend import BACKEND_PATH, ProviderBackend
from accounts.oidc.discovery import ProviderUnavailableError, oidc_setting, provider_metadata
from accounts.oidc.logout import provider_logout_url
from accounts.oidc.middleware import ProviderSessionRefresh
from accounts.oidc.services import SignInRefused, full_name_from, is_email_verified, user_sign_in_from_claims
from accounts.oidc.urls import provider_urlpatterns
from accounts.oidc.views import ProviderSignInView, sign_in_options
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import UserFactory
from tests.oidc.test_browser_flow import reload_urls
from tests.oidc.tokens import SigningKey

UNREACHABLE = "http://127.0.0.1:9/realms/itdo"  # the discard port: nothing answers there


@pytest.fixture
def configured(settings, oidc_provider):
    for name, value in oidc_provider.settings_overrides().items():
        setattr(settings, name, value)
    reload_urls()
    yield oidc_provider
    settings.OIDC_ISSUER = ""
    reload_urls()


@pytest.fixture
def unreachable(settings):
    settings.OIDC_ISSUER = UNREACHABLE
    settings.OIDC_OP_DISCOVERY_URL = ""
    for name in discovery.ENDPOINT_SETTINGS:
        setattr(settings, name, "")
    settings.OIDC_TIMEOUT = 0.5
    reload_urls()
    yield
    settings.OIDC_ISSUER = ""
    reload_urls()


def request_with_session(path: str = "/", user=None):
    request = RequestFactory().get(path)
    request.session = SessionStore()
    request.user = user or SimpleNamespace(is_authenticated=False)
    request._messages = messages.storage.default_storage(request)
    return request


# --- Discovery -------------------------------------------------------------------------------------------------------


def test_endpoints_come_from_discovery_once_then_from_the_cache(settings, configured, monkeypatch):
    settings.OIDC_OP_TOKEN_ENDPOINT = ""
    calls = []
    original = requests.get

    def counting_get(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(requests, "get", counting_get)

    assert oidc_setting("OIDC_OP_TOKEN_ENDPOINT") == configured.token_endpoint
    assert oidc_setting("OIDC_OP_TOKEN_ENDPOINT") == configured.token_endpoint

    assert len(calls) == 1
    assert calls[0]["timeout"] == settings.OIDC_TIMEOUT


def test_explicit_endpoints_win_over_discovery(settings, configured):
    settings.OIDC_OP_USER_ENDPOINT = "https://elsewhere.example/userinfo"

    assert oidc_setting("OIDC_OP_USER_ENDPOINT") == "https://elsewhere.example/userinfo"


def test_an_unreachable_provider_is_reported_not_raised_as_a_crash(unreachable, caplog):
    with pytest.raises(ProviderUnavailableError):
        provider_metadata()

    assert "discovery document could not be read" in caplog.text


def test_a_discovery_document_of_another_issuer_is_refused(settings, configured):
    settings.OIDC_ISSUER = configured.issuer + "-other"
    settings.OIDC_OP_DISCOVERY_URL = configured.discovery_url

    with pytest.raises(ProviderUnavailableError, match="names another issuer"):
        provider_metadata()


def test_settings_without_a_provider(settings):
    settings.OIDC_ISSUER = ""

    with pytest.raises(ImproperlyConfigured, match="OIDC_ISSUER is not set"):
        provider_metadata()
    with pytest.raises(ImproperlyConfigured, match="Setting OIDC_NOT_A_SETTING not found"):
        oidc_setting("OIDC_NOT_A_SETTING")
    assert oidc_setting("OIDC_NOT_A_SETTING", 7) == 7
    assert provider_urlpatterns() == []
    assert sign_in_options(request_with_session()) == {}


def test_an_endpoint_the_provider_does_not_announce(settings, configured, monkeypatch):
    settings.OIDC_OP_LOGOUT_ENDPOINT = ""
    monkeypatch.setattr(discovery, "provider_metadata", lambda: {"issuer": configured.issuer})

    assert oidc_setting("OIDC_OP_LOGOUT_ENDPOINT", "") == ""
    with pytest.raises(ImproperlyConfigured, match="announces no end_session_endpoint"):
        oidc_setting("OIDC_OP_LOGOUT_ENDPOINT")


# --- The person from the claims --------------------------------------------------------------------------------------


def claims(**changes):
    base = {"sub": "subject-1", "email": "ada@acme.example", "email_verified": True, "name": "Ada Lovelace"}
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


@pytest.mark.django_db
def test_a_new_subject_becomes_a_new_account_without_password():
    user = user_sign_in_from_claims(claims=claims(email="Ada@ACME.example", email_verified=False))

    assert (user.oidc_subject, user.email, user.full_name) == ("subject-1", "Ada@acme.example", "Ada Lovelace")
    assert not user.has_usable_password()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "code"),
    [({"sub": None}, "missing_subject"), ({"sub": 42}, "missing_subject"), ({"email": None}, "missing_email")],
)
def test_claims_that_do_not_say_who_it_is_are_refused(changes, code):
    with pytest.raises(SignInRefused) as refused:
        user_sign_in_from_claims(claims=claims(**changes))

    assert refused.value.code == code
    assert not User.objects.exists()


@pytest.mark.django_db
def test_an_account_linked_to_another_subject_is_never_taken_over():
    UserFactory(email="ada@acme.example", oidc_subject="subject-0")

    with pytest.raises(SignInRefused) as refused:
        user_sign_in_from_claims(claims=claims())

    assert refused.value.code == "email_linked_elsewhere"


@pytest.mark.django_db
def test_a_deactivated_local_account_is_not_linked():
    local = UserFactory(email="ada@acme.example", is_active=False)

    with pytest.raises(SignInRefused) as refused:
        user_sign_in_from_claims(claims=claims())

    assert refused.value.code == "inactive"
    local.refresh_from_db()
    assert local.oidc_subject is None


@pytest.mark.django_db
def test_a_new_address_is_taken_only_when_verified_and_free(caplog):
    user = UserFactory(email="ada@acme.example", oidc_subject="subject-1", full_name="Ada Lovelace")
    UserFactory(email="taken@acme.example")

    user_sign_in_from_claims(claims=claims(email="new@acme.example", email_verified="false"))
    user.refresh_from_db()
    assert user.email == "ada@acme.example"

    user_sign_in_from_claims(claims=claims(email="taken@acme.example"))
    user.refresh_from_db()
    assert user.email == "ada@acme.example"
    assert "the provider's new address belongs to another account" in caplog.text

    user_sign_in_from_claims(claims=claims(email="new@acme.example", email_verified="true"))
    user.refresh_from_db()
    assert user.email == "new@acme.example"


def test_names_and_verification_are_read_leniently():
    assert full_name_from({"given_name": " Ada ", "family_name": "Lovelace"}) == "Ada Lovelace"
    assert full_name_from({"name": "  Ada   King "}) == "Ada King"
    assert full_name_from({}) == ""
    assert is_email_verified({"email_verified": "TRUE"})
    assert not is_email_verified({"email_verified": 1})


# --- The backend -----------------------------------------------------------------------------------------------------


def id_token_claims(provider, **changes):
    now = int(time.time())
    values = {
        "iss": provider.issuer,
        "sub": "subject-1",
        "aud": provider.client_id,
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"aud": "someone-else"}, "The ID token is not valid: Audience doesn't match"),
        ({"iss": "https://evil.example/realms/itdo"}, "The ID token is not valid: Invalid issuer"),
        ({"exp": int(time.time()) - 3600}, "The ID token is not valid: Signature has expired"),
        ({"exp": None}, 'The ID token is not valid: Token is missing the "exp" claim'),
        ({"aud": ["itdo-erp", "other"], "azp": "other"}, "The ID token was issued to another client."),
    ],
)
def test_id_tokens_are_checked_strictly(configured, changes, problem):
    backend = ProviderBackend()
    token = configured.signing_key.sign(id_token_claims(configured, **changes))

    with pytest.raises(SuspiciousOperation, match=problem):
        backend.verify_token(token, nonce="n-1")


def test_an_id_token_signed_with_another_algorithm_or_key_is_refused(configured):
    backend = ProviderBackend()
    ec_token = configured.ec_key.sign(id_token_claims(configured))
    stranger = SigningKey.generate_rsa(kid=configured.kid).sign(id_token_claims(configured))

    with pytest.raises(SuspiciousOperation, match="signed with 'ES256', not 'RS256'"):
        backend.verify_token(ec_token, nonce="n-1")
    with pytest.raises(SuspiciousOperation, match="Signature verification failed"):
        backend.verify_token(stranger, nonce="n-1")


def test_a_valid_id_token_gives_its_claims(configured):
    claims = ProviderBackend().verify_token(
        configured.signing_key.sign(id_token_claims(configured, azp="itdo-erp")), nonce="n-1"
    )

    assert claims["sub"] == "subject-1"


def test_only_signed_access_tokens_give_groups_and_roles(configured):
    backend = ProviderBackend()
    signed = configured.craft_access_token("subject-1", groups=["/acme"], realm_access={"roles": ["r"]})
    forged = SigningKey.generate_rsa(kid=configured.kid).sign({"sub": "subject-1", "groups": ["/acme"]})

    assert backend.access_token_claims(signed) == {"groups": ["/acme"], "realm_access": {"roles": ["r"]}}
    assert backend.access_token_claims(forged) == {}
    assert backend.access_token_claims("opaque-token") == {}
    assert backend.access_token_claims(None) == {}


@pytest.mark.django_db
def test_the_backend_answers_only_configured_callbacks(settings, configured):
    request = request_with_session("/oidc/callback/?code=c&state=s")

    assert ProviderBackend().authenticate(request, username="ada@acme.example", password="x") is None
    assert ProviderBackend().authenticate(None, nonce="n") is None
    settings.OIDC_ISSUER = ""
    assert ProviderBackend().authenticate(request, nonce="n") is None
    # a password sign-in passes it by (Django builds every backend for it)
    assert authenticate(request, username="nobody@acme.example", password="wrong") is None


@pytest.mark.django_db
def test_a_failing_token_exchange_is_one_refusal_event(configured):
    request = request_with_session("/oidc/callback/?code=not-a-code&state=s")

    with pytest.raises(SignInRefused) as refused:
        ProviderBackend().authenticate(request, nonce="n", code_verifier="v" * 64)

    assert refused.value.code == "provider_error"
    event = SecurityEvent.objects.get(kind=SecurityEventKind.LOGIN_FAILED)
    assert event.data == {"backend": BACKEND_PATH, "reason": "provider_error"}


@pytest.mark.django_db
def test_an_unreachable_provider_at_the_callback_is_a_refusal(unreachable):
    request = request_with_session("/oidc/callback/?code=c&state=s")

    with pytest.raises(SignInRefused) as refused:
        ProviderBackend().authenticate(request, nonce="n")

    assert refused.value.code == "provider_unavailable"


@pytest.mark.django_db
def test_a_forged_id_token_is_a_refusal(configured, monkeypatch):
    backend = ProviderBackend()
    forged = SigningKey.generate_rsa(kid=configured.kid).sign(id_token_claims(configured))
    monkeypatch.setattr(backend, "get_token", lambda payload: {"id_token": forged, "access_token": "a"})

    with pytest.raises(SignInRefused) as refused:
        backend.authenticate(request_with_session("/oidc/callback/?code=c&state=s"), nonce="n-1")

    assert refused.value.code == "invalid_token"


@pytest.mark.django_db
def test_userinfo_about_someone_else_is_a_refusal(configured, monkeypatch):
    backend = ProviderBackend()
    monkeypatch.setattr(backend, "get_userinfo", lambda *args: {"sub": "subject-2"})

    with pytest.raises(SignInRefused) as refused:
        backend.get_or_create_user("a", "i", {"sub": "subject-1"})

    assert refused.value.code == "subject_mismatch"


@pytest.mark.django_db
def test_the_backend_grants_no_permissions_and_loads_only_active_people():
    backend = ProviderBackend()
    active, inactive = UserFactory(), UserFactory(is_active=False)

    assert backend.get_user(active.pk) == active
    assert backend.get_user(inactive.pk) is None
    assert not backend.has_perm(active, "organizations.view_membership")
    assert not backend.has_module_perms(active, "organizations")
    assert backend.get_all_permissions(active) == set()
    assert backend.get_user_permissions(active) == set()
    assert backend.get_group_permissions(active) == set()
    with pytest.raises(AttributeError):
        backend.not_a_setting  # noqa: B018


# --- Views, logout and refresh without a reachable provider ----------------------------------------------------------


@pytest.mark.django_db
def test_starting_a_sign_in_while_the_provider_is_unreachable_explains_it(unreachable):
    request = request_with_session("/oidc/authenticate/")

    response = ProviderSignInView.as_view()(request)

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert [str(message) for message in messages.get_messages(request)] == [
        "The identity provider cannot be reached right now. Try again later or sign in with a password."
    ]


@pytest.mark.django_db
def test_the_logout_url_stays_local_when_the_provider_cannot_say_where_to_go(unreachable, settings):
    user = UserFactory()
    request = request_with_session("/oidc/logout/", user=user)
    request.session[BACKEND_SESSION_KEY] = BACKEND_PATH
    request.session["oidc_id_token"] = "id-token"

    assert provider_logout_url(request) == "http://testserver/"

    settings.OIDC_OP_LOGOUT_ENDPOINT = "https://provider.example/logout?realm=itdo"
    assert provider_logout_url(request).startswith("https://provider.example/logout?realm=itdo&id_token_hint=id-token")

    request.session[BACKEND_SESSION_KEY] = "rbac.backends.RoleBackend"
    assert provider_logout_url(request) == "http://testserver/"


@pytest.mark.django_db
def test_the_logout_url_stays_local_when_the_provider_has_no_end_session(configured, settings, monkeypatch):
    settings.OIDC_OP_LOGOUT_ENDPOINT = ""
    monkeypatch.setattr(discovery, "provider_metadata", lambda: {"issuer": configured.issuer})
    request = request_with_session("/oidc/logout/", user=UserFactory())
    request.session[BACKEND_SESSION_KEY] = BACKEND_PATH
    request.session["oidc_id_token"] = "id-token"

    assert provider_logout_url(request) == "http://testserver/"


@pytest.mark.django_db
def test_a_due_refresh_is_postponed_while_the_provider_is_unreachable(unreachable, caplog):
    request = request_with_session("/admin/", user=UserFactory())
    request.session[BACKEND_SESSION_KEY] = BACKEND_PATH
    middleware = ProviderSessionRefresh(lambda request: None)

    assert middleware.process_request(request) is None
    assert "Session refresh postponed" in caplog.text
    with pytest.raises(AttributeError):
        middleware.not_a_setting  # noqa: B018


@pytest.mark.django_db
def test_a_due_refresh_leaves_non_page_requests_alone(configured):
    request = request_with_session("/admin/", user=UserFactory())
    request.method = "POST"
    request.session[BACKEND_SESSION_KEY] = BACKEND_PATH

    assert ProviderSessionRefresh(lambda request: None).process_request(request) is None
