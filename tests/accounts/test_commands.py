import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from organizations.models import Membership
from rbac.models import RoleAssignment
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_password_in_the_environment(monkeypatch):
    monkeypatch.delenv("ERP_PASSWORD", raising=False)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def roles_of(email: str) -> list[tuple[str, str, int | None, bool]]:
    """The role assignments of the person: organization, role code, department limit, whether in force."""
    return list(
        RoleAssignment.objects.filter(user__email=email)
        .order_by("pk")
        .values_list("organization__slug", "role__code", "department_id", "is_active")
    )


def _create_user(*arguments: str) -> str:
    out = io.StringIO()
    call_command("create_user", *arguments, stdout=out)
    return out.getvalue()


def test_create_user_with_password_argument():
    # given / when
    output = _create_user("--email", "Ann@Example.COM", "--full-name", "Ann Lee", "--password", PASSWORD)

    # then
    user = User.objects.get()
    assert output == f"Created user Ann@example.com (id {user.pk}).\n"
    assert (user.email, user.full_name, user.is_active, user.is_staff, user.is_superuser) == (
        "Ann@example.com",
        "Ann Lee",
        True,
        False,
        False,
    )
    assert user.check_password(PASSWORD) is True
    assert Membership.objects.count() == 0


def test_create_user_with_password_from_the_environment(monkeypatch):
    # given
    monkeypatch.setenv("ERP_PASSWORD", PASSWORD)

    # when
    _create_user("--email", "bob@example.com")

    # then
    assert User.objects.get(email="bob@example.com").check_password(PASSWORD) is True


def test_the_password_argument_wins_over_the_environment(monkeypatch):
    # given
    monkeypatch.setenv("ERP_PASSWORD", "an-environment-passphrase")

    # when
    _create_user("--email", "bob@example.com", "--password", PASSWORD)

    # then
    user = User.objects.get(email="bob@example.com")
    assert user.check_password(PASSWORD) is True
    assert user.check_password("an-environment-passphrase") is False


def test_create_superuser():
    # given / when
    output = _create_user("--email", "root@example.com", "--password", PASSWORD, "--superuser")

    # then
    user = User.objects.get()
    assert output == f"Created superuser root@example.com (id {user.pk}).\n"
    assert (user.is_staff, user.is_superuser) == (True, True)


def test_create_staff_user():
    # given / when
    _create_user("--email", "clerk@example.com", "--password", PASSWORD, "--staff")

    # then
    user = User.objects.get()
    assert (user.is_staff, user.is_superuser) == (True, False)


def test_create_user_as_organization_admin(organization):
    # given / when
    _create_user("--email", "boss@example.com", "--password", PASSWORD, "--organization", "acme", "--admin")

    # then
    membership = Membership.objects.get()
    assert (membership.organization, membership.user.email, membership.is_active) == (
        organization,
        "boss@example.com",
        True,
    )
    assert roles_of("boss@example.com") == [("acme", "org_admin", None, True)]


def test_create_user_as_organization_member(organization):
    # given / when
    _create_user("--email", "clerk@example.com", "--password", PASSWORD, "--organization", "acme")

    # then
    membership = Membership.objects.get()
    assert (membership.organization, membership.user.email, membership.is_active) == (
        organization,
        "clerk@example.com",
        True,
    )
    assert roles_of("clerk@example.com") == [("acme", "member", None, True)]


def test_create_user_without_password():
    # given / when
    _create_user("--email", "sso@example.com", "--no-password")

    # then
    assert User.objects.get().has_usable_password() is False


def test_no_password_wins_over_the_environment(monkeypatch):
    # given
    monkeypatch.setenv("ERP_PASSWORD", PASSWORD)

    # when
    _create_user("--email", "sso@example.com", "--no-password")

    # then
    assert User.objects.get().has_usable_password() is False


def test_create_user_prompts_for_the_password_on_a_terminal(monkeypatch):
    # given
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("accounts.management.commands.create_user.getpass", lambda prompt: PASSWORD)

    # when
    _create_user("--email", "typist@example.com")

    # then
    assert User.objects.get().check_password(PASSWORD) is True


def test_create_user_without_any_password_source_and_no_terminal(monkeypatch):
    # given
    monkeypatch.setattr("sys.stdin", io.StringIO())

    # when
    with pytest.raises(CommandError) as caught:
        _create_user("--email", "bob@example.com")

    # then
    assert str(caught.value) == "Give a password with --password or ERP_PASSWORD, or use --no-password."
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-pw", "password: This password is too short. It must contain at least 12 characters."),
        ("password1234", "password: This password is too common."),
        ("123456789012345", "password: This password is entirely numeric."),
    ],
)
def test_create_user_with_a_weak_password(password, message):
    # given / when
    with pytest.raises(CommandError) as caught:
        _create_user("--email", "bob@example.com", "--password", password)

    # then
    assert str(caught.value) == message
    assert User.objects.count() == 0


@pytest.mark.parametrize("email", ["taken@example.com", "TAKEN@example.com"])
def test_create_user_with_a_duplicate_email(email):
    # given
    existing = UserFactory(email="taken@example.com")

    # when
    with pytest.raises(CommandError) as caught:
        _create_user("--email", email, "--password", PASSWORD)

    # then
    assert str(caught.value) == "email: A user with this email address already exists."
    assert list(User.objects.all()) == [existing]


def test_create_user_in_an_unknown_organization(organization):
    # given / when
    with pytest.raises(CommandError) as caught:
        _create_user("--email", "bob@example.com", "--password", PASSWORD, "--organization", "nowhere")

    # then
    assert str(caught.value) == "No organization has the slug 'nowhere'."
    assert User.objects.count() == 0
    assert Membership.objects.count() == 0


def test_create_user_as_admin_without_an_organization_is_an_error(organization):
    # given / when
    with pytest.raises(CommandError) as caught:
        _create_user("--email", "boss@example.com", "--password", PASSWORD, "--admin")

    # then: nothing is created (the flag is never dropped silently)
    assert str(caught.value) == (
        "--admin makes the user the administrator of an organization: give its slug with --organization."
    )
    assert User.objects.count() == 0
    assert Membership.objects.count() == 0
    assert RoleAssignment.objects.count() == 0


def test_create_user_requires_an_email():
    # given / when
    with pytest.raises(CommandError, match="the following arguments are required: --email"):
        _create_user("--password", PASSWORD)

    # then
    assert User.objects.count() == 0
