"""The named sets of ``at.codes`` classify every refusal the codec raises (python-kasa's lesson:
the sets drive policy), and the router tells the client what a refusal means."""

from __future__ import annotations

import pytest

from simbank.at.results import Command, Response, parse_final
from simbank.daemon.router import command_detail
from simbank.errors import CommandError, SimStateError


def refusal(line: str, command: str = "AT+CMGS") -> CommandError:
    final = parse_final(line)
    assert final is not None, line
    with pytest.raises(CommandError) as caught:
        Response(Command(command), (), final).raise_for_error()
    return caught.value


@pytest.mark.parametrize(
    ("line", "problem", "sms", "retryable"),
    [
        ("+CME ERROR: 10", "absent", False, False),
        ("+CME ERROR: 11", "locked", False, False),
        ("+CME ERROR: 12", "locked", False, False),
        ("+CME ERROR: SIM PUK required", "locked", False, False),
        ("+CME ERROR: 13", "fault", False, False),
        ("+CME ERROR: 15", "fault", False, False),
        ("+CME ERROR: 262", "blocked", False, False),
        ("+CME ERROR: 14", None, False, True),  # SIM busy: transient, not a SIM state
        ("+CME ERROR: 17", None, False, False),  # PIN2: the SIM still serves calls and SMS
        ("+CME ERROR: 30", None, False, True),  # no network service
        ("+CME ERROR: 31", None, False, True),  # network timeout
        ("+CME ERROR: 3", None, False, False),  # operation not allowed
        ("+CMS ERROR: 310", "absent", True, False),
        ("+CMS ERROR: 311", "locked", True, False),
        ("+CMS ERROR: 316", "locked", True, False),
        ("+CMS ERROR: 313", "fault", True, False),
        ("+CMS ERROR: 314", None, True, True),  # SIM busy
        ("+CMS ERROR: 332", None, True, True),  # network timeout
        ("+CMS ERROR: 10", None, True, False),  # call barred: CMS 10 is not CME 10
        ("ERROR", None, False, False),
    ],
)
def test_each_refusal_is_classified_by_the_named_sets(
    line: str, problem: str | None, sms: bool, retryable: bool
) -> None:
    exc = refusal(line)
    assert isinstance(exc, SimStateError) is (problem is not None)
    assert getattr(exc, "problem", None) == problem
    assert (exc.sms, exc.retryable) == (sms, retryable)
    assert exc.raw == line


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("+CMS ERROR: 316", {"cms_error": 316, "retryable": False, "sim_problem": "locked"}),
        ("+CME ERROR: 10", {"cme_error": 10, "retryable": False, "sim_problem": "absent"}),
        ("+CME ERROR: 30", {"cme_error": 30, "retryable": True}),
        ("+CMS ERROR: 500", {"cms_error": 500, "retryable": True}),  # unknown: try again
        ("+CMS ERROR: 8", {"cms_error": 8, "retryable": False, "barred": True}),
        ("ERROR", None),
    ],
)
def test_the_client_is_told_what_the_refusal_means(
    line: str, detail: dict[str, object] | None
) -> None:
    assert command_detail(refusal(line)) == detail


def test_a_sim_state_error_is_still_a_command_error() -> None:
    """Every ``except CommandError`` of the drivers keeps catching SIM refusals."""
    assert issubclass(SimStateError, CommandError)
