"""The API's failure modes: one JSON error body, and bad input of any kind is a 4xx — never a 500."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from django.test import Client

from erp.api.exceptions import exception_handler
from erp.exceptions import ConflictError
from organizations.models import Membership
from tests.api_helpers import (
    NOT_AUTHENTICATED,
    NOT_FOUND,
    department_rows,
    detail_url,
    error,
    invalid,
    lacks_permission,
)
from tests.organizations.factories import DepartmentFactory, MembershipFactory

DEPARTMENTS = "/api/v1/organizations/acme/departments/"
DEPARTMENT_FILTERS = "code, cursor, depth, format, is_root, manager, max_depth, ordering, page_size, parent, search"
PAGE_SIZE_ERROR = {"page_size": ["Must be a whole number from 1 to 200."]}
BAD_CURSOR = {"cursor": ["This cursor is not valid."]}


def cursor(querystring: str) -> str:
    """A cursor as DRF encodes one, with any content: for forged and stale cursors."""
    return quote(base64.b64encode(querystring.encode()).decode())


def assert_json_error(response: Any, status: int, body: dict[str, Any]) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == body


@pytest.fixture
def raw_client(client_for):
    """A client that returns a 500 response instead of raising, so that a crash shows up as a failed status."""

    def _raw_client(user: Any) -> Any:
        client = client_for(user)
        client.raise_request_exception = False
        return client

    return _raw_client


# --- one body for every status ----------------------------------------------------------------------------------------


def test_400_carries_field_errors(raw_client, admin_member, department):
    before = department_rows()

    response = raw_client(admin_member).post(DEPARTMENTS, {"code": "bad code"}, format="json")

    assert_json_error(
        response,
        400,
        invalid(
            {
                "code": ["Use letters, digits, '.', '_' and '-', starting with a letter or digit."],
                "name": ["This field is required."],
            }
        ),
    )
    assert department_rows() == before


@pytest.mark.parametrize(
    ("exception", "status", "body"),
    [
        (
            DjangoValidationError({NON_FIELD_ERRORS: ["Constraint violated."], "name": ["Too long."]}),
            400,
            invalid({"non_field_errors": ["Constraint violated."], "name": ["Too long."]}),
        ),
        (DjangoValidationError("Not allowed."), 400, invalid({"non_field_errors": ["Not allowed."]})),
        (
            ConflictError("Still in use.", code="still_in_use"),
            409,
            error("still_in_use", "Still in use."),
        ),
        (
            ProtectedError("protected", set()),
            409,
            error("protected", "Other records still refer to this one."),
        ),
        (Http404(), 404, NOT_FOUND),
        (
            DjangoPermissionDenied(),
            403,
            error("permission_denied", "You do not have permission to perform this action."),
        ),
    ],
    ids=["model-errors", "plain-validation-error", "conflict", "protected", "http404", "django-permission-denied"],
)
def test_service_errors_are_translated_into_the_error_body(exception, status, body):
    # when: a service (or Django) raises while a view handles the request
    response = exception_handler(exception, {})

    # then: model-wide errors (Django's "__all__") are reported as non_field_errors, like the serializers' own
    assert response is not None
    assert (response.status_code, response.data) == (status, body)


def test_unexpected_exceptions_are_left_to_django_as_500():
    assert exception_handler(RuntimeError("bug"), {}) is None


def test_401_tells_the_client_to_sign_in(raw_client, department):
    response = raw_client(None).get(DEPARTMENTS)

    assert_json_error(response, 401, NOT_AUTHENTICATED)
    assert response["WWW-Authenticate"] == 'Session realm="api"'


def test_403_for_a_member_who_may_not_write(raw_client, member, department):
    before = department_rows()

    response = raw_client(member).delete(detail_url(DEPARTMENTS, department))

    assert_json_error(response, 403, lacks_permission("organizations.delete_department", on_object=True))
    assert department_rows() == before


def test_404_for_a_non_member(raw_client, outsider, department):
    response = raw_client(outsider).get(DEPARTMENTS)

    assert_json_error(response, 404, NOT_FOUND)


def test_404_for_an_unknown_organization(raw_client, superuser):
    response = raw_client(superuser).get("/api/v1/organizations/nope/departments/")

    assert_json_error(response, 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path", "verb"),
    [
        ("put", DEPARTMENTS, "PUT"),
        ("delete", DEPARTMENTS, "DELETE"),
        ("post", f"{DEPARTMENTS}tree/", "POST"),
        ("patch", "/api/v1/organizations/", "PATCH"),
    ],
)
def test_405_for_a_method_the_resource_does_not_have(raw_client, superuser, department, method, path, verb):
    before = department_rows()

    response = getattr(raw_client(superuser), method)(path, {}, format="json")

    assert_json_error(response, 405, error("method_not_allowed", f'Method "{verb}" not allowed.'))
    assert department_rows() == before


def test_409_for_a_valid_request_that_clashes_with_the_current_state(raw_client, admin_member, department):
    DepartmentFactory(organization=department.organization, parent=department)
    before = department_rows()

    response = raw_client(admin_member).delete(detail_url(DEPARTMENTS, department))

    assert_json_error(
        response,
        409,
        error("department_has_children", "This department has active sub-departments; move or delete them first."),
    )
    assert department_rows() == before


def test_415_for_a_body_in_an_unsupported_format(raw_client, admin_member, department):
    before = department_rows()

    response = raw_client(admin_member).post(DEPARTMENTS, "code=X", content_type="text/plain")

    assert_json_error(response, 415, error("unsupported_media_type", 'Unsupported media type "text/plain" in request.'))
    assert department_rows() == before


# --- malformed request bodies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("hello", "JSON parse error - Expecting value: line 1 column 1 (char 0)"),
        ('{"code": ', "JSON parse error - Expecting value: line 1 column 10 (char 9)"),
        (
            "{'code': 'X'}",
            "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
    ],
    ids=["not-json", "truncated", "single-quotes"],
)
def test_a_body_that_is_not_json_is_400(raw_client, admin_member, department, body, message):
    before = department_rows()

    response = raw_client(admin_member).post(DEPARTMENTS, body, content_type="application/json")

    assert_json_error(response, 400, error("parse_error", message))
    assert department_rows() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[1, 2]", "Invalid data. Expected a dictionary, but got list."),
        ('"HQ"', "Invalid data. Expected a dictionary, but got str."),
        ("null", "No data provided"),
    ],
)
def test_json_that_is_not_an_object_is_400(raw_client, admin_member, department, body, message):
    before = department_rows()

    response = raw_client(admin_member).post(DEPARTMENTS, body, content_type="application/json")

    assert_json_error(response, 400, invalid({"non_field_errors": [message]}))
    assert department_rows() == before


def test_null_characters_in_a_body_are_400(raw_client, admin_member, department):
    before = department_rows()

    response = raw_client(admin_member).post(DEPARTMENTS, {"code": "X", "name": "a\u0000b"}, format="json")

    assert_json_error(response, 400, invalid({"name": ["Null characters are not allowed."]}))
    assert department_rows() == before


def test_numbers_beyond_the_database_range_are_400(raw_client, admin_member, department):
    before = department_rows()

    response = raw_client(admin_member).post(
        DEPARTMENTS, {"code": "X", "name": "X", "display_order": 2**40, "parent": 2**70}, format="json"
    )

    assert_json_error(
        response,
        400,
        invalid(
            {
                "parent": [f'Invalid pk "{2**70}" - object does not exist.'],
                "display_order": ["Ensure this value is less than or equal to 2147483647."],
            }
        ),
    )
    assert department_rows() == before


# --- malformed ids and paths ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pk", ["abc", "99999999999999999999", "-1", "1e3", "%00", "0x10"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("patch", ""), ("put", ""), ("delete", ""), ("get", "members/")],
)
def test_malformed_ids_are_404_not_500(raw_client, admin_member, department, pk, method, suffix):
    before = department_rows()

    response = getattr(raw_client(admin_member), method)(f"{DEPARTMENTS}{pk}/{suffix}", {}, format="json")

    assert_json_error(response, 404, NOT_FOUND)
    assert department_rows() == before


@pytest.mark.parametrize("pk", ["abc", "99999999999999999999"])
def test_malformed_membership_ids_are_404(raw_client, member, pk):
    response = raw_client(member).get(f"/api/v1/organizations/acme/members/{pk}/")

    assert_json_error(response, 404, NOT_FOUND)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organizations/a%00b/",
        "/api/v1/organizations/a.b/",
        "/api/v1/organizations/a%00b/departments/",
        "/api/v1/organizations/%E2%98%83/departments/",
    ],
)
def test_malformed_organization_slugs_are_404(raw_client, superuser, path):
    response = raw_client(superuser).get(path)

    assert_json_error(response, 404, NOT_FOUND)


@pytest.mark.parametrize(
    "path", ["/api/v1/nope/", "/api/v1/organizations/acme/nope/", "/api/v2/organizations/", "/api/v1/departments/"]
)
def test_unknown_api_paths_are_json_404(raw_client, member, path):
    response = raw_client(member).get(path)

    assert_json_error(response, 404, NOT_FOUND)


def test_unknown_api_path_is_json_404_for_anonymous_callers_too(db):
    response = Client(raise_request_exception=False).get("/api/v1/nope/")

    assert_json_error(response, 404, NOT_FOUND)


def test_unknown_site_paths_keep_the_html_404(db):
    response = Client(raise_request_exception=False).get("/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- query parameters -------------------------------------------------------------------------------------------------


def test_unknown_filter_parameter_is_400_naming_it(raw_client, member, department):
    response = raw_client(member).get(f"{DEPARTMENTS}?colour=red")

    assert_json_error(response, 400, invalid({"colour": [f"Unknown query parameter. Allowed: {DEPARTMENT_FILTERS}."]}))


def test_every_unknown_filter_parameter_is_named(raw_client, member, department):
    response = raw_client(member).get(f"{DEPARTMENTS}?colour=red&size=9&code=HQ")

    assert_json_error(
        response,
        400,
        invalid(
            {
                "colour": [f"Unknown query parameter. Allowed: {DEPARTMENT_FILTERS}."],
                "size": [f"Unknown query parameter. Allowed: {DEPARTMENT_FILTERS}."],
            }
        ),
    )


@pytest.mark.parametrize("value", ["0", "201", "x", "-1", "", "1.5", "%C2%B2", "99999999999999999999"])
def test_page_size_outside_1_to_200_is_400(raw_client, member, department, value):
    response = raw_client(member).get(f"{DEPARTMENTS}?page_size={value}")

    assert_json_error(response, 400, invalid(PAGE_SIZE_ERROR))


@pytest.mark.parametrize("value", ["1", "200"])
def test_page_size_at_the_bounds_is_fine(raw_client, member, department, value):
    response = raw_client(member).get(f"{DEPARTMENTS}?page_size={value}")

    assert response.status_code == 200
    assert [row["code"] for row in response.json()["results"]] == ["HQ"]


@pytest.mark.parametrize(
    "value",
    [
        "zzz",
        "%E2%98%83",
        cursor("o=-1"),
        cursor("r=maybe"),
        cursor("p=%00"),
    ],
    ids=["garbage", "non-ascii", "negative-offset", "bad-direction", "null-position"],
)
def test_invalid_cursor_is_400(raw_client, member, department, value):
    response = raw_client(member).get(f"{DEPARTMENTS}?cursor={value}")

    assert_json_error(response, 400, invalid(BAD_CURSOR))


@pytest.mark.parametrize(
    ("ordering", "position"),
    [("depth", "Sales"), ("-created_at", "yesterday"), ("display_order", "1.5")],
)
def test_cursor_whose_position_does_not_fit_the_ordering_is_400(raw_client, member, department, ordering, position):
    # given: e.g. a cursor taken from ?ordering=name and replayed with ?ordering=depth
    response = raw_client(member).get(f"{DEPARTMENTS}?ordering={ordering}&cursor={cursor(f'p={position}')}")

    assert_json_error(response, 400, invalid(BAD_CURSOR))


def test_cursor_of_another_ordering_is_400(raw_client, member, organization, department):
    # given: a next link of the list ordered by name
    DepartmentFactory.create_batch(3, organization=organization)
    client = raw_client(member)
    next_link = client.get(f"{DEPARTMENTS}?ordering=name&page_size=2").json()["next"]

    # when: the same cursor is used with ordering by depth
    response = client.get(next_link.replace("ordering=name", "ordering=depth"))

    # then
    assert_json_error(response, 400, invalid(BAD_CURSOR))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("secret", "'secret'"),
        ("name,-manager", "'-manager'"),
        ("organization__name", "'organization__name'"),
        (",", "','"),
    ],
)
def test_invalid_ordering_is_400(raw_client, member, department, value, shown):
    response = raw_client(member).get(f"{DEPARTMENTS}?ordering={value}")

    assert_json_error(
        response,
        400,
        invalid(
            {"ordering": [f"Cannot order by {shown}. Allowed: code, created_at, depth, display_order, name, path."]}
        ),
    )


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("is_root=maybe", "is_root", "Must be a valid boolean."),
        ("depth=deep", "depth", "Enter a whole number."),
        ("parent=1.5", "parent", "Enter a whole number."),
        ("code=a%00b", "code", "Null characters are not allowed."),
        ("search=a%00b", "non_field_errors", "Null characters are not allowed."),
    ],
)
def test_unreadable_filter_values_are_400(raw_client, member, department, query, field, message):
    response = raw_client(member).get(f"{DEPARTMENTS}?{query}")

    assert_json_error(response, 400, invalid({field: [message]}))


def test_out_of_range_filter_values_find_nothing(raw_client, member, department):
    response = raw_client(member).get(f"{DEPARTMENTS}?parent=99999999999999999999&depth=99999999999999999999")

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


# --- cursor pagination ------------------------------------------------------------------------------------------------


def walk(client: Any, url: str) -> list[list[str]]:
    """Follow ``next`` links from ``url``; the codes of each page."""
    pages: list[list[str]] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json()
        pages.append([row["code"] for row in response.json()["results"]])
        url = response.json()["next"]
        assert len(pages) <= 50, "the next links go round in circles"
    return pages


def test_next_links_walk_every_row_once_in_order(raw_client, member, organization):
    # given: 25 departments
    codes = [f"D{index:02}" for index in range(25)]
    for code in codes:
        DepartmentFactory(organization=organization, code=code)

    # when
    pages = walk(raw_client(member), f"{DEPARTMENTS}?page_size=10")

    # then
    assert pages == [codes[:10], codes[10:20], codes[20:]]


def test_previous_links_walk_back_over_the_same_pages(raw_client, member, organization):
    codes = [f"D{index:02}" for index in range(25)]
    for code in codes:
        DepartmentFactory(organization=organization, code=code)
    client = raw_client(member)
    first = client.get(f"{DEPARTMENTS}?page_size=10").json()
    last = client.get(client.get(first["next"]).json()["next"]).json()

    # when
    middle = client.get(last["previous"]).json()
    back_to_first = client.get(middle["previous"]).json()

    # then
    assert [row["code"] for row in middle["results"]] == codes[10:20]
    assert [row["code"] for row in back_to_first["results"]] == codes[:10]
    assert back_to_first["previous"] is None


@pytest.mark.parametrize("ordering", ["name", "-name", "display_order", "-depth"])
def test_next_links_walk_every_row_once_when_many_rows_share_the_ordering_value(
    raw_client, member, organization, ordering
):
    # given: 30 departments with the same name, display order and depth, and one more
    for index in range(30):
        DepartmentFactory(organization=organization, code=f"S{index:02}", name="Same")
    DepartmentFactory(organization=organization, code="ZZ", name="Another", display_order=1)

    # when
    pages = walk(raw_client(member), f"{DEPARTMENTS}?ordering={ordering}&page_size=7")

    # then: 31 rows, none twice, in pages of 7
    seen = [code for page in pages for code in page]
    assert sorted(seen) == sorted([f"S{index:02}" for index in range(30)] + ["ZZ"])
    assert len(seen) == 31
    assert [len(page) for page in pages] == [7, 7, 7, 7, 3]


def test_member_list_next_links_walk_every_membership_once(raw_client, member, organization):
    created = [MembershipFactory(organization=organization).pk for _ in range(12)]
    client = raw_client(member)
    url = "/api/v1/organizations/acme/members/?page_size=5"
    seen: list[int] = []
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    # then: newest first (ties on created_at broken by id), each membership once
    own = Membership.objects.get(user=member).pk
    assert seen == sorted([*created, own], reverse=True)
