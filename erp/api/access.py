"""Who is calling an org-scoped route, and whether they may enter the organization at all."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from accounts.models import User
from organizations.models import Organization
from organizations.selectors import organization_with_access


def request_user(request: Request) -> User:
    """The signed-in user of an authenticated API request."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def enter_organization(user: User, slug: str) -> Organization:
    """The organization at ``slug`` if the user is an active member (or a superuser); 404 for everyone else."""
    organization = organization_with_access(user=user, slug=slug)
    if organization is None:
        raise exceptions.NotFound()
    return organization


def refused_organization(slug: str) -> Organization | None:
    """The live organization at ``slug`` that a caller was just refused (404): the organization a denial concerns.

    ``None`` for a slug that names no live organization: a request for something that does not exist is no denial.
    Only read on the refusal path, so that entering an organization stays one query.
    """
    return Organization.objects.filter(slug=slug).first()


def names_hidden_row(model: type[Model], organization: Organization, user: User, lookup: dict[str, Any]) -> bool:
    """Whether ``lookup`` names a live row that the organization's paths hold but ``user`` may not see (a 404 that is
    a denial), rather than no row of this organization at all (a 404 that is not: unknown, deleted, or another
    organization's). Only read on the refusal path."""
    rows: QuerySet[Any] = model._default_manager.all()
    available_in = getattr(rows, "available_in", None)  # rows shared with every organization too (system roles)
    if available_in is not None:
        here = available_in(organization)
    elif any(field.name == "organization" for field in model._meta.get_fields()):
        here = rows.filter(organization=organization)
    else:
        return False  # not a row of an organization: nothing here to be refused
    try:
        if not here.filter(**lookup).exists():
            return False
        return not model._default_manager.visible_to(user, organization, "view").filter(**lookup).exists()  # type: ignore[attr-defined]
    except (TypeError, ValueError, ValidationError):  # not even a valid key of this model
        return False
