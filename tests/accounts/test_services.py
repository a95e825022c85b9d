import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import User
from erp.exceptions import ConflictError
from tests.accounts.factories import PASSWORD, SuperuserFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"


def _snapshot(user: User) -> dict:
    return User.objects.filter(pk=user.pk).values(
        "email", "full_name", "phone", "locale", "time_zone", "is_active", "is_staff", "is_superuser", "password"
    )[0]


# --- user_create ------------------------------------------------------------------------------------------------------


def test_user_create_makes_an_account_with_a_hashed_password():
    # given / when
    user = services.user_create(email="Ann@Example.COM", password=PASSWORD, full_name="Ann Lee", locale="de")

    # then
    user.refresh_from_db()
    assert (user.email, user.full_name, user.locale, user.time_zone) == ("Ann@example.com", "Ann Lee", "de", "UTC")
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.check_password(PASSWORD) is True


def test_user_create_with_flags():
    # given / when
    user = services.user_create(email="root@example.com", password=PASSWORD, is_staff=True, is_superuser=True)

    # then
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)


def test_user_create_without_password_gives_an_unusable_password():
    # given / when
    user = services.user_create(email="sso@example.com", password=None)

    # then
    user.refresh_from_db()
    assert user.has_usable_password() is False


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        ("Sh0rt-pass", ["This password is too short. It must contain at least 12 characters."]),
        ("password1234", ["This password is too common."]),
        ("123456789012345", ["This password is entirely numeric."]),
        (
            "12345",
            [
                "This password is too short. It must contain at least 12 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ],
        ),
        (
            "bob@example.com",
            [
                "The password is too similar to the email address.",
                "The password cannot be your email address or the part of it before the @.",
            ],
        ),
    ],
)
def test_user_create_enforces_the_password_policy(password, messages):
    # given
    UserFactory(email="existing@example.com")

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_create(email="bob@example.com", password=password)

    # then
    assert caught.value.message_dict == {"password": messages}
    assert list(User.objects.values_list("email", flat=True)) == ["existing@example.com"]


def test_user_create_may_skip_the_password_policy_for_demo_data():
    # given / when
    user = services.user_create(email="demo@example.com", password="demo", validate_password=False)

    # then
    user.refresh_from_db()
    assert user.check_password("demo") is True


def test_user_create_refuses_a_case_insensitive_duplicate_email():
    # given
    UserFactory(email="carol@example.com")

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_create(email="CAROL@example.com", password=PASSWORD)

    # then
    assert caught.value.message_dict == {"email": ["A user with this email address already exists."]}
    assert User.objects.count() == 1


def test_user_create_refuses_an_invalid_email():
    # given / when
    with pytest.raises(ValidationError) as caught:
        services.user_create(email="not-an-email", password=PASSWORD)

    # then
    assert caught.value.message_dict == {"email": ["Enter a valid email address."]}
    assert User.objects.count() == 0


def test_user_create_refuses_unknown_fields():
    # given / when
    with pytest.raises(TypeError, match=r"^Cannot set oidc_subject, password_hash on a user\.$"):
        services.user_create(email="dan@example.com", password=PASSWORD, oidc_subject="x", password_hash="y")

    # then
    assert User.objects.count() == 0


# --- user_update ------------------------------------------------------------------------------------------------------


def test_user_update_changes_fields():
    # given
    admin = SuperuserFactory()
    user = UserFactory(email="eve@example.com")

    # when
    updated = services.user_update(
        actor=admin, user=user, full_name="Eve Adams", time_zone="Europe/Paris", is_staff=True, email="Eve@Example.com"
    )

    # then
    user.refresh_from_db()
    assert (user.full_name, user.time_zone, user.is_staff, user.email) == (
        "Eve Adams",
        "Europe/Paris",
        True,
        "Eve@example.com",
    )
    assert updated == user


def test_user_update_validates_fields_and_changes_nothing():
    # given
    admin = SuperuserFactory()
    UserFactory(email="taken@example.com")
    user = UserFactory(email="frank@example.com")
    before = _snapshot(user)

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_update(actor=admin, user=user, email="TAKEN@example.com", full_name="Frank")

    # then
    assert caught.value.message_dict == {"email": ["A user with this email address already exists."]}
    assert _snapshot(user) == before


