"""Invariants of organizations, departments and memberships, as the models enforce them.

Rules are checked through ``full_clean()`` (what every service runs before saving) and, where the database keeps the
rule too, by writing past validation and expecting an ``IntegrityError``.
"""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from organizations.models import Department, Membership, Organization
from rbac.models import RoleAssignment
from tests.accounts.factories import UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


CYCLE = "This parent is a subsidiary of this organization: that would make a cycle."
UNDER_ITSELF = "A department cannot be placed under itself or one of its sub-departments."
NOT_A_MEMBER = "The manager must be an active member of the organization."
DUPLICATE_DEPARTMENT_CODE = "Another department of this organization already has this code."
DUPLICATE_EMPLOYEE_NUMBER = "Another member of this organization already has this employee number."


def validation_messages(instance, **kwargs) -> dict[str, list[str]]:
    """Run the model validation the services run and return its messages by field (empty when valid)."""
    try:
        instance.full_clean(**kwargs)
    except ValidationError as error:
        return error.message_dict
    return {}


def clean_department(department: Department) -> dict[str, list[str]]:
    # path and depth are derived by the services after validation, exactly as department_create does.
    return validation_messages(department, exclude=["path", "depth"])


def write_past_validation(queryset, **values) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


def department_chain(organization: Organization, codes: list[str]) -> list[Department]:
    """Departments nested one under the other, in the order given."""
    chain: list[Department] = []
    for code in codes:
        chain.append(DepartmentFactory(organization=organization, parent=chain[-1] if chain else None, code=code))
    return chain


# --- Organization: identity ------------------------------------------------------------------------------------------


def test_organization_slug_is_unique():
    # given
    OrganizationFactory(slug="acme", code="ACME")
    # when
    messages = validation_messages(Organization(slug="acme", code="OTHER", name="Other"))
    # then
    assert messages == {"slug": ["An organization with this slug already exists."]}
    assert Organization.all_objects.count() == 1


def test_organization_code_is_unique_whatever_the_letter_case():
    # given
    OrganizationFactory(slug="acme", code="ACME")
    candidate = Organization(slug="acme-2", code="acme", name="Acme again")
    # when
    messages = validation_messages(candidate)
    # then
    assert messages == {"code": ["An organization with this code already exists."]}
    assert candidate.code == "ACME"
    assert Organization.all_objects.count() == 1


def test_organization_slug_and_code_stay_taken_by_a_deleted_organization():
    # given: a deleted organization can be restored, so its slug and code are not free again
    deleted = OrganizationFactory(slug="acme", code="ACME")
    deleted.mark_deleted(actor=None)
    # when
    messages = validation_messages(Organization(slug="acme", code="ACME", name="Acme reborn"))
    # then
    assert messages == {
        "slug": ["An organization with this slug already exists."],
        "code": ["An organization with this code already exists."],
    }
    assert list(Organization.all_objects.values_list("pk", flat=True)) == [deleted.pk]


def test_organization_keeps_its_own_slug_and_code_when_validated_again():
    # given
    organization = OrganizationFactory(slug="acme", code="ACME")
    # when / then
    assert validation_messages(organization) == {}


def test_organization_code_is_upper_cased():
    # given
    organization = Organization(slug="beta", code="beta-1.x", name="Beta")
    # when
    organization.full_clean()
    organization.save()
    # then
    organization.refresh_from_db()
    assert organization.code == "BETA-1.X"


@pytest.mark.parametrize("code", ["-ACME", "AC ME", "AC/ME", ""])
def test_organization_code_needs_letters_digits_and_separators(code):
    # when
    messages = validation_messages(Organization(slug="acme", code=code, name="Acme"))
    # then
    expected = (
        "This field cannot be blank."
        if code == ""
        else "Use letters, digits, '.', '_' and '-', starting with a letter or digit."
    )
    assert messages == {"code": [expected]}


def test_organization_slug_and_code_unique_in_the_database():
    # given
    OrganizationFactory(slug="acme", code="ACME")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(slug="acme", code="OTHER", name="Other")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(slug="other", code="ACME", name="Other")
    assert list(Organization.all_objects.values_list("slug", flat=True)) == ["acme"]


