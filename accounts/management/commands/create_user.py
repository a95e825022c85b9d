import os
import sys
from getpass import getpass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts import services
from audit.commands import AuditedCommand
from erp.exceptions import describe_validation_error
from organizations import services as organization_services
from organizations.models import Organization
from rbac import services as rbac_services
from rbac.models import Role


class Command(AuditedCommand):
    help = (
        "Create a local account. The password comes from --password, the ERP_PASSWORD environment variable, "
        "or a prompt; --no-password creates an account that signs in through the identity provider only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--full-name", default="")
        parser.add_argument("--password", help="Prefer ERP_PASSWORD: arguments show up in process lists")
        parser.add_argument("--no-password", action="store_true")
        parser.add_argument("--superuser", action="store_true", help="Platform operator (implies --staff)")
        parser.add_argument("--staff", action="store_true", help="May sign in to the admin back office")
        parser.add_argument("--organization", help="Slug of an organization to add the user to")
        parser.add_argument(
            "--admin",
            action="store_true",
            help="With --organization: as its administrator (org_admin role), else member",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["admin"] and not options["organization"]:
            # An administrator is always the administrator of an organization; without one the flag would be dropped
            # silently and the account would be created with less than was asked for.
            raise CommandError(
                "--admin makes the user the administrator of an organization: give its slug with --organization."
            )
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization has the slug {options['organization']!r}.")
        password = None
        if not options["no_password"]:
            password = options["password"] or os.environ.get("ERP_PASSWORD")
            if not password:
                if not sys.stdin.isatty():
                    raise CommandError("Give a password with --password or ERP_PASSWORD, or use --no-password.")
                password = getpass("Password: ")
        try:
            with transaction.atomic():
                user = services.user_create(
                    email=options["email"],
                    password=password,
                    full_name=options["full_name"],
                    is_superuser=options["superuser"],
                    is_staff=options["staff"] or options["superuser"],
                )
                if organization is not None:
                    organization_services.membership_create(actor=None, organization=organization, user=user)
                    role = Role.objects.get(
                        organization__isnull=True, code="org_admin" if options["admin"] else "member"
                    )
                    rbac_services.role_assign(
                        actor=None, organization=organization, user=user, role=role, reason="create_user"
                    )
        except ValidationError as error:
            raise CommandError(describe_validation_error(error)) from error
        kind = "superuser" if user.is_superuser else "user"
        self.stdout.write(self.style.SUCCESS(f"Created {kind} {user.email} (id {user.pk})."))
