import pytest
from django.conf import settings
from django.core.cache import caches
from rest_framework.test import APIClient

from accounts.models import User
from organizations.models import Department, Membership, Organization
from tests.accounts.factories import SuperuserFactory, UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher costs ~0.3 s a user on this machine; hashing strength is not what these tests test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_caches():
    for alias in settings.CACHES:
        caches[alias].clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def organization(db) -> Organization:
    return OrganizationFactory(slug="acme", code="ACME", name="Acme")


@pytest.fixture
def other_organization(db) -> Organization:
    return OrganizationFactory(slug="globex", code="GLOBEX", name="Globex")


@pytest.fixture
def department(organization) -> Department:
    return DepartmentFactory(organization=organization, code="HQ", name="Headquarters")


@pytest.fixture
def tree(organization) -> dict[str, Department]:
    """Acme's departments HQ → FIN → AP and HQ → ENG, by code."""
    hq = DepartmentFactory(organization=organization, code="HQ")
    fin = DepartmentFactory(organization=organization, parent=hq, code="FIN")
    ap = DepartmentFactory(organization=organization, parent=fin, code="AP")
    eng = DepartmentFactory(organization=organization, parent=hq, code="ENG")
    return {"HQ": hq, "FIN": fin, "AP": ap, "ENG": eng}


@pytest.fixture
def member(organization) -> User:
    """An active member holding the system role ``member`` (reads everything, changes nothing but tasks)."""
    return MembershipFactory(organization=organization, role="member").user


@pytest.fixture
def admin_member(organization) -> User:
    """An active member holding the system role ``org_admin``."""
    return MembershipFactory(organization=organization, role="org_admin").user


@pytest.fixture
def outsider(other_organization) -> User:
    """An active member of another organization (with the member role there)."""
    return MembershipFactory(organization=other_organization, role="member").user


@pytest.fixture
def superuser(db) -> User:
    return SuperuserFactory()


@pytest.fixture
def client_for(api_client):
    def _client_for(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return _client_for


def membership_of(user: User, organization: Organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


@pytest.fixture
def user(db) -> User:
    return UserFactory()
