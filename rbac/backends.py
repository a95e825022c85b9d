"""Django authentication backend answering ``user.has_perm`` through the role engine.

``has_perm("app.action_model", obj)`` answers for one object of an organization (role permissions, department scope,
object grants); ``has_perm("app.action_model")`` without an object answers "in at least one organization", which is
what the admin needs for its menus. Django's ``ModelBackend`` still authenticates passwords; its own permission tables
(user and group permissions) grant nothing in this project. Locked accounts and addresses are refused before this
backend is asked (django-axes' backend comes first; see ``accounts.signin_limits``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from rbac import engine


class RoleBackend(ModelBackend):
    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return engine.has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        if not getattr(user_obj, "is_active", False):
            return False
        if user_obj.is_superuser:
            return True
        return any(
            permission.startswith(f"{app_label}.")
            for organization_id in engine.member_organization_ids(user_obj)
            for permission, scope in engine.effective_permissions(user_obj, organization_id).scopes.items()
            if not scope.is_empty
        )

    def get_user_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()
