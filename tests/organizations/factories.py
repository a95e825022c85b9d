import datetime

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from organizations.models import Department, Invitation, InvitationStatus, Membership, Organization
from tests.accounts.factories import UserFactory


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org-{n}")
    code = factory.Sequence(lambda n: f"ORG{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")


class DepartmentFactory(DjangoModelFactory):
    """Departments are built like the service builds them: path and depth follow from the parent."""

    class Meta:
        model = Department

    organization = factory.LazyAttribute(lambda o: o.parent.organization if o.parent else OrganizationFactory())
    parent = None
    code = factory.Sequence(lambda n: f"D{n}")
    name = factory.Sequence(lambda n: f"Department {n}")
    path = factory.LazyAttribute(lambda o: f"{o.parent.path if o.parent else ''}{o.code}/")
    depth = factory.LazyAttribute(lambda o: o.parent.depth + 1 if o.parent else 1)


class MembershipFactory(DjangoModelFactory):
    """A membership; ``role="member"`` (or another system role code) also assigns that role organization-wide."""

    class Meta:
        model = Membership
        skip_postgeneration_save = True

    organization = factory.LazyAttribute(lambda o: o.department.organization if o.department else OrganizationFactory())
    user = factory.SubFactory(UserFactory)
    department = None
    job_title = "Clerk"
    is_active = True

    @factory.post_generation
    def role(self, create: bool, code: str | None, **kwargs: object) -> None:
        if create and code:
            from rbac.models import Role, RoleAssignment

            role = Role.objects.get(organization__isnull=True, code=code)
            RoleAssignment.objects.create(organization=self.organization, user=self.user, role=role)


class InvitationFactory(DjangoModelFactory):
    """A pending invitation valid for a week; its link token (the plain secret is never stored) is ``obj.token``."""

    class Meta:
        model = Invitation
        skip_postgeneration_save = True

    organization = factory.LazyAttribute(lambda o: o.department.organization if o.department else OrganizationFactory())
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    department = None
    role = None
    status = InvitationStatus.PENDING
    invited_by = None
    token_hash = ""
    expires_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=7))

    @factory.post_generation
    def token(self, create: bool, extracted: str | None, **kwargs: object) -> None:
        from organizations.invitations import _issue_token

        self.token = _issue_token(self)
        if create:
            self.save(update_fields=["token_hash"])
