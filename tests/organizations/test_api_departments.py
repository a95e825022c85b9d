"""/api/v1/organizations/{slug}/departments/: the department tree of one organization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from organizations.models import Department, Membership, Organization
from tests.api_helpers import (
    NOT_AUTHENTICATED,
    NOT_FOUND,
    department_rows,
    detail_url,
    error,
    invalid,
    iso,
    lacks_permission,
    membership_body,
    page,
)
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory

URL = "/api/v1/organizations/acme/departments/"
TREE_URL = f"{URL}tree/"


def members_url(department: Department | int) -> str:
    return f"{detail_url(URL, department)}members/"


def department_body(department: Department) -> dict[str, Any]:
    department.refresh_from_db()
    return {
        "id": department.pk,
        "code": department.code,
        "name": department.name,
        "parent": department.parent_id,
        "path": department.path,
        "depth": department.depth,
        "manager": department.manager_id,
        "headcount_limit": department.headcount_limit,
        "display_order": department.display_order,
        "created_at": iso(department.created_at),
        "updated_at": iso(department.updated_at),
    }


def paths() -> dict[str, tuple[str, int]]:
    """Code → (path, depth) of acme's live departments."""
    return {
        department.code: (department.path, department.depth)
        for department in Department.objects.filter(organization__slug="acme")
    }


NOT_UNDER_ITSELF = "A department cannot be placed under itself or one of its sub-departments."

ACTIONS: dict[str, Callable[[APIClient, Department], Any]] = {
    "list": lambda client, department: client.get(URL),
    "retrieve": lambda client, department: client.get(detail_url(URL, department)),
    "create": lambda client, department: client.post(URL, {"code": "NEW", "name": "New"}, format="json"),
    "update": lambda client, department: client.put(
        detail_url(URL, department), {"code": "NEW", "name": "New"}, format="json"
    ),
    "partial_update": lambda client, department: client.patch(
        detail_url(URL, department), {"name": "Renamed"}, format="json"
    ),
    "destroy": lambda client, department: client.delete(detail_url(URL, department)),
    "tree": lambda client, department: client.get(TREE_URL),
    "members": lambda client, department: client.get(members_url(department)),
}
WRITE_ACTIONS = ["create", "update", "partial_update", "destroy"]
# What a member without write permissions is told: creating needs the permission somewhere in the organization,
# changing or deleting needs it on the department named in the URL.
WRITE_REFUSALS = {
    "create": lacks_permission("organizations.add_department"),
    "update": lacks_permission("organizations.change_department", on_object=True),
    "partial_update": lacks_permission("organizations.change_department", on_object=True),
    "destroy": lacks_permission("organizations.delete_department", on_object=True),
}
DETAIL_ACTIONS = ["retrieve", "update", "partial_update", "destroy", "members"]


@pytest.fixture
def other_admin(other_organization) -> User:
    """An administrator of globex: admin rights never reach another organization."""
    return MembershipFactory(organization=other_organization, role="org_admin").user


@pytest.fixture
def former_member(organization) -> User:
    return MembershipFactory(organization=organization, is_active=False, left_on=timezone.localdate()).user


@pytest.fixture
def tree(organization, department, other_organization) -> dict[str, Department]:
    """acme: HQ > (FIN, SALES > EU, SALESX), OPS, a deleted HQ/OLD; globex: HQ > SALES."""
    fin = DepartmentFactory(organization=organization, parent=department, code="FIN", name="Finance", display_order=1)
    sales = DepartmentFactory(organization=organization, parent=department, code="SALES", name="Sales", display_order=2)
    salesx = DepartmentFactory(
        organization=organization, parent=department, code="SALESX", name="Sales X", display_order=3
    )
    eu = DepartmentFactory(organization=organization, parent=sales, code="EU", name="Europe")
    ops = DepartmentFactory(organization=organization, code="OPS", name="Operations")
    old = DepartmentFactory(organization=organization, parent=department, code="OLD", name="Old")
    old.mark_deleted(actor=None)
    globex_hq = DepartmentFactory(organization=other_organization, code="HQ", name="Globex HQ")
    globex_sales = DepartmentFactory(
        organization=other_organization, parent=globex_hq, code="SALES", name="Globex Sales"
    )
    return {
        "HQ": department,
        "FIN": fin,
        "SALES": sales,
        "SALESX": salesx,
        "EU": eu,
        "OPS": ops,
        "OLD": old,
        "globex HQ": globex_hq,
        "globex SALES": globex_sales,
    }


