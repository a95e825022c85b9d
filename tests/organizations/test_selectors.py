"""Reads of organizations, departments and memberships (organizations/selectors.py and the department queryset)."""

import pytest

from organizations.models import Department, Organization
from organizations.selectors import (
    department_members,
    department_tree,
    organization_with_access,
    organizations_for_user,
)
from tests.accounts.factories import SuperuserFactory, UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def build_tree(organization: Organization, tree: list[tuple[str, str | None, int]]) -> dict[str, Department]:
    """Departments from ``(code, parent code, display order)``, parents first."""
    departments: dict[str, Department] = {}
    for code, parent_code, display_order in tree:
        departments[code] = DepartmentFactory(
            organization=organization,
            code=code,
            name=f"Department {code}",
            parent=departments[parent_code] if parent_code else None,
            display_order=display_order,
        )
    return departments


def codes(queryset) -> list[str]:
    return [department.code for department in queryset]


def shape(nodes: list[dict]) -> list:
    """A tree of nodes reduced to ``(code, [children…])`` for exact comparison."""
    return [(node["code"], shape(node["children"])) for node in nodes]


#   HQ (0)
#   ├── SALES (1)
#   │   └── SALES-EU (0)
#   ├── FIN (1)          display order ties with SALES: the code decides
#   │   ├── AR (0)
#   │   └── AP (5)       AP comes after AR because of its display order
#   └── ENG (0)
#   OPS (-1)             a second root, listed first
TREE = [
    ("HQ", None, 0),
    ("SALES", "HQ", 1),
    ("SALES-EU", "SALES", 0),
    ("FIN", "HQ", 1),
    ("AR", "FIN", 0),
    ("AP", "FIN", 5),
    ("ENG", "HQ", 0),
    ("OPS", None, -1),
]


# --- organizations_for_user ------------------------------------------------------------------------------------------


def test_member_sees_only_the_organizations_of_their_active_memberships():
    # given
    user = UserFactory()
    acme = OrganizationFactory(slug="acme", name="Acme")
    labs = OrganizationFactory(slug="labs", name="Acme Labs", parent=acme)
    MembershipFactory(organization=acme, user=user)
    MembershipFactory(organization=labs, user=user, role="org_admin")
    MembershipFactory(organization=OrganizationFactory(slug="former", name="Former"), user=user, is_active=False)
    MembershipFactory(organization=OrganizationFactory(slug="closed", name="Closed", is_active=False), user=user)
    gone = OrganizationFactory(slug="gone", name="Gone")
    MembershipFactory(organization=gone, user=user)
    gone.mark_deleted(actor=None)
    OrganizationFactory(slug="stranger", name="Stranger")
    MembershipFactory(organization=OrganizationFactory(slug="globex", name="Globex"))  # somebody else's
    # when
    organizations = organizations_for_user(user=user)
    # then
    assert [organization.slug for organization in organizations] == ["acme", "labs"]


def test_user_without_memberships_sees_no_organization():
    # given
    OrganizationFactory(slug="acme")
    # when / then
    assert list(organizations_for_user(user=UserFactory())) == []


def test_superuser_sees_every_live_organization():
    # given
    OrganizationFactory(slug="acme", name="Acme")
    OrganizationFactory(slug="closed", name="Closed", is_active=False)
    OrganizationFactory(slug="gone", name="Gone").mark_deleted(actor=None)
    OrganizationFactory(slug="globex", name="Globex")
    # when
    organizations = organizations_for_user(user=SuperuserFactory())
    # then
    assert [organization.slug for organization in organizations] == ["acme", "closed", "globex"]


def test_organizations_for_user_reads_parents_in_the_same_query(django_assert_num_queries):
    # given
    user = UserFactory()
    acme = OrganizationFactory(slug="acme", name="Acme")
    MembershipFactory(organization=acme, user=user)
    MembershipFactory(organization=OrganizationFactory(slug="labs", name="Acme Labs", parent=acme), user=user)
    # when
    with django_assert_num_queries(1):
        rows = [
            (organization.slug, organization.parent.slug if organization.parent else None)
            for organization in organizations_for_user(user=user)
        ]
    # then
    assert rows == [("acme", None), ("labs", "acme")]


