"""Local sign-in and the signed-in person's own account: ``/api/v1/auth/…`` and ``/api/v1/me/…``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services, sessions
from accounts.api.serializers import (
    CsrfTokenSerializer,
    LoginInputSerializer,
    LogoutSerializer,
    MyPermissionsQuerySerializer,
    MyPermissionsSerializer,
    PasswordChangeInputSerializer,
    ProfileSerializer,
    SessionsRevokedSerializer,
    UserSessionSerializer,
)
from accounts.api.throttling import ClientAddressThrottle
from accounts.models import UserSession
from erp.api import access
from erp.api.authentication import SessionAuthentication
from rbac import explain


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    """Sets the CSRF cookie; the SPA sends its value back in the ``X-CSRFToken`` header on every unsafe request."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(responses=CsrfTokenSerializer)
    def get(self, request: Request) -> Response:
        return Response({"csrf_token": get_token(request)})


class LoginView(APIView):
    """Starts a session from an email and password (CSRF-protected against login forgery). Attempts per client address
    are throttled (429 ``throttled``); repeated failures lock the account or the address (429 ``account_locked``, with
    ``Retry-After``; see ``accounts.signin_limits``)."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "login"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Checked here rather than with Django's csrf_protect so that a refusal is the API's JSON 403, not an HTML page.
        SessionAuthentication().enforce_csrf(request)

    @extend_schema(request=LoginInputSerializer, responses=ProfileSerializer)
    def post(self, request: Request) -> Response:
        credentials = LoginInputSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=credentials.validated_data["email"],
            password=credentials.validated_data["password"],
        )
        if user is None:
            # A lockout's refusal is answered by axes' middleware instead (accounts.signin_limits.lockout_response).
            raise exceptions.AuthenticationFailed("The email or password is not correct.", code="invalid_credentials")
        login(request._request, user)
        return Response(ProfileSerializer(user).data)


class LogoutView(APIView):
    """Ends the current session.

    A session opened through the identity provider answers 200 with ``logout_url``: the provider's end-session
    address (with ``id_token_hint``), where the browser must go so that the provider's session ends too. A local
    session answers 204.
    """

    @extend_schema(request=None, responses={200: LogoutSerializer, 204: None})
    def post(self, request: Request) -> Response:
        from accounts.oidc.logout import is_provider_session, provider_logout_url

        provider_session = is_provider_session(request._request)
        logout_url = provider_logout_url(request._request) if provider_session else None  # needs the ID token
        logout(request._request)
        if logout_url is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(LogoutSerializer({"logout_url": logout_url}).data)


class MeView(APIView):
    """The signed-in person's profile."""

    @extend_schema(responses=ProfileSerializer)
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(request=ProfileSerializer, responses=ProfileSerializer)
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(request.user, data=request.data, partial=True)
        read_only = sorted(name for name in request.data if name in ProfileSerializer.Meta.read_only_fields)
        if read_only:
            raise exceptions.ValidationError({name: ["This field cannot be changed here."] for name in read_only})
        serializer.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **serializer.validated_data)  # type: ignore[arg-type]
        return Response(ProfileSerializer(user).data)


class PasswordChangeView(APIView):
    """Changes my password (the current one is required); this session stays signed in, my other sessions end.

    The current password is checked like a sign-in, so that a stolen session cannot guess it: a wrong one counts as a
    failed sign-in of my account from this address (and may lock both: 429 ``account_locked``), and attempts per
    address are throttled with the sign-ins."""

    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "login"

    @extend_schema(request=PasswordChangeInputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = access.request_user(request)
        checked = authenticate(
            request._request, username=user.email, password=serializer.validated_data["current_password"]
        )
        if checked is None or checked.pk != user.pk:
            raise exceptions.ValidationError(
                {"current_password": ["The current password is not correct."]}, code="wrong_password"
            )
        user = services.user_change_password(user=user, **serializer.validated_data)
        update_session_auth_hash(request._request, user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MySessionsView(APIView):
    """My signed-in sessions, newest first: device, client address, when it started and when it was last used. At
    most ``SESSION_MAX_PER_USER`` exist at a time, so the list is not paginated."""

    @extend_schema(responses=UserSessionSerializer(many=True))
    def get(self, request: Request) -> Response:
        user = access.request_user(request)
        context = {"current_session_key": request._request.session.session_key}
        return Response(UserSessionSerializer(sessions.live_sessions(user), many=True, context=context).data)


class MySessionView(APIView):
    """Ends one of my sessions (signed out at once; its cookie no longer works). Another person's session is 404."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        user = access.request_user(request)
        session = get_object_or_404(UserSession.objects.filter(user=user), pk=pk)
        is_current = session.session_key == request._request.session.session_key
        sessions.session_revoke(actor=user, session=session)
        if is_current:
            request._request.session.flush()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MySessionsRevokeOthersView(APIView):
    """Ends all my sessions except the one this request comes from (all of them when called with a bearer token)."""

    @extend_schema(request=None, responses=SessionsRevokedSerializer)
    def post(self, request: Request) -> Response:
        user = access.request_user(request)
        revoked = sessions.sessions_revoke_others(actor=user, current_session_key=request._request.session.session_key)
        return Response(SessionsRevokedSerializer({"revoked": revoked}).data)


class MyPermissionsView(APIView):
    """My effective permissions in one organization I belong to: ``GET /api/v1/me/permissions/?organization=slug``.

    Per permission, the whole organization or the departments (with their subtrees) it applies to, and the objects
    granted to me. An organization I am not an active member of is 404.
    """

    @extend_schema(parameters=[MyPermissionsQuerySerializer], responses=MyPermissionsSerializer)
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {"organization"})
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        query = MyPermissionsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = access.request_user(request)
        organization = access.enter_organization(user, query.validated_data["organization"])
        summary = explain.permission_summary(user=user, organization=organization)
        body = {
            "organization": organization.slug,
            "is_superuser": summary.is_superuser,
            "permissions": summary.permissions,
            "object_grants": [
                {"permission": permission, "object_ids": list(object_ids)}
                for permission, object_ids in summary.object_grants
            ],
        }
        return Response(MyPermissionsSerializer(body).data)
