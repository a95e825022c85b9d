from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from audit.commands import AuditedCommand
from erp.exceptions import ConflictError, describe_validation_error
from rbac import services
from rbac.management.lookups import (
    department_by_code,
    moment,
    organization_by_slug,
    role_by_code,
    scope_text,
    user_by_email,
)


class Command(AuditedCommand):
    help = (
        "Give a member of an organization a role (the organization's own or a system role), for the whole "
        "organization or, with --department, for a department and its sub-departments."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", required=True, help="Slug of the organization")
        parser.add_argument("--user", required=True, help="Email address of an active member")
        parser.add_argument("--role", required=True, help="Role code: the organization's own role or a system role")
        parser.add_argument("--department", help="Department code: limit the role to this department's subtree")
        parser.add_argument("--valid-from", help="ISO 8601 date or date-time (organization time zone if no offset)")
        parser.add_argument("--valid-until", help="ISO 8601 date or date-time (organization time zone if no offset)")
        parser.add_argument("--reason", default="", help="Why the role is given (kept with the assignment)")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_by_slug(options["organization"])
        user = user_by_email(options["user"])
        role = role_by_code(options["role"], organization)
        department = department_by_code(options["department"], organization) if options["department"] else None
        valid_from = moment(options["valid_from"], "--valid-from", organization)
        valid_until = moment(options["valid_until"], "--valid-until", organization)
        try:
            assignment = services.role_assign(
                actor=None,
                organization=organization,
                user=user,
                role=role,
                department=department,
                valid_from=valid_from,
                valid_until=valid_until,
                reason=options["reason"],
            )
        except ValidationError as error:
            raise CommandError(describe_validation_error(error)) from error
        except ConflictError as error:
            raise CommandError(error.message) from error
        period = ""
        if valid_from or valid_until:
            start = valid_from.isoformat() if valid_from else "now"
            end = valid_until.isoformat() if valid_until else "no end"
            period = f", valid from {start} until {end}"
        self.stdout.write(
            self.style.SUCCESS(
                f"Assigned {role.code} to {user.email} in {organization.slug} ({scope_text(department)}{period}); "
                f"assignment id {assignment.pk}."
            )
        )