# --- who may enter ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(ACTIONS))
def test_anonymous_gets_401_and_nothing_changes(client_for, department, action):
    before = department_rows()

    response = ACTIONS[action](client_for(None), department)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Session realm="api"'
    assert department_rows() == before


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("who", ["outsider", "other_admin", "user", "former_member", "staff_admin_elsewhere"])
def test_non_members_get_404_everywhere_and_nothing_changes(request, client_for, department, who, action):
    # given: someone who is no active member of acme (the last one is a back-office user administering another org)
    if who == "staff_admin_elsewhere":
        actor = MembershipFactory(organization=OrganizationFactory(), role="org_admin", user__is_staff=True).user
    else:
        actor = request.getfixturevalue(who)
    before = department_rows()

    # when
    response = ACTIONS[action](client_for(actor), department)

    # then
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert department_rows() == before


@pytest.mark.parametrize("action", ["list", "retrieve", "tree", "partial_update"])
def test_members_of_an_inactive_organization_get_404(client_for, admin_member, department, action):
    Organization.objects.filter(slug="acme").update(is_active=False)
    before = department_rows()

    response = ACTIONS[action](client_for(admin_member), department)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert department_rows() == before


@pytest.mark.parametrize("action", DETAIL_ACTIONS)
def test_another_organizations_department_is_not_found_through_this_organization(
    client_for, admin_member, tree, action
):
    # given: acme's admin names globex's department by id under acme's URL
    before = department_rows()

    response = ACTIONS[action](client_for(admin_member), tree["globex HQ"])

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert department_rows() == before


@pytest.mark.parametrize("action", DETAIL_ACTIONS)
def test_deleted_department_is_not_found(client_for, admin_member, tree, action):
    before = department_rows()

    response = ACTIONS[action](client_for(admin_member), tree["OLD"])

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert department_rows() == before


# --- reads ------------------------------------------------------------------------------------------------------------


def test_member_lists_the_live_departments_of_the_organization_by_path(client_for, member, tree):
    response = client_for(member).get(URL)

    assert response.status_code == 200
    assert response.json() == page(
        *(department_body(tree[code]) for code in ["HQ", "FIN", "SALES", "EU", "SALESX", "OPS"])
    )
    assert [row["path"] for row in response.json()["results"]] == [
        "HQ/",
        "HQ/FIN/",
        "HQ/SALES/",
        "HQ/SALES/EU/",
        "HQ/SALESX/",
        "OPS/",
    ]


def test_member_reads_one_department(client_for, member, tree):
    response = client_for(member).get(detail_url(URL, tree["EU"]))

    assert response.status_code == 200
    assert response.json() == department_body(tree["EU"]) | {
        "code": "EU",
        "name": "Europe",
        "parent": tree["SALES"].pk,
        "path": "HQ/SALES/EU/",
        "depth": 3,
        "manager": None,
        "headcount_limit": None,
        "display_order": 0,
    }


def test_superuser_without_membership_reads_departments(client_for, superuser, department):
    response = client_for(superuser).get(URL)

    assert response.status_code == 200
    assert response.json() == page(department_body(department))


def test_tree_returns_the_nested_tree_sorted_by_display_order_then_code(client_for, member, tree):
    response = client_for(member).get(TREE_URL)

    def node(code: str, *children: dict[str, Any]) -> dict[str, Any]:
        department = tree[code]
        return {
            "id": department.pk,
            "code": department.code,
            "name": department.name,
            "path": department.path,
            "depth": department.depth,
            "display_order": department.display_order,
            "manager": department.manager_id,
            "children": list(children),
        }

    assert response.status_code == 200
    assert response.json() == [
        node("HQ", node("FIN"), node("SALES", node("EU")), node("SALESX")),
        node("OPS"),
    ]


def test_tree_of_an_organization_without_departments_is_empty(client_for, member):
    response = client_for(member).get(TREE_URL)

    assert response.status_code == 200
    assert response.json() == []


