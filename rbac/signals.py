"""Cache invalidation only: every change that can alter someone's permissions bumps a version counter."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save

from rbac import engine
from rbac.grants import shareable_models


def _role_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    engine.bump_organization(instance.organization_id)


def _role_permission_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    engine.bump_organization(instance.role.organization_id)


def _role_permissions_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    if action.startswith("post_"):
        # From the permission's side any role may be affected: recompute everything.
        engine.bump_system() if reverse else engine.bump_organization(instance.organization_id)


def _organization_row_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    engine.bump_organization(instance.organization_id)


def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    engine.bump_user(instance.pk)


def _user_groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    if not action.startswith("post_"):
        return
    if reverse:  # group.user_set changed: the users are in pk_set (or every member on clear)
        user_ids = pk_set or set(instance.user_set.values_list("pk", flat=True))
        for user_id in user_ids:
            engine.bump_user(user_id)
    else:
        engine.bump_user(instance.pk)


def _grant_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    engine.bump_organization(instance.content_object.organization_id)


def connect() -> None:
    from organizations.models import Department, Membership
    from rbac.models import Role, RoleAssignment, RolePermission

    for model in (Membership, RoleAssignment, Department):
        post_save.connect(_organization_row_changed, sender=model, dispatch_uid=f"rbac-{model._meta.label}-save")
        post_delete.connect(_organization_row_changed, sender=model, dispatch_uid=f"rbac-{model._meta.label}-delete")
    post_save.connect(_role_changed, sender=Role, dispatch_uid="rbac-role-save")
    post_delete.connect(_role_changed, sender=Role, dispatch_uid="rbac-role-delete")
    post_save.connect(_role_permission_changed, sender=RolePermission, dispatch_uid="rbac-role-permission-save")
    post_delete.connect(_role_permission_changed, sender=RolePermission, dispatch_uid="rbac-role-permission-delete")
    m2m_changed.connect(_role_permissions_changed, sender=Role.permissions.through, dispatch_uid="rbac-role-m2m")
    user_model = get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="rbac-user-save")
    m2m_changed.connect(_user_groups_changed, sender=user_model.groups.through, dispatch_uid="rbac-user-groups")
    for _model, user_grants, group_grants in shareable_models():
        for table in (user_grants, group_grants):
            post_save.connect(_grant_changed, sender=table, dispatch_uid=f"rbac-{table._meta.label}-save")
            post_delete.connect(_grant_changed, sender=table, dispatch_uid=f"rbac-{table._meta.label}-delete")
