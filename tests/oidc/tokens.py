"""Driving the test OpenID provider: its keys, accounts and login form, and tokens minted by it or crafted with its key.

``OpenIDProvider`` is what the ``oidc_provider`` fixture (``tests/oidc/conftest.py``) returns; the module functions run
the browser side of the code flow with ``requests`` so that a test can act as the person signing in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HTTP_TIMEOUT = 10
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/oidc/callback/"
DEFAULT_SCOPE = "openid email profile"


# --- Keys -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private signing key with its key id and algorithm, as the provider holds it."""

    kid: str
    alg: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate_rsa(cls, kid: str | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=kid or f"rsa-{uuid.uuid4().hex[:12]}", alg="RS256", private_key=key)

    @classmethod
    def generate_ec(cls, kid: str | None = None) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(kid=kid or f"ec-{uuid.uuid4().hex[:12]}", alg="ES256", private_key=key)

    @property
    def private_jwk(self) -> dict[str, Any]:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(self.private_key, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.private_key, as_dict=True)
        jwk.pop("key_ops", None)  # both "use" and "key_ops" would be redundant; the provider wants "use"
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def public_jwk(self) -> dict[str, Any]:
        return {
            name: value for name, value in self.private_jwk.items() if name not in {"d", "p", "q", "dp", "dq", "qi"}
        }

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """A JWT signed with this key; a header given as ``None`` is left out (``typ: None``: no ``typ`` at all)."""
        fields = {"kid": self.kid, **(headers or {})}
        fields = {name: value for name, value in fields.items() if value is not None or name == "typ"}
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=fields)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_unsigned(claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
    """A token with ``alg: none`` and an empty signature, as an attacker would send it."""
    header = {"alg": "none", "typ": "at+jwt", **(headers or {})}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def encode_hs256_with(secret: bytes, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
    """An HS256 token MACed with ``secret`` — e.g. the provider's public key, the classic algorithm confusion attack."""
    header = {"alg": "HS256", "typ": "at+jwt", **(headers or {})}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """The same token, signature kept, with claims in its payload changed."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# --- Browser side of the code flow ------------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"id": attributes.get("id", ""), "action": attributes.get("action", ""), "inputs": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["inputs"][attributes["name"]] = attributes.get("value", "")


def parse_forms(html: str) -> list[dict[str, Any]]:
    """The forms of a page: ``[{"id", "action", "inputs": {name: value}}]``."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


class SignInFailedError(AssertionError):
    """The provider did not send the browser back to the client (wrong password, an error page…)."""


def _is_provider_url(url: str, provider_origin: str) -> bool:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}" == provider_origin


def sign_in_at_provider(session: requests.Session, authorize_url: str, login: str, password: str) -> str:
    """Act as the browser from the authorization request to the redirect back to the client; returns that URL.

    Follows the provider's redirects, submits its login form when it shows one (a live provider session skips it), and
    stops at the first redirect that leaves the provider — the client's callback with ``code`` and ``state``.
    """
    parsed = urlparse(authorize_url)
    provider_origin = f"{parsed.scheme}://{parsed.netloc}"
    response = session.get(authorize_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    for _ in range(20):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if not _is_provider_url(location, provider_origin):
                return location
            response = session.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
            continue
        forms = [form for form in parse_forms(response.text) if form["id"] == "kc-form-login"]
        if response.status_code != 200 or not forms:
            raise SignInFailedError(f"the provider answered {response.status_code}: {response.text[:500]}")
        if 'id="error"' in response.text and response.request.method == "POST":
            raise SignInFailedError(f"the provider refused the sign-in of {login!r}")
        response = session.post(
            urljoin(response.url, forms[0]["action"]),
            data={"username": login, "password": password},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
    raise SignInFailedError("too many redirects at the provider")


def sign_out_at_provider(session: requests.Session, end_session_url: str) -> str:
    """Act as the browser on the provider's logout page; returns where it sends the browser afterwards.

    That is the ``post_logout_redirect_uri`` when the client gave one (with ``state``), else the provider's own
    "signed out" page.
    """
    response = session.get(end_session_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    forms = [form for form in parse_forms(response.text) if form["id"] == "op.logoutForm"]
    if response.status_code != 200 or not forms:
        raise AssertionError(f"no logout form at the provider ({response.status_code}): {response.text[:500]}")
    response = session.post(
        urljoin(response.url, forms[0]["action"]),
        data=forms[0]["inputs"],
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    parsed = urlparse(end_session_url)
    provider_origin = f"{parsed.scheme}://{parsed.netloc}"
    while response.is_redirect:
        location = urljoin(response.url, response.headers["Location"])
        if not _is_provider_url(location, provider_origin):
            return location
        response = session.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
    return response.url


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


# --- The provider -----------------------------------------------------------------------------------------------------


@dataclass
class OpenIDProvider:
    """A running test provider (see ``tests/oidc/conftest.py`` for the fixture that starts it)."""

    base_url: str  # http://127.0.0.1:<port>
    issuer: str
    client_id: str
    client_secret: str
    audience: str
    resource: str
    signing_keys: list[SigningKey]
    initial_keys: list[SigningKey] = field(default_factory=list)
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    # The ERP's client authenticates at the token endpoint like mozilla-django-oidc does by default.
    token_endpoint_auth_method: str = "client_secret_post"
    _discovery: dict[str, Any] | None = None

    # Endpoints

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            response = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            self._discovery = response.json()
        return self._discovery

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def userinfo_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/userinfo"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/logout"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/revoke"

    # Keys

    @property
    def signing_key(self) -> SigningKey:
        """The RSA key that signs the provider's tokens now (RS256)."""
        return next(key for key in self.signing_keys if key.alg == "RS256")

    @property
    def kid(self) -> str:
        return self.signing_key.kid

    @property
    def ec_key(self) -> SigningKey:
        """The provider's EC P-256 key (published in its JWKS; tests sign ES256 tokens with it)."""
        return next(key for key in self.signing_keys if key.alg == "ES256")

    @property
    def private_jwks(self) -> dict[str, Any]:
        return {"keys": [key.private_jwk for key in self.signing_keys]}

    def set_keys(self, keys: list[SigningKey]) -> None:
        response = requests.post(
            f"{self.base_url}/test/keys", json={"keys": [key.private_jwk for key in keys]}, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        self.signing_keys = list(keys)

    def rotate_keys(self, *, keep_previous: bool = True) -> SigningKey:
        """A new RSA key signs from now on; the previous keys stay published unless ``keep_previous`` is false."""
        new_key = SigningKey.generate_rsa()
        self.set_keys([new_key, *(self.signing_keys if keep_previous else [self.ec_key])])
        return new_key

    # Accounts

    def upsert_account(
        self,
        sub: str,
        *,
        email: str | None = None,
        email_verified: bool | None = None,
        name: str | None = None,
        groups: list[str] | None = None,
        roles: list[str] | None = None,
        password: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Create or change an account; fields left ``None`` keep their value. The login is ``username`` or email."""
        values = {
            "sub": sub,
            "email": email,
            "email_verified": email_verified,
            "name": name,
            "groups": groups,
            "roles": roles,
            "password": password,
            "username": username,
        }
        response = requests.post(
            f"{self.base_url}/test/accounts",
            json={key: value for key, value in values.items() if value is not None},
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        account: dict[str, Any] = response.json()
        return account

    # What happened at the provider

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Sign-ins (``login``, ``login_failed``), ``logout`` and token ``grant`` events, oldest first."""
        response = requests.get(f"{self.base_url}/test/events", timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return [event for event in response.json() if kind is None or event["kind"] == kind]

    def reset(self) -> None:
        """Back to the keys the provider started with, and no events (accounts are kept: tests use their own)."""
        if [key.kid for key in self.signing_keys] != [key.kid for key in self.initial_keys]:
            self.set_keys(self.initial_keys)
        requests.post(f"{self.base_url}/test/events/clear", timeout=HTTP_TIMEOUT).raise_for_status()

    # Tokens

    def authorize_url(
        self,
        *,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scope: str = DEFAULT_SCOPE,
        state: str = "state",
        nonce: str = "nonce",
        code_challenge: str,
        **extra: str,
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.authorization_endpoint}?{urlencode(query)}"

    def obtain_tokens(
        self,
        login: str,
        password: str,
        *,
        scope: str = DEFAULT_SCOPE,
        session: requests.Session | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
    ) -> dict[str, Any]:
        """Sign in with the code flow and PKCE, exchange the code; the token response (access, ID, refresh tokens)."""
        session = session or requests.Session()
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        callback = sign_in_at_provider(
            session,
            self.authorize_url(redirect_uri=redirect_uri, scope=scope, state=state, code_challenge=challenge),
            login,
            password,
        )
        query = parse_qs(urlparse(callback).query)
        if "code" not in query:
            raise SignInFailedError(f"no code in the callback {callback}")
        assert query["state"] == [state]
        return self.exchange(
            {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        )

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self.exchange({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        response = requests.post(
            self.token_endpoint,
            data={**form, "client_id": self.client_id, "client_secret": self.client_secret},
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise SignInFailedError(f"token endpoint answered {response.status_code}: {response.text}")
        tokens: dict[str, Any] = response.json()
        return tokens

    def access_token_claims(self, sub: str, **changes: Any) -> dict[str, Any]:
        """The claims of an access token as the provider issues them (valid for five minutes), with ``changes``."""
        now = int(time.time())
        claims = {
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "sub": sub,
            "aud": self.audience,
            "azp": self.client_id,
            "client_id": self.client_id,
            "typ": "Bearer",
            "scope": "openid email profile",
            "iat": now,
            "exp": now + 300,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def craft_access_token(
        self, sub: str, *, key: SigningKey | None = None, headers: dict[str, Any] | None = None, **changes: Any
    ) -> str:
        """An access token signed with the provider's key (or ``key``); claims changed by ``changes``, None drops."""
        return (key or self.signing_key).sign(
            self.access_token_claims(sub, **changes), headers={"typ": "at+jwt", **(headers or {})}
        )

    # Django settings

    def settings_overrides(self) -> dict[str, Any]:
        """The settings that point the ERP at this provider (the values the environment variables would give)."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_OP_DISCOVERY_URL": self.discovery_url,
            "OIDC_RP_CLIENT_ID": self.client_id,
            "OIDC_RP_CLIENT_SECRET": self.client_secret,
            "OIDC_API_AUDIENCE": self.audience,
            # mozilla-django-oidc's own names, for the browser sign-in
            "OIDC_OP_AUTHORIZATION_ENDPOINT": self.authorization_endpoint,
            "OIDC_OP_TOKEN_ENDPOINT": self.token_endpoint,
            "OIDC_OP_USER_ENDPOINT": self.userinfo_endpoint,
            "OIDC_OP_JWKS_ENDPOINT": self.jwks_url,
            "OIDC_OP_LOGOUT_ENDPOINT": self.end_session_endpoint,
            "OIDC_RP_SIGN_ALGO": "RS256",
            "OIDC_RP_SCOPES": DEFAULT_SCOPE,
            "OIDC_USE_PKCE": True,
            "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        }
