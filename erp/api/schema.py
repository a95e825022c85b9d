"""OpenAPI extensions: how the project's own API classes appear in the schema."""

from drf_spectacular.authentication import SessionScheme


class ProjectSessionScheme(SessionScheme):
    """The session-cookie scheme for the project's SessionAuthentication (which answers 401 instead of 403)."""

    target_class = "erp.api.authentication.SessionAuthentication"