@pytest.fixture
def staff(tree, organization) -> dict[str, Membership]:
    """A member in each of HQ, SALES, EU, FIN and OPS; one without a department; one who left SALES; one in globex."""
    memberships = {
        code: MembershipFactory(organization=organization, department=tree[code])
        for code in ["HQ", "SALES", "EU", "FIN", "OPS"]
    }
    memberships["none"] = MembershipFactory(organization=organization)
    memberships["former"] = MembershipFactory(
        organization=organization, department=tree["SALES"], is_active=False, left_on=timezone.localdate()
    )
    memberships["globex"] = MembershipFactory(
        organization=tree["globex SALES"].organization, department=tree["globex SALES"]
    )
    return memberships


@pytest.mark.parametrize(
    ("code", "query", "expected"),
    [
        ("SALES", "", ["SALES"]),
        ("SALES", "?include_descendants=false", ["SALES"]),
        ("SALES", "?include_descendants=true", ["EU", "SALES"]),
        ("SALES", "?include_descendants=1", ["EU", "SALES"]),
        ("HQ", "?include_descendants=true", ["FIN", "EU", "SALES", "HQ"]),
        ("HQ", "?include_descendants=false", ["HQ"]),
        ("EU", "?include_descendants=true", ["EU"]),
        ("SALESX", "?include_descendants=true", []),
    ],
)
def test_department_members_with_and_without_descendants(client_for, member, tree, staff, code, query, expected):
    response = client_for(member).get(members_url(tree[code]) + query)

    # then: current members only, newest membership first
    assert response.status_code == 200
    assert response.json() == page(*(membership_body(staff[code]) for code in expected))


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("?include_descendants=maybe", {"include_descendants": ["Must be a valid boolean."]}),
        ("?include_descendants=", {"include_descendants": ["Must be a valid boolean."]}),
        ("?department=1", {"department": ["Unknown query parameter."]}),
        ("?page_size=0", {"page_size": ["Must be a whole number from 1 to 200."]}),
    ],
)
def test_department_members_rejects_bad_parameters(client_for, member, tree, query, fields):
    response = client_for(member).get(members_url(tree["SALES"]) + query)

    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_department_members_are_paginated(client_for, member, tree, staff):
    client = client_for(member)

    first = client.get(members_url(tree["HQ"]) + "?include_descendants=true&page_size=3")
    second = client.get(first.json()["next"])

    assert [row["id"] for row in first.json()["results"]] == [staff[code].pk for code in ["FIN", "EU", "SALES"]]
    assert [row["id"] for row in second.json()["results"]] == [staff["HQ"].pk]
    assert second.json()["next"] is None


# --- filters ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        ("parent={HQ}", ["FIN", "SALES", "SALESX"]),
        ("parent={SALES}", ["EU"]),
        ("is_root=true", ["HQ", "OPS"]),
        ("is_root=false", ["FIN", "SALES", "EU", "SALESX"]),
        ("depth=3", ["EU"]),
        ("depth=2", ["FIN", "SALES", "SALESX"]),
        ("max_depth=1", ["HQ", "OPS"]),
        ("code=SALES", ["SALES"]),
        ("code=NOPE", []),
        ("search=sales", ["SALES", "SALESX"]),
        ("search=europe", ["EU"]),
        ("ordering=-code", ["SALESX", "SALES", "OPS", "HQ", "FIN", "EU"]),
        ("ordering=name", ["EU", "FIN", "HQ", "OPS", "SALES", "SALESX"]),
        ("ordering=-display_order,code", ["SALESX", "SALES", "FIN", "EU", "HQ", "OPS"]),
        ("ordering=-depth,path", ["EU", "FIN", "SALES", "SALESX", "HQ", "OPS"]),
        ("parent={HQ}&ordering=-name", ["SALESX", "SALES", "FIN"]),
        ("is_root=false&search=sales&max_depth=2", ["SALES", "SALESX"]),
        ("manager={manager}", ["FIN"]),
    ],
)
def test_member_filters_and_orders_departments(client_for, member, tree, query, codes):
    # given: FIN has a manager
    Department.objects.filter(pk=tree["FIN"].pk).update(manager=member)
    ids = {code: department.pk for code, department in tree.items()} | {"manager": member.pk}

    response = client_for(member).get(f"{URL}?{query.format(**ids)}")

    assert response.status_code == 200, response.json()
    assert [row["code"] for row in response.json()["results"]] == codes


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("is_root=maybe", {"is_root": ["Must be a valid boolean."]}),
        ("parent=abc", {"parent": ["Enter a whole number."]}),
        ("depth=1.5", {"depth": ["Enter a whole number."]}),
        (
            "ordering=manager",
            {"ordering": ["Cannot order by 'manager'. Allowed: code, created_at, depth, display_order, name, path."]},
        ),
    ],
)
def test_bad_filter_values_are_rejected(client_for, member, tree, query, fields):
    response = client_for(member).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


