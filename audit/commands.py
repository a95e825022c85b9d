"""Management commands that change data say who runs them: ``--actor`` (an email), else the system itself."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.context import Source, audit_context


class AuditedCommand(BaseCommand):
    """A command whose changes are attributed to ``--actor`` (default: the system itself), with ``--reason``."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--actor", help="email of the person the changes are attributed to (default: the system)")
        if "--reason" not in parser._option_string_actions:  # a command may already take a reason of its own
            parser.add_argument("--reason", default="", help="why the changes are made (kept in the history)")
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        from accounts.models import User

        actor = None
        email = options.get("actor")
        if email:
            actor = User.objects.filter(email__iexact=email).first()
            if actor is None:
                raise CommandError(f"No user with the email {email}.")
        with audit_context(source=Source.COMMAND, actor=actor, reason=options.get("reason") or ""):
            return super().execute(*args, **options)
