import factory
from django.contrib.auth.models import Permission
from factory.django import DjangoModelFactory

from rbac.models import Role, RoleAssignment, RolePermission
from tests.accounts.factories import UserFactory
from tests.organizations.factories import OrganizationFactory


def permission(name: str) -> Permission:
    app_label, codename = name.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def system_role(code: str) -> Role:
    return Role.objects.get(organization__isnull=True, code=code)


class RoleFactory(DjangoModelFactory):
    """An organization's own role; ``permissions=["app.codename", …]`` sets what it grants."""

    class Meta:
        model = Role
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"role_{n}")
    name = factory.Sequence(lambda n: f"Role {n}")

    @factory.post_generation
    def permissions(self, create: bool, names: list[str] | None, **kwargs: object) -> None:
        for name in names or []:
            RolePermission.objects.create(role=self, permission=permission(name))


class RoleAssignmentFactory(DjangoModelFactory):
    """Assigns a role to a user who must already be an active member of the organization."""

    class Meta:
        model = RoleAssignment

    organization = factory.LazyAttribute(lambda o: o.role.organization or OrganizationFactory())
    user = factory.SubFactory(UserFactory)
    role = factory.SubFactory(RoleFactory)
    department = None


def scoped_member(organization, *, role="member", department=None, grants=(), group=None):
    """An active member holding ``role`` on ``department``'s subtree (no role without one) and the object ``grants``
    (``(permission, object)`` pairs), given to them or, with ``group``, to a new group of that name they are in."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from tests.organizations.factories import MembershipFactory

    user = MembershipFactory(organization=organization).user
    if department is not None:
        RoleAssignmentFactory(organization=organization, user=user, role=system_role(role), department=department)
    holder = user
    if group is not None:
        holder = Group.objects.create(name=group)
        user.groups.add(holder)
    for name, obj in grants:
        assign_perm(name, holder, obj)
    return user
