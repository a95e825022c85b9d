"""Architecture rules that keep tenancy from leaking as the project grows.

- every business model of the project's apps belongs to an organization through the shared base;
- tenant unique constraints and composite indexes start with ``organization``;
- every org-scoped route is served by the tenant base viewset, which subclasses cannot bypass.
"""

import pytest
from django.apps import apps
from django.conf import settings
from django.db import models

from erp.api.urls import account_router, tenant_router
from erp.api.viewsets import SEALED_METHODS, OrganizationScopedViewSet
from erp.db.models import OrganizationOwnedModel

PROJECT_APPS = {"accounts", "organizations", "rbac"}
# Rows that are not owned by one organization through the shared base, and why that is legitimate.
PLATFORM_MODELS = {
    "accounts.User": "the people themselves: one account may belong to several organizations",
    "organizations.Organization": "the tenants themselves",
    "rbac.Role": "organization is nullable on purpose: system roles (organization null) serve every tenant",
    "rbac.RolePermission": "a role's permission list, owned through its role (an organization's or a system role)",
    "organizations.DepartmentUserObjectPermission": "a guardian grant, owned through its department (content_object)",
    "organizations.DepartmentGroupObjectPermission": "a guardian grant, owned through its department (content_object)",
}
ACCOUNT_LEVEL_VIEWSETS = {"OrganizationViewSet"}


def project_models() -> list[type[models.Model]]:
    return [
        model for model in apps.get_models() if model._meta.app_label in PROJECT_APPS and not model._meta.auto_created
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
