"""The ``[agi]`` section: off and on loopback by default; a remote bind needs allow_remote."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simbank.config.agi import AgiConfig


def test_the_defaults() -> None:
    config = AgiConfig()
    assert (config.enabled, config.host, config.port, config.allow_remote) == (
        False,
        "127.0.0.1",
        4573,
        False,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "pbx.example.com", "::"])
def test_a_remote_bind_needs_allow_remote(host: str) -> None:
    with pytest.raises(ValidationError, match="not loopback"):
        AgiConfig(host=host)
    assert AgiConfig(host=host, allow_remote=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.53"])
def test_loopback_is_fine(host: str) -> None:
    assert AgiConfig(host=host).host == host


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 0},
        {"port": 65536},
        {"port": "4573"},  # TOML types are kept: a string is no port
        {"max_connections": 0},
        {"read_timeout_s": 0},
        {"authorize_timeout_s": -1},
        {"listen": "127.0.0.1"},
    ],
)
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgiConfig.model_validate(bad)