# --- organization_with_access ----------------------------------------------------------------------------------------


def test_organization_with_access_for_a_member(django_assert_num_queries):
    # given
    membership = MembershipFactory(organization=OrganizationFactory(slug="acme"))
    # when
    with django_assert_num_queries(1):
        organization = organization_with_access(user=membership.user, slug="acme")
    # then
    assert organization is not None
    assert (organization.pk, organization.is_member) == (membership.organization_id, True)


def test_organization_with_access_for_an_organization_admin():
    # given: the org_admin role decides what the user may do inside, not whether they may enter
    membership = MembershipFactory(organization=OrganizationFactory(slug="acme"), role="org_admin")
    # when
    organization = organization_with_access(user=membership.user, slug="acme")
    # then
    assert organization is not None
    assert (organization.pk, organization.is_member) == (membership.organization_id, True)


def test_organization_with_access_ignores_an_ended_admin_membership():
    # given: the org_admin assignment outlives the membership
    membership = MembershipFactory(organization=OrganizationFactory(slug="acme"), role="org_admin", is_active=False)
    # when / then
    assert organization_with_access(user=membership.user, slug="acme") is None


def test_organization_with_access_is_none_for_a_non_member():
    # given
    OrganizationFactory(slug="acme")
    outsider = MembershipFactory(organization=OrganizationFactory(slug="globex")).user
    # when / then
    assert organization_with_access(user=outsider, slug="acme") is None


def test_organization_with_access_is_none_for_members_of_an_inactive_organization():
    # given
    membership = MembershipFactory(organization=OrganizationFactory(slug="acme", is_active=False), role="org_admin")
    # when / then
    assert organization_with_access(user=membership.user, slug="acme") is None


def test_organization_with_access_is_none_for_an_unknown_or_deleted_organization():
    # given
    superuser = SuperuserFactory()
    membership = MembershipFactory(organization=OrganizationFactory(slug="gone"))
    membership.organization.mark_deleted(actor=None)
    # when / then
    assert organization_with_access(user=membership.user, slug="gone") is None
    assert organization_with_access(user=superuser, slug="gone") is None
    assert organization_with_access(user=superuser, slug="nowhere") is None


def test_organization_with_access_lets_a_superuser_in_without_membership():
    # given
    acme = OrganizationFactory(slug="acme")
    closed = OrganizationFactory(slug="closed", is_active=False)
    superuser = SuperuserFactory()
    # when
    open_one = organization_with_access(user=superuser, slug="acme")
    closed_one = organization_with_access(user=superuser, slug="closed")
    # then
    assert (open_one.pk, open_one.is_member) == (acme.pk, False)
    assert (closed_one.pk, closed_one.is_member) == (closed.pk, False)


def test_organization_with_access_flags_a_superuser_who_is_also_a_member():
    # given
    superuser = SuperuserFactory()
    acme = OrganizationFactory(slug="acme")
    MembershipFactory(organization=acme, user=superuser, role="org_admin")
    # when
    organization = organization_with_access(user=superuser, slug="acme")
    # then
    assert organization is not None
    assert (organization.pk, organization.is_member) == (acme.pk, True)


# --- department_tree -------------------------------------------------------------------------------------------------


def test_department_tree_nests_and_orders_children(django_assert_num_queries):
    # given
    acme = OrganizationFactory(slug="acme")
    build_tree(acme, TREE)
    build_tree(OrganizationFactory(slug="globex"), [("GHQ", None, 0), ("HR", "GHQ", 0)])
    # when
    with django_assert_num_queries(1):
        tree = department_tree(departments=Department.objects.for_organization(acme))
    # then
    assert shape(tree) == [
        ("OPS", []),
        (
            "HQ",
            [
                ("ENG", []),
                ("FIN", [("AR", []), ("AP", [])]),
                ("SALES", [("SALES-EU", [])]),
            ],
        ),
    ]


