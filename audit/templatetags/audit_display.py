"""Template filters that show recorded data to a person (never as Python would print it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from audit.history import display_details

register = template.Library()


@register.filter
def details(data: Any) -> str:
    """A security event's details as ``key: value; …`` text (``department: —``, not ``department: None``)."""
    if isinstance(data, Mapping):
        return display_details(data)
    return "" if data is None else str(data)
