from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "erp.health"
    label = "health"
    verbose_name = "Health checks"
