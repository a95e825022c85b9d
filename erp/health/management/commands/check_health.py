from typing import Any

from django.core.management.base import BaseCommand, CommandError

from erp.health.checks import run_checks


class Command(BaseCommand):
    help = "Run the readiness checks (database, cache, disk, migrations); exit non-zero when any fails."

    def handle(self, *args: Any, **options: Any) -> None:
        results = run_checks()
        for result in results:
            label = self.style.SUCCESS("ok  ") if result.is_healthy else self.style.ERROR("FAIL")
            self.stdout.write(f"{label} {result.name:<11} {result.latency_ms:>8.2f} ms  {result.detail}")
        failed = [result.name for result in results if not result.is_healthy]
        if failed:
            raise CommandError(f"unhealthy: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("healthy"))
