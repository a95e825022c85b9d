import pytest

from tasks import services
from tests.organizations.factories import MembershipFactory


@pytest.fixture
def manager(organization):
    """An organization administrator who runs the test project."""
    return MembershipFactory(organization=organization, role="org_admin").user


@pytest.fixture
def project(organization, manager):
    return services.project_create(
        actor=manager, organization=organization, code="web", name="Website", manager=manager
    )


@pytest.fixture
def worker(organization, project, manager):
    """A member (role ``member``) who is also a contributor of the project."""
    user = MembershipFactory(organization=organization, role="member").user
    services.project_member_set(actor=manager, project=project, user=user)
    return user


@pytest.fixture
def make_task(organization, project, manager):
    def _make_task(**fields):
        fields.setdefault("title", "A task")
        fields.setdefault("project", project)
        return services.task_create(actor=manager, organization=organization, **fields)

    return _make_task
