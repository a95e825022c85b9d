from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from audit.commands import AuditedCommand
from organizations.demo import seed_demo


class Command(AuditedCommand):
    help = "Load the demo organizations, departments and people (idempotent) and print the demo logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Allow seeding when ERP_ENV is prod")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ERP_ENV == "prod" and not options["force"]:
            raise CommandError("Refusing to load demo data with ERP_ENV=prod (use --force if you really mean it).")
        report = seed_demo()
        created = ", ".join(f"{count} {kind}" for kind, count in report.created.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data ready (created now: {created})."))
        self.stdout.write("Demo logins:")
        for email, password, role in report.logins:
            self.stdout.write(f"  {email:<24} {password:<22} {role}")
