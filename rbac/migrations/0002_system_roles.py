"""Ship the system roles (viewer, member, auditor, manager, org_admin) with their permissions."""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_system_roles(apps: Any, schema_editor: Any) -> None:
    from rbac.system_roles import sync_system_roles

    # Permissions are normally created after all migrations have run; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_system_roles(apps.get_model("rbac", "Role"), apps.get_model("auth", "Permission"), apps.get_model("rbac", "RolePermission"))


def remove_system_roles(apps: Any, schema_editor: Any) -> None:
    role_model = apps.get_model("rbac", "Role")
    role_model.objects.filter(is_system=True).update(parent=None)
    role_model.objects.filter(is_system=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rbac", "0001_initial"),
        ("organizations", "0002_grants_and_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_system_roles, remove_system_roles)]
