from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.commands import AuditedCommand
from audit.context import acting_user
from audit.retention import DEFAULT_BATCH_SIZE, history_purge, organizations_with_retention
from organizations.models import Organization


class Command(AuditedCommand):
    help = (
        "Delete history versions and security events older than each organization's retention period "
        "(history_retention_days). Organizations without one keep everything: there is no default window."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", metavar="SLUG", help="purge only this organization")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows deleted per statement")
        parser.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        slug = options["organization"]
        if slug is not None:
            organization = Organization.all_objects.filter(slug=slug).first()
            if organization is None:
                raise CommandError(f"No organization has the slug {slug!r}.")
            if organization.history_retention_days is None:
                raise CommandError(f"{slug} has no retention period (history_retention_days): it keeps everything.")
        verb = "would delete" if options["dry_run"] else "deleted"
        organizations = list(organizations_with_retention(slug))
        if not organizations:
            self.stdout.write("No organization has a retention period: nothing to purge.")
        for organization in organizations:
            report = history_purge(
                actor=acting_user(),
                organization=organization,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
            self.stdout.write(
                f"{organization.slug}: older than {report.cutoff:%Y-%m-%d %H:%M:%S %Z} "
                f"({organization.history_retention_days} days), {verb} {report.total} rows"
            )
            for label, count in sorted(report.counts.items()):
                self.stdout.write(f"  {label}: {count}")
        if options["dry_run"]:
            self.stdout.write(self.style.WARNING("Dry run: nothing was deleted."))
