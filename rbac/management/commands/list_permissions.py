from typing import Any

from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rbac.management.lookups import organization_by_slug, role_by_code
from rbac.models import Role, RolePermission
from rbac.system_roles import PLATFORM_PERMISSIONS, catalog_apps


class Command(BaseCommand):
    help = (
        "List the permission catalog (optionally one app's part of it), or with --role the permissions a role "
        "grants and where each comes from (the role itself or the parent it is inherited from)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app", help="Only this app's permissions, e.g. organizations")
        parser.add_argument("--role", help="A role code: list what this role grants")
        parser.add_argument("--organization", help="With --role: slug of the organization whose role it is")

    def handle(self, *args: Any, **options: Any) -> None:
        app_label = options["app"]
        catalog = catalog_apps()
        if app_label is not None and app_label not in catalog:
            if app_label not in {config.label for config in apps.get_app_configs()}:
                raise CommandError(f"No installed app has the label {app_label!r}.")
            raise CommandError(f"{app_label} is not in the permission catalog ({', '.join(sorted(catalog))}).")
        if options["organization"] and not options["role"]:
            raise CommandError("--organization goes with --role: name the role to list.")
        if options["role"]:
            organization = organization_by_slug(options["organization"]) if options["organization"] else None
            self._role(role_by_code(options["role"], organization), app_label)
        else:
            self._catalog((app_label,) if app_label else catalog)

    def _catalog(self, app_labels: tuple[str, ...]) -> None:
        rows = [
            (f"{app_label}.{codename}", name)
            for app_label, codename, name in Permission.objects.filter(content_type__app_label__in=app_labels)
            .order_by("content_type__app_label", "codename")
            .values_list("content_type__app_label", "codename", "name")
        ]
        width = max((len(label) for label, _name in rows), default=0)
        for label, name in rows:
            note = " (platform: superusers only)" if label in PLATFORM_PERMISSIONS else ""
            self.stdout.write(f"{label:<{width}}  {name}{note}")
        self.stdout.write(self.style.SUCCESS(f"{len(rows)} permissions."))

    def _role(self, role: Role, app_label: str | None) -> None:
        # The chain from the role up through its parents, nearest first; a permission comes from the nearest holder.
        chain: list[Role] = []
        current: Role | None = role
        while current is not None and current not in chain:
            chain.append(current)
            current = current.parent
        links = RolePermission.objects.filter(role__in=chain)
        if app_label is not None:
            links = links.filter(permission__content_type__app_label=app_label)
        holders: dict[int, set[str]] = {}
        for role_id, label, codename in links.values_list(
            "role_id", "permission__content_type__app_label", "permission__codename"
        ):
            holders.setdefault(role_id, set()).add(f"{label}.{codename}")
        sources: dict[str, str] = {}
        for position, holder in enumerate(chain):
            for permission in holders.get(holder.pk, set()):
                if permission not in sources:
                    sources[permission] = "own" if position == 0 else f"inherited from {holder.code}"
        where = role.organization.slug if role.organization is not None else "system role"
        self.stdout.write(f"{role.code} ({role.name}, {where}): {len(sources)} permissions")
        width = max((len(permission) for permission in sources), default=0)
        for permission in sorted(sources):
            self.stdout.write(f"  {permission:<{width}}  {sources[permission]}")
