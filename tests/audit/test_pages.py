"""The auditor's pages under /audit/ (and the admin's history view), rendered through the Django test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit import views
from audit.context import audit_context
from audit.events import record_event
from audit.models import SecurityEvent, SecurityEventKind
from organizations.models import Department
from tests.audit.audit_story import FIN_DELETED, FIN_RENAMED, dated, story, versions
from tests.organizations.factories import DepartmentFactory, MembershipFactory

pytestmark = pytest.mark.django_db
__all__ = ["story"]

DEPARTMENT = "organizations.department"
EVE = "Eve Editor &lt;eve@example.com&gt;"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def timeline_url(story, department: Department, slug: str = "acme") -> str:
    return reverse("audit:timeline", args=[slug, DEPARTMENT, department.pk])


def org_pages(story) -> list[str]:
    fin = story.fin.pk
    created, renamed, _deleted = versions(story.fin)
    return [
        reverse("audit:changes", args=["acme"]),
        reverse("audit:events", args=["acme"]),
        reverse("audit:export", args=["acme"]),
        timeline_url(story, story.fin),
        reverse("audit:diff", args=["acme", DEPARTMENT, fin]) + f"?from={created}&to={renamed}",
        reverse("audit:as_of", args=["acme", DEPARTMENT, fin]) + "?moment=2025-03-03T12:00",
    ]


def test_anonymous_visitors_are_sent_to_sign_in(story):
    for url in ["/audit/", *org_pages(story)]:
        response = Client().get(url)
        assert response.status_code == 302
        login = QueryDict(mutable=True)
        login["next"] = url
        assert response["Location"] == "/admin/login/?" + login.urlencode(safe="/")


def test_a_member_without_view_history_gets_403_and_an_outsider_404(story, outsider):
    # when
    member = signed_in(story.member)
    stranger = signed_in(outsider)
    # then
    for url in org_pages(story):
        assert member.get(url).status_code == 403, url
        assert stranger.get(url).status_code == 404, url
    denials = SecurityEvent.objects.filter(kind=SecurityEventKind.PERMISSION_DENIED)
    assert denials.filter(actor_id=story.member.pk, organization=story.acme).count() == 6
    assert denials.filter(actor_id=outsider.pk, organization=None).count() == 6


def test_an_auditor_of_another_organization_sees_nothing_here(story):
    # given: globex's auditor; acme's auditor naming globex's department under acme
    globex = signed_in(story.globex_auditor)
    acme = signed_in(story.auditor)
    # then
    assert [globex.get(url).status_code for url in org_pages(story)] == [404] * 6
    assert acme.get(timeline_url(story, story.secret)).status_code == 404
    secret_version = versions(story.secret)[0]
    diff = (
        reverse("audit:diff", args=["acme", DEPARTMENT, story.fin.pk]) + f"?from={secret_version}&to={secret_version}"
    )
    assert acme.get(diff).status_code == 404
    assert acme.get(reverse("audit:changes", args=["globex"])).status_code == 404


def test_the_organization_picker_lists_where_the_user_may_read_history(story):
    # when
    response = signed_in(story.auditor).get("/audit/")
    nothing = signed_in(story.member).get("/audit/")
    # then
    assert response.status_code == 200
    assert response.context["organizations"] == [story.acme]
    assert '<a href="/audit/acme/">Acme</a>' in response.content.decode()
    assert "Globex" not in response.content.decode()
    assert nothing.context["organizations"] == []
    assert "You may not read the history of any organization." in nothing.content.decode()


def test_the_change_search_page_lists_and_filters(story):
    # when
    response = signed_in(story.auditor).get(
        reverse("audit:changes", args=["acme"]), {"model": DEPARTMENT, "action": "updated"}
    )
    # then
    assert response.status_code == 200
    assert [(c.object_id, c.action, c.user.display, c.reason) for c in response.context["changes"]] == [
        (str(story.fin.pk), "updated", "Eve Editor <eve@example.com>", "Reorganisation")
    ]
    link = reverse("audit:timeline", args=["acme", DEPARTMENT, story.fin.pk])
    html = response.content.decode()
    assert (
        "<tr>\n        <td>2025-03-03 11:00:00</td>\n"
        f'        <td><a href="{link}">Department #{story.fin.pk}</a></td>\n'
        f"        <td>Updated</td>\n        <td>{EVE}</td>\n        <td>Name, Manager</td>\n"
        "        <td>Reorganisation</td>\n        <td>api · 203.0.113.7</td>\n      </tr>"
    ) in html
    assert response.context["next_url"] is None
    assert "Globex secret" not in html


def test_the_change_search_page_rejects_bad_filters(story):
    response = signed_in(story.auditor).get(reverse("audit:changes", args=["acme"]), {"field": "x;y", "cursor": "zz"})
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "field": ["Use a field name such as name or parent."],
        "cursor": ["This page link is not valid."],
    }


def test_the_change_search_pages_with_a_next_link(story, monkeypatch):
    # given: pages of two
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    client = signed_in(story.auditor)
    url = reverse("audit:changes", args=["acme"]) + f"?model={DEPARTMENT}"
    # when
    seen: list[tuple[str, str]] = []
    while url:
        response = client.get(url)
        seen.extend((change.object_id, change.action) for change in response.context["changes"])
        next_url = response.context["next_url"]
        if next_url:
            assert (
                f'<a href="{next_url.replace("&", "&amp;")}" rel="next">Older changes</a>' in response.content.decode()
            )
        url = reverse("audit:changes", args=["acme"]) + next_url if next_url else None
    # then
    fin, hq = str(story.fin.pk), str(story.hq.pk)
    assert seen == [(fin, "soft_deleted"), (fin, "updated"), (fin, "created"), (hq, "created")]


def test_the_change_search_page_costs_the_same_queries_at_10_and_50_versions(story, django_assert_num_queries):
    client = signed_in(story.auditor)
    for count in (10, 50):
        with audit_context(actor=story.editor):
            department = DepartmentFactory(organization=story.acme, code=f"P{count}")
            for number in range(count - 1):
                department.name = f"Name {number}"
                department.save()
        url = reverse("audit:changes", args=["acme"]) + f"?model={DEPARTMENT}&object_id={department.pk}"
        client.get(url)
        # the user (the session is in the cache), organization, the form's people, the UNION ALL, the page's people
        with django_assert_num_queries(5):
            response = client.get(url)
        assert len(response.context["changes"]) == count


def test_the_timeline_of_a_soft_deleted_object(story):
    # when
    response = signed_in(story.auditor).get(timeline_url(story, story.fin))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<h1>Department #{story.fin.pk}: FIN — Finance and Control</h1>" in html
    assert [(v.action, v.reason) for v in response.context["page"].versions] == [
        ("soft_deleted", "Merged into HQ"),
        ("updated", "Reorganisation"),
        ("created", ""),
    ]
    assert (
        '<li>Name: <span class="audit-old">Finance</span> → <span class="audit-new">Finance and Control</span></li>'
        in html
    )
    assert f'<li>Manager: <span class="audit-old">—</span> → <span class="audit-new">{EVE}</span></li>' in html
    assert (
        '<li>Parent: <span class="audit-old">—</span> → <span class="audit-new">HQ — Headquarters</span></li>' in html
    )


def test_the_timeline_of_a_hard_deleted_object(story):
    # given
    with dated(FIN_DELETED + timedelta(days=1)):
        Department.all_objects.get(pk=story.fin.pk).delete()
    # when
    response = signed_in(story.auditor).get(timeline_url(story, story.fin))
    # then
    assert response.status_code == 200
    assert [v.action for v in response.context["page"].versions] == ["deleted", "soft_deleted", "updated", "created"]
    assert "<td>Deleted</td>\n<td>System</td>" in response.content.decode()


def test_the_diff_page_shows_old_and_new_values_by_name(story):
    # given
    created, _renamed, deleted = versions(story.fin)
    # when: chosen newest first — the page orders them
    response = signed_in(story.auditor).get(
        reverse("audit:diff", args=["acme", DEPARTMENT, story.fin.pk]), {"from": deleted, "to": created}
    )
    # then
    assert response.status_code == 200
    deleted_at = story.fin.deleted_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("Deleted at", "—", deleted_at),
        ("Deleted by", "—", EVE),
        ("Name", "Finance", "Finance and Control"),
        ("Manager", "—", EVE),
    ]
    html = response.content.decode()
    for label, old, new in rows:
        assert f'<tr><th>{label}</th><td class="audit-old">{old}</td><td class="audit-new">{new}</td></tr>' in html
    assert html.count('<td class="audit-old">') == 4
    assert [(c.label, c.old_display) for c in response.context["diff"].changes][2] == ("Name", "Finance")


def test_the_diff_page_needs_two_versions_of_the_object(story):
    client = signed_in(story.auditor)
    url = reverse("audit:diff", args=["acme", DEPARTMENT, story.fin.pk])
    assert client.get(url).status_code == 404
    assert client.get(url, {"from": versions(story.fin)[0], "to": versions(story.hq)[0]}).status_code == 404


def test_the_as_of_page_shows_the_values_at_that_moment(story):
    # when
    response = signed_in(story.auditor).get(
        reverse("audit:as_of", args=["acme", DEPARTMENT, story.fin.pk]), {"moment": "2025-03-03T12:00"}
    )
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        '<p id="state">At 2025-03-03 12:00:00 UTC this object existed '
        f"(version of 2025-03-03 11:00:00, updated by {EVE}).</p>"
    ) in html
    expected = {
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
    for label, value in expected.items():
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in html
    assert html.count("</td></tr>") == len(expected)
    assert response.context["result"].version.history_date == FIN_RENAMED


@pytest.mark.parametrize(
    ("moment", "state"),
    [
        ("2025-03-02T09:59", "did not exist yet"),
        ("2025-03-04T12:00", "deleted (restorable)"),
        ("2025-03-06T00:00", "deleted"),
    ],
)
def test_the_as_of_page_says_when_the_object_did_not_exist(story, moment, state):
    # given: FIN deleted for good on 5 March
    with dated(FIN_DELETED + timedelta(days=1)):
        Department.all_objects.get(pk=story.fin.pk).delete()
    # when
    response = signed_in(story.auditor).get(
        reverse("audit:as_of", args=["acme", DEPARTMENT, story.fin.pk]), {"moment": moment}
    )
    # then
    assert response.status_code == 200
    assert response.context["result"].state_display == state
    assert f"this object {state}" in response.content.decode()


def test_the_as_of_page_rejects_a_bad_moment(story):
    response = signed_in(story.auditor).get(
        reverse("audit:as_of", args=["acme", DEPARTMENT, story.fin.pk]), {"moment": "yesterday"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors == {"moment": ["Enter a valid date/time."]}


def test_the_security_events_page_lists_and_filters(story):
    # given
    event = record_event(
        SecurityEventKind.ROLE_ASSIGNED,
        organization=story.acme,
        actor=story.editor,
        target_user=story.member,
        data={"role": "member"},
    )
    record_event(SecurityEventKind.ROLE_ASSIGNED, organization=story.globex, actor=story.globex_auditor)
    # when
    response = signed_in(story.auditor).get(
        reverse("audit:events", args=["acme"]), {"kind": "role_assigned", "actor": story.editor.pk}
    )
    # then
    assert response.status_code == 200
    assert [(row.event.pk, row.actor.display, row.target.display) for row in response.context["rows"]] == [
        (event.pk, "Eve Editor <eve@example.com>", "Max Member <max@example.com>")
    ]
    html = response.content.decode()
    assert (
        f"<td>Role assigned</td>\n        <td>{EVE}</td>\n        <td>Max Member &lt;max@example.com&gt;</td>" in html
    )
    assert "<td>role: member</td>" in html


def test_the_csv_export_streams_the_search_and_is_recorded(story):
    # when
    response = signed_in(story.auditor).get(reverse("audit:export", args=["acme"]), {"model": DEPARTMENT})
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="changes-acme-')
    fin, hq = story.fin.pk, story.hq.pk
    assert b"".join(response.streaming_content).decode() == (
        "When (UTC),Model,Object id,Action,Changed by,Reason,Changed fields,Client address,Request id,Source\r\n"
        f"2025-03-04 12:00:00.000000,{DEPARTMENT},{fin},Deleted (restorable),Eve Editor <eve@example.com>,"
        "Merged into HQ,Deleted at; Deleted by,203.0.113.7,req-story,api\r\n"
        f"2025-03-03 11:00:00.000000,{DEPARTMENT},{fin},Updated,Eve Editor <eve@example.com>,"
        "Reorganisation,Name; Manager,203.0.113.7,req-story,api\r\n"
        f"2025-03-02 10:00:00.000000,{DEPARTMENT},{fin},Created,Eve Editor <eve@example.com>,,"
        "Organization; Code; Name; Parent; Path; Depth; Display order,203.0.113.7,req-story,api\r\n"
        f"2025-03-01 09:00:00.000000,{DEPARTMENT},{hq},Created,Eve Editor <eve@example.com>,"
        "Initial setup,Organization; Code; Name; Path; Depth; Display order,203.0.113.7,req-story,api\r\n"
    )
    event = SecurityEvent.objects.get(kind=SecurityEventKind.DATA_EXPORTED)
    assert (event.organization_id, event.actor_id, event.data) == (
        story.acme.pk,
        story.auditor.pk,
        {"export": "changes", "format": "csv", "filters": {"model": DEPARTMENT}},
    )


def test_the_csv_export_defuses_formulas(story):
    # given: a reason typed as a spreadsheet formula
    with audit_context(actor=story.editor, reason='=HYPERLINK("http://evil")'):
        hq = Department.objects.get(pk=story.hq.pk)
        hq.name = "Head office"
        hq.save()
    # when
    response = signed_in(story.auditor).get(
        reverse("audit:export", args=["acme"]), {"model": DEPARTMENT, "action": "updated", "object_id": hq.pk}
    )
    # then
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[1].split(",")[5] == '"\'=HYPERLINK(""http://evil"")"'


# --- The admin's history view ---------------------------------------------------------------------------------------


@pytest.fixture
def acme_staff(story) -> User:
    staff = MembershipFactory(
        organization=story.acme, role="org_admin", user__is_staff=True, user__email="staff@example.com"
    ).user
    return staff


def test_staff_see_the_admin_history_of_their_organizations_objects_only(story, acme_staff):
    client = signed_in(acme_staff)
    # when
    own = client.get(reverse("admin:organizations_department_history", args=[story.hq.pk]))
    deleted = client.get(reverse("admin:organizations_department_history", args=[story.fin.pk]))
    other = client.get(reverse("admin:organizations_department_history", args=[story.secret.pk]))
    other_version = client.get(
        reverse("admin:organizations_department_simple_history", args=[story.secret.pk, versions(story.secret)[0]])
    )
    # then
    assert own.status_code == 200
    assert "Initial setup" in own.content.decode()
    assert deleted.status_code == 200
    assert other.status_code == 404
    assert other_version.status_code == 404


def test_the_admin_never_reverts_from_a_version(story, acme_staff):
    # given
    client = signed_in(acme_staff)
    url = reverse("admin:organizations_department_simple_history", args=[story.hq.pk, versions(story.hq)[0]])
    # when
    shown = client.get(url)
    posted = client.post(url, {"code": "HQ", "name": "Reverted", "display_order": "0", "_save": "Save"})
    # then
    assert shown.status_code == 200
    assert posted.status_code == 403
    assert Department.objects.get(pk=story.hq.pk).name == "Headquarters"


def test_an_admin_change_records_the_reason_given(story, acme_staff):
    # given
    client = signed_in(acme_staff)
    url = reverse("admin:organizations_department_change", args=[story.hq.pk])
    form = client.get(url)
    assert '<input type="text" name="_change_reason" id="id__change_reason" maxlength="255"' in form.content.decode()
    # when
    response = client.post(
        url,
        {
            "code": "HQ",
            "name": "Head office",
            "parent": "",
            "manager": "",
            "headcount_limit": "",
            "display_order": "0",
            "_change_reason": "Ticket 7: rebranding",
            "_save": "Save",
        },
    )
    # then
    assert response.status_code == 302
    latest = Department.history.filter(id=story.hq.pk).order_by("-history_id").first()
    assert (latest.name, latest.history_change_reason, latest.history_user_id, latest.history_source) == (
        "Head office",
        "Ticket 7: rebranding",
        acme_staff.pk,
        "admin",
    )
