from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    permission_catalog = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit import history, signals

        history.connect()
        signals.connect()
