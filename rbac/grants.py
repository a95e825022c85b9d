"""Object grants: django-guardian with direct foreign-key tables for every model that can be shared.

A model is shareable when it has a user and a group object-permission table (subclasses of guardian's
``UserObjectPermissionBase`` / ``GroupObjectPermissionBase`` with a ``content_object`` foreign key to it). A grant
counts only while the grantee is an active member of the object's organization (the engine checks membership).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.apps import apps
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


@cache
def shareable_models() -> tuple[tuple[type[models.Model], type[Any], type[Any]], ...]:
    """(model, user grant table, group grant table) for every shareable model."""
    user_tables: dict[type[models.Model], type[Any]] = {}
    group_tables: dict[type[models.Model], type[Any]] = {}
    for table in apps.get_models():
        if table._meta.abstract or not hasattr(table, "content_object"):
            continue
        target = getattr(table._meta.get_field("content_object"), "related_model", None)
        if target is None:  # guardian's generic tables (a generic foreign key): not used by this project
            continue
        if issubclass(table, UserObjectPermissionBase):
            user_tables[target] = table
        elif issubclass(table, GroupObjectPermissionBase):
            group_tables[target] = table
    return tuple(
        (model, user_tables[model], group_tables[model])
        for model in sorted(user_tables, key=lambda model: model._meta.label)
        if model in group_tables
    )


def grant_models_for(model: type[models.Model]) -> tuple[type[Any], type[Any]] | None:
    for shared, user_table, group_table in shareable_models():
        if shared is model:
            return user_table, group_table
    return None