# --- Organization: parent chain --------------------------------------------------------------------------------------


def test_organization_may_be_a_subsidiary():
    # given
    parent = OrganizationFactory(slug="acme")
    subsidiary = Organization(slug="acme-labs", code="LABS", name="Acme Labs", parent=parent)
    # when / then
    assert validation_messages(subsidiary) == {}


def test_organization_cannot_be_its_own_parent():
    # given
    organization = OrganizationFactory(slug="acme")
    # when
    organization.parent = organization
    messages = validation_messages(organization)
    # then
    assert messages == {"parent": ["An organization cannot be its own parent."]}
    organization.refresh_from_db()
    assert organization.parent_id is None


def test_organization_parent_cycle_of_two_is_rejected():
    # given: B is a subsidiary of A
    a = OrganizationFactory(slug="a")
    b = OrganizationFactory(slug="b", parent=a)
    # when: A would become a subsidiary of B
    a.parent = b
    messages = validation_messages(a)
    # then
    assert messages == {"parent": [CYCLE]}
    a.refresh_from_db()
    assert a.parent_id is None
    assert b.parent_id == a.pk


def test_organization_parent_cycle_over_several_levels_is_rejected():
    # given: A <- B <- C <- D
    a = OrganizationFactory(slug="a")
    b = OrganizationFactory(slug="b", parent=a)
    c = OrganizationFactory(slug="c", parent=b)
    d = OrganizationFactory(slug="d", parent=c)
    # when: A would go under D
    a.parent = Organization.objects.get(pk=d.pk)
    messages = validation_messages(a)
    # then
    assert messages == {"parent": [CYCLE]}
    assert dict(Organization.objects.values_list("slug", "parent__slug")) == {
        "a": None,
        "b": "a",
        "c": "b",
        "d": "c",
    }


def test_organization_may_move_under_a_sibling_branch():
    # given: B and C are both subsidiaries of A
    a = OrganizationFactory(slug="a")
    b = OrganizationFactory(slug="b", parent=a)
    c = OrganizationFactory(slug="c", parent=a)
    # when: C goes under B (no loop)
    c.parent = b
    # then
    assert validation_messages(c) == {}


def test_organization_parent_cannot_be_deleted():
    # given
    parent = OrganizationFactory(slug="acme")
    parent.mark_deleted(actor=None)
    # when
    messages = validation_messages(Organization(slug="labs", code="LABS", name="Labs", parent=parent))
    # then
    assert messages == {"parent": ["The parent organization has been deleted."]}
    assert Organization.all_objects.count() == 1


def test_organization_own_parent_is_refused_by_the_database():
    # given
    organization = OrganizationFactory(slug="acme")
    # when / then
    write_past_validation(Organization.objects.filter(pk=organization.pk), parent=organization)
    organization.refresh_from_db()
    assert organization.parent_id is None


# --- Organization: settings ------------------------------------------------------------------------------------------


def test_organization_defaults():
    # when
    organization = OrganizationFactory(slug="acme")
    # then
    organization.refresh_from_db()
    assert organization.is_active is True
    assert organization.time_zone == "UTC"
    assert organization.currency_code == "EUR"
    assert organization.fiscal_year_start_month == 1
    assert organization.max_department_depth == 10
    assert organization.history_retention_days is None
    assert organization.is_deleted is False


