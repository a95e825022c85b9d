from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import User
from organizations.models import Department, Membership, Organization
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.conftest import membership_of
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory
from tests.rbac.factories import RoleAssignmentFactory, RoleFactory, system_role

pytestmark = pytest.mark.django_db


def _signed_in(user: User) -> Client:
    """A browser session of ``user`` in the admin."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(superuser) -> Client:
    return _signed_in(superuser)


@pytest.fixture
def tenants(organization, other_organization) -> dict[str, Any]:
    """Two organizations, each with a small department tree and a member."""
    acme_hq = DepartmentFactory(organization=organization, code="HQ", name="Acme Headquarters")
    acme_sales = DepartmentFactory(parent=acme_hq, code="SALES", name="Acme Sales")
    globex_hq = DepartmentFactory(organization=other_organization, code="GHQ", name="Globex Headquarters")
    acme_member = MembershipFactory(organization=organization, department=acme_sales)
    globex_member = MembershipFactory(organization=other_organization, department=globex_hq)
    return {
        "acme_hq": acme_hq,
        "acme_sales": acme_sales,
        "globex_hq": globex_hq,
        "acme_member": acme_member,
        "globex_member": globex_member,
    }


def _give_role(user: User, organization: Organization, *permissions: str, department: Department | None = None) -> None:
    """Give ``user`` (already a member) a role of the organization granting exactly ``permissions``."""
    role = RoleFactory(organization=organization, permissions=list(permissions))
    RoleAssignmentFactory(organization=organization, user=user, role=role, department=department)


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _user_form(user: User, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "email": user.email,
        "full_name": user.full_name,
        "phone": user.phone,
        "locale": user.locale,
        "time_zone": user.time_zone,
        "_save": "Save",
    }
    flags = {"is_active": user.is_active, "is_staff": user.is_staff, "is_superuser": user.is_superuser, **overrides}
    data.update({name: "on" for name, value in flags.items() if value})
    return data


def _password_form(password: str) -> dict[str, str]:
    """The admin's password fields: a usable password, typed twice."""
    return {"usable_password": "true", "password1": password, "password2": password}


def _department_form(**fields: Any) -> dict[str, Any]:
    """A department add or change form as the admin posts it: the optional fields left blank unless given."""
    return {"parent": "", "manager": "", "headcount_limit": "", "display_order": "0", "_save": "Save", **fields}


def _refused_department_form(client: Client, data: dict[str, Any]) -> dict[str, list[str]]:
    """Post a department add form that must be refused: the form comes back and no department is added; its errors."""
    count = Department.all_objects.count()

    response = client.post(reverse("admin:organizations_department_add"), data)

    assert response.status_code == 200
    assert Department.all_objects.count() == count
    return response.context["adminform"].form.errors


def _user_snapshot(user: User) -> dict:
    return User.objects.filter(pk=user.pk).values(
        "email", "full_name", "is_active", "is_staff", "is_superuser", "password"
    )[0]


# --- A superuser sees everything --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["organizations_organization", "organizations_department", "organizations_membership", "accounts_user"]
)
def test_superuser_sees_the_changelists_and_add_forms(admin_client, tenants, model):
    # given / when
    changelist = admin_client.get(reverse(f"admin:{model}_changelist"))
    add = admin_client.get(reverse(f"admin:{model}_add"))

    # then
    assert (changelist.status_code, add.status_code) == (200, 200)


def test_superuser_sees_rows_of_every_organization(admin_client, tenants, superuser):
    # given / when
    rows = {
        name: {obj.pk for obj in admin_client.get(reverse(f"admin:{name}_changelist")).context["cl"].result_list}
        for name in ["organizations_organization", "organizations_department", "organizations_membership"]
    }

    # then
    assert rows == {
        "organizations_organization": set(Organization.objects.values_list("pk", flat=True)),
        "organizations_department": {tenants["acme_hq"].pk, tenants["acme_sales"].pk, tenants["globex_hq"].pk},
        "organizations_membership": {tenants["acme_member"].pk, tenants["globex_member"].pk},
    }


