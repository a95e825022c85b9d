"""Finding what the role commands name on their command line; a missing name is a ``CommandError`` saying so."""

from __future__ import annotations

import datetime
import zoneinfo

from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.models import User
from organizations.models import Department, Organization
from rbac.models import Role


def organization_by_slug(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"No organization has the slug {slug!r}.")
    return organization


def user_by_email(email: str) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        raise CommandError(f"No user has the email address {email!r}.")
    return user


def role_by_code(code: str, organization: Organization | None) -> Role:
    """The organization's own role with this code or else the system role (codes are stored in lower case)."""
    roles = (
        Role.objects.filter(organization__isnull=True)
        if organization is None
        else Role.objects.available_in(organization)
    )
    role = roles.filter(code=code.lower()).order_by(F("organization_id").asc(nulls_last=True)).first()
    if role is None:
        if organization is None:
            raise CommandError(f"No system role has the code {code!r}.")
        raise CommandError(f"Neither {organization.slug} nor the system roles have a role with the code {code!r}.")
    return role


def department_by_code(code: str, organization: Organization) -> Department:
    department = Department.objects.for_organization(organization).filter(code=code.upper()).first()
    if department is None:
        raise CommandError(f"{organization.slug} has no department with the code {code!r}.")
    return department


def moment(value: str | None, option: str, organization: Organization) -> datetime.datetime | None:
    """An ISO 8601 date or date-time; without an offset it is read in the organization's time zone."""
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime.datetime.combine(day, datetime.time()) if day is not None else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(f"{option}: {value!r} is not an ISO 8601 date or date-time (e.g. 2025-01-31T09:00+01:00).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, zoneinfo.ZoneInfo(organization.time_zone))
    return parsed


def scope_text(department: Department | None) -> str:
    return "organization-wide" if department is None else f"for department {department.code} and its sub-departments"