def test_organization_history_retention_empty_means_keep_forever():
    # given
    organization = Organization(slug="acme", code="ACME", name="Acme", history_retention_days=None)
    # when
    organization.full_clean()
    organization.save()
    # then: NULL is stored (no hidden default window)
    organization.refresh_from_db()
    assert organization.history_retention_days is None
    assert Organization.objects.filter(history_retention_days__isnull=True).count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fiscal_year_start_month", 0, "Ensure this value is greater than or equal to 1."),
        ("fiscal_year_start_month", 13, "Ensure this value is less than or equal to 12."),
        ("max_department_depth", 0, "Ensure this value is greater than or equal to 1."),
        ("max_department_depth", 21, "Ensure this value is less than or equal to 20."),
        ("history_retention_days", 0, "Ensure this value is greater than or equal to 1."),
        ("time_zone", "Mars/Olympus", "Mars/Olympus is not a known IANA time zone."),
        ("time_zone", "", "This field cannot be blank."),
        ("currency_code", "eur", "Use a three-letter ISO 4217 code such as EUR."),
        ("currency_code", "EU", "Use a three-letter ISO 4217 code such as EUR."),
    ],
)
def test_organization_settings_out_of_range_are_rejected(field, value, message):
    # given
    organization = Organization(slug="acme", code="ACME", name="Acme", **{field: value})
    # when
    messages = validation_messages(organization)
    # then
    assert messages == {field: [message]}
    assert Organization.all_objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fiscal_year_start_month", 1),
        ("fiscal_year_start_month", 12),
        ("max_department_depth", 1),
        ("max_department_depth", 20),
        ("history_retention_days", 1),
        ("history_retention_days", 3650),
        ("time_zone", "Asia/Tokyo"),
        ("time_zone", "America/Argentina/Buenos_Aires"),
        ("currency_code", "JPY"),
    ],
)
def test_organization_settings_at_the_limits_are_accepted(field, value):
    # given
    organization = Organization(slug="acme", code="ACME", name="Acme", **{field: value})
    # when
    organization.full_clean()
    organization.save()
    # then
    organization.refresh_from_db()
    assert getattr(organization, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fiscal_year_start_month", 0),
        ("fiscal_year_start_month", 13),
        ("max_department_depth", 0),
        ("max_department_depth", 21),
        ("history_retention_days", 0),
    ],
)
def test_organization_settings_ranges_are_database_constraints(field, value):
    # given
    organization = OrganizationFactory(slug="acme")
    before = getattr(organization, field)
    # when / then: the database refuses even when validation is skipped
    write_past_validation(Organization.objects.filter(pk=organization.pk), **{field: value})
    organization.refresh_from_db()
    assert getattr(organization, field) == before


def test_organization_depth_limit_cannot_drop_below_the_existing_tree():
    # given: a tree three levels deep
    organization = OrganizationFactory(slug="acme", max_department_depth=5)
    department_chain(organization, ["HQ", "FIN", "AP"])
    # when
    organization.max_department_depth = 2
    messages = validation_messages(organization)
    # then
    assert messages == {"max_department_depth": ["The departments of this organization already go 3 levels deep."]}
    assert Organization.objects.get(pk=organization.pk).max_department_depth == 5


def test_organization_depth_limit_may_drop_to_the_existing_tree_depth():
    # given: a tree three levels deep, a deleted department would make it four
    organization = OrganizationFactory(slug="acme", max_department_depth=5)
    chain = department_chain(organization, ["HQ", "FIN", "AP", "OLD"])
    chain[-1].mark_deleted(actor=None)
    # when
    organization.max_department_depth = 3
    # then
    assert validation_messages(organization) == {}


# --- Department: code ------------------------------------------------------------------------------------------------


def test_department_code_is_unique_per_organization_whatever_the_letter_case():
    # given
    organization = OrganizationFactory(slug="acme")
    DepartmentFactory(organization=organization, code="HQ")
    candidate = Department(organization=organization, code="hq", name="Another HQ")
    # when
    messages = clean_department(candidate)
    # then
    assert messages == {"code": [DUPLICATE_DEPARTMENT_CODE]}
    assert candidate.code == "HQ"
    assert Department.all_objects.count() == 1


def test_department_code_is_upper_cased():
    # given
    department = Department(organization=OrganizationFactory(slug="acme"), code="sales-eu", name="Sales Europe")
    # when
    messages = clean_department(department)
    # then
    assert messages == {}
    assert department.code == "SALES-EU"


def test_department_code_is_reusable_in_another_organization():
    # given
    DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    other = OrganizationFactory(slug="globex")
    department = Department(organization=other, code="HQ", name="Head office", path="HQ/", depth=1)
    # when
    messages = clean_department(department)
    department.save()
    # then
    assert messages == {}
    assert sorted(Department.objects.values_list("organization__slug", "code")) == [("acme", "HQ"), ("globex", "HQ")]