def test_superuser_sees_the_change_forms(admin_client, tenants, organization, superuser):
    # given
    objects = {
        "organizations_organization": organization,
        "organizations_department": tenants["acme_sales"],
        "organizations_membership": tenants["acme_member"],
        "accounts_user": tenants["acme_member"].user,
    }

    # when
    statuses = {
        name: admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk])).status_code
        for name, obj in objects.items()
    }

    # then
    assert statuses == dict.fromkeys(objects, 200)


def test_organization_change_form_lists_its_departments_and_members(admin_client, tenants, organization):
    # given / when
    response = admin_client.get(reverse("admin:organizations_organization_change", args=[organization.pk]))

    # then
    content = response.content.decode()
    assert "Acme Headquarters" in content
    assert "Acme Sales" in content
    assert "Globex Headquarters" not in content


# --- Users: never the password hash -----------------------------------------------------------------------------------


def test_user_change_page_hides_the_password_hash_and_links_to_the_password_form(admin_client):
    # given
    user = UserFactory(email="ann@example.com")
    *_algorithm_and_parameters, salt, digest = user.password.split("$")

    # when
    response = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert user.password not in content
    assert salt not in content
    assert digest not in content
    password_url = f"/admin/accounts/user/{user.pk}/password/"
    assert f'set · <a href="{password_url}">change the password</a>' in content
    assert admin_client.get(password_url).status_code == 200


def test_admin_password_form_sets_a_new_password(admin_client):
    # given
    user = UserFactory(email="ann@example.com")
    data = _password_form("another-long-passphrase")

    # when
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/password/", data)

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_change", args=[user.pk])
    user.refresh_from_db()
    assert user.check_password("another-long-passphrase") is True
    assert user.check_password(PASSWORD) is False


def test_admin_password_form_enforces_the_password_policy(admin_client):
    # given
    user = UserFactory(email="ann@example.com")
    before = _user_snapshot(user)
    data = _password_form("password1234")

    # when
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/password/", data)

    # then
    assert response.status_code == 200
    assert response.context["form"].errors == {"password2": ["This password is too common."]}
    assert _user_snapshot(user) == before


def test_user_change_page_says_when_no_password_is_set(admin_client):
    # given
    user = UserFactory(email="sso@example.com")
    user.set_unusable_password()
    user.save()

    # when
    response = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))

    # then
    assert "not set (signs in through the identity provider)" in response.content.decode()


