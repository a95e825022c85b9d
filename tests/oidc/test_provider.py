"""The test provider behaves like the Keycloak realm: discovery, code flow with PKCE, token shapes, logout, keys."""

from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests

from tests.oidc.tokens import SignInFailedError, pkce_pair, sign_in_at_provider, sign_out_at_provider, unverified_claims


def test_discovery_describes_a_keycloak_like_realm(oidc_provider):
    discovery = oidc_provider.discovery

    assert oidc_provider.issuer.endswith("/realms/itdo")
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["jwks_uri"] == oidc_provider.jwks_url
    assert discovery["token_endpoint"] == oidc_provider.token_endpoint
    assert discovery["authorization_endpoint"] == oidc_provider.authorization_endpoint
    assert discovery["end_session_endpoint"] == oidc_provider.end_session_endpoint
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    published = requests.get(oidc_provider.jwks_url, timeout=5).json()["keys"]
    assert {key["kid"] for key in published} == {key.kid for key in oidc_provider.signing_keys}
    assert all("d" not in key for key in published)


def test_tokens_carry_keycloak_claims(oidc_provider, oidc_account):
    tokens = oidc_provider.obtain_tokens(oidc_account["username"], oidc_account["password"])

    access, identity = unverified_claims(tokens["access_token"]), unverified_claims(tokens["id_token"])
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == oidc_provider.kid
    assert (access["aud"], access["azp"], access["typ"], access["sub"]) == (
        "itdo-erp-api",
        "itdo-erp",
        "Bearer",
        oidc_account["sub"],
    )
    assert access["realm_access"] == {"roles": ["erp-user"]}
    assert identity["aud"] == "itdo-erp"
    assert identity["groups"] == ["/acme/finance-managers"]
    assert (identity["email"], identity["email_verified"], identity["name"]) == (
        oidc_account["email"],
        True,
        "Ada Lovelace",
    )
    assert tokens["refresh_token"]


def test_userinfo_and_refresh_reflect_the_account_as_it_is_now(oidc_provider, oidc_account):
    tokens = oidc_provider.obtain_tokens(oidc_account["email"], oidc_account["password"])
    oidc_provider.upsert_account(oidc_account["sub"], groups=["/globex/sales-reps"], name="Ada King")

    userinfo = requests.get(
        oidc_provider.userinfo_endpoint, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=5
    )
    refreshed = oidc_provider.refresh(tokens["refresh_token"])

    assert userinfo.status_code == 200
    assert (userinfo.json()["groups"], userinfo.json()["name"]) == (["/globex/sales-reps"], "Ada King")
    assert unverified_claims(refreshed["access_token"])["groups"] == ["/globex/sales-reps"]


def test_userinfo_refuses_a_token_it_did_not_sign(oidc_provider, oidc_account):
    forged = oidc_provider.craft_access_token(oidc_account["sub"], key=type(oidc_provider.signing_key).generate_rsa())

    response = requests.get(oidc_provider.userinfo_endpoint, headers={"Authorization": f"Bearer {forged}"}, timeout=5)

    assert response.status_code == 401


def test_a_wrong_password_keeps_the_browser_at_the_provider(oidc_provider, oidc_account):
    with pytest.raises(SignInFailedError):
        oidc_provider.obtain_tokens(oidc_account["username"], "not-the-password")

    assert [event["username"] for event in oidc_provider.events("login_failed")] == [oidc_account["username"]]


def test_pkce_is_required(oidc_provider, oidc_account):
    url = oidc_provider.authorize_url(code_challenge="x").replace("&code_challenge=x&code_challenge_method=S256", "")

    callback = sign_in_at_provider(requests.Session(), url, oidc_account["username"], oidc_account["password"])

    assert parse_qs(urlparse(callback).query)["error"] == ["invalid_request"]


def test_logout_ends_the_provider_session(oidc_provider, oidc_account):
    browser = requests.Session()
    tokens = oidc_provider.obtain_tokens(oidc_account["username"], oidc_account["password"], session=browser)
    logout_url = f"{oidc_provider.end_session_endpoint}?" + urlencode(
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "http://testserver/", "state": "s"}
    )

    landing = sign_out_at_provider(browser, logout_url)

    assert landing == "http://testserver/?state=s"
    assert [event["sub"] for event in oidc_provider.events("logout")] == [oidc_account["sub"]]
    with pytest.raises(SignInFailedError):  # the session is gone: the refresh token died with it
        oidc_provider.refresh(tokens["refresh_token"])
    _, challenge = pkce_pair()
    second = browser.get(oidc_provider.authorize_url(code_challenge=challenge), allow_redirects=True, timeout=5)
    assert 'id="kc-form-login"' in second.text  # asked to sign in again


def test_rotated_keys_sign_new_tokens_and_are_published(oidc_provider, oidc_account):
    old_kid = oidc_provider.kid

    new_key = oidc_provider.rotate_keys()
    tokens = oidc_provider.obtain_tokens(oidc_account["username"], oidc_account["password"])

    assert jwt.get_unverified_header(tokens["access_token"])["kid"] == new_key.kid
    published = {key["kid"] for key in requests.get(oidc_provider.jwks_url, timeout=5).json()["keys"]}
    assert {new_key.kid, old_kid} <= published


def test_a_machine_without_node_fails_the_provider_tests_loudly(monkeypatch):
    from tests.oidc import conftest

    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)

    with pytest.raises(pytest.fail.Exception, match=r"Node\.js"):
        conftest._node()
    monkeypatch.setattr(conftest, "PROVIDER_DIR", conftest.PROVIDER_DIR / "nowhere")
    with pytest.raises(pytest.fail.Exception, match="npm"):
        conftest._install_packages()