def test_department_tree_node_fields():
    # given
    acme = OrganizationFactory(slug="acme")
    manager = MembershipFactory(organization=acme).user
    hq = DepartmentFactory(organization=acme, code="HQ", name="Headquarters", display_order=2, manager=manager)
    fin = DepartmentFactory(organization=acme, code="FIN", name="Finance", parent=hq)
    # when
    tree = department_tree(departments=Department.objects.for_organization(acme))
    # then
    assert tree == [
        {
            "id": hq.pk,
            "code": "HQ",
            "name": "Headquarters",
            "path": "HQ/",
            "depth": 1,
            "display_order": 2,
            "manager": manager.pk,
            "children": [
                {
                    "id": fin.pk,
                    "code": "FIN",
                    "name": "Finance",
                    "path": "HQ/FIN/",
                    "depth": 2,
                    "display_order": 0,
                    "manager": None,
                    "children": [],
                }
            ],
        }
    ]


def test_department_tree_of_a_subtree_starts_at_its_top():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, TREE)
    # when
    tree = department_tree(departments=Department.objects.subtree(departments["FIN"]))
    # then
    assert shape(tree) == [("FIN", [("AR", []), ("AP", [])])]


def test_department_tree_leaves_out_deleted_departments():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, TREE)
    departments["SALES-EU"].mark_deleted(actor=None)
    departments["OPS"].mark_deleted(actor=None)
    # when
    tree = department_tree(departments=Department.objects.for_organization(acme))
    # then
    assert shape(tree) == [("HQ", [("ENG", []), ("FIN", [("AR", []), ("AP", [])]), ("SALES", [])])]


def test_department_tree_of_nothing_is_empty():
    # when / then
    assert department_tree(departments=Department.objects.none()) == []


# --- Department.objects.subtree / ancestors --------------------------------------------------------------------------


def test_subtree_is_the_department_and_everything_below_it():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, TREE)
    build_tree(OrganizationFactory(slug="globex"), [("HQ", None, 0), ("FIN", "HQ", 0), ("TAX", "FIN", 0)])
    # when / then
    assert codes(Department.objects.subtree(departments["FIN"])) == ["FIN", "AP", "AR"]
    assert codes(Department.objects.subtree(departments["FIN"], include_self=False)) == ["AP", "AR"]
    assert codes(Department.objects.subtree(departments["HQ"])) == [
        "HQ",
        "ENG",
        "FIN",
        "AP",
        "AR",
        "SALES",
        "SALES-EU",
    ]
    assert codes(Department.objects.subtree(departments["ENG"], include_self=False)) == []


def test_subtree_skips_deleted_departments_unless_asked():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, TREE)
    departments["AP"].mark_deleted(actor=None)
    # when / then
    assert codes(Department.objects.subtree(departments["FIN"])) == ["FIN", "AR"]
    assert codes(Department.all_objects.subtree(departments["FIN"])) == ["FIN", "AP", "AR"]


def test_subtree_treats_wildcard_characters_in_codes_literally():
    # given: "_" is a LIKE wildcard; A_B/ must not match AXB/
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, [("A_B", None, 0), ("AXB", None, 0), ("C", "AXB", 0), ("D", "A_B", 0)])
    # when / then
    assert codes(Department.objects.subtree(departments["A_B"])) == ["A_B", "D"]


def test_subtree_does_not_reach_siblings_whose_code_starts_alike():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, [("FIN", None, 0), ("FIN2", None, 0), ("TAX", "FIN2", 0)])
    # when / then
    assert codes(Department.objects.subtree(departments["FIN"])) == ["FIN"]