def test_admin_changes_a_user_through_the_service(admin_client, superuser):
    # given
    user = UserFactory(email="bob@example.com", full_name="Bob")

    # when
    response = admin_client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        _user_form(user, is_staff=True) | {"full_name": "Robert", "time_zone": "Europe/Paris"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_user_changelist")
    user.refresh_from_db()
    assert (user.full_name, user.time_zone, user.is_staff, user.is_active) == ("Robert", "Europe/Paris", True, True)
    assert user.check_password(PASSWORD) is True


def test_admin_creates_a_user_with_a_checked_password(admin_client):
    # given
    data = {
        "email": "New.Person@Example.COM",
        "full_name": "New Person",
        **_password_form("a-long-enough-passphrase"),
        "_save": "Save",
    }

    # when
    response = admin_client.post(reverse("admin:accounts_user_add"), data)

    # then
    assert response.status_code == 302
    user = User.objects.get(email__iexact="new.person@example.com")
    assert user.email == "New.Person@example.com"
    assert user.check_password("a-long-enough-passphrase") is True


def test_admin_refuses_a_weak_password_or_a_duplicate_email(admin_client):
    # given
    UserFactory(email="taken@example.com")
    count = User.objects.count()
    data = {"email": "TAKEN@example.com", "full_name": "", **_password_form("short"), "_save": "Save"}

    # when
    response = admin_client.post(reverse("admin:accounts_user_add"), data)

    # then
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["email"] == ["A user with this email address already exists."]
    assert errors["password2"] == ["This password is too short. It must contain at least 12 characters."]
    assert User.objects.count() == count


# --- Departments through the admin ------------------------------------------------------------------------------------


def test_creating_a_department_computes_its_path_and_depth(admin_client, superuser, organization, department):
    # given
    data = _department_form(
        organization=organization.pk, code="sales", name="Sales", parent=department.pk, display_order="3"
    )

    # when
    response = admin_client.post(reverse("admin:organizations_department_add"), data)

    # then
    assert response.status_code == 302
    created = Department.objects.get(organization=organization, code="SALES")
    assert (created.name, created.parent, created.path, created.depth, created.display_order) == (
        "Sales",
        department,
        "HQ/SALES/",
        2,
        3,
    )
    assert created.created_by == superuser
    assert LogEntry.objects.filter(object_id=str(created.pk)).count() == 1


def test_renaming_a_department_code_moves_its_subtree(admin_client, tenants, organization):
    # given
    hq = tenants["acme_hq"]
    data = _department_form(code="MAIN", name=hq.name)

    # when
    response = admin_client.post(reverse("admin:organizations_department_change", args=[hq.pk]), data)

    # then
    assert response.status_code == 302
    assert list(Department.objects.for_organization(organization).values_list("code", "path", "depth")) == [
        ("MAIN", "MAIN/", 1),
        ("SALES", "MAIN/SALES/", 2),
    ]


def test_admin_form_refuses_a_parent_of_another_organization(admin_client, tenants, organization):
    # given
    data = _department_form(organization=organization.pk, code="X", name="Cross", parent=tenants["globex_hq"].pk)

    # when
    errors = _refused_department_form(admin_client, data)

    # then
    assert errors["parent"] == ["The parent department belongs to another organization."]


def test_deleting_a_department_with_children_is_refused(admin_client, tenants):
    # given
    hq = tenants["acme_hq"]
    log_entries = LogEntry.objects.count()
    url = reverse("admin:organizations_department_delete", args=[hq.pk])

    # when
    response = admin_client.post(url, {"post": "yes"})

    # then
    assert response.status_code == 302
    assert response["Location"] == url
    assert _messages(response) == ["This department has active sub-departments; move or delete them first."]
    hq.refresh_from_db()
    assert hq.deleted_at is None
    assert Department.objects.filter(pk=hq.pk).exists() is True
    assert LogEntry.objects.count() == log_entries


def test_deleting_a_leaf_department_without_members_soft_deletes_it(admin_client, superuser, organization):
    # given
    leaf = DepartmentFactory(organization=organization, code="LEAF")

    # when
    response = admin_client.post(reverse("admin:organizations_department_delete", args=[leaf.pk]), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert Department.objects.filter(pk=leaf.pk).exists() is False
    leaf = Department.all_objects.get(pk=leaf.pk)
    assert leaf.deleted_by == superuser
    assert leaf.deleted_at is not None


def test_bulk_deleting_departments_is_all_or_nothing(admin_client, tenants, organization):
    # given: a leaf that could go and a department with a child that cannot, in one action
    leaf = DepartmentFactory(organization=organization, code="ARCHIVE")
    hq = tenants["acme_hq"]
    log_entries = LogEntry.objects.count()

    # when
    response = admin_client.post(
        reverse("admin:organizations_department_changelist"),
        {"action": "delete_selected", "_selected_action": [leaf.pk, hq.pk], "post": "yes"},
    )

    # then
    assert response.status_code == 302
    assert _messages(response) == ["This department has active sub-departments; move or delete them first."]
    assert set(Department.objects.filter(pk__in=[leaf.pk, hq.pk]).values_list("code", flat=True)) == {"ARCHIVE", "HQ"}
    assert LogEntry.objects.count() == log_entries


def test_ending_a_membership_through_the_admin_keeps_the_record(admin_client, tenants):
    # given
    membership = tenants["acme_member"]

    # when
    response = admin_client.post(
        reverse("admin:organizations_membership_delete", args=[membership.pk]), {"post": "yes"}
    )

    # then
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.is_active is False
    assert membership.left_on is not None


# --- The last active superuser ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other_superusers", "change", "message"),
    [
        (0, {"is_superuser": False}, "This is the last active superuser; make someone else a superuser first."),
        (1, {"is_active": False}, "You cannot deactivate your own account."),
    ],
    ids=["the-only-superuser-removes-their-superuser-flag", "a-superuser-deactivates-themselves"],
)
def test_a_superuser_cannot_lock_themselves_out(admin_client, superuser, other_superusers, change, message):
    # given
    SuperuserFactory.create_batch(other_superusers)
    before = _user_snapshot(superuser)
    url = reverse("admin:accounts_user_change", args=[superuser.pk])

    # when
    response = admin_client.post(url, _user_form(superuser, **change))

    # then: sent back to the form with a message, the account as it was, nothing logged
    assert response.status_code == 302
    assert response["Location"] == url
    assert _messages(response) == [message]
    assert _user_snapshot(superuser) == before
    assert LogEntry.objects.count() == 0


@pytest.fixture
def user_staff(organization) -> User:
    """Staff whose role lets them manage the accounts of their organization's people."""
    staff = MembershipFactory(organization=organization, user=UserFactory(is_staff=True)).user
    _give_role(staff, organization, "accounts.view_user", "accounts.change_user", "accounts.delete_user")
    return staff


def test_staff_cannot_change_a_superuser(user_staff, organization):
    # given: the only active superuser is one of the organization's people
    last = MembershipFactory(organization=organization, user=SuperuserFactory()).user
    before = _user_snapshot(last)
    client = _signed_in(user_staff)

    # when
    deactivate = client.post(reverse("admin:accounts_user_change", args=[last.pk]), _user_form(last, is_active=False))
    password = client.post(
        f"/admin/accounts/user/{last.pk}/password/",
        _password_form("taken-over-passphrase"),
    )

    # then
    assert (deactivate.status_code, password.status_code) == (403, 403)
    assert _user_snapshot(last) == before
    assert LogEntry.objects.count() == 0


def test_staff_cannot_delete_a_superuser(user_staff, organization):
    # given
    last = MembershipFactory(organization=organization, user=SuperuserFactory()).user
    colleague = MembershipFactory(organization=organization).user
    client = _signed_in(user_staff)

    # when
    single = client.post(reverse("admin:accounts_user_delete", args=[last.pk]), {"post": "yes"})
    bulk = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "delete_selected", "_selected_action": [colleague.pk, last.pk], "post": "yes"},
    )

    # then
    assert (single.status_code, bulk.status_code) == (403, 403)
    assert set(User.objects.filter(pk__in=[last.pk, colleague.pk]).values_list("pk", flat=True)) == {
        last.pk,
        colleague.pk,
    }
    assert LogEntry.objects.count() == 0


