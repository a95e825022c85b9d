"""Management commands of the organizations app: create_organization and seed_demo."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Max

from accounts.models import User
from organizations import services
from organizations.demo import DEMO_PASSWORD, SUPERUSER_PASSWORD
from organizations.models import Department, Membership, Organization
from rbac.models import RoleAssignment
from tests.organizations.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def table_state() -> dict[str, list[tuple]]:
    """Everything the demo writes, to compare two runs."""
    return {
        "organizations": list(
            Organization.all_objects.order_by("pk").values_list("pk", "slug", "code", "parent_id", "deleted_at")
        ),
        "departments": list(
            Department.all_objects.order_by("pk").values_list(
                "pk", "organization_id", "code", "path", "depth", "parent_id", "manager_id", "deleted_at"
            )
        ),
        "users": list(User.objects.order_by("pk").values_list("pk", "email", "is_superuser", "is_staff", "is_active")),
        "memberships": list(
            Membership.objects.order_by("pk").values_list(
                "pk", "organization_id", "user_id", "department_id", "job_title", "is_active"
            )
        ),
        "role assignments": list(
            RoleAssignment.objects.order_by("pk").values_list(
                "pk", "organization_id", "user_id", "role_id", "department_id", "is_active", "valid_from", "valid_until"
            )
        ),
    }


# --- create_organization ---------------------------------------------------------------------------------------------


def test_create_organization():
    # when
    output = run("create_organization", "--slug", "acme", "--code", "acme", "--name", "Acme")
    # then
    organization = Organization.objects.get()
    assert output == f"Created organization acme (id {organization.pk}).\n"
    assert (organization.slug, organization.code, organization.name, organization.parent_id) == (
        "acme",
        "ACME",
        "Acme",
        None,
    )
    assert (organization.time_zone, organization.currency_code) == ("UTC", "EUR")
    assert (organization.fiscal_year_start_month, organization.max_department_depth) == (1, 10)
    assert organization.history_retention_days is None
    assert organization.created_by is None


def test_create_organization_with_settings():
    # when
    run(
        "create_organization",
        "--slug=globex",
        "--code=GLOBEX",
        "--name=Globex Inc.",
        "--time-zone=America/New_York",
        "--currency=USD",
        "--fiscal-year-start-month=7",
        "--max-department-depth=4",
        "--history-retention-days=2555",
    )
    # then
    organization = Organization.objects.get(slug="globex")
    assert (organization.time_zone, organization.currency_code) == ("America/New_York", "USD")
    assert (organization.fiscal_year_start_month, organization.max_department_depth) == (7, 4)
    assert organization.history_retention_days == 2555


def test_create_organization_with_parent():
    # given
    acme = OrganizationFactory(slug="acme", code="ACME")
    # when
    output = run(
        "create_organization", "--slug", "acme-labs", "--code", "LABS", "--name", "Acme Labs", "--parent", "acme"
    )
    # then
    labs = Organization.objects.get(slug="acme-labs")
    assert output == f"Created organization acme-labs (id {labs.pk}).\n"
    assert labs.parent_id == acme.pk


def test_create_organization_with_an_unknown_parent():
    # given
    OrganizationFactory(slug="acme", code="ACME")
    # when
    with pytest.raises(CommandError) as error:
        run("create_organization", "--slug", "labs", "--code", "LABS", "--name", "Labs", "--parent", "acne")
    # then
    assert str(error.value) == "No organization has the slug 'acne'."
    assert list(Organization.all_objects.values_list("slug", flat=True)) == ["acme"]


def test_create_organization_with_a_deleted_parent():
    # given
    OrganizationFactory(slug="acme", code="ACME").mark_deleted(actor=None)
    # when
    with pytest.raises(CommandError) as error:
        run("create_organization", "--slug", "labs", "--code", "LABS", "--name", "Labs", "--parent", "acme")
    # then
    assert str(error.value) == "No organization has the slug 'acme'."
    assert list(Organization.all_objects.values_list("slug", flat=True)) == ["acme"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--slug=acme"], "slug: An organization with this slug already exists."),
        (["--code=acme"], "code: An organization with this code already exists."),
        (["--currency=usd"], "currency_code: Use a three-letter ISO 4217 code such as EUR."),
        (["--time-zone=Europe/Atlantis"], "time_zone: Europe/Atlantis is not a known IANA time zone."),
        (["--fiscal-year-start-month=13"], "fiscal_year_start_month: Ensure this value is less than or equal to 12."),
        (["--max-department-depth=0"], "max_department_depth: Ensure this value is greater than or equal to 1."),
        (["--history-retention-days=0"], "history_retention_days: Ensure this value is greater than or equal to 1."),
        (
            ["--slug=not a slug", "--code=-X"],
            "slug: Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.; "
            "code: Use letters, digits, '.', '_' and '-', starting with a letter or digit.",
        ),
    ],
)
def test_create_organization_reports_validation_errors(options, message):
    # given
    existing = OrganizationFactory(slug="acme", code="ACME")
    defaults = {"--slug": "globex", "--code": "GLOBEX", "--name": "Globex"}
    arguments = [f"{name}={value}" for name, value in defaults.items() if not any(o.startswith(name) for o in options)]
    # when
    with pytest.raises(CommandError) as error:
        run("create_organization", *arguments, *options)
    # then
    assert str(error.value) == message
    assert list(Organization.all_objects.values_list("pk", flat=True)) == [existing.pk]


def test_create_organization_reports_the_slug_of_a_deleted_organization():
    # given: the slug stays taken by the deleted organization (it may be restored)
    services.organization_delete(actor=None, organization=OrganizationFactory(slug="acme", code="ACME"))
    # when
    with pytest.raises(CommandError) as error:
        run("create_organization", "--slug", "acme", "--code", "ACME2", "--name", "Acme 2")
    # then
    assert str(error.value) == "slug: An organization with this slug already exists."
    assert Organization.all_objects.count() == 1


def test_create_organization_needs_slug_code_and_name():
    # when
    with pytest.raises(CommandError) as error:
        run("create_organization", "--slug", "acme")
    # then
    assert str(error.value) == "Error: the following arguments are required: --code, --name"
    assert Organization.all_objects.count() == 0


# --- seed_demo -------------------------------------------------------------------------------------------------------

LOGINS = (
    "Demo logins:\n"
    f"  admin@example.com        {SUPERUSER_PASSWORD:<22} superuser (platform operator)\n"
    f"  alice@acme.example       {DEMO_PASSWORD:<22} Organization administrator (org_admin) in acme\n"
    f"  bob@acme.example         {DEMO_PASSWORD:<22} Manager (manager) in Finance of acme\n"
    f"  frank@acme.example       {DEMO_PASSWORD:<22} Member (member) in acme\n"
    f"  judy@acme.example        {DEMO_PASSWORD:<22} Auditor (auditor) in acme\n"
    f"  karl@acme.example        {DEMO_PASSWORD:<22} Organization administrator (org_admin) in acme-labs\n"
    f"  nina@globex.example      {DEMO_PASSWORD:<22} Organization administrator (org_admin) in globex\n"
    f"  sam@globex.example       {DEMO_PASSWORD:<22} Viewer (viewer) in globex\n"
)
CREATED_FIRST_TIME = (
    "3 organizations, 17 departments, 20 users, 19 memberships, 19 role assignments, 7 projects, 403 tasks"
)
CREATED_NOTHING = "0 organizations, 0 departments, 0 users, 0 memberships, 0 role assignments, 0 projects, 0 tasks"

# organization, person, system role, department the role is limited to (managers: their department's subtree)
DEMO_ROLES = {
    ("acme", "alice@acme.example", "org_admin", None),
    ("acme", "bob@acme.example", "manager", "FIN"),
    ("acme", "carol@acme.example", "member", None),
    ("acme", "dave@acme.example", "member", None),
    ("acme", "erin@acme.example", "manager", "ENG"),
    ("acme", "frank@acme.example", "member", None),
    ("acme", "grace@acme.example", "member", None),
    ("acme", "heidi@acme.example", "manager", "SALES"),
    ("acme", "ivan@acme.example", "member", None),
    ("acme", "judy@acme.example", "auditor", None),
    ("acme-labs", "karl@acme.example", "org_admin", None),
    ("acme-labs", "lena@acme.example", "member", None),
    ("acme-labs", "mike@acme.example", "member", None),
    ("globex", "nina@globex.example", "org_admin", None),
    ("globex", "oscar@globex.example", "manager", "OPS"),
    ("globex", "peggy@globex.example", "member", None),
    ("globex", "quinn@globex.example", "manager", "HR"),
    ("globex", "rita@globex.example", "member", None),
    ("globex", "sam@globex.example", "viewer", None),
}


def demo_roles() -> set[tuple[str, str, str, str | None]]:
    return set(
        RoleAssignment.objects.values_list("organization__slug", "user__email", "role__code", "department__code")
    )


def test_seed_demo_creates_the_demo_data():
    # when
    output = run("seed_demo")
    # then
    assert output == f"Demo data ready (created now: {CREATED_FIRST_TIME}).\n" + LOGINS
    assert dict(Organization.objects.values_list("slug", "parent__slug")) == {
        "acme": None,
        "acme-labs": "acme",
        "globex": None,
    }
    assert dict(Organization.objects.values_list("slug", "currency_code")) == {
        "acme": "EUR",
        "acme-labs": "EUR",
        "globex": "USD",
    }
    assert User.objects.count() == 20
    assert Membership.objects.filter(is_active=True).count() == 19
    assert RoleAssignment.objects.filter(is_active=True, valid_from=None, valid_until=None).count() == 19


def test_seed_demo_department_trees_are_three_levels_deep():
    # when
    run("seed_demo")
    # then
    depths = dict(
        Department.objects.values("organization__slug")
        .annotate(deepest=Max("depth"))
        .values_list("organization__slug", "deepest")
    )
    assert depths == {"acme": 3, "acme-labs": 3, "globex": 3}
    acme = Organization.objects.get(slug="acme")
    assert list(Department.objects.for_organization(acme).values_list("path", flat=True)) == [
        "HQ/",
        "HQ/ENG/",
        "HQ/ENG/ENG-MOBILE/",
        "HQ/ENG/ENG-PLATFORM/",
        "HQ/FIN/",
        "HQ/FIN/FIN-AP/",
        "HQ/FIN/FIN-AR/",
        "HQ/SALES/",
        "HQ/SALES/SALES-EU/",
    ]


def test_seed_demo_people_and_managers():
    # when
    run("seed_demo")
    # then
    admin = User.objects.get(email="admin@example.com")
    assert (admin.is_superuser, admin.is_staff, admin.is_active) == (True, True, True)
    assert admin.check_password(SUPERUSER_PASSWORD)
    bob = User.objects.get(email="bob@acme.example")
    assert (bob.is_superuser, bob.is_staff) == (False, False)
    assert bob.check_password(DEMO_PASSWORD)
    assert demo_roles() == DEMO_ROLES
    # the organization administrators, and only they, may use the back office
    assert set(User.objects.filter(is_staff=True, is_superuser=False).values_list("email", flat=True)) == {
        "alice@acme.example",
        "karl@acme.example",
        "nina@globex.example",
    }
    assert dict(Department.objects.filter(manager__isnull=False).values_list("code", "manager__email")) == {
        "HQ": "alice@acme.example",
        "FIN": "bob@acme.example",
        "ENG": "erin@acme.example",
        "SALES": "heidi@acme.example",
        "LABS": "karl@acme.example",
        "GHQ": "nina@globex.example",
        "OPS": "oscar@globex.example",
        "HR": "quinn@globex.example",
    }
    bobs_place = Membership.objects.select_related("organization", "department").get(user=bob)
    assert (bobs_place.organization.slug, bobs_place.department.code, bobs_place.job_title) == (
        "acme",
        "FIN",
        "Head of Finance",
    )
    assert Organization.objects.get(slug="acme").created_by == admin


def test_seed_demo_twice_creates_nothing_more():
    # given
    run("seed_demo")
    before = table_state()
    # when
    output = run("seed_demo")
    # then
    assert output == f"Demo data ready (created now: {CREATED_NOTHING}).\n" + LOGINS
    assert table_state() == before
    assert (Organization.all_objects.count(), Department.all_objects.count()) == (3, 17)
    assert (User.objects.count(), Membership.objects.count(), RoleAssignment.objects.count()) == (20, 19, 19)


def test_seed_demo_again_resets_the_demo_passwords_and_restores_a_deleted_organization():
    # given: someone changed a password, deactivated an account and deleted globex
    run("seed_demo")
    bob = User.objects.get(email="bob@acme.example")
    bob.set_password("something-else")
    bob.is_active = False
    bob.save()
    services.organization_delete(actor=None, organization=Organization.objects.get(slug="globex"))
    # when
    output = run("seed_demo")
    # then
    assert output.startswith(f"Demo data ready (created now: {CREATED_NOTHING}).\n")
    bob.refresh_from_db()
    assert (bob.is_active, bob.check_password(DEMO_PASSWORD)) == (True, True)
    assert list(Organization.objects.values_list("slug", flat=True)) == ["acme", "acme-labs", "globex"]
    assert Organization.all_objects.count() == 3
    assert demo_roles() == DEMO_ROLES


def test_seed_demo_refuses_in_prod(settings):
    # given
    settings.ERP_ENV = "prod"
    # when
    with pytest.raises(CommandError) as error:
        run("seed_demo")
    # then
    assert str(error.value) == "Refusing to load demo data with ERP_ENV=prod (use --force if you really mean it)."
    assert (Organization.all_objects.count(), Department.all_objects.count()) == (0, 0)
    assert (User.objects.count(), Membership.objects.count(), RoleAssignment.objects.count()) == (0, 0, 0)


def test_seed_demo_in_prod_with_force(settings):
    # given
    settings.ERP_ENV = "prod"
    # when
    output = run("seed_demo", "--force")
    # then
    assert output.startswith(f"Demo data ready (created now: {CREATED_FIRST_TIME}).\n")
    assert Organization.objects.count() == 3


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_seed_demo_outside_prod_needs_no_force(settings, environment):
    # given
    settings.ERP_ENV = environment
    # when
    run("seed_demo")
    # then
    assert User.objects.count() == 20
