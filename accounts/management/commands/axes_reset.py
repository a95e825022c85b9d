from typing import Any

from accounts import services
from audit.commands import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Reset all sign-in attempts and lockouts (django-axes' command, which here also records an account_unlocked "
        "security event)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        removed = services.sign_in_locks_reset_all(actor=None)
        if removed:
            self.stdout.write(f"{removed} attempts removed.")
        else:
            self.stdout.write("No attempts found.")