def test_staff_may_view_a_superuser_of_their_organization(user_staff, organization):
    # given
    superuser = MembershipFactory(organization=organization, user=SuperuserFactory()).user
    client = _signed_in(user_staff)

    # when
    response = client.get(reverse("admin:accounts_user_change", args=[superuser.pk]))

    # then
    assert response.status_code == 200
    assert superuser.password not in response.content.decode()


def test_staff_cannot_make_anyone_a_superuser_or_grant_permissions(user_staff, organization):
    # given
    colleague = MembershipFactory(organization=organization).user
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    client = _signed_in(user_staff)

    # when
    for target in (colleague, user_staff):
        response = client.post(
            reverse("admin:accounts_user_change", args=[target.pk]),
            _user_form(target, is_superuser=True) | {"user_permissions": every_permission},
        )
        assert response.status_code == 302

    # then: those fields are read-only for staff, so the posted values are ignored
    colleague.refresh_from_db()
    user_staff.refresh_from_db()
    assert (colleague.is_superuser, user_staff.is_superuser) == (False, False)
    assert (colleague.user_permissions.count(), user_staff.user_permissions.count()) == (0, 0)


def test_staff_may_change_ordinary_colleagues(user_staff, organization):
    # given
    colleague = MembershipFactory(organization=organization).user

    client = _signed_in(user_staff)

    # when
    response = client.post(
        reverse("admin:accounts_user_change", args=[colleague.pk]), _user_form(colleague, is_active=False)
    )

    # then
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.is_active is False


