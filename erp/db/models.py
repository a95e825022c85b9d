"""Abstract bases that every business model of the ERP is built from.

- ``TimeStampedModel``: when a row was created and last changed.
- ``ActorStampedModel``: who created and last changed it (kept when that user goes away).
- ``SoftDeleteModel``: deleting hides a row instead of removing it; it can be restored.
- ``OrganizationOwnedModel``: the tenancy rule — every business row belongs to exactly one organization, and reads go
  through an explicit entry point that names the organization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.models import Actor, User
    from organizations.models import Organization

_M = TypeVar("_M", bound=models.Model)


class TimeStampedModel(models.Model):
    """A row knows when it was created and when it last changed."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ActorStampedModel(TimeStampedModel):
    """A row knows who created it and who changed it last; removing that user keeps the row."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        abstract = True

    def stamp(self, actor: Actor) -> None:
        """Record ``actor`` as the author of the change about to be saved (and as creator of a new row)."""
        if actor is None or isinstance(actor, AnonymousUser):
            return
        self._history_user = actor  # the version this save records names the same author as the row
        if self._state.adding and self.created_by_id is None:
            self.created_by = actor
        self.updated_by = actor


class SoftDeleteQuerySet(models.QuerySet[_M]):
    def alive(self) -> Self:
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> Self:
        return self.filter(deleted_at__isnull=False)


class SoftDeleteManager(models.Manager[_M]):
    """The default manager of soft-deletable models: deleted rows do not exist for ordinary code."""

    def get_queryset(self) -> SoftDeleteQuerySet[_M]:
        return SoftDeleteQuerySet(self.model, using=self._db).alive()


class AllRowsManager(models.Manager[_M]):
    """Sees deleted rows too: for restore, audits and the admin."""

    def get_queryset(self) -> SoftDeleteQuerySet[_M]:
        return SoftDeleteQuerySet(self.model, using=self._db)


class SoftDeleteModel(models.Model):
    """Deleting marks the row (when and by whom) and hides it; ``restore`` brings it back.

    ``objects`` hides deleted rows; ``all_objects`` sees every row (for restore, audits and the admin trash).
    """

    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    objects: ClassVar[SoftDeleteManager[Any]] = SoftDeleteManager()
    all_objects: ClassVar[AllRowsManager[Any]] = AllRowsManager()

    class Meta:
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def mark_deleted(self, *, actor: Actor) -> None:
        """Hide the row. Callers (services) check the business guards first."""
        from audit.history import mark_action

        self.deleted_at = timezone.now()
        self.deleted_by = None if actor is None or isinstance(actor, AnonymousUser) else actor
        mark_action(self, "soft_deleted")
        self.save(update_fields=["deleted_at", "deleted_by", *self._actor_update_fields(actor)])

    def mark_restored(self, *, actor: Actor) -> None:
        from audit.history import mark_action

        mark_action(self, "restored")
        self.deleted_at = None
        self.deleted_by = None
        self.save(update_fields=["deleted_at", "deleted_by", *self._actor_update_fields(actor)])

    def _actor_update_fields(self, actor: Actor) -> list[str]:
        fields = ["updated_at"] if isinstance(self, TimeStampedModel) else []
        if isinstance(self, ActorStampedModel) and actor is not None and not isinstance(actor, AnonymousUser):
            self.stamp(actor)
            fields.append("updated_by")
        return fields


class OrganizationQuerySet(models.QuerySet[_M]):
    """Reads of tenant rows name their organization: ``Model.objects.for_organization(org)``."""

    def for_organization(self, organization: Organization | int) -> Self:
        return self.filter(organization=organization)

    def visible_to(self, user: User | AnonymousUser, organization: Organization | int, action: str) -> Self:
        """Rows of ``organization`` on which ``user`` holds ``action`` (view, add, change, delete): one SQL query."""
        from rbac.engine import visible

        return visible(self, user, organization, action)


class SoftDeleteOrganizationQuerySet(OrganizationQuerySet[_M], SoftDeleteQuerySet[_M]):  # type: ignore[override]
    """The organization entry points and the soft-delete filters together."""


class OrganizationManager(models.Manager[_M]):
    def get_queryset(self) -> OrganizationQuerySet[_M]:
        return OrganizationQuerySet(self.model, using=self._db)

    def for_organization(self, organization: Organization | int) -> OrganizationQuerySet[_M]:
        return self.get_queryset().for_organization(organization)

    def visible_to(
        self, user: User | AnonymousUser, organization: Organization | int, action: str
    ) -> OrganizationQuerySet[_M]:
        return self.get_queryset().visible_to(user, organization, action)


class SoftDeleteOrganizationManager(OrganizationManager[_M]):
    """Live rows only (``include_deleted`` false) or every row, with the organization entry point."""

    include_deleted = False

    def get_queryset(self) -> SoftDeleteOrganizationQuerySet[_M]:
        queryset: SoftDeleteOrganizationQuerySet[_M] = SoftDeleteOrganizationQuerySet(self.model, using=self._db)
        return queryset if self.include_deleted else queryset.alive()

    def for_organization(self, organization: Organization | int) -> SoftDeleteOrganizationQuerySet[_M]:
        return self.get_queryset().for_organization(organization)

    def visible_to(
        self, user: User | AnonymousUser, organization: Organization | int, action: str
    ) -> SoftDeleteOrganizationQuerySet[_M]:
        return self.get_queryset().visible_to(user, organization, action)


class AllRowsOrganizationManager(SoftDeleteOrganizationManager[_M]):
    include_deleted = True


class OrganizationOwnedModel(ActorStampedModel):
    """Every business row belongs to exactly one organization, which can never be deleted from under it.

    Composite indexes and unique constraints of subclasses start with ``organization`` so that the schema can later be
    distributed by organization.
    """

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, related_name="+", db_index=True
    )

    objects: ClassVar[OrganizationManager[Any]] = OrganizationManager()

    class Meta:
        abstract = True


class SoftDeleteOrganizationOwnedModel(OrganizationOwnedModel, SoftDeleteModel):
    """An organization-owned row that is soft-deleted: ``objects`` hides deleted rows, ``all_objects`` sees them."""

    objects: ClassVar[SoftDeleteOrganizationManager[Any]] = SoftDeleteOrganizationManager()  # type: ignore[assignment]
    all_objects: ClassVar[AllRowsOrganizationManager[Any]] = AllRowsOrganizationManager()  # type: ignore[assignment]

    class Meta:
        abstract = True
