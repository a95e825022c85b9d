"""The audit API's shapes: query parameters in, versions, changes and security events out (read-only)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from audit.models import Action, SecurityEventKind
from audit.selectors import ChangeFilters, EventFilters, audited_models

FIELD_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


class PersonSerializer(serializers.Serializer):
    """A person as the viewer may see them; ``id`` is null for the system itself."""

    id = serializers.IntegerField(allow_null=True)
    display = serializers.CharField()


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)
    old_display = serializers.CharField()
    new_display = serializers.CharField()


class VersionSerializer(serializers.Serializer):
    """One recorded version of an object and its field diff against the version before it."""

    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=Action.choices)
    user = PersonSerializer()
    reason = serializers.CharField()
    ip = serializers.IPAddressField(source="record.history_ip", allow_null=True)
    request_id = serializers.CharField(source="record.history_request_id")
    source = serializers.CharField(source="record.history_source")  # type: ignore[assignment]
    changed_fields = serializers.ListField(child=serializers.CharField())
    changes = FieldChangeSerializer(many=True)


class VersionPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VersionSerializer(many=True)


class ChangeSerializer(serializers.Serializer):
    """One version found by the change search."""

    model = serializers.CharField(source="model.label")
    model_name = serializers.CharField(source="model.verbose_name")
    object_id = serializers.CharField()
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=Action.choices)
    user = PersonSerializer()
    reason = serializers.CharField()
    changed_fields = serializers.ListField(child=serializers.CharField())
    ip = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]


class ChangePageSerializer(serializers.Serializer):
    """A page of the change search; ``next`` continues it (the feed is read forward only)."""

    next = serializers.URLField(allow_null=True)
    results = ChangeSerializer(many=True)


class ChangeQuerySerializer(serializers.Serializer):
    """The change search's filters: all optional; ``until`` is exclusive."""

    model = serializers.ChoiceField(
        choices=(), required=False, help_text="An audited model, e.g. organizations.department."
    )
    object_id = serializers.CharField(required=False, max_length=64)
    user = serializers.IntegerField(required=False, min_value=1, help_text="The acting user's id.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    field = serializers.RegexField(FIELD_NAME_PATTERN, required=False, help_text="A field the change touched.")
    action = serializers.ChoiceField(choices=Action.choices, required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(label, label) for label in audited_models()]  # type: ignore[attr-defined]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        if "\x00" in attrs.get("object_id", ""):
            raise serializers.ValidationError({"object_id": ["Not a valid id."]})
        return attrs

    def filters(self) -> ChangeFilters:
        data = self.validated_data
        return ChangeFilters(
            model=data.get("model", ""),
            object_id=data.get("object_id", ""),
            user_id=data.get("user"),
            since=data.get("since"),
            until=data.get("until"),
            field=data.get("field", ""),
            action=data.get("action", ""),
        )


class SecurityEventSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="event.pk")
    occurred_at = serializers.DateTimeField(source="event.occurred_at")
    kind = serializers.ChoiceField(source="event.kind", choices=SecurityEventKind.choices)
    kind_display = serializers.CharField(source="event.get_kind_display")
    actor = PersonSerializer()
    target_user = PersonSerializer(source="target", allow_null=True)
    object_type = serializers.CharField(source="event.object_type")
    object_id = serializers.CharField(source="event.object_id")
    source = serializers.CharField(source="event.source")  # type: ignore[assignment]
    request_id = serializers.CharField(source="event.request_id")
    data = serializers.JSONField(source="event.data")  # type: ignore[assignment]


class SecurityEventQuerySerializer(serializers.Serializer):
    """The security events' filters: all optional; ``until`` is exclusive."""

    kind = serializers.ChoiceField(
        choices=SecurityEventKind.choices,
        required=False,
        error_messages={
            "invalid_choice": '"{input}" is not a valid kind. Valid kinds: '
            + ", ".join(sorted(SecurityEventKind.values))
            + "."
        },
    )
    actor = serializers.IntegerField(required=False, min_value=1, help_text="The acting user's id.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs

    def filters(self) -> EventFilters:
        data = self.validated_data
        return EventFilters(
            kind=data.get("kind", ""), actor_id=data.get("actor"), since=data.get("since"), until=data.get("until")
        )


class SecurityEventPageSerializer(serializers.Serializer):
    """A page of security events; ``next`` continues it (the feed is read forward only)."""

    next = serializers.URLField(allow_null=True)
    results = SecurityEventSerializer(many=True)
