"""The password policy beyond Django's validators: not one of the last 5 passwords, not the email address — and the
history behind it, kept whenever a password is set (services, API, admin, commands) and wiped on erasure."""

from __future__ import annotations

import itertools
from io import StringIO

import pytest
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import PasswordHistory, User
from accounts.passwords import EmailPasswordValidator, PasswordHistoryValidator
from audit.context import audit_context
from audit.erasure import user_erase
from audit.models import SecurityEvent, SecurityEventKind
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory
from tests.api_helpers import invalid

pytestmark = pytest.mark.django_db

REUSED = "The password cannot be one of your last 5 passwords."
IS_EMAIL = "The password cannot be your email address or the part of it before the @."
PASSWORDS = [f"passphrase-number-{n}-of-many" for n in range(6)]


def change(user: User, current: str, new: str) -> User:
    return services.user_change_password(user=user, current_password=current, new_password=new)


@pytest.fixture
def veteran() -> User:
    """Someone who has had six passwords, PASSWORDS[0] first and PASSWORDS[5] now."""
    user = services.user_create(email="vera@example.com", password=PASSWORDS[0])
    for previous, new in itertools.pairwise(PASSWORDS):
        user = change(user, previous, new)
    return user


def refusal(password: str, user: User) -> list[str]:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        return error.messages
    return []


# --- History ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_one_of_the_last_five_passwords_is_refused(veteran, index):
    # when
    with pytest.raises(ValidationError) as raised:
        change(veteran, PASSWORDS[5], PASSWORDS[index])

    # then
    assert raised.value.message_dict == {"new_password": [REUSED]}
    veteran.refresh_from_db()
    assert veteran.check_password(PASSWORDS[5])


def test_the_current_password_is_one_of_the_last_five(veteran):
    assert refusal(PASSWORDS[5], veteran) == [REUSED]


def test_the_sixth_last_password_may_be_used_again(veteran):
    # when
    change(veteran, PASSWORDS[5], PASSWORDS[0])

    # then
    veteran.refresh_from_db()
    assert veteran.check_password(PASSWORDS[0])


