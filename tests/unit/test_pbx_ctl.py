"""``simbankctl authorize`` / ``complete``: the arguments make the contract's payloads, and the
answers print as a dialplan can cut them apart."""

from __future__ import annotations

import pytest

from simbank.contract import COMMANDS
from simbank.ctl import output
from simbank.ctl.commands import _FIELD, ACTIONS
from simbank.ctl.main import _parser


def payload(*argv: str) -> tuple[str, dict[str, object]]:
    args = _parser().parse_args(argv)
    command, attrs = ACTIONS[args.command]
    made = {_FIELD.get(a, a): getattr(args, a) for a in attrs if getattr(args, a) is not None}
    COMMANDS[command].model_validate(made)  # the daemon would accept it
    return command, made


def test_authorize_arguments() -> None:
    assert payload("authorize", "+15550100123") == (
        "call/authorize",
        {"number": "+15550100123"},  # the daemon applies its compliance maximum
    )
    assert payload("authorize", "+15550100123", "--modem", "m2", "--max-duration", "30")[1] == {
        "number": "+15550100123",
        "max_duration_s": 30,
        "modem": "m2",
    }


def test_complete_arguments() -> None:
    argv = ("complete", "kq3Jb9yX0c2PZt7M", "--duration", "42", "--outcome", "failed")
    assert payload(*argv, "--cause", "21") == (
        "call/complete",
        {"booking": "kq3Jb9yX0c2PZt7M", "duration_s": 42, "outcome": "failed", "cause": 21},
    )
    with pytest.raises(SystemExit):  # not one of the contract's outcomes
        _parser().parse_args(["complete", "kq3Jb9yX0c2PZt7M", "--duration", "1", "--outcome", "ok"])
    # What a dialplan's --cause=${HANGUPCAUSE} gives before anything hung up, or without a
    # known cause: no cause, not an argument error that would leave the booking open.
    for empty in ("--cause=", "--cause=0", "--cause= "):
        assert "cause" not in payload(*argv, empty)[1]
    for bad in ("--cause=abc", "--cause=256", "--cause=-1"):
        with pytest.raises(SystemExit):
            _parser().parse_args([*argv, bad])


def test_answers_print_for_a_dialplan() -> None:
    line = output.answer(
        "call/authorize",
        {
            "modem": "m1",
            "device": None,
            "iccid": "89990100000000000013",
            "booking": "kq3Jb9yX0c2PZt7M",
            "max_duration_s": 120,
            "expires_at": "2026-12-06T18:10:00+00:00",
        },
    )
    fields = dict(pair.split("=", 1) for pair in line.split(" "))
    assert list(fields) == ["device", "booking", "modem", "iccid", "max_duration_s", "expires_at"]
    assert fields["device"] == "-" and fields["booking"] == "kq3Jb9yX0c2PZt7M"
    done = output.answer(
        "call/complete",
        {
            "booking": "b",
            "modem": "m1",
            "iccid": None,
            "outcome": "busy",
            "duration_s": 0,
            "cause": 17,
        },
    )
    assert done == "booking b settled via m1 (no SIM): busy, 0 s, cause 17"
