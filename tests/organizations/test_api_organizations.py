"""/api/v1/organizations/: the organizations I belong to; superusers create, delete and re-parent; admins edit."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from organizations.models import Organization
from tests.api_helpers import NOT_AUTHENTICATED, NOT_FOUND, detail_url, error, invalid, iso, page
from tests.organizations.factories import MembershipFactory, OrganizationFactory

URL = "/api/v1/organizations/"


def organization_body(organization: Organization) -> dict[str, Any]:
    organization.refresh_from_db()
    return {
        "id": organization.pk,
        "slug": organization.slug,
        "code": organization.code,
        "name": organization.name,
        "parent": organization.parent.slug if organization.parent else None,
        "is_active": organization.is_active,
        "time_zone": organization.time_zone,
        "currency_code": organization.currency_code,
        "fiscal_year_start_month": organization.fiscal_year_start_month,
        "max_department_depth": organization.max_department_depth,
        "history_retention_days": organization.history_retention_days,
        "created_at": iso(organization.created_at),
        "updated_at": iso(organization.updated_at),
    }


def organization_rows() -> list[dict[str, Any]]:
    """Every organization row, deleted ones included: what a denied call must leave untouched."""
    return list(Organization.all_objects.order_by("pk").values())


ONLY_OPERATORS_CREATE = error("permission_denied", "Only platform operators may create organizations.")
ONLY_OPERATORS_DELETE = error("permission_denied", "Only platform operators may delete organizations.")
ONLY_ADMINS_CHANGE = error("permission_denied", "Only the organization's administrators may change it.")


@pytest.fixture
def landscape(organization, other_organization):
    """acme (with subsidiary acme-labs), globex, an inactive hooli and a soft-deleted oldco."""
    labs = OrganizationFactory(slug="acme-labs", code="LABS", name="Acme Labs", parent=organization)
    hooli = OrganizationFactory(slug="hooli", code="HOOLI", name="Hooli", is_active=False)
    oldco = OrganizationFactory(slug="oldco", code="OLDCO", name="Old Co")
    oldco.mark_deleted(actor=None)
    return {"acme": organization, "acme-labs": labs, "globex": other_organization, "hooli": hooli, "oldco": oldco}


# --- list -------------------------------------------------------------------------------------------------------------


def test_member_lists_only_the_live_active_organizations_they_actively_belong_to(client_for, member, landscape):
    # given: the member also has an ended membership in globex and a membership in the inactive hooli
    MembershipFactory(organization=landscape["globex"], user=member, is_active=False, left_on=timezone.localdate())
    MembershipFactory(organization=landscape["hooli"], user=member)

    # when
    response = client_for(member).get(URL)

    # then: acme only (not its subsidiary either)
    assert response.status_code == 200
    assert response.json() == page(organization_body(landscape["acme"]))


def test_outsider_lists_only_their_own_organization(client_for, outsider, landscape):
    response = client_for(outsider).get(URL)

    assert response.status_code == 200
    assert [row["slug"] for row in response.json()["results"]] == ["globex"]


def test_user_without_memberships_lists_nothing(client_for, user, landscape):
    response = client_for(user).get(URL)

    assert response.status_code == 200
    assert response.json() == page()


def test_superuser_lists_every_live_organization_ordered_by_slug(client_for, superuser, landscape):
    response = client_for(superuser).get(URL)

    assert response.status_code == 200
    assert [row["slug"] for row in response.json()["results"]] == ["acme", "acme-labs", "globex", "hooli"]
    assert response.json()["results"][1] == organization_body(landscape["acme-labs"])
    assert response.json()["results"][1]["parent"] == "acme"


def test_anonymous_cannot_list_organizations(client_for, landscape):
    response = client_for(None).get(URL)

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ("parent=acme", ["acme-labs"]),
        ("is_active=false", ["hooli"]),
        ("is_active=true", ["acme", "acme-labs", "globex"]),
        ("code=GLOBEX", ["globex"]),
        ("search=labs", ["acme-labs"]),
        ("search=ACME", ["acme", "acme-labs"]),
        ("ordering=-name", ["hooli", "globex", "acme-labs", "acme"]),
        ("ordering=code", ["acme", "globex", "hooli", "acme-labs"]),
        ("parent=acme&ordering=-slug", ["acme-labs"]),
    ],
)
def test_superuser_filters_and_orders_organizations(client_for, superuser, landscape, query, slugs):
    response = client_for(superuser).get(f"{URL}?{query}")

    assert response.status_code == 200, response.json()
    assert [row["slug"] for row in response.json()["results"]] == slugs


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            "colour=red",
            {
                "colour": [
                    "Unknown query parameter. Allowed: code, cursor, format, is_active, ordering, "
                    "page_size, parent, search."
                ]
            },
        ),
        ("is_active=maybe", {"is_active": ["Must be a valid boolean."]}),
        ("ordering=time_zone", {"ordering": ["Cannot order by 'time_zone'. Allowed: code, created_at, name, slug."]}),
    ],
)
def test_bad_list_parameters_are_rejected(client_for, superuser, landscape, query, fields):
    response = client_for(superuser).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response.json() == invalid(fields)


# --- create -----------------------------------------------------------------------------------------------------------


def test_superuser_creates_an_organization(client_for, superuser):
    # when
    response = client_for(superuser).post(
        URL,
        {"slug": "initech", "code": "init", "name": "Initech", "currency_code": "USD", "time_zone": "Europe/Berlin"},
        format="json",
    )

    # then
    assert response.status_code == 201, response.json()
    created = Organization.objects.get(slug="initech")
    assert response.json() == organization_body(created)
    assert response.json() | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "slug": "initech",
        "code": "INIT",
        "name": "Initech",
        "parent": None,
        "is_active": True,
        "time_zone": "Europe/Berlin",
        "currency_code": "USD",
        "fiscal_year_start_month": 1,
        "max_department_depth": 10,
        "history_retention_days": None,
        "created_at": "",
        "updated_at": "",
    }
    assert (created.created_by, created.updated_by, created.deleted_at) == (superuser, superuser, None)


def test_superuser_creates_a_subsidiary(client_for, superuser, organization):
    response = client_for(superuser).post(
        URL, {"slug": "acme-labs", "code": "LABS", "name": "Acme Labs", "parent": "acme"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["parent"] == "acme"
    assert Organization.objects.get(slug="acme-labs").parent == organization


@pytest.mark.parametrize("who", ["member", "admin_member", "outsider", "user"])
def test_only_superusers_create_organizations(request, client_for, organization, who):
    # given
    actor = request.getfixturevalue(who)
    before = organization_rows()

    # when
    response = client_for(actor).post(URL, {"slug": "initech", "code": "INIT", "name": "Initech"}, format="json")

    # then
    assert response.status_code == 403
    assert response.json() == ONLY_OPERATORS_CREATE
    assert organization_rows() == before


def test_anonymous_cannot_create_an_organization(client_for, organization):
    before = organization_rows()

    response = client_for(None).post(URL, {"slug": "initech", "code": "INIT", "name": "Initech"}, format="json")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert organization_rows() == before


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (
            {},
            {
                "slug": ["This field is required."],
                "code": ["This field is required."],
                "name": ["This field is required."],
            },
        ),
        (
            {"slug": "not a slug", "code": "bad code!", "name": "X"},
            {
                "slug": ['Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'],
                "code": ["Use letters, digits, '.', '_' and '-', starting with a letter or digit."],
            },
        ),
        (
            {
                "slug": "initech",
                "code": "INIT",
                "name": "Initech",
                "currency_code": "eur",
                "time_zone": "Mars/Olympus",
                "fiscal_year_start_month": 13,
                "max_department_depth": 21,
                "history_retention_days": 0,
            },
            {
                "currency_code": ["Use a three-letter ISO 4217 code such as EUR."],
                "time_zone": ["Mars/Olympus is not a known IANA time zone."],
                "fiscal_year_start_month": ["Ensure this value is less than or equal to 12."],
                "max_department_depth": ["Ensure this value is less than or equal to 20."],
                "history_retention_days": ["Ensure this value is greater than or equal to 1."],
            },
        ),
        (
            {"slug": "acme", "code": "ACME", "name": "Another Acme"},
            {
                "slug": ["An organization with this slug already exists."],
                "code": ["An organization with this code already exists."],
            },
        ),
        (
            # the code is stored in upper case, so a lower-case copy is taken as well
            {"slug": "acme-2", "code": "acme", "name": "Another Acme"},
            {"code": ["An organization with this code already exists."]},
        ),
        (
            {"slug": "initech", "code": "INIT", "name": "Initech", "parent": "nope"},
            {"parent": ["Object with slug=nope does not exist."]},
        ),
    ],
    ids=["missing", "malformed", "settings", "taken", "taken-code-any-case", "unknown-parent"],
)
def test_superuser_bad_input_is_400_with_field_errors(client_for, superuser, organization, payload, fields):
    before = organization_rows()

    response = client_for(superuser).post(URL, payload, format="json")

    assert response.status_code == 400
    assert response.json() == invalid(fields)
    assert organization_rows() == before


def test_slug_and_code_of_a_soft_deleted_organization_stay_taken(client_for, superuser, landscape):
    # given: oldco is soft-deleted (and may be restored)
    before = organization_rows()

    # when
    response = client_for(superuser).post(URL, {"slug": "oldco", "code": "oldco", "name": "New Co"}, format="json")

    # then: a 400, not an IntegrityError
    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "slug": ["An organization with this slug already exists."],
            "code": ["An organization with this code already exists."],
        }
    )
    assert organization_rows() == before


def test_a_deleted_organization_cannot_be_a_parent(client_for, superuser, landscape):
    before = organization_rows()

    response = client_for(superuser).post(
        URL, {"slug": "initech", "code": "INIT", "name": "Initech", "parent": "oldco"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid({"parent": ["Object with slug=oldco does not exist."]})
    assert organization_rows() == before


# --- detail -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["member", "admin_member", "superuser"])
def test_members_and_superusers_read_the_organization(request, client_for, organization, who):
    response = client_for(request.getfixturevalue(who)).get(detail_url(URL, "acme"))

    assert response.status_code == 200
    assert response.json() == organization_body(organization) | {"slug": "acme", "code": "ACME", "name": "Acme"}


@pytest.mark.parametrize("who", ["outsider", "user"])
def test_non_members_get_404_on_the_organization(request, client_for, organization, who):
    response = client_for(request.getfixturevalue(who)).get(detail_url(URL, "acme"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_unknown_slug_is_404(client_for, superuser, organization):
    response = client_for(superuser).get(detail_url(URL, "nope"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_former_member_gets_404(client_for, organization):
    former = MembershipFactory(organization=organization, is_active=False, left_on=timezone.localdate()).user

    response = client_for(former).get(detail_url(URL, "acme"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_inactive_organization_is_closed_to_members_but_not_to_superusers(client_for, member, superuser, organization):
    # given
    Organization.objects.filter(pk=organization.pk).update(is_active=False)

    # when
    as_member = client_for(member).get(detail_url(URL, "acme"))
    as_superuser = client_for(superuser).get(detail_url(URL, "acme"))

    # then
    assert as_member.status_code == 404
    assert as_member.json() == NOT_FOUND
    assert as_superuser.status_code == 200
    assert as_superuser.json()["is_active"] is False


def test_soft_deleted_organization_is_404_even_for_superusers(client_for, superuser, landscape):
    response = client_for(superuser).get(detail_url(URL, "oldco"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_anonymous_cannot_read_an_organization(client_for, organization):
    response = client_for(None).get(detail_url(URL, "acme"))

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED


# --- update -----------------------------------------------------------------------------------------------------------


def test_admin_changes_name_and_settings(client_for, admin_member, organization):
    # when
    response = client_for(admin_member).patch(
        detail_url(URL, "acme"),
        {
            "name": "Acme Corporation",
            "time_zone": "Asia/Tokyo",
            "currency_code": "JPY",
            "fiscal_year_start_month": 4,
            "max_department_depth": 5,
            "history_retention_days": 3650,
        },
        format="json",
    )

    # then
    assert response.status_code == 200, response.json()
    organization.refresh_from_db()
    assert (
        organization.name,
        organization.time_zone,
        organization.currency_code,
        organization.fiscal_year_start_month,
        organization.max_department_depth,
        organization.history_retention_days,
        organization.updated_by,
    ) == ("Acme Corporation", "Asia/Tokyo", "JPY", 4, 5, 3650, admin_member)
    assert response.json() == organization_body(organization)


def test_admin_cannot_change_slug_code_parent_or_activity(client_for, admin_member, organization, other_organization):
    # when: identity fields are sent along with a name change
    response = client_for(admin_member).patch(
        detail_url(URL, "acme"),
        {"name": "Acme Corporation", "slug": "acme-corp", "code": "ACMECORP", "parent": "globex", "is_active": False},
        format="json",
    )

    # then: the name changes, the identity fields are read-only and stay as they were
    assert response.status_code == 200, response.json()
    organization.refresh_from_db()
    assert (organization.name, organization.slug, organization.code, organization.parent, organization.is_active) == (
        "Acme Corporation",
        "acme",
        "ACME",
        None,
        True,
    )
    assert response.json()["slug"] == "acme"
    assert response.json()["parent"] is None


def test_admin_put_replaces_the_editable_fields(client_for, admin_member, organization):
    response = client_for(admin_member).put(detail_url(URL, "acme"), {"name": "Acme Two"}, format="json")

    assert response.status_code == 200, response.json()
    organization.refresh_from_db()
    assert (organization.name, organization.slug, organization.code) == ("Acme Two", "acme", "ACME")


def test_admin_bad_setting_is_400_and_nothing_changes(client_for, admin_member, organization):
    before = organization_rows()

    response = client_for(admin_member).patch(
        detail_url(URL, "acme"), {"name": "", "fiscal_year_start_month": 0}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == invalid(
        {
            "name": ["This field may not be blank."],
            "fiscal_year_start_month": ["Ensure this value is greater than or equal to 1."],
        }
    )
    assert organization_rows() == before


@pytest.mark.parametrize("method", ["patch", "put"])
def test_plain_member_cannot_change_the_organization(client_for, member, organization, method):
    before = organization_rows()

    response = getattr(client_for(member), method)(detail_url(URL, "acme"), {"name": "Hijacked"}, format="json")

    assert response.status_code == 403
    assert response.json() == ONLY_ADMINS_CHANGE
    assert organization_rows() == before


@pytest.mark.parametrize("who", ["outsider", "user"])
def test_non_member_cannot_change_the_organization(request, client_for, organization, who):
    actor = request.getfixturevalue(who)
    before = organization_rows()

    response = client_for(actor).patch(detail_url(URL, "acme"), {"name": "Hijacked"}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert organization_rows() == before


def test_admin_of_one_organization_cannot_change_another(client_for, admin_member, organization, other_organization):
    before = organization_rows()

    response = client_for(admin_member).patch(detail_url(URL, "globex"), {"name": "Hijacked"}, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert organization_rows() == before


def test_anonymous_cannot_change_an_organization(client_for, organization):
    before = organization_rows()

    response = client_for(None).patch(detail_url(URL, "acme"), {"name": "Hijacked"}, format="json")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert organization_rows() == before


def test_superuser_changes_the_parent_and_detaches_again(client_for, superuser, organization, other_organization):
    client = client_for(superuser)

    attached = client.patch(detail_url(URL, "acme"), {"parent": "globex"}, format="json")
    organization.refresh_from_db()
    parent_after_attach = organization.parent

    detached = client.patch(detail_url(URL, "acme"), {"parent": None}, format="json")
    organization.refresh_from_db()

    assert (attached.status_code, attached.json()["parent"]) == (200, "globex")
    assert parent_after_attach == other_organization
    assert (detached.status_code, detached.json()["parent"]) == (200, None)
    assert organization.parent is None


def test_superuser_changes_slug_and_code(client_for, superuser, organization):
    response = client_for(superuser).patch(
        detail_url(URL, "acme"), {"slug": "acme-corp", "code": "acmecorp"}, format="json"
    )

    assert response.status_code == 200, response.json()
    organization.refresh_from_db()
    assert (organization.slug, organization.code) == ("acme-corp", "ACMECORP")


def test_superuser_keeps_own_slug_and_code_when_resending_them(client_for, superuser, organization):
    response = client_for(superuser).patch(detail_url(URL, "acme"), {"slug": "acme", "code": "ACME"}, format="json")

    assert response.status_code == 200, response.json()


def test_superuser_cannot_take_the_slug_of_a_deleted_organization(client_for, superuser, landscape):
    before = organization_rows()

    response = client_for(superuser).patch(detail_url(URL, "acme"), {"slug": "oldco"}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"slug": ["An organization with this slug already exists."]})
    assert organization_rows() == before


def test_parent_cycle_is_rejected(client_for, superuser, organization):
    # given: acme > acme-labs > acme-labs-eu
    labs = OrganizationFactory(slug="acme-labs", code="LABS", name="Acme Labs", parent=organization)
    OrganizationFactory(slug="acme-labs-eu", code="LABSEU", name="Acme Labs EU", parent=labs)
    before = organization_rows()

    # when: acme is put under its own grandchild
    response = client_for(superuser).patch(detail_url(URL, "acme"), {"parent": "acme-labs-eu"}, format="json")

    # then
    assert response.status_code == 400
    assert response.json() == invalid(
        {"parent": ["This parent is a subsidiary of this organization: that would make a cycle."]}
    )
    assert organization_rows() == before


def test_organization_cannot_be_its_own_parent(client_for, superuser, organization):
    before = organization_rows()

    response = client_for(superuser).patch(detail_url(URL, "acme"), {"parent": "acme"}, format="json")

    assert response.status_code == 400
    assert response.json() == invalid({"parent": ["An organization cannot be its own parent."]})
    assert organization_rows() == before


# --- delete -----------------------------------------------------------------------------------------------------------


def test_superuser_soft_deletes_an_organization(client_for, superuser, organization):
    # when
    response = client_for(superuser).delete(detail_url(URL, "acme"))

    # then: hidden, but the row stays
    assert response.status_code == 204
    assert response.content == b""
    deleted = Organization.all_objects.get(pk=organization.pk)
    assert deleted.deleted_at is not None
    assert (deleted.deleted_by, deleted.updated_by) == (superuser, superuser)
    assert not Organization.objects.filter(pk=organization.pk).exists()
    assert client_for(superuser).get(detail_url(URL, "acme")).status_code == 404


def test_organization_with_an_active_subsidiary_cannot_be_deleted(client_for, superuser, organization):
    # given
    OrganizationFactory(slug="acme-labs", code="LABS", name="Acme Labs", parent=organization)
    before = organization_rows()

    # when
    response = client_for(superuser).delete(detail_url(URL, "acme"))

    # then
    assert response.status_code == 409
    assert response.json() == error(
        "organization_has_active_subsidiaries",
        "This organization has active subsidiaries; delete or detach them first.",
    )
    assert organization_rows() == before


def test_inactive_or_deleted_subsidiaries_do_not_block_deletion(client_for, superuser, organization):
    # given
    OrganizationFactory(slug="acme-old", code="ACMEOLD", name="Acme Old", parent=organization, is_active=False)
    gone = OrganizationFactory(slug="acme-gone", code="ACMEGONE", name="Acme Gone", parent=organization)
    gone.mark_deleted(actor=None)

    # when
    response = client_for(superuser).delete(detail_url(URL, "acme"))

    # then
    assert response.status_code == 204
    assert Organization.all_objects.get(pk=organization.pk).is_deleted is True


@pytest.mark.parametrize("who", ["admin_member", "member"])
def test_members_and_admins_cannot_delete_the_organization(request, client_for, organization, who):
    actor = request.getfixturevalue(who)
    before = organization_rows()

    response = client_for(actor).delete(detail_url(URL, "acme"))

    assert response.status_code == 403
    assert response.json() == ONLY_OPERATORS_DELETE
    assert organization_rows() == before


@pytest.mark.parametrize("who", ["outsider", "user"])
def test_non_members_get_404_on_delete(request, client_for, organization, who):
    actor = request.getfixturevalue(who)
    before = organization_rows()

    response = client_for(actor).delete(detail_url(URL, "acme"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert organization_rows() == before


def test_anonymous_cannot_delete_an_organization(client_for, organization):
    before = organization_rows()

    response = client_for(None).delete(detail_url(URL, "acme"))

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert organization_rows() == before