def test_department_code_is_reusable_after_soft_delete():
    # given
    organization = OrganizationFactory(slug="acme")
    old = DepartmentFactory(organization=organization, code="HQ")
    old.mark_deleted(actor=None)
    department = Department(organization=organization, code="HQ", name="New HQ", path="HQ/", depth=1)
    # when
    messages = clean_department(department)
    department.save()
    # then
    assert messages == {}
    assert Department.objects.get().pk == department.pk
    assert Department.all_objects.filter(code="HQ").count() == 2


def test_department_code_unique_among_live_rows_in_the_database():
    # given
    organization = OrganizationFactory(slug="acme")
    DepartmentFactory(organization=organization, code="HQ")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Department.objects.create(organization=organization, code="HQ", name="Twin", path="HQ/", depth=1)
    assert Department.all_objects.count() == 1


# --- Department: parent and depth ------------------------------------------------------------------------------------


def test_department_parent_from_another_organization_is_rejected():
    # given
    foreign = DepartmentFactory(organization=OrganizationFactory(slug="globex"), code="GHQ")
    department = Department(organization=OrganizationFactory(slug="acme"), code="FIN", name="Finance", parent=foreign)
    # when
    messages = clean_department(department)
    # then
    assert messages == {"parent": ["The parent department belongs to another organization."]}
    assert Department.all_objects.count() == 1


def test_department_parent_cannot_be_deleted():
    # given
    organization = OrganizationFactory(slug="acme")
    parent = DepartmentFactory(organization=organization, code="HQ")
    parent.mark_deleted(actor=None)
    department = Department(organization=organization, code="FIN", name="Finance", parent=parent)
    # when
    messages = clean_department(department)
    # then
    assert messages == {"parent": ["The parent department has been deleted."]}


def test_department_cannot_be_its_own_parent():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    # when
    department.parent = department
    messages = clean_department(department)
    # then
    assert messages == {"parent": [UNDER_ITSELF]}
    assert Department.objects.get(pk=department.pk).parent_id is None


@pytest.mark.parametrize("level", [1, 2])
def test_department_cannot_move_under_one_of_its_descendants(level):
    # given: HQ / FIN / AP
    hq, fin, ap = department_chain(OrganizationFactory(slug="acme"), ["HQ", "FIN", "AP"])
    # when: HQ would go under FIN (child) or AP (grandchild)
    hq.parent = [fin, ap][level - 1]
    messages = clean_department(hq)
    # then
    assert messages == {"parent": [UNDER_ITSELF]}
    assert Department.objects.get(pk=hq.pk).parent_id is None


def test_department_may_move_under_a_department_whose_code_starts_like_its_own():
    # given: FIN and FINANCE are siblings; the path of FINANCE starts with "FIN" but is not below FIN/
    organization = OrganizationFactory(slug="acme")
    fin = DepartmentFactory(organization=organization, code="FIN")
    finance = DepartmentFactory(organization=organization, code="FINANCE")
    # when
    fin.parent = finance
    # then
    assert clean_department(fin) == {}


def test_department_tree_depth_is_limited_by_the_organization():
    # given: a limit of three levels, already reached
    organization = OrganizationFactory(slug="acme", max_department_depth=3)
    _, _, third = department_chain(organization, ["HQ", "FIN", "AP"])
    # when
    messages = clean_department(Department(organization=organization, code="AP-DE", name="AP Germany", parent=third))
    # then
    assert messages == {"parent": ["The department tree of this organization is limited to 3 levels."]}
    assert third.depth == 3
    assert Department.objects.count() == 3


def test_department_at_the_depth_limit_is_accepted():
    # given
    organization = OrganizationFactory(slug="acme", max_department_depth=3)
    _, second = department_chain(organization, ["HQ", "FIN"])
    # when / then
    assert clean_department(Department(organization=organization, code="AP", name="AP", parent=second)) == {}


