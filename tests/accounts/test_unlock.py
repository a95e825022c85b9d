"""A locked account in the admin (its state, until when), and unlocking it there or with a command: each unlock is an
``account_unlocked`` security event."""

import io
import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import signin_limits
from accounts.models import User
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.organizations.factories import MembershipFactory

pytestmark = pytest.mark.django_db

LOGIN_URL = "/api/v1/auth/login/"
USERS_URL = "/admin/accounts/user/"


@pytest.fixture
def person() -> User:
    return UserFactory(email="ann@example.com", full_name="Ann Lee")


@pytest.fixture
def operator() -> User:
    return SuperuserFactory(email="op@example.com")


def browser_for(user: User) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def fail_sign_ins(email: str, times: int, address: str = "203.0.113.9") -> None:
    client = APIClient(REMOTE_ADDR=address)
    for _ in range(times):
        client.post(LOGIN_URL, {"email": email, "password": "wrong-password"})


def sign_in(email: str, password: str = PASSWORD) -> int:
    return APIClient(REMOTE_ADDR="198.51.100.1").post(LOGIN_URL, {"email": email, "password": password}).status_code


def unlocked_events() -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(kind=SecurityEventKind.ACCOUNT_UNLOCKED).order_by("pk"))


def locked_until_text(email: str) -> str:
    end = signin_limits.account_lock_end(email)
    assert end is not None
    return f"locked until {timezone.localtime(end):%Y-%m-%d %H:%M %Z}"


# --- the admin --------------------------------------------------------------------------------------------------------


def test_the_user_list_and_page_show_the_lock_and_until_when(operator, person):
    # given: Ann is locked, Bo has failed less than the limit
    UserFactory(email="bo@example.com")
    fail_sign_ins("ann@example.com", 5)
    fail_sign_ins("bo@example.com", 4)
    browser = browser_for(operator)

    # when
    listing = browser.get(USERS_URL).content.decode()
    page = browser.get(f"{USERS_URL}{person.pk}/change/").content.decode()

    # then
    expected = locked_until_text("ann@example.com")
    assert listing.count("locked until") == 1
    assert expected in listing
    assert listing.count('<td class="field-sign_in_lock">open</td>') == 2  # Bo and the operator
    assert expected in page


def test_the_unlock_action_unlocks_and_records_it(operator, person):
    # given
    fail_sign_ins("ann@example.com", 5)
    assert sign_in("ann@example.com") == 429

    # when
    response = browser_for(operator).post(USERS_URL, {"action": "unlock", "_selected_action": [person.pk]})

    # then
    assert response.status_code == 302
    assert signin_limits.account_lock_end("ann@example.com") is None
    assert AccessAttempt.objects.count() == 0
    [event] = unlocked_events()
    assert (event.actor_id, event.target_user_id, event.source) == (operator.pk, person.pk, "admin")
    assert event.data == {"was_locked": True, "attempts_removed": 1}
    assert event.detail.email == "ann@example.com"
    assert sign_in("ann@example.com") == 200


def test_staff_who_may_not_change_accounts_cannot_unlock(organization, person):
    # given: a staff member with the member role (may see people, not change them)
    staff = MembershipFactory(organization=organization, role="member").user
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    MembershipFactory(organization=organization, user=person)
    fail_sign_ins("ann@example.com", 5)
    before = list(AccessAttempt.objects.values_list("pk", "failures_since_start"))

    # when
    browser_for(staff).post(USERS_URL, {"action": "unlock", "_selected_action": [person.pk]})

    # then: nothing changed
    assert list(AccessAttempt.objects.values_list("pk", "failures_since_start")) == before
    assert unlocked_events() == []
    assert sign_in("ann@example.com") == 429


def test_the_sign_in_attempt_lists_are_for_superusers_only(operator, organization, person):
    # given
    fail_sign_ins("ann@example.com", 5)
    staff = MembershipFactory(organization=organization, role="org_admin").user
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    urls = ["/admin/axes/accessattempt/", "/admin/axes/accesslog/", "/admin/axes/accessfailurelog/"]

    # when / then
    assert [browser_for(operator).get(url).status_code for url in urls] == [200, 200, 200]
    assert [browser_for(staff).get(url).status_code for url in urls] == [403, 403, 403]
    assert AccessFailureLog.objects.filter(username="ann@example.com").count() == 5
    assert AccessLog.objects.filter(username="op@example.com").exists()  # sign-ins are listed too