def test_bulk_deleting_users_is_all_or_nothing(admin_client, superuser):
    # given: one deletable user and the acting superuser, who cannot delete themselves
    other = UserFactory(email="aaa@example.com")

    # when
    response = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "delete_selected", "_selected_action": [other.pk, superuser.pk], "post": "yes"},
    )

    # then
    assert response.status_code == 302
    assert _messages(response) == ["You cannot delete your own account."]
    assert set(User.objects.values_list("pk", flat=True)) == {other.pk, superuser.pk}
    assert LogEntry.objects.count() == 0


def test_a_superuser_cannot_delete_themselves_through_the_admin(admin_client, superuser):
    # given
    SuperuserFactory()

    # when
    response = admin_client.post(reverse("admin:accounts_user_delete", args=[superuser.pk]), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert _messages(response) == ["You cannot delete your own account."]
    assert User.objects.filter(pk=superuser.pk).exists() is True


# --- Staff who are not superusers see their own organizations only ----------------------------------------------------


@pytest.fixture
def acme_staff(organization, other_organization) -> User:
    """Staff who are viewers in Acme, and former members of Globex whose viewer role there was never revoked."""
    staff = UserFactory(email="staff@example.com", is_staff=True)
    MembershipFactory(organization=organization, user=staff, role="viewer")
    MembershipFactory(organization=other_organization, user=staff, role="viewer", is_active=False)
    return staff


@pytest.fixture
def staff_client(acme_staff) -> Client:
    return _signed_in(acme_staff)


def test_staff_see_only_their_organizations(staff_client, tenants, organization):
    # given / when
    response = staff_client.get(reverse("admin:organizations_organization_changelist"))

    # then
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [organization.pk]
    assert "Globex" not in response.content.decode()


def test_staff_see_only_departments_of_their_organizations(staff_client, tenants):
    # given / when
    response = staff_client.get(reverse("admin:organizations_department_changelist"))

    # then
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [tenants["acme_hq"].pk, tenants["acme_sales"].pk]
    assert "Globex" not in response.content.decode()


def test_staff_see_only_memberships_of_their_organizations(staff_client, tenants, acme_staff, organization):
    # given / when
    response = staff_client.get(reverse("admin:organizations_membership_changelist"))

    # then
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == {
        tenants["acme_member"].pk,
        Membership.objects.get(organization=organization, user=acme_staff).pk,
    }
    assert "Globex" not in response.content.decode()


def test_staff_see_only_people_of_their_organizations(staff_client, tenants, acme_staff, superuser):
    # given / when
    response = staff_client.get(reverse("admin:accounts_user_changelist"))

    # then
    assert response.status_code == 200
    assert {obj.pk for obj in response.context["cl"].result_list} == {tenants["acme_member"].user_id, acme_staff.pk}


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("organizations_organization", "globex"),
        ("organizations_department", "globex_hq"),
        ("organizations_membership", "globex_member"),
        ("accounts_user", "globex_user"),
    ],
)
def test_staff_cannot_open_rows_of_other_organizations(staff_client, tenants, other_organization, model, key):
    # given
    objects = {**tenants, "globex": other_organization, "globex_user": tenants["globex_member"].user}

    # when
    response = staff_client.get(reverse(f"admin:{model}_change", args=[objects[key].pk]))

    # then: the admin treats it as missing
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_staff_can_open_rows_of_their_organization(staff_client, tenants, organization):
    # given / when
    statuses = [
        staff_client.get(reverse("admin:organizations_organization_change", args=[organization.pk])).status_code,
        staff_client.get(reverse("admin:organizations_department_change", args=[tenants["acme_sales"].pk])).status_code,
        staff_client.get(
            reverse("admin:organizations_membership_change", args=[tenants["acme_member"].pk])
        ).status_code,
    ]

    # then
    assert statuses == [200, 200, 200]


def test_staff_without_permissions_see_nothing(organization, tenants):
    # given
    staff = MembershipFactory(organization=organization, user=UserFactory(is_staff=True)).user
    client = _signed_in(staff)

    # when
    response = client.get(reverse("admin:organizations_department_changelist"))

    # then
    assert response.status_code == 403


