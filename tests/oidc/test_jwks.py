"""The provider's keys: fetched once and cached, refetched once on an unknown key id, never hammered."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from accounts.oidc import jwks
from audit.models import SecurityEvent, SecurityEventKind
from tests.oidc.tokens import SigningKey

pytestmark = pytest.mark.django_db

ME_URL = "/api/v1/me/"


@pytest.fixture
def http_calls(monkeypatch) -> list[str]:
    """The URLs every ``requests`` call in the code under test goes to (tests' own calls included — make them first)."""
    calls: list[str] = []
    original = requests.Session.request

    def counting(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        calls.append(url)
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counting)
    return calls


def call_me(token: str) -> int:
    return APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_keys_are_fetched_once_then_served_from_the_cache(provider_settings, account_user, http_calls):
    token = provider_settings.craft_access_token(account_user.oidc_subject)

    assert call_me(token) == 200
    first = list(http_calls)
    assert call_me(token) == 200
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=provider_settings.ec_key)) == 200

    assert first == [provider_settings.jwks_url]  # explicit OIDC_OP_JWKS_ENDPOINT: no discovery needed
    assert http_calls == first  # no further call, whichever known key signed


def test_without_an_explicit_endpoint_the_keys_are_found_through_discovery(
    settings, provider_settings, account_user, http_calls
):
    settings.OIDC_OP_JWKS_ENDPOINT = ""
    token = provider_settings.craft_access_token(account_user.oidc_subject)

    assert call_me(token) == 200
    assert call_me(token) == 200

    assert http_calls == [provider_settings.discovery_url, provider_settings.jwks_url]


def test_a_rotated_key_is_accepted_after_one_refetch(provider_settings, account_user, http_calls):
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject)) == 200
    new_key = provider_settings.rotate_keys()
    http_calls.clear()

    status = call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=new_key))
    again = call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=new_key))

    assert (status, again) == (200, 200)
    assert http_calls == [provider_settings.jwks_url]


def test_a_token_minted_after_rotation_by_the_provider_is_accepted(provider_settings, oidc_account, account_user):
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject)) == 200
    provider_settings.rotate_keys(keep_previous=False)

    tokens = provider_settings.obtain_tokens(oidc_account["username"], oidc_account["password"])

    assert call_me(tokens["access_token"]) == 200


def test_unknown_key_ids_trigger_one_refetch_per_interval(provider_settings, account_user, http_calls):
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject)) == 200
    http_calls.clear()

    statuses = [
        call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=SigningKey.generate_ec()))
        for _ in range(5)
    ]

    assert statuses == [401] * 5
    assert http_calls == [provider_settings.jwks_url]  # one refetch for the whole flood
    reasons = SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_REJECTED).values_list("data__reason", flat=True)
    assert list(reasons) == ["unknown_key"] * 5


def test_a_key_rotated_in_during_the_quiet_interval_waits_for_it(provider_settings, account_user):
    assert (
        call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=SigningKey.generate_rsa())) == 401
    )
    new_key = provider_settings.rotate_keys()

    # The refetch just spent on the unknown key holds until the interval ends; then the new key is fetched.
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=new_key)) == 401
    jwks.cache.delete(jwks._cache_key("refetch"))
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=new_key)) == 200


def test_with_no_quiet_interval_every_unknown_key_id_refetches(settings, provider_settings, account_user, http_calls):
    settings.OIDC_JWKS_MIN_REFETCH_SECONDS = 0
    assert call_me(provider_settings.craft_access_token(account_user.oidc_subject)) == 200
    http_calls.clear()

    for _ in range(2):
        call_me(provider_settings.craft_access_token(account_user.oidc_subject, key=SigningKey.generate_rsa()))

    assert http_calls == [provider_settings.jwks_url] * 2


def test_keys_are_fetched_again_when_the_cache_expires(provider_settings, account_user, http_calls):
    token = provider_settings.craft_access_token(account_user.oidc_subject)
    assert call_me(token) == 200

    jwks.cache.delete(jwks._cache_key("set"))  # what the TTL does
    assert call_me(token) == 200

    assert http_calls == [provider_settings.jwks_url] * 2


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_provider_answers_503_without_judging_the_token(settings, provider_settings, account_user):
    settings.OIDC_OP_JWKS_ENDPOINT = f"http://127.0.0.1:{_closed_port()}/certs"
    token = provider_settings.craft_access_token(account_user.oidc_subject)

    response = APIClient().get(ME_URL, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "identity_provider_unavailable"
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.TOKEN_REJECTED).exists()


@pytest.mark.parametrize("body", ["<html>not json</html>", '{"no": "keys"}', "[1, 2]"])
def test_an_answer_that_is_no_key_set_counts_as_unavailable(settings, provider_settings, monkeypatch, body):
    def answer(*args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = body.encode()
        return response

    settings.OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:1/certs"
    monkeypatch.setattr(jwks.requests, "get", answer)

    with pytest.raises(jwks.ProviderUnavailableError):
        jwks.signing_key(provider_settings.kid, "RS256")


def test_only_accepted_algorithms_find_a_key(provider_settings):
    with pytest.raises(jwks.UnknownSigningKeyError):
        jwks.signing_key(provider_settings.kid, "HS256")

    assert jwks.signing_key(provider_settings.kid, "RS256").key_id == provider_settings.kid


def test_keys_not_meant_for_signatures_or_broken_are_never_used(provider_settings):
    published = provider_settings.signing_key.public_jwk
    jwks.cache.set(
        jwks._cache_key("set"),
        [
            {**published, "kid": "for-encryption", "use": "enc"},
            {**published, "kid": "broken", "n": "AA"},
            {**{k: v for k, v in provider_settings.ec_key.public_jwk.items() if k != "alg"}, "kid": "ec-no-alg"},
        ],
        60,
    )
    jwks.cache.add(jwks._cache_key("refetch"), 1, 60)  # a refetch was just spent: only the cached set counts

    for kid in ("for-encryption", "broken", "ec-no-alg"):
        with pytest.raises(jwks.UnknownSigningKeyError):
            jwks.signing_key(kid, "RS256")
