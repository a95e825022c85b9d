from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from audit.commands import AuditedCommand
from erp.exceptions import describe_validation_error
from organizations import services
from organizations.models import Organization


class Command(AuditedCommand):
    help = "Create an organization (a tenant, or with --parent a subsidiary)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", required=True, help="URL key, e.g. acme")
        parser.add_argument("--code", required=True, help="Unique code, e.g. ACME")
        parser.add_argument("--name", required=True)
        parser.add_argument("--parent", help="Slug of the parent organization")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--currency", default="EUR", help="ISO 4217 code")
        parser.add_argument("--fiscal-year-start-month", type=int, default=1)
        parser.add_argument("--max-department-depth", type=int, default=10)
        parser.add_argument("--history-retention-days", type=int, help="Omit to keep history forever")

    def handle(self, *args: Any, **options: Any) -> None:
        parent = None
        if options["parent"]:
            parent = Organization.objects.filter(slug=options["parent"]).first()
            if parent is None:
                raise CommandError(f"No organization has the slug {options['parent']!r}.")
        try:
            organization = services.organization_create(
                actor=None,
                slug=options["slug"],
                code=options["code"],
                name=options["name"],
                parent=parent,
                time_zone=options["time_zone"],
                currency_code=options["currency"],
                fiscal_year_start_month=options["fiscal_year_start_month"],
                max_department_depth=options["max_department_depth"],
                history_retention_days=options["history_retention_days"],
            )
        except ValidationError as error:
            raise CommandError(describe_validation_error(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Created organization {organization.slug} (id {organization.pk})."))
