"""Browser sign-in through the real test OpenID provider: Django's test client is the browser here, a requests session
is the same browser at the provider (its login form, its session cookie)."""

import importlib
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import clear_url_caches

from accounts.models import User
from accounts.oidc.backend import BACKEND_PATH
from audit.models import SecurityEvent, SecurityEventKind
from organizations.models import Membership
from rbac.models import RoleAssignment
from tests.accounts.factories import UserFactory
from tests.oidc.tokens import parse_forms, sign_in_at_provider, sign_out_at_provider, unverified_claims
from tests.organizations.factories import DepartmentFactory, OrganizationFactory

MAPPING = {
    "groups": {
        "/acme/finance-managers": [{"organization": "acme", "role": "manager", "department": "FIN"}],
        "/acme/auditors": [{"organization": "acme", "role": "auditor"}],
    },
    "realm_roles": {"erp-user": [{"organization": "acme", "role": "viewer"}]},
}
ENDPOINTS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
    "OIDC_OP_LOGOUT_ENDPOINT",
)


def reload_urls() -> None:
    import erp.urls

    importlib.reload(erp.urls)
    clear_url_caches()


@pytest.fixture
def provider(settings, oidc_provider, db):
    """The ERP pointed at the test provider like the environment would: issuer and client only, endpoints from
    discovery, routes present."""
    for name, value in oidc_provider.settings_overrides().items():
        setattr(settings, name, value)
    for name in ENDPOINTS:
        setattr(settings, name, "")
    settings.OIDC_OP_DISCOVERY_URL = ""
    settings.OIDC_ROLE_MAPPING = MAPPING
    reload_urls()
    yield oidc_provider
    settings.OIDC_ISSUER = ""
    reload_urls()


@pytest.fixture
def acme(db):
    organization = OrganizationFactory(slug="acme", code="ACME")
    DepartmentFactory(organization=organization, code="FIN")
    return organization


def start_sign_in(client: Client, next_url: str = "/admin/") -> str:
    response = client.get("/oidc/authenticate/", {"next": next_url})
    assert response.status_code == 302
    return response["Location"]


def finish(client: Client, callback_url: str):
    parsed = urlparse(callback_url)
    assert parsed.path == "/oidc/callback/"
    return client.get(parsed.path, {key: values[0] for key, values in parse_qs(parsed.query).items()})


def sign_in(client: Client, browser: requests.Session, account: dict, next_url: str = "/admin/"):
    authorize_url = start_sign_in(client, next_url)
    return finish(client, sign_in_at_provider(browser, authorize_url, account["username"], account["password"]))


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get(SESSION_KEY)
    return User.objects.get(pk=user_id) if user_id else None


def messages_on(client: Client, url: str = "/admin/login/") -> str:
    return client.get(url).content.decode()


# --- Sign-in ---------------------------------------------------------------------------------------------------------


def test_the_sign_in_request_uses_the_code_flow_with_pkce(provider, client):
    location = start_sign_in(client)

    parsed = urlparse(location)
    query = parse_qs(parsed.query)
    assert f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == provider.authorization_endpoint  # from discovery
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["itdo-erp"]
    assert query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == ["http://testserver/oidc/callback/"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    state = query["state"][0]
    assert client.session["oidc_states"][state]["nonce"] == query["nonce"][0]


def test_first_sign_in_creates_the_person_and_the_next_one_updates_them(provider, acme, client, oidc_account):
    browser = requests.Session()

    # when Ada signs in for the first time
    response = sign_in(client, browser, oidc_account)

    # then an account linked to her subject exists, she is signed in, and her groups gave her roles
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    user = User.objects.get(oidc_subject=oidc_account["sub"])
    assert (user.email, user.full_name, user.has_usable_password()) == (oidc_account["email"], "Ada Lovelace", False)
    assert signed_in_user(client) == user
    assert client.session["_auth_user_backend"] == BACKEND_PATH
    assert unverified_claims(client.session["oidc_id_token"])["sub"] == oidc_account["sub"]
    roles = sorted((assignment.role.code, assignment.source) for assignment in RoleAssignment.objects.filter(user=user))
    assert roles == [("manager", "provider"), ("viewer", "provider")]
    assert Membership.objects.get(user=user).source == "provider"
    signed_in = SecurityEvent.objects.filter(kind=SecurityEventKind.LOGIN_SUCCEEDED, target_user_id=user.pk)
    assert [(event.organization, event.data) for event in signed_in.order_by("chain")] == [
        (None, {"backend": BACKEND_PATH}),  # the installation's record
        (Membership.objects.get(user=user).organization, {"backend": BACKEND_PATH}),  # her organization's
    ]

    # when her name, email and groups change at the provider and she signs in again in a new browser session here
    provider.upsert_account(
        oidc_account["sub"],
        name="Ada King",
        email=f"king-{oidc_account['email']}",
        groups=["/acme/auditors"],
        roles=[],
    )
    second = Client()
    response = sign_in(second, browser, oidc_account)  # the provider's session is still alive: no login form

    # then the same account is updated and her provider roles follow her groups
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.full_name) == (f"king-{oidc_account['email']}", "Ada King")
    assert User.objects.filter(oidc_subject=oidc_account["sub"]).count() == 1
    assert signed_in_user(second) == user
    roles = sorted((assignment.role.code, assignment.source) for assignment in RoleAssignment.objects.filter(user=user))
    assert roles == [("auditor", "provider")]
    revoked = SecurityEvent.objects.filter(kind=SecurityEventKind.ROLE_REVOKED, target_user_id=user.pk)
    assert sorted(event.data["role"] for event in revoked) == ["manager", "viewer"]


