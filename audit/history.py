"""History on business models: ``history = AuditHistory()`` is the one line a model needs.

Each version records, besides the row's values: the acting user (id and OIDC subject — no foreign key, so the record
outlives the account), the organization, the client address, the request id, where the change came from, the reason
when one was given, the kind of change (created, updated, soft-deleted, restored, deleted) and which fields changed.
Saving an audited row costs one INSERT more: everything above comes from the row itself and the audit context.
A save that changes no tracked field records nothing.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from django.db import models
from django.db.models.signals import post_init
from django.utils import timezone
from django.utils.text import capfirst
from simple_history.models import HistoricalRecords

from audit.context import SYSTEM_SUBJECT, current
from audit.models import Action, AuditedVersion

_SNAPSHOT = "_audit_loaded"
_ACTION = "_audit_action"
_SECRET_FIELDS = ("password",)
# Stamped on every save: recorded in each version, but not a change by themselves.
BOOKKEEPING_FIELDS = frozenset({"updated_at", "updated_by_id", "created_at", "created_by_id"})


def organization_id_of(instance: models.Model) -> int | None:
    """The organization a row belongs to, from the row (or its ``audit_organization_id()`` when it has one)."""
    own = getattr(instance, "audit_organization_id", None)
    if callable(own):
        return own()
    if instance._meta.label == "organizations.Organization":
        return instance.pk
    return getattr(instance, "organization_id", None)


_TRACKED: dict[type[models.Model], list[str]] = {}


def _tracked(instance: models.Model) -> list[str]:
    model = type(instance)
    found = _TRACKED.get(model)
    if found is None:
        history = getattr(model, model._meta.simple_history_manager_attribute)  # type: ignore[attr-defined]
        found = _TRACKED[model] = [field.attname for field in history.model.tracked_fields]
    return found


def _snapshot(instance: models.Model, tracked: Iterable[str]) -> dict[str, Any]:
    values = instance.__dict__
    return {
        name: copy.deepcopy(values[name]) if isinstance(values.get(name), dict | list) else values.get(name)
        for name in tracked
        if name in values
    }


def changed_fields(instance: models.Model) -> list[str]:
    """The tracked fields whose value differs from what was loaded (or last recorded)."""
    before = instance.__dict__.get(_SNAPSHOT)
    tracked = _tracked(instance)
    if before is None:
        return tracked
    values = instance.__dict__
    return [
        name
        for name in tracked
        if name not in BOOKKEEPING_FIELDS and name in values and (name not in before or before[name] != values[name])
    ]


def mark_action(instance: models.Model, action: str) -> None:
    """Say what the next save of ``instance`` means (a soft delete or a restore rather than a plain update)."""
    instance.__dict__[_ACTION] = action


class AuditHistory(HistoricalRecords):
    """simple-history's ``HistoricalRecords`` with the ERP's audit columns, no secrets and no user foreign key."""

    def __init__(self, excluded_fields: Sequence[str] = (), **options: Any) -> None:
        options.setdefault("bases", [AuditedVersion])
        options.setdefault("history_user_id_field", models.BigIntegerField(null=True, blank=True))
        super().__init__(excluded_fields=[*excluded_fields], **options)
        self._requested_exclusions = list(excluded_fields)

    def finalize(self, sender: type[models.Model], **kwargs: Any) -> None:
        if self.cls is sender:
            self.excluded_fields = sorted(
                {
                    *self._requested_exclusions,
                    *(f.name for f in sender._meta.concrete_fields if f.name in _SECRET_FIELDS),
                }
            )
        super().finalize(sender, **kwargs)
        if self.cls is sender:
            post_init.connect(
                _remember_loaded_values, sender=sender, weak=False, dispatch_uid=f"audit-{sender._meta.label}"
            )

    def get_meta_options(self, model: type[models.Model]) -> dict[str, Any]:
        options: dict[str, Any] = super().get_meta_options(model)
        # Versions are read through the audit pages and API (permission audit.view_history), not handed out per model.
        options["default_permissions"] = ()
        digest = hashlib.sha256(model._meta.label_lower.encode()).hexdigest()[:8]
        prefix = f"{(model._meta.model_name or '')[:14]}_{digest}"  # index names: at most 30 characters, unique
        options["indexes"] = [
            models.Index(fields=["history_organization_id", "history_date"], name=f"{prefix}_hod"),
            models.Index(fields=["history_user_id"], name=f"{prefix}_hu"),
        ]
        return options

    def post_save(self, instance: models.Model, created: bool, using: str | None = None, **kwargs: Any) -> None:
        if not created and not kwargs.get("raw", False) and not changed_fields(instance):
            return  # nothing tracked changed (a login stamping last_login, a repeated save): no version
        super().post_save(instance, created, using=using, **kwargs)

    def get_history_user(self, instance: models.Model) -> Any:
        explicit = getattr(instance, "_history_user", None)
        if explicit is not None:
            return explicit
        from audit.context import acting_user

        return acting_user()

    def get_change_reason_for_object(self, instance: models.Model, history_type: str, using: str | None) -> str:
        return super().get_change_reason_for_object(instance, history_type, using) or current().reason

    def create_historical_record(self, instance: models.Model, history_type: str, using: str | None = None) -> None:
        instance.__dict__["_audit_history_type"] = history_type
        try:
            super().create_historical_record(instance, history_type, using=using)
        finally:
            instance.__dict__.pop("_audit_history_type", None)
            instance.__dict__.pop(_ACTION, None)
            instance.__dict__[_SNAPSHOT] = _snapshot(instance, _tracked(instance))


def _remember_loaded_values(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    instance.__dict__[_SNAPSHOT] = _snapshot(instance, _tracked(instance))


def stamp_version(version: AuditedVersion, instance: models.Model, history_type: str, user: Any) -> None:
    """Fill a version's audit columns from the row and the audit context (no query)."""
    context = current()
    version.history_user_subject = (getattr(user, "oidc_subject", None) or "") if user is not None else SYSTEM_SUBJECT
    version.history_organization_id = organization_id_of(instance)
    version.history_ip = context.ip
    version.history_request_id = context.request_id
    version.history_source = context.source
    if history_type == "+":
        version.history_action = Action.CREATED
        names = [
            name
            for name in _tracked(instance)
            if name not in BOOKKEEPING_FIELDS
            and name != instance._meta.pk.attname
            and instance.__dict__.get(name) not in (None, "")
        ]
    elif history_type == "-":
        version.history_action = Action.DELETED
        names = []
    else:
        version.history_action = instance.__dict__.get(_ACTION, Action.UPDATED)
        names = changed_fields(instance)
    version.history_changed_fields = f",{','.join(names)}," if names else ""


