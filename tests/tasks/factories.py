import factory
from factory.django import DjangoModelFactory

from tasks.models import Comment, Project, ProjectMember, Task, TaskDependency, TimeEntry
from tests.organizations.factories import MembershipFactory, OrganizationFactory


class ProjectFactory(DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.LazyAttribute(lambda o: o.department.organization if o.department else OrganizationFactory())
    department = None
    code = factory.Sequence(lambda n: f"P{n}")
    name = factory.Sequence(lambda n: f"Project {n}")


class ProjectMemberFactory(DjangoModelFactory):
    """A project member; the user becomes an active member of the project's organization first."""

    class Meta:
        model = ProjectMember

    project = factory.SubFactory(ProjectFactory)
    organization = factory.SelfAttribute("project.organization")
    user = factory.LazyAttribute(lambda o: MembershipFactory(organization=o.project.organization).user)
    role = "contributor"


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = Task

    organization = factory.LazyAttribute(
        lambda o: o.project.organization if o.project else o.parent.organization if o.parent else OrganizationFactory()
    )
    project = factory.LazyAttribute(lambda o: o.parent.project if o.parent else None)
    parent = None
    title = factory.Sequence(lambda n: f"Task {n}")


class TaskDependencyFactory(DjangoModelFactory):
    class Meta:
        model = TaskDependency

    task = factory.SubFactory(TaskFactory)
    organization = factory.SelfAttribute("task.organization")
    depends_on = factory.LazyAttribute(lambda o: TaskFactory(organization=o.task.organization))


class CommentFactory(DjangoModelFactory):
    class Meta:
        model = Comment

    task = factory.SubFactory(TaskFactory)
    organization = factory.SelfAttribute("task.organization")
    author = factory.LazyAttribute(lambda o: MembershipFactory(organization=o.task.organization).user)
    body = "Looks good."


class TimeEntryFactory(DjangoModelFactory):
    class Meta:
        model = TimeEntry

    task = factory.SubFactory(TaskFactory)
    organization = factory.SelfAttribute("task.organization")
    member = factory.LazyAttribute(lambda o: MembershipFactory(organization=o.task.organization).user)
    hours = 2