def test_the_attempts_list_unlocks_accounts_and_addresses_with_events(operator, person):
    # given: Ann's account and an address that tried 25 accounts are locked
    fail_sign_ins("ann@example.com", 5, address="203.0.113.9")
    for number in range(25):
        fail_sign_ins(f"person{number}@example.com", 1, address="192.0.2.66")
    assert signin_limits.address_lock_end("192.0.2.66") is not None
    selected = list(AccessAttempt.objects.filter(username__in=["ann@example.com", "person0@example.com"]))

    # when
    browser = browser_for(operator)
    response = browser.post(
        "/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": [row.pk for row in selected]}
    )

    # then: both accounts and both addresses were reset, each with its event
    assert response.status_code == 302
    assert signin_limits.account_lock_end("ann@example.com") is None
    assert signin_limits.address_lock_end("192.0.2.66") is None
    events = unlocked_events()
    assert [(event.target_user_id, event.data) for event in events] == [
        (person.pk, {"was_locked": True, "attempts_removed": 1}),
        (None, {"was_locked": False, "attempts_removed": 1}),
        (None, {"address": "192.0.2.66", "was_locked": True, "attempts_removed": 25}),
        (None, {"address": "203.0.113.9", "was_locked": False, "attempts_removed": 1}),
    ]
    assert [event.detail.email for event in events[:2]] == ["ann@example.com", "person0@example.com"]
    assert {event.actor_id for event in events} == {operator.pk}
    assert AccessAttempt.objects.count() == 0
    # deleting attempts directly (an unlock without an event) is not offered
    assert browser.post(f"/admin/axes/accessattempt/{selected[0].pk}/delete/", {"post": "yes"}).status_code == 403


# --- commands ---------------------------------------------------------------------------------------------------------


def test_unlock_account_command(person):
    # given
    fail_sign_ins("ann@example.com", 5)
    out = io.StringIO()

    # when
    call_command("unlock_account", "ANN@example.com", stdout=out)

    # then
    assert out.getvalue() == "Unlocked ANN@example.com (was locked; 1 attempt records removed).\n"
    assert sign_in("ann@example.com") == 200
    [event] = unlocked_events()
    assert (event.actor_id, event.actor_subject, event.target_user_id, event.source) == (
        None,
        "system",
        person.pk,
        "command",
    )
    assert event.data == {"was_locked": True, "attempts_removed": 1}


def test_unlock_account_command_for_an_address_with_an_actor(operator, person):
    # given
    for number in range(25):
        fail_sign_ins(f"person{number}@example.com", 1, address="192.0.2.66")
    out = io.StringIO()

    # when
    call_command("unlock_account", "--address", "192.0.2.66", "--actor", "op@example.com", stdout=out)

    # then
    assert out.getvalue() == "Unlocked address 192.0.2.66 (was locked; 25 attempt records removed).\n"
    assert signin_limits.address_lock_end("192.0.2.66") is None
    [event] = unlocked_events()
    assert (event.actor_id, event.target_user_id) == (operator.pk, None)
    assert event.data == {"address": "192.0.2.66", "was_locked": True, "attempts_removed": 25}


def test_unlock_account_command_needs_an_account_or_an_address():
    with pytest.raises(CommandError, match=re.escape("Name an account's email, an --address, or both.")):
        call_command("unlock_account")
    assert unlocked_events() == []


def test_axes_reset_removes_every_attempt_and_records_it(person):
    # given
    fail_sign_ins("ann@example.com", 5)
    fail_sign_ins("bo@example.com", 2, address="192.0.2.1")
    out = io.StringIO()

    # when
    call_command("axes_reset", stdout=out)

    # then
    assert out.getvalue() == "2 attempts removed.\n"
    assert AccessAttempt.objects.count() == 0
    [event] = unlocked_events()
    assert event.data == {"scope": "all", "attempts_removed": 2}
    assert sign_in("ann@example.com") == 200
