"""Invitations in the API.

- ``/api/v1/organizations/{slug}/invitations/``: administrators list, send, resend and revoke them.
- ``/api/v1/me/invitations/``: the signed-in person's pending invitations, to accept or decline.
- ``/api/v1/invitations/accept/``: acceptance with the emailed link's token (for someone new, with a password).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import User
from erp.api import access
from erp.api.filters import FilterSet, IntegerFilter
from erp.api.serializers import OrganizationContextMixin, OrganizationScopedPrimaryKeyRelatedField
from erp.api.viewsets import OrganizationScopedModelViewSet, OrganizationScopedViewSet
from organizations import invitations as services
from organizations.models import Department, Invitation, InvitationStatus, Membership
from rbac.models import Role

MANAGE_MEMBERS = "organizations.manage_members"


def effective_status(invitation: Invitation) -> str:
    """A pending invitation past its expiry reads as expired, although nobody closed it yet."""
    if invitation.status == InvitationStatus.PENDING and invitation.expires_at <= timezone.now():
        return InvitationStatus.EXPIRED
    return invitation.status


class AvailableRoleField(serializers.PrimaryKeyRelatedField):
    """A role id that names one of the organization's own roles or a system role; anything else reads as missing."""

    def get_queryset(self) -> QuerySet[Role]:
        organization = self.context.get("organization")
        if organization is None:
            return Role.objects.none()
        return Role.objects.available_in(organization)


class InvitationPersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "full_name"]
        read_only_fields = fields


class InvitationSerializer(OrganizationContextMixin, serializers.ModelSerializer):
    """An invitation as its organization's administrators see it. It never says whether the address has an account."""

    department = OrganizationScopedPrimaryKeyRelatedField(
        queryset=Department.objects.all(), required=False, allow_null=True
    )
    role = AvailableRoleField(required=False, allow_null=True)
    status = serializers.SerializerMethodField()
    invited_by = InvitationPersonSerializer(read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "department",
            "role",
            "job_title",
            "status",
            "invited_by",
            "sent_at",
            "send_count",
            "expires_at",
            "accepted_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "invited_by",
            "sent_at",
            "send_count",
            "expires_at",
            "accepted_at",
            "created_at",
            "updated_at",
        ]
        # One pending invitation per address is checked by the service, which answers with a conflict.
        validators: list[Any] = []

    def get_status(self, invitation: Invitation) -> str:
        return effective_status(invitation)

    def create(self, validated_data: dict[str, Any]) -> Invitation:
        return services.invitation_create(actor=self.actor, organization=self.organization, **validated_data)


class InvitationFilterSet(FilterSet):
    status = django_filters.ChoiceFilter(
        choices=InvitationStatus.choices, method="filter_status", help_text="Pending ones past expiry read as expired."
    )
    department = IntegerFilter(field_name="department_id")
    role = IntegerFilter(field_name="role_id")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")
    invited_by = IntegerFilter(field_name="invited_by_id")

    class Meta:
        model = Invitation
        fields = ["status", "department", "role", "email", "invited_by"]

    def filter_status(self, queryset: QuerySet[Invitation], name: str, value: str) -> QuerySet[Invitation]:
        now = timezone.now()
        if value == InvitationStatus.PENDING:
            return queryset.filter(status=InvitationStatus.PENDING, expires_at__gt=now)
        if value == InvitationStatus.EXPIRED:
            return queryset.filter(
                Q(status=InvitationStatus.EXPIRED) | Q(status=InvitationStatus.PENDING, expires_at__lte=now)
            )
        return queryset.filter(status=value)


class InvitationViewSet(
    OrganizationScopedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
):
    """Invitations to the organization. Sending, resending and revoking need ``organizations.manage_members`` over the
    invitation's department (the whole organization when it names none); a role must be one the sender may give.

    Invitations are never edited or deleted: ``{id}/resend/`` sends a new link, ``{id}/revoke/`` withdraws it.
    """

    queryset = Invitation.objects.all()
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilterSet
    action_permissions = {"create": MANAGE_MEMBERS, "resend": MANAGE_MEMBERS, "revoke": MANAGE_MEMBERS}
    search_fields = ["email", "job_title"]
    ordering_fields = ["created_at", "expires_at", "sent_at"]
    ordering = ["-created_at"]

    # Every version of an invitation, like the other org-scoped resources.
    history = OrganizationScopedModelViewSet.history

    def scope_queryset(self, queryset: QuerySet[Invitation]) -> QuerySet[Invitation]:
        return queryset.select_related("invited_by")

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, organization_slug: str, pk: str) -> Response:
        """Send the invitation again with a new link (the previous link stops working) and a new validity period."""
        invitation = services.invitation_resend(actor=self.user, invitation=self.get_object())
        return Response(self.get_serializer(invitation).data)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, organization_slug: str, pk: str) -> Response:
        """Withdraw a pending invitation: its link stops working."""
        invitation = services.invitation_revoke(actor=self.user, invitation=self.get_object())
        return Response(self.get_serializer(invitation).data)


