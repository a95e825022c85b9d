"""The browser's way through the identity provider: start the sign-in, come back from it, sign out.

mozilla-django-oidc's views with their settings read through ``oidc_setting`` (endpoints from discovery). The callback
is our own: it hands the backend the state's nonce and PKCE verifier and turns a refusal into a message on the admin
login page (its security event is already recorded), never into an error page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import admin, auth, messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView, OIDCLogoutView

from accounts.oidc.backend import BACKEND_PATH, ProviderBackend
from accounts.oidc.discovery import ProviderUnavailableError, is_configured, oidc_setting
from accounts.oidc.logout import ID_TOKEN_SESSION_KEY, is_provider_session, provider_logout_url
from accounts.oidc.services import SignInRefused

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The identity provider cannot be reached right now. Try again later or sign in with a password."
EXPIRED_MESSAGE = "The sign-in took too long or was started elsewhere. Please sign in again."
PROVIDER_SESSION_ENDED_MESSAGE = "Your session at the identity provider has ended. Please sign in again."


class ProviderSignInView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's authorization endpoint (code flow, PKCE S256, state and nonce)."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        # The endpoint is read per request (from discovery), not when the view is built.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request: HttpRequest) -> HttpResponseBase:
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except ProviderUnavailableError:
            messages.error(request, UNAVAILABLE_MESSAGE)
            return HttpResponseRedirect(resolve_failure_url())
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        response: HttpResponseBase = super().get(request)
        return response


class ProviderCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back with a code (or an error)."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponseBase:
        states = request.session.get("oidc_states")
        state = request.GET.get("state")
        entry = states.pop(state, None) if isinstance(states, dict) and state else None
        if entry is not None:
            # Each state is used once, whatever happens next: a replayed callback finds nothing.
            request.session.modified = True
            request.session.save()
        if request.GET.get("error"):
            if request.user.is_authenticated:
                # A silent re-authentication was refused: the provider's session is over, so is ours.
                auth.logout(request)
                messages.info(request, PROVIDER_SESSION_ENDED_MESSAGE)
            return self.login_failure()
        if entry is None or not request.GET.get("code"):
            messages.error(request, EXPIRED_MESSAGE)
            return self.login_failure()
        try:
            user = ProviderBackend().authenticate(
                request, nonce=entry.get("nonce"), code_verifier=entry.get("code_verifier")
            )
        except SignInRefused as refusal:
            if request.user.is_authenticated:
                auth.logout(request)
            messages.error(request, refusal.message)
            return self.login_failure()
        if user is None:  # pragma: no cover - the backend answers every configured callback or refuses
            return self.login_failure()
        user.backend = BACKEND_PATH  # type: ignore[attr-defined]  # what auth.authenticate() would set
        self.user = user
        id_token = request.session.get(ID_TOKEN_SESSION_KEY)
        response: HttpResponseBase = self.login_success()
        if id_token is not None:
            # Signing in over another person's session starts a fresh one: keep the ID token for the logout.
            request.session[ID_TOKEN_SESSION_KEY] = id_token
        return response


class ProviderLogoutView(OIDCLogoutView):
    """``POST /oidc/logout/``: ends the session here and sends the browser to end the provider's one."""

    get_settings = staticmethod(oidc_setting)

    @property
    def redirect_url(self) -> str:
        return str(settings.OIDC_LOGOUT_REDIRECT_URL)


@csrf_protect
@never_cache
def admin_logout(request: HttpRequest) -> HttpResponseBase:
    """The admin's "Log out" for a provider session also ends the provider's session; local sessions log out as
    the admin always did."""
    if request.method == "POST" and is_provider_session(request):
        url = provider_logout_url(request)
        auth.logout(request)
        return HttpResponseRedirect(url)
    response: HttpResponse = admin.site.logout(request)
    return response


def resolve_failure_url() -> str:
    return str(oidc_setting("LOGIN_REDIRECT_URL_FAILURE", "/"))


def sign_in_options(request: HttpRequest) -> dict[str, Any]:
    """Template context: the provider's sign-in button (name and URL) when a provider is configured."""
    if not is_configured():
        return {}
    try:
        url = reverse("oidc_authentication_init")
    except NoReverseMatch:
        return {}
    return {"oidc_provider": {"name": settings.OIDC_PROVIDER_NAME, "url": url}}