# --- create -----------------------------------------------------------------------------------------------------------


def test_admin_creates_a_root_department(client_for, admin_member, organization):
    # when
    response = client_for(admin_member).post(
        URL, {"code": "hq", "name": "Headquarters", "headcount_limit": 50, "display_order": 3}, format="json"
    )

    # then
    assert response.status_code == 201, response.json()
    created = Department.objects.get(organization=organization, code="HQ")
    assert response.json() == department_body(created)
    assert response.json() | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "code": "HQ",
        "name": "Headquarters",
        "parent": None,
        "path": "HQ/",
        "depth": 1,
        "manager": None,
        "headcount_limit": 50,
        "display_order": 3,
        "created_at": "",
        "updated_at": "",
    }
    assert (created.created_by, created.updated_by) == (admin_member, admin_member)


def test_admin_creates_a_sub_department_with_a_manager(client_for, admin_member, member, tree):
    response = client_for(admin_member).post(
        URL, {"code": "DE", "name": "Germany", "parent": tree["EU"].pk, "manager": member.pk}, format="json"
    )

    assert response.status_code == 201, response.json()
    created = Department.objects.get(organization__slug="acme", code="DE")
    assert (created.parent, created.path, created.depth, created.manager) == (tree["EU"], "HQ/SALES/EU/DE/", 4, member)


def test_superuser_without_membership_creates_a_department(client_for, superuser, organization):
    response = client_for(superuser).post(URL, {"code": "OPS", "name": "Operations"}, format="json")

    assert response.status_code == 201, response.json()
    assert Department.objects.get(organization=organization, code="OPS").created_by == superuser


@pytest.mark.parametrize("action", WRITE_ACTIONS)
def test_plain_member_cannot_write_and_nothing_changes(client_for, member, department, action):
    before = department_rows()

    response = ACTIONS[action](client_for(member), department)

    assert response.status_code == 403
    assert response.json() == WRITE_REFUSALS[action]
    assert department_rows() == before


def test_plain_member_cannot_use_a_read_action_for_writing(client_for, member, department):
    before = department_rows()

    response = client_for(member).post(TREE_URL, {}, format="json")

    # then: the tree only reads; a write method on it is refused, whoever asks
    assert response.status_code == 405
    assert response.json() == error("method_not_allowed", 'Method "POST" not allowed.')
    assert department_rows() == before


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"code": ["This field is required."], "name": ["This field is required."]}),
        (
            {"code": "bad code", "name": ""},
            {
                "code": ["Use letters, digits, '.', '_' and '-', starting with a letter or digit."],
                "name": ["This field may not be blank."],
            },
        ),
        (
            {"code": "X", "name": "X", "headcount_limit": -1, "display_order": "first"},
            {
                "headcount_limit": ["Ensure this value is greater than or equal to 0."],
                "display_order": ["A valid integer is required."],
            },
        ),
        ({"code": "X", "name": "X", "parent": "HQ"}, {"parent": ["Incorrect type. Expected pk value, received str."]}),
    ],
    ids=["missing", "malformed", "numbers", "parent-by-code"],
)
def test_bad_input_is_400_and_nothing_is_created(client_for, admin_member, department, payload, fields):
    before = department_rows()

    response = client_for(admin_member).post(URL, payload, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert department_rows() == before


@pytest.mark.parametrize("parent", ["globex HQ", "OLD", "missing"])
def test_parent_from_another_organization_reads_as_not_found(client_for, admin_member, tree, parent):
    # given: globex's department, a deleted one and a free id all look the same
    parent_pk = 2_000_000_000 if parent == "missing" else tree[parent].pk
    before = department_rows()

    response = client_for(admin_member).post(URL, {"code": "NEW", "name": "New", "parent": parent_pk}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"parent": [f'Invalid pk "{parent_pk}" - object does not exist.']})
    assert department_rows() == before


