"""OpenAPI extensions: how the project's own API classes appear in the schema."""

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ProjectSessionScheme(SessionScheme):
    """The session-cookie scheme for the project's SessionAuthentication (which answers 401 instead of 403)."""

    target_class = "erp.api.authentication.SessionAuthentication"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The identity provider's access tokens (JWTs), sent as ``Authorization: Bearer <token>``."""

    target_class = "accounts.oidc.bearer.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        definition: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer", bearer_format="JWT"
        )
        definition["description"] = (
            "An access token from the identity provider (Keycloak) for the API's audience; checked locally."
        )
        return definition
