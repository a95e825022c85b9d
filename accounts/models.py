"""People who sign in: local accounts and, later, accounts linked to the identity provider."""

from __future__ import annotations

from typing import Any, ClassVar
from zoneinfo import available_timezones

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import AnonymousUser, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from audit.history import AuditHistory


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(
            "%(value)s is not a known IANA time zone.", code="invalid_time_zone", params={"value": value}
        )


class UserManager(BaseUserManager["User"]):
    """Users are found by email, whatever its letter case."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)

    def create_user(self, email: str, password: str | None = None, **extra_fields: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)  # None gives an unusable password: such a user signs in through the provider
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra_fields: Any) -> User:
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with their email address.

    Email is unique whatever its case. ``oidc_subject`` links the account to the identity provider's stable subject;
    accounts are matched on it, never on email alone.
    """

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    locale = models.CharField(max_length=16, default="en")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May sign in to the admin back office.")
    oidc_subject = models.CharField("OIDC subject", max_length=255, null=True, blank=True, unique=True, editable=False)
    date_joined = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["full_name"]

    # The password hash is never copied into history; sign-ins and lockouts are security events, not versions (the
    # failure counts live in django-axes' tables: see accounts.signin_limits).
    history = AuditHistory(excluded_fields=["last_login"])

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = type(self).objects.normalize_email(self.email)
        clash = type(self).objects.filter(email__iexact=self.email).exclude(pk=self.pk)
        if self.email and clash.exists():
            raise ValidationError({"email": "A user with this email address already exists."}, code="unique")

    def set_password(self, raw_password: str | None) -> None:
        # Once saved, a password replacing one (usable or not) is a change: an event says so and the account's other
        # sessions end. A new account's first password is no change. See accounts.passwords.
        self._is_password_change = bool(self.password)
        super().set_password(raw_password)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class PasswordHistory(models.Model):
    """A password a person used: its hash only, kept so that a new password cannot be one of the last few.

    Written whenever a password is set (``accounts.passwords``), trimmed to the most recent ones, never versioned
    (versions would keep hashes that the trimming removes), and wiped on erasure.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user", "-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="accounts_pwhistory_user_idx")]
        verbose_name_plural = "password histories"

    def __str__(self) -> str:
        return f"password of {self.user_id} set {self.created_at:%Y-%m-%d %H:%M}"


class UserSession(models.Model):
    """One signed-in browser session of a person: an index over the session store (which cannot be listed by user),
    so that a person sees and revokes their sessions, and sign-in can cap how many they hold.

    A row lives as long as its session: created at sign-in, its ``last_seen_at`` advanced on activity (at most once a
    minute), removed when the session ends (sign-out, revocation, expiry). The session key is stored because ending a
    session means deleting it from the store; it is never shown — callers name a session by ``id``.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField("client address", null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["user", "-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "created_at"], name="accounts_usersession_user_idx")]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id}"


# Who performs a change: a signed-in user, an anonymous request (never stamped), or code acting for nobody (None).
Actor = User | AnonymousUser | None
