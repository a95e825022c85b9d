"""A person's rights over their data: erasure (anonymisation) and access (an export of everything kept about them).

Erasure keeps referential integrity: the account row stays, under a placeholder, so that every version and event that
names the person by id still points at a row — their past actions stay attributed, to nobody recognisable. Security
events are never rewritten (their chain must stay valid); only the erasable details beside them are blanked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Replace

from accounts import sessions, signin_limits
from accounts.models import Actor, PasswordHistory, User
from accounts.services import is_last_active_superuser
from audit.events import MEMBER_EVENT_KINDS, record_event
from audit.models import AuditedVersion, SecurityEvent, SecurityEventDetail, SecurityEventKind
from erp.exceptions import ConflictError
from organizations.models import Membership, Organization
from rbac.models import RoleAssignment

ERASED_NAME = "Erased user"
ERASED_DOMAIN = "erased.invalid"


def erased_email(user: User) -> str:
    """The placeholder address of an erased account: unique (by id) and in a domain that can never receive mail."""
    return f"erased-{user.pk}@{ERASED_DOMAIN}"


def _anonymous_values(user: User) -> dict[str, Any]:
    """What replaces the person's identifying fields, in the account row and in every version of it."""
    return {"email": erased_email(user), "full_name": ERASED_NAME, "phone": "", "oidc_subject": None}


def version_models() -> Iterator[type[models.Model]]:
    """The history table of every audited model (any model with ``history = AuditHistory()``); each is also an
    ``AuditedVersion``, typed here as a plain model because its columns are only known at run time."""
    for model in apps.get_models():
        attribute = getattr(model._meta, "simple_history_manager_attribute", None)
        if attribute is not None and not issubclass(model, AuditedVersion):
            yield getattr(model, attribute).model


@dataclass(frozen=True)
class ErasureResult:
    """What one erasure changed; all zero (``is_changed`` false) when the person had already been erased."""

    user: User
    account: int
    versions: int
    event_details: int
    admin_log_entries: int

    @property
    def is_changed(self) -> bool:
        return bool(self.account or self.versions or self.event_details or self.admin_log_entries)


@transaction.atomic
def user_erase(*, actor: Actor, user: User) -> ErasureResult:
    """Anonymise a person (right to erasure) and deactivate the account; nobody erases themselves.

    The account keeps its id under a placeholder name and address, loses its password, flags, provider link and
    sessions. Every version of the account gets the same placeholder values; versions the person authored keep their
    id but lose the client address and subject. Personal details of security events they caused (or naming their
    address) are blanked; the chained events stay untouched. The last active superuser cannot be erased.
    Erasing an erased person changes nothing and records nothing.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if actor is not None and actor.pk == user.pk:
        raise ValidationError("You cannot erase your own account.", code="self_erasure")
    if is_last_active_superuser(user):
        raise ConflictError("This is the last active superuser; it cannot be erased.", code="last_superuser")
    old_email = user.email
    anonymous = _anonymous_values(user)

    account = _anonymise_account(user, anonymous)
    versions = _anonymise_versions(user, anonymous)
    details = _blank_event_details(user, old_email)
    log_entries = _anonymise_admin_log(user, old_email)
    signin_limits.attempts_forget(old_email)  # sign-in attempts and logs name the person by email
    result = ErasureResult(
        user=user, account=account, versions=versions, event_details=details, admin_log_entries=log_entries
    )
    if result.is_changed:
        transaction.on_commit(lambda: end_sessions(user))
        record_event(
            SecurityEventKind.USER_ERASED,
            actor=actor if isinstance(actor, User) else None,
            target_user=user.pk,
            obj=user,
            data={"versions": versions, "event_details": details, "admin_log_entries": log_entries},
        )
    return result


def _anonymise_account(user: User, anonymous: dict[str, Any]) -> int:
    """The live row: one save, so that its one new version holds only placeholder values (never the old ones). The
    hashes of the person's past passwords go too."""
    PasswordHistory.objects.filter(user=user).delete()
    values = {
        **anonymous,
        "is_active": False,
        "is_staff": False,
        "is_superuser": False,
        "last_login": None,
    }
    if all(getattr(user, name) == value for name, value in values.items()) and not user.has_usable_password():
        return 0
    for name, value in values.items():
        setattr(user, name, value)
    user.set_unusable_password()  # also invalidates every session: their auth hash no longer matches
    user.full_clean(exclude=["password"])
    user.save()
    return 1


def _anonymise_versions(user: User, anonymous: dict[str, Any]) -> int:
    """Old versions are rewritten in place (queryset updates create no versions of their own)."""
    changed = 0
    user_versions = User.history.model
    for version_model in version_models():
        manager = version_model._default_manager
        if version_model is user_versions:
            unchanged = Q(**{name: value for name, value in anonymous.items() if value is not None})
            unchanged &= Q(oidc_subject__isnull=True)
            changed += manager.filter(id=user.pk).exclude(unchanged).update(**anonymous)
        changed += (
            manager.filter(history_user_id=user.pk)
            .filter(Q(history_ip__isnull=False) | ~Q(history_user_subject=""))
            .update(history_ip=None, history_user_subject="")
        )
    return changed


