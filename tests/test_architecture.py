"""Architecture rules that keep tenancy from leaking as the project grows.

- every business model of the project's apps belongs to an organization through the shared base;
- every business model keeps history (``history = AuditHistory()``), and versions never copy a password;
- tenant unique constraints and composite indexes start with ``organization``;
- every org-scoped route is served by the tenant base viewset, which subclasses cannot bypass.
"""

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models

from audit.models import AuditedVersion
from erp.api.urls import account_router, tenant_router
from erp.api.viewsets import SEALED_METHODS, OrganizationScopedViewSet
from erp.db.models import OrganizationOwnedModel

PROJECT_APPS = {"accounts", "organizations", "rbac", "audit", "tasks"}
# Rows that are not owned by one organization through the shared base, and why that is legitimate.
PLATFORM_MODELS = {
    "accounts.User": "the people themselves: one account may belong to several organizations",
    "accounts.PasswordHistory": "a person's past password hashes, owned through the account",
    "accounts.UserSession": "a person's signed-in sessions, owned through the account",
    "organizations.Organization": "the tenants themselves",
    "rbac.Role": "organization is nullable on purpose: system roles (organization null) serve every tenant",
    "rbac.RolePermission": "a role's permission list, owned through its role (an organization's or a system role)",
    "organizations.DepartmentUserObjectPermission": "a guardian grant, owned through its department (content_object)",
    "organizations.DepartmentGroupObjectPermission": "a guardian grant, owned through its department (content_object)",
    "tasks.ProjectUserObjectPermission": "a guardian grant, owned through its project (content_object)",
    "tasks.ProjectGroupObjectPermission": "a guardian grant, owned through its project (content_object)",
    "audit.SecurityEvent": "the security log: installation-wide events (sign-ins) belong to no organization",
    "audit.SecurityEventDetail": "the erasable personal part of a security event, owned through its event",
    "audit.SecurityEventChain": "the head of one event chain (one per organization and one installation-wide)",
    "audit.PurgeWindow": "a transient marker inside the retention command's transaction",
}
# Models that keep no history of their own, and why.
UNAUDITED_MODELS = {
    "accounts.PasswordHistory": "password hashes: versions would keep what the history trims and erasure wipes",
    "accounts.UserSession": "an index of the session store; sign-ins, sign-outs and revocations are security events",
    "audit.SecurityEvent": "append-only and hash-chained: it never changes, so it has no versions",
    "audit.SecurityEventDetail": "personal data that erasure blanks; versions would keep what erasure removes",
    "audit.SecurityEventChain": "bookkeeping of the event chains, rebuilt from the events by verify_audit_chain",
    "audit.PurgeWindow": "exists only inside one transaction",
}
ACCOUNT_LEVEL_VIEWSETS = {"OrganizationViewSet"}


def is_version(model: type[models.Model]) -> bool:
    return isinstance(model, type) and issubclass(model, AuditedVersion)


def project_models() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in PROJECT_APPS and not model._meta.auto_created and not is_version(model)
    ]


def tenant_models() -> list[type[models.Model]]:
    return [model for model in project_models() if issubclass(model, OrganizationOwnedModel)]


def test_project_apps_are_installed():
    assert {config.label for config in apps.get_app_configs()} >= PROJECT_APPS
    assert set(settings.INSTALLED_APPS) >= PROJECT_APPS


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_every_business_model_is_owned_by_an_organization(model):
    if model._meta.label in PLATFORM_MODELS:
        return
    assert issubclass(model, OrganizationOwnedModel), f"{model._meta.label} must subclass OrganizationOwnedModel"
    field = model._meta.get_field("organization")
    assert field.null is False
    assert field.remote_field.on_delete is models.PROTECT


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_every_business_model_keeps_history(model):
    if model._meta.label in UNAUDITED_MODELS:
        return
    attribute = getattr(model._meta, "simple_history_manager_attribute", None)
    assert attribute is not None, f"{model._meta.label} must declare history = AuditHistory()"
    history_model = getattr(model, attribute).model
    assert issubclass(history_model, AuditedVersion), f"{model._meta.label} must use AuditHistory"
    assert "password" not in {field.name for field in history_model._meta.fields}


def test_versions_hand_out_no_permissions():
    # versions are read through audit.view_history, never through per-model permissions of the history tables
    versions = [model for model in apps.get_models() if is_version(model)]
    assert versions
    assert all(model._meta.default_permissions == () for model in versions)


@pytest.mark.parametrize("model", tenant_models(), ids=lambda model: model._meta.label)
def test_tenant_constraints_and_indexes_start_with_organization(model):
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert constraint.fields[:1] == ("organization",), f"{constraint.name} must start with organization"
    for index in model._meta.indexes:
        assert index.fields[:1] == ["organization"], f"{index.name} must start with organization"


@pytest.mark.parametrize(
    ("prefix", "viewset"),
    [(prefix, viewset) for prefix, viewset, _basename in tenant_router.registry],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_org_scoped_route_uses_the_tenant_base(prefix, viewset):
    assert issubclass(viewset, OrganizationScopedViewSet), f"{prefix}/ must be served by OrganizationScopedViewSet"


@pytest.mark.parametrize(
    ("prefix", "viewset"),
    [(prefix, viewset) for prefix, viewset, _basename in tenant_router.registry],
    ids=lambda value: value if isinstance(value, str) else value.__name__,
)
def test_every_org_scoped_route_runs_the_enforcing_methods_of_the_tenant_base(prefix, viewset):
    # a base class listed before the tenant base (DRF's mixins, say) would shadow its checks without overriding them
    shadowed = [
        name for name in SEALED_METHODS if getattr(viewset, name) is not getattr(OrganizationScopedViewSet, name)
    ]
    assert shadowed == [], f"{prefix}/ does not run OrganizationScopedViewSet.{shadowed}"


def test_account_level_routes_are_the_known_ones():
    assert {viewset.__name__ for _prefix, viewset, _basename in account_router.registry} == ACCOUNT_LEVEL_VIEWSETS


@pytest.mark.parametrize("method", SEALED_METHODS)
def test_the_tenant_base_cannot_be_bypassed(method):
    with pytest.raises(TypeError, match=f"overrides {method}"):
        type("LeakyViewSet", (OrganizationScopedViewSet,), {method: lambda self: None})
