from typing import Any

from django.contrib.auth.models import Permission
from django.db import transaction

from audit.commands import AuditedCommand
from rbac import engine
from rbac.models import Role, RolePermission
from rbac.system_roles import all_system_roles, sync_system_roles


class Command(AuditedCommand):
    help = (
        "Create or update the system roles (the core ones and those of every app's roles module) and set their "
        "permissions from the current permission catalog."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            counts = sync_system_roles(Role, Permission, RolePermission)
        # Every organization can assign system roles: everyone's cached permissions are recomputed.
        engine.bump_system()
        self.stdout.write(
            self.style.SUCCESS(
                f"System roles in step: {len(all_system_roles())} roles, {counts['created']} created, "
                f"{counts['updated']} updated; {counts['permissions_added']} permissions added, "
                f"{counts['permissions_removed']} removed."
            )
        )
