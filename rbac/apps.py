from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _sync_system_roles(sender: Any, **kwargs: Any) -> None:
    from django.contrib.auth.models import Permission

    from rbac import engine
    from rbac.models import Role, RolePermission
    from rbac.system_roles import sync_system_roles

    sync_system_roles(Role, Permission, RolePermission)
    engine.bump_system()


class RbacConfig(AppConfig):
    name = "rbac"
    verbose_name = "Roles and permissions"
    permission_catalog = True

    def ready(self) -> None:
        from rbac import signals

        signals.connect()
        # After the last app's post_migrate every app's permissions exist: keep the system roles in step with them.
        post_migrate.connect(
            _sync_system_roles, sender=list(apps.get_app_configs())[-1], dispatch_uid="rbac-sync-roles"
        )
