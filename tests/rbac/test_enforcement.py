"""The tenant base viewset enforces the engine: 404 for the invisible, 403 for the forbidden, re-checks after saving."""

import pytest
from guardian.shortcuts import assign_perm

from organizations.models import Department
from tests.api_helpers import detail_url
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, system_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/organizations/acme/departments/"


@pytest.fixture
def finance_manager(organization, tree):
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])
    return user


def rows():
    return list(Department.all_objects.order_by("pk").values())


def test_a_scoped_manager_lists_only_their_subtree(client_for, finance_manager):
    response = client_for(finance_manager).get(URL)
    assert sorted(row["code"] for row in response.json()["results"]) == ["AP", "FIN"]


def test_an_invisible_object_is_404_and_a_visible_unchangeable_one_is_403(client_for, organization, tree):
    viewer = MembershipFactory(organization=organization).user
    assign_perm("organizations.view_department", viewer, tree["ENG"])
    client = client_for(viewer)
    before = rows()
    assert client.get(detail_url(URL, tree["HQ"])).status_code == 404
    assert client.patch(detail_url(URL, tree["HQ"]), {"name": "X"}, format="json").status_code == 404
    response = client.patch(detail_url(URL, tree["ENG"]), {"name": "X"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert rows() == before


def test_a_move_out_of_the_writable_scope_is_refused_and_rolled_back(client_for, finance_manager, tree):
    # given: AP is inside the manager's FIN subtree; ENG is outside it
    before = rows()
    # when: the manager moves AP under ENG
    response = client_for(finance_manager).patch(detail_url(URL, tree["AP"]), {"parent": tree["ENG"].pk}, format="json")
    # then: ENG is not visible to them, so it cannot be named
    assert response.status_code == 400
    assert rows() == before


def test_a_move_under_a_department_one_may_only_see_is_refused(client_for, organization, tree):
    # given: a manager of FIN who can also see (not change) ENG through a grant
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])
    assign_perm("organizations.view_department", user, tree["ENG"])
    before = rows()
    # when: they move AP (theirs) under ENG (visible to them, outside their scope)
    response = client_for(user).patch(detail_url(URL, tree["AP"]), {"parent": tree["ENG"].pk}, format="json")
    # then: ENG is not theirs to change, so nothing may be moved under it; nothing changed
    assert response.status_code == 403
    assert (
        response.json()["error"]["message"]
        == "You may not change department ENG, so you cannot move departments there or away from it."
    )
    assert rows() == before


def test_a_create_outside_the_scope_is_refused_and_rolled_back(client_for, finance_manager, tree):
    before = rows()
    response = client_for(finance_manager).post(URL, {"code": "ROOT2", "name": "Another root"}, format="json")
    assert response.status_code == 403
    assert rows() == before


def test_a_create_inside_the_scope_is_allowed(client_for, finance_manager, tree):
    response = client_for(finance_manager).post(
        URL, {"code": "AR", "name": "Receivables", "parent": tree["FIN"].pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Department.objects.get(code="AR").path == "HQ/FIN/AR/"


def test_superusers_reach_every_organization(client_for, superuser, tree):
    response = client_for(superuser).get(URL)
    assert sorted(row["code"] for row in response.json()["results"]) == ["AP", "ENG", "FIN", "HQ"]


def test_permissions_computed_inside_a_refused_write_are_not_reused(client_for, organization, tree):
    # given: the FIN manager who may see ENG; a refused move computes permissions after the (undone) change
    user = MembershipFactory(organization=organization).user
    RoleAssignmentFactory(organization=organization, user=user, role=system_role("manager"), department=tree["FIN"])
    assign_perm("organizations.view_department", user, tree["ENG"])
    client = client_for(user)
    assert client.patch(detail_url(URL, tree["AP"]), {"parent": tree["ENG"].pk}, format="json").status_code == 403
    # when: the next request asks about AP, which is still under FIN
    response = client.get(detail_url(URL, tree["AP"]))
    # then
    assert response.status_code == 200
    assert response.json()["path"] == "HQ/FIN/AP/"


@pytest.mark.parametrize(
    ("moved", "new_parent", "message"),
    [
        ("FIN", None, "You may not change department HQ, so you cannot move departments there or away from it."),
        (
            "AP",
            None,
            "You may not change the top level of the tree, so you cannot move departments there or away from it.",
        ),
    ],
    ids=["own-scope-root-to-top", "inside-scope-to-top"],
)
def test_a_scoped_manager_cannot_move_departments_across_the_edge_of_their_scope(
    client_for, finance_manager, tree, moved, new_parent, message
):
    # given: bob manages FIN and below; HQ (FIN's parent) and the top level are not his
    before = rows()
    # when
    response = client_for(finance_manager).patch(detail_url(URL, tree[moved]), {"parent": new_parent}, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["message"] == message
    assert rows() == before


def test_an_organization_wide_administrator_may_move_a_subtree_to_the_top(client_for, admin_member, tree):
    response = client_for(admin_member).patch(detail_url(URL, tree["FIN"]), {"parent": None}, format="json")
    assert response.status_code == 200
    assert response.json()["path"] == "FIN/"
