"""Helpers every app's services share."""

from __future__ import annotations

from typing import Any


def assign_fields(instance: Any, data: dict[str, Any], allowed: set[str]) -> None:
    """Set ``data`` on ``instance``; a field outside ``allowed`` is a programming error, never silently dropped."""
    unknown = set(data) - allowed
    if unknown:
        raise TypeError(f"Cannot set {', '.join(sorted(unknown))} on {type(instance).__name__}.")
    for field, value in data.items():
        setattr(instance, field, value)