def test_duplicate_code_in_the_same_organization_is_rejected(client_for, admin_member, tree):
    before = department_rows()

    response = client_for(admin_member).post(URL, {"code": "fin", "name": "Finance again"}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"code": ["Another department of this organization already has this code."]})
    assert department_rows() == before


def test_same_code_in_another_organization_is_fine(client_for, admin_member, other_organization, department):
    # given: globex already has LEGAL
    DepartmentFactory(organization=other_organization, code="LEGAL", name="Globex Legal")

    # when
    response = client_for(admin_member).post(URL, {"code": "LEGAL", "name": "Legal"}, format="json")

    # then
    assert response.status_code == 201, response.json()
    assert sorted(Department.objects.filter(code="LEGAL").values_list("organization__slug", flat=True)) == [
        "acme",
        "globex",
    ]


def test_code_of_a_deleted_department_can_be_reused(client_for, admin_member, tree):
    response = client_for(admin_member).post(URL, {"code": "OLD", "name": "Old again"}, format="json")

    assert response.status_code == 201, response.json()
    assert Department.all_objects.filter(organization__slug="acme", code="OLD").count() == 2


@pytest.mark.parametrize("manager", ["outsider", "former_member", "user"])
def test_manager_must_be_an_active_member(request, client_for, admin_member, department, manager):
    manager_user = request.getfixturevalue(manager)
    before = department_rows()

    response = client_for(admin_member).post(
        URL, {"code": "NEW", "name": "New", "manager": manager_user.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"manager": [f"User {manager_user.pk} is not an active member here."]})
    assert department_rows() == before


def test_depth_limit_is_enforced_on_create(client_for, admin_member, tree):
    # given: acme allows two levels; FIN is on the second
    Organization.objects.filter(slug="acme").update(max_department_depth=2)
    before = department_rows()

    response = client_for(admin_member).post(
        URL, {"code": "AP", "name": "Payables", "parent": tree["FIN"].pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"parent": ["The department tree of this organization is limited to 2 levels."]})
    assert department_rows() == before


def test_depth_limit_counts_the_subtree_that_moves(client_for, admin_member, tree):
    # given: three levels allowed; SALES has EU below it, FIN is on level 2
    Organization.objects.filter(slug="acme").update(max_department_depth=3)
    before = department_rows()

    # when: SALES (with EU) goes under FIN: EU would land on level 4
    response = client_for(admin_member).patch(detail_url(URL, tree["SALES"]), {"parent": tree["FIN"].pk}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid({"parent": ["The department tree of this organization is limited to 3 levels."]})
    assert department_rows() == before


# --- update -----------------------------------------------------------------------------------------------------------


def test_admin_renames_a_department(client_for, admin_member, member, tree):
    response = client_for(admin_member).patch(
        detail_url(URL, tree["FIN"]),
        {"name": "Finance & Control", "manager": member.pk, "headcount_limit": 7},
        format="json",
    )

    assert response.status_code == 200, response.json()
    fin = Department.objects.get(pk=tree["FIN"].pk)
    assert (fin.name, fin.manager, fin.headcount_limit, fin.updated_by) == (
        "Finance & Control",
        member,
        7,
        admin_member,
    )
    assert response.json() == department_body(fin)


def test_admin_put_keeps_the_parent_when_it_is_not_sent(client_for, admin_member, tree):
    response = client_for(admin_member).put(detail_url(URL, tree["EU"]), {"code": "EU", "name": "EMEA"}, format="json")

    assert response.status_code == 200, response.json()
    eu = Department.objects.get(pk=tree["EU"].pk)
    assert (eu.name, eu.parent, eu.path) == ("EMEA", tree["SALES"], "HQ/SALES/EU/")


def test_patching_parent_moves_the_whole_subtree(client_for, admin_member, tree):
    # when: SALES (with EU) moves under OPS
    response = client_for(admin_member).patch(detail_url(URL, tree["SALES"]), {"parent": tree["OPS"].pk}, format="json")

    # then: descendants follow; the look-alike sibling SALESX and globex's SALES stay where they were
    assert response.status_code == 200, response.json()
    assert response.json()["path"] == "OPS/SALES/"
    assert response.json()["depth"] == 2
    assert paths() == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/FIN/", 2),
        "SALES": ("OPS/SALES/", 2),
        "EU": ("OPS/SALES/EU/", 3),
        "SALESX": ("HQ/SALESX/", 2),
        "OPS": ("OPS/", 1),
    }
    assert Department.objects.get(pk=tree["globex SALES"].pk).path == "HQ/SALES/"
    assert Department.all_objects.get(pk=tree["OLD"].pk).path == "HQ/OLD/"


