"""The page the invitation email links to: it shows the invitation and accepts it with a form (CSRF-protected)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from accounts.models import User
from erp.exceptions import ConflictError
from organizations import invitations as services

TEMPLATE = "organizations/invitation_accept.html"


@never_cache
@csrf_protect
@sensitive_post_parameters("password", "password_again")
def invitation_accept_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what the invitation is for; POST accepts it (a new person sets their password here)."""
    try:
        invitation = services.invitation_for_token(token)
        services.require_open(invitation)
    except (ValidationError, ConflictError) as error:
        message = error.message if isinstance(error, ConflictError) else " ".join(error.messages)
        return render(
            request, TEMPLATE, {"problem": message}, status=404 if isinstance(error, ValidationError) else 409
        )
    has_account = User.objects.filter(email__iexact=invitation.email).exists()
    context: dict[str, object] = {"invitation": invitation, "has_account": has_account, "errors": [], "full_name": ""}
    if request.method != "POST":
        return render(request, TEMPLATE, context)
    password = request.POST.get("password", "")
    context["full_name"] = full_name = request.POST.get("full_name", "").strip()[:150]
    if not has_account and password != request.POST.get("password_again", ""):
        context["errors"] = ["The two passwords differ."]
        return render(request, TEMPLATE, context, status=400)
    signed_in = request.user if isinstance(request.user, User) else None
    try:
        accepted = services.invitation_accept_with_token(
            token=token, password=password or None, full_name=full_name, signed_in=signed_in
        )
    except ValidationError as error:
        context["errors"] = error.messages
        return render(request, TEMPLATE, context, status=400)
    except (ConflictError, PermissionDenied) as error:
        message = error.message if isinstance(error, ConflictError) else str(error)
        return render(request, TEMPLATE, {"problem": message}, status=409 if isinstance(error, ConflictError) else 403)
    return render(request, TEMPLATE, {"joined": accepted.membership, "account_created": accepted.account_created})
