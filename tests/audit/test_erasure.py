"""Erasure (GDPR): the person disappears from live and history tables, the chain stays valid, a second run is a no-op;
and the right of access: everything kept about a person, as JSON."""

from __future__ import annotations

import datetime
import json
from importlib import import_module
from io import StringIO

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from audit.context import audit_context
from audit.erasure import end_sessions, user_data_export, user_erase
from audit.events import record_event, verify_chains
from audit.models import SecurityEvent, SecurityEventDetail, SecurityEventKind
from erp.exceptions import ConflictError
from organizations.models import Department, Membership
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.api_helpers import error, invalid
from tests.audit.scan import columns_containing
from tests.organizations.factories import MembershipFactory
from tests.rbac.factories import system_role

pytestmark = pytest.mark.django_db

EMAIL = "zelda.quimby@example.com"
NAME = "Zelda Quimby-Erasmus"
PHONE = "+43 660 7654321"
SUBJECT = "kc-zelda-7f3a"
DEPARTMENTS = "/api/v1/organizations/acme/departments/"


@pytest.fixture
def person(organization) -> User:
    """A member of Acme (administrator there), known to the identity provider."""
    user = UserFactory(email=EMAIL, full_name=NAME, phone=PHONE, oidc_subject=SUBJECT)
    MembershipFactory(organization=organization, user=user, role="org_admin")
    return user


@pytest.fixture
def operator(db) -> User:
    """The superuser who carries out erasures (not the last one: the ``superuser`` fixture is another)."""
    return SuperuserFactory(email="dpo@example.com", full_name="Data Protection")


def browser_login(client: APIClient, email: str, password: str = PASSWORD, **extra: str):
    token = client.get("/api/v1/auth/csrf/").json()["csrf_token"]
    return client.post("/api/v1/auth/login/", {"email": email, "password": password}, HTTP_X_CSRFTOKEN=token, **extra)


def leave_traces_everywhere(person: User, department: Department, operator: User) -> APIClient:
    """What a working life leaves: sign-ins (failed and not), a profile edit, changes made, admin log lines."""
    browser = APIClient(enforce_csrf_checks=True)
    where = {"REMOTE_ADDR": "198.51.100.23", "HTTP_USER_AGENT": "Zelda's Firefox"}
    assert browser_login(browser, EMAIL.upper(), "wrong-password", **where).status_code == 401
    assert browser_login(browser, EMAIL, **where).status_code == 200
    token = browser.get("/api/v1/auth/csrf/").json()["csrf_token"]
    response = browser.patch("/api/v1/me/", {"phone": PHONE + "9"}, HTTP_X_CSRFTOKEN=token, **where)
    assert response.status_code == 200, response.json()
    response = browser.patch(
        f"{DEPARTMENTS}{department.pk}/", {"name": "Zelda's office"}, HTTP_X_CSRFTOKEN=token, **where
    )
    assert response.status_code == 200, response.json()
    membership = Membership.objects.get(user=person)
    for obj in (person, membership):
        LogEntry.objects.create(
            user=operator,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
            object_repr=str(obj),
            action_flag=CHANGE,
            change_message="[]",
        )
    return browser


def test_an_erased_persons_email_and_name_appear_nowhere_in_the_database(
    person, department, operator, django_capture_on_commit_callbacks
):
    # given
    browser = leave_traces_everywhere(person, department, operator)
    assert set(columns_containing(EMAIL)) >= {
        "accounts_user.email",
        "accounts_historicaluser.email",
        "audit_securityeventdetail.email",
        "django_admin_log.object_repr",
    }
    assert set(columns_containing(NAME)) == {"accounts_user.full_name", "accounts_historicaluser.full_name"}

    # when
    with django_capture_on_commit_callbacks(execute=True), audit_context(actor=operator):
        result = user_erase(actor=operator, user=person)

    # then
    assert result.is_changed
    assert columns_containing(EMAIL) == []
    assert columns_containing(NAME) == []
    assert columns_containing(PHONE) == []
    assert columns_containing("198.51.100.23") == []
    assert columns_containing("Zelda's Firefox") == []
    # The provider's subject stays only inside chained events, where only the identity provider could resolve it.
    assert columns_containing(SUBJECT) == ["audit_securityevent.actor_subject"]
    assert list(verify_chains()) == []
    # and the session ended
    assert browser.get("/api/v1/me/").status_code in (401, 403)