def test_the_history_keeps_the_five_most_recent_hashes_only(veteran):
    # then
    hashes = list(PasswordHistory.objects.filter(user=veteran).values_list("password", flat=True))
    assert len(hashes) == 5
    assert hashes[0] == veteran.password
    assert [any(User(password=encoded).check_password(p) for encoded in hashes) for p in PASSWORDS] == [
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    assert all(not encoded.startswith(tuple(PASSWORDS)) for encoded in hashes)


def test_the_history_size_is_an_option(veteran):
    # given
    validator = PasswordHistoryValidator(remember=2)

    # then
    with pytest.raises(ValidationError):
        validator.validate(PASSWORDS[4], veteran)
    validator.validate(PASSWORDS[3], veteran)
    assert validator.get_help_text() == "Your password cannot be one of your last 2 passwords."
    assert PasswordHistoryValidator(remember=1).get_help_text() == "Your password cannot be your current password."


def test_a_password_set_before_the_history_existed_still_counts_as_the_current_one():
    # given
    person = UserFactory()
    PasswordHistory.objects.filter(user=person).delete()

    # then
    assert refusal(PASSWORD, person) == [REUSED]


def test_a_new_account_has_no_history_to_refuse_from():
    PasswordHistoryValidator().validate(PASSWORD, User(email="new@example.com"))
    PasswordHistoryValidator().validate(PASSWORD, None)


def test_creating_an_account_records_its_password_but_no_change(django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        person = services.user_create(email="new@example.com", password=PASSWORDS[0])

    # then
    assert list(PasswordHistory.objects.filter(user=person).values_list("password", flat=True)) == [person.password]
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.PASSWORD_CHANGED).exists()


def test_an_account_without_a_password_keeps_no_history():
    person = services.user_create(email="sso@example.com", password=None)

    assert not PasswordHistory.objects.filter(user=person).exists()


def test_the_create_user_command_records_the_password():
    # when
    call_command("create_user", "--email", "cmd@example.com", "--password", PASSWORDS[0], stdout=StringIO())

    # then
    person = User.objects.get(email="cmd@example.com")
    assert PasswordHistory.objects.filter(user=person).count() == 1


def test_changing_a_password_records_it_and_an_event():
    # given
    person = UserFactory()

    # when
    with audit_context(actor=person):
        change(person, PASSWORD, PASSWORDS[0])

    # then
    assert PasswordHistory.objects.filter(user=person).count() == 2
    event = SecurityEvent.objects.get(kind=SecurityEventKind.PASSWORD_CHANGED)
    assert (event.actor_id, event.target_user_id) == (person.pk, person.pk)


def test_the_admin_password_form_applies_the_policy_and_records_the_history():
    # given
    person = UserFactory()
    admin = Client()
    admin.force_login(SuperuserFactory())
    url = f"/admin/accounts/user/{person.pk}/password/"

    # when
    refused = admin.post(url, {"password1": PASSWORD, "password2": PASSWORD})
    accepted = admin.post(url, {"password1": PASSWORDS[0], "password2": PASSWORDS[0]})

    # then
    assert refused.status_code == 200
    assert REUSED in refused.content.decode()
    assert accepted.status_code == 302
    person.refresh_from_db()
    assert person.check_password(PASSWORDS[0])
    assert PasswordHistory.objects.filter(user=person).count() == 2


def test_erasure_wipes_the_password_history(veteran):
    # when
    user_erase(actor=SuperuserFactory(), user=veteran)

    # then
    assert not PasswordHistory.objects.filter(user=veteran).exists()


# --- Email -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["alice.wonderland@example.com", "ALICE.WONDERLAND@EXAMPLE.COM", "Alice.Wonderland", " alice.wonderland "],
)
def test_the_email_address_or_its_local_part_is_refused(password):
    # given
    person = User(email="Alice.Wonderland@example.com")

    # when
    with pytest.raises(ValidationError) as raised:
        EmailPasswordValidator().validate(password, person)

    # then
    assert raised.value.messages == [IS_EMAIL]


def test_a_password_that_merely_contains_the_local_part_is_left_to_the_similarity_check():
    EmailPasswordValidator().validate("alice.wonderland-rides-a-bicycle", User(email="alice.wonderland@example.com"))
    EmailPasswordValidator().validate("anything at all", None)
    assert EmailPasswordValidator().get_help_text() == "Your password cannot be your email address."


def test_creating_an_account_with_its_email_as_password_is_refused():
    # when
    with pytest.raises(ValidationError) as raised:
        services.user_create(email="bartholomew.jones@example.com", password="Bartholomew.Jones")

    # then
    assert IS_EMAIL in raised.value.message_dict["password"]
    assert not User.objects.filter(email="bartholomew.jones@example.com").exists()


def test_the_api_answers_400_with_field_errors_for_a_refused_password():
    # given
    person = services.user_create(email="bartholomew.jones@example.com", password=PASSWORDS[0])
    client = APIClient()
    client.force_authenticate(person)

    # when
    reused = client.post("/api/v1/me/password/", {"current_password": PASSWORDS[0], "new_password": PASSWORDS[0]})
    email = client.post("/api/v1/me/password/", {"current_password": PASSWORDS[0], "new_password": "bartholomew.jones"})

    # then
    assert (reused.status_code, reused.json()) == (
        400,
        invalid({"new_password": ["The new password must differ from the current one."]}),
    )
    assert email.status_code == 400
    assert IS_EMAIL in email.json()["error"]["fields"]["new_password"]
    person.refresh_from_db()
    assert person.check_password(PASSWORDS[0])


def test_the_api_refuses_an_earlier_password():
    # given
    person = services.user_create(email="bob@example.com", password=PASSWORDS[0])
    person = change(person, PASSWORDS[0], PASSWORDS[1])
    client = APIClient()
    client.force_authenticate(person)

    # when
    response = client.post("/api/v1/me/password/", {"current_password": PASSWORDS[1], "new_password": PASSWORDS[0]})

    # then
    assert (response.status_code, response.json()) == (400, invalid({"new_password": [REUSED]}))