def _blank_event_details(user: User, old_email: str) -> int:
    """Details hold the requester's address and browser: the person's when they acted (or were the anonymous subject
    of a request, such as a failed sign-in), another actor's otherwise — those stay, they are that actor's record."""
    about_person = SecurityEvent.objects.filter(
        Q(actor_id=user.pk) | Q(target_user_id=user.pk, actor_id__isnull=True)
    ).values("pk")
    emails = {old_email, old_email.lower()} - {""}
    details = SecurityEventDetail.objects.filter(Q(event__in=about_person) | Q(email__in=emails))
    return details.exclude(email="", ip__isnull=True, user_agent="").update(email="", ip=None, user_agent="")


def _anonymise_admin_log(user: User, old_email: str) -> int:
    """The admin's log names objects by their text: a user by email, a membership as "email in organization"."""
    changed = (
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk))
        .exclude(object_repr=str(user))
        .update(object_repr=str(user))
    )
    if old_email:
        changed += LogEntry.objects.filter(object_repr__contains=old_email).update(
            object_repr=Replace("object_repr", Value(old_email), Value(str(user)))
        )
    return changed


def end_sessions(user: User) -> int:
    """End the person's sessions, found through the session index (``accounts.sessions``); one event says how many.

    A session missing from the index is dead anyway: it carries a hash of the old password, which no longer matches,
    and the account is inactive.
    """
    return sessions.user_sessions_end(user=user, reason=sessions.Reason.ERASED)


# --- Right of access -------------------------------------------------------------------------------------------------


def _moment(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@transaction.atomic
def user_data_export(*, actor: Actor, user: User) -> dict[str, Any]:
    """Everything kept about a person (right of access), as JSON-ready data; the export is a security event.

    Profile, memberships, role assignments, the changes they made (one entry per version they authored: model, object,
    date, action, fields) and the security events about them or by them (kind, time, organization).
    """
    user = User.objects.get(pk=user.pk)
    slugs = dict(Organization.all_objects.values_list("pk", "slug"))
    memberships = Membership.objects.filter(user=user).select_related("department").order_by("organization_id", "pk")
    assignments = (
        RoleAssignment.objects.filter(user=user).select_related("role", "department").order_by("organization_id", "pk")
    )
    events = (
        SecurityEvent.objects.filter(Q(actor_id=user.pk) | Q(target_user_id=user.pk))
        # A sign-in (say) is one fact about the person: its copies in their organizations' chains are not listed again.
        .exclude(kind__in=MEMBER_EVENT_KINDS, organization__isnull=False)
        .order_by("occurred_at", "pk")
    )
    export = {
        "profile": {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "phone": user.phone,
            "locale": user.locale,
            "time_zone": user.time_zone,
            "is_active": user.is_active,
            "date_joined": _moment(user.date_joined),
            "last_login": _moment(user.last_login),
        },
        "memberships": [
            {
                "organization": slugs.get(membership.organization_id),
                "department": membership.department.code if membership.department is not None else None,
                "job_title": membership.job_title,
                "employee_number": membership.employee_number,
                "is_active": membership.is_active,
                "joined_on": _moment(membership.joined_on),
                "left_on": _moment(membership.left_on),
            }
            for membership in memberships
        ],
        "role_assignments": [
            {
                "organization": slugs.get(assignment.organization_id),
                "role": assignment.role.code,
                "department": assignment.department.code if assignment.department is not None else None,
                "is_active": assignment.is_active,
                "valid_from": _moment(assignment.valid_from),
                "valid_until": _moment(assignment.valid_until),
            }
            for assignment in assignments
        ],
        "changes": _changes_by(user, slugs),
        "security_events": [
            {
                "kind": event.kind,
                "occurred_at": _moment(event.occurred_at),
                "organization": slugs.get(event.organization_id) if event.organization_id else None,
            }
            for event in events.iterator()
        ],
    }
    record_event(
        SecurityEventKind.DATA_EXPORTED,
        actor=actor if isinstance(actor, User) else None,
        target_user=user.pk,
        obj=user,
        data={"export": "personal_data"},
    )
    return export


def _changes_by(user: User, slugs: dict[int, str]) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    for version_model in version_models():
        label = version_model.instance_type._meta.label_lower  # type: ignore[attr-defined]
        pk_name = version_model.instance_type._meta.pk.attname  # type: ignore[attr-defined]
        versions = version_model._default_manager.filter(history_user_id=user.pk).values(
            pk_name, "history_date", "history_action", "history_changed_fields", "history_organization_id"
        )
        changes.extend(
            {
                "model": label,
                "object_id": str(version[pk_name]),
                "date": _moment(version["history_date"]),
                "action": version["history_action"],
                "changed_fields": [name for name in version["history_changed_fields"].split(",") if name],
                "organization": slugs.get(version["history_organization_id"]),
            }
            for version in versions.iterator()
        )
    changes.sort(key=lambda change: (change["date"], change["model"], change["object_id"]))
    return changes