def test_erasure_anonymises_the_account_and_every_version_and_keeps_the_ids(person, department, operator):
    # given
    with audit_context(actor=person, ip="192.0.2.1"):
        department.name = "Renamed by Zelda"
        department.save()

    # when
    with audit_context(actor=operator):
        user_erase(actor=operator, user=person)

    # then
    person.refresh_from_db()
    placeholder = f"erased-{person.pk}@erased.invalid"
    assert (
        person.email,
        person.full_name,
        person.phone,
        person.oidc_subject,
        person.is_active,
        person.is_staff,
        person.is_superuser,
        person.has_usable_password(),
    ) == (placeholder, "Erased user", "", None, False, False, False, False)
    assert list(
        User.history.filter(id=person.pk).order_by("history_id").values_list("email", "full_name", "phone")
    ) == [(placeholder, "Erased user", ""), (placeholder, "Erased user", "")]
    last = User.history.filter(id=person.pk).latest("history_id")
    assert (last.history_user_id, last.is_active) == (operator.pk, False)
    authored = Department.history.get(id=department.pk, name="Renamed by Zelda")
    assert (authored.history_user_id, authored.history_user_subject, authored.history_ip) == (person.pk, "", None)
    # memberships and assignments keep pointing at the (now anonymous) account
    assert Membership.objects.get(user_id=person.pk).organization_id == department.organization_id


def test_erasure_blanks_the_persons_event_details_and_leaves_the_chain_alone(person, organization, operator):
    # given
    with audit_context(ip="198.51.100.23"):
        failed = record_event(SecurityEventKind.LOGIN_FAILED, email=EMAIL)  # unknown at the time: no user id
        own = record_event(SecurityEventKind.LOGGED_OUT, actor=person, target_user=person)
    with audit_context(ip="203.0.113.99"):
        by_operator = record_event(
            SecurityEventKind.ROLE_ASSIGNED, organization=organization, actor=operator, target_user=person
        )
    events_before = list(SecurityEvent.objects.order_by("pk").values())

    # when
    user_erase(actor=operator, user=person)

    # then
    details = {
        detail.event_id: (detail.email, detail.ip, detail.user_agent) for detail in SecurityEventDetail.objects.all()
    }
    assert details[failed.pk] == ("", None, "")
    assert details[own.pk] == ("", None, "")
    assert details[by_operator.pk] == ("", "203.0.113.99", "")  # the operator's own address stays: their record
    assert list(SecurityEvent.objects.filter(pk__lte=by_operator.pk).order_by("pk").values()) == events_before
    erased = SecurityEvent.objects.get(kind=SecurityEventKind.USER_ERASED)
    assert (erased.actor_id, erased.target_user_id, erased.organization_id, erased.object_type, erased.object_id) == (
        operator.pk,
        person.pk,
        None,
        "accounts.user",
        str(person.pk),
    )
    assert erased.data == {"versions": 1, "event_details": 2, "admin_log_entries": 0}  # versions: the account's first
    assert list(verify_chains()) == []


def test_erasing_twice_changes_nothing_the_second_time(person, operator):
    # given
    user_erase(actor=operator, user=person)
    events = SecurityEvent.objects.count()
    versions = User.history.count()

    # when
    result = user_erase(actor=operator, user=person)

    # then
    assert not result.is_changed
    assert (result.account, result.versions, result.event_details, result.admin_log_entries) == (0, 0, 0, 0)
    assert SecurityEvent.objects.count() == events
    assert User.history.count() == versions


def test_the_last_active_superuser_cannot_be_erased(operator):
    # given: a second superuser who is inactive does not count
    SuperuserFactory(is_active=False)
    someone = UserFactory()

    # when / then
    with pytest.raises(ConflictError, match="last active superuser"):
        user_erase(actor=someone, user=operator)
    operator.refresh_from_db()
    assert (operator.email, operator.is_active) == ("dpo@example.com", True)
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.USER_ERASED).exists()


def test_a_superuser_who_is_not_the_last_one_can_be_erased(operator, superuser):
    user_erase(actor=superuser, user=operator)

    operator.refresh_from_db()
    assert (operator.is_active, operator.is_superuser) == (False, False)


# --- Sessions --------------------------------------------------------------------------------------------------------