def test_staff_cannot_create_a_department_in_another_organization(
    acme_staff, tenants, organization, other_organization
):
    # given: they may add departments in Acme
    _give_role(acme_staff, organization, "organizations.add_department")
    data = _department_form(organization=other_organization.pk, code="X", name="Cross")

    # when
    errors = _refused_department_form(_signed_in(acme_staff), data)

    # then
    assert errors["organization"] == ["Select a valid choice. That choice is not one of the available choices."]


def test_staff_choose_parents_only_from_their_organizations(acme_staff, tenants, organization):
    # given
    _give_role(acme_staff, organization, "organizations.add_department")
    client = _signed_in(acme_staff)

    # when
    response = client.get(reverse("admin:organizations_department_add"))

    # then
    form = response.context["adminform"].form
    assert set(form.fields["parent"].queryset) == {tenants["acme_hq"], tenants["acme_sales"]}
    assert list(form.fields["organization"].queryset) == [tenants["acme_hq"].organization]


def test_an_organization_created_by_another_superuser_is_invisible_to_staff(staff_client):
    # given
    OrganizationFactory(slug="initech", code="INITECH", name="Initech")

    # when
    response = staff_client.get(reverse("admin:organizations_organization_changelist"))

    # then
    assert "Initech" not in response.content.decode()


# --- What staff see and may do comes from their roles -----------------------------------------------------------------


@pytest.fixture
def tree(organization, other_organization) -> dict[str, Any]:
    """Acme: HQ → SALES → EU and HQ → ENG, one member in EU and one in ENG; Globex: GHQ with a member."""
    hq = DepartmentFactory(organization=organization, code="HQ", name="Headquarters")
    sales = DepartmentFactory(parent=hq, code="SALES", name="Sales")
    eu = DepartmentFactory(parent=sales, code="EU", name="Sales Europe")
    eng = DepartmentFactory(parent=hq, code="ENG", name="Engineering")
    globex_hq = DepartmentFactory(organization=other_organization, code="GHQ", name="Globex Headquarters")
    return {
        "HQ": hq,
        "SALES": sales,
        "EU": eu,
        "ENG": eng,
        "GHQ": globex_hq,
        "eu_member": MembershipFactory(organization=organization, department=eu, user__email="eve@example.com"),
        "eng_member": MembershipFactory(organization=organization, department=eng, user__email="ed@example.com"),
        "globex_member": MembershipFactory(organization=other_organization, department=globex_hq),
    }


@pytest.fixture
def sales_manager(organization, tree) -> User:
    """Staff holding the system role ``manager`` for SALES and its sub-departments only."""
    membership = MembershipFactory(
        organization=organization, department=tree["SALES"], user__email="max@example.com", user__is_staff=True
    )
    RoleAssignmentFactory(
        organization=organization, user=membership.user, role=system_role("manager"), department=tree["SALES"]
    )
    return membership.user


@pytest.fixture
def viewer_staff(organization, tree) -> User:
    return MembershipFactory(organization=organization, role="viewer", user__is_staff=True).user


def _rows(client: Client, model: str) -> list[int]:
    response = client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200
    return [obj.pk for obj in response.context["cl"].result_list]


def _department_state() -> list[tuple]:
    return list(
        Department.all_objects.order_by("pk").values_list("organization_id", "code", "name", "parent_id", "path")
    )


def test_a_department_manager_sees_only_their_subtree(sales_manager, tree, organization):
    # given
    client = _signed_in(sales_manager)

    # when
    departments = _rows(client, "organizations_department")
    memberships = _rows(client, "organizations_membership")
    organizations = _rows(client, "organizations_organization")

    # then
    assert departments == [tree["SALES"].pk, tree["EU"].pk]
    assert set(memberships) == {tree["eu_member"].pk, membership_of(sales_manager, organization).pk}
    assert organizations == [organization.pk]


