"""OIDC_ROLE_MAPPING: reading the setting, and syncing memberships and role assignments from plain claim dicts."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.oidc.mapping import Grant, parse_role_mapping, role_mapping_setting
from accounts.oidc.roles import SYNC_REASON, current_mapping, sync_provider_access
from audit.models import SecurityEvent, SecurityEventKind
from organizations.demo import DEMO_PASSWORD, ORGANIZATIONS, PEOPLE
from organizations.models import AccessSource, Membership
from rbac.models import Role, RoleAssignment
from tests.accounts.factories import UserFactory
from tests.organizations.factories import DepartmentFactory, MembershipFactory, OrganizationFactory

MAPPING = {
    "groups": {
        "/acme": [{"organization": "acme"}],
        "/acme/finance-managers": [{"organization": "acme", "role": "manager", "department": "fin"}],
        "/acme/auditors": [{"organization": "acme", "role": "auditor"}],
        "/globex/viewers": [{"organization": "globex", "role": "viewer"}],
        "/nowhere": [{"organization": "nowhere", "role": "member"}],
        "/acme/wizards": [{"organization": "acme", "role": "wizard"}],
        "/acme/lost": [{"organization": "acme", "role": "member", "department": "LOST"}],
    },
    "realm_roles": {"acme-member": [{"organization": "acme", "role": "member"}]},
    "client_roles": {"itdo-erp": {"globex-auditor": [{"organization": "globex", "role": "auditor"}]}},
}


# --- Reading the setting ---------------------------------------------------------------------------------------------


def test_an_empty_setting_maps_nothing():
    assert not parse_role_mapping("")
    assert not parse_role_mapping(None)
    assert role_mapping_setting("  ") == {}


def test_grants_come_from_groups_realm_roles_and_client_roles():
    mapping = parse_role_mapping(json.dumps(MAPPING))
    claims = {
        "groups": ["/acme/finance-managers", "/unmapped"],
        "realm_access": {"roles": ["acme-member", "offline_access"]},
        "resource_access": {"itdo-erp": {"roles": ["globex-auditor"]}, "other": {"roles": ["globex-auditor"]}},
    }

    grants = mapping.grants_for(claims)

    assert grants == {
        Grant("acme", "manager", "FIN"),
        Grant("acme", "member"),
        Grant("globex", "auditor"),
    }


def test_claims_of_the_wrong_shape_give_nothing():
    mapping = parse_role_mapping(MAPPING)

    assert mapping.grants_for({"groups": "/acme", "realm_access": ["acme-member"], "resource_access": []}) == {
        Grant("acme")
    }
    assert mapping.grants_for({"groups": [1, None], "resource_access": {"itdo-erp": "globex-auditor"}}) == set()


def test_a_parsed_mapping_is_taken_as_it_is():
    mapping = parse_role_mapping(MAPPING)

    assert parse_role_mapping(mapping) is mapping


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object with the sections groups, realm_roles, client_roles"),
        ({"roles": {}}, "unknown section roles"),
        ({"groups": []}, 'OIDC_ROLE_MAPPING["groups"]: must map claim values to lists of grants.'),
        ({"groups": {"/a": {"organization": "acme"}}}, 'OIDC_ROLE_MAPPING["groups"]["/a"]: must be a list of grants.'),
        ({"groups": {"/a": ["acme"]}}, 'OIDC_ROLE_MAPPING["groups"]["/a"][0]: a grant is an object'),
        ({"groups": {"/a": [{"org": "acme"}]}}, "unknown key org (use organization, role and department)"),
        ({"groups": {"/a": [{"role": "member"}]}}, "every grant names an organization"),
        ({"groups": {"/a": [{"organization": " "}]}}, "organization must be a non-empty string"),
        ({"groups": {"/a": [{"organization": "acme", "role": 3}]}}, "role must be a non-empty string"),
        ({"groups": {"/a": [{"organization": "acme", "department": "FIN"}]}}, "a department limits a role"),
        ({"client_roles": []}, 'OIDC_ROLE_MAPPING["client_roles"]: must map client ids to their roles.'),
        ({"client_roles": {"itdo-erp": {"r": [{}]}}}, 'OIDC_ROLE_MAPPING["client_roles"]["itdo-erp"]["r"][0]'),
    ],
)
def test_a_wrong_mapping_stops_the_start_up_saying_where(value, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_role_mapping(value if isinstance(value, str) else json.dumps(value))

    assert message in str(raised.value)


def test_the_settings_module_refuses_a_wrong_mapping_at_start_up():
    from tests.erp.test_settings import run_manage

    result = run_manage("check", OIDC_ROLE_MAPPING='{"groups": {"/acme": [{"organisation": "acme"}]}}')

    assert result.returncode != 0
    assert 'OIDC_ROLE_MAPPING["groups"]["/acme"][0]: unknown key organisation' in result.stderr


# --- Syncing ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def mapping(settings):
    settings.OIDC_ROLE_MAPPING = MAPPING
    return current_mapping()


@pytest.fixture
def acme(db):
    organization = OrganizationFactory(slug="acme", code="ACME")
    DepartmentFactory(organization=organization, code="FIN")
    return organization


@pytest.fixture
def globex(db):
    return OrganizationFactory(slug="globex", code="GLOBEX")


def assignments_of(user):
    assignments = RoleAssignment.objects.filter(user=user).select_related("organization", "role", "department")
    return sorted(
        (
            assignment.organization.slug,
            assignment.role.code,
            assignment.department.code if assignment.department else None,
            assignment.source,
            assignment.is_active,
        )
        for assignment in assignments
    )


def memberships_of(user):
    return sorted(
        (membership.organization.slug, membership.source, membership.is_active)
        for membership in Membership.objects.filter(user=user).select_related("organization")
    )


def test_claims_create_provider_memberships_and_assignments_with_events(mapping, acme, globex):
    # given a person who belongs nowhere
    user = UserFactory()

    # when their claims name a finance-manager group and a realm role
    report = sync_provider_access(
        user=user, claims={"groups": ["/acme/finance-managers", "/globex/viewers"], "realm_access": {"roles": []}}
    )

    # then they are a member of both organizations and hold the roles, all marked as coming from the provider
    assert memberships_of(user) == [("acme", "provider", True), ("globex", "provider", True)]
    assert assignments_of(user) == [
        ("acme", "manager", "FIN", "provider", True),
        ("globex", "viewer", None, "provider", True),
    ]
    assert report.memberships_added == ["acme", "globex"]
    assert report.roles_assigned == ["acme:manager@FIN", "globex:viewer"]
    kinds = list(SecurityEvent.objects.filter(target_user_id=user.pk).order_by("pk").values_list("kind", flat=True))
    assert kinds == [
        SecurityEventKind.MEMBERSHIP_ADDED,
        SecurityEventKind.ROLE_ASSIGNED,
        SecurityEventKind.MEMBERSHIP_ADDED,
        SecurityEventKind.ROLE_ASSIGNED,
    ]
    assigned = SecurityEvent.objects.filter(kind=SecurityEventKind.ROLE_ASSIGNED, organization=acme).get()
    assert assigned.data["source"] == "provider"
    assert assigned.data["role"] == "manager"
    history = RoleAssignment.history.filter(user=user, organization=acme).get()
    assert history.history_change_reason == SYNC_REASON


def test_a_second_sync_with_the_same_claims_changes_nothing(mapping, acme):
    user = UserFactory()
    claims = {"groups": ["/acme/finance-managers"]}
    sync_provider_access(user=user, claims=claims)
    events = SecurityEvent.objects.count()

    report = sync_provider_access(user=user, claims=claims)

    assert not report.changed
    assert SecurityEvent.objects.count() == events


def test_grants_no_longer_implied_are_removed_but_manual_ones_stay(mapping, acme, globex):
    # given provider-sourced access in two organizations and a role given by hand in acme
    user = UserFactory()
    sync_provider_access(user=user, claims={"groups": ["/acme/finance-managers", "/globex/viewers"]})
    auditor = Role.objects.get(organization__isnull=True, code="auditor")
    RoleAssignment.objects.create(organization=acme, user=user, role=auditor)

    # when the person has left every group
    report = sync_provider_access(user=user, claims={"groups": []})

    # then the provider's assignments are revoked and the globex membership ended; acme stays for the manual role
    assert assignments_of(user) == [("acme", "auditor", None, "manual", True)]
    assert memberships_of(user) == [("acme", "provider", True), ("globex", "provider", False)]
    assert report.roles_revoked == ["acme:manager@FIN", "globex:viewer"]
    assert report.memberships_ended == ["globex"]
    assert "the membership of 'acme' carries roles given by hand" in report.skipped
    revoked = SecurityEvent.objects.filter(kind=SecurityEventKind.ROLE_REVOKED).values_list("data", flat=True)
    assert sorted(data["role"] for data in revoked) == ["manager", "viewer"]
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.MEMBERSHIP_REMOVED, organization=globex).exists()


def test_manual_memberships_and_assignments_are_never_touched(mapping, acme):
    # given a member of acme by hand, with the manager role for FIN by hand
    membership = MembershipFactory(organization=acme)
    user = membership.user
    manager = Role.objects.get(organization__isnull=True, code="manager")
    RoleAssignment.objects.create(organization=acme, user=user, role=manager, department=acme.departments.get())

    # when the claims imply the same role, and later nothing
    first = sync_provider_access(user=user, claims={"groups": ["/acme/finance-managers"]})
    second = sync_provider_access(user=user, claims={})

    # then nothing was created, nothing removed
    assert not first.changed
    assert not second.changed
    assert memberships_of(user) == [("acme", "manual", True)]
    assert assignments_of(user) == [("acme", "manager", "FIN", "manual", True)]


def test_a_membership_ended_by_hand_is_not_reopened(mapping, acme):
    membership = MembershipFactory(organization=acme, is_active=False)

    report = sync_provider_access(user=membership.user, claims={"groups": ["/acme/finance-managers"]})

    assert memberships_of(membership.user) == [("acme", "manual", False)]
    assert assignments_of(membership.user) == []
    assert report.skipped == ["the membership of 'acme' was ended by hand"]


def test_provider_access_comes_back_when_the_claims_do(mapping, acme):
    # given provider access that was taken away
    user = UserFactory()
    sync_provider_access(user=user, claims={"groups": ["/acme/auditors", "/acme"]})
    sync_provider_access(user=user, claims={})
    assert memberships_of(user) == [("acme", "provider", False)]
    assert assignments_of(user) == []

    # when the claims give it again
    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    # then the membership is reopened and the role assigned again
    assert report.memberships_reopened == ["acme"]
    assert memberships_of(user) == [("acme", "provider", True)]
    assert assignments_of(user) == [("acme", "auditor", None, "provider", True)]


def test_a_suspended_provider_assignment_is_reactivated(mapping, acme):
    user = UserFactory()
    sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})
    RoleAssignment.objects.filter(user=user).update(is_active=False)

    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    assert report.roles_reactivated == ["acme:auditor"]
    assert assignments_of(user) == [("acme", "auditor", None, "provider", True)]


def test_unknown_organizations_roles_and_departments_are_logged_and_skipped(mapping, acme, caplog):
    user = UserFactory()

    report = sync_provider_access(user=user, claims={"groups": ["/nowhere", "/acme/wizards", "/acme/lost"]})

    assert report.skipped == [
        "department 'LOST' does not exist in 'acme'",
        "role 'wizard' does not exist in 'acme'",
        "organization 'nowhere' does not exist or is inactive",
    ]
    assert memberships_of(user) == [("acme", "provider", True)]
    assert assignments_of(user) == []
    assert "OIDC_ROLE_MAPPING names something this installation lacks" in caplog.text


def test_an_organization_role_wins_over_a_system_role_with_the_same_code(mapping, acme):
    own = Role.objects.create(organization=acme, code="auditor", name="Acme auditor")
    user = UserFactory()

    sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    assert RoleAssignment.objects.get(user=user).role == own


def test_a_refused_change_is_skipped_and_the_others_happen(mapping, acme, globex, monkeypatch):
    from django.core.exceptions import ValidationError

    from rbac import services as rbac_services

    original = rbac_services.role_assign

    def refuse_in_globex(**kwargs):
        if kwargs["organization"] == globex:
            raise ValidationError("Refused for the test.")
        return original(**kwargs)

    monkeypatch.setattr(rbac_services, "role_assign", refuse_in_globex)
    user = UserFactory()

    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors", "/globex/viewers"]})

    assert assignments_of(user) == [("acme", "auditor", None, "provider", True)]
    assert report.skipped == ["globex:viewer: ['Refused for the test.']"]


def test_a_refused_membership_gives_no_roles(mapping, acme, monkeypatch):
    from django.core.exceptions import ValidationError

    from organizations import services as organization_services

    def refuse(**kwargs):
        raise ValidationError("No members today.")

    monkeypatch.setattr(organization_services, "membership_create", refuse)
    user = UserFactory()

    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    assert memberships_of(user) == []
    assert report.skipped == ["acme: ['No members today.']"]


def test_a_refused_reopening_gives_no_roles(mapping, acme, monkeypatch):
    from django.core.exceptions import ValidationError

    from organizations import services as organization_services

    user = UserFactory()
    Membership.objects.create(organization=acme, user=user, is_active=False, source=AccessSource.PROVIDER)

    def refuse(**kwargs):
        raise ValidationError("Not now.")

    monkeypatch.setattr(organization_services, "membership_update", refuse)

    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    assert assignments_of(user) == []
    assert report.skipped == ["acme: ['Not now.']"]


def test_without_a_mapping_nothing_follows_the_provider(settings, acme):
    settings.OIDC_ROLE_MAPPING = {}
    user = UserFactory()
    Membership.objects.create(organization=acme, user=user, source=AccessSource.PROVIDER)

    report = sync_provider_access(user=user, claims={"groups": ["/acme/auditors"]})

    assert not report.changed
    assert memberships_of(user) == [("acme", "provider", True)]


# --- The Keycloak realm of compose.yaml ------------------------------------------------------------------------------

DEPLOY = Path(settings.BASE_DIR) / "deploy" / "keycloak"


def realm():
    return json.loads((DEPLOY / "realm-itdo.json").read_text())


def test_the_realm_client_is_confidential_with_pkce_and_local_redirects():
    (client,) = realm()["clients"]

    assert client["clientId"] == "itdo-erp"
    assert client["publicClient"] is False
    assert client["secret"]
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["redirectUris"] == ["http://127.0.0.1:8000/*", "http://localhost:8000/*"]
    assert client["attributes"]["post.logout.redirect.uris"] == "http://127.0.0.1:8000/*##http://localhost:8000/*"


def test_the_realm_tokens_carry_the_api_audience_groups_and_realm_roles():
    (client,) = realm()["clients"]
    mappers = {mapper["protocolMapper"]: mapper["config"] for mapper in client["protocolMappers"]}

    assert mappers["oidc-audience-mapper"]["included.custom.audience"] == settings.OIDC_API_AUDIENCE == "itdo-erp-api"
    assert mappers["oidc-audience-mapper"]["access.token.claim"] == "true"
    assert mappers["oidc-group-membership-mapper"]["claim.name"] == "groups"
    assert mappers["oidc-group-membership-mapper"]["full.path"] == "true"
    assert mappers["oidc-usermodel-realm-role-mapper"]["claim.name"] == "realm_access.roles"
    for config in (mappers["oidc-group-membership-mapper"], mappers["oidc-usermodel-realm-role-mapper"]):
        assert config["id.token.claim"] == config["userinfo.token.claim"] == config["access.token.claim"] == "true"


def test_the_realm_groups_and_roles_are_those_of_the_example_mapping():
    data = realm()
    mapping = json.loads((DEPLOY / "role-mapping.json").read_text())
    group_paths = {sub["path"] for group in data["groups"] for sub in group["subGroups"]}

    assert group_paths == set(mapping["groups"])
    assert {role["name"] for role in data["roles"]["realm"]} == set(mapping["realm_roles"])
    assert {group["name"] for group in data["groups"]} == {slug for slug, *_ in ORGANIZATIONS}


def test_the_realm_users_are_the_demo_people_with_the_roles_seed_demo_gives_them():
    # given the demo people and the example mapping
    mapping = parse_role_mapping((DEPLOY / "role-mapping.json").read_text())
    expected = {
        email: {Grant(slug, role, department if role == "manager" else None)}
        for email, _name, slug, department, _title, role in PEOPLE
    }

    # when each realm user's claims go through the mapping
    given = {}
    for user in realm()["users"]:
        assert user["emailVerified"] is True
        assert user["enabled"] is True
        assert user["credentials"] == [{"type": "password", "value": DEMO_PASSWORD, "temporary": False}]
        claims = {"groups": user["groups"], "realm_access": {"roles": user.get("realmRoles", [])}}
        given[user["email"]] = mapping.grants_for(claims)

    # then every demo person holds at the provider exactly what seed_demo gives them
    assert given == expected