def test_patching_parent_to_null_makes_a_root(client_for, admin_member, tree):
    response = client_for(admin_member).patch(detail_url(URL, tree["SALES"]), {"parent": None}, format="json")

    assert response.status_code == 200, response.json()
    assert paths() == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/FIN/", 2),
        "SALES": ("SALES/", 1),
        "EU": ("SALES/EU/", 2),
        "SALESX": ("HQ/SALESX/", 2),
        "OPS": ("OPS/", 1),
    }


def test_moving_a_root_down_moves_every_level(client_for, admin_member, tree):
    response = client_for(admin_member).patch(detail_url(URL, tree["HQ"]), {"parent": tree["OPS"].pk}, format="json")

    assert response.status_code == 200, response.json()
    assert paths() == {
        "HQ": ("OPS/HQ/", 2),
        "FIN": ("OPS/HQ/FIN/", 3),
        "SALES": ("OPS/HQ/SALES/", 3),
        "EU": ("OPS/HQ/SALES/EU/", 4),
        "SALESX": ("OPS/HQ/SALESX/", 3),
        "OPS": ("OPS/", 1),
    }


def test_changing_the_code_rewrites_the_paths_below(client_for, admin_member, tree):
    response = client_for(admin_member).patch(detail_url(URL, tree["SALES"]), {"code": "mkt"}, format="json")

    assert response.status_code == 200, response.json()
    assert paths() == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/FIN/", 2),
        "MKT": ("HQ/MKT/", 2),
        "EU": ("HQ/MKT/EU/", 3),
        "SALESX": ("HQ/SALESX/", 2),
        "OPS": ("OPS/", 1),
    }


def test_keeping_the_own_code_is_no_duplicate(client_for, admin_member, tree):
    response = client_for(admin_member).patch(
        detail_url(URL, tree["FIN"]), {"code": "FIN", "name": "Fin"}, format="json"
    )

    assert response.status_code == 200, response.json()


def test_renaming_to_a_taken_code_is_rejected(client_for, admin_member, tree):
    before = department_rows()

    response = client_for(admin_member).patch(detail_url(URL, tree["FIN"]), {"code": "OPS"}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"code": ["Another department of this organization already has this code."]})
    assert department_rows() == before


@pytest.mark.parametrize(("code", "parent"), [("SALES", "SALES"), ("SALES", "EU"), ("HQ", "EU")])
def test_department_cannot_go_under_itself_or_a_descendant(client_for, admin_member, tree, code, parent):
    before = department_rows()

    response = client_for(admin_member).patch(detail_url(URL, tree[code]), {"parent": tree[parent].pk}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"parent": [NOT_UNDER_ITSELF]})
    assert department_rows() == before


def test_patch_parent_from_another_organization_is_rejected(client_for, admin_member, tree):
    before = department_rows()

    response = client_for(admin_member).patch(
        detail_url(URL, tree["SALES"]), {"parent": tree["globex HQ"].pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"parent": [f'Invalid pk "{tree["globex HQ"].pk}" - object does not exist.']})
    assert department_rows() == before


def test_patch_manager_must_be_an_active_member(client_for, admin_member, outsider, tree):
    before = department_rows()

    response = client_for(admin_member).patch(detail_url(URL, tree["FIN"]), {"manager": outsider.pk}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"manager": [f"User {outsider.pk} is not an active member here."]})
    assert department_rows() == before


# --- delete -----------------------------------------------------------------------------------------------------------


def test_admin_soft_deletes_a_leaf_department(client_for, admin_member, member, tree):
    # when
    response = client_for(admin_member).delete(detail_url(URL, tree["EU"]))

    # then: hidden from the API, the row stays
    assert response.status_code == 204
    assert response.content == b""
    eu = Department.all_objects.get(pk=tree["EU"].pk)
    assert eu.deleted_at is not None
    assert (eu.deleted_by, eu.updated_by) == (admin_member, admin_member)
    assert client_for(member).get(detail_url(URL, eu)).status_code == 404
    assert "EU" not in [row["code"] for row in client_for(member).get(URL).json()["results"]]