def test_user_update_refuses_unknown_fields():
    # given
    user = UserFactory()
    before = _snapshot(user)

    # when
    with pytest.raises(TypeError, match=r"^Cannot set password on a user\.$"):
        services.user_update(actor=None, user=user, password="!")

    # then
    assert _snapshot(user) == before


def test_nobody_deactivates_themselves():
    # given: another superuser exists, so only the self-deactivation rule applies
    SuperuserFactory()
    user = UserFactory(is_staff=True)
    before = _snapshot(user)

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_update(actor=user, user=user, is_active=False)

    # then
    assert caught.value.message_dict == {"is_active": ["You cannot deactivate your own account."]}
    assert _snapshot(user) == before


def test_a_superuser_cannot_deactivate_themselves_even_with_other_superusers():
    # given
    SuperuserFactory()
    me = SuperuserFactory()

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_update(actor=me, user=me, is_active=False)

    # then
    assert caught.value.message_dict == {"is_active": ["You cannot deactivate your own account."]}
    me.refresh_from_db()
    assert me.is_active is True


def test_another_user_can_be_deactivated():
    # given
    admin = SuperuserFactory()
    user = UserFactory()

    # when
    services.user_update(actor=admin, user=user, is_active=False)

    # then
    user.refresh_from_db()
    assert user.is_active is False


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"is_superuser": False}, {"is_active": False, "is_staff": False}]
)
@pytest.mark.parametrize("by", ["code", "staff"])
def test_the_last_active_superuser_keeps_their_power(change, by):
    # given: one active superuser, an inactive one, and a staff member doing the change
    last = SuperuserFactory()
    SuperuserFactory(is_active=False)
    actor = None if by == "code" else UserFactory(is_staff=True)
    before = _snapshot(last)

    # when
    with pytest.raises(ConflictError) as caught:
        services.user_update(actor=actor, user=last, **change)

    # then
    assert caught.value.code == "last_superuser"
    assert caught.value.message == "This is the last active superuser; make someone else a superuser first."
    assert _snapshot(last) == before


def test_the_last_active_superuser_cannot_give_up_their_own_superuser_flag():
    # given
    last = SuperuserFactory()
    before = _snapshot(last)

    # when
    with pytest.raises(ConflictError) as caught:
        services.user_update(actor=last, user=last, is_superuser=False)

    # then
    assert caught.value.code == "last_superuser"
    assert _snapshot(last) == before


def test_the_last_active_superuser_may_still_edit_other_fields():
    # given
    last = SuperuserFactory()

    # when
    services.user_update(actor=last, user=last, full_name="Root", is_superuser=True, is_active=True)

    # then
    last.refresh_from_db()
    assert (last.full_name, last.is_active, last.is_superuser) == ("Root", True, True)


def test_with_two_active_superusers_one_can_be_deactivated():
    # given
    first, second = SuperuserFactory(), SuperuserFactory()

    # when
    services.user_update(actor=first, user=second, is_active=False)

    # then
    second.refresh_from_db()
    assert (second.is_active, second.is_superuser) == (False, True)


def test_with_two_active_superusers_one_can_stop_being_superuser():
    # given
    first, second = SuperuserFactory(), SuperuserFactory()

    # when
    services.user_update(actor=second, user=second, is_superuser=False)

    # then
    second.refresh_from_db()
    assert (second.is_active, second.is_superuser) == (True, False)
    first.refresh_from_db()
    assert first.is_superuser is True


def test_after_one_of_two_superusers_goes_the_other_is_the_last():
    # given
    first, second = SuperuserFactory(), SuperuserFactory()
    services.user_update(actor=first, user=second, is_active=False)

    # when
    with pytest.raises(ConflictError):
        services.user_update(actor=second, user=first, is_superuser=False)

    # then
    first.refresh_from_db()
    assert (first.is_active, first.is_superuser) == (True, True)


def test_an_inactive_superuser_may_lose_the_flag_when_no_other_superuser_exists():
    # given: no active superuser at all, so the guard has nothing to protect
    dormant = SuperuserFactory(is_active=False)

    # when
    services.user_update(actor=None, user=dormant, is_superuser=False)

    # then
    dormant.refresh_from_db()
    assert dormant.is_superuser is False


