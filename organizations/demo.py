"""The demo data set behind ``manage.py seed_demo``: two organizations (one with a subsidiary), department trees three
levels deep, about twenty people, and their projects and tasks. Running it again leaves the same data (and puts back
a demo password someone changed, or an account someone deactivated)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from accounts import services as account_services
from accounts.models import User
from organizations import services
from organizations.models import Department, Membership, Organization
from rbac import services as rbac_services
from rbac.models import Role, RoleAssignment
from tasks.demo import seed_tasks

DEMO_PASSWORD = "demo-password-2026"
SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_PASSWORD = "admin-password-2026"

# slug, code, name, parent slug, currency, time zone
ORGANIZATIONS = [
    ("acme", "ACME", "Acme Corporation", None, "EUR", "Europe/Berlin"),
    ("acme-labs", "ACMELABS", "Acme Labs", "acme", "EUR", "Europe/Berlin"),
    ("globex", "GLOBEX", "Globex Inc.", None, "USD", "America/New_York"),
]

# organization slug -> [(code, name, parent code)], parents before children
DEPARTMENTS = {
    "acme": [
        ("HQ", "Headquarters", None),
        ("FIN", "Finance", "HQ"),
        ("FIN-AP", "Accounts Payable", "FIN"),
        ("FIN-AR", "Accounts Receivable", "FIN"),
        ("ENG", "Engineering", "HQ"),
        ("ENG-PLATFORM", "Platform", "ENG"),
        ("ENG-MOBILE", "Mobile", "ENG"),
        ("SALES", "Sales", "HQ"),
        ("SALES-EU", "Sales Europe", "SALES"),
    ],
    "acme-labs": [
        ("LABS", "Acme Labs", None),
        ("RESEARCH", "Research", "LABS"),
        ("RESEARCH-AI", "Applied AI", "RESEARCH"),
    ],
    "globex": [
        ("GHQ", "Globex Head Office", None),
        ("OPS", "Operations", "GHQ"),
        ("OPS-LOG", "Logistics", "OPS"),
        ("HR", "Human Resources", "GHQ"),
        ("HR-REC", "Recruiting", "HR"),
    ],
}

# email, full name, organization slug, department code, job title, system role (managers hold it for their
# department's subtree, everyone else for the whole organization)
PEOPLE = [
    ("alice@acme.example", "Alice Anders", "acme", "HQ", "Chief Operating Officer", "org_admin"),
    ("bob@acme.example", "Bob Brandt", "acme", "FIN", "Head of Finance", "manager"),
    ("carol@acme.example", "Carol Clement", "acme", "FIN-AP", "Accountant", "member"),
    ("dave@acme.example", "Dave Dietrich", "acme", "FIN-AR", "Credit Controller", "member"),
    ("erin@acme.example", "Erin Engel", "acme", "ENG", "VP Engineering", "manager"),
    ("frank@acme.example", "Frank Fischer", "acme", "ENG-PLATFORM", "Platform Engineer", "member"),
    ("grace@acme.example", "Grace Graf", "acme", "ENG-MOBILE", "Mobile Engineer", "member"),
    ("heidi@acme.example", "Heidi Hahn", "acme", "SALES", "Sales Director", "manager"),
    ("ivan@acme.example", "Ivan Illner", "acme", "SALES-EU", "Account Executive", "member"),
    ("judy@acme.example", "Judy Jansen", "acme", "HQ", "Internal Auditor", "auditor"),
    ("karl@acme.example", "Karl Koch", "acme-labs", "LABS", "Lab Director", "org_admin"),
    ("lena@acme.example", "Lena Lorenz", "acme-labs", "RESEARCH", "Researcher", "member"),
    ("mike@acme.example", "Mike Meyer", "acme-labs", "RESEARCH-AI", "ML Engineer", "member"),
    ("nina@globex.example", "Nina Novak", "globex", "GHQ", "Managing Director", "org_admin"),
    ("oscar@globex.example", "Oscar Olsen", "globex", "OPS", "Operations Manager", "manager"),
    ("peggy@globex.example", "Peggy Price", "globex", "OPS-LOG", "Logistics Planner", "member"),
    ("quinn@globex.example", "Quinn Quade", "globex", "HR", "HR Manager", "manager"),
    ("rita@globex.example", "Rita Ross", "globex", "HR-REC", "Recruiter", "member"),
    ("sam@globex.example", "Sam Stone", "globex", "OPS", "Analyst", "viewer"),
]

# The people whose logins seed_demo prints: one of each kind.
DEMO_LOGINS = (
    "alice@acme.example",
    "karl@acme.example",
    "nina@globex.example",
    "bob@acme.example",
    "judy@acme.example",
    "frank@acme.example",
    "sam@globex.example",
)

# Department managers: organization slug -> {department code: manager email}
MANAGERS = {
    "acme": {
        "HQ": "alice@acme.example",
        "FIN": "bob@acme.example",
        "ENG": "erin@acme.example",
        "SALES": "heidi@acme.example",
    },
    "acme-labs": {"LABS": "karl@acme.example"},
    "globex": {"GHQ": "nina@globex.example", "OPS": "oscar@globex.example", "HR": "quinn@globex.example"},
}


@dataclass
class SeedReport:
    created: dict[str, int] = field(
        default_factory=lambda: {
            "organizations": 0,
            "departments": 0,
            "users": 0,
            "memberships": 0,
            "role assignments": 0,
        }
    )
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # email, password, what they are


def _user(email: str, full_name: str, password: str, report: SeedReport, **flags: bool) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = account_services.user_create(
            email=email, password=password, full_name=full_name, validate_password=False, **flags
        )
        report.created["users"] += 1
    else:
        # Only what drifted is put back, so that a second run changes nothing (a reset password would record a
        # password change and end the person's other sessions).
        changed = []
        if not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        if not user.is_active:
            user.is_active = True
            changed.append("is_active")
        if changed:
            user.save(update_fields=[*changed, "updated_at"])
    return user


@transaction.atomic
def seed_demo() -> SeedReport:
    report = SeedReport()
    superuser = _user(
        SUPERUSER_EMAIL, "Platform Administrator", SUPERUSER_PASSWORD, report, is_superuser=True, is_staff=True
    )
    report.logins.append((SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "superuser (platform operator)"))

    organizations: dict[str, Organization] = {}
    for slug, code, name, parent_slug, currency, time_zone in ORGANIZATIONS:
        organization = Organization.all_objects.filter(slug=slug).first()
        if organization is None:
            organization = services.organization_create(
                actor=superuser,
                slug=slug,
                code=code,
                name=name,
                parent=organizations.get(parent_slug or ""),
                currency_code=currency,
                time_zone=time_zone,
            )
            report.created["organizations"] += 1
        elif organization.is_deleted:
            organization = services.organization_restore(actor=superuser, organization=organization)
        organizations[slug] = organization

    departments: dict[tuple[str, str], Department] = {}
    for slug, tree in DEPARTMENTS.items():
        organization = organizations[slug]
        for code, name, parent_code in tree:
            department = Department.objects.for_organization(organization).filter(code=code).first()
            if department is None:
                department = services.department_create(
                    actor=superuser,
                    organization=organization,
                    code=code,
                    name=name,
                    parent=departments[(slug, parent_code)] if parent_code else None,
                )
                report.created["departments"] += 1
            departments[(slug, code)] = department

    for email, full_name, slug, department_code, job_title, role_code in PEOPLE:
        user = _user(email, full_name, DEMO_PASSWORD, report, is_staff=role_code == "org_admin")
        organization = organizations[slug]
        department = departments[(slug, department_code)]
        if not Membership.objects.for_organization(organization).filter(user=user).exists():
            services.membership_create(
                actor=superuser, organization=organization, user=user, department=department, job_title=job_title
            )
            report.created["memberships"] += 1
        role = Role.objects.get(organization__isnull=True, code=role_code)
        scope = department if role_code == "manager" else None
        if not RoleAssignment.objects.filter(
            organization=organization, user=user, role=role, department=scope
        ).exists():
            rbac_services.role_assign(
                actor=None, organization=organization, user=user, role=role, department=scope, reason="demo data"
            )
            report.created["role assignments"] += 1
        if email in DEMO_LOGINS:
            where = f"{department.name} of {slug}" if scope else slug
            report.logins.append((email, DEMO_PASSWORD, f"{role.name} ({role_code}) in {where}"))

    for slug, managers in MANAGERS.items():
        for code, email in managers.items():
            department = departments[(slug, code)]
            manager = User.objects.get(email__iexact=email)
            if department.manager_id != manager.pk:
                services.department_update(actor=superuser, department=department, manager=manager)

    report.created.update(seed_tasks(actor=superuser))
    return report