def start_session(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.session.session_key


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cache"])
def test_end_sessions_deletes_the_persons_sessions_only(engine, settings, person, operator):
    # given
    settings.SESSION_ENGINE = engine
    store_class = import_module(engine).SessionStore
    theirs = [start_session(person), start_session(person)]
    others = start_session(operator)

    # when
    ended = end_sessions(person)

    # then
    assert ended == 2
    assert [store_class().exists(key) for key in theirs] == [False, False]
    assert store_class().exists(others)
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [others]
    revoked = SecurityEvent.objects.filter(kind=SecurityEventKind.SESSION_REVOKED).order_by("chain")
    assert [(event.organization_id, event.target_user_id, event.data) for event in revoked] == [
        (None, person.pk, {"reason": "erased", "ended": 2}),  # the installation's record
        (person.memberships.get().organization_id, person.pk, {"reason": "erased", "ended": 2}),  # their organization's
    ]


# --- Command ---------------------------------------------------------------------------------------------------------


def test_erase_user_command_erases_by_email_then_is_a_no_op_by_id(person, operator):
    # when
    out = StringIO()
    call_command("erase_user", EMAIL.upper(), "--actor", operator.email, stdout=out)
    again = StringIO()
    call_command("erase_user", str(person.pk), stdout=again)

    # then
    person.refresh_from_db()
    assert person.email == f"erased-{person.pk}@erased.invalid"
    assert out.getvalue().startswith(f"Erased user {person.pk}: ")
    assert out.getvalue().endswith(f"the account is now erased-{person.pk}@erased.invalid.\n")
    assert again.getvalue() == f"User {person.pk} has already been erased: nothing changed.\n"
    event = SecurityEvent.objects.get(kind=SecurityEventKind.USER_ERASED)
    assert (event.actor_id, event.target_user_id, event.source) == (operator.pk, person.pk, "command")


def test_erase_user_command_with_the_old_email_after_erasure_says_how_to_find_the_account(person, operator):
    user_erase(actor=operator, user=person)

    with pytest.raises(CommandError, match=r"An erased account no longer has its address: give its id instead\."):
        call_command("erase_user", EMAIL)


def test_erase_user_command_refuses_the_last_active_superuser(operator):
    with pytest.raises(CommandError, match=r"This is the last active superuser; it cannot be erased\."):
        call_command("erase_user", operator.email)


# --- API -------------------------------------------------------------------------------------------------------------


def erase_url(user: User) -> str:
    return f"/api/v1/users/{user.pk}/erase/"


def test_a_superuser_erases_a_person_through_the_api(client_for, person, operator):
    # when
    response = client_for(operator).post(erase_url(person), REMOTE_ADDR="192.0.2.50")
    again = client_for(operator).post(erase_url(person))

    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": person.pk,
        "is_changed": True,
        "versions": 1,
        "event_details": 0,
        "admin_log_entries": 0,
    }
    assert again.json() == {
        "id": person.pk,
        "is_changed": False,
        "versions": 0,
        "event_details": 0,
        "admin_log_entries": 0,
    }
    person.refresh_from_db()
    assert not person.is_active
    event = SecurityEvent.objects.get(kind=SecurityEventKind.USER_ERASED)
    assert (event.actor_id, event.target_user_id, event.source, event.detail.ip) == (
        operator.pk,
        person.pk,
        "api",
        "192.0.2.50",
    )


@pytest.mark.parametrize("caller", ["member", "admin_member", "staff"])
def test_only_superusers_may_erase(request, client_for, person, caller):
    user = UserFactory(is_staff=True) if caller == "staff" else request.getfixturevalue(caller)

    response = client_for(user).post(erase_url(person))

    assert response.status_code == 403
    assert response.json() == error("permission_denied", "Only superusers may do this.")
    person.refresh_from_db()
    assert (person.email, person.is_active) == (EMAIL, True)


def test_anonymous_callers_cannot_erase(client_for, person):
    response = client_for(None).post(erase_url(person))

    assert response.status_code in (401, 403)
    person.refresh_from_db()
    assert person.email == EMAIL


def test_erasing_an_unknown_user_is_404(client_for, operator):
    response = client_for(operator).post("/api/v1/users/999999/erase/")

    assert response.status_code == 404


def test_erasing_the_last_active_superuser_through_the_api_is_409(client_for, operator):
    # given: the caller is a superuser whose account is no longer active (a long-lived token, say)
    former = SuperuserFactory(is_active=False)

    # when
    response = client_for(former).post(erase_url(operator))

    # then
    assert response.status_code == 409
    assert response.json() == error("last_superuser", "This is the last active superuser; it cannot be erased.")
    operator.refresh_from_db()
    assert operator.is_active


