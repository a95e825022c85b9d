"""Filtering: django-filter, strict about parameter names so that a typo is a 400 rather than a silent full list."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db import models
from django.db.models import QuerySet
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, serializers
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

# Query parameters that belong to pagination, search, ordering and rendering rather than to a filterset.
GENERAL_PARAMETERS = {"cursor", "page_size", "search", "ordering", "format"}


class StrictDjangoFilterBackend(DjangoFilterBackend):
    """Rejects query parameters that neither the view's filterset nor the other list features understand."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        if getattr(view, "action", None) == "list" or getattr(view, "strict_query_parameters", False):
            allowed = set(GENERAL_PARAMETERS) | set(getattr(view, "extra_query_parameters", ()))
            filterset_class = self.get_filterset_class(view, queryset)
            if filterset_class is not None:
                allowed |= set(filterset_class.base_filters)
            unknown = sorted(set(request.query_params) - allowed)
            if unknown:
                raise exceptions.ValidationError(
                    {name: [f"Unknown query parameter. Allowed: {', '.join(sorted(allowed))}."] for name in unknown}
                )
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(OrderingFilter):
    """Ordering on the fields a view declares; anything else is a 400 instead of being ignored."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = [param.strip() for param in params.split(",") if param.strip()]
            valid = {name for name, _label in self.get_valid_fields(queryset, view, {"request": request})}
            invalid = [field for field in fields if field.lstrip("-") not in valid]
            if invalid or not fields:
                raise exceptions.ValidationError(
                    {
                        self.ordering_param: [
                            f"Cannot order by {', '.join(invalid) or params!r}. Allowed: {', '.join(sorted(valid))}."
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)


class StrictBooleanFormField(forms.Field):
    """A yes/no query value. Unlike Django's NullBooleanField (which reads ``maybe`` or ``1`` as "no filter" and so
    returns the whole list), anything but an empty value or one of the words the API's booleans accept is an error."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value in serializers.BooleanField.TRUE_VALUES:
            return True
        if value in serializers.BooleanField.FALSE_VALUES:
            return False
        raise forms.ValidationError("Must be a valid boolean.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number: ``1.5`` is an error instead of being truncated to 1 by the database field."""

    field_class = forms.IntegerField


_INTEGER_MODEL_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.IntegerField,
    models.SmallIntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
)


class FilterSet(django_filters.FilterSet):
    """The API's filterset base: filters generated from model fields reject values they cannot read."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
        **{field: {"filter_class": IntegerFilter} for field in _INTEGER_MODEL_FIELDS},
    }
