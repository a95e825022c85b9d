"""A small, dated history shared by the auditor tests (selectors, pages, API).

Acme (by Eve Editor, through the API): HQ created on 1 March 2025; FIN created under it on 2 March; FIN renamed and
given a manager on 3 March ("Reorganisation"); FIN soft-deleted on 4 March. Globex has a department of its own that
Acme's auditor must never see. Everything the fixtures themselves recorded is dated 1 February 2025.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.db.models import Max

from accounts.models import User
from audit.context import Source, audit_context
from audit.selectors import audited_models
from organizations import services
from organizations.models import Department, Organization
from tests.organizations.factories import MembershipFactory

SETUP = datetime(2025, 2, 1, 8, 0, tzinfo=UTC)
HQ_CREATED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
FIN_CREATED = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
FIN_RENAMED = datetime(2025, 3, 3, 11, 0, tzinfo=UTC)
FIN_DELETED = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


@contextmanager
def dated(moment: datetime) -> Iterator[None]:
    """Date every version recorded inside the block at ``moment`` (the history tables are not append-only)."""
    marks = {
        label: audited.history_model._default_manager.aggregate(last=Max("history_id"))["last"] or 0
        for label, audited in audited_models().items()
    }
    yield
    for label, audited in audited_models().items():
        audited.history_model._default_manager.filter(history_id__gt=marks[label]).update(history_date=moment)


@dataclass
class Story:
    acme: Organization
    globex: Organization
    auditor: User
    editor: User
    member: User
    globex_auditor: User
    hq: Department
    fin: Department
    secret: Department


def versions(department: Department) -> list[int]:
    """The department's history ids, oldest first."""
    return list(Department.history.filter(id=department.pk).order_by("history_id").values_list("history_id", flat=True))


@pytest.fixture
def story(organization: Organization, other_organization: Organization) -> Story:
    with dated(SETUP):
        auditor = MembershipFactory(
            organization=organization, role="auditor", user__full_name="Ada Auditor", user__email="ada@example.com"
        ).user
        editor = MembershipFactory(
            organization=organization, role="org_admin", user__full_name="Eve Editor", user__email="eve@example.com"
        ).user
        member = MembershipFactory(
            organization=organization, role="member", user__full_name="Max Member", user__email="max@example.com"
        ).user
        globex_auditor = MembershipFactory(
            organization=other_organization,
            role="auditor",
            user__full_name="Gus Globex",
            user__email="gus@example.com",
        ).user
    with audit_context(source=Source.API, actor=editor, ip="203.0.113.7", request_id="req-story"):
        with dated(HQ_CREATED), audit_context(reason="Initial setup"):
            hq = services.department_create(actor=editor, organization=organization, code="HQ", name="Headquarters")
        with dated(FIN_CREATED):
            fin = services.department_create(
                actor=editor, organization=organization, code="FIN", name="Finance", parent=hq
            )
        with dated(FIN_RENAMED), audit_context(reason="Reorganisation"):
            fin = services.department_update(actor=editor, department=fin, name="Finance and Control", manager=editor)
        with dated(FIN_DELETED), audit_context(reason="Merged into HQ"):
            services.department_delete(actor=editor, department=fin)
    with audit_context(source=Source.API, actor=globex_auditor), dated(FIN_CREATED):
        secret = services.department_create(
            actor=globex_auditor, organization=other_organization, code="SECRET", name="Globex secret"
        )
    Organization.history.filter(id__in=[organization.pk, other_organization.pk]).update(history_date=SETUP)
    fin = Department.all_objects.get(pk=fin.pk)
    return Story(organization, other_organization, auditor, editor, member, globex_auditor, hq, fin, secret)
