"""The auditor's pages under /audit/ (and the admin's history view), rendered through the Django test client."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.http import QueryDict
from django.test import Client
from django.urls import clear_url_caches, reverse

from accounts.models import User
from audit import views
from audit.context import Source, audit_context
from audit.events import record_event
from audit.models import SecurityEvent, SecurityEventKind
from organizations.models import Department
from tasks import services as task_services
from tasks.models import TaskPriority
from tests.accounts.factories import PASSWORD, SuperuserFactory
from tests.audit.audit_story import FIN_DELETED, FIN_RENAMED, dated, story, versions
from tests.organizations.factories import DepartmentFactory, MembershipFactory

pytestmark = pytest.mark.django_db
__all__ = ["story"]

DEPARTMENT = "organizations.department"
EVE = "Eve Editor &lt;eve@example.com&gt;"


def reload_urls() -> None:
    """The URLs again after a change of OIDC_ISSUER (the provider's routes exist only with an issuer)."""
    import erp.urls

    importlib.reload(erp.urls)
    clear_url_caches()


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
        assert response["Location"] == "/audit/login/?" + login.urlencode(safe="/")


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
    assert denials.filter(actor_id=outsider.pk, organization=story.acme).count() == 6


def test_an_unknown_organization_on_the_audit_pages_is_no_denial(story, outsider):
    # when: a signed-in person names an organization that does not exist
    response = signed_in(outsider).get(reverse("audit:changes", args=["no-such-organization"]))
    # then
    assert response.status_code == 404
    assert not SecurityEvent.objects.filter(kind=SecurityEventKind.PERMISSION_DENIED, actor_id=outsider.pk).exists()


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
    # then
    assert response.status_code == 200
    assert response.context["organizations"] == [story.acme]
    assert '<a href="/audit/acme/">Acme</a>' in response.content.decode()
    assert "Globex" not in response.content.decode()


def test_someone_who_is_an_auditor_nowhere_gets_the_403_page_not_an_empty_list(story):
    # when
    response = signed_in(story.member).get("/audit/")
    # then
    assert response.status_code == 403
    assert response.templates[0].name == "audit/403.html"
    html = response.content.decode()
    assert "<h1>Access denied</h1>" in html
    assert '<p class="errornote">You may not read the history of any organization.</p>' in html
    assert '<strong id="audit-user-name">Max Member</strong>' in html
    denial = SecurityEvent.objects.get(kind=SecurityEventKind.PERMISSION_DENIED, actor_id=story.member.pk)
    assert (denial.organization_id, denial.data["path"], denial.data["status"]) == (None, "/audit/", 403)


def test_a_refusal_on_an_organization_page_is_the_403_page(story):
    # when
    response = signed_in(story.member).get(reverse("audit:changes", args=["acme"]))
    # then
    assert response.status_code == 403
    assert response.templates[0].name == "audit/403.html"
    assert '<p class="errornote">You may not read this organization&#x27;s history.</p>' in response.content.decode()


# --- Signing in and out ---------------------------------------------------------------------------------------------


def test_an_auditor_who_is_not_staff_signs_in_at_the_audit_sign_in_page(story):
    # given: the auditor is not staff; the admin's sign-in would refuse them
    client = Client()
    assert not story.auditor.is_staff
    url = reverse("audit:changes", args=["acme"])
    page = client.get("/audit/login/", {"next": url})
    assert page.status_code == 200
    assert 'action="/audit/login/"' in page.content.decode()
    assert f'<input type="hidden" name="next" value="{url}">' in page.content.decode()
    # when
    response = client.post("/audit/login/", {"username": "ADA@example.com", "password": PASSWORD, "next": url})
    # then
    assert (response.status_code, response["Location"]) == (302, url)
    assert client.get(url).status_code == 200
    assert client.get("/audit/login/")["Location"] == "/audit/"  # already signed in


def test_the_audit_sign_in_refuses_a_wrong_password_without_speaking_of_staff(story):
    # when
    client = Client()
    response = client.post("/audit/login/", {"username": "ada@example.com", "password": "wrong", "next": "/audit/"})
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "Please enter a correct email address and password." in html
    assert "staff account" not in html
    assert client.get("/audit/").status_code == 302


def test_the_audit_sign_in_goes_through_the_account_lockout(story, settings):
    # given: as many wrong passwords as the limit allows
    client = Client()
    for _attempt in range(settings.LOGIN_FAILURE_LIMIT):
        client.post("/audit/login/", {"username": "ada@example.com", "password": "wrong"})
    # when: then the right one
    response = client.post("/audit/login/", {"username": "ada@example.com", "password": PASSWORD})
    # then: the form answers with the lock, and nobody is signed in
    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()
    assert client.get("/audit/").status_code == 302
    # one lock: in the installation's log and in the log of ada's organization
    locks = SecurityEvent.objects.filter(kind=SecurityEventKind.ACCOUNT_LOCKED, target_user_id=story.auditor.pk)
    assert sorted(locks.values_list("chain", flat=True)) == [0, story.acme.pk]


def test_the_audit_sign_in_offers_the_identity_provider_when_one_is_configured(story, settings):
    # given
    settings.OIDC_ISSUER = "https://login.example.com/realms/itdo"
    settings.OIDC_PROVIDER_NAME = "Acme SSO"
    reload_urls()
    try:
        # when
        html = Client().get("/audit/login/", {"next": "/audit/acme/"}).content.decode()
    finally:
        settings.OIDC_ISSUER = ""
        reload_urls()
    # then
    assert '<a class="button" href="/oidc/authenticate/?next=/audit/acme/">Sign in with Acme SSO</a>' in html
    assert "Sign in with" not in Client().get("/audit/login/").content.decode()


def test_the_user_menu_names_the_user_signs_out_and_links_the_admin_for_staff_only(story):
    # given
    auditor = signed_in(story.auditor)
    story.editor.is_staff = True
    story.editor.save()
    # when
    page = auditor.get("/audit/").content.decode()
    staff_page = signed_in(story.editor).get("/audit/").content.decode()
    # then
    assert '<strong id="audit-user-name">Ada Auditor</strong>' in page
    assert '<form id="audit-logout-form" method="post" action="/audit/logout/">' in page
    assert 'href="/admin/"' not in page  # not even the site header: it leads to the audit trail
    assert '<a href="/admin/">Back office (admin)</a>' in staff_page
    # when: signing out is a POST
    assert auditor.get("/audit/logout/").status_code == 405
    response = auditor.post("/audit/logout/")
    # then
    assert (response.status_code, response["Location"]) == (302, "/audit/login/")
    assert auditor.get("/audit/").status_code == 302


def test_the_landing_page_and_the_admin_link_to_the_audit_pages(story, acme_staff):
    # when
    home = Client().get("/").content.decode()
    admin_index = signed_in(acme_staff).get("/admin/").content.decode()
    # then
    assert '<a href="/audit/">Audit trail</a>' in home
    assert '<a href="/audit/">Audit trail</a> /' in admin_index
    assert '<a href="/audit/login/">audit trail</a>' in Client().get("/admin/login/").content.decode()


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


# --- Values as a person reads them ----------------------------------------------------------------------------------


@pytest.fixture
def reprioritised_task(story):
    """An Acme task created high with the label backend, then made urgent and labelled backend and ops — by Eve, then
    by a platform operator who is no member of Acme."""
    operator = SuperuserFactory(full_name="Olga Operator", email="olga@example.com")
    with audit_context(source=Source.API, actor=story.editor):
        task = task_services.task_create(
            actor=story.editor,
            organization=story.acme,
            title="Rotate the keys",
            priority=TaskPriority.HIGH,
            labels=["backend"],
        )
        task = task_services.task_update(actor=story.editor, task=task, priority=TaskPriority.URGENT)
    with audit_context(source=Source.ADMIN, actor=operator):
        task_services.task_update(actor=operator, task=task, labels=["ops", "backend"])
    return task, operator


def test_the_timeline_shows_choices_by_label_and_labels_as_a_list(story, reprioritised_task):
    task, _operator = reprioritised_task
    # when
    response = signed_in(story.auditor).get(reverse("audit:timeline", args=["acme", "tasks.task", task.pk]))
    # then
    html = response.content.decode()
    assert '<li>Priority: <span class="audit-old">High</span> → <span class="audit-new">Urgent</span></li>' in html
    assert (
        '<li>Labels: <span class="audit-old">backend</span> → <span class="audit-new">backend, ops</span></li>' in html
    )
    assert ",backend," not in html


def test_the_changed_by_filter_lists_the_platform_operator_who_made_changes(story, reprioritised_task):
    # given: another platform operator who never acted in Acme
    _task, operator = reprioritised_task
    SuperuserFactory(full_name="Idle Operator", email="idle@example.com")
    # when
    response = signed_in(story.auditor).get(reverse("audit:changes", args=["acme"]), {"user": operator.pk})
    # then
    assert response.status_code == 200
    assert response.context["form"].fields["user"].choices == [
        ("", "Anyone"),
        (str(story.auditor.pk), "Ada Auditor <ada@example.com>"),
        (str(story.editor.pk), "Eve Editor <eve@example.com>"),
        (str(story.member.pk), "Max Member <max@example.com>"),
        (str(operator.pk), "Olga Operator <olga@example.com>"),
    ]
    assert [(change.model.label, change.user.display) for change in response.context["changes"]] == [
        ("tasks.task", "Olga Operator <olga@example.com>")
    ]


def test_event_details_read_as_text_not_as_python(story):
    # given
    record_event(
        SecurityEventKind.ROLE_ASSIGNED,
        organization=story.acme,
        actor=story.editor,
        data={"role": "auditor", "department": None, "valid_until": "", "scope": {"whole_organization": True}},
    )
    # when
    html = signed_in(story.auditor).get(reverse("audit:events", args=["acme"])).content.decode()
    # then
    assert "<td>role: auditor; scope: (whole organization: Yes); department: —; valid until: —</td>" in html
    assert "None" not in html
    assert "{" not in html.split('id="events"')[1]


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("name", ["audit-old", "audit-new"])
def test_old_and_new_values_are_dark_text_on_a_light_highlight(name):
    # given: the style sheet the audit pages and the admin's history load
    css = (Path(settings.BASE_DIR) / "static" / "erp" / "admin.css").read_text()
    rule = re.search(rf"^\.{name} \{{([^}}]*)\}}", css, re.MULTILINE)
    assert rule is not None
    colour = re.search(r"(?<![-\w])color: (#[0-9a-f]{6})", rule.group(1))
    background = re.search(r"background: (#[0-9a-f]{6})", rule.group(1))
    assert colour is not None
    assert background is not None
    # then: WCAG contrast of the text against its highlight
    light, dark = sorted([luminance(colour.group(1)), luminance(background.group(1))], reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 7


def test_the_admin_history_shows_labels_and_links_only_the_accounts_the_viewer_may_open(story, reprioritised_task):
    # given: Acme's staff administrator, who may open Acme's people but not the platform operator
    task, operator = reprioritised_task
    staff = MembershipFactory(organization=story.acme, role="org_admin", user__is_staff=True).user
    # when
    response = signed_in(staff).get(reverse("admin:tasks_task_history", args=[task.pk]))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        '<li><strong>Priority:</strong> <span class="audit-old">High</span> → '
        '<span class="audit-new">Urgent</span></li>' in html
    )
    assert (
        '<li><strong>Labels:</strong> <span class="audit-old">backend</span> → '
        '<span class="audit-new">backend, ops</span></li>' in html
    )
    editor_url = reverse("admin:accounts_user_change", args=[story.editor.pk])
    assert f'<td class="history-author"><a href="{editor_url}">Eve Editor &lt;eve@example.com&gt;</a></td>' in html
    assert '<td class="history-author">Olga Operator &lt;olga@example.com&gt;</td>' in html
    assert reverse("admin:accounts_user_change", args=[operator.pk]) not in html


def test_a_platform_operator_sees_the_index_even_before_any_organization_exists(db):
    # when
    response = signed_in(SuperuserFactory()).get("/audit/")
    # then
    assert response.status_code == 200
    assert "<p>There is no organization yet.</p>" in response.content.decode()
