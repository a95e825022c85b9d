import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User, validate_time_zone
from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


# --- Email normalisation and case-insensitive uniqueness -------------------------------------------------------------


def test_create_user_lowercases_the_domain_and_keeps_the_local_part():
    # given / when
    user = User.objects.create_user("Ann.Lee@EXAMPLE.COM", PASSWORD)

    # then
    user.refresh_from_db()
    assert user.email == "Ann.Lee@example.com"


def test_clean_normalises_the_email():
    # given
    user = User(email="Bob@Example.ORG")

    # when
    user.clean()

    # then
    assert user.email == "Bob@example.org"


def test_full_clean_rejects_an_email_that_differs_only_in_case():
    # given
    UserFactory(email="ann@example.com")
    twin = User(email="ANN@example.com", full_name="Twin")
    twin.set_password(PASSWORD)

    # when
    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    # then
    assert caught.value.message_dict == {"email": ["A user with this email address already exists."]}
    assert User.objects.count() == 1


def test_full_clean_rejects_an_identical_email():
    # given
    UserFactory(email="ann@example.com")
    twin = User(email="ann@example.com")
    twin.set_password(PASSWORD)

    # when
    with pytest.raises(ValidationError) as caught:
        twin.full_clean()

    # then
    assert caught.value.message_dict == {"email": ["A user with this email address already exists."]}


def test_full_clean_accepts_the_user_itself_when_unchanged():
    # given
    user = UserFactory(email="ann@example.com")

    # when / then: no clash with its own row
    user.full_clean()


def test_database_rejects_an_email_that_differs_only_in_case():
    # given
    UserFactory(email="ann@example.com")

    # when: model validation is bypassed, the constraint on LOWER(email) still holds
    with pytest.raises(IntegrityError, match="accounts_user_email_ci_unique"), transaction.atomic():
        User.objects.create(email="Ann@Example.com", password="!")

    # then
    assert list(User.objects.values_list("email", flat=True)) == ["ann@example.com"]


def test_manager_finds_a_user_by_email_whatever_its_case():
    # given
    user = UserFactory(email="ann@example.com")

    # when
    found = User.objects.get_by_natural_key("ANN@EXAMPLE.COM")

    # then
    assert found == user


# --- create_user / create_superuser ----------------------------------------------------------------------------------


def test_create_user_sets_a_hashed_password_and_defaults():
    # given / when
    user = User.objects.create_user("carol@example.com", PASSWORD, full_name="Carol King")

    # then
    user.refresh_from_db()
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD) is True
    assert (user.full_name, user.locale, user.time_zone, user.phone) == ("Carol King", "en", "UTC", "")
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
    assert user.oidc_subject is None


def test_create_user_without_password_gives_an_unusable_password():
    # given / when
    user = User.objects.create_user("dave@example.com")

    # then
    user.refresh_from_db()
    assert user.has_usable_password() is False
    assert user.check_password("") is False


def test_create_user_requires_an_email():
    # given / when
    with pytest.raises(ValueError, match=r"^A user needs an email address\.$"):
        User.objects.create_user("", PASSWORD)

    # then
    assert User.objects.count() == 0


def test_create_user_refuses_a_case_insensitive_duplicate():
    # given
    UserFactory(email="erin@example.com")

    # when
    with pytest.raises(ValidationError) as caught:
        User.objects.create_user("ERIN@example.com", PASSWORD)

    # then
    assert caught.value.message_dict == {"email": ["A user with this email address already exists."]}
    assert User.objects.count() == 1


def test_create_user_validates_fields():
    # given / when
    with pytest.raises(ValidationError) as caught:
        User.objects.create_user("frank@example.com", PASSWORD, time_zone="Mars/Olympus")

    # then
    assert caught.value.message_dict == {"time_zone": ["Mars/Olympus is not a known IANA time zone."]}
    assert User.objects.count() == 0


def test_create_superuser_sets_staff_and_superuser():
    # given / when
    user = User.objects.create_superuser("root@example.com", PASSWORD)

    # then
    user.refresh_from_db()
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, True, True)
    assert user.check_password(PASSWORD) is True


def test_create_superuser_keeps_explicit_flags():
    # given / when
    user = User.objects.create_superuser("ops@example.com", PASSWORD, is_staff=False)

    # then
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (False, True)


# --- Time zone --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["UTC", "Europe/Berlin", "Asia/Tokyo", "America/Argentina/Buenos_Aires"])
def test_known_time_zones_are_valid(value):
    # given
    user = UserFactory(time_zone=value)

    # when / then
    validate_time_zone(value)
    user.full_clean()


@pytest.mark.parametrize("value", ["Mars/Olympus", "utc", "Europe/berlin", "", "+02:00"])
def test_unknown_time_zones_are_rejected(value):
    # given
    user = UserFactory()
    user.time_zone = value

    # when
    with pytest.raises(ValidationError) as caught:
        user.full_clean()

    # then
    expected = "This field cannot be blank." if value == "" else f"{value} is not a known IANA time zone."
    assert caught.value.message_dict == {"time_zone": [expected]}


def test_validate_time_zone_error_code():
    # given / when
    with pytest.raises(ValidationError) as caught:
        validate_time_zone("Nowhere/Land")

    # then
    assert caught.value.code == "invalid_time_zone"
    assert caught.value.messages == ["Nowhere/Land is not a known IANA time zone."]


# --- OIDC subject -----------------------------------------------------------------------------------------------------


def test_many_users_may_have_no_oidc_subject():
    # given / when
    first, second = UserFactory(oidc_subject=None), UserFactory(oidc_subject=None)

    # then
    assert list(User.objects.filter(oidc_subject__isnull=True).order_by("pk")) == [first, second]


def test_oidc_subject_is_unique_in_the_database():
    # given
    UserFactory(oidc_subject="f81d4fae-7dec-11d0-a765-00a0c91e6bf6")

    # when
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(oidc_subject="f81d4fae-7dec-11d0-a765-00a0c91e6bf6")

    # then
    assert User.objects.count() == 1


def test_oidc_subject_is_unique_in_model_validation():
    # given
    UserFactory(oidc_subject="subject-1")
    other = UserFactory()
    other.oidc_subject = "subject-1"

    # when
    with pytest.raises(ValidationError) as caught:
        other.full_clean()

    # then
    assert caught.value.message_dict == {"oidc_subject": ["User with this OIDC subject already exists."]}
    other.refresh_from_db()
    assert other.oidc_subject is None


# --- Display ----------------------------------------------------------------------------------------------------------


def test_names_fall_back_to_the_email():
    # given
    named = UserFactory(email="gina@example.com", full_name="Gina Maria Ortiz")
    unnamed = UserFactory(email="hank@example.com", full_name="")

    # when / then
    assert (str(named), named.get_full_name(), named.get_short_name()) == (
        "gina@example.com",
        "Gina Maria Ortiz",
        "Gina",
    )
    assert (str(unnamed), unnamed.get_full_name(), unnamed.get_short_name()) == (
        "hank@example.com",
        "hank@example.com",
        "hank@example.com",
    )
