"""``simbank-web``'s command line: loopback by default, no password in clear over a network."""

from __future__ import annotations

import argparse

import pytest

from simbank.web.cli import (
    EXIT_CONFIG,
    EXIT_USAGE,
    host_port,
    is_loopback,
    main,
    mqtt_config,
    parser,
)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("192.0.2.10", False),
        ("127.0.0.1.example.com", False),
        ("dashboard.example.com", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_host_port() -> None:
    assert host_port("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert host_port("[::1]:0") == ("::1", 0)
    for bad in ("8080", ":8080", "host:", "host:99999", "host:http"):
        with pytest.raises(argparse.ArgumentTypeError):
            host_port(bad)


def test_a_remote_listener_needs_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--listen", "0.0.0.0:8080"]) == EXIT_USAGE
    assert "--allow-remote" in capsys.readouterr().err


def test_passwords_never_cross_a_network_in_clear() -> None:
    args = parser().parse_args(["--mqtt-host", "broker.example.com"])
    with pytest.raises(ValueError, match="in clear"):
        mqtt_config(args)
    allowed = parser().parse_args(["--mqtt-host", "broker.example.com", "--mqtt-allow-insecure"])
    assert mqtt_config(allowed).host == "broker.example.com"
    local = mqtt_config(parser().parse_args([]))
    assert (local.host, local.port, local.protocol, local.tls_ca) == ("127.0.0.1", 1883, "5", None)


def test_tls_defaults_to_port_8883_and_needs_a_readable_ca(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tls = mqtt_config(parser().parse_args(["--mqtt-host", "broker.example.com", "--mqtt-tls"]))
    assert tls.port == 8883
    assert tls.tls_ca is not None
    assert main(["--mqtt-cafile", "/nonexistent/ca.crt"]) == EXIT_CONFIG
    assert "no such file" in capsys.readouterr().err


def test_public_hosts_are_checked_and_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        ["--public-host", "dash.example.com", "--public-host", "ops.example.com:8443"]
    )
    assert args.public_host == ["dash.example.com", "ops.example.com:8443"]
    assert parser().parse_args([]).public_host == []
    with pytest.raises(SystemExit):
        parser().parse_args(["--public-host", "https://dash.example.com/"])
    assert "expected a host name" in capsys.readouterr().err
    assert "--public-host" in parser().format_help()
    assert "DNS rebinding" in parser().format_help()
