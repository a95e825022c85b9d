"""State changes of organizations, departments and memberships (organizations/services.py)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from erp.exceptions import ConflictError
from organizations import services
from organizations.models import Department, Membership, Organization
from tests.accounts.factories import UserFactory
from tests.organizations.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor():
    return UserFactory(email="actor@example.com")


@pytest.fixture
def other_actor():
    return UserFactory(email="other-actor@example.com")


@pytest.fixture
def acme(actor) -> Organization:
    return services.organization_create(actor=actor, slug="acme", code="ACME", name="Acme")


def create_departments(organization: Organization, tree: list[tuple[str, str | None]]) -> dict[str, Department]:
    """Create departments through the service from ``(code, parent code)`` pairs, parents first."""
    departments: dict[str, Department] = {}
    for code, parent_code in tree:
        departments[code] = services.department_create(
            actor=None,
            organization=organization,
            code=code,
            name=f"Department {code}",
            parent=departments[parent_code] if parent_code else None,
        )
    return departments


def paths(organization: Organization) -> dict[str, tuple[str, int]]:
    """Every live department of the organization as ``code: (path, depth)``, read back from the database."""
    return {
        code: (path, depth)
        for code, path, depth in Department.objects.for_organization(organization).values_list("code", "path", "depth")
    }


def snapshot(model: type[Organization] | type[Department]) -> list[dict]:
    """Every row with every column, deleted ones included: to show that a refused change left the table as it was."""
    return list(model.all_objects.order_by("pk").values())


# A tree used by the move tests:
#   HQ
#   ├── FIN
#   │   ├── AP
#   │   └── AR
#   │       └── AR-DE
#   ├── FINX          (its path starts like FIN's but it is not below FIN)
#   └── ENG
#       └── ENG-WEB
TREE = [
    ("HQ", None),
    ("FIN", "HQ"),
    ("AP", "FIN"),
    ("AR", "FIN"),
    ("AR-DE", "AR"),
    ("FINX", "HQ"),
    ("ENG", "HQ"),
    ("ENG-WEB", "ENG"),
]


# --- Organizations ---------------------------------------------------------------------------------------------------


def test_organization_create(actor):
    # when
    organization = services.organization_create(
        actor=actor,
        slug="acme",
        code="acme",
        name="Acme",
        time_zone="Europe/Berlin",
        currency_code="CHF",
        fiscal_year_start_month=4,
        max_department_depth=5,
        history_retention_days=365,
    )
    # then
    organization.refresh_from_db()
    assert (organization.slug, organization.code, organization.name) == ("acme", "ACME", "Acme")
    assert (organization.time_zone, organization.currency_code) == ("Europe/Berlin", "CHF")
    assert (organization.fiscal_year_start_month, organization.max_department_depth) == (4, 5)
    assert organization.history_retention_days == 365
    assert organization.parent_id is None
    assert organization.created_by == actor
    assert organization.updated_by == actor
    assert organization.deleted_at is None


def test_organization_create_keeps_history_forever_by_default():
    # when
    organization = services.organization_create(actor=None, slug="acme", code="ACME", name="Acme")
    # then
    organization.refresh_from_db()
    assert organization.history_retention_days is None
    assert organization.created_by is None
    assert organization.updated_by is None


def test_organization_create_subsidiary(acme, actor):
    # when
    labs = services.organization_create(actor=actor, slug="acme-labs", code="LABS", name="Acme Labs", parent=acme)
    # then
    labs.refresh_from_db()
    assert labs.parent_id == acme.pk
    assert list(acme.subsidiaries.values_list("slug", flat=True)) == ["acme-labs"]


def test_organization_create_refuses_invalid_input(acme):
    # when
    with pytest.raises(ValidationError) as error:
        services.organization_create(actor=None, slug="acme", code="NEW", name="New", currency_code="euro")
    # then
    assert error.value.message_dict == {
        "slug": ["An organization with this slug already exists."],
        "currency_code": [
            "Use a three-letter ISO 4217 code such as EUR.",
            "Ensure this value has at most 3 characters (it has 4).",
        ],
    }
    assert list(Organization.all_objects.values_list("slug", flat=True)) == ["acme"]


def test_organization_create_refuses_the_slug_of_a_deleted_organization(acme):
    # given
    services.organization_delete(actor=None, organization=acme)
    # when
    with pytest.raises(ValidationError) as error:
        services.organization_create(actor=None, slug="acme", code="ACME2", name="Acme 2")
    # then: a 400-style error, not an IntegrityError from the unique index
    assert error.value.message_dict == {"slug": ["An organization with this slug already exists."]}
    assert list(Organization.all_objects.values_list("slug", flat=True)) == ["acme"]


def test_organization_create_refuses_unknown_fields():
    # when / then
    with pytest.raises(TypeError) as error:
        services.organization_create(actor=None, slug="acme", code="ACME", name="Acme", pk=7, deleted_at=None)
    assert str(error.value) == "Cannot set deleted_at, pk on Organization."
    assert Organization.all_objects.count() == 0


def test_organization_update(acme, actor, other_actor):
    # when
    updated = services.organization_update(
        actor=other_actor, organization=acme, name="Acme Corporation", code="acme-corp", history_retention_days=30
    )
    # then
    acme.refresh_from_db()
    assert (acme.name, acme.code, acme.history_retention_days) == ("Acme Corporation", "ACME-CORP", 30)
    assert updated.pk == acme.pk
    assert acme.created_by == actor
    assert acme.updated_by == other_actor


def test_organization_update_may_clear_history_retention(acme):
    # given
    services.organization_update(actor=None, organization=acme, history_retention_days=90)
    # when
    services.organization_update(actor=None, organization=acme, history_retention_days=None)
    # then
    acme.refresh_from_db()
    assert acme.history_retention_days is None


def test_organization_update_refuses_a_cycle(acme):
    # given: acme <- labs <- lab-eu
    labs = services.organization_create(actor=None, slug="labs", code="LABS", name="Labs", parent=acme)
    lab_eu = services.organization_create(actor=None, slug="lab-eu", code="LABEU", name="Lab EU", parent=labs)
    before = snapshot(Organization)
    # when
    with pytest.raises(ValidationError) as error:
        services.organization_update(actor=None, organization=acme, parent=lab_eu)
    # then
    assert error.value.message_dict == {
        "parent": ["This parent is a subsidiary of this organization: that would make a cycle."]
    }
    assert snapshot(Organization) == before


def test_organization_update_judges_a_cycle_on_the_stored_parent_chain(acme):
    # given: labs is loaded while it is a root; then it becomes a subsidiary of acme
    labs = services.organization_create(actor=None, slug="labs", code="LABS", name="Labs")
    services.organization_update(actor=None, organization=Organization.objects.get(pk=labs.pk), parent=acme)
    # when: acme would go under the stale copy of labs
    with pytest.raises(ValidationError) as error:
        services.organization_update(actor=None, organization=acme, parent=labs)
    # then
    assert error.value.message_dict == {
        "parent": ["This parent is a subsidiary of this organization: that would make a cycle."]
    }
    assert dict(Organization.objects.values_list("slug", "parent__slug")) == {"acme": None, "labs": "acme"}


def test_organization_update_refuses_a_depth_limit_below_the_tree(acme):
    # given
    create_departments(acme, [("HQ", None), ("FIN", "HQ"), ("AP", "FIN")])
    # when
    with pytest.raises(ValidationError) as error:
        services.organization_update(actor=None, organization=acme, max_department_depth=2)
    # then
    assert error.value.message_dict == {
        "max_department_depth": ["The departments of this organization already go 3 levels deep."]
    }
    acme.refresh_from_db()
    assert acme.max_department_depth == 10


def test_organization_update_refuses_unknown_fields(acme, actor):
    # when / then
    with pytest.raises(TypeError) as error:
        services.organization_update(actor=None, organization=acme, created_by=None)
    assert str(error.value) == "Cannot set created_by on Organization."
    acme.refresh_from_db()
    assert acme.created_by == actor


def test_organization_delete(acme, actor, other_actor):
    # when
    services.organization_delete(actor=other_actor, organization=acme)
    # then
    assert Organization.objects.filter(pk=acme.pk).exists() is False
    deleted = Organization.all_objects.get(pk=acme.pk)
    assert deleted.is_deleted is True
    assert deleted.deleted_by == other_actor
    assert deleted.updated_by == other_actor
    assert deleted.created_by == actor


def test_organization_delete_refuses_with_an_active_live_subsidiary(acme):
    # given
    services.organization_create(actor=None, slug="labs", code="LABS", name="Labs", parent=acme)
    before = snapshot(Organization)
    # when
    with pytest.raises(ConflictError) as error:
        services.organization_delete(actor=None, organization=acme)
    # then
    assert error.value.code == "organization_has_active_subsidiaries"
    assert error.value.message == "This organization has active subsidiaries; delete or detach them first."
    assert snapshot(Organization) == before


def test_organization_delete_ignores_an_inactive_subsidiary(acme):
    # given
    services.organization_create(actor=None, slug="labs", code="LABS", name="Labs", parent=acme, is_active=False)
    # when
    services.organization_delete(actor=None, organization=acme)
    # then
    assert list(Organization.objects.values_list("slug", flat=True)) == ["labs"]


def test_organization_delete_ignores_a_deleted_subsidiary(acme):
    # given
    labs = services.organization_create(actor=None, slug="labs", code="LABS", name="Labs", parent=acme)
    services.organization_delete(actor=None, organization=labs)
    # when
    services.organization_delete(actor=None, organization=acme)
    # then
    assert Organization.objects.count() == 0
    assert Organization.all_objects.count() == 2


def test_organization_restore(acme, actor, other_actor):
    # given
    services.organization_delete(actor=actor, organization=acme)
    # when
    restored = services.organization_restore(actor=other_actor, organization=acme)
    # then
    restored.refresh_from_db()
    assert restored.is_deleted is False
    assert restored.deleted_by is None
    assert restored.updated_by == other_actor
    assert list(Organization.objects.values_list("slug", flat=True)) == ["acme"]


def test_organization_restore_refuses_under_a_deleted_parent(acme):
    # given: both deleted, the subsidiary first
    labs = services.organization_create(actor=None, slug="labs", code="LABS", name="Labs", parent=acme)
    services.organization_delete(actor=None, organization=labs)
    services.organization_delete(actor=None, organization=acme)
    before = snapshot(Organization)
    # when
    with pytest.raises(ValidationError) as error:
        services.organization_restore(actor=None, organization=labs)
    # then
    assert error.value.message_dict == {"parent": ["The parent organization has been deleted."]}
    assert snapshot(Organization) == before


# --- Departments: create ---------------------------------------------------------------------------------------------


def test_department_create_root(acme, actor):
    # when
    department = services.department_create(actor=actor, organization=acme, code="hq", name="Headquarters")
    # then
    department.refresh_from_db()
    assert (department.code, department.path, department.depth) == ("HQ", "HQ/", 1)
    assert department.parent_id is None
    assert department.organization_id == acme.pk
    assert department.created_by == actor
    assert department.updated_by == actor


def test_department_create_computes_path_and_depth(acme):
    # when
    create_departments(acme, TREE)
    # then
    assert paths(acme) == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/FIN/", 2),
        "AP": ("HQ/FIN/AP/", 3),
        "AR": ("HQ/FIN/AR/", 3),
        "AR-DE": ("HQ/FIN/AR/AR-DE/", 4),
        "FINX": ("HQ/FINX/", 2),
        "ENG": ("HQ/ENG/", 2),
        "ENG-WEB": ("HQ/ENG/ENG-WEB/", 3),
    }


def test_department_create_with_manager_and_settings(acme):
    # given
    manager = MembershipFactory(organization=acme).user
    # when
    department = services.department_create(
        actor=None, organization=acme, code="HQ", name="HQ", manager=manager, headcount_limit=12, display_order=3
    )
    # then
    department.refresh_from_db()
    assert (department.manager_id, department.headcount_limit, department.display_order) == (manager.pk, 12, 3)


def test_department_create_refuses_a_parent_of_another_organization(acme):
    # given
    globex = services.organization_create(actor=None, slug="globex", code="GLOBEX", name="Globex")
    foreign = services.department_create(actor=None, organization=globex, code="GHQ", name="Globex HQ")
    # when
    with pytest.raises(ValidationError) as error:
        services.department_create(actor=None, organization=acme, code="FIN", name="Finance", parent=foreign)
    # then
    assert error.value.message_dict == {"parent": ["The parent department belongs to another organization."]}
    assert list(Department.all_objects.values_list("code", flat=True)) == ["GHQ"]


def test_department_create_refuses_a_duplicate_code(acme):
    # given
    create_departments(acme, [("HQ", None)])
    # when
    with pytest.raises(ValidationError) as error:
        services.department_create(actor=None, organization=acme, code="hq", name="HQ again")
    # then
    assert error.value.message_dict == {"code": ["Another department of this organization already has this code."]}
    assert Department.all_objects.count() == 1


def test_department_create_refuses_beyond_the_depth_limit():
    # given
    organization = services.organization_create(
        actor=None, slug="flat", code="FLAT", name="Flat", max_department_depth=2
    )
    departments = create_departments(organization, [("HQ", None), ("FIN", "HQ")])
    # when
    with pytest.raises(ValidationError) as error:
        services.department_create(
            actor=None, organization=organization, code="AP", name="AP", parent=departments["FIN"]
        )
    # then
    assert error.value.message_dict == {"parent": ["The department tree of this organization is limited to 2 levels."]}
    assert Department.all_objects.count() == 2


def test_department_create_uses_the_stored_path_of_the_parent(acme):
    # given: FIN is loaded, then moved under ENG
    departments = create_departments(acme, [("HQ", None), ("FIN", "HQ"), ("ENG", "HQ")])
    stale_fin = departments["FIN"]
    services.department_update(actor=None, department=stale_fin, parent=departments["ENG"])
    # when: a department is created under the stale copy
    services.department_create(actor=None, organization=acme, code="AP", name="AP", parent=stale_fin)
    # then
    assert paths(acme)["AP"] == ("HQ/ENG/FIN/AP/", 4)


def test_department_create_refuses_unknown_fields(acme):
    # when / then
    with pytest.raises(TypeError) as error:
        services.department_create(actor=None, organization=acme, code="HQ", name="HQ", path="X/")
    assert str(error.value) == "Cannot set path on Department."
    assert Department.all_objects.count() == 0


# --- Departments: update and move ------------------------------------------------------------------------------------


def test_department_update_plain_fields(acme, actor, other_actor):
    # given
    department = services.department_create(actor=actor, organization=acme, code="HQ", name="HQ")
    # when
    services.department_update(actor=other_actor, department=department, name="Head office", display_order=5)
    # then
    department.refresh_from_db()
    assert (department.name, department.display_order, department.path, department.depth) == (
        "Head office",
        5,
        "HQ/",
        1,
    )
    assert department.created_by == actor
    assert department.updated_by == other_actor


def test_department_move_moves_the_whole_subtree(acme):
    # given
    departments = create_departments(acme, TREE)
    # when: FIN (with AP, AR and AR-DE) goes under ENG
    moved = services.department_update(actor=None, department=departments["FIN"], parent=departments["ENG"])
    # then
    assert (moved.path, moved.depth) == ("HQ/ENG/FIN/", 3)
    assert paths(acme) == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/ENG/FIN/", 3),
        "AP": ("HQ/ENG/FIN/AP/", 4),
        "AR": ("HQ/ENG/FIN/AR/", 4),
        "AR-DE": ("HQ/ENG/FIN/AR/AR-DE/", 5),
        "FINX": ("HQ/FINX/", 2),
        "ENG": ("HQ/ENG/", 2),
        "ENG-WEB": ("HQ/ENG/ENG-WEB/", 3),
    }
    assert Department.objects.get(code="FIN").parent_id == departments["ENG"].pk


def test_department_move_to_the_root(acme):
    # given
    departments = create_departments(acme, TREE)
    # when
    services.department_update(actor=None, department=departments["AR"], parent=None)
    # then
    assert paths(acme) == {
        "HQ": ("HQ/", 1),
        "FIN": ("HQ/FIN/", 2),
        "AP": ("HQ/FIN/AP/", 3),
        "AR": ("AR/", 1),
        "AR-DE": ("AR/AR-DE/", 2),
        "FINX": ("HQ/FINX/", 2),
        "ENG": ("HQ/ENG/", 2),
        "ENG-WEB": ("HQ/ENG/ENG-WEB/", 3),
    }


def test_department_rename_rewrites_descendant_paths(acme):
    # given
    departments = create_departments(acme, TREE)
    # when
    services.department_update(actor=None, department=departments["FIN"], code="finance")
    # then
    assert paths(acme) == {
        "HQ": ("HQ/", 1),
        "FINANCE": ("HQ/FINANCE/", 2),
        "AP": ("HQ/FINANCE/AP/", 3),
        "AR": ("HQ/FINANCE/AR/", 3),
        "AR-DE": ("HQ/FINANCE/AR/AR-DE/", 4),
        "FINX": ("HQ/FINX/", 2),
        "ENG": ("HQ/ENG/", 2),
        "ENG-WEB": ("HQ/ENG/ENG-WEB/", 3),
    }


def test_department_rename_of_the_root_rewrites_every_path(acme):
    # given
    departments = create_departments(acme, TREE)
    # when
    services.department_update(actor=None, department=departments["HQ"], code="HO")
    # then
    assert sorted(path for path, _ in paths(acme).values()) == [
        "HO/",
        "HO/ENG/",
        "HO/ENG/ENG-WEB/",
        "HO/FIN/",
        "HO/FIN/AP/",
        "HO/FIN/AR/",
        "HO/FIN/AR/AR-DE/",
        "HO/FINX/",
    ]


def test_department_move_and_rename_at_once(acme):
    # given
    departments = create_departments(acme, TREE)
    # when
    services.department_update(actor=None, department=departments["AR"], code="RECEIVABLES", parent=departments["ENG"])
    # then
    assert {code: value for code, value in paths(acme).items() if code in {"RECEIVABLES", "AR-DE", "AP"}} == {
        "RECEIVABLES": ("HQ/ENG/RECEIVABLES/", 3),
        "AR-DE": ("HQ/ENG/RECEIVABLES/AR-DE/", 4),
        "AP": ("HQ/FIN/AP/", 3),
    }


def test_department_move_leaves_other_organizations_alone(acme):
    # given: globex has the same codes, hence the same paths
    departments = create_departments(acme, TREE)
    globex = services.organization_create(actor=None, slug="globex", code="GLOBEX", name="Globex")
    create_departments(globex, TREE)
    before = paths(globex)
    # when
    services.department_update(actor=None, department=departments["FIN"], parent=departments["ENG"])
    # then
    assert paths(globex) == before
    assert paths(globex)["AP"] == ("HQ/FIN/AP/", 3)


def test_department_move_under_its_own_subtree_is_refused(acme):
    # given
    departments = create_departments(acme, TREE)
    before = snapshot(Department)
    # when
    with pytest.raises(ValidationError) as error:
        services.department_update(actor=None, department=departments["FIN"], parent=departments["AR-DE"])
    # then
    assert error.value.message_dict == {
        "parent": ["A department cannot be placed under itself or one of its sub-departments."]
    }
    assert snapshot(Department) == before


def test_department_move_judges_the_stored_place_of_the_new_parent(acme):
    # given: B is loaded while it sits under Z, then it is moved under A
    departments = create_departments(acme, [("A", None), ("Z", None), ("B", "Z")])
    stale_b = departments["B"]
    services.department_update(actor=None, department=Department.objects.get(pk=stale_b.pk), parent=departments["A"])
    before = snapshot(Department)
    # when: A would go under (the stale copy of) B, which is now its own child
    with pytest.raises(ValidationError) as error:
        services.department_update(actor=None, department=departments["A"], parent=stale_b)
    # then
    assert error.value.message_dict == {
        "parent": ["A department cannot be placed under itself or one of its sub-departments."]
    }
    assert snapshot(Department) == before


def test_department_move_refuses_a_subtree_that_would_get_too_deep():
    # given: limit 4; moving FIN (3 levels high) under ENG (level 2) would reach level 5
    organization = services.organization_create(
        actor=None, slug="shallow", code="SHALLOW", name="Shallow", max_department_depth=4
    )
    departments = create_departments(organization, TREE)
    before = snapshot(Department)
    # when
    with pytest.raises(ValidationError) as error:
        services.department_update(actor=None, department=departments["FIN"], parent=departments["ENG-WEB"])
    # then
    assert error.value.message_dict == {"parent": ["The department tree of this organization is limited to 4 levels."]}
    assert snapshot(Department) == before


def test_department_move_refuses_a_deleted_parent(acme):
    # given
    departments = create_departments(acme, TREE)
    services.department_delete(actor=None, department=departments["ENG-WEB"])
    before = snapshot(Department)
    # when
    with pytest.raises(ValidationError) as error:
        services.department_update(actor=None, department=departments["AP"], parent=departments["ENG-WEB"])
    # then
    assert error.value.message_dict == {"parent": ["The parent department has been deleted."]}
    assert snapshot(Department) == before


def _descendant_chain(organization: Organization, root_code: str, size: int) -> Department:
    """A root with ``size`` descendants: a few levels deep, the rest as leaves."""
    root = services.department_create(actor=None, organization=organization, code=root_code, name=root_code)
    parent = root
    for level in range(3):
        parent = services.department_create(
            actor=None, organization=organization, code=f"{root_code}-L{level}", name="Level", parent=parent
        )
    for index in range(size - 3):
        services.department_create(
            actor=None, organization=organization, code=f"{root_code}-N{index}", name="Leaf", parent=parent
        )
    return root


def _queries_to_move(department: Department, new_parent: Department) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.department_update(actor=None, department=department, parent=new_parent)
    return len(queries.captured_queries)


def test_department_move_takes_a_bounded_number_of_queries(acme, django_assert_max_num_queries):
    # given: a small and a large subtree, and a target
    small = _descendant_chain(acme, "SMALL", 3)
    large = _descendant_chain(acme, "LARGE", 30)
    target = services.department_create(actor=None, organization=acme, code="TARGET", name="Target")
    # when
    small_queries = _queries_to_move(small, target)
    large_queries = _queries_to_move(large, target)
    # then: the number of queries does not grow with the subtree (30 descendants move in one UPDATE)
    assert small_queries == large_queries
    # (history: one INSERT for the department's version, one SELECT + one INSERT for the moved subtree's versions)
    with django_assert_max_num_queries(21):
        services.department_update(actor=None, department=large, parent=small)
    large_tree = Department.objects.subtree(Department.objects.get(code="LARGE"))
    assert large_tree.count() == 31
    assert sorted(set(large_tree.values_list("depth", flat=True))) == [3, 4, 5, 6, 7]
    assert large_tree.filter(path__startswith="TARGET/SMALL/LARGE/LARGE-L0/LARGE-L1/LARGE-L2/").count() == 28


# --- Departments: delete and restore ---------------------------------------------------------------------------------


def test_department_delete_soft_deletes(acme, actor, other_actor):
    # given
    department = services.department_create(actor=actor, organization=acme, code="HQ", name="HQ")
    # when
    services.department_delete(actor=other_actor, department=department)
    # then
    assert Department.objects.filter(pk=department.pk).exists() is False
    assert Department.objects.for_organization(acme).count() == 0
    deleted = Department.all_objects.get(pk=department.pk)
    assert deleted.is_deleted is True
    assert deleted.deleted_by == other_actor
    assert deleted.updated_by == other_actor
    assert deleted.created_by == actor


def test_department_delete_refuses_with_live_children(acme):
    # given
    departments = create_departments(acme, TREE)
    before = snapshot(Department)
    # when
    with pytest.raises(ConflictError) as error:
        services.department_delete(actor=None, department=departments["AR"])
    # then
    assert error.value.code == "department_has_children"
    assert error.value.message == "This department has active sub-departments; move or delete them first."
    assert snapshot(Department) == before


def test_department_delete_ignores_deleted_children(acme):
    # given
    departments = create_departments(acme, TREE)
    services.department_delete(actor=None, department=departments["AR-DE"])
    # when
    services.department_delete(actor=None, department=departments["AR"])
    # then
    assert set(Department.all_objects.filter(deleted_at__isnull=False).values_list("code", flat=True)) == {
        "AR",
        "AR-DE",
    }


def test_department_delete_refuses_with_active_members(acme):
    # given
    department = services.department_create(actor=None, organization=acme, code="HQ", name="HQ")
    MembershipFactory(organization=acme, department=department)
    before = snapshot(Department)
    # when
    with pytest.raises(ConflictError) as error:
        services.department_delete(actor=None, department=department)
    # then
    assert error.value.code == "department_has_members"
    assert error.value.message == "This department still has active members; move them to another department first."
    assert snapshot(Department) == before


def test_department_delete_ignores_former_members(acme):
    # given
    department = services.department_create(actor=None, organization=acme, code="HQ", name="HQ")
    former = MembershipFactory(organization=acme, department=department, is_active=False)
    # when
    services.department_delete(actor=None, department=department)
    # then
    assert Department.all_objects.get(pk=department.pk).is_deleted is True
    former.refresh_from_db()
    assert former.department_id == department.pk


def test_department_restore(acme, actor, other_actor):
    # given
    departments = create_departments(acme, TREE)
    services.department_delete(actor=actor, department=departments["AP"])
    # when
    restored = services.department_restore(actor=other_actor, department=departments["AP"])
    # then
    restored.refresh_from_db()
    assert (restored.is_deleted, restored.deleted_by, restored.updated_by) == (False, None, other_actor)
    assert paths(acme)["AP"] == ("HQ/FIN/AP/", 3)


def test_department_restore_recomputes_the_path_after_a_move(acme):
    # given: AP is deleted, then its parent FIN is moved and renamed
    departments = create_departments(acme, TREE)
    services.department_delete(actor=None, department=departments["AP"])
    services.department_update(actor=None, department=departments["FIN"], code="FINANCE", parent=departments["ENG"])
    assert Department.all_objects.get(code="AP").path == "HQ/FIN/AP/"  # a deleted row keeps its old place
    # when
    services.department_restore(actor=None, department=departments["AP"])
    # then
    assert paths(acme)["AP"] == ("HQ/ENG/FINANCE/AP/", 4)
    assert Department.objects.ancestors(Department.objects.get(code="AP")).count() == 3


def test_department_restore_refuses_when_the_code_was_taken(acme):
    # given
    old = services.department_create(actor=None, organization=acme, code="HQ", name="Old HQ")
    services.department_delete(actor=None, department=old)
    services.department_create(actor=None, organization=acme, code="HQ", name="New HQ")
    before = snapshot(Department)
    # when
    with pytest.raises(ValidationError) as error:
        services.department_restore(actor=None, department=old)
    # then
    assert error.value.message_dict == {"code": ["Another department of this organization already has this code."]}
    assert snapshot(Department) == before
    assert Department.all_objects.get(pk=old.pk).is_deleted is True


def test_department_restore_refuses_under_a_deleted_parent(acme):
    # given
    departments = create_departments(acme, [("HQ", None), ("FIN", "HQ")])
    services.department_delete(actor=None, department=departments["FIN"])
    services.department_delete(actor=None, department=departments["HQ"])
    before = snapshot(Department)
    # when
    with pytest.raises(ValidationError) as error:
        services.department_restore(actor=None, department=departments["FIN"])
    # then
    assert error.value.message_dict == {"parent": ["The parent department has been deleted."]}
    assert snapshot(Department) == before


# --- Memberships -----------------------------------------------------------------------------------------------------


def test_membership_create(acme, actor):
    # given
    user = UserFactory()
    department = services.department_create(actor=None, organization=acme, code="HQ", name="HQ")
    # when
    membership = services.membership_create(
        actor=actor,
        organization=acme,
        user=user,
        department=department,
        job_title="Accountant",
        employee_number="E-7",
    )
    # then
    membership.refresh_from_db()
    assert (membership.organization_id, membership.user_id, membership.department_id) == (
        acme.pk,
        user.pk,
        department.pk,
    )
    assert (membership.job_title, membership.employee_number) == ("Accountant", "E-7")
    assert (membership.is_active, membership.joined_on, membership.left_on) == (True, timezone.localdate(), None)
    assert (membership.created_by, membership.updated_by) == (actor, actor)


def test_membership_create_stores_an_empty_employee_number_as_null(acme):
    # when
    membership = services.membership_create(actor=None, organization=acme, user=UserFactory(), employee_number="")
    # then
    membership.refresh_from_db()
    assert membership.employee_number is None


def test_membership_create_refuses_a_second_membership(acme):
    # given
    existing = services.membership_create(actor=None, organization=acme, user=UserFactory())
    # when
    with pytest.raises(ValidationError) as error:
        services.membership_create(actor=None, organization=acme, user=existing.user)
    # then
    assert error.value.message_dict == {"__all__": ["Membership with this Organization and User already exists."]}
    assert list(Membership.objects.values_list("pk", flat=True)) == [existing.pk]


def test_membership_create_refuses_a_department_of_another_organization(acme):
    # given
    globex = OrganizationFactory(slug="globex")
    foreign = services.department_create(actor=None, organization=globex, code="GHQ", name="Globex HQ")
    # when
    with pytest.raises(ValidationError) as error:
        services.membership_create(actor=None, organization=acme, user=UserFactory(), department=foreign)
    # then
    assert error.value.message_dict == {"department": ["The department belongs to another organization."]}
    assert Membership.objects.count() == 0


def test_membership_create_refuses_unknown_fields(acme):
    # when / then
    with pytest.raises(TypeError) as error:
        services.membership_create(actor=None, organization=acme, user=UserFactory(), organization_id=1)
    assert str(error.value) == "Cannot set organization_id on Membership."
    assert Membership.objects.count() == 0


def test_membership_services_refuse_the_retired_administrator_flag(acme):
    # given: administrators are role holders now (rbac), not memberships with a flag
    membership = services.membership_create(actor=None, organization=acme, user=UserFactory())
    before = list(Membership.objects.values())
    # when / then
    with pytest.raises(TypeError) as created:
        services.membership_create(actor=None, organization=acme, user=UserFactory(), is_admin=True)
    with pytest.raises(TypeError) as updated:
        services.membership_update(actor=None, membership=membership, is_admin=True)
    assert (str(created.value), str(updated.value)) == ("Cannot set is_admin on Membership.",) * 2
    assert list(Membership.objects.values()) == before


def test_membership_update(acme, actor, other_actor):
    # given
    membership = services.membership_create(actor=actor, organization=acme, user=UserFactory())
    department = services.department_create(actor=None, organization=acme, code="HQ", name="HQ")
    # when
    services.membership_update(
        actor=other_actor, membership=membership, department=department, job_title="Head", employee_number="E-9"
    )
    # then
    membership.refresh_from_db()
    assert (membership.department_id, membership.job_title, membership.employee_number) == (
        department.pk,
        "Head",
        "E-9",
    )
    assert (membership.created_by, membership.updated_by) == (actor, other_actor)


def test_membership_update_refuses_leaving_before_joining(acme):
    # given
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), joined_on=datetime.date(2026, 3, 1)
    )
    # when
    with pytest.raises(ValidationError) as error:
        services.membership_update(actor=None, membership=membership, left_on=datetime.date(2026, 1, 1))
    # then
    assert error.value.message_dict == {"left_on": ["The leaving date cannot be before the joining date."]}
    membership.refresh_from_db()
    assert membership.left_on is None


def test_membership_end(acme, actor):
    # given
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), joined_on=datetime.date(2025, 1, 1)
    )
    # when
    ended = services.membership_end(actor=actor, membership=membership)
    # then
    ended.refresh_from_db()
    assert (ended.is_active, ended.left_on, ended.updated_by) == (False, timezone.localdate(), actor)
    assert Membership.objects.filter(pk=membership.pk).exists() is True


def test_membership_end_on_a_given_day(acme):
    # given
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), joined_on=datetime.date(2025, 1, 1)
    )
    # when
    services.membership_end(actor=None, membership=membership, left_on=datetime.date(2025, 6, 30))
    # then
    membership.refresh_from_db()
    assert (membership.is_active, membership.left_on) == (False, datetime.date(2025, 6, 30))


def test_membership_end_of_an_ended_membership_keeps_its_leaving_date(acme, actor):
    # given
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), joined_on=datetime.date(2025, 1, 1)
    )
    services.membership_end(actor=None, membership=membership, left_on=datetime.date(2025, 6, 30))
    membership.refresh_from_db()
    # when
    services.membership_end(actor=actor, membership=membership)
    # then
    membership.refresh_from_db()
    assert (membership.is_active, membership.left_on, membership.updated_by) == (
        False,
        datetime.date(2025, 6, 30),
        None,
    )


def test_membership_reactivation_clears_the_leaving_date(acme):
    # given
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), joined_on=datetime.date(2025, 1, 1)
    )
    services.membership_end(actor=None, membership=membership, left_on=datetime.date(2025, 6, 30))
    # when
    services.membership_update(actor=None, membership=membership, is_active=True)
    # then
    membership.refresh_from_db()
    assert (membership.is_active, membership.left_on) == (True, None)


def test_membership_reactivation_refuses_a_deleted_department(acme):
    # given: the member left, then their department was deleted
    department = services.department_create(actor=None, organization=acme, code="HQ", name="HQ")
    membership = services.membership_create(
        actor=None, organization=acme, user=UserFactory(), department=department, joined_on=datetime.date(2025, 1, 1)
    )
    services.membership_end(actor=None, membership=membership, left_on=datetime.date(2025, 6, 30))
    services.department_delete(actor=None, department=department)
    # when
    with pytest.raises(ValidationError) as error:
        services.membership_update(actor=None, membership=membership, is_active=True)
    # then
    assert error.value.message_dict == {"department": ["The department has been deleted."]}
    membership.refresh_from_db()
    assert (membership.is_active, membership.left_on) == (False, datetime.date(2025, 6, 30))