def test_a_department_manager_chooses_only_from_their_subtree(sales_manager, tree, organization):
    # given
    client = _signed_in(sales_manager)

    # when
    form = client.get(reverse("admin:organizations_department_add")).context["adminform"].form
    autocomplete = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "organizations", "model_name": "department", "field_name": "manager", "term": ""},
    )

    # then
    assert list(form.fields["parent"].queryset) == [tree["SALES"], tree["EU"]]
    assert list(form.fields["organization"].queryset) == [organization]
    assert sorted(result["text"] for result in autocomplete.json()["results"]) == [
        "eve@example.com",
        "max@example.com",
    ]


def test_a_department_manager_opens_only_departments_of_their_subtree(sales_manager, tree):
    # given
    client = _signed_in(sales_manager)

    # when
    statuses = {
        code: client.get(reverse("admin:organizations_department_change", args=[tree[code].pk])).status_code
        for code in ("HQ", "SALES", "EU", "ENG", "GHQ")
    }

    # then: outside the subtree the department does not exist for them
    assert statuses == {"HQ": 302, "SALES": 200, "EU": 200, "ENG": 302, "GHQ": 302}


def test_a_department_manager_adds_a_department_inside_their_subtree(sales_manager, tree, organization):
    # given
    data = _department_form(organization=organization.pk, code="NORDIC", name="Nordics", parent=tree["SALES"].pk)

    # when
    response = _signed_in(sales_manager).post(reverse("admin:organizations_department_add"), data)

    # then
    assert response.status_code == 302
    created = Department.objects.get(code="NORDIC")
    assert (created.path, created.created_by) == ("HQ/SALES/NORDIC/", sales_manager)


def test_a_department_manager_cannot_add_a_department_outside_their_subtree(sales_manager, tree, organization):
    # given: no parent makes a root department, which lies outside SALES
    before = _department_state()
    data = _department_form(organization=organization.pk, code="ROGUE", name="Rogue")

    # when
    response = _signed_in(sales_manager).post(reverse("admin:organizations_department_add"), data)

    # then: the saved row is checked again and the whole change rolled back
    assert response.status_code == 403
    assert _department_state() == before
    assert LogEntry.objects.count() == 0


def test_a_department_manager_cannot_move_a_department_out_of_their_subtree(sales_manager, tree):
    # given
    before = _department_state()
    data = _department_form(code="EU", name="Sales Europe", parent=tree["ENG"].pk)

    # when
    response = _signed_in(sales_manager).post(
        reverse("admin:organizations_department_change", args=[tree["EU"].pk]), data
    )

    # then: ENG is not a choice for them
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert _department_state() == before


def test_a_department_manager_renames_a_department_of_their_subtree(sales_manager, tree):
    # given
    data = _department_form(code="EUROPE", name="Europe", parent=tree["SALES"].pk)

    # when
    response = _signed_in(sales_manager).post(
        reverse("admin:organizations_department_change", args=[tree["EU"].pk]), data
    )

    # then
    assert response.status_code == 302
    tree["EU"].refresh_from_db()
    assert (tree["EU"].code, tree["EU"].name, tree["EU"].path) == ("EUROPE", "Europe", "HQ/SALES/EUROPE/")


def test_a_department_manager_cannot_change_their_organization(sales_manager, organization):
    # given
    url = reverse("admin:organizations_organization_change", args=[organization.pk])

    # when
    page = _signed_in(sales_manager).get(url)
    post = _signed_in(sales_manager).post(url, {"name": "Taken over", "_save": "Save"})

    # then: they see it read-only and cannot post
    assert (page.status_code, page.context["has_change_permission"]) == (200, False)
    assert post.status_code == 403
    organization.refresh_from_db()
    assert organization.name == "Acme"


def test_the_organization_page_lists_only_the_departments_and_members_one_may_view(sales_manager, tree, organization):
    # given / when
    response = _signed_in(sales_manager).get(reverse("admin:organizations_organization_change", args=[organization.pk]))

    # then
    inlines = {
        formset.opts.model._meta.model_name: formset.formset.queryset
        for formset in response.context["inline_admin_formsets"]
    }
    assert list(inlines["department"]) == [tree["SALES"], tree["EU"]]
    assert set(inlines["membership"]) == {tree["eu_member"], membership_of(sales_manager, organization)}


