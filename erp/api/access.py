"""Who is calling an org-scoped route, and whether they may enter the organization at all."""

from __future__ import annotations

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
