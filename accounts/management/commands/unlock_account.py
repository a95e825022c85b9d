from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts import services, signin_limits
from audit.commands import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Unlock an account (by email) or a client address (--address) locked after too many failed sign-ins; "
        "recorded as an account_unlocked security event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", nargs="?", help="the account's email (any letter case)")
        parser.add_argument("--address", help="a client address to unlock instead of, or with, an account")

    def handle(self, *args: Any, **options: Any) -> None:
        email, address = options["email"], options["address"]
        if not email and not address:
            raise CommandError("Name an account's email, an --address, or both.")
        locked = (email and signin_limits.account_lock_end(email)) or signin_limits.address_lock_end(address)
        removed = services.sign_in_locks_reset(
            actor=None, emails=[email] if email else [], ip_addresses=[address] if address else []
        )
        what = " and ".join(part for part in (email, address and f"address {address}") if part)
        state = "was locked" if locked else "was not locked"
        self.stdout.write(self.style.SUCCESS(f"Unlocked {what} ({state}; {removed} attempt records removed)."))
