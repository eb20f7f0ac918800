"""Which ``Host`` headers the dashboard answers (DNS rebinding): pure logic."""

from __future__ import annotations

import pytest

from simbank.web.hosts import HostPolicy, split_host


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("LocalHost:8080", ("localhost", 8080)),
        ("localhost.:8080", ("localhost", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("dash.example.com", ("dash.example.com", None)),
    ],
)
def test_split_host(header: str, parsed: tuple[str, int | None]) -> None:
    assert split_host(header) == parsed


@pytest.mark.parametrize(
    "bad",
    ["", ":8080", "host:", "host:0", "host:99999", "host:http", "[::1", "[::1]x", "a b", "a..b"],
)
def test_split_host_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="not a host"):
        split_host(bad)


def test_own_names_need_the_listening_port() -> None:
    policy = HostPolicy("127.0.0.1")
    assert not policy.allows("127.0.0.1:8080")  # not bound yet: no port is ours
    policy.bind(8080)
    for ours in ("127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"):
        assert policy.allows(ours), ours
    for theirs in (
        "evil.example:8080",  # a rebound name, even with our port
        "127.0.0.1:8081",
        "localhost",  # port 80
        "127.0.0.1.evil.example:8080",
        "localhost:8080@evil.example",
        "",
        None,
    ):
        assert not policy.allows(theirs), theirs


def test_the_listen_address_and_public_names() -> None:
    policy = HostPolicy("192.0.2.10", ["dash.example.com", "ops.example.com:8443"])
    policy.bind(8080)
    assert policy.allows("192.0.2.10:8080")
    assert not policy.allows("192.0.2.10:9999")
    # A public name without a port: any port (the proxy's); with a port: that one only.
    assert policy.allows("dash.example.com")
    assert policy.allows("Dash.Example.Com:443")
    assert policy.allows("ops.example.com:8443")
    assert not policy.allows("ops.example.com")
    assert not policy.allows("evil.dash.example.com")
    assert "dash.example.com" in policy.names()
    assert "localhost:8080" in policy.names()


def test_port_80_is_implied() -> None:
    policy = HostPolicy("::1")
    policy.bind(80)
    assert policy.allows("localhost")
    assert policy.allows("[::1]")
    assert "[::1]:80" in policy.names()


def test_a_bad_public_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a host"):
        HostPolicy("127.0.0.1", ["https://dash.example.com/"])
