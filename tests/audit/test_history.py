"""Every version says who changed what, where, from where and why; secrets never reach the audit trail."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as account_services
from audit.context import SYSTEM_SUBJECT, Source, audit_context
from audit.events import REDACTED, record_event
from audit.models import Action, SecurityEvent, SecurityEventKind
from organizations import services as organization_services
from organizations.models import Department, Organization
from rbac import services as rbac_services
from rbac.models import RoleAssignment
from tests.accounts.factories import PASSWORD, UserFactory
from tests.audit.scan import columns_containing
from tests.organizations.factories import DepartmentFactory, MembershipFactory
from tests.rbac.factories import system_role

pytestmark = pytest.mark.django_db

DEPARTMENTS = "/api/v1/organizations/acme/departments/"


def latest_version(model, pk):
    return model.history.filter(id=pk).order_by("-history_id").first()


def test_a_change_through_the_api_records_who_where_from_where_and_why(client_for, admin_member, department):
    # given
    admin_member.oidc_subject = "kc-subject-1234"
    admin_member.save()

    # when
    response = client_for(admin_member).patch(
        f"{DEPARTMENTS}{department.pk}/",
        {"name": "Head office"},
        format="json",
        HTTP_X_CHANGE_REASON="Rebranding ticket 42",
        HTTP_X_REQUEST_ID="req-0123456789",
        REMOTE_ADDR="203.0.113.7",
    )

    # then
    assert response.status_code == 200, response.json()
    assert response["X-Request-ID"] == "req-0123456789"
    version = latest_version(Department, department.pk)
    assert {
        "name": version.name,
        "history_type": version.history_type,
        "history_action": version.history_action,
        "history_user_id": version.history_user_id,
        "history_user_subject": version.history_user_subject,
        "history_organization_id": version.history_organization_id,
        "history_ip": version.history_ip,
        "history_request_id": version.history_request_id,
        "history_change_reason": version.history_change_reason,
        "history_source": version.history_source,
        "changed_fields": version.changed_field_names,
    } == {
        "name": "Head office",
        "history_type": "~",
        "history_action": Action.UPDATED,
        "history_user_id": admin_member.pk,
        "history_user_subject": "kc-subject-1234",
        "history_organization_id": department.organization_id,
        "history_ip": "203.0.113.7",
        "history_request_id": "req-0123456789",
        "history_change_reason": "Rebranding ticket 42",
        "history_source": Source.API,
        "changed_fields": ["name"],
    }


def create_organization_command(*args: str) -> Organization:
    call_command(
        "create_organization", "--slug", "initech", "--code", "INITECH", "--name", "Initech", *args, stdout=StringIO()
    )
    return Organization.objects.get(slug="initech")


def test_a_command_run_with_an_actor_is_attributed_to_that_person(db):
    # given
    operator = UserFactory(email="operator@example.com", oidc_subject="kc-operator")

    # when
    organization = create_organization_command("--actor", "OPERATOR@example.com", "--reason", "new customer")

    # then
    version = latest_version(Organization, organization.pk)
    assert (
        version.history_type,
        version.history_action,
        version.history_user_id,
        version.history_user_subject,
        version.history_source,
        version.history_change_reason,
        version.history_organization_id,
    ) == ("+", Action.CREATED, operator.pk, "kc-operator", Source.COMMAND, "new customer", organization.pk)


def test_a_command_run_without_an_actor_is_attributed_to_the_system(db):
    organization = create_organization_command()

    version = latest_version(Organization, organization.pk)
    assert (version.history_user_id, version.history_user_subject, version.history_source) == (
        None,
        SYSTEM_SUBJECT,
        Source.COMMAND,
    )


def test_soft_delete_restore_and_hard_delete_are_recorded_as_such(admin_member, organization):
    # given
    department = DepartmentFactory(organization=organization, code="OPS")
    assignment = rbac_services.role_assign(
        actor=None, organization=organization, user=admin_member, role=system_role("auditor")
    )

    assignment_pk = assignment.pk

    # when: (outside a request, the audit context names the actor, as the middleware and commands do)
    with audit_context(actor=admin_member):
        organization_services.department_delete(actor=admin_member, department=department)
        organization_services.department_restore(actor=admin_member, department=department)
    rbac_services.role_revoke(actor=None, assignment=assignment)

    # then
    assert list(
        Department.history.filter(id=department.pk)
        .order_by("history_id")
        .values_list("history_type", "history_action", "history_user_id")
    ) == [
        ("+", Action.CREATED, None),
        ("~", Action.SOFT_DELETED, admin_member.pk),
        ("~", Action.RESTORED, admin_member.pk),
    ]
    assert not RoleAssignment.objects.filter(pk=assignment_pk).exists()
    assert list(
        RoleAssignment.history.filter(id=assignment_pk)
        .order_by("history_id")
        .values_list("history_type", "history_action", "history_organization_id")
    ) == [("+", Action.CREATED, organization.pk), ("-", Action.DELETED, organization.pk)]


def test_a_deleted_object_keeps_its_history(organization):
    assignment = RoleAssignment.objects.create(
        organization=organization, user=UserFactory(), role=system_role("member")
    )
    pk = assignment.pk
    assignment.delete()

    assert RoleAssignment.history.filter(id=pk).count() == 2
    assert latest_version(RoleAssignment, pk).instance.role == system_role("member")


def test_a_subtree_move_records_a_version_of_every_moved_department(admin_member, tree):
    # when: FIN (with AP below it) moves under ENG
    with audit_context(reason="reorganisation", actor=admin_member):
        organization_services.department_update(actor=admin_member, department=tree["FIN"], parent=tree["ENG"])

    # then
    fin = latest_version(Department, tree["FIN"].pk)
    ap = latest_version(Department, tree["AP"].pk)
    assert (fin.path, fin.depth, fin.history_user_id, fin.history_change_reason) == (
        "HQ/ENG/FIN/",
        3,
        admin_member.pk,
        "reorganisation",
    )
    assert "parent_id" in fin.changed_field_names
    assert (ap.path, ap.depth, ap.history_action, ap.changed_field_names, ap.history_user_id) == (
        "HQ/ENG/FIN/AP/",
        4,
        Action.UPDATED,
        ["path", "depth"],
        admin_member.pk,
    )
    assert (ap.history_change_reason, ap.history_organization_id) == ("reorganisation", tree["AP"].organization_id)
    # HQ and ENG did not move: no new version
    assert Department.history.filter(id=tree["HQ"].pk).count() == 1
    assert Department.history.filter(id=tree["ENG"].pk).count() == 1


def test_saving_an_audited_object_costs_exactly_one_insert(department):
    # given: the same save with and without history
    department = Department.objects.get(pk=department.pk)
    department.name = "Without history"
    department.skip_history_when_saving = True  # simple-history's switch for one save
    with CaptureQueriesContext(connection) as without_history:
        department.save()
    department = Department.objects.get(pk=department.pk)
    department.name = "With history"

    # when
    with CaptureQueriesContext(connection) as with_history:
        department.save()

    # then
    assert len(with_history) == len(without_history) + 1
    extra = [query["sql"] for query in with_history.captured_queries[len(without_history) :]]
    assert len(extra) == 1
    assert extra[0].startswith('INSERT INTO "organizations_historicaldepartment"')


def test_a_save_of_an_audited_object_runs_two_statements(department, django_assert_num_queries):
    department = Department.objects.get(pk=department.pk)
    department.name = "Renamed"

    with django_assert_num_queries(2) as captured:
        department.save()

    assert [query["sql"].split(" ")[0] for query in captured.captured_queries] == ["UPDATE", "INSERT"]


def test_no_version_or_event_stores_a_password_hash(organization):
    # given
    user = UserFactory(email="keeper@example.com")
    MembershipFactory(organization=organization, user=user)

    # when
    account_services.user_change_password(user=user, current_password=PASSWORD, new_password="an0ther-Secret-phrase")
    user.refresh_from_db()

    # then: the hash is only in the account row itself and its password history (never in a version or an event)
    hash_value = user.password.split("$")[-1]
    assert columns_containing(hash_value) == ["accounts_passwordhistory.password", "accounts_user.password"]
    assert "password" not in {field.name for field in user.history.model._meta.get_fields()}
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.PASSWORD_CHANGED, target_user_id=user.pk).exists()


def test_sensitive_keys_in_event_data_are_redacted(organization):
    event = record_event(
        SecurityEventKind.ROLE_CHANGED,
        organization=organization,
        data={
            "password": "hunter2",
            "api_token": "tok-123",
            "nested": {"client_secret": "s3cr3t", "privateKey": "pk", "name": "ops"},
            "items": [{"sessionid": "abc"}, "plain"],
            "role": "auditor",
        },
    )

    stored = SecurityEvent.objects.get(pk=event.pk).data
    assert stored == {
        "password": REDACTED,
        "api_token": REDACTED,
        "nested": {"client_secret": REDACTED, "privateKey": REDACTED, "name": "ops"},
        "items": [{"sessionid": REDACTED}, "plain"],
        "role": "auditor",
    }
    for secret in ("hunter2", "tok-123", "s3cr3t"):
        assert columns_containing(secret) == []
