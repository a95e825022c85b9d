"""The auditor's API: the change feed, the security events and ``{id}/history/`` on every org-scoped resource."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from audit.context import audit_context
from audit.events import record_event
from audit.models import SecurityEvent, SecurityEventKind
from organizations import services
from tests.api_helpers import NOT_AUTHENTICATED, NOT_FOUND, invalid, iso, lacks_permission
from tests.audit.audit_story import FIN_CREATED, FIN_DELETED, FIN_RENAMED, HQ_CREATED, story, versions
from tests.organizations.factories import DepartmentFactory, MembershipFactory

pytestmark = pytest.mark.django_db
__all__ = ["story"]

CHANGES = "/api/v1/organizations/{slug}/audit/changes/"
EVENTS = "/api/v1/organizations/{slug}/audit/events/"
DEPARTMENT = "organizations.department"
EVE = {"display": "Eve Editor <eve@example.com>"}


def change(story, obj, history_id, date, action, reason, fields) -> dict[str, Any]:
    return {
        "model": DEPARTMENT,
        "model_name": "Department",
        "object_id": str(obj.pk),
        "history_id": history_id,
        "history_date": iso(date),
        "action": action,
        "user": {"id": story.editor.pk, **EVE},
        "reason": reason,
        "changed_fields": fields,
        "ip": "203.0.113.7",
        "request_id": "req-story",
        "source": "api",
    }


def test_an_auditor_reads_the_organizations_changes(story, client_for):
    # when
    response = client_for(story.auditor).get(CHANGES.format(slug="acme"), {"model": DEPARTMENT})
    # then
    assert response.status_code == 200, response.json()
    fin, hq = versions(story.fin), versions(story.hq)
    assert response.json() == {
        "next": None,
        "results": [
            change(
                story, story.fin, fin[2], FIN_DELETED, "soft_deleted", "Merged into HQ", ["deleted_at", "deleted_by_id"]
            ),
            change(story, story.fin, fin[1], FIN_RENAMED, "updated", "Reorganisation", ["name", "manager_id"]),
            change(
                story,
                story.fin,
                fin[0],
                FIN_CREATED,
                "created",
                "",
                ["organization_id", "code", "name", "parent_id", "path", "depth", "display_order"],
            ),
            change(
                story,
                story.hq,
                hq[0],
                HQ_CREATED,
                "created",
                "Initial setup",
                ["organization_id", "code", "name", "path", "depth", "display_order"],
            ),
        ],
    }


def test_the_change_feed_filters_and_pages_forward(story, client_for):
    client = client_for(story.auditor)
    # when: filtered by field and action
    by_field = client.get(CHANGES.format(slug="acme"), {"field": "manager", "action": "updated"}).json()
    # then
    assert [(row["object_id"], row["action"]) for row in by_field["results"]] == [(str(story.fin.pk), "updated")]
    # when: everything, two at a time, following ``next``
    everything = client.get(CHANGES.format(slug="acme")).json()["results"]
    seen, url = [], CHANGES.format(slug="acme") + "?page_size=2"
    while url:
        body = client.get(url).json()
        seen.extend(body["results"])
        url = body["next"]
    # then
    assert len(everything) == 11
    assert seen == everything


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"model": "nope.nothing"}, {"model": ['"nope.nothing" is not a valid choice.']}),
        (
            {"colour": "red"},
            {
                "colour": [
                    "Unknown query parameter. Allowed: "
                    "action, cursor, field, model, object_id, page_size, since, until, user."
                ]
            },
        ),
        ({"cursor": "garbage"}, {"cursor": ["This cursor is not valid."]}),
        ({"field": "Name;--"}, {"field": ["This value does not match the required pattern."]}),
        ({"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"}, {"until": ["Must be later than since."]}),
        ({"page_size": "500"}, {"page_size": ["Ensure this value is less than or equal to 200."]}),
    ],
)
def test_bad_change_queries_are_400(story, client_for, query, fields):
    response = client_for(story.auditor).get(CHANGES.format(slug="acme"), query)
    assert response.status_code == 400
    assert response.json() == invalid(fields)


def test_an_auditor_of_one_organization_sees_none_of_anothers_changes_or_events(story, client_for):
    # given: events in both organizations
    record_event(SecurityEventKind.DATA_EXPORTED, organization=story.globex, actor=story.globex_auditor)
    client = client_for(story.auditor)
    # when: acme's auditor asks for globex's feeds, and reads acme's
    refused = [client.get(url.format(slug="globex")) for url in (CHANGES, EVENTS)]
    own_changes = client.get(CHANGES.format(slug="acme"), {"object_id": str(story.secret.pk)}).json()
    own_events = client.get(EVENTS.format(slug="acme")).json()
    # then
    assert [(response.status_code, response.json()) for response in refused] == [(404, NOT_FOUND), (404, NOT_FOUND)]
    assert own_changes == {"next": None, "results": []}
    assert {event["id"] for event in own_events["results"]} <= set(
        SecurityEvent.objects.filter(organization=story.acme).values_list("pk", flat=True)
    )


@pytest.mark.parametrize("url", [CHANGES, EVENTS])
def test_a_member_without_view_history_gets_403_and_others_404_or_401(story, client_for, outsider, url):
    # when
    member = client_for(story.member).get(url.format(slug="acme"))
    stranger = client_for(outsider).get(url.format(slug="acme"))
    anonymous = client_for(None).get(url.format(slug="acme"))
    # then
    assert (member.status_code, member.json()) == (403, lacks_permission("audit.view_history"))
    assert (stranger.status_code, stranger.json()) == (404, NOT_FOUND)
    assert (anonymous.status_code, anonymous.json()) == (401, NOT_AUTHENTICATED)
    denial = SecurityEvent.objects.filter(kind=SecurityEventKind.PERMISSION_DENIED, actor_id=story.member.pk).get()
    assert (denial.organization_id, denial.data["status"], denial.data["permission"]) == (
        story.acme.pk,
        403,
        "audit.view_history",
    )


def test_an_auditor_reads_the_security_events(story, client_for):
    # given
    with audit_context(request_id="req-export"):
        event = record_event(
            SecurityEventKind.ROLE_ASSIGNED,
            organization=story.acme,
            actor=story.editor,
            target_user=story.member,
            obj=story.hq,
            data={"role": "member"},
        )
    # when
    response = client_for(story.auditor).get(
        EVENTS.format(slug="acme"), {"kind": "role_assigned", "actor": story.editor.pk}
    )
    # then
    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "results": [
            {
                "id": event.pk,
                "occurred_at": iso(event.occurred_at),
                "kind": "role_assigned",
                "kind_display": "Role assigned",
                "actor": {"id": story.editor.pk, **EVE},
                "target_user": {"id": story.member.pk, "display": "Max Member <max@example.com>"},
                "object_type": DEPARTMENT,
                "object_id": str(story.hq.pk),
                "source": "system",
                "request_id": "req-export",
                "data": {"role": "member"},
            }
        ],
    }


def test_security_events_page_forward(story, client_for):
    # given
    for _ in range(5):
        record_event(SecurityEventKind.DATA_EXPORTED, organization=story.acme, actor=story.auditor)
    client = client_for(story.auditor)
    everything = client.get(EVENTS.format(slug="acme"), {"kind": "data_exported"}).json()["results"]
    # when
    seen, url = [], EVENTS.format(slug="acme") + "?kind=data_exported&page_size=2"
    while url:
        body = client.get(url).json()
        seen.extend(body["results"])
        url = body["next"]
    # then
    assert len(everything) == 5
    assert seen == everything


# --- {id}/history/ --------------------------------------------------------------------------------------------------


def history_url(resource: str, pk: int, slug: str = "acme") -> str:
    return f"/api/v1/organizations/{slug}/{resource}/{pk}/history/"


def test_a_resources_history_lists_versions_with_their_diff(story, client_for):
    # given: HQ renamed
    with audit_context(actor=story.editor, reason="New name"):
        services.department_update(actor=story.editor, department=story.hq, name="Head office")
    created, renamed = versions(story.hq)
    # when
    response = client_for(story.auditor).get(history_url("departments", story.hq.pk))
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["next"] is None
    assert body["previous"] is None
    assert body["results"][0] == {
        "history_id": renamed,
        "history_date": body["results"][0]["history_date"],
        "action": "updated",
        "user": {"id": story.editor.pk, **EVE},
        "reason": "New name",
        "ip": None,
        "request_id": body["results"][0]["request_id"],
        "source": "system",
        "changed_fields": ["name"],
        "changes": [
            {
                "field": "name",
                "label": "Name",
                "old": "Headquarters",
                "new": "Head office",
                "old_display": "Headquarters",
                "new_display": "Head office",
            }
        ],
    }
    assert body["results"][1]["history_id"] == created
    assert body["results"][1]["history_date"] == iso(HQ_CREATED)
    assert [(c["field"], c["old"], c["new_display"]) for c in body["results"][1]["changes"]] == [
        ("organization", None, "Acme"),
        ("code", None, "HQ"),
        ("name", None, "Headquarters"),
        ("path", None, "HQ/"),
        ("depth", None, "1"),
        ("display_order", None, "0"),
    ]


def test_the_history_pages_keep_each_oldest_rows_diff(story, client_for):
    # given: three versions of HQ
    for name in ("One", "Two"):
        services.department_update(actor=story.editor, department=story.hq, name=name)
    client = client_for(story.auditor)
    # when
    first = client.get(history_url("departments", story.hq.pk), {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    # then
    assert [row["action"] for row in first["results"]] == ["updated", "updated"]
    assert first["results"][1]["changes"][0]["old"] == "Headquarters"
    assert [row["action"] for row in second["results"]] == ["created"]


def test_history_needs_view_history_on_a_visible_object(story, client_for, outsider):
    # when
    member = client_for(story.member).get(history_url("departments", story.hq.pk))
    stranger = client_for(outsider).get(history_url("departments", story.hq.pk))
    other_path = client_for(story.globex_auditor).get(history_url("departments", story.hq.pk, slug="globex"))
    deleted = client_for(story.auditor).get(history_url("departments", story.fin.pk))
    # then
    assert (member.status_code, member.json()) == (403, lacks_permission("audit.view_history", on_object=True))
    assert (stranger.status_code, stranger.json()) == (404, NOT_FOUND)
    assert (other_path.status_code, other_path.json()) == (404, NOT_FOUND)
    assert (deleted.status_code, deleted.json()) == (404, NOT_FOUND)  # the pages keep deleted objects' history


def test_every_org_scoped_resource_has_history(story, client_for):
    # given
    membership = MembershipFactory(organization=story.acme, role="viewer")
    assignment = membership.user.role_assignments.get()
    client = client_for(story.auditor)
    # when / then
    for resource, pk in (
        ("members", membership.pk),
        ("role-assignments", assignment.pk),
        ("departments", story.hq.pk),
    ):
        response = client.get(history_url(resource, pk))
        assert response.status_code == 200, (resource, response.json())
        assert response.json()["results"][-1]["action"] == "created"


def test_the_history_costs_the_same_queries_at_10_and_50_versions(story, client_for, django_assert_num_queries):
    client = client_for(story.auditor)
    for count in (10, 50):
        # given
        with audit_context(actor=story.editor):
            department = DepartmentFactory(organization=story.acme, code=f"V{count}", manager=story.editor)
            for number in range(count - 1):
                department.name = f"Name {number}"
                department.save()
        url = history_url("departments", department.pk)
        client.get(url)  # warms the permission cache
        # when / then: organization, object, page, the version before it, people, related organizations
        with django_assert_num_queries(6):
            response = client.get(url)
        assert len(response.json()["results"]) == count


def test_the_change_feed_costs_the_same_queries_at_10_and_50_versions(story, client_for, django_assert_num_queries):
    client = client_for(story.auditor)
    for count in (10, 50):
        with audit_context(actor=story.editor):
            department = DepartmentFactory(organization=story.acme, code=f"C{count}")
            for number in range(count - 1):
                department.name = f"Name {number}"
                department.save()
        query = {"model": DEPARTMENT, "object_id": str(department.pk)}
        client.get(CHANGES.format(slug="acme"), query)
        # organization, the UNION ALL of the history tables, people
        with django_assert_num_queries(3):
            response = client.get(CHANGES.format(slug="acme"), query)
        assert len(response.json()["results"]) == count


def test_the_schema_documents_the_audit_api(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in (
        "/api/v1/organizations/{organization_slug}/audit/changes/",
        "/api/v1/organizations/{organization_slug}/audit/events/",
        "/api/v1/organizations/{organization_slug}/departments/{id}/history/",
        "/api/v1/organizations/{organization_slug}/members/{id}/history/",
    ):
        assert f"  {path}:" in text
