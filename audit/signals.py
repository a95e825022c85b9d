"""Sign-ins, failed sign-ins and sign-outs, wherever they happen (admin, API, identity provider): Django's auth signals
are the one place all of them pass."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from audit.models import SecurityEventKind


def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from audit.events import record_event

    backend = getattr(user, "backend", "") or ""
    record_event(SecurityEventKind.LOGIN_SUCCEEDED, actor=user, target_user=user, data={"backend": backend})


def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from audit.events import record_event

    if user is not None and user.is_authenticated:
        record_event(SecurityEventKind.LOGGED_OUT, actor=user, target_user=user)


def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from accounts.models import User
    from audit.events import record_event

    email = str(credentials.get("email") or credentials.get("username") or "").strip()
    known = User.objects.filter(email__iexact=email).only("pk").first() if email else None
    record_event(SecurityEventKind.LOGIN_FAILED, actor=known, target_user=known, email=email.lower())


def connect() -> None:
    user_logged_in.connect(_logged_in, dispatch_uid="audit-logged-in")
    user_logged_out.connect(_logged_out, dispatch_uid="audit-logged-out")
    user_login_failed.connect(_login_failed, dispatch_uid="audit-login-failed")
