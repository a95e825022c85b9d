from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from accounts.models import User
from audit.commands import AuditedCommand
from audit.context import acting_user
from audit.erasure import user_erase
from erp.exceptions import ConflictError, describe_validation_error


def find_user(identifier: str) -> User:
    """A user by email (any letter case) or by id — an erased account is only found by its id."""
    if identifier.isdigit():
        user = User.objects.filter(pk=int(identifier)).first()
    else:
        user = User.objects.filter(email__iexact=identifier.strip()).first()
    if user is None:
        raise CommandError(
            f"No user has the email or id {identifier!r}. An erased account no longer has its address: "
            "give its id instead."
        )
    return user


class Command(AuditedCommand):
    help = (
        "Erase a person (GDPR): anonymise their account and every version of it, blank the personal details of "
        "their security events, end their sessions and deactivate the account. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="the person's email address or user id")

    def handle(self, *args: Any, **options: Any) -> None:
        user = find_user(options["user"])
        try:
            result = user_erase(actor=acting_user(), user=user)
        except ValidationError as error:
            raise CommandError(describe_validation_error(error)) from error
        except ConflictError as error:
            raise CommandError(error.message) from error
        if not result.is_changed:
            self.stdout.write(f"User {user.pk} has already been erased: nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased user {user.pk}: {result.versions} versions, {result.event_details} event details and "
                f"{result.admin_log_entries} admin log entries anonymised; the account is now {result.user.email}."
            )
        )
