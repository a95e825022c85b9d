"""Who may do what inside an organization — the single hook that the role engine replaces.

Until roles and assignments exist: active members may read, and only the organization's administrators (memberships
flagged ``is_admin``) and superusers may write.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.request import Request

from accounts.models import User
from organizations.models import Organization


def request_user(request: Request) -> User:
    """The signed-in user of an authenticated API request."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def may_read(user: User, organization: Organization) -> bool:
    return bool(user.is_superuser or getattr(organization, "is_member", False))


def may_write(user: User, organization: Organization) -> bool:
    return bool(user.is_superuser or getattr(organization, "is_admin", False))
