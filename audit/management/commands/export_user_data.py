import json
from typing import Any

from django.core.management.base import CommandParser

from audit.commands import AuditedCommand
from audit.context import acting_user
from audit.erasure import user_data_export
from audit.management.commands.erase_user import find_user


class Command(AuditedCommand):
    help = (
        "Print everything kept about a person as JSON (right of access): profile, memberships, role assignments, "
        "the changes they made and their security events. The export is recorded as a security event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="the person's email address or user id")
        parser.add_argument("--output", help="write the JSON to this file instead of the standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        user = find_user(options["user"])
        data = user_data_export(actor=acting_user(), user=user)
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as output:
                output.write(text + "\n")
            self.stderr.write(self.style.SUCCESS(f"Wrote the data of user {user.pk} to {options['output']}."))
        else:
            self.stdout.write(text)
