from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import sessions
        from accounts.oidc import bearer

        sessions.connect()
        bearer.connect()
