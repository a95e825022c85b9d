"""The cross-organization matrix, generated from the router: every method of every org-scoped route.

For each route registered on ``tenant_router`` (so every future app's routes are covered without writing a test):
- a member (even an administrator) of organization B asking for organization A's path or objects gets 404;
- a member of B naming A's object under B's own path gets 404 (another organization's id reads as missing);
- a signed-in user who belongs to no organization gets 404;
- a member of A who may read but not change (the ``viewer`` role) gets 403 on every write;
and in every case the database is unchanged. A model served by a route must have an entry in ``OBJECT_FACTORIES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.db import models
from rest_framework.test import APIClient

from audit.events import record_event
from audit.models import SecurityEvent, SecurityEventKind
from erp.api.urls import tenant_router
from organizations.models import Department, Invitation, Membership, Organization
from rbac.models import Role, RoleAssignment
from tasks.models import Comment, Project, Task, TimeEntry
from tests.accounts.factories import UserFactory
from tests.organizations.factories import (
    DepartmentFactory,
    InvitationFactory,
    MembershipFactory,
    OrganizationFactory,
)
from tests.rbac.factories import RoleFactory, system_role
from tests.tasks.factories import CommentFactory, ProjectFactory, TaskFactory, TimeEntryFactory

SAFE_METHODS = {"get", "head", "options"}

# How to make one object of each routed model inside an organization.
OBJECT_FACTORIES: dict[type[models.Model], Callable[[Organization], Any]] = {
    Department: lambda organization: DepartmentFactory(organization=organization, code="TARGET"),
    Membership: lambda organization: MembershipFactory(organization=organization, role="member"),
    Invitation: lambda organization: InvitationFactory(organization=organization),
    Role: lambda organization: RoleFactory(organization=organization, permissions=["organizations.view_department"]),
    RoleAssignment: lambda organization: RoleAssignment.objects.create(
        organization=organization,
        user=MembershipFactory(organization=organization).user,
        role=system_role("viewer"),
    ),
    # The audit feeds' gate model (their rows come from the history tables and the event log).
    SecurityEvent: lambda organization: record_event(SecurityEventKind.DATA_EXPORTED, organization=organization),
    Project: lambda organization: ProjectFactory(organization=organization, code="TARGET"),
    Task: lambda organization: TaskFactory(organization=organization),
    Comment: lambda organization: CommentFactory(task=TaskFactory(organization=organization)),
    TimeEntry: lambda organization: TimeEntryFactory(task=TaskFactory(organization=organization)),
}


def routes() -> list[tuple[str, str, bool, type[Any]]]:
    """(URL pattern with {lookup}, HTTP method, is detail, viewset) for every method of every tenant route."""
    found = []
    for prefix, viewset, _basename in tenant_router.registry:
        for route in tenant_router.get_routes(viewset):
            methods = [method for method, action in route.mapping.items() if hasattr(viewset, action)]
            url = route.url.replace("{prefix}", prefix).replace("{trailing_slash}", "/")
            url = re.sub(r"\{lookup\}", "{pk}", url).lstrip("^").rstrip("$")
            for method in methods:
                found.append((url, method, route.detail, viewset))
    return found


ROUTES = routes()
ROUTE_IDS = [f"{method.upper()} {url}" for url, method, _detail, _viewset in ROUTES]


def database_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of every project table: what a refused call must leave exactly as it was."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label in {"accounts", "organizations", "rbac", "auth", "guardian", "tasks"}:
            manager = getattr(model, "all_objects", model._base_manager)
            state[model._meta.label] = list(manager.order_by("pk").values())
    return state


def request(client: APIClient, method: str, url: str) -> Any:
    return (
        getattr(client, method)(url, {}, format="json") if method not in SAFE_METHODS else getattr(client, method)(url)
    )


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def world(db):
    """Organizations A and B, each with one object of every routed model, and people in each."""
    acme, globex = OrganizationFactory(slug="acme", code="ACME"), OrganizationFactory(slug="globex", code="GLOBEX")
    objects = {
        organization.slug: {model: factory(organization) for model, factory in OBJECT_FACTORIES.items()}
        for organization in (acme, globex)
    }
    return {
        "acme": acme,
        "globex": globex,
        "objects": objects,
        "globex_admin": MembershipFactory(organization=globex, role="org_admin").user,
        "acme_viewer": MembershipFactory(organization=acme, role="viewer").user,
        "nobody": UserFactory(),
    }


def url_for(pattern: str, slug: str, obj: models.Model | None) -> str:
    path = "/api/v1/organizations/" + slug + "/" + pattern
    return path.replace("{pk}", str(obj.pk)) if obj is not None else path


def target(world: dict[str, Any], slug: str, viewset: type[Any]) -> models.Model:
    return world["objects"][slug][viewset.queryset.model]


def test_every_routed_model_has_an_object_factory():
    routed = {viewset.queryset.model for _url, _method, _detail, viewset in ROUTES}
    assert routed <= set(OBJECT_FACTORIES), f"add OBJECT_FACTORIES entries for {routed - set(OBJECT_FACTORIES)}"


def test_the_matrix_covers_every_method_of_every_tenant_route():
    assert len(ROUTES) >= len(tenant_router.registry) * 2
    assert {method for _url, method, _detail, _viewset in ROUTES} >= {"get", "post", "put", "patch", "delete"}


@pytest.mark.parametrize(("pattern", "method", "detail", "viewset"), ROUTES, ids=ROUTE_IDS)
def test_a_member_of_another_organization_gets_404_and_changes_nothing(world, pattern, method, detail, viewset):
    # given: an administrator of globex, and acme's object
    before = database_state()
    obj = target(world, "acme", viewset) if detail else None
    # when: they use acme's path
    response = request(client_for(world["globex_admin"]), method, url_for(pattern, "acme", obj))
    # then
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert database_state() == before


@pytest.mark.parametrize(
    ("pattern", "method", "detail", "viewset"),
    [route for route in ROUTES if route[2]],
    ids=[route_id for route_id, route in zip(ROUTE_IDS, ROUTES, strict=True) if route[2]],
)
def test_another_organizations_id_under_ones_own_path_is_not_found(world, pattern, method, detail, viewset):
    # given: an administrator of globex naming acme's object under globex's path
    before = database_state()
    response = request(
        client_for(world["globex_admin"]), method, url_for(pattern, "globex", target(world, "acme", viewset))
    )
    # then
    assert response.status_code == 404, response.content
    assert database_state() == before


@pytest.mark.parametrize(("pattern", "method", "detail", "viewset"), ROUTES, ids=ROUTE_IDS)
def test_someone_who_belongs_nowhere_gets_404(world, pattern, method, detail, viewset):
    before = database_state()
    obj = target(world, "acme", viewset) if detail else None
    response = request(client_for(world["nobody"]), method, url_for(pattern, "acme", obj))
    assert response.status_code == 404, response.content
    assert database_state() == before


@pytest.mark.parametrize(
    ("pattern", "method", "detail", "viewset"),
    [route for route in ROUTES if route[1] not in SAFE_METHODS],
    ids=[route_id for route_id, route in zip(ROUTE_IDS, ROUTES, strict=True) if route[1] not in SAFE_METHODS],
)
def test_a_member_without_the_permission_gets_403_on_writes_and_changes_nothing(
    world, pattern, method, detail, viewset
):
    # given: a viewer of acme (reads everything, changes nothing)
    before = database_state()
    obj = target(world, "acme", viewset) if detail else None
    # when
    response = request(client_for(world["acme_viewer"]), method, url_for(pattern, "acme", obj))
    # then
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert database_state() == before


@pytest.mark.parametrize(("pattern", "method", "detail", "viewset"), ROUTES, ids=ROUTE_IDS)
def test_anonymous_callers_are_asked_to_sign_in(world, pattern, method, detail, viewset):
    before = database_state()
    obj = target(world, "acme", viewset) if detail else None
    response = request(APIClient(), method, url_for(pattern, "acme", obj))
    assert response.status_code == 401
    assert database_state() == before
