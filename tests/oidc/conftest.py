"""A real OpenID provider for the identity tests: ``oidc-provider`` (npm) configured like the Keycloak realm ``itdo``.

Fixtures
--------
``oidc_provider`` (function scope; one Node process per test session behind it) → ``tests.oidc.tokens.OpenIDProvider``:

- ``issuer`` ``http://127.0.0.1:<port>/realms/itdo``; ``discovery_url`` (``<issuer>/.well-known/openid-configuration``),
  ``discovery`` (the parsed document), ``authorization_endpoint``, ``token_endpoint``, ``userinfo_endpoint``,
  ``jwks_url``, ``end_session_endpoint``, ``revocation_endpoint`` — Keycloak's paths (``protocol/openid-connect/…``).
- ``client_id`` ``itdo-erp`` and ``client_secret``: a confidential client, code flow with PKCE (S256 required),
  ``client_secret_post`` at the token endpoint (``token_endpoint_auth_method``; mozilla-django-oidc's default), redirect
  URIs ``http://testserver/oidc/callback/``, ``http://127.0.0.1:8000/oidc/callback/``,
  ``http://localhost:8000/oidc/callback/``; post-logout redirect URIs the same hosts' ``/`` and ``/admin/login/``.
- ``audience`` ``itdo-erp-api``: every access token is a JWT (header ``typ: at+jwt``) with ``aud`` = audience,
  ``azp`` = ``client_id``, ``typ: "Bearer"``, ``scope``, the profile claims, ``groups`` and ``realm_access.roles``.
  ID tokens (``aud`` = ``client_id``) and userinfo carry ``sub``, ``email``, ``email_verified``, ``name``,
  ``given_name``, ``family_name``, ``preferred_username``, ``groups`` (full paths such as ``/acme/finance-managers``)
  and ``realm_access: {"roles": [...]}``. Userinfo answers with the account's *current* claims.
- Refresh tokens in every code flow (rotated; they end with the provider session) — ``refresh(refresh_token)``.
- RP-initiated logout at ``end_session_endpoint`` with ``id_token_hint`` and ``post_logout_redirect_uri``; the provider
  shows a logout form that ``tokens.sign_out_at_provider(session, url)`` submits like a browser.
- Keys: ``signing_key`` (RSA, RS256, signs the provider's tokens; ``kid``), ``ec_key`` (P-256, published too),
  ``signing_keys``, ``private_jwks``; ``rotate_keys(keep_previous=True)`` makes a new RSA key sign from now on.
  ``craft_access_token(sub, key=None, headers=None, **claim_changes)`` signs an access token of one's own
  (a change to ``None`` drops the claim); ``access_token_claims(sub, **changes)`` gives the claims.
- ``upsert_account(sub, email=, email_verified=, name=, groups=, roles=, password=, username=)`` creates or changes an
  account (the login is ``username``, defaulting to the email); changes show at the next sign-in or userinfo call.
- ``obtain_tokens(login, password, scope="openid email profile")`` runs the code flow with PKCE with ``requests`` and
  returns the token response (``access_token``, ``id_token``, ``refresh_token``, …).
- ``events(kind=None)``: ``login``, ``login_failed``, ``logout``, ``grant`` at the provider, oldest first.
- ``settings_overrides()``: the Django settings that point the ERP at the provider — ``OIDC_ISSUER``,
  ``OIDC_OP_DISCOVERY_URL``, ``OIDC_RP_CLIENT_ID``, ``OIDC_RP_CLIENT_SECRET``, ``OIDC_API_AUDIENCE`` and
  mozilla-django-oidc's ``OIDC_OP_*_ENDPOINT``, ``OIDC_RP_SIGN_ALGO``, ``OIDC_RP_SCOPES``, ``OIDC_USE_PKCE``.
- After each test the provider's keys go back to the initial ones and its events are cleared.

``oidc_account`` (function scope): a fresh account at the provider — a dict with ``sub``, ``username``, ``email``,
``name``, ``password``, ``groups``, ``roles``.

Browser helpers in ``tests.oidc.tokens``: ``sign_in_at_provider(session, authorize_url, login, password)`` follows the
authorization request through the login form and returns the callback URL (with ``code`` and ``state``) instead of
following it; ``sign_out_at_provider(session, end_session_url)``; ``parse_forms(html)``.

The provider runs on Node.js (``node`` on the PATH; its absence fails the tests that need it). Its packages are
installed with ``npm ci`` from ``tests/oidc/provider/package-lock.json`` when ``node_modules`` is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.oidc.tokens import OpenIDProvider, SigningKey

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
CLIENT_ID = "itdo-erp"
AUDIENCE = "itdo-erp-api"
RESOURCE = "urn:itdo:erp-api"
CLIENT_HOSTS = ("http://testserver", "http://127.0.0.1:8000", "http://localhost:8000")
INSTALL_TIMEOUT_SECONDS = 300
START_TIMEOUT_SECONDS = 30


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (node on the PATH) is needed to run the test OpenID provider in tests/oidc/provider.")
    return node


def _install_packages() -> None:
    """``npm ci`` once, under a file lock: parallel test runs on a fresh clone must not install over each other."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install the test OpenID provider's packages (tests/oidc/provider).")
    with open(PROVIDER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        try:
            result = subprocess.run(  # noqa: S603 - a fixed command line, no shell
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=PROVIDER_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci in {PROVIDER_DIR} took more than {INSTALL_TIMEOUT_SECONDS} s")
        if result.returncode != 0:
            pytest.fail(f"npm ci in {PROVIDER_DIR} failed:\n{result.stdout}\n{result.stderr}")


def _wait_for_ready_line(process: subprocess.Popen[str], log_path: Path) -> tuple[int, str]:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the test OpenID provider exited ({process.returncode}):\n{log_path.read_text()}")
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                _, port, issuer = line.split()
                return int(port), issuer
    pytest.fail(f"the test OpenID provider did not start in {START_TIMEOUT_SECONDS} s:\n{log_path.read_text()}")


def _wait_for_discovery(discovery_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(discovery_url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"no discovery document at {discovery_url} after {START_TIMEOUT_SECONDS} s")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def _oidc_provider_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIDProvider]:
    node = _node()
    _install_packages()
    workdir = tmp_path_factory.mktemp("oidc-provider")
    keys = [SigningKey.generate_rsa(), SigningKey.generate_ec()]
    client_secret = f"test-secret-{uuid.uuid4().hex}"
    redirect_uris = tuple(f"{host}/oidc/callback/" for host in CLIENT_HOSTS)
    post_logout_redirect_uris = tuple(f"{host}{path}" for host in CLIENT_HOSTS for path in ("/", "/admin/login/"))
    config: dict[str, Any] = {
        "realm": "itdo",
        "port": 0,
        "audience": AUDIENCE,
        "resource": RESOURCE,
        "jwks": {"keys": [key.private_jwk for key in keys]},
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": client_secret,
                "redirect_uris": list(redirect_uris),
                "post_logout_redirect_uris": list(post_logout_redirect_uris),
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            }
        ],
        "accounts": [],
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    config_path.chmod(0o600)
    log_path = workdir / "provider.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line, no shell
            [node, "server.mjs"],
            cwd=PROVIDER_DIR,
            env={**os.environ, "OIDC_TEST_CONFIG": str(config_path), "NODE_ENV": "test"},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        port, issuer = _wait_for_ready_line(process, log_path)
        provider = OpenIDProvider(
            base_url=f"http://127.0.0.1:{port}",
            issuer=issuer,
            client_id=CLIENT_ID,
            client_secret=client_secret,
            audience=AUDIENCE,
            resource=RESOURCE,
            signing_keys=list(keys),
            initial_keys=list(keys),
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
        )
        _wait_for_discovery(provider.discovery_url)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def oidc_provider(_oidc_provider_process: OpenIDProvider) -> Iterator[OpenIDProvider]:
    yield _oidc_provider_process
    _oidc_provider_process.reset()


@pytest.fixture
def oidc_account(oidc_provider: OpenIDProvider) -> dict[str, Any]:
    """A fresh account at the provider: Ada Lovelace, finance manager at acme, with the realm role ``erp-user``."""
    suffix = uuid.uuid4().hex[:10]
    account = {
        "sub": f"{uuid.uuid4()}",
        "username": f"ada-{suffix}",
        "email": f"ada-{suffix}@acme.example",
        "email_verified": True,
        "name": "Ada Lovelace",
        "groups": ["/acme/finance-managers"],
        "roles": ["erp-user"],
        "password": f"correct-horse-{suffix}",
    }
    oidc_provider.upsert_account(**account)
    return account


@pytest.fixture
def provider_settings(settings, oidc_provider: OpenIDProvider) -> OpenIDProvider:
    """The ERP's settings pointed at the test provider."""
    for name, value in oidc_provider.settings_overrides().items():
        setattr(settings, name, value)
    return oidc_provider


@pytest.fixture
def account_user(provider_settings: OpenIDProvider, oidc_account: dict[str, Any]) -> Any:
    """The ERP account linked to the provider account (as the first browser sign-in would have linked it)."""
    from tests.accounts.factories import UserFactory

    return UserFactory(email=oidc_account["email"], full_name="Ada Lovelace", oidc_subject=oidc_account["sub"])