# --- The invited person ----------------------------------------------------------------------------------------------


class InvitationOrganizationSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class InvitationNamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MyInvitationSerializer(serializers.ModelSerializer):
    """An invitation as the invited person sees it: where to, as what, from whom, until when."""

    organization = InvitationOrganizationSerializer(read_only=True)
    department = InvitationNamedSerializer(read_only=True, allow_null=True)
    role = InvitationNamedSerializer(read_only=True, allow_null=True)
    invited_by = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = ["id", "organization", "department", "role", "job_title", "invited_by", "status", "expires_at"]
        read_only_fields = fields

    def get_invited_by(self, invitation: Invitation) -> str:
        return invitation.invited_by.get_full_name() if invitation.invited_by is not None else ""

    def get_status(self, invitation: Invitation) -> str:
        return effective_status(invitation)


class MembershipJoinedSerializer(serializers.Serializer):
    organization = serializers.CharField(source="organization.slug")
    membership = serializers.IntegerField(source="pk")


def my_invitations(user: User) -> QuerySet[Invitation]:
    """The open invitations addressed to the signed-in person's email, in live organizations."""
    return (
        Invitation.objects.open()
        .addressed_to(user.email)
        .filter(organization__deleted_at__isnull=True, organization__is_active=True)
        .select_related("organization", "department", "role", "invited_by")
        .order_by("-created_at", "-pk")
    )


class MyInvitationsView(APIView):
    """``GET /api/v1/me/invitations/``: the invitations waiting for me (to the email address of my account)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MyInvitationSerializer(many=True))
    def get(self, request: Request) -> Response:
        user = access.request_user(request)
        return Response(MyInvitationSerializer(my_invitations(user), many=True).data)


class MyInvitationAcceptView(APIView):
    """``POST /api/v1/me/invitations/{id}/accept/``: join the organization. Another person's invitation is 404."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={201: MembershipJoinedSerializer})
    def post(self, request: Request, pk: int) -> Response:
        user = access.request_user(request)
        invitation = my_invitations(user).filter(pk=pk).first()
        if invitation is None:
            raise exceptions.NotFound()
        membership: Membership = services.invitation_accept(user=user, invitation=invitation)
        return Response(MembershipJoinedSerializer(membership).data, status=status.HTTP_201_CREATED)


class MyInvitationDeclineView(APIView):
    """``POST /api/v1/me/invitations/{id}/decline/``: say no; the invitation closes."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=MyInvitationSerializer)
    def post(self, request: Request, pk: int) -> Response:
        user = access.request_user(request)
        invitation = my_invitations(user).filter(pk=pk).first()
        if invitation is None:
            raise exceptions.NotFound()
        declined = services.invitation_decline(user=user, invitation=invitation)
        return Response(MyInvitationSerializer(declined).data)


class InvitationTokenAcceptInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=512, trim_whitespace=True)
    password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=4096, trim_whitespace=False
    )
    full_name = serializers.CharField(required=False, allow_blank=True, max_length=150)


class InvitationTokenAcceptView(APIView):
    """``POST /api/v1/invitations/accept/``: accept with the emailed link's token.

    Someone new sends a password (checked against the password policy) and gets an account with the invited address;
    someone who has an account joins with it (signed in, it must be that account). Attempts are throttled.
    """

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=InvitationTokenAcceptInputSerializer, responses={201: MembershipJoinedSerializer})
    def post(self, request: Request) -> Response:
        given = InvitationTokenAcceptInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        signed_in = request.user if isinstance(request.user, User) else None
        accepted = services.invitation_accept_with_token(
            token=given.validated_data["token"],
            password=given.validated_data.get("password") or None,
            full_name=given.validated_data.get("full_name", ""),
            signed_in=signed_in,
        )
        return Response(MembershipJoinedSerializer(accepted.membership).data, status=status.HTTP_201_CREATED)
