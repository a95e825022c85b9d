"""Errors that services raise and every interface (API, admin, commands) reports in its own way."""

from django.core.exceptions import ValidationError


class ConflictError(Exception):
    """The request is valid but clashes with the current state (HTTP 409): e.g. deleting what others still use."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def describe_validation_error(error: ValidationError) -> str:
    """One line for a command's error output: ``field: message; other: message``."""
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)