def test_nobody_erases_themselves(client_for, operator, superuser):
    response = client_for(operator).post(erase_url(operator))

    assert response.status_code == 400
    assert response.json() == invalid({"non_field_errors": ["You cannot erase your own account."]})
    operator.refresh_from_db()
    assert operator.is_active


# --- Right of access -------------------------------------------------------------------------------------------------


@pytest.fixture
def exported(person, organization, department) -> dict:
    """The person's data as the export must render it, read back from what was stored."""
    membership = Membership.objects.get(user=person)
    membership.department, membership.employee_number = department, "E-7"
    membership.joined_on = datetime.date(2024, 3, 1)
    membership.save()
    with audit_context(actor=person):
        department.name = "Zelda's office"
        department.save()
    # the failed sign-in is also copied into Acme's chain: the export lists it once
    failed = record_event(SecurityEventKind.LOGIN_FAILED, target_user=person, email=EMAIL)
    assigned = record_event(SecurityEventKind.ROLE_ASSIGNED, organization=organization, actor=None, target_user=person)
    version = Department.history.get(id=department.pk, name="Zelda's office")
    assignment = person.role_assignments.get()
    return {
        "profile": {
            "id": person.pk,
            "email": EMAIL,
            "full_name": NAME,
            "phone": PHONE,
            "locale": "en",
            "time_zone": "UTC",
            "is_active": True,
            "date_joined": person.date_joined.isoformat(),
            "last_login": None,
        },
        "memberships": [
            {
                "organization": "acme",
                "department": "HQ",
                "job_title": "Clerk",
                "employee_number": "E-7",
                "is_active": True,
                "joined_on": "2024-03-01",
                "left_on": None,
            }
        ],
        "role_assignments": [
            {
                "organization": "acme",
                "role": "org_admin",
                "department": None,
                "is_active": True,
                "valid_from": None,
                "valid_until": None,
            }
        ],
        "changes": [
            {
                "model": "organizations.department",
                "object_id": str(department.pk),
                "date": version.history_date.isoformat(),
                "action": "updated",
                "changed_fields": ["name"],
                "organization": "acme",
            }
        ],
        "security_events": [
            {"kind": "login_failed", "occurred_at": failed.occurred_at.isoformat(), "organization": None},
            {"kind": "role_assigned", "occurred_at": assigned.occurred_at.isoformat(), "organization": "acme"},
        ],
        "_assignment": assignment.pk,
    }


def test_my_export_returns_everything_kept_about_me(client_for, person, exported):
    # when
    response = client_for(person).get("/api/v1/me/export/", REMOTE_ADDR="192.0.2.9")

    # then
    exported.pop("_assignment")
    assert response.status_code == 200
    assert response.json() == exported
    event = SecurityEvent.objects.get(kind=SecurityEventKind.DATA_EXPORTED)
    assert (event.actor_id, event.target_user_id, event.data, event.source) == (
        person.pk,
        person.pk,
        {"export": "personal_data"},
        "api",
    )


def test_anonymous_callers_get_no_export(client_for):
    response = client_for(None).get("/api/v1/me/export/")

    assert response.status_code in (401, 403)
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.DATA_EXPORTED).exists()


def test_export_user_data_command_prints_the_same_json(person, exported, operator):
    # when
    out = StringIO()
    call_command("export_user_data", EMAIL, "--actor", operator.email, stdout=out)

    # then
    exported.pop("_assignment")
    assert json.loads(out.getvalue()) == exported
    event = SecurityEvent.objects.get(kind=SecurityEventKind.DATA_EXPORTED)
    assert (event.actor_id, event.target_user_id, event.source) == (operator.pk, person.pk, "command")


def test_the_export_service_matches_the_api(person, exported):
    exported.pop("_assignment")
    assert user_data_export(actor=person, user=person) == exported


def test_an_export_after_erasure_holds_no_personal_data(person, operator, organization):
    role = system_role("org_admin")
    user_erase(actor=operator, user=person)

    data = user_data_export(actor=operator, user=person)

    assert data["profile"]["email"] == f"erased-{person.pk}@erased.invalid"
    assert data["profile"]["full_name"] == "Erased user"
    assert data["role_assignments"][0]["role"] == role.code
    assert EMAIL not in json.dumps(data)