def test_a_viewer_sees_everything_of_their_organization_read_only(viewer_staff, tree):
    # given
    client = _signed_in(viewer_staff)

    # when
    departments = _rows(client, "organizations_department")
    page = client.get(reverse("admin:organizations_department_change", args=[tree["SALES"].pk]))

    # then
    assert departments == [tree[code].pk for code in ("HQ", "ENG", "SALES", "EU")]
    assert (page.status_code, page.context["has_change_permission"], page.context["has_delete_permission"]) == (
        200,
        False,
        False,
    )


def test_a_viewer_cannot_change_add_or_delete(viewer_staff, tree, organization):
    # given
    client = _signed_in(viewer_staff)
    before = _department_state()
    memberships = list(Membership.objects.order_by("pk").values_list("pk", "department_id", "is_active"))

    # when
    statuses = [
        client.post(
            reverse("admin:organizations_department_change", args=[tree["SALES"].pk]),
            _department_form(code="SALES", name="Renamed", parent=tree["HQ"].pk),
        ).status_code,
        client.post(
            reverse("admin:organizations_department_add"),
            _department_form(organization=organization.pk, code="X", name="X"),
        ).status_code,
        client.post(
            reverse("admin:organizations_department_delete", args=[tree["EU"].pk]), {"post": "yes"}
        ).status_code,
        client.post(
            reverse("admin:organizations_membership_delete", args=[tree["eu_member"].pk]), {"post": "yes"}
        ).status_code,
    ]
    bulk = client.post(
        reverse("admin:organizations_department_changelist"),
        {"action": "delete_selected", "_selected_action": [tree["EU"].pk], "post": "yes"},
    )

    # then
    assert statuses == [403, 403, 403, 403]
    assert bulk.status_code == 200  # the changelist again: they are not offered the delete action
    assert _department_state() == before
    assert list(Membership.objects.order_by("pk").values_list("pk", "department_id", "is_active")) == memberships
    assert LogEntry.objects.count() == 0


def test_an_organization_admin_of_acme_never_sees_globex(organization, tree):
    # given
    staff = MembershipFactory(organization=organization, role="org_admin", user__is_staff=True).user
    client = _signed_in(staff)

    # when
    rows = {
        model: _rows(client, model)
        for model in ("organizations_organization", "organizations_department", "organizations_membership")
    }
    people = _rows(client, "accounts_user")
    # people join by invitation: staff have no membership add form, and the change form offers acme's departments only
    adding = client.get(reverse("admin:organizations_membership_add"))
    own = Membership.objects.get(user=staff, organization=organization)
    form = client.get(reverse("admin:organizations_membership_change", args=[own.pk])).context["adminform"].form
    department_form = client.get(reverse("admin:organizations_department_add")).context["adminform"].form

    # then
    assert rows["organizations_organization"] == [organization.pk]
    assert tree["GHQ"].pk not in rows["organizations_department"]
    assert set(rows["organizations_department"]) == {tree[code].pk for code in ("HQ", "SALES", "EU", "ENG")}
    assert tree["globex_member"].pk not in rows["organizations_membership"]
    assert tree["globex_member"].user_id not in people
    assert adding.status_code == 403
    assert list(department_form.fields["organization"].queryset) == [organization]
    assert tree["GHQ"] not in form.fields["department"].queryset


def test_an_organization_admin_cannot_post_into_globex(organization, other_organization, tree):
    # given
    staff = MembershipFactory(organization=organization, role="org_admin", user__is_staff=True).user
    before = _department_state()

    # when
    errors = _refused_department_form(
        _signed_in(staff),
        _department_form(organization=other_organization.pk, code="X", name="X", parent=tree["GHQ"].pk),
    )

    # then
    assert errors["organization"] == ["Select a valid choice. That choice is not one of the available choices."]
    assert errors["parent"] == ["Select a valid choice. That choice is not one of the available choices."]
    assert _department_state() == before
