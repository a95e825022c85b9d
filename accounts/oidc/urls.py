"""Routes of the browser sign-in through the identity provider; present only when ``OIDC_ISSUER`` is set."""

from __future__ import annotations

from django.conf import settings
from django.urls import URLPattern, URLResolver, include, path

from accounts.oidc import views

urlpatterns = [
    path("authenticate/", views.ProviderSignInView.as_view(), name="oidc_authentication_init"),
    path("callback/", views.ProviderCallbackView.as_view(), name="oidc_authentication_callback"),
    path("logout/", views.ProviderLogoutView.as_view(), name="oidc_logout"),
]


def provider_urlpatterns() -> list[URLPattern | URLResolver]:
    """``/oidc/…`` and the admin logout that also ends the provider's session (it must come before ``admin/``);
    nothing without a provider, so that only local sign-in exists then."""
    if not getattr(settings, "OIDC_ISSUER", ""):
        return []
    return [
        path("oidc/", include("accounts.oidc.urls")),
        path("admin/logout/", views.admin_logout, name="oidc_admin_logout"),
    ]
