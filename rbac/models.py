"""Roles, their permissions and who holds them where.

The permission catalog is Django's ``Permission`` table. A role bundles permissions, may inherit those of a parent
role, and is either a system template (no organization, usable everywhere) or an organization's own. A role
assignment gives a user a role in an organization, optionally only for a department subtree and a period.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.history import AuditHistory
from erp.db.models import ActorStampedModel, OrganizationOwnedModel, OrganizationQuerySet
from organizations.models import AccessSource, code_validator


class RoleQuerySet(models.QuerySet["Role"]):
    def available_in(self, organization: Any) -> RoleQuerySet:
        """The organization's own roles and the system templates."""
        return self.filter(Q(organization=organization) | Q(organization__isnull=True))

    def visible_to(self, user: Any, organization: Any, action: str) -> RoleQuerySet:
        from rbac import engine

        roles = self.available_in(organization)
        if engine.scope_for(user, organization, engine.permission_name(Role, action)).is_empty:
            return roles.none()
        return roles


class Role(ActorStampedModel):
    """A named bundle of permissions, inherited transitively from ``parent`` (never in a cycle).

    System roles (``is_system``, no organization) are templates every organization can assign; only superusers change
    them. An organization's roles have codes unique within it; their parent is one of its roles or a system role.
    """

    organization = models.ForeignKey(
        "organizations.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="roles"
    )
    code = models.CharField(max_length=64, validators=[code_validator])
    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    permissions: models.ManyToManyField[Permission, RolePermission] = models.ManyToManyField(
        Permission, through="RolePermission", related_name="roles", blank=True
    )
    is_system = models.BooleanField(default=False, editable=False)

    objects = RoleQuerySet.as_manager()
    history = AuditHistory()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "code"],
                condition=Q(organization__isnull=False),
                name="role_code_unique_per_organization",
                violation_error_message="This organization already has a role with this code.",
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(organization__isnull=True),
                name="role_system_code_unique",
                violation_error_message="A system role already has this code.",
            ),
            models.CheckConstraint(
                condition=Q(is_system=False) | Q(organization__isnull=True), name="role_system_has_no_organization"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="role_not_own_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        super().clean()
        if self.code:
            self.code = self.code.lower()
        parent = self.parent
        if parent is None:
            return
        if parent.organization_id is not None and parent.organization_id != self.organization_id:
            raise ValidationError({"parent": "The parent role belongs to another organization."}, code="invalid")
        if self.is_system and not parent.is_system:
            raise ValidationError({"parent": "A system role can only inherit from a system role."}, code="invalid")
        # Walk up from the new parent: meeting this role again would close a cycle.
        seen: set[int] = set()
        ancestor: Role | None = parent
        while ancestor is not None and ancestor.pk not in seen:
            if self.pk is not None and ancestor.pk == self.pk:
                raise ValidationError(
                    {"parent": "This parent inherits from this role: that would make a cycle."}, code="cycle"
                )
            seen.add(ancestor.pk)
            ancestor = ancestor.parent


class RolePermission(models.Model):
    """One permission of one role (the explicit through table keeps the link auditable)."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="role_permissions")
    permission = models.ForeignKey(Permission, on_delete=models.CASCADE, related_name="+")

    history = AuditHistory()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "permission"], name="role_permission_unique")]

    def __str__(self) -> str:
        return f"{self.role.code}: {self.permission.codename}"

    def audit_organization_id(self) -> int | None:
        return self.role.organization_id


class RoleAssignmentQuerySet(OrganizationQuerySet["RoleAssignment"]):
    def in_force(self, at: Any = None) -> RoleAssignmentQuerySet:
        """Assignments that grant something now: active, already valid, not expired."""
        moment = at or timezone.now()
        return self.filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=moment),
            Q(valid_until__isnull=True) | Q(valid_until__gt=moment),
            is_active=True,
        )

    def visible_to(self, user: Any, organization: Any, action: str) -> RoleAssignmentQuerySet:
        from rbac import engine

        return engine.visible(self, user, organization, action)


class RoleAssignment(OrganizationOwnedModel):
    """A user holds a role in an organization, for the whole organization or only a department subtree.

    The user must be an active member. Inactive, not-yet-valid and expired assignments grant nothing: validity is
    judged when permissions are computed, so no scheduled job is needed. ``source`` says whether it was given by hand
    or follows the identity provider's claims (those are re-synced at each sign-in; manual ones never are).
    """

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, related_name="role_assignments"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_assignments")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="assignments")
    department = models.ForeignKey(
        "organizations.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="role_assignments"
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    reason = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=AccessSource.choices, default=AccessSource.MANUAL, editable=False)

    objects: ClassVar[models.Manager[RoleAssignment]] = RoleAssignmentQuerySet.as_manager()  # type: ignore[assignment]
    history = AuditHistory()

    department_scope_lookup = "department__path"

    class Meta:
        ordering = ["organization_id", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "role"],
                condition=Q(department__isnull=True),
                name="role_assignment_unique_organization_wide",
                violation_error_message="This person already has this role for this scope.",
            ),
            models.UniqueConstraint(
                fields=["organization", "user", "role", "department"],
                condition=Q(department__isnull=False),
                name="role_assignment_unique_per_department",
                violation_error_message="This person already has this role for this scope.",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="role_assignment_valid_period",
            ),
        ]
        indexes = [models.Index(fields=["organization", "user"], name="role_assignment_org_user_idx")]

    def __str__(self) -> str:
        where = f" in {self.department.code}" if self.department is not None else ""
        return f"{self.user} as {self.role.code}{where}"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.role_id is not None and self.role.organization_id not in (None, self.organization_id):
            errors["role"] = "The role belongs to another organization."
        if self.department is not None and self.department.organization_id != self.organization_id:
            errors["department"] = "The department belongs to another organization."
        if self.user_id is not None and self.organization_id is not None:
            from organizations.models import Membership

            if not Membership.objects.filter(
                organization_id=self.organization_id, user_id=self.user_id, is_active=True
            ).exists():
                errors["user"] = "The user is not an active member of the organization."
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = "The end of validity must come after its start."
        if errors:
            raise ValidationError(errors)