def test_an_unverified_email_does_not_take_over_a_local_account(provider, client, oidc_account):
    # given a local account with Ada's address, and a provider account that has not verified it
    local = UserFactory(email=oidc_account["email"])
    provider.upsert_account(oidc_account["sub"], email_verified=False)

    # when someone signs in with that provider account
    response = sign_in(client, requests.Session(), oidc_account)

    # then they are sent back to the login page with the reason, and the local account is untouched
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    local.refresh_from_db()
    assert local.oidc_subject is None
    assert "the identity provider has not verified that this address is yours" in messages_on(client)
    refused = SecurityEvent.objects.get(kind=SecurityEventKind.LOGIN_FAILED)
    assert refused.data == {"backend": BACKEND_PATH, "reason": "unverified_email"}
    assert refused.target_user_id == local.pk
    assert refused.detail.email == oidc_account["email"]


def test_a_verified_email_links_the_local_account(provider, client, oidc_account):
    local = UserFactory(email=oidc_account["email"].upper(), full_name="A. Lovelace")

    sign_in(client, requests.Session(), oidc_account)

    local.refresh_from_db()
    assert local.oidc_subject == oidc_account["sub"]
    assert local.full_name == "Ada Lovelace"
    assert signed_in_user(client) == local
    assert local.has_usable_password()  # the break-glass password still works


def test_a_deactivated_account_is_refused(provider, client, oidc_account):
    UserFactory(email=oidc_account["email"], oidc_subject=oidc_account["sub"], is_active=False)

    response = sign_in(client, requests.Session(), oidc_account)

    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    assert "This account has been deactivated." in messages_on(client)
    assert SecurityEvent.objects.get(kind=SecurityEventKind.LOGIN_FAILED).data["reason"] == "inactive"


def test_a_replayed_or_foreign_callback_signs_nobody_in(provider, client, oidc_account):
    browser = requests.Session()
    callback = sign_in_at_provider(browser, start_sign_in(client), oidc_account["username"], oidc_account["password"])
    finish(client, callback)
    client.logout()

    response = finish(client, callback)  # the state was used up

    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    assert "Please sign in again." in messages_on(client)


def test_a_provider_error_on_the_callback_signs_nobody_in(provider, client):
    start_sign_in(client)

    response = client.get("/oidc/callback/", {"error": "access_denied", "state": "unknown"})

    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None


# --- Logout ----------------------------------------------------------------------------------------------------------


