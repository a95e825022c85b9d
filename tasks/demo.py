"""Demo projects and tasks for the demo organizations (called by ``seed_demo``).

Each demo project gets about forty tasks — some with subtasks — in every status, with dependencies, comments and time
entries, all made through the services (so the rules hold and the history is there). A project that already has tasks
is left alone, which makes running the seed again change nothing.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from organizations.models import Department, Organization
from tasks import services
from tasks.models import Project, ProjectStatus, Task, TaskStatus

# organization slug -> [(code, name, department code, manager email, status)]
PROJECTS = {
    "acme": [
        ("WEB", "Customer website relaunch", "ENG-PLATFORM", "erin@acme.example", ProjectStatus.ACTIVE),
        ("MOBILE", "Mobile app 2.0", "ENG-MOBILE", "erin@acme.example", ProjectStatus.ACTIVE),
        ("CLOSE", "Faster month-end close", "FIN", "bob@acme.example", ProjectStatus.ACTIVE),
        ("EU-LAUNCH", "European market launch", "SALES", "heidi@acme.example", ProjectStatus.PLANNING),
    ],
    "acme-labs": [
        ("VISION", "Vision model evaluation", "RESEARCH-AI", "karl@acme.example", ProjectStatus.ACTIVE),
    ],
    "globex": [
        ("WAREHOUSE", "Warehouse automation", "OPS-LOG", "oscar@globex.example", ProjectStatus.ACTIVE),
        ("HIRING", "Spring hiring campaign", "HR-REC", "quinn@globex.example", ProjectStatus.ON_HOLD),
    ],
}
TASKS_PER_PROJECT = 30
VERBS = ["Draft", "Review", "Build", "Test", "Plan", "Document", "Migrate", "Measure", "Automate", "Design"]
THINGS = ["onboarding flow", "reporting", "data import", "access rules", "release notes", "budget", "dashboard", "API"]
LABELS = ["backend", "frontend", "finance", "ops", "research", "customer", "quick-win", "risk"]
COMMENTS = [
    "Started on this.",
    "Blocked by a question to the customer.",
    "Ready for a look.",
    "Updated the plan.",
    "+1",
]
# The share of tasks that end up in each status (the rest stay to do), earlier tasks further along.
TARGETS = [TaskStatus.DONE] * 4 + [TaskStatus.IN_REVIEW] + [TaskStatus.IN_PROGRESS] * 2 + [TaskStatus.CANCELLED]
PATHS: dict[str, list[str]] = {
    TaskStatus.TODO: [],
    TaskStatus.IN_PROGRESS: ["start"],
    TaskStatus.IN_REVIEW: ["start", "submit_for_review"],
    TaskStatus.DONE: ["start", "submit_for_review", "complete"],
    TaskStatus.CANCELLED: ["cancel"],
}


def _move(actor: User, task: Task, status: str) -> Task:
    for transition in PATHS[status]:
        task = services.task_transition(actor=actor, task=task, transition=transition)
    return task


class _Day:
    """Keeps each member's demo hours per day well under the daily limit."""

    def __init__(self) -> None:
        self.hours: dict[tuple[int, datetime.date], Decimal] = defaultdict(Decimal)

    def fits(self, member: User, day: datetime.date, hours: Decimal) -> bool:
        if self.hours[(member.pk, day)] + hours > 8:
            return False
        self.hours[(member.pk, day)] += hours
        return True


def _seed_project(
    project: Project, manager: User, people: list[User], actor: User, rng: random.Random, day: _Day
) -> int:
    """Tasks, subtasks, dependencies, comments and time entries for one project; returns the number of tasks made."""
    organization = project.organization
    today = timezone.localdate()
    made = 0
    top: list[tuple[Task, str]] = []
    for index in range(TASKS_PER_PROJECT):
        target = TARGETS[index % len(TARGETS)] if index < TASKS_PER_PROJECT * 2 // 3 else TaskStatus.TODO
        due = today + datetime.timedelta(days=rng.randint(-20, 60))
        task = services.task_create(
            actor=actor,
            organization=organization,
            title=f"{rng.choice(VERBS)} {rng.choice(THINGS)} #{index + 1}",
            description="Demo task.",
            project=project,
            priority=rng.randint(1, 4),
            assignee=rng.choice(people),
            start_date=due - datetime.timedelta(days=rng.randint(5, 20)),
            due_date=due,
            estimated_hours=Decimal(rng.choice([2, 4, 8, 16])),
            labels=rng.sample(LABELS, rng.randint(0, 2)),
            reporter=manager,
        )
        made += 1
        # Subtasks: closed before a parent that is done; open or cancelled otherwise.
        for number in range(rng.randint(0, 2)):
            subtask = services.task_create(
                actor=actor,
                organization=organization,
                title=f"{task.title} — step {number + 1}",
                project=project,
                parent=task,
                assignee=rng.choice(people),
                estimated_hours=Decimal(rng.choice([1, 2, 4])),
            )
            made += 1
            _move(actor, subtask, TaskStatus.DONE if target == TaskStatus.DONE else rng.choice(list(PATHS)))
        # Depend on an earlier task only when the order of the work allows it.
        earlier = [
            (other, status) for other, status in top[-5:] if status == TaskStatus.DONE or target == TaskStatus.TODO
        ]
        if earlier and rng.random() < 0.5:
            services.task_dependency_add(actor=actor, task=task, depends_on=rng.choice(earlier)[0])
        task = _move(actor, task, target)
        top.append((task, target))
        for _ in range(rng.randint(0, 3)):
            services.comment_create(actor=rng.choice(people), task=task, body=rng.choice(COMMENTS))
        if target in (TaskStatus.IN_PROGRESS, TaskStatus.IN_REVIEW, TaskStatus.DONE):
            for _ in range(rng.randint(1, 3)):
                member = rng.choice(people)
                worked = today - datetime.timedelta(days=rng.randint(0, 30))
                hours = Decimal(rng.choice(["1", "1.5", "2", "3", "4"]))
                if day.fits(member, worked, hours):
                    services.time_entry_create(actor=member, task=task, hours=hours, date=worked, note="demo")
    return made


@transaction.atomic
def seed_tasks(*, actor: User) -> dict[str, int]:
    """Create the demo projects (once) and fill those without tasks; returns what was created."""
    created = {"projects": 0, "tasks": 0}
    rng = random.Random(2026)  # the same demo every time  # noqa: S311 - demo data, not secrets
    day = _Day()
    for slug, projects in PROJECTS.items():
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            continue
        people = list(
            User.objects.filter(
                memberships__organization=organization, memberships__is_active=True, is_active=True
            ).order_by("email")
        )
        for code, name, department_code, manager_email, status in projects:
            manager = User.objects.get(email__iexact=manager_email)
            project = Project.objects.for_organization(organization).filter(code=code).first()
            if project is None:
                department = Department.objects.for_organization(organization).get(code=department_code)
                project = services.project_create(
                    actor=actor,
                    organization=organization,
                    code=code,
                    name=name,
                    department=department,
                    manager=manager,
                    status=status,
                    start_date=timezone.localdate() - datetime.timedelta(days=30),
                    end_date=timezone.localdate() + datetime.timedelta(days=120),
                )
                created["projects"] += 1
            if Task.all_objects.filter(project=project).exists():
                continue
            for person in people:
                if person != manager:
                    services.project_member_set(actor=actor, project=project, user=person)
            created["tasks"] += _seed_project(project, manager, people, actor, rng, day)
    return created
