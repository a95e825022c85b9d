"""Organizations (tenants and their subsidiaries), their department trees and their members."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from accounts.models import validate_time_zone
from audit.history import AuditHistory
from erp.db.fields import PathField
from erp.db.models import (
    ActorStampedModel,
    OrganizationManager,
    OrganizationOwnedModel,
    OrganizationQuerySet,
    SoftDeleteModel,
    SoftDeleteOrganizationManager,
    SoftDeleteOrganizationOwnedModel,
    SoftDeleteOrganizationQuerySet,
)

MAX_DEPARTMENT_DEPTH_LIMIT = 20
PATH_SEPARATOR = "/"

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "Use letters, digits, '.', '_' and '-', starting with a letter or digit.",
    code="invalid_code",
)
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as EUR.", code="invalid")


class Organization(ActorStampedModel, SoftDeleteModel):
    """A tenant. Every business row belongs to exactly one organization.

    An organization may be a subsidiary of another (``parent``); the parent chain never loops. Its settings (time zone,
    currency, fiscal year, department depth, history retention) apply to everything inside it. History is kept forever
    unless ``history_retention_days`` says otherwise.
    """

    slug = models.SlugField(
        max_length=63,
        unique=True,
        help_text="The organization's key in URLs.",
        error_messages={"unique": "An organization with this slug already exists."},
    )
    code = models.CharField(
        max_length=32,
        unique=True,
        validators=[code_validator],
        error_messages={"unique": "An organization with this code already exists."},
    )
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subsidiaries",
        help_text="Parent company.",
    )
    is_active = models.BooleanField(default=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency_code = models.CharField(max_length=3, default="EUR", validators=[currency_validator])
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    max_department_depth = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_DEPARTMENT_DEPTH_LIMIT)]
    )
    history_retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty keeps history forever."
    )

    history = AuditHistory()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
                name="organization_fiscal_month_range",
            ),
            models.CheckConstraint(
                condition=Q(max_department_depth__gte=1, max_department_depth__lte=MAX_DEPARTMENT_DEPTH_LIMIT),
                name="organization_department_depth_range",
            ),
            models.CheckConstraint(
                condition=Q(history_retention_days__isnull=True) | Q(history_retention_days__gte=1),
                name="organization_retention_positive",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="organization_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.code:
            self.code = self.code.upper()
        errors: dict[str, ValidationError] = {}
        if self.pk is not None and isinstance(self.max_department_depth, int) and self.max_department_depth >= 1:
            # Lowering the limit below the existing tree would leave departments that break the rule.
            deepest = Department.objects.for_organization(self.pk).aggregate(deepest=models.Max("depth"))["deepest"]
            if deepest is not None and deepest > self.max_department_depth:
                errors["max_department_depth"] = ValidationError(
                    f"The departments of this organization already go {deepest} levels deep.", code="too_shallow"
                )
        parent_error = self._parent_error()
        if parent_error is not None:
            errors["parent"] = parent_error
        if errors:
            raise ValidationError(errors)

    def _parent_error(self) -> ValidationError | None:
        if self.parent_id is None:
            return None
        if self.pk is not None and self.parent_id == self.pk:
            return ValidationError("An organization cannot be its own parent.", code="cycle")
        # Walk up from the new parent; meeting this organization means the change would close a loop.
        seen: set[int] = set()
        ancestor: Organization | None = self.parent
        while ancestor is not None and ancestor.pk not in seen:
            if ancestor.is_deleted:
                return ValidationError("The parent organization has been deleted.", code="deleted")
            if self.pk is not None and ancestor.pk == self.pk:
                return ValidationError(
                    "This parent is a subsidiary of this organization: that would make a cycle.", code="cycle"
                )
            seen.add(ancestor.pk)
            ancestor = ancestor.parent
        return None

    def validate_unique(self, exclude: Collection[str] | None = None) -> None:
        """Slug and code stay taken by deleted organizations (they may be restored), not only by live ones.

        The default check reads through ``objects``, which hides deleted rows, so a reused value would otherwise reach
        the database's unique index as an ``IntegrityError``.
        """
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().validate_unique(exclude=exclude)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        values = {
            field: getattr(self, field)
            for field in ("slug", "code")
            if getattr(self, field) and field not in errors and not (exclude and field in exclude)
        }
        if values:
            clashes = Organization.all_objects.filter(Q(_connector=Q.OR, **values), deleted_at__isnull=False).exclude(
                pk=self.pk
            )
            for clash in clashes.values("slug", "code"):
                for field, value in values.items():
                    if clash[field] == value:
                        errors[field] = [self.unique_error_message(Organization, (field,))]
        if errors:
            raise ValidationError(errors)


class DepartmentQuerySet(SoftDeleteOrganizationQuerySet["Department"]):  # type: ignore[override]
    def subtree(self, department: Department, *, include_self: bool = True) -> DepartmentQuerySet:
        """The department and everything below it: one indexed prefix match on the materialized path."""
        queryset = self.filter(organization_id=department.organization_id, path__startswith=department.path)
        return queryset if include_self else queryset.exclude(pk=department.pk)

    def ancestors(self, department: Department, *, include_self: bool = False) -> DepartmentQuerySet:
        """Every department above this one, root first: one query on the paths that prefix this one."""
        segments = department.path.split(PATH_SEPARATOR)[:-1]
        prefixes = [PATH_SEPARATOR.join(segments[: i + 1]) + PATH_SEPARATOR for i in range(len(segments))]
        if not include_self:
            prefixes = prefixes[:-1]
        return self.filter(organization_id=department.organization_id, path__in=prefixes).order_by("depth")


class DepartmentManager(SoftDeleteOrganizationManager["Department"]):
    """``Department.objects`` (live departments) and ``Department.all_objects`` (deleted ones too)."""

    def get_queryset(self) -> DepartmentQuerySet:
        queryset = DepartmentQuerySet(self.model, using=self._db)
        return queryset if self.include_deleted else queryset.alive()

    def for_organization(self, organization: Organization | int) -> DepartmentQuerySet:
        return self.get_queryset().for_organization(organization)

    def visible_to(self, user: Any, organization: Organization | int, action: str) -> DepartmentQuerySet:
        return self.get_queryset().visible_to(user, organization, action)

    def subtree(self, department: Department, *, include_self: bool = True) -> DepartmentQuerySet:
        return self.get_queryset().subtree(department, include_self=include_self)

    def ancestors(self, department: Department, *, include_self: bool = False) -> DepartmentQuerySet:
        return self.get_queryset().ancestors(department, include_self=include_self)


class AllDepartmentsManager(DepartmentManager):
    include_deleted = True


class Department(SoftDeleteOrganizationOwnedModel):
    """A unit of an organization's department tree.

    The code is unique among the organization's live departments. The parent is a department of the same
    organization, never the department itself nor one below it, and the tree is at most the organization's
    ``max_department_depth`` levels deep. ``path`` (the codes from the root, ``HQ/SALES/``) and ``depth`` are kept by
    the services so that a subtree or the ancestors are one indexed query. A manager must be an active member.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="departments")
    code = models.CharField(max_length=32, validators=[code_validator])
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = PathField(max_length=1024, editable=False)
    depth = models.PositiveSmallIntegerField(editable=False)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_departments"
    )
    headcount_limit = models.PositiveIntegerField(null=True, blank=True)
    display_order = models.IntegerField(default=0)

    department_scope_lookup = "path"

    objects: ClassVar[DepartmentManager] = DepartmentManager()
    all_objects: ClassVar[AllDepartmentsManager] = AllDepartmentsManager()  # type: ignore[assignment]
    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "path"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(deleted_at__isnull=True),
                name="department_code_unique_per_organization",
                violation_error_message="Another department of this organization already has this code.",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="department_not_own_parent"),
            models.CheckConstraint(condition=Q(depth__gte=1), name="department_depth_positive"),
        ]
        indexes = [
            # LIKE 'prefix%' uses this index on PostgreSQL thanks to the pattern operator class.
            # Serves subtree prefix matches and pages ordered by path alike (the path compares byte by byte).
            models.Index(fields=["organization", "path", "id"], name="department_org_path_idx"),
            models.Index(fields=["organization", "parent"], name="department_org_parent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def own_path(self) -> str:
        """The path this department should have under its current parent and code."""
        prefix = self.parent.path if self.parent is not None else ""
        return f"{prefix}{self.code}{PATH_SEPARATOR}"

    def subtree_height(self) -> int:
        """Levels below this department (0 for a leaf or a new department)."""
        if self.pk is None or not self.path:
            return 0
        deepest = Department.objects.subtree(self).aggregate(deepest=models.Max("depth"))["deepest"] or self.depth or 1
        return deepest - (self.depth or 1)

    def clean(self) -> None:
        super().clean()
        if self.code:
            self.code = self.code.upper()
        if self.organization_id is None:
            return
        errors: dict[str, str] = {}
        depth = 1
        parent = self.parent
        if parent is not None:
            if parent.organization_id != self.organization_id:
                errors["parent"] = "The parent department belongs to another organization."
            elif parent.is_deleted:
                errors["parent"] = "The parent department has been deleted."
            elif self.pk is not None and (parent.pk == self.pk or (self.path and parent.path.startswith(self.path))):
                errors["parent"] = "A department cannot be placed under itself or one of its sub-departments."
            depth = parent.depth + 1
        if (
            self.code
            and Department.objects.for_organization(self.organization_id)
            .filter(code=self.code)
            .exclude(pk=self.pk)
            .exists()
        ):
            errors["code"] = "Another department of this organization already has this code."
        if "parent" not in errors:
            limit = self.organization.max_department_depth
            if depth + self.subtree_height() > limit:
                errors["parent"] = f"The department tree of this organization is limited to {limit} levels."
        if (
            self.manager_id is not None
            and not Membership.objects.filter(
                organization_id=self.organization_id, user_id=self.manager_id, is_active=True
            ).exists()
        ):
            errors["manager"] = "The manager must be an active member of the organization."
        if errors:
            raise ValidationError(errors)


class AccessSource(models.TextChoices):
    """Where a membership or a role assignment comes from.

    Provider-sourced rows follow the identity provider's claims: they are re-synced at each sign-in and removed when the
    claims no longer imply them. Manual rows are never touched by that synchronisation.
    """

    MANUAL = "manual", "Manual"
    PROVIDER = "provider", "Identity provider"


class Membership(OrganizationOwnedModel):
    """A person's place in an organization: at most one membership per user and organization.

    The department belongs to the same organization; an employee number is unique within the organization when set.
    Only active memberships let a user into the organization; what they may do there comes from role assignments.
    ``source`` says whether it was given by hand or follows the identity provider's claims.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="memberships"
    )
    job_title = models.CharField(max_length=150, blank=True)
    employee_number = models.CharField(max_length=32, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    joined_on = models.DateField(default=timezone.localdate)
    left_on = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=AccessSource.choices, default=AccessSource.MANUAL, editable=False)

    department_scope_lookup = "department__path"

    history = AuditHistory()

    class Meta:
        ordering = ["organization_id", "pk"]
        permissions = [("manage_members", "Add members to the organization and change their memberships")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user_per_organization"),
            models.UniqueConstraint(
                fields=["organization", "employee_number"],
                condition=Q(employee_number__isnull=False),
                name="membership_employee_number_unique_per_organization",
                violation_error_message="Another member of this organization already has this employee number.",
            ),
            models.CheckConstraint(
                condition=Q(left_on__isnull=True) | Q(left_on__gte=models.F("joined_on")),
                name="membership_left_after_joined",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "department"], name="membership_org_department_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization}"

    def clean(self) -> None:
        super().clean()
        if self.employee_number == "":
            self.employee_number = None
        errors: dict[str, str] = {}
        if self.department is not None and self.department.organization_id != self.organization_id:
            errors["department"] = "The department belongs to another organization."
        elif self.department is not None and self.department.is_deleted and self.is_active:
            # A department can only be deleted without active members; it must not gain any afterwards.
            errors["department"] = "The department has been deleted."
        if (
            self.employee_number
            and Membership.objects.for_organization(self.organization_id)
            .filter(employee_number=self.employee_number)
            .exclude(pk=self.pk)
            .exists()
        ):
            errors["employee_number"] = "Another member of this organization already has this employee number."
        if self.left_on is not None and self.joined_on is not None and self.left_on < self.joined_on:
            errors["left_on"] = "The leaving date cannot be before the joining date."
        if errors:
            raise ValidationError(errors)


class DepartmentUserObjectPermission(UserObjectPermissionBase):
    """A permission on one department granted to one user (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="user_grants")

    history = AuditHistory()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "department grant to a user"

    def audit_organization_id(self) -> int | None:
        return self.content_object.organization_id


class DepartmentGroupObjectPermission(GroupObjectPermissionBase):
    """A permission on one department granted to a group (django-guardian, direct foreign key)."""

    content_object = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="group_grants")

    history = AuditHistory()

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "department grant to a group"

    def audit_organization_id(self) -> int | None:
        return self.content_object.organization_id


class InvitationStatus(models.TextChoices):
    """Where an invitation stands. Only a pending one can be accepted, declined, resent or revoked."""

    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class InvitationQuerySet(OrganizationQuerySet["Invitation"]):
    def open(self, *, as_of: datetime.datetime | None = None) -> InvitationQuerySet:
        """Pending invitations that have not expired yet: the ones a person can still accept."""
        return self.filter(status=InvitationStatus.PENDING, expires_at__gt=as_of or timezone.now())

    def addressed_to(self, email: str) -> InvitationQuerySet:
        return self.filter(email=normalise_invitation_email(email))


class InvitationManager(OrganizationManager["Invitation"]):
    def get_queryset(self) -> InvitationQuerySet:
        return InvitationQuerySet(self.model, using=self._db)

    def open(self, *, as_of: datetime.datetime | None = None) -> InvitationQuerySet:
        return self.get_queryset().open(as_of=as_of)

    def addressed_to(self, email: str) -> InvitationQuerySet:
        return self.get_queryset().addressed_to(email)


def normalise_invitation_email(email: str) -> str:
    """Invitations are matched on the whole address in lower case: ``Ann@Example.com`` and ``ann@example.com`` are one
    person, as the accounts' unique constraint already says."""
    return email.strip().lower()


class Invitation(OrganizationOwnedModel):
    """An offer to join an organization, sent to an email address, that becomes a membership only once accepted.

    Only an administrator (a holder of ``organizations.manage_members`` over the department, or the whole organization
    when no department is named) invites, and only with a role they could give themselves. The answer to an invitation
    never says whether an account with that address exists. At most one invitation per organization and address is
    pending at a time. The link sent by email carries a signed, single-use token; only its SHA-256 hash is stored, so a
    leaked database does not leak working links. A resend replaces the token (the old link stops working) and restarts
    the validity period. Platform operators (superusers) never join an organization this way.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invitations")
    # Indexed on its own: "my invitations" and the link look across organizations by address and by token.
    email = models.EmailField("email address", max_length=254, db_index=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="invitations"
    )
    role = models.ForeignKey(
        "rbac.Role",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invitations",
        help_text="Given on acceptance, limited to the department's subtree when a department is named.",
    )
    job_title = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    token_hash = models.CharField(max_length=64, editable=False, db_index=True)
    sent_at = models.DateTimeField(default=timezone.now, editable=False)
    send_count = models.PositiveSmallIntegerField(default=1, editable=False)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When it was accepted, declined, revoked or found expired."
    )

    department_scope_lookup = "department__path"

    objects: ClassVar[InvitationManager] = InvitationManager()
    # The token's hash changes on every resend and proves nothing to an auditor: versions leave it out.
    history = AuditHistory(excluded_fields=["token_hash"])

    class Meta:
        ordering = ["organization_id", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(status="pending"),
                name="invitation_one_pending_per_email",
                violation_error_message="This address already has a pending invitation to this organization.",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "accepted", "declined", "revoked", "expired"]),
                name="invitation_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(accepted_at__isnull=False),
                name="invitation_accepted_has_moment",
            ),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="invitation_email_normalised"),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "expires_at"], name="invitation_org_status_idx"),
            models.Index(fields=["organization", "department"], name="invitation_org_department_idx"),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.status == InvitationStatus.PENDING and self.expires_at > timezone.now()

    def clean(self) -> None:
        super().clean()
        if self.email:
            self.email = normalise_invitation_email(self.email)
        errors: dict[str, str] = {}
        if self.organization_id is None:
            return
        if self.department is not None:
            if self.department.organization_id != self.organization_id:
                errors["department"] = "The department belongs to another organization."
            elif self.department.is_deleted:
                errors["department"] = "The department has been deleted."
        if (
            self.role is not None
            and self.role.organization_id is not None
            and self.role.organization_id != self.organization_id
        ):
            errors["role"] = "The role belongs to another organization."
        if errors:
            raise ValidationError(errors)