def test_logout_ends_the_provider_session_too(provider, client, oidc_account):
    # given Ada signed in through the provider
    browser = requests.Session()
    sign_in(client, browser, oidc_account)
    id_token = client.session["oidc_id_token"]

    # when she signs out here
    response = client.post("/oidc/logout/")

    # then the session here is over and the browser is sent to the provider's end-session endpoint
    assert signed_in_user(client) is None
    location = urlparse(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == provider.end_session_endpoint
    query = parse_qs(location.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/"]
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.LOGGED_OUT).count() == 1

    # when the browser follows it, the provider ends its session and sends the browser back here
    back = sign_out_at_provider(browser, response["Location"])
    assert back.startswith("http://testserver/")
    assert provider.events("logout")

    # then a new sign-in asks for the password again
    page = browser.get(start_sign_in(client), timeout=5)
    assert any(form["id"] == "kc-form-login" for form in parse_forms(page.text))


def test_the_api_logout_of_a_provider_session_names_the_end_session_address(provider, client, oidc_account):
    sign_in(client, requests.Session(), oidc_account)
    id_token = client.session["oidc_id_token"]

    response = client.post("/api/v1/auth/logout/")

    assert response.status_code == 200
    location = urlparse(response.json()["logout_url"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == provider.end_session_endpoint
    assert parse_qs(location.query)["id_token_hint"] == [id_token]
    assert signed_in_user(client) is None


def test_the_admin_logout_ends_the_provider_session(provider, client, oidc_account):
    sign_in(client, requests.Session(), oidc_account)

    response = client.post("/admin/logout/")

    assert response.status_code == 302
    assert response["Location"].startswith(provider.end_session_endpoint + "?id_token_hint=")
    assert signed_in_user(client) is None


def test_the_admin_logout_of_a_local_session_stays_local(provider, client):
    user = UserFactory(is_staff=True)
    client.force_login(user)

    response = client.post("/admin/logout/")

    assert response.status_code == 200
    assert "Logged out" in response.content.decode()
    assert signed_in_user(client) is None


# --- Session refresh -------------------------------------------------------------------------------------------------


def expire_provider_check(client: Client) -> None:
    session = client.session
    session["oidc_id_token_expiration"] = time.time() - 1
    session.save()


def test_a_due_check_re_authenticates_silently_while_the_provider_session_lives(provider, client, oidc_account):
    browser = requests.Session()
    sign_in(client, browser, oidc_account)
    user = signed_in_user(client)
    expire_provider_check(client)

    # when a page is requested after the check is due
    response = client.get("/admin/password_change/")

    # then the browser goes to the provider without a prompt and comes straight back, still signed in
    assert response.status_code == 302
    assert parse_qs(urlparse(response["Location"]).query)["prompt"] == ["none"]
    back = sign_in_at_provider(browser, response["Location"], "nobody", "no password needed")
    response = finish(client, back)
    assert response["Location"] == "/admin/password_change/"
    assert signed_in_user(client) == user
    assert client.session["oidc_id_token_expiration"] > time.time()


def test_a_due_check_ends_the_session_when_the_provider_session_is_over(provider, client, oidc_account):
    browser = requests.Session()
    sign_in(client, browser, oidc_account)
    sign_out_at_provider(browser, provider.end_session_endpoint)  # ended at the provider, e.g. in another tab
    expire_provider_check(client)

    response = client.get("/admin/")
    back = sign_in_at_provider(browser, response["Location"], "nobody", "unused")  # the provider answers an error
    assert "error=login_required" in back
    response = finish(client, back)

    assert response["Location"] == "/admin/login/"
    assert signed_in_user(client) is None
    assert "Your session at the identity provider has ended." in messages_on(client)


def test_a_due_check_answers_api_calls_with_401_not_a_redirect(provider, client, oidc_account):
    sign_in(client, requests.Session(), oidc_account)
    expire_provider_check(client)

    response = client.get("/api/v1/organizations/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "reauthentication_required"
    assert response.json()["login_url"] == "/oidc/authenticate/?next=%2F"


def test_local_sessions_are_never_sent_to_the_provider(provider, client):
    client.force_login(UserFactory(is_staff=True))

    assert client.get("/admin/").status_code == 200


# --- Configured or not -----------------------------------------------------------------------------------------------


def test_the_admin_login_page_offers_the_provider_when_configured(provider, client, settings):
    settings.OIDC_PROVIDER_NAME = "Acme SSO"

    page = client.get("/admin/login/", {"next": "/admin/auth/"}).content.decode()

    assert 'href="/oidc/authenticate/?next=/admin/auth/"' in page
    assert "Sign in with Acme SSO" in page


def test_without_a_provider_the_routes_are_absent_and_local_login_remains(settings, client, db):
    settings.OIDC_ISSUER = ""
    reload_urls()

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/").status_code == 404
    page = client.get("/admin/login/").content.decode()
    assert "Sign in with" not in page
    assert 'name="password"' in page