# --- user_delete ------------------------------------------------------------------------------------------------------


def test_nobody_deletes_themselves():
    # given
    SuperuserFactory()
    user = UserFactory()

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_delete(actor=user, user=user)

    # then
    assert caught.value.messages == ["You cannot delete your own account."]
    assert User.objects.filter(pk=user.pk).exists() is True


def test_the_last_active_superuser_cannot_be_deleted():
    # given
    last = SuperuserFactory()
    actor = UserFactory(is_staff=True)

    # when
    with pytest.raises(ConflictError) as caught:
        services.user_delete(actor=actor, user=last)

    # then
    assert caught.value.code == "last_superuser"
    assert caught.value.message == "This is the last active superuser; it cannot be deleted."
    assert User.objects.filter(pk=last.pk).exists() is True


def test_with_two_active_superusers_one_can_be_deleted():
    # given
    first, second = SuperuserFactory(), SuperuserFactory()

    # when
    services.user_delete(actor=first, user=second)

    # then
    assert list(User.objects.all()) == [first]


def test_an_ordinary_user_can_be_deleted():
    # given
    admin = SuperuserFactory()
    user = UserFactory()

    # when
    services.user_delete(actor=admin, user=user)

    # then
    assert list(User.objects.all()) == [admin]


# --- user_update_profile ----------------------------------------------------------------------------------------------


def test_user_update_profile_changes_profile_fields():
    # given
    user = UserFactory(full_name="Old Name")

    # when
    services.user_update_profile(
        user=user, full_name="New Name", phone="+49 30 1234567", locale="de", time_zone="Europe/Berlin"
    )

    # then
    user.refresh_from_db()
    assert (user.full_name, user.phone, user.locale, user.time_zone) == (
        "New Name",
        "+49 30 1234567",
        "de",
        "Europe/Berlin",
    )


CANNOT_CHANGE = ["This field cannot be changed here."]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"email": "new@example.com"}, {"email": CANNOT_CHANGE}),
        ({"is_superuser": True}, {"is_superuser": CANNOT_CHANGE}),
        ({"is_staff": True}, {"is_staff": CANNOT_CHANGE}),
        ({"is_active": False}, {"is_active": CANNOT_CHANGE}),
        ({"full_name": "Sneaky", "is_superuser": True}, {"is_superuser": CANNOT_CHANGE}),
        ({"time_zone": "Mars/Olympus"}, {"time_zone": ["Mars/Olympus is not a known IANA time zone."]}),
    ],
    ids=["email", "is_superuser", "is_staff", "is_active", "with-a-profile-field", "unknown-time-zone"],
)
def test_user_update_profile_refuses_email_flags_and_bad_values(fields, errors):
    # given
    user = UserFactory(full_name="Plain")
    before = _snapshot(user)

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_update_profile(user=user, **fields)

    # then
    assert caught.value.message_dict == errors
    assert _snapshot(user) == before


# --- user_change_password ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current_password", "new_password", "errors"),
    [
        ("not-my-password", NEW_PASSWORD, {"current_password": ["The current password is not correct."]}),
        (PASSWORD, PASSWORD, {"new_password": ["The new password must differ from the current one."]}),
        (
            PASSWORD,
            "short-pw",
            {"new_password": ["This password is too short. It must contain at least 12 characters."]},
        ),
        (PASSWORD, "password1234", {"new_password": ["This password is too common."]}),
        (PASSWORD, "123456789012345", {"new_password": ["This password is entirely numeric."]}),
    ],
    ids=["wrong-current-password", "same-password", "too-short", "too-common", "entirely-numeric"],
)
def test_change_password_is_refused_and_changes_nothing(current_password, new_password, errors):
    # given
    user = UserFactory()
    before = _snapshot(user)

    # when
    with pytest.raises(ValidationError) as caught:
        services.user_change_password(user=user, current_password=current_password, new_password=new_password)

    # then
    assert caught.value.message_dict == errors
    assert _snapshot(user) == before


def test_change_password():
    # given
    user = UserFactory()

    # when
    services.user_change_password(user=user, current_password=PASSWORD, new_password=NEW_PASSWORD)

    # then
    user = User.objects.get(pk=user.pk)
    assert user.check_password(NEW_PASSWORD) is True
    assert user.check_password(PASSWORD) is False
