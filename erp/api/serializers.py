"""Serializer plumbing shared by the org-scoped resources."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from accounts.models import User
from organizations.models import Organization


class OrganizationContextMixin:
    """Gives serializers the organization from the URL and the acting user."""

    context: dict[str, Any]

    @property
    def organization(self) -> Organization:
        return self.context["organization"]

    @property
    def actor(self) -> User:
        return self.context["request"].user


class OrganizationScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An id that must name a row of the URL's organization that the caller may see.

    Another organization's id, or one the caller may not see, reads as not found.
    """

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        assert queryset is not None, "declare the field's queryset"
        organization = self.context.get("organization")
        request = self.context.get("request")
        if organization is None or request is None:
            return queryset.none()
        return queryset.visible_to(request.user, organization, "view")  # type: ignore[attr-defined]


class OrganizationMemberField(serializers.PrimaryKeyRelatedField):
    """A user id that must name an active member of the URL's organization."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.all())
        kwargs.setdefault("error_messages", {"does_not_exist": "User {pk_value} is not an active member here."})
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        organization = self.context.get("organization")
        if organization is None:
            return User.objects.none()
        return User.objects.filter(memberships__organization=organization, memberships__is_active=True, is_active=True)
