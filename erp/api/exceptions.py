"""One error body for the whole API: ``{"error": {"code", "message", "fields"}}``.

``fields`` maps a field name (or ``non_field_errors``) to its messages. Service errors are translated here, so views
never catch them: Django's ``ValidationError`` becomes 400, ``ConflictError`` and ``ProtectedError`` become 409.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from erp.exceptions import ConflictError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API's error body; every error response of the API, DRF's or Django's, is built here."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _messages(detail: Any) -> Any:
    """Flatten DRF's ErrorDetail structures into plain strings, keeping the nesting of fields."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(item) for item in detail]
    return str(detail)


def _first_code(detail: Any) -> str | None:
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), None)
    if isinstance(detail, list):
        detail = detail[0] if detail else None
    return getattr(detail, "code", None)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            # Model-wide errors (Django's "__all__") use the same key as the serializers' non-field errors.
            detail = {
                api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field: messages
                for field, messages in exc.message_dict.items()
            }
            return exceptions.ValidationError(detail=detail)
        return exceptions.ValidationError(detail={api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    if isinstance(exc, ConflictError):
        return Conflict(detail=exc.message, code=exc.code)
    if isinstance(exc, ProtectedError | RestrictedError):
        return Conflict(detail="Other records still refer to this one.", code="protected")
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(detail=str(exc) or None)
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _translate(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django report it as a 500

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: exc.detail}
        code = "invalid"
        message = "The request is not valid; see the field errors."
        fields = _messages(detail)
    else:
        code = _first_code(exc.detail) or exc.default_code
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        fields = {}

    set_rollback()
    return Response(error_body(code, message, fields), status=exc.status_code, headers=headers)
