"""The auditors' pages and the admin in headless Chromium: signing in as an auditor who is not staff, reading the
timeline and the diff (old and new values at a WCAG contrast of at least 4.5:1), and the admin's change lists and
history at 1400 pixels. Each page is saved as a screenshot (see ``screenshots_dir``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from accounts.models import User
from audit.context import Source, audit_context
from tasks import services
from tasks.models import Project, Task, TaskPriority
from tests.browser.conftest import console_errors, screenshot
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.tasks.factories import ProjectFactory, ProjectMemberFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
TASK_LABEL = "tasks.task"
MINIMUM_CONTRAST = 4.5

# The WCAG 2 contrast ratio of an element's text against the background it is drawn on: the element's and its
# ancestors' background colours composited over white (the page's canvas), as getComputedStyle reports them.
CONTRAST_SCRIPT = """
const element = arguments[0];
const parse = (css) => {
  const parts = css.match(/rgba?\\(([^)]*)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return {rgb: parts.slice(0, 3), alpha: parts.length > 3 ? parts[3] : 1};
};
const layers = [];
for (let node = element; node; node = node.parentElement) {
  const colour = parse(getComputedStyle(node).backgroundColor);
  if (colour.alpha > 0) layers.push(colour);
  if (colour.alpha >= 1) break;
}
let background = [255, 255, 255];
for (const layer of layers.reverse()) {
  background = background.map((value, index) => layer.rgb[index] * layer.alpha + value * (1 - layer.alpha));
}
const text = parse(getComputedStyle(element).color);
const foreground = text.rgb.map((value, index) => value * text.alpha + background[index] * (1 - text.alpha));
const luminance = (rgb) => {
  const [r, g, b] = rgb.map((value) => {
    const channel = value / 255;
    return channel <= 0.03928 ? channel / 12.92 : Math.pow((channel + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const [light, dark] = [luminance(foreground), luminance(background)].sort((a, b) => b - a);
return (light + 0.05) / (dark + 0.05);
"""


@dataclass
class Scene:
    auditor: User
    staff: User
    project: Project
    task: Task


@pytest.fixture
def scene(organization) -> Scene:
    """Acme: an auditor who is not staff, a staff organization admin, and a task whose priority went from high to
    urgent and whose labels changed, in a project whose columns are long enough to fill a change list."""
    auditor = MembershipFactory(
        organization=organization, role="auditor", user__full_name="Ada Auditor", user__email="ada@example.com"
    ).user
    staff = MembershipFactory(
        organization=organization,
        role="org_admin",
        user__is_staff=True,
        user__full_name="Sam Staff",
        user__email="sam@example.com",
    ).user
    for person in (auditor, staff):
        person.set_password(PASSWORD)
        person.save()
    department = DepartmentFactory(organization=organization, code="ENG", name="Engineering and Platform Operations")
    project = ProjectFactory(
        organization=organization,
        department=department,
        code="PLATFORM-MIGRATION-2026",
        name="Migration of the customer platform to the new data centre",
        manager=staff,
    )
    ProjectMemberFactory(project=project, user=staff)
    with audit_context(source=Source.API, actor=staff):
        task = services.task_create(
            actor=staff,
            organization=organization,
            title="Move the invoicing database to the new cluster without downtime",
            project=project,
            priority=TaskPriority.HIGH,
            labels=["backend"],
            due_date=date(2026, 12, 31),
        )
        services.task_update(actor=staff, task=task, priority=TaskPriority.URGENT, labels=["backend", "ops"])
    for number in range(3):
        services.task_create(
            actor=staff,
            organization=organization,
            title=f"Follow-up {number}: rehearse the cut-over with the operations team and write the runbook",
            project=project,
            assignee=staff,
            due_date=date(2027, 1, 15),
        )
    return Scene(auditor=auditor, staff=staff, project=project, task=task)


def sign_in(browser: WebDriver, url: str, user: User) -> None:
    browser.get(url)
    browser.find_element(By.NAME, "username").send_keys(user.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait_until_left(browser, url)


def wait_until_left(browser: WebDriver, url: str) -> None:
    """Wait for the navigation a click started (the browser's URL no longer ``url``)."""
    WebDriverWait(browser, 15).until(lambda driver: driver.current_url != url)


def contrast(browser: WebDriver, element) -> float:
    return float(browser.execute_script(CONTRAST_SCRIPT, element))


def test_an_auditor_who_is_not_staff_reads_a_timeline_and_a_diff(
    browser: WebDriver, live_server, scene: Scene, screenshots_dir: Path
):
    # given: the timeline's address, opened before signing in
    timeline = live_server.url + reverse("audit:timeline", args=["acme", TASK_LABEL, scene.task.pk])
    assert not scene.auditor.is_staff
    # when: the page sends the auditor to the audit sign-in, and back
    browser.get(timeline)
    assert browser.current_url.startswith(live_server.url + "/audit/login/?next=")
    screenshot(browser, screenshots_dir, "audit-login")
    sign_in(browser, browser.current_url, scene.auditor)
    # then: the timeline, with the user menu, the labels and the priority as a person reads them
    assert browser.current_url == timeline
    # (the admin's header shows its text in capitals: the DOM's text is what was written)
    assert browser.find_element(By.ID, "audit-user-name").get_attribute("textContent") == "Ada Auditor"
    assert browser.find_element(By.CSS_SELECTOR, "#audit-logout-form button").get_attribute("textContent") == "Sign out"
    changes = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#timeline ul.audit-changes li")]
    assert "Priority: High → Urgent" in changes
    assert "Labels: backend → backend, ops" in changes
    values = browser.find_elements(By.CSS_SELECTOR, "#timeline .audit-old, #timeline .audit-new")
    assert len(values) >= 4
    for value in values:
        assert contrast(browser, value) >= MINIMUM_CONTRAST, value.text
    screenshot(browser, screenshots_dir, "audit-timeline")

    # when: the two versions are compared
    browser.find_element(
        By.CSS_SELECTOR, "#content-main form [type=submit][value='Compare the chosen versions']"
    ).click()
    wait_until_left(browser, timeline)
    # then
    assert "/diff/?" in browser.current_url
    rows = {
        row.find_element(By.TAG_NAME, "th").text: [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, "#diff tbody tr")
    }
    assert rows["Priority"] == ["High", "Urgent"]
    assert rows["Labels"] == ["backend", "backend, ops"]
    for value in browser.find_elements(By.CSS_SELECTOR, "#diff .audit-old, #diff .audit-new"):
        assert contrast(browser, value) >= MINIMUM_CONTRAST, value.text
    screenshot(browser, screenshots_dir, "audit-diff")

    # when: signing out
    diff = browser.current_url
    browser.find_element(By.CSS_SELECTOR, "#audit-logout-form button").click()
    wait_until_left(browser, diff)
    # then
    assert browser.current_url == live_server.url + "/audit/login/"
    assert console_errors(browser) == []


def test_a_staff_member_reads_the_admin_change_lists_and_a_history_at_1400_pixels(
    browser: WebDriver, live_server, scene: Scene, screenshots_dir: Path
):
    # given
    sign_in(browser, live_server.url + reverse("admin:login"), scene.staff)
    audit_link = browser.find_element(By.CSS_SELECTOR, "#user-tools a[href='/audit/']")
    assert audit_link.get_attribute("textContent") == "Audit trail"
    for name in ("tasks_task", "tasks_project", "organizations_department", "organizations_membership"):
        # when
        browser.get(live_server.url + reverse(f"admin:{name}_changelist"))
        # then: every column is inside the results area, none scrolled out of sight
        assert browser.execute_script("return window.innerWidth") == 1400
        results = browser.find_element(By.CSS_SELECTOR, "#changelist .results")
        widths = browser.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth]", results)
        assert widths[0] <= widths[1], (name, widths)
        right = browser.execute_script("return arguments[0].getBoundingClientRect().right", results)
        last_header = browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")[-1]
        assert browser.execute_script("return arguments[0].getBoundingClientRect().right", last_header) <= right + 1
        screenshot(browser, screenshots_dir, f"admin-changelist-{name}")

    # when
    browser.get(live_server.url + reverse("admin:tasks_task_history", args=[scene.task.pk]))
    # then
    changes = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#change-history ul.audit-changes li")]
    assert "Priority: High → Urgent" in changes
    assert "Labels: backend → backend, ops" in changes
    for value in browser.find_elements(By.CSS_SELECTOR, "#change-history .audit-old, #change-history .audit-new"):
        assert contrast(browser, value) >= MINIMUM_CONTRAST, value.text
    screenshot(browser, screenshots_dir, "admin-task-history")
    assert console_errors(browser) == []


def test_the_landing_page_and_redoc_load_without_a_blocked_or_missing_resource(
    browser: WebDriver, live_server, db, screenshots_dir: Path
):
    # when
    browser.get(live_server.url + "/")
    audit_link = browser.find_element(By.CSS_SELECTOR, "a[href='/audit/']").get_attribute("textContent")
    screenshot(browser, screenshots_dir, "home")
    browser.get(live_server.url + "/redoc/")
    footer = WebDriverWait(browser, 60).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "a[href='https://redocly.com/redoc/']")
    )
    # then: the Redocly logo is no remote image, the icon is found, the policy blocked nothing
    assert audit_link == "Audit trail"
    assert [(image.get_attribute("src") or "")[:5] for image in footer[0].find_elements(By.TAG_NAME, "img")] in (
        [],
        ["data:"],
    )
    assert console_errors(browser) == []
    screenshot(browser, screenshots_dir, "redoc")


def test_someone_who_is_an_auditor_nowhere_signs_in_and_sees_the_403_page(
    browser: WebDriver, live_server, organization, screenshots_dir: Path
):
    # given: a member without the right to read the history
    member = MembershipFactory(organization=organization, role="member", user__full_name="Max Member").user
    member.set_password(PASSWORD)
    member.save()
    # when
    sign_in(browser, live_server.url + "/audit/login/", member)
    # then
    assert browser.current_url == live_server.url + "/audit/"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Access denied"
    assert browser.find_element(By.CSS_SELECTOR, "p.errornote").text == (
        "You may not read the history of any organization."
    )
    assert browser.find_element(By.ID, "audit-user-name").get_attribute("textContent") == "Max Member"
    screenshot(browser, screenshots_dir, "audit-403")
