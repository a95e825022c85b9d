"""The system roles every organization can assign, and how they are kept in step with the permission catalog.

Apps contribute roles through a ``roles`` module with a ``SYSTEM_ROLES`` list; ``sync_system_roles`` (the data
migration, the ``post_migrate`` hook and ``manage.py sync_system_roles``) creates or updates them. A role's
permissions are given as patterns: ``"organizations.view_department"``, ``"*.view_*"`` (every view permission of the
project's apps) or ``"organizations.*"``; a pattern starting with ``!`` takes matches away again
(``"!*.view_history"``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import import_module
from typing import Any

# Platform-level permissions (creating or deleting organizations) are never part of a system role: they belong to
# superusers. The catalog is made of the permissions of apps whose AppConfig sets ``permission_catalog = True``.
PLATFORM_PERMISSIONS = frozenset(
    {
        "organizations.add_organization",
        "organizations.delete_organization",
    }
)


@dataclass(frozen=True)
class SystemRole:
    code: str
    name: str
    description: str
    permissions: tuple[str, ...]
    parent: str | None = None


SYSTEM_ROLES = [
    SystemRole(
        code="viewer",
        name="Viewer",
        description="Reads everything in the organization, changes nothing.",
        permissions=("*.view_*", "!*.view_history"),  # reading history is the auditor's
    ),
    SystemRole(
        code="member",
        name="Member",
        description="An ordinary member: reads the organization's data and works on tasks.",
        permissions=(
            "tasks.add_task",
            "tasks.change_task",
            "tasks.add_comment",
            "tasks.add_timeentry",
            "tasks.add_taskdependency",
            "tasks.delete_taskdependency",
        ),
        parent="viewer",
    ),
    SystemRole(
        code="auditor",
        name="Auditor",
        description="Reads everything in the organization, including its history.",
        permissions=("*.view_history",),
        parent="viewer",
    ),
    SystemRole(
        code="manager",
        name="Manager",
        description=(
            "Runs departments and their projects: edits departments, memberships, projects and tasks within the "
            "assignment's scope."
        ),
        permissions=(
            "tasks.*",
            "organizations.add_department",
            "organizations.change_department",
            "organizations.change_membership",
            "organizations.manage_members",
        ),
        parent="member",
    ),
    SystemRole(
        code="org_admin",
        name="Organization administrator",
        description="Everything in the organization, including members, roles and assignments.",
        permissions=("*.*",),
        parent="manager",
    ),
]


def all_system_roles() -> list[SystemRole]:
    """The core roles plus those of every installed app that ships a ``roles`` module."""
    from django.apps import apps

    roles = list(SYSTEM_ROLES)
    for config in apps.get_app_configs():
        if config.name == "rbac":
            continue
        try:
            module = import_module(f"{config.name}.roles")
        except ModuleNotFoundError:
            continue
        roles.extend(getattr(module, "SYSTEM_ROLES", []))
    return roles


def catalog_apps() -> tuple[str, ...]:
    """The apps whose permissions organizations can hand out (``permission_catalog = True`` on their AppConfig)."""
    from django.apps import apps

    return tuple(config.label for config in apps.get_app_configs() if getattr(config, "permission_catalog", False))


def matching_permissions(patterns: tuple[str, ...], catalog: dict[str, Any]) -> list[Any]:
    selected = []
    for name, permission in catalog.items():
        if name in PLATFORM_PERMISSIONS:
            continue
        wanted = [pattern for pattern in patterns if not pattern.startswith("!")]
        unwanted = [pattern[1:] for pattern in patterns if pattern.startswith("!")]
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted) and not any(
            fnmatch.fnmatchcase(name, pattern) for pattern in unwanted
        ):
            selected.append(permission)
    return selected


def sync_system_roles(role_model: Any, permission_model: Any, role_permission_model: Any) -> dict[str, int]:
    """Create or update every system role and set its permissions exactly; returns counts of what changed.

    Takes the model classes so that the data migration can run it with the historical models.
    """
    apps_in_catalog = catalog_apps()
    catalog = {
        f"{app_label}.{codename}": permission
        for permission, app_label, codename in (
            (permission, permission.content_type.app_label, permission.codename)
            for permission in permission_model.objects.select_related("content_type").filter(
                content_type__app_label__in=apps_in_catalog
            )
        )
    }
    counts = {"created": 0, "updated": 0, "permissions_added": 0, "permissions_removed": 0}
    roles: dict[str, Any] = {}
    for definition in all_system_roles():
        role, created = role_model.objects.get_or_create(
            organization=None,
            code=definition.code,
            defaults={"name": definition.name, "description": definition.description, "is_system": True},
        )
        parent = roles.get(definition.parent) if definition.parent else None
        if created:
            counts["created"] += 1
        changed = (role.name, role.description, role.is_system, role.parent_id) != (
            definition.name,
            definition.description,
            True,
            parent.pk if parent else None,
        )
        if changed and not created:
            counts["updated"] += 1
        if changed or created:
            role.name, role.description, role.is_system, role.parent = (
                definition.name,
                definition.description,
                True,
                parent,
            )
            role.save()
        wanted = {permission.pk for permission in matching_permissions(definition.permissions, catalog)}
        current = set(role_permission_model.objects.filter(role=role).values_list("permission_id", flat=True))
        for permission_id in wanted - current:
            role_permission_model.objects.create(role=role, permission_id=permission_id)
        removed = role_permission_model.objects.filter(role=role, permission_id__in=current - wanted)
        counts["permissions_added"] += len(wanted - current)
        counts["permissions_removed"] += len(current - wanted)
        for link in removed:
            link.delete()
        roles[definition.code] = role
    return counts
