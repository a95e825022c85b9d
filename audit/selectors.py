"""What auditors read: the change search, an object's timeline, diffs, the as-of view and the security events.

Every read here is for ONE organization: history rows are selected by ``history_organization_id`` and events by their
organization, so an auditor of one organization never reads another's rows — even for an object id that exists
elsewhere (it reads as unknown). Who may call these (``audit.view_history``) is decided by the views.

People are shown by name when the viewer may see them (a superuser viewer; or a person who is or was a member of the
organization, or a platform operator who acted in it); anyone else is ``User #id``, a removed account
``(deleted user #id)`` and changes made by the system itself ``System``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import connection, models
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.utils.text import capfirst

from accounts.models import User
from audit.context import SYSTEM_SUBJECT
from audit.history import BOOKKEEPING_FIELDS, display_value
from audit.models import Action, SecurityEvent
from organizations.models import Membership, Organization
from organizations.selectors import organizations_for_user
from rbac import engine

VIEW_HISTORY = "audit.view_history"
NO_VALUE = "—"

# --- The audited models ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditedModel:
    """A model with history: its label (``organizations.department``), the model and its history model."""

    label: str
    model: type[models.Model]
    history_model: type[models.Model]

    @property
    def verbose_name(self) -> str:
        return capfirst(str(self.model._meta.verbose_name))

    @property
    def verbose_name_plural(self) -> str:
        return capfirst(str(self.model._meta.verbose_name_plural))

    @functools.cached_property
    def value_fields(self) -> list[models.Field[Any, Any]]:
        """The recorded business fields (the model's own definitions, for labels and choices): the primary key and
        the stamps every save refreshes (created/updated at and by) are left out, as they are not changes."""
        tracked = self.history_model.tracked_fields  # type: ignore[attr-defined]
        pk_name = self.model._meta.pk.name
        found = []
        for history_field in tracked:
            if history_field.name == pk_name or history_field.attname in BOOKKEEPING_FIELDS:
                continue
            found.append(self.model._meta.get_field(history_field.name))
        return found  # type: ignore[return-value]

    def field_label(self, attname: str) -> str:
        """The verbose name of a field given by name or attname (``parent_id`` → ``Parent``)."""
        for model_field in self.model._meta.concrete_fields:
            if attname in (model_field.name, model_field.attname):
                return capfirst(str(model_field.verbose_name))
        return attname

    def object_id(self, raw: Any) -> Any:
        """``raw`` as a value of the primary key; ``ValidationError`` when it cannot be one."""
        value = self.model._meta.pk.to_python(raw)
        if value in (None, ""):
            raise ValidationError("An object id is required.")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValidationError("Not a valid object id.")  # the database could not even compare it
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("Not a valid object id.")
        return value

    def versions(self, organization_id: int) -> QuerySet[Any]:
        """The history rows recorded in one organization."""
        return self.history_model._default_manager.filter(history_organization_id=organization_id)


@functools.cache
def audited_models() -> dict[str, AuditedModel]:
    """Every model that keeps history (found through simple-history's marker, so later apps join by themselves)."""
    found = {}
    for model in apps.get_models():
        attribute = getattr(model._meta, "simple_history_manager_attribute", None)
        if attribute is None:
            continue
        label = model._meta.label_lower
        found[label] = AuditedModel(label=label, model=model, history_model=getattr(model, attribute).model)
    return dict(sorted(found.items(), key=lambda item: item[1].verbose_name))


def audited_model(label: str) -> AuditedModel | None:
    return audited_models().get(label.lower())


def audited_model_for(model: type[models.Model]) -> AuditedModel | None:
    return audited_models().get(model._meta.label_lower)


def auditable_organizations(*, user: User) -> list[Organization]:
    """The organizations whose whole history the user may read (``audit.view_history`` organization-wide)."""
    return [
        organization
        for organization in organizations_for_user(user=user).order_by("name")
        if engine.scope_for(user, organization, VIEW_HISTORY).is_organization_wide
    ]


# --- People ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """How an actor or a referenced user is shown: ``id`` is ``None`` for the system itself."""

    id: int | None
    display: str


SYSTEM = Person(None, "System")
ANONYMOUS = Person(None, "Anonymous")


def user_display(user: User) -> str:
    return f"{user.full_name} <{user.email}>" if user.full_name else user.email


def people(user_ids: Iterable[int | None], *, organization: Organization | int, viewer: User) -> dict[int, Person]:
    """The people behind ``user_ids`` as this viewer may see them: one query, whatever the number of ids."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    organization_id = organization if isinstance(organization, int) else organization.pk
    belonged = Membership.objects.filter(organization_id=organization_id, user_id=OuterRef("pk"))
    found = {}
    users = User.objects.filter(pk__in=wanted).annotate(belonged=Exists(belonged))
    for user in users.only("pk", "email", "full_name", "is_superuser"):
        visible = viewer.is_superuser or user.belonged or user.is_superuser
        found[user.pk] = Person(user.pk, user_display(user) if visible else f"User #{user.pk}")
    for user_id in wanted - set(found):
        found[user_id] = Person(user_id, f"(deleted user #{user_id})")
    return found


def actor(user_id: int | None, subject: str, known: dict[int, Person]) -> Person:
    """Who made a change: a known person, or the system (subject ``system``), else an anonymous caller."""
    if user_id is not None:
        return known.get(user_id, Person(user_id, f"(deleted user #{user_id})"))
    return SYSTEM if subject == SYSTEM_SUBJECT else ANONYMOUS


# --- Cursors (keyset positions, never offsets) ----------------------------------------------------------------------


class InvalidCursorError(ValueError):
    """A cursor that this code did not write (or one written for another list)."""


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value for value in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Sequence[type]) -> list[Any]:
    """The values of a cursor, checked against ``shape`` (``datetime``, ``str``, ``int`` …)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(values, list) or len(values) != len(shape):
            raise InvalidCursorError(cursor)
        decoded: list[Any] = []
        for value, kind in zip(values, shape, strict=True):
            if kind is datetime:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    raise InvalidCursorError(cursor)
                decoded.append(moment)
            elif isinstance(value, kind) and not isinstance(value, bool) and "\x00" not in str(value):
                decoded.append(value)
            else:
                raise InvalidCursorError(cursor)
        return decoded
    except (binascii.Error, UnicodeError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise InvalidCursorError(cursor) from error


# --- Change search --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeFilters:
    """What the change search may be narrowed to; empty values do not filter."""

    model: str = ""
    object_id: str = ""
    user_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    field: str = ""
    action: str = ""

    def as_data(self) -> dict[str, Any]:
        """The filters in use, as plain values (what an export event records)."""
        data = {
            "model": self.model,
            "object_id": self.object_id,
            "user": self.user_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "field": self.field,
            "action": self.action,
        }
        return {name: value for name, value in data.items() if value not in (None, "")}


@dataclass(frozen=True)
class ChangePosition:
    """Where a page of the change search ends: newest first by (history date, model label, history id)."""

    history_date: datetime
    label: str
    history_id: int

    def encode(self) -> str:
        return encode_cursor([self.history_date, self.label, self.history_id])

    @classmethod
    def decode(cls, cursor: str) -> ChangePosition:
        history_date, label, history_id = decode_cursor(cursor, (datetime, str, int))
        return cls(history_date, label, history_id)


@dataclass(frozen=True)
class Change:
    """One version found by the change search."""

    model: AuditedModel
    object_id: str
    history_id: int
    history_date: datetime
    action: str
    user: Person
    reason: str
    changed_fields: list[str]
    ip: str | None
    request_id: str
    source: str

    @property
    def action_display(self) -> str:
        return str(Action(self.action).label) if self.action in Action.values else self.action

    @property
    def changed_field_labels(self) -> list[str]:
        return [self.model.field_label(name) for name in self.changed_fields]

    @property
    def position(self) -> ChangePosition:
        return ChangePosition(self.history_date, self.model.label, self.history_id)


_CHANGE_COLUMNS = (
    "history_id",
    "history_date",
    "history_user_id",
    "history_user_subject",
    "history_action",
    "history_changed_fields",
    "history_change_reason",
    "history_ip",
    "history_request_id",
    "history_source",
)


def _change_part(
    audited: AuditedModel, organization_id: int, filters: ChangeFilters, after: ChangePosition | None, limit: int
) -> QuerySet[Any] | None:
    """One history table's share of a search page (``None`` when the filters exclude the table entirely)."""
    versions = audited.versions(organization_id)
    if filters.object_id:
        try:
            versions = versions.filter(**{audited.model._meta.pk.attname: audited.object_id(filters.object_id)})
        except ValidationError:
            return None  # not an id of this model: no version of it can match
    if filters.user_id is not None:
        versions = versions.filter(history_user_id=filters.user_id)
    if filters.since is not None:
        versions = versions.filter(history_date__gte=filters.since)
    if filters.until is not None:
        versions = versions.filter(history_date__lt=filters.until)
    if filters.action:
        versions = versions.filter(history_action=filters.action)
    if filters.field:
        # Changed fields are stored by attname (``parent_id``); people ask for ``parent`` as often as ``parent_id``.
        versions = versions.filter(
            Q(history_changed_fields__contains=f",{filters.field},")
            | Q(history_changed_fields__contains=f",{filters.field}_id,")
        )
    if after is not None:
        # The keyset condition, specialised per table (the label is constant inside one): each table keeps an indexed
        # range scan on (organization, history date) instead of a filter over the whole union.
        if audited.label < after.label:
            versions = versions.filter(history_date__lte=after.history_date)
        elif audited.label == after.label:
            versions = versions.filter(
                Q(history_date__lt=after.history_date)
                | Q(history_date=after.history_date, history_id__lt=after.history_id)
            )
        else:
            versions = versions.filter(history_date__lt=after.history_date)
    part = versions.order_by().values(
        *_CHANGE_COLUMNS,
        model_label=Value(audited.label, output_field=CharField()),
        object_id=Cast(audited.model._meta.pk.attname, output_field=CharField()),
    )
    return part


def search_changes(
    *,
    organization: Organization,
    viewer: User,
    filters: ChangeFilters,
    after: ChangePosition | None = None,
    limit: int = 50,
) -> tuple[list[Change], ChangePosition | None]:
    """One page of the organization's changes across every history table, newest first, and where the next page
    starts (``None`` on the last page). Two queries: the UNION ALL of the tables' parts, and the people on the page."""
    if filters.model:
        chosen = audited_model(filters.model)
        candidates = [chosen] if chosen is not None else []
    else:
        candidates = list(audited_models().values())
    parts = [
        part
        for audited in candidates
        if (part := _change_part(audited, organization.pk, filters, after, limit)) is not None
    ]
    if not parts:
        return [], None
    if len(parts) == 1:
        combined = parts[0]
    else:
        if connection.features.supports_slicing_ordering_in_compound:
            # Each table contributes at most one page: the database never sorts more than (tables x page) rows.
            parts = [part.order_by("-history_date", "-history_id")[: limit + 1] for part in parts]
        first, *others = parts
        combined = first.union(*others, all=True)
    rows = list(combined.order_by("-history_date", "-model_label", "-history_id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    known = people((row["history_user_id"] for row in rows), organization=organization, viewer=viewer)
    registry = audited_models()
    changes = [
        Change(
            model=registry[row["model_label"]],
            object_id=row["object_id"],
            history_id=row["history_id"],
            history_date=row["history_date"],
            action=row["history_action"],
            user=actor(row["history_user_id"], row["history_user_subject"], known),
            reason=row["history_change_reason"] or "",
            changed_fields=[name for name in row["history_changed_fields"].split(",") if name],
            ip=row["history_ip"],
            request_id=row["history_request_id"],
            source=row["history_source"],
        )
        for row in rows
    ]
    return changes, (changes[-1].position if has_more and changes else None)


def iterate_changes(
    *, organization: Organization, viewer: User, filters: ChangeFilters, batch_size: int = 500
) -> Iterable[Change]:
    """Every change the filters select, newest first, read page by page along the keyset (for exports)."""
    after = None
    while True:
        changes, after = search_changes(
            organization=organization, viewer=viewer, filters=filters, after=after, limit=batch_size
        )
        yield from changes
        if after is None:
            return


# --- One object's versions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field of a diff: raw values (JSON-ready) and what a person reads (names instead of ids)."""

    field: str
    label: str
    old: Any
    new: Any
    old_display: str
    new_display: str


@dataclass(frozen=True)
class FieldValue:
    field: str
    label: str
    value: Any
    display: str


@dataclass
class Version:
    """One recorded version of an object, with who / when / why and what changed since the version before it."""

    record: Any
    user: Person
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def history_id(self) -> int:
        return int(self.record.history_id)

    @property
    def history_date(self) -> datetime:
        return self.record.history_date

    @property
    def action(self) -> str:
        return str(self.record.history_action)

    @property
    def action_display(self) -> str:
        return str(self.record.get_history_action_display())

    @property
    def reason(self) -> str:
        return str(self.record.history_change_reason or "")

    @property
    def changed_fields(self) -> list[str]:
        return list(self.record.changed_field_names)


def object_versions(*, audited: AuditedModel, object_id: Any, organization: Organization | int) -> QuerySet[Any]:
    """The versions of one object recorded in the organization (whether or not the object still exists)."""
    organization_id = organization if isinstance(organization, int) else organization.pk
    return audited.versions(organization_id).filter(**{audited.model._meta.pk.attname: object_id})


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


class ValueFormatter:
    """Shows recorded values to a person: related rows by name, looked up in bulk (one query per related model,
    however many versions), people by the visibility rule, choices by their label."""

    def __init__(self, audited: AuditedModel, records: Sequence[Any], *, organization: Organization, viewer: User):
        self.audited = audited
        wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
        user_ids: set[int] = {record.history_user_id for record in records if record.history_user_id is not None}
        for model_field in audited.value_fields:
            if not model_field.is_relation or not model_field.many_to_one:
                continue
            related = model_field.related_model
            assert isinstance(related, type)
            for record in records:
                value = getattr(record, model_field.attname)
                if value is None:
                    continue
                if related._meta.label == settings.AUTH_USER_MODEL:
                    user_ids.add(value)
                else:
                    wanted[related].add(value)
        self.people = people(user_ids, organization=organization, viewer=viewer)
        self.names: dict[type[models.Model], dict[Any, str]] = {}
        for related, ids in wanted.items():
            # The base manager also finds soft-deleted rows: a version may point at one.
            rows = related._base_manager.filter(pk__in=ids).select_related()
            self.names[related] = {row.pk: safe_str(row) for row in rows}

    def display(self, model_field: models.Field[Any, Any], value: Any) -> str:
        if value is None:
            return NO_VALUE
        if model_field.is_relation and model_field.many_to_one:
            related = model_field.related_model
            assert isinstance(related, type)
            if related._meta.label == settings.AUTH_USER_MODEL:
                return self.people.get(value, Person(value, f"(deleted user #{value})")).display
            return self.names.get(related, {}).get(value, f"(deleted #{value})")
        return display_value(model_field, value)

    def changes(self, older: Any | None, newer: Any) -> list[FieldChange]:
        """The business fields whose values differ between two versions (against nothing: every value set)."""
        found = []
        for model_field in self.audited.value_fields:
            new = getattr(newer, model_field.attname)
            old = getattr(older, model_field.attname) if older is not None else None
            if older is not None and old == new:
                continue
            if older is None and new in (None, ""):
                continue
            found.append(
                FieldChange(
                    field=model_field.name,
                    label=capfirst(str(model_field.verbose_name)),
                    old=_json_value(old),
                    new=_json_value(new),
                    old_display=self.display(model_field, old),
                    new_display=self.display(model_field, new),
                )
            )
        return found

    def values(self, record: Any) -> list[FieldValue]:
        return [
            FieldValue(
                field=model_field.name,
                label=capfirst(str(model_field.verbose_name)),
                value=_json_value(getattr(record, model_field.attname)),
                display=self.display(model_field, getattr(record, model_field.attname)),
            )
            for model_field in self.audited.value_fields
        ]


def safe_str(row: models.Model) -> str:
    """``str(row)``, or the model and id when the text needs a related row that is gone."""
    try:
        return str(row)
    except ObjectDoesNotExist:
        return f"{capfirst(str(row._meta.verbose_name))} #{row.pk}"


def describe_versions(
    *,
    audited: AuditedModel,
    records: Sequence[Any],
    previous: Any | None,
    organization: Organization,
    viewer: User,
) -> list[Version]:
    """The versions ``records`` (newest first), each with its diff against the version before it — ``previous`` is
    the one before the oldest record. Queries: the people and one per related model, whatever the number of records."""
    everything = [*records, previous] if previous is not None else list(records)
    formatter = ValueFormatter(audited, everything, organization=organization, viewer=viewer)
    chronological = list(reversed(records))
    versions = []
    before = previous
    for record in chronological:
        versions.append(
            Version(
                record=record,
                user=actor(record.history_user_id, record.history_user_subject, formatter.people),
                changes=formatter.changes(before, record) if record.history_type != "-" else [],
            )
        )
        before = record
    versions.reverse()
    return versions


@dataclass(frozen=True)
class TimelinePage:
    versions: list[Version]
    next_before: int | None  # the history id the next (older) page starts below
    title: str


def object_timeline(
    *,
    audited: AuditedModel,
    object_id: Any,
    organization: Organization,
    viewer: User,
    before: int | None = None,
    limit: int = 100,
) -> TimelinePage | None:
    """Every version of an object, newest first (a page of ``limit``, keyed on the history id), each with who, when,
    why and its diff against the version before. ``None`` when the object has no version in this organization."""
    versions = object_versions(audited=audited, object_id=object_id, organization=organization)
    page = versions.order_by("-history_id")
    if before is not None:
        page = page.filter(history_id__lt=before)
    records = list(page[: limit + 1])
    if not records and before is None:
        return None
    has_more = len(records) > limit
    records = records[:limit]
    previous = (
        versions.filter(history_id__lt=records[-1].history_id).order_by("-history_id").first() if records else None
    )
    described = describe_versions(
        audited=audited, records=records, previous=previous, organization=organization, viewer=viewer
    )
    title = object_title(audited, records[0]) if records else f"{audited.verbose_name} #{object_id}"
    return TimelinePage(described, records[-1].history_id if has_more else None, title)


def object_title(audited: AuditedModel, record: Any) -> str:
    """``Department #5: HQ — Headquarters``: the model, the id and the object as its latest version reads."""
    return f"{audited.verbose_name} #{getattr(record, audited.model._meta.pk.attname)}: {safe_str(record.instance)}"


def version_of(*, audited: AuditedModel, object_id: Any, organization: Organization, history_id: Any) -> Any | None:
    """One version of one object of the organization (``None`` for another object's or organization's version)."""
    try:
        history_id = int(history_id)
    except (TypeError, ValueError):
        return None
    versions = object_versions(audited=audited, object_id=object_id, organization=organization)
    return versions.filter(history_id=history_id).first()


@dataclass(frozen=True)
class Diff:
    older: Version
    newer: Version
    changes: list[FieldChange]


def diff_versions(*, audited: AuditedModel, first: Any, second: Any, organization: Organization, viewer: User) -> Diff:
    """What changed from the older of two versions of one object to the newer (given in either order)."""
    older, newer = sorted((first, second), key=lambda record: (record.history_date, record.history_id))
    formatter = ValueFormatter(audited, [older, newer], organization=organization, viewer=viewer)
    return Diff(
        older=Version(older, actor(older.history_user_id, older.history_user_subject, formatter.people)),
        newer=Version(newer, actor(newer.history_user_id, newer.history_user_subject, formatter.people)),
        changes=formatter.changes(older, newer),
    )


class ObjectState:
    NOT_YET_CREATED = "not_yet_created"
    EXISTED = "existed"
    SOFT_DELETED = "soft_deleted"
    DELETED = "deleted"

    LABELS = {
        NOT_YET_CREATED: "did not exist yet",
        EXISTED: "existed",
        SOFT_DELETED: "deleted (restorable)",
        DELETED: "deleted",
    }


@dataclass(frozen=True)
class AsOf:
    """An object as it was at ``moment``: its state and the values of the version then in force."""

    moment: datetime
    state: str
    version: Version | None
    values: list[FieldValue]

    @property
    def state_display(self) -> str:
        return ObjectState.LABELS[self.state]


def object_as_of(
    *, audited: AuditedModel, object_id: Any, organization: Organization, viewer: User, moment: datetime
) -> AsOf | None:
    """The object at ``moment``: the latest version recorded at or before it. Before the first version it "did not
    exist yet"; after a hard delete it is "deleted" (the values it had when deleted are shown). ``None`` when the
    object has no version in this organization at all."""
    versions = object_versions(audited=audited, object_id=object_id, organization=organization)
    record = versions.filter(history_date__lte=moment).order_by("-history_date", "-history_id").first()
    if record is None:
        if not versions.exists():
            return None
        return AsOf(moment, ObjectState.NOT_YET_CREATED, None, [])
    formatter = ValueFormatter(audited, [record], organization=organization, viewer=viewer)
    if record.history_type == "-":
        state = ObjectState.DELETED
    elif getattr(record, "deleted_at", None) is not None:
        state = ObjectState.SOFT_DELETED
    else:
        state = ObjectState.EXISTED
    version = Version(record, actor(record.history_user_id, record.history_user_subject, formatter.people))
    return AsOf(moment, state, version, formatter.values(record))


# --- Security events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilters:
    kind: str = ""
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def security_events(*, organization: Organization, filters: EventFilters) -> QuerySet[SecurityEvent]:
    """The organization's security events, newest first (its chain only: never another organization's): what
    happened in it, the account events of its members (sign-ins, failures, lockouts, sign-outs, revoked sessions) and
    the requests refused on its paths, by members and by outsiders."""
    events = SecurityEvent.objects.filter(organization=organization)
    if filters.kind:
        events = events.filter(kind=filters.kind)
    if filters.actor_id is not None:
        events = events.filter(actor_id=filters.actor_id)
    if filters.since is not None:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(occurred_at__lt=filters.until)
    return events.order_by("-occurred_at", "-pk")


@dataclass(frozen=True)
class EventRow:
    event: SecurityEvent
    actor: Person
    target: Person | None


def describe_events(events: Sequence[SecurityEvent], *, organization: Organization, viewer: User) -> list[EventRow]:
    """Events with their actor and target user shown by the visibility rule (one query for all of them)."""
    known = people(
        [user_id for event in events for user_id in (event.actor_id, event.target_user_id)],
        organization=organization,
        viewer=viewer,
    )
    return [
        EventRow(
            event=event,
            actor=actor(event.actor_id, event.actor_subject, known),
            target=known.get(event.target_user_id) if event.target_user_id is not None else None,
        )
        for event in events
    ]


def event_page(
    events: QuerySet[SecurityEvent], *, after: tuple[datetime, int] | None, limit: int
) -> tuple[list[SecurityEvent], tuple[datetime, int] | None]:
    """A page of events (newest first) after a keyset position (occurred at, id), and the next position."""
    if after is not None:
        occurred_at, pk = after
        events = events.filter(Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, pk__lt=pk))
    rows = list(events[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1].occurred_at, rows[-1].pk) if has_more and rows else None)


def organization_people(*, organization: Organization) -> list[Person]:
    """Everyone who may appear as the author of the organization's changes and events, for the "user" filters: who is
    or was a member, and the platform operators (superusers, never members) who changed something or acted there.

    Only superusers are looked up in the history tables — one indexed probe per audited model each, and they are few —
    because nobody else can act in an organization without a membership."""
    operator_acted = Q(Exists(SecurityEvent.objects.filter(organization=organization, actor_id=OuterRef("pk"))))
    for audited in audited_models().values():
        operator_acted |= Q(Exists(audited.versions(organization.pk).filter(history_user_id=OuterRef("pk"))))
    members = Membership.objects.filter(organization=organization).order_by().values("user_id")
    operators = User.objects.filter(operator_acted, is_superuser=True).order_by().values("pk")
    people = User.objects.filter(pk__in=members.union(operators)).order_by("full_name", "email")
    return [Person(user.pk, user_display(user)) for user in people.only("pk", "email", "full_name")]
