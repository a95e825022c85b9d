"""The client address (``audit.middleware.client_ip``): the socket's, unless a trusted proxy forwarded the request."""

import pytest
from django.test import RequestFactory

from audit.middleware import client_ip


def request_from(remote: str, forwarded: str | None = None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # no trusted proxy: X-Forwarded-For is whatever the client wrote, never believed
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
        ("203.0.113.9", "10.0.0.1, 198.51.100.7", "203.0.113.9"),
        # a trusted proxy: the right-most hop that is no trusted proxy; what the client wrote further left is ignored
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "192.0.2.1, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "192.0.2.1, 198.51.100.7, 10.0.0.3", "198.51.100.7"),
        ("10.0.0.2", " 198.51.100.7 ,", "198.51.100.7"),
        ("2001:db8::10", "2001:db8:1::7", "2001:db8:1::7"),
        # only proxies in the header: the left-most of them (the one nearest the client)
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4"),
        # a trusted proxy without the header, or with a malformed hop: the last proxy's address
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.7, not-an-address", "10.0.0.2"),
        # a socket address that is none
        ("", "198.51.100.7", None),
    ],
)
def test_client_ip(settings, remote, forwarded, expected):
    # given
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::10"]

    # when / then
    assert client_ip(request_from(remote, forwarded)) == expected


def test_without_trusted_proxies_the_socket_address_is_the_client(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request_from("10.0.0.2", "198.51.100.7")) == "10.0.0.2"
