"""What auditors read: the registry, the change search, timelines, diffs, as-of and the people shown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import User
from audit import selectors
from audit.context import audit_context
from audit.events import record_event
from audit.models import SecurityEventKind
from audit.selectors import ChangeFilters, FieldChange, ObjectState, Person
from organizations.models import Department
from tests.accounts.factories import SuperuserFactory, UserFactory
from tests.audit.audit_story import FIN_CREATED, FIN_DELETED, FIN_RENAMED, HQ_CREATED, dated, story, versions
from tests.organizations.factories import DepartmentFactory

pytestmark = pytest.mark.django_db
__all__ = ["story"]  # the fixture, imported for pytest

DEPARTMENT = "organizations.department"
EVE = "Eve Editor <eve@example.com>"


def department_model() -> selectors.AuditedModel:
    audited = selectors.audited_model(DEPARTMENT)
    assert audited is not None
    return audited


def summary(changes: list[selectors.Change]) -> list[tuple[str, str, str, str, str, list[str]]]:
    return [
        (change.model.label, change.object_id, change.action, change.user.display, change.reason, change.changed_fields)
        for change in changes
    ]


def search(story, **filters) -> list[selectors.Change]:
    changes, position = selectors.search_changes(
        organization=story.acme, viewer=story.auditor, filters=ChangeFilters(**filters), limit=50
    )
    assert position is None
    return changes


def test_the_registry_lists_every_model_with_history_and_its_history_model():
    # when
    registry = selectors.audited_models()
    # then
    assert set(registry) >= {
        "accounts.user",
        "organizations.organization",
        "organizations.department",
        "organizations.membership",
        "organizations.departmentuserobjectpermission",
        "organizations.departmentgroupobjectpermission",
        "rbac.role",
        "rbac.rolepermission",
        "rbac.roleassignment",
    }
    assert registry[DEPARTMENT].model is Department
    assert registry[DEPARTMENT].history_model is Department.history.model
    assert registry[DEPARTMENT].verbose_name == "Department"
    assert all(selectors.audited_model_for(entry.model) is entry for entry in registry.values())


def test_the_change_search_lists_the_organizations_changes_newest_first(story):
    # when
    changes = search(story, model=DEPARTMENT)
    # then: only acme's departments; globex's SECRET is not there
    fin, hq = str(story.fin.pk), str(story.hq.pk)
    assert summary(changes) == [
        (DEPARTMENT, fin, "soft_deleted", EVE, "Merged into HQ", ["deleted_at", "deleted_by_id"]),
        (DEPARTMENT, fin, "updated", EVE, "Reorganisation", ["name", "manager_id"]),
        (
            DEPARTMENT,
            fin,
            "created",
            EVE,
            "",
            ["organization_id", "code", "name", "parent_id", "path", "depth", "display_order"],
        ),
        (
            DEPARTMENT,
            hq,
            "created",
            EVE,
            "Initial setup",
            ["organization_id", "code", "name", "path", "depth", "display_order"],
        ),
    ]
    assert [change.history_date for change in changes] == [FIN_DELETED, FIN_RENAMED, FIN_CREATED, HQ_CREATED]
    assert changes[1].changed_field_labels == ["Name", "Manager"]
    assert (changes[1].ip, changes[1].request_id, changes[1].source) == ("203.0.113.7", "req-story", "api")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"action": "updated"}, ["FIN updated"]),
        ({"field": "manager"}, ["FIN updated"]),
        ({"field": "parent"}, ["FIN created"]),
        ({"field": "deleted_at"}, ["FIN soft_deleted"]),
        ({"since": FIN_CREATED, "until": FIN_DELETED}, ["FIN updated", "FIN created"]),
        ({"object_id": "HQ"}, []),
    ],
)
def test_the_change_search_filters(story, filters, expected):
    # when
    changes = search(story, model=DEPARTMENT, **filters)
    # then
    names = {str(story.fin.pk): "FIN", str(story.hq.pk): "HQ"}
    assert [f"{names[change.object_id]} {change.action}" for change in changes] == expected


def test_the_change_search_by_object_and_by_user(story):
    # when
    by_object = search(story, model=DEPARTMENT, object_id=str(story.hq.pk))
    by_user = search(story, user_id=story.editor.pk)
    nobody = search(story, user_id=story.member.pk)
    # then
    assert [(change.object_id, change.action) for change in by_object] == [(str(story.hq.pk), "created")]
    assert [change.history_date for change in by_user] == [FIN_DELETED, FIN_RENAMED, FIN_CREATED, HQ_CREATED]
    assert nobody == []


def test_an_auditor_never_finds_another_organizations_changes(story):
    # when: acme's search for globex's department, by id and by everything
    by_id = search(story, model=DEPARTMENT, object_id=str(story.secret.pk))
    everything = search(story)
    # then
    assert by_id == []
    assert str(story.secret.pk) not in {change.object_id for change in everything if change.model.label == DEPARTMENT}
    assert story.globex_auditor.pk not in {change.user.id for change in everything}


def test_the_change_search_pages_along_the_keyset_without_gaps_or_repeats(story):
    # given: every acme change (many share the fixtures' date, across several tables)
    everything = search(story)
    assert len(everything) == 11
    # when: read two at a time
    seen, after = [], None
    while True:
        changes, after = selectors.search_changes(
            organization=story.acme, viewer=story.auditor, filters=ChangeFilters(), after=after, limit=2
        )
        seen.extend(changes)
        if after is None:
            break
        # the cursor survives a round trip through its text form
        after = selectors.ChangePosition.decode(after.encode())
    # then
    assert [change.position for change in seen] == [change.position for change in everything]


def test_a_cursor_not_written_by_the_search_is_refused():
    for cursor in ("", "not-base64!", selectors.encode_cursor(["2025-01-01T00:00:00", "x", 1]), "W10"):
        with pytest.raises(selectors.InvalidCursorError):
            selectors.ChangePosition.decode(cursor)


def test_the_change_search_costs_two_queries_whatever_the_number_of_versions(
    story, organization, django_assert_num_queries
):
    for count in (10, 50):
        # given: ``count`` versions of a department
        department = DepartmentFactory(organization=organization, code=f"BULK{count}")
        with audit_context(actor=story.editor):
            for number in range(count - 1):
                department.name = f"Name {number}"
                department.save()
        # when / then: one UNION ALL of the history tables, one query for the people
        with django_assert_num_queries(2):
            changes, _after = selectors.search_changes(
                organization=organization,
                viewer=story.auditor,
                filters=ChangeFilters(model=DEPARTMENT, object_id=str(department.pk)),
                limit=50,
            )
        assert len(changes) == count


def test_the_timeline_shows_every_version_with_its_changes(story):
    # when
    page = selectors.object_timeline(
        audited=department_model(), object_id=story.fin.pk, organization=story.acme, viewer=story.auditor
    )
    # then
    assert page is not None
    assert page.title == f"Department #{story.fin.pk}: FIN — Finance and Control"
    assert page.next_before is None
    assert [(v.history_id, v.action, v.user.display, v.reason) for v in page.versions] == [
        (versions(story.fin)[2], "soft_deleted", EVE, "Merged into HQ"),
        (versions(story.fin)[1], "updated", EVE, "Reorganisation"),
        (versions(story.fin)[0], "created", EVE, ""),
    ]
    assert page.versions[1].changes == [
        FieldChange("name", "Name", "Finance", "Finance and Control", "Finance", "Finance and Control"),
        FieldChange("manager", "Manager", None, story.editor.pk, "—", EVE),
    ]
    deleted_at = story.fin.deleted_at
    assert page.versions[0].changes == [
        FieldChange(
            "deleted_at",
            "Deleted at",
            None,
            deleted_at.isoformat().replace("+00:00", "Z"),
            "—",
            deleted_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        ),
        FieldChange("deleted_by", "Deleted by", None, story.editor.pk, "—", EVE),
    ]
    assert [(change.label, change.new_display) for change in page.versions[2].changes] == [
        ("Organization", "Acme"),
        ("Code", "FIN"),
        ("Name", "Finance"),
        ("Parent", "HQ — Headquarters"),
        ("Path", "HQ/FIN/"),
        ("Depth", "2"),
        ("Display order", "0"),
    ]


def test_the_timeline_is_paged_by_history_id(story):
    # when
    first = selectors.object_timeline(
        audited=department_model(), object_id=story.fin.pk, organization=story.acme, viewer=story.auditor, limit=2
    )
    assert first is not None
    assert first.next_before is not None
    second = selectors.object_timeline(
        audited=department_model(),
        object_id=story.fin.pk,
        organization=story.acme,
        viewer=story.auditor,
        before=first.next_before,
        limit=2,
    )
    # then: the oldest version of the first page still has its diff (against the version on the next page)
    assert second is not None
    assert [v.action for v in first.versions] == ["soft_deleted", "updated"]
    assert [change.field for change in first.versions[1].changes] == ["name", "manager"]
    assert [v.action for v in second.versions] == ["created"]
    assert second.next_before is None


def test_another_organizations_object_has_no_timeline_here(story):
    assert (
        selectors.object_timeline(
            audited=department_model(), object_id=story.secret.pk, organization=story.acme, viewer=story.auditor
        )
        is None
    )


def test_a_diff_between_any_two_versions_in_either_order(story):
    # given
    created, _renamed, deleted = (
        selectors.version_of(audited=department_model(), object_id=story.fin.pk, organization=story.acme, history_id=pk)
        for pk in versions(story.fin)
    )
    # when
    diff = selectors.diff_versions(
        audited=department_model(), first=deleted, second=created, organization=story.acme, viewer=story.auditor
    )
    # then
    assert (diff.older.action, diff.newer.action) == ("created", "soft_deleted")
    assert [(c.label, c.old_display, c.new_display) for c in diff.changes] == [
        ("Deleted at", "—", story.fin.deleted_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Deleted by", "—", EVE),
        ("Name", "Finance", "Finance and Control"),
        ("Manager", "—", EVE),
    ]


def test_a_version_of_another_object_or_organization_is_not_found(story):
    secret_version = versions(story.secret)[0]
    assert (
        selectors.version_of(
            audited=department_model(), object_id=story.fin.pk, organization=story.acme, history_id=secret_version
        )
        is None
    )
    assert (
        selectors.version_of(
            audited=department_model(), object_id=story.fin.pk, organization=story.acme, history_id="x"
        )
        is None
    )


def as_of(story, moment, department=None):
    return selectors.object_as_of(
        audited=department_model(),
        object_id=(department or story.fin).pk,
        organization=story.acme,
        viewer=story.auditor,
        moment=moment,
    )


def test_as_of_a_moment_shows_the_values_then(story):
    # when
    result = as_of(story, FIN_RENAMED + timedelta(hours=1))
    # then
    assert result is not None
    assert result.state == ObjectState.EXISTED
    assert result.version is not None
    assert result.version.history_date == FIN_RENAMED
    assert {value.label: value.display for value in result.values} == {
        "Organization": "Acme",
        "Code": "FIN",
        "Name": "Finance and Control",
        "Parent": "HQ — Headquarters",
        "Path": "HQ/FIN/",
        "Depth": "2",
        "Manager": EVE,
        "Headcount limit": "—",
        "Display order": "0",
        "Deleted at": "—",
        "Deleted by": "—",
    }


def test_as_of_before_creation_after_soft_and_hard_deletion(story):
    # given: FIN is later deleted for good
    hard_deleted = FIN_DELETED + timedelta(days=1)
    with dated(hard_deleted):
        Department.all_objects.get(pk=story.fin.pk).delete()
    # when / then
    before = as_of(story, FIN_CREATED - timedelta(seconds=1))
    assert before is not None
    assert (before.state, before.values) == (ObjectState.NOT_YET_CREATED, [])
    assert before.state_display == "did not exist yet"
    soft = as_of(story, FIN_DELETED)
    assert soft is not None
    assert soft.state == ObjectState.SOFT_DELETED
    gone = as_of(story, hard_deleted)
    assert gone is not None
    assert (gone.state, gone.state_display) == (ObjectState.DELETED, "deleted")
    assert {value.label: value.display for value in gone.values}["Name"] == "Finance and Control"
    assert as_of(story, hard_deleted, department=story.secret) is None


def test_the_timeline_of_a_hard_deleted_object_remains(story):
    # given
    with dated(FIN_DELETED + timedelta(days=1)):
        Department.all_objects.get(pk=story.fin.pk).delete()
    # when
    page = selectors.object_timeline(
        audited=department_model(), object_id=story.fin.pk, organization=story.acme, viewer=story.auditor
    )
    # then: the deletion is the newest version, by the system (no one was signed in)
    assert page is not None
    assert [(v.action, v.user.display, v.changes) for v in page.versions][:2] == [
        ("deleted", "System", []),
        ("soft_deleted", EVE, page.versions[1].changes),
    ]
    assert page.title == f"Department #{story.fin.pk}: FIN — Finance and Control"


def test_related_rows_that_are_gone_show_their_id(story):
    # given: FIN's manager was a user who no longer exists
    departed = UserFactory(full_name="Dan Departed", email="dan@example.com")
    with audit_context(actor=story.editor):
        fin = Department.all_objects.get(pk=story.fin.pk)
        fin.manager = departed
        fin.save()
    departed_pk = departed.pk
    User.objects.filter(pk=departed_pk).delete()
    hq_pk = story.hq.pk
    Department.history.filter(id=fin.pk).update(parent_id=hq_pk + 100000)
    # when
    result = as_of(story, fin.history.latest().history_date)
    # then
    assert result is not None
    values = {value.label: value.display for value in result.values}
    assert (values["Manager"], values["Parent"]) == (
        f"(deleted user #{departed_pk})",
        f"(deleted #{hq_pk + 100000})",
    )


def test_people_are_shown_by_name_only_where_the_viewer_may_see_them(story):
    # given: a member, someone from elsewhere, a platform operator, an account that is gone
    stranger = UserFactory(full_name="Sam Stranger", email="sam@example.com")
    operator = SuperuserFactory(full_name="Olga Operator", email="olga@example.com")
    ids = [story.member.pk, stranger.pk, operator.pk, 999999999, None]
    # when
    for_auditor = selectors.people(ids, organization=story.acme, viewer=story.auditor)
    for_superuser = selectors.people(ids, organization=story.acme, viewer=operator)
    # then
    assert for_auditor == {
        story.member.pk: Person(story.member.pk, "Max Member <max@example.com>"),
        stranger.pk: Person(stranger.pk, f"User #{stranger.pk}"),
        operator.pk: Person(operator.pk, "Olga Operator <olga@example.com>"),
        999999999: Person(999999999, "(deleted user #999999999)"),
    }
    assert for_superuser[stranger.pk] == Person(stranger.pk, "Sam Stranger <sam@example.com>")
    assert selectors.actor(None, "system", {}) == Person(None, "System")
    assert selectors.actor(None, "", {}) == Person(None, "Anonymous")


def test_only_organizations_where_the_user_holds_view_history_are_offered(story):
    assert selectors.auditable_organizations(user=story.auditor) == [story.acme]
    assert selectors.auditable_organizations(user=story.editor) == [story.acme]  # org_admin holds it too
    assert selectors.auditable_organizations(user=story.member) == []
    assert selectors.auditable_organizations(user=story.globex_auditor) == [story.globex]


def test_security_events_are_the_organizations_own_filtered(story):
    # given
    exported = record_event(SecurityEventKind.DATA_EXPORTED, organization=story.acme, actor=story.auditor)
    record_event(SecurityEventKind.DATA_EXPORTED, organization=story.globex, actor=story.globex_auditor)
    # when
    events = selectors.security_events(
        organization=story.acme, filters=selectors.EventFilters(kind="data_exported", actor_id=story.auditor.pk)
    )
    rows = selectors.describe_events(list(events), organization=story.acme, viewer=story.auditor)
    # then
    assert [(row.event.pk, row.actor.display, row.target) for row in rows] == [
        (exported.pk, "Ada Auditor <ada@example.com>", None)
    ]
    assert all(
        event.organization_id == story.acme.pk
        for event in selectors.security_events(organization=story.acme, filters=selectors.EventFilters())
    )