def test_department_subtree_that_would_get_too_deep_cannot_move():
    # given: limit 4; HQ/FIN/AP (3 levels) and OPS/LOG (a subtree two levels high)
    organization = OrganizationFactory(slug="acme", max_department_depth=4)
    _, fin, ap = department_chain(organization, ["HQ", "FIN", "AP"])
    ops, _ = department_chain(organization, ["OPS", "LOG"])
    # when: OPS under AP would put LOG at level 5
    ops.parent = ap
    too_deep = clean_department(ops)
    # and: OPS under FIN puts LOG at level 4, which is allowed
    ops.parent = fin
    deep_enough = clean_department(ops)
    # then
    assert too_deep == {"parent": ["The department tree of this organization is limited to 4 levels."]}
    assert deep_enough == {}
    assert Department.objects.get(pk=ops.pk).path == "OPS/"


def test_department_subtree_height():
    # given
    hq, fin, ap = department_chain(OrganizationFactory(slug="acme"), ["HQ", "FIN", "AP"])
    # when / then
    assert [hq.subtree_height(), fin.subtree_height(), ap.subtree_height()] == [2, 1, 0]
    assert Department(organization=hq.organization, code="NEW", name="New").subtree_height() == 0


def test_department_own_parent_and_depth_are_database_constraints():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    # when / then
    write_past_validation(Department.objects.filter(pk=department.pk), parent=department)
    write_past_validation(Department.objects.filter(pk=department.pk), depth=0)
    department.refresh_from_db()
    assert (department.parent_id, department.depth) == (None, 1)


# --- Department: manager ---------------------------------------------------------------------------------------------


def test_department_manager_must_be_a_member():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    # when
    department.manager = UserFactory()
    messages = clean_department(department)
    # then
    assert messages == {"manager": [NOT_A_MEMBER]}
    assert Department.objects.get(pk=department.pk).manager_id is None


def test_department_manager_must_be_an_active_member():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    former = MembershipFactory(organization=department.organization, is_active=False).user
    # when
    department.manager = former
    # then
    assert clean_department(department) == {"manager": [NOT_A_MEMBER]}


def test_department_manager_must_be_a_member_of_this_organization():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    outsider = MembershipFactory(organization=OrganizationFactory(slug="globex")).user
    # when
    department.manager = outsider
    # then
    assert clean_department(department) == {"manager": [NOT_A_MEMBER]}


def test_department_manager_who_is_an_active_member_is_accepted():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    department.manager = MembershipFactory(organization=department.organization).user
    # when / then
    assert clean_department(department) == {}


# --- Membership ------------------------------------------------------------------------------------------------------


def test_membership_is_unique_per_user_and_organization():
    # given
    existing = MembershipFactory(organization=OrganizationFactory(slug="acme"))
    # when
    messages = validation_messages(Membership(organization=existing.organization, user=existing.user))
    # then
    assert messages == {"__all__": ["Membership with this Organization and User already exists."]}
    assert Membership.objects.count() == 1


def test_membership_of_the_same_user_in_another_organization_is_accepted():
    # given
    existing = MembershipFactory(organization=OrganizationFactory(slug="acme"))
    membership = Membership(organization=OrganizationFactory(slug="globex"), user=existing.user)
    # when / then
    assert validation_messages(membership) == {}


def test_membership_unique_per_user_and_organization_in_the_database():
    # given
    existing = MembershipFactory(organization=OrganizationFactory(slug="acme"))
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(organization=existing.organization, user=existing.user)
    assert Membership.objects.count() == 1


def test_membership_employee_number_is_unique_per_organization():
    # given
    organization = OrganizationFactory(slug="acme")
    MembershipFactory(organization=organization, employee_number="E-001")
    # when
    messages = validation_messages(Membership(organization=organization, user=UserFactory(), employee_number="E-001"))
    # then
    assert messages == {"employee_number": [DUPLICATE_EMPLOYEE_NUMBER]}
    assert Membership.objects.count() == 1


def test_membership_employee_number_is_reusable_in_another_organization():
    # given
    MembershipFactory(organization=OrganizationFactory(slug="acme"), employee_number="E-001")
    membership = Membership(
        organization=OrganizationFactory(slug="globex"), user=UserFactory(), employee_number="E-001"
    )
    # when / then
    assert validation_messages(membership) == {}


