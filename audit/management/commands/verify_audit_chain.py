from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.events import verify_chains
from audit.models import SecurityEvent, SecurityEventChain
from organizations.models import Organization


class Command(BaseCommand):
    help = (
        "Check the security event chains: every event must match its hash and follow the previous one, and each "
        "chain's head must match its last event. Reports each break and fails when there is any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", metavar="SLUG", help="check only this organization's chain")

    def handle(self, *args: Any, **options: Any) -> None:
        chain = None
        heads = SecurityEventChain.objects.all()
        events = SecurityEvent.objects.all()
        if options["organization"]:
            organization = Organization.all_objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization has the slug {options['organization']!r}.")
            chain = organization.pk
            heads, events = heads.filter(chain=chain), events.filter(chain=chain)
        breaks = 0
        for found in verify_chains(chain):
            breaks += 1
            self.stdout.write(
                self.style.ERROR(f"chain {found.chain}, sequence {found.sequence}: {found.problem}")
                + (f" (event {found.event_id})" if found.event_id is not None else "")
            )
        if breaks:
            raise CommandError(f"The audit chain is broken: {breaks} {'problem' if breaks == 1 else 'problems'} found.")
        self.stdout.write(self.style.SUCCESS(f"{heads.count()} chains, {events.count()} events verified."))
