"""Object grants: django-guardian with direct foreign-key tables for every model that can be shared.

A model is shareable when it has a user and a group object-permission table (subclasses of guardian's
``UserObjectPermissionBase`` / ``GroupObjectPermissionBase`` with a ``content_object`` foreign key to it). A grant
counts only while the grantee is an active member of the object's organization (the engine checks membership).

A grant can also reach rows below the shared object: a model declares ``grants_through = ReachedThrough(lookup,
actions)``, naming the path to its shared parent and, for each of its own actions that such a grant reaches, the action
on the parent that gives it. The engine then answers ``has_perm`` and ``visible`` with those grants counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
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


@dataclass(frozen=True)
class ReachedThrough:
    """Declared on a model as ``grants_through``: grants on the object at ``lookup`` (a shareable model) reach its rows.

    ``actions`` maps an action on the model to the action on the parent whose grant gives it: ``{"view": "view",
    "add": "change"}`` on comments, with ``lookup="task__project"``, lets whoever was granted ``view_project`` read the
    comments on the project's tasks, and whoever was granted ``change_project`` comment on them.
    """

    lookup: str
    actions: Mapping[str, str]


@dataclass(frozen=True)
class ParentReach:
    """How a grant on a parent reaches one permission of a model."""

    model: type[models.Model]
    lookup: str  # from the model to the parent, e.g. ``task__project``
    parent: type[models.Model]
    parent_permission: str  # the parent's permission whose grants count, e.g. ``tasks.change_project``
    path: tuple[type[models.Model], ...]  # the model and the models the lookup passes through, e.g. (Comment, Task)

    def parent_id_of(self, obj: models.Model) -> int | None:
        """The id of the parent above ``obj``: an instance of the model, or of a model on the way to the parent (the
        permission to add a comment is asked of the task it would go on)."""
        hops = self.lookup.split("__")
        start = next((index for index, model in enumerate(self.path) if isinstance(obj, model)), None)
        if start is None:
            return None
        *through, last = hops[start:]
        value: Any = obj
        for hop in through:
            value = getattr(value, hop, None)
            if value is None:
                return None
        return getattr(value, f"{last}_id", None)


def related_path(model: type[models.Model], lookup: str) -> tuple[type[models.Model], ...]:
    """The models a lookup of foreign keys passes through, from ``model`` to the last one included."""
    path: list[Any] = [model]
    for hop in lookup.split("__"):
        target = path[-1]._meta.get_field(hop).related_model
        if target is None:
            raise ImproperlyConfigured(f"{model.__name__}: {lookup!r} does not follow foreign keys.")
        path.append(target)
    return tuple(path)


@cache
def parent_reach() -> dict[str, ParentReach]:
    """Each permission (``app_label.codename``) that grants on a parent reach, with how they reach it."""
    reach: dict[str, ParentReach] = {}
    for model in apps.get_models():
        declared: ReachedThrough | None = getattr(model, "grants_through", None)
        if declared is None:
            continue
        *path, parent = related_path(model, declared.lookup)
        if grant_models_for(parent) is None:
            raise ImproperlyConfigured(f"{model.__name__}.grants_through: {parent.__name__} cannot be shared.")
        for action, parent_action in declared.actions.items():
            reach[_permission(model, action)] = ParentReach(
                model=model,
                lookup=declared.lookup,
                parent=parent,
                parent_permission=_permission(parent, parent_action),
                path=tuple(path),
            )
    return reach


def _permission(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"
