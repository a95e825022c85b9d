"""List endpoints cost the same number of queries whoever asks and however many rows there are.

Measured with a warm permission cache (a first request computes and caches the caller's permissions) for a superuser,
an organization administrator, a department-scoped manager and a user who holds only object grants.
"""

import pytest
from guardian.shortcuts import assign_perm

from tests.accounts.factories import SuperuserFactory
from tests.api_helpers import warm_queries
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import RoleAssignmentFactory, system_role

pytestmark = pytest.mark.django_db

# endpoint -> (URL, queries: the organization check and the page)
ENDPOINTS = {
    "departments": ("/api/v1/organizations/acme/departments/?page_size=200", 2),
    "tree": ("/api/v1/organizations/acme/departments/tree/", 2),
    "members": ("/api/v1/organizations/acme/members/?page_size=200", 2),
}
# Members are not shareable: a user with grants on departments only sees no membership (and runs no query for it).
CALLERS = {
    "departments": ("superuser", "org_admin", "department_manager", "grant_only"),
    "tree": ("superuser", "org_admin", "department_manager", "grant_only"),
    "members": ("superuser", "org_admin", "department_manager"),
}


@pytest.fixture
def build(organization):
    def _build(size: int) -> dict[str, object]:
        """A root SCOPE with ``size`` departments (one member each) below it, and one department outside it."""
        scope = DepartmentFactory(organization=organization, code="SCOPE")
        DepartmentFactory(organization=organization, code="OUTSIDE")
        departments = [DepartmentFactory(organization=organization, parent=scope, code=f"D{i}") for i in range(size)]
        for department in departments:
            MembershipFactory(organization=organization, department=department)
        manager = MembershipFactory(organization=organization).user
        RoleAssignmentFactory(organization=organization, user=manager, role=system_role("manager"), department=scope)
        grantee = MembershipFactory(organization=organization).user
        for department in departments:
            assign_perm("organizations.view_department", grantee, department)
        return {
            "superuser": SuperuserFactory(),
            "org_admin": MembershipFactory(organization=organization, role="org_admin").user,
            "department_manager": manager,
            "grant_only": grantee,
        }

    return _build


@pytest.mark.parametrize("size", [10, 200])
@pytest.mark.parametrize(
    ("endpoint", "caller"),
    [(endpoint, caller) for endpoint, callers in CALLERS.items() for caller in callers],
)
def test_list_queries_do_not_depend_on_the_caller_or_the_size(build, endpoint, caller, size):
    users = build(size)
    url, expected = ENDPOINTS[endpoint]
    count, body = warm_queries(users[caller], url)
    assert count == expected
    rows = body if isinstance(body, list) else body["results"]
    assert rows  # the caller really sees data


@pytest.mark.parametrize(("caller", "expected"), [("department_manager", 201), ("grant_only", 200), ("org_admin", 202)])
def test_each_caller_sees_exactly_their_scope(build, caller, expected):
    users = build(200)
    _count, body = warm_queries(users[caller], ENDPOINTS["departments"][0])
    assert len(body["results"]) == min(expected, 200)
