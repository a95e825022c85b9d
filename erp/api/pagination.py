"""Cursor pagination with a hard page-size cap: no OFFSET scans and no COUNT(*) on large tables."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce
from rest_framework import exceptions, pagination
from rest_framework.request import Request
from rest_framework.settings import api_settings

# What a NULL counts as when a list is ordered by a nullable field: after every value (a task without a due date comes
# after all dated ones), so that the cursor's position is always a real value.
NULL_LAST: dict[type[models.Field[Any, Any]], Any] = {
    models.DateTimeField: datetime.datetime.max.replace(tzinfo=datetime.UTC),
    models.DateField: datetime.date.max,
    models.DecimalField: Decimal("1e15"),
    models.IntegerField: 2**62,
}
CURSOR_KEY = "cursor_key_"


def _null_last(field: models.Field[Any, Any]) -> Any:
    for field_type, value in NULL_LAST.items():
        if isinstance(field, field_type):
            return value
    return None


class CursorPagination(pagination.CursorPagination):
    """Pages of ``page_size`` rows (1 to ``API_MAX_PAGE_SIZE``), ordered by a stable key; a bad value is a 400.

    A cursor holds the first ordering field's value, which must never be NULL: a list ordered by a nullable date or
    number is ordered by that value with NULL taken as the greatest value (an annotation ``cursor_key_<name>``).
    """

    ordering = "-pk"
    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return int(settings.API_MAX_PAGE_SIZE)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(self.page_size or api_settings.PAGE_SIZE or 50)
        # isdigit() alone also accepts characters such as "²" that int() cannot read (that was a 500).
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        """The requested ordering plus the primary key as a tie-breaker.

        The cursor keeps a position in the first ordering field and an offset among rows that share it; that offset
        only means something if rows with equal values come back in the same order on every page, so without a unique
        last key (``?ordering=name`` over equal names) pages would repeat some rows and skip others.
        """
        ordering = tuple(super().get_ordering(request, queryset, view))
        if not any(field.lstrip("-") in ("pk", "id") for field in ordering):
            ordering = (*ordering, "-pk" if ordering[0].startswith("-") else "pk")
        first = ordering[0].lstrip("-")
        if self._nullable_field(queryset.model, first) is not None:
            ordering = (ordering[0].replace(first, CURSOR_KEY + first), *ordering[1:])
        return ordering

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any] | None:
        self.model = queryset.model  # decode_cursor checks the cursor's position against the ordering field
        first = self.get_ordering(request, queryset, view)[0].lstrip("-")
        if first.startswith(CURSOR_KEY):
            name = first.removeprefix(CURSOR_KEY)
            field = self._nullable_field(queryset.model, name)
            assert field is not None  # get_ordering only renames nullable fields
            queryset = queryset.annotate(**{first: Coalesce(F(name), Value(_null_last(field)), output_field=field)})
        return super().paginate_queryset(queryset, request, view)

    @staticmethod
    def _nullable_field(model: type[models.Model], name: str) -> models.Field[Any, Any] | None:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if isinstance(field, models.Field) and field.null and _null_last(field) is not None:
            return field
        return None

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound as error:
            raise self._invalid_cursor() from error
        if cursor is not None and cursor.position is not None and not self._is_valid_position(cursor.position):
            raise self._invalid_cursor()
        return cursor

    def _is_valid_position(self, position: Any) -> bool:
        """Whether the position can be compared with the first ordering field. A cursor taken from a list in another
        order (a name where a depth is expected) or a forged one would otherwise fail in the database: a 500."""
        if "\x00" in str(position):
            return False
        name = self.ordering[0].lstrip("-").removeprefix(CURSOR_KEY)
        model = getattr(self, "model", None)
        if model is None:
            return True
        try:
            field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        except FieldDoesNotExist:
            return True  # an annotation: nothing to check it against
        try:
            field.get_prep_value(field.to_python(position))
        except (DjangoValidationError, TypeError, ValueError):
            return False
        return True

    def _invalid_cursor(self) -> exceptions.ValidationError:
        return exceptions.ValidationError({self.cursor_query_param: ["This cursor is not valid."]})
