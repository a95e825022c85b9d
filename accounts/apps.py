from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import sessions, signin_limits
        from accounts.oidc import bearer

        sessions.connect()
        bearer.connect()
        signin_limits.connect()
