"""The audit trail's own tables.

- ``AuditedVersion``: the columns every history table adds to simple-history's (who, from where, in which organization,
  what kind of change and which fields).
- ``SecurityEvent``: the append-only log of security-relevant facts, hash-chained per organization. The database
  refuses UPDATE and DELETE on it (a trigger); only ``purge_history`` may delete, inside a ``PurgeWindow``.
- ``SecurityEventDetail``: the personal data an event may carry (an email typed at a failed login, an address, a
  browser). It sits outside the chained row so that erasure can remove it without breaking the chain.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone

from audit.context import Source


class Action(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    SOFT_DELETED = "soft_deleted", "Deleted (restorable)"
    RESTORED = "restored", "Restored"
    DELETED = "deleted", "Deleted"


class AuditedVersion(models.Model):
    """What a version of a row records besides its values: the acting user (by id and OIDC subject, so that the record
    survives the account), the organization, the client address, the request, the kind of change and the fields it
    changed (``",name,code,"`` — searchable on every database)."""

    history_user_subject = models.CharField("actor's OIDC subject", max_length=255, blank=True, default="")
    history_organization_id = models.BigIntegerField("organization", null=True, blank=True)
    history_ip = models.GenericIPAddressField("client address", null=True, blank=True)
    history_request_id = models.CharField("request id", max_length=64, blank=True, default="")
    history_source = models.CharField(max_length=16, choices=Source.CHOICES, default=Source.SYSTEM)
    history_action = models.CharField(max_length=16, choices=Action.choices, default=Action.UPDATED)
    history_changed_fields = models.TextField(blank=True, default="")

    class Meta:
        abstract = True

    @property
    def changed_field_names(self) -> list[str]:
        return [name for name in self.history_changed_fields.split(",") if name]


class SecurityEventKind(models.TextChoices):
    LOGIN_SUCCEEDED = "login_succeeded", "Signed in"
    LOGIN_FAILED = "login_failed", "Sign-in failed"
    ACCOUNT_LOCKED = "account_locked", "Account locked"
    ACCOUNT_UNLOCKED = "account_unlocked", "Account unlocked"
    LOGGED_OUT = "logged_out", "Signed out"
    SESSION_REVOKED = "session_revoked", "Session revoked"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    TOKEN_REJECTED = "token_rejected", "Bearer token rejected"
    ROLE_CREATED = "role_created", "Role created"
    ROLE_CHANGED = "role_changed", "Role changed"
    ROLE_DELETED = "role_deleted", "Role deleted"
    ROLE_ASSIGNED = "role_assigned", "Role assigned"
    ASSIGNMENT_CHANGED = "assignment_changed", "Role assignment changed"
    ROLE_REVOKED = "role_revoked", "Role assignment revoked"
    GRANT_GIVEN = "grant_given", "Object permission granted"
    GRANT_REVOKED = "grant_revoked", "Object permission revoked"
    MEMBERSHIP_ADDED = "membership_added", "Member added"
    MEMBERSHIP_CHANGED = "membership_changed", "Membership changed"
    MEMBERSHIP_REMOVED = "membership_removed", "Member removed"
    PERMISSION_DENIED = "permission_denied", "Permission denied"
    DATA_EXPORTED = "data_exported", "Data exported"
    USER_ERASED = "user_erased", "Personal data erased"
    SUPERUSER_ACCESS = "superuser_access", "Superuser entered the organization"
    HISTORY_PURGED = "history_purged", "History purged"
    INVITATION_SENT = "invitation_sent", "Invitation sent"
    INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
    INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
    INVITATION_DECLINED = "invitation_declined", "Invitation declined"


class SecurityEvent(models.Model):
    """One security-relevant fact. Append-only: rows are never updated, and deleted only by retention.

    ``chain`` is the organization's id (0 for installation-wide events such as sign-ins); an event about a person's
    account (a sign-in, say) is in the installation's chain and, once more, in the chain of each organization the
    person was an active member of at the time, so that those organizations' auditors see it. ``sequence`` numbers the
    chain's events and ``hash`` covers this row's fields and the previous row's hash, so that editing, removing or
    reordering a row is detectable (``manage.py verify_audit_chain``). People are referenced by id only; their personal
    data lives in ``SecurityEventDetail``.
    """

    chain = models.BigIntegerField(editable=False)
    sequence = models.BigIntegerField(editable=False)
    occurred_at = models.DateTimeField(default=timezone.now, editable=False)
    kind = models.CharField(max_length=32, choices=SecurityEventKind.choices)
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_subject = models.CharField(max_length=255, blank=True, default="")
    target_user_id = models.BigIntegerField(null=True, blank=True)
    object_type = models.CharField(max_length=100, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.CHOICES, default=Source.SYSTEM)
    request_id = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        default_permissions = ()
        permissions: ClassVar = [
            ("view_history", "Can view the organization's history and security events"),
        ]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["chain", "sequence"], name="audit_securityevent_chain_sequence"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["organization", "occurred_at"], name="audit_event_org_time"),
            models.Index(fields=["actor_id"], name="audit_event_actor"),
            models.Index(fields=["target_user_id"], name="audit_event_target"),
        ]
        ordering: ClassVar = ["-occurred_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class SecurityEventDetail(models.Model):
    """The erasable part of an event: personal data that must not sit in the chained row."""

    event = models.OneToOneField(SecurityEvent, on_delete=models.CASCADE, related_name="detail", primary_key=True)
    email = models.CharField("email given", max_length=254, blank=True, default="")
    ip = models.GenericIPAddressField("client address", null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        default_permissions = ()
        indexes: ClassVar = [models.Index(fields=["email"], name="audit_eventdetail_email")]

    def __str__(self) -> str:
        return f"Details of event {self.event_id}"


class SecurityEventChain(models.Model):
    """The head of one chain (locked while appending) and where retention cut it (the anchor to verify from)."""

    chain = models.BigIntegerField(primary_key=True)
    last_sequence = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")
    purged_through_sequence = models.BigIntegerField(default=0)
    purged_through_hash = models.CharField(max_length=64, default="")

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"Chain {self.chain} at {self.last_sequence}"


class PurgeWindow(models.Model):
    """A row here, inside the retention command's transaction, is what lets the database delete security events."""

    opened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"Purge window opened at {self.opened_at:%Y-%m-%d %H:%M:%S}"