def _on_version(
    sender: Any, instance: models.Model, history_instance: AuditedVersion, history_user: Any, **kwargs: Any
) -> None:
    if isinstance(history_instance, AuditedVersion):
        stamp_version(history_instance, instance, instance.__dict__.get("_audit_history_type", "~"), history_user)


def record_bulk(instances: Sequence[models.Model], *, fields: Sequence[str] = (), action: str = Action.UPDATED) -> None:
    """One INSERT of versions for rows changed in bulk (a subtree move, a bulk action): never a silent update.

    ``instances`` hold the new values; ``fields`` names what the bulk change touched.
    """
    if not instances:
        return
    model = type(instances[0])
    history = getattr(model, model._meta.simple_history_manager_attribute)  # type: ignore[attr-defined]
    from audit.context import acting_user

    user = acting_user()
    now = timezone.now()
    reason = current().reason
    history_type = {Action.CREATED: "+", Action.DELETED: "-"}.get(action, "~")  # type: ignore[call-overload]
    versions = []
    for instance in instances:
        version = history.model(
            history_date=now,
            history_type=history_type,
            history_user=user,
            history_change_reason=reason,
            **{field.attname: getattr(instance, field.attname) for field in history.model.tracked_fields},
        )
        mark_action(instance, action)
        stamp_version(version, instance, history_type, user)
        if fields:
            version.history_changed_fields = f",{','.join(fields)},"
        instance.__dict__.pop(_ACTION, None)
        versions.append(version)
        instance.__dict__[_SNAPSHOT] = _snapshot(instance, _tracked(instance))
    history.model.objects.bulk_create(versions)


# --- How recorded values read to a person ---------------------------------------------------------------------------

NO_VALUE = "—"
# A list kept in one text column (a task's labels) is stored between separators — ",backend,ops," — so that one
# label is found with a LIKE; people read it as "backend, ops".
LIST_SEPARATOR = ","


def display_value(model_field: models.Field[Any, Any], value: Any) -> str:
    """A recorded value of ``model_field`` as a person reads it: a choice by its label ("High", not 3), a list by its
    items, a moment in UTC, nothing as a dash. Related rows are the caller's: they are named in bulk."""
    if value is None:
        return NO_VALUE
    if model_field.choices:
        return capfirst(str(dict(model_field.flatchoices).get(value, value)))
    return display_plain(value)


def display_plain(value: Any) -> str:
    """A value with no field to describe it (an event's details): never a Python representation."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if len(value) > 1 and value.startswith(LIST_SEPARATOR) and value.endswith(LIST_SEPARATOR):
            return ", ".join(item for item in value.split(LIST_SEPARATOR) if item)
        return value
    if isinstance(value, Mapping):
        return f"({display_details(value)})" if value else NO_VALUE
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(display_plain(item) for item in value) or NO_VALUE
    return str(value)


def display_details(details: Mapping[str, Any]) -> str:
    """Key/value details (a security event's data) as text: ``department: —; role: auditor``."""
    return "; ".join(f"{str(key).replace('_', ' ')}: {display_plain(value)}" for key, value in details.items())


def connect() -> None:
    from simple_history.signals import pre_create_historical_record

    pre_create_historical_record.connect(_on_version, dispatch_uid="audit-stamp-version")