def test_membership_without_employee_numbers_do_not_clash():
    # given
    organization = OrganizationFactory(slug="acme")
    MembershipFactory(organization=organization, employee_number=None)
    membership = Membership(organization=organization, user=UserFactory(), employee_number=None)
    # when
    messages = validation_messages(membership)
    membership.save()
    # then
    assert messages == {}
    assert Membership.objects.filter(employee_number__isnull=True).count() == 2


def test_membership_empty_employee_number_becomes_null():
    # given: one member already stored with no number
    organization = OrganizationFactory(slug="acme")
    MembershipFactory(organization=organization, employee_number=None)
    membership = Membership(organization=organization, user=UserFactory(), employee_number="")
    # when
    messages = validation_messages(membership)
    membership.save()
    # then: "" is stored as NULL and so does not clash with the other member without a number
    assert messages == {}
    membership.refresh_from_db()
    assert membership.employee_number is None
    assert Membership.objects.filter(employee_number__isnull=True).count() == 2


def test_membership_employee_number_unique_in_the_database():
    # given
    organization = OrganizationFactory(slug="acme")
    MembershipFactory(organization=organization, employee_number="E-001")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(organization=organization, user=UserFactory(), employee_number="E-001")
    assert Membership.objects.count() == 1


def test_membership_department_from_another_organization_is_rejected():
    # given
    foreign = DepartmentFactory(organization=OrganizationFactory(slug="globex"), code="GHQ")
    membership = Membership(organization=OrganizationFactory(slug="acme"), user=UserFactory(), department=foreign)
    # when
    messages = validation_messages(membership)
    # then
    assert messages == {"department": ["The department belongs to another organization."]}
    assert Membership.objects.count() == 0


def test_active_membership_in_a_deleted_department_is_rejected():
    # given
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    department.mark_deleted(actor=None)
    membership = Membership(organization=department.organization, user=UserFactory(), department=department)
    # when
    messages = validation_messages(membership)
    # then
    assert messages == {"department": ["The department has been deleted."]}


def test_ended_membership_may_stay_in_a_deleted_department():
    # given: a former member of a department deleted after they left
    department = DepartmentFactory(organization=OrganizationFactory(slug="acme"), code="HQ")
    membership = MembershipFactory(department=department, is_active=False, left_on=timezone.localdate())
    department.mark_deleted(actor=None)
    membership.refresh_from_db()
    # when
    membership.job_title = "Former clerk"
    # then
    assert validation_messages(membership) == {}


@pytest.mark.parametrize(
    ("left_on", "expected"),
    [
        (datetime.date(2026, 2, 28), {"left_on": ["The leaving date cannot be before the joining date."]}),
        (datetime.date(2026, 3, 1), {}),
    ],
    ids=["cannot-end-before-it-started", "may-end-on-the-day-it-started"],
)
def test_membership_end_date_against_its_start(left_on, expected):
    # given
    membership = Membership(
        organization=OrganizationFactory(slug="acme"),
        user=UserFactory(),
        joined_on=datetime.date(2026, 3, 1),
        left_on=left_on,
    )
    # when
    messages = validation_messages(membership)
    # then
    assert messages == expected
    assert Membership.objects.count() == 0


def test_membership_dates_are_a_database_constraint():
    # given
    membership = MembershipFactory(organization=OrganizationFactory(slug="acme"), joined_on=datetime.date(2026, 3, 1))
    # when / then
    write_past_validation(Membership.objects.filter(pk=membership.pk), left_on=datetime.date(2026, 2, 28))
    membership.refresh_from_db()
    assert membership.left_on is None


def test_membership_defaults():
    # given
    organization = OrganizationFactory(slug="acme")
    membership = Membership(organization=organization, user=UserFactory())
    # when
    membership.full_clean()
    membership.save()
    # then
    membership.refresh_from_db()
    assert membership.is_active is True
    assert not RoleAssignment.objects.filter(user=membership.user).exists()  # a membership alone grants no role
    assert membership.joined_on == timezone.localdate()
    assert membership.left_on is None
    assert membership.employee_number is None
    assert membership.department_id is None
