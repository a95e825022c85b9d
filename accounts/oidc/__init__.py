"""Sign-in through the OpenID Connect identity provider (Keycloak in production).

Browser sign-in (code flow with PKCE, the provider's claims mapped to memberships and role assignments, session
refresh and provider logout) and the API's bearer tokens validated locally. Nothing is imported here: the settings
module imports ``accounts.oidc.mapping`` and must not pull in models.
"""
