"""API calls with the identity provider's access tokens: real tokens pass, every kind of bad token is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.oidc import bearer
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import UserFactory
from tests.api_helpers import NOT_AUTHENTICATED, error
from tests.oidc.tokens import OpenIDProvider, SigningKey, encode_hs256_with, encode_unsigned, tamper

pytestmark = pytest.mark.django_db

ME_URL = "/api/v1/me/"


def call_me(token: str) -> Any:
    return APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}")


def rejections() -> list[dict[str, Any]]:
    return [event.data for event in SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_REJECTED)]


def assert_rejected(response: Any, reason: str, message: str) -> None:
    assert response.status_code == 401
    assert response.json() == error("invalid_token", message)
    assert response["WWW-Authenticate"] == (f'Bearer realm="api", error="invalid_token", error_description="{message}"')
    assert [event["reason"] for event in rejections()] == [reason]


# --- Accepted ---------------------------------------------------------------------------------------------------------


def test_an_access_token_from_the_provider_authenticates_an_api_call(provider_settings, oidc_account, account_user):
    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    response = call_me(tokens["access_token"])

    assert response.status_code == 200
    assert response.json()["email"] == oidc_account["email"]
    assert rejections() == []


def test_a_refreshed_access_token_authenticates_too(provider_settings, oidc_account, account_user):
    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    refreshed = provider_settings.refresh(tokens["refresh_token"])

    assert call_me(refreshed["access_token"]).status_code == 200


def test_a_bearer_call_needs_no_csrf_token_and_is_attributed_to_the_account(
    provider_settings, oidc_account, account_user
):
    token = provider_settings.craft_access_token(oidc_account["sub"])

    response = APIClient(enforce_csrf_checks=True).patch(
        ME_URL, {"full_name": "Ada King"}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 200
    account_user.refresh_from_db()
    assert account_user.full_name == "Ada King"
    version = account_user.history.latest("history_date")
    assert (version.history_user_id, version.history_user_subject) == (account_user.pk, account_user.oidc_subject)


@pytest.mark.parametrize(
    ("description", "build"),
    [
        ("ES256 with the provider's EC key", lambda p, sub: p.craft_access_token(sub, key=p.ec_key)),
        ("Keycloak's header typ JWT", lambda p, sub: p.craft_access_token(sub, headers={"typ": "JWT"})),
        ("no typ at all", lambda p, sub: p.craft_access_token(sub, typ=None, headers={"typ": None})),
        ("aud a list holding the API", lambda p, sub: p.craft_access_token(sub, aud=["account", p.audience])),
        ("expired within the leeway", lambda p, sub: p.craft_access_token(sub, exp=int(time.time()) - 10)),
        ("no azp, the client in client_id", lambda p, sub: p.craft_access_token(sub, azp=None)),
        ("another client of ours", lambda p, sub: p.craft_access_token(sub, azp="itdo-spa", client_id=None)),
    ],
)
def test_tokens_shaped_like_keycloak_s_are_accepted(settings, provider_settings, account_user, description, build):
    settings.OIDC_API_CLIENT_IDS = ["itdo-spa"]
    token = build(provider_settings, account_user.oidc_subject)

    response = call_me(token)

    assert response.status_code == 200, description


# --- Refused ----------------------------------------------------------------------------------------------------------

Build = Callable[[OpenIDProvider, str], str]

REFUSED: list[tuple[str, Build, str, str]] = [
    (
        "alg none",
        lambda p, sub: encode_unsigned(p.access_token_claims(sub), headers={"kid": p.kid}),
        "algorithm",
        "Tokens signed with 'none' are not accepted.",
    ),
    (
        "HS256 keyed with the provider's public key",
        lambda p, sub: encode_hs256_with(p.signing_key.public_pem, p.access_token_claims(sub), headers={"kid": p.kid}),
        "algorithm",
        "Tokens signed with 'HS256' are not accepted.",
    ),
    (
        "wrong audience",
        lambda p, sub: p.craft_access_token(sub, aud="another-api"),
        "audience",
        "The access token is not meant for this API.",
    ),
    (
        "no audience",
        lambda p, sub: p.craft_access_token(sub, aud=None),
        "missing_claim",
        "The access token has no 'aud' claim.",
    ),
    (
        "wrong issuer",
        lambda p, sub: p.craft_access_token(sub, iss=p.issuer.replace("/itdo", "/master")),
        "issuer",
        "The access token comes from another issuer.",
    ),
    (
        "expired",
        lambda p, sub: p.craft_access_token(sub, iat=int(time.time()) - 900, exp=int(time.time()) - 120),
        "expired",
        "The access token has expired.",
    ),
    (
        "not valid before a future time",
        lambda p, sub: p.craft_access_token(sub, nbf=int(time.time()) + 600),
        "not_yet_valid",
        "The access token is not valid yet.",
    ),
    (
        "signed with a key the provider does not publish",
        lambda p, sub: p.craft_access_token(sub, key=SigningKey.generate_rsa()),
        "unknown_key",
        "The access token is signed with a key the provider does not publish.",
    ),
    (
        "the EC key's id on an RS256 token",
        lambda p, sub: p.craft_access_token(sub, headers={"kid": p.ec_key.kid}),
        "unknown_key",
        "The access token is signed with a key the provider does not publish.",
    ),
    (
        "no key id",
        lambda p, sub: p.signing_key.sign(p.access_token_claims(sub), headers={"kid": None}),
        "key_id",
        "The access token names no signing key (kid).",
    ),
    (
        "tampered payload",
        lambda p, sub: tamper(p.craft_access_token(sub), realm_access={"roles": ["admin"]}),
        "signature",
        "The access token's signature does not verify.",
    ),
    (
        "issued to another client",
        lambda p, sub: p.craft_access_token(sub, azp="someone-else", client_id=None),
        "client",
        "The access token was issued to another client.",
    ),
    (
        "a Keycloak ID token addressed to the API",
        lambda p, sub: p.craft_access_token(sub, typ="ID", headers={"typ": "JWT"}),
        "token_type",
        "A token of type 'ID' is not an access token.",
    ),
    (
        "a refresh token",
        lambda p, sub: p.craft_access_token(sub, typ="Refresh", headers={"typ": "JWT"}),
        "token_type",
        "A token of type 'Refresh' is not an access token.",
    ),
    (
        "an ID token with at_hash",
        lambda p, sub: p.craft_access_token(sub, typ=None, at_hash="abc", headers={"typ": "JWT"}),
        "token_type",
        "An ID token is not an access token.",
    ),
    (
        "a logout token's header type",
        lambda p, sub: p.craft_access_token(sub, headers={"typ": "logout+jwt"}),
        "token_type",
        "A token of type 'logout+jwt' is not an access token.",
    ),
    (
        "an empty subject",
        lambda p, sub: p.craft_access_token(""),
        "missing_claim",
        "The access token names no subject.",
    ),
    (
        "an issued-at time that is no time",
        lambda p, sub: p.craft_access_token(sub, iat="yesterday"),
        "malformed",
        "The access token is not valid.",
    ),
    (
        "not a JWT",
        lambda p, sub: "not-a-token",
        "malformed",
        "The access token is not a well-formed JWT.",
    ),
    (
        "an unknown subject",
        lambda p, sub: p.craft_access_token("no-such-subject"),
        "unknown_subject",
        "No account is linked to the token's subject.",
    ),
]


@pytest.mark.parametrize(("description", "build", "reason", "message"), REFUSED, ids=[case[0] for case in REFUSED])
def test_bad_tokens_are_refused_and_recorded(provider_settings, account_user, description, build, reason, message):
    token = build(provider_settings, account_user.oidc_subject)

    response = call_me(token)

    assert_rejected(response, reason, message)


def test_an_id_token_from_the_provider_is_not_an_access_token(provider_settings, oidc_account, account_user):
    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    response = call_me(tokens["id_token"])

    # Addressed to the client, not to the API: the audience refuses it first.
    assert_rejected(response, "audience", "The access token is not meant for this API.")


def test_an_id_token_is_refused_even_when_the_api_audience_is_the_client_id(
    settings, provider_settings, oidc_account, account_user
):
    settings.OIDC_API_AUDIENCE = provider_settings.client_id
    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    response = call_me(tokens["id_token"])

    assert_rejected(response, "token_type", "An ID token is not an access token.")


def test_a_tampered_token_from_the_provider_is_refused(provider_settings, oidc_account, account_user):
    other = UserFactory(oidc_subject="someone-else")
    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    response = call_me(tamper(tokens["access_token"], sub=other.oidc_subject))

    assert_rejected(response, "signature", "The access token's signature does not verify.")
    assert rejections()[0]["subject"] == "someone-else"


def test_an_inactive_account_is_refused(provider_settings, account_user):
    token = provider_settings.craft_access_token(account_user.oidc_subject)
    assert call_me(token).status_code == 200  # found, and now cached

    account_user.is_active = False
    account_user.save()

    assert_rejected(call_me(token), "inactive_user", "The account of the token's subject is deactivated.")


def test_the_rejection_event_names_the_claims_but_not_the_token(provider_settings, account_user):
    token = provider_settings.craft_access_token(account_user.oidc_subject, aud="another-api")

    call_me(token)

    event = SecurityEvent.objects.get(kind=SecurityEventKind.TOKEN_REJECTED)
    assert event.source == "api"
    assert event.actor_id is None
    assert event.data == {
        "reason": "audience",
        "description": "The access token is not meant for this API.",
        "algorithm": "RS256",
        "kid": provider_settings.kid,
        "issuer": provider_settings.issuer,
        "subject": account_user.oidc_subject,
        "audience": "another-api",
        "client": "itdo-erp",
    }
    assert token not in str(event.data)


@pytest.mark.parametrize("header", ["Bearer", "Bearer one two"])
def test_a_bearer_header_without_one_token_is_refused(provider_settings, header):
    response = APIClient().get(ME_URL, HTTP_AUTHORIZATION=header)

    assert_rejected(response, "malformed", "The Authorization header must be 'Bearer <access token>'.")


# --- How it sits with the other ways in -------------------------------------------------------------------------------


def test_a_bearer_token_wins_over_a_session_cookie(provider_settings, account_user):
    client = APIClient()
    client.force_login(UserFactory())
    token = provider_settings.craft_access_token(account_user.oidc_subject, aud="another-api")

    response = client.get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401


def test_without_a_configured_issuer_bearer_tokens_are_not_read(settings, oidc_provider, oidc_account):
    settings.OIDC_ISSUER = ""
    token = oidc_provider.craft_access_token(oidc_account["sub"])

    response = call_me(token)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Session realm="api"'
    assert rejections() == []


def test_anonymous_calls_still_get_the_session_challenge(provider_settings):
    response = APIClient().get(ME_URL)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


def test_the_account_is_cached_by_subject(provider_settings, account_user, django_assert_num_queries):
    bearer.user_for_subject(account_user.oidc_subject)

    with django_assert_num_queries(0):
        found = bearer.user_for_subject(account_user.oidc_subject)

    assert found.pk == account_user.pk


def test_the_bearer_challenge_names_the_realm():
    assert bearer.BearerTokenAuthentication().authenticate_header(None) == 'Bearer realm="api"'
