from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.commands import AuditedCommand
from erp.exceptions import ConflictError
from rbac import services
from rbac.management.lookups import (
    department_by_code,
    organization_by_slug,
    role_by_code,
    scope_text,
    user_by_email,
)
from rbac.models import RoleAssignment


class Command(AuditedCommand):
    help = (
        "Take a role away from a person in an organization (the organization-wide one, or with --department that one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="Slug of the organization")
        parser.add_argument("--user", required=True, help="Email address of the person")
        parser.add_argument("--role", required=True, help="Role code: the organization's own role or a system role")
        parser.add_argument("--department", help="Department code of a department-scoped assignment")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_by_slug(options["organization"])
        user = user_by_email(options["user"])
        role = role_by_code(options["role"], organization)
        department = department_by_code(options["department"], organization) if options["department"] else None
        assignment = (
            RoleAssignment.objects.for_organization(organization)
            .filter(user=user, role=role, department=department)
            .first()
        )
        if assignment is None:
            raise CommandError(
                f"{user.email} does not hold {role.code} in {organization.slug} ({scope_text(department)})."
            )
        try:
            services.role_revoke(actor=None, assignment=assignment)
        except ConflictError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Revoked {role.code} from {user.email} in {organization.slug} ({scope_text(department)})."
            )
        )
