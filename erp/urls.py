from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.oidc.urls import provider_urlpatterns
from erp import views
from erp.api import schema  # noqa: F401 - registers the OpenAPI extensions
from erp.health import views as health
from organizations.views import invitation_accept_page

admin.site.site_header = "ITDO ERP"
admin.site.site_title = "ITDO ERP"
admin.site.index_title = "Back office"

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on every page (JSON ones too): served here in every environment, not only where
    # static files are.
    path(
        "favicon.ico",
        cache_control(max_age=86400, public=True)(serve),
        {"path": "favicon.ico", "document_root": settings.BASE_DIR / "static" / "erp"},
        name="favicon",
    ),
    # Sign-in through the identity provider (/oidc/…, and the admin logout that ends the provider's session too):
    # only when OIDC_ISSUER is set.
    *provider_urlpatterns(),
    path("admin/", admin.site.urls),
    path("audit/", include("audit.urls")),
    path("api/v1/", include("erp.api.urls")),
    path("invitations/accept/<str:token>/", invitation_accept_page, name="invitation-accept-page"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
]

handler404 = "erp.views.page_not_found"
handler500 = "erp.views.server_error"  # a database that cannot be reached: 503 (erp.views)