def test_department_with_children_cannot_be_deleted(client_for, admin_member, tree):
    before = department_rows()

    response = client_for(admin_member).delete(detail_url(URL, tree["SALES"]))

    assert response.status_code == 409
    assert response.json() == error(
        "department_has_children", "This department has active sub-departments; move or delete them first."
    )
    assert department_rows() == before


def test_department_with_active_members_cannot_be_deleted(client_for, admin_member, tree):
    MembershipFactory(organization=tree["FIN"].organization, department=tree["FIN"])
    before = department_rows()

    response = client_for(admin_member).delete(detail_url(URL, tree["FIN"]))

    assert response.status_code == 409
    assert response.json() == error(
        "department_has_members", "This department still has active members; move them to another department first."
    )
    assert department_rows() == before


def test_deleted_children_and_former_members_do_not_block_deletion(client_for, admin_member, tree):
    # given: HQ/SALES/EU is deleted, and SALES only had a member who left
    Department.objects.filter(pk=tree["EU"].pk).update(deleted_at=timezone.now())
    MembershipFactory(
        organization=tree["SALES"].organization,
        department=tree["SALES"],
        is_active=False,
        left_on=timezone.localdate(),
    )

    response = client_for(admin_member).delete(detail_url(URL, tree["SALES"]))

    assert response.status_code == 204
    assert Department.all_objects.get(pk=tree["SALES"].pk).is_deleted is True


# --- query counts -----------------------------------------------------------------------------------------------------


def populate(organization: Organization, department: Department, rows: int) -> list[Department]:
    """``rows`` departments in total: half under HQ, half under its first child, every third one with a manager."""
    manager = MembershipFactory(organization=organization).user
    created = [department]
    first_child = DepartmentFactory(organization=organization, parent=department, manager=manager)
    created.append(first_child)
    for index in range(rows - len(created)):
        parent = department if index % 2 else first_child
        created.append(
            DepartmentFactory(organization=organization, parent=parent, manager=manager if index % 3 == 0 else None)
        )
    return created


def add_members(organization: Organization, departments: list[Department], count: int) -> None:
    users = User.objects.bulk_create(
        [User(email=f"bulk-{index}@example.com", full_name=f"Bulk {index}", password="!") for index in range(count)]
    )
    Membership.objects.bulk_create(
        [
            Membership(organization=organization, user=user, department=departments[index % len(departments)])
            for index, user in enumerate(users)
        ]
    )


# Each request starts from a cold permission cache: computing the caller's permissions in the organization costs five
# queries (membership, assignments in force, roles, their permissions, and every grant table in one UNION ALL),
# whatever the rows and however many models can be shared.
LIST_QUERIES = 7  # the organization with the caller's access, the caller's permissions, one page of departments
TREE_QUERIES = 7  # the organization with the caller's access, the caller's permissions, every department
MEMBERS_QUERIES = 8  # the organization, the caller's permissions, the department, one page of memberships


@pytest.mark.parametrize("rows", [10, 200])
def test_list_query_count_does_not_grow_with_rows(
    client_for, member, organization, department, rows, django_assert_num_queries
):
    populate(organization, department, rows)
    client = client_for(member)

    with django_assert_num_queries(LIST_QUERIES):
        response = client.get(f"{URL}?page_size=200")

    assert response.status_code == 200
    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("rows", [10, 200])
def test_tree_query_count_does_not_grow_with_rows(
    client_for, member, organization, department, rows, django_assert_num_queries
):
    populate(organization, department, rows)
    client = client_for(member)

    with django_assert_num_queries(TREE_QUERIES):
        response = client.get(TREE_URL)

    assert response.status_code == 200
    assert len(response.json()) == 1
    assert len(response.json()[0]["children"]) == rows // 2


@pytest.mark.parametrize("rows", [10, 200])
def test_members_query_count_does_not_grow_with_rows(
    client_for, member, organization, department, rows, django_assert_num_queries
):
    departments = populate(organization, department, 10)
    add_members(organization, departments, rows)
    client = client_for(member)

    with django_assert_num_queries(MEMBERS_QUERIES):
        response = client.get(f"{members_url(department)}?include_descendants=true&page_size=200")

    assert response.status_code == 200
    assert len(response.json()["results"]) == rows