def test_ancestors_are_listed_root_first(django_assert_num_queries):
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, [("HQ", None, 0), ("FIN", "HQ", 0), ("AR", "FIN", 0), ("AR-DE", "AR", 0)])
    build_tree(OrganizationFactory(slug="globex"), [("HQ", None, 0), ("FIN", "HQ", 0)])
    # when
    with django_assert_num_queries(2):
        above = codes(Department.objects.ancestors(departments["AR-DE"]))
        including = codes(Department.objects.ancestors(departments["AR-DE"], include_self=True))
    # then
    assert above == ["HQ", "FIN", "AR"]
    assert including == ["HQ", "FIN", "AR", "AR-DE"]


def test_ancestors_of_a_root():
    # given
    hq = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    # when / then
    assert codes(Department.objects.ancestors(hq)) == []
    assert codes(Department.objects.ancestors(hq, include_self=True)) == ["HQ"]


def test_ancestors_within_the_organization_only_and_for_organization_chains():
    # given
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, [("HQ", None, 0), ("FIN", "HQ", 0)])
    # when / then: the queryset methods combine with the organization entry point
    assert codes(Department.objects.for_organization(acme).ancestors(departments["FIN"])) == ["HQ"]
    other = OrganizationFactory(slug="globex")
    assert codes(Department.objects.for_organization(other).ancestors(departments["FIN"])) == []


# --- department_members ----------------------------------------------------------------------------------------------


@pytest.fixture
def staffed_tree():
    """acme's tree with one member in HQ, FIN, AR and AP, and someone in a deleted sub-department of FIN."""
    acme = OrganizationFactory(slug="acme")
    departments = build_tree(acme, [*TREE, ("FIN-OLD", "FIN", 0)])
    people = {}
    for code in ["HQ", "FIN", "AR", "AP", "SALES", "FIN-OLD"]:
        people[code] = MembershipFactory(
            organization=acme, department=departments[code], user=UserFactory(email=f"{code.lower()}@acme.example")
        )
    MembershipFactory(organization=acme, department=None, user=UserFactory(email="nowhere@acme.example"))
    departments["FIN-OLD"].mark_deleted(actor=None)
    # The same department code in another organization must not leak in.
    globex = OrganizationFactory(slug="globex")
    globex_fin = build_tree(globex, [("HQ", None, 0), ("FIN", "HQ", 0)])["FIN"]
    MembershipFactory(organization=globex, department=globex_fin, user=UserFactory(email="fin@globex.example"))
    return departments


def test_department_members_of_one_department(staffed_tree, django_assert_num_queries):
    # when
    with django_assert_num_queries(1):
        rows = [
            (membership.user.email, membership.department.code)
            for membership in department_members(department=staffed_tree["FIN"], include_descendants=False)
        ]
    # then
    assert rows == [("fin@acme.example", "FIN")]


def test_department_members_including_sub_departments(staffed_tree, django_assert_num_queries):
    # when
    with django_assert_num_queries(1):
        rows = [
            (membership.user.email, membership.department.code)
            for membership in department_members(department=staffed_tree["FIN"], include_descendants=True)
        ]
    # then: FIN, AR and AP — not the deleted FIN-OLD, not SALES, not globex's FIN
    assert sorted(rows) == [
        ("ap@acme.example", "AP"),
        ("ar@acme.example", "AR"),
        ("fin@acme.example", "FIN"),
    ]


def test_department_members_of_the_root_including_sub_departments(staffed_tree):
    # when
    emails = sorted(
        membership.user.email
        for membership in department_members(department=staffed_tree["HQ"], include_descendants=True)
    )
    # then
    assert emails == ["ap@acme.example", "ar@acme.example", "fin@acme.example", "hq@acme.example", "sales@acme.example"]


def test_department_members_of_an_empty_department(staffed_tree, django_assert_num_queries):
    # when
    with django_assert_num_queries(1):
        direct = list(department_members(department=staffed_tree["ENG"], include_descendants=False))
    with django_assert_num_queries(1):
        below = list(department_members(department=staffed_tree["ENG"], include_descendants=True))
    # then
    assert (direct, below) == ([], [])
