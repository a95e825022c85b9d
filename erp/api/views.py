"""The API's front door: where the entry points are."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView


class ApiRootView(APIView):
    """Links to the account-level entry points and the documentation; org-scoped resources hang below
    ``organizations/{slug}/``."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return reverse(name, request=request)

        return Response(
            {
                "auth": {
                    "csrf": link("api:auth-csrf"),
                    "login": link("api:auth-login"),
                    "logout": link("api:auth-logout"),
                },
                "me": link("api:me"),
                "organizations": link("api:organization-list"),
                "organization_resources": link("api:organization-list") + "{slug}/<resource>/",
                "schema": link("schema"),
                "docs": link("swagger-ui"),
                "redoc": link("redoc"),
            }
        )
