"""Byte habits of real modem models (pure data), each cited from
``../shared/research/modem-realism.md`` (§ letter + number).

A :class:`~simbank.simulator.dialects.Dialect` is a vendor family; the ``Habits`` it holds are
what one model of that family does on the wire that a manual would not tell you. Every habit
defaults to the plain 27.007 behaviour, so a profile only names what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How ``ATD<number>;`` is completed (B1/B2).
#: ``immediate``: ``OK`` at once, call progress and end by URC (EG25-G, Huawei: B1).
#: ``on_answer``: no answer until the far end picks up, then ``OK``; ``BUSY`` / ``NO ANSWER`` /
#: ``NO CARRIER`` end the dial instead (Wavecom: B2).
#: ``never``: no ``OK`` at all; ``CONNECT`` when answered, ``HANGUP: 1`` on a remote hang-up and
#: a bare ``OK`` when the call is rejected (ZTE K3565-Z / Qualcomm M6280: B2).
DialOk = Literal["immediate", "on_answer", "never"]

#: What ``AT+CEER`` answers (E3).
#: ``27007``: the 24.008 cause text in quotes (``+CEER: "Normal call clearing"``), or Quectel's
#: ``"CC INFO"`` pair when the dialect sets ``ceer_cc_info``.
#: ``textual``: free text without quotes (``+CEER: No cause information available``; E3 "common
#: 27.007 text").
#: ``numbered``: SIMCom's number and text in one string (``+CEER: "0 Unknown"``; E3).
#: ``empty``: a bare ``+CEER:`` (Altair, E3). ``ok_only``: no information line, just ``OK`` (E3).
#: ``absent``: the command does not exist (answered like any unknown command).
CeerStyle = Literal["27007", "textual", "numbered", "empty", "ok_only", "absent"]

#: The final result of a command the model does not know (A1/D1): ``ERROR`` on MU/ME-era
#: Huawei and everyone else, ``COMMAND NOT SUPPORT`` on E1xxx/EM770-era Huawei firmware.
UnknownAnswer = Literal["ERROR", "COMMAND NOT SUPPORT"]


@dataclass(frozen=True)
class Habits:
    """What one modem model does on the wire beyond its command set."""

    #: Write every answer in pieces of 1-9 bytes (B14: EC2x byte-level trace), from a random
    #: generator seeded by the scenario's ``seed`` and the modem id (reproducible).
    chunking: bool = False
    #: URCs are held and written in the same write right after the next final result
    #: (B8: ``\r\nOK\r\n\r\n+CMTI: "ME",1\r\n``), or, with echo on, inside the echo of the next
    #: command line (B13: ``AT\r\n+CREG: 1\r\n+CSQ\r``); alone after a short hold otherwise.
    glue_urcs: bool = False
    #: ``ATZ``, ``AT&F``, ``AT+CFUN=1,1`` and a boot turn echo back on (B9/B13: EG25-G answers
    #: ``AT\r\nOK`` after power-up). ``False``: the echo setting survives (a profile saved with
    #: ``AT&W``).
    echo_after_reset: bool = True
    #: URCs framed ``\r\r\n<line>\r\r\n`` (B7: SIM7600 ``\r\r\n+CRING: VOICE\r\r\n``).
    crcrlf: bool = False
    #: Simulated seconds after a slot switch or SIM re-initialisation during which SIM file
    #: commands (``+CCID``, ``+QCCID``, ``^ICCID``, ``+CICCID``, ``+CIMI``, ``+CRSM``, ``+CNUM``)
    #: answer ``+CME ERROR: 14`` (SIM busy) although ``+CPIN?`` already says ``READY``
    #: (B10: Huawei UMG1831 hot-plugged, about 6.4 s of CME 14).
    sim_busy_after_switch_s: float = 0.0
    #: How ``ATD…;`` completes (B1/B2).
    dial_ok: DialOk = "immediate"
    #: With ``^CEND`` (dialect ``cend``): the 27.007 result (``NO CARRIER``, ``BUSY``…) follows
    #: the ``^CEND`` line (E4: ``^CEND: 1,9,67,16\r\n\r\nNO CARRIER``); ``False``: ``^CEND``
    #: alone (E1752 fake-modem profile, B1).
    call_end_twice: bool = False
    #: The shape of the ``AT+CEER`` answer (E3).
    ceer_style: CeerStyle = "27007"
    #: The final result of an unknown command (A1/D1).
    unknown_answer: UnknownAnswer = "ERROR"
    #: ``AT+CESQ`` exists (A7: older sticks report ``^RSSI`` / ``+CSQ`` only).
    has_cesq: bool = True

    @property
    def has_ceer(self) -> bool:
        """``AT+CEER`` exists."""
        return self.ceer_style != "absent"


PLAIN = Habits()
