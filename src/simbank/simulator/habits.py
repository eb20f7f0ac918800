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

#: How the ``<str>`` of a ``+CUSD`` answer is presented (F4; encoders in ``simulator.ussd``).
#: ``text``: plain text labelled 15 (most modems; Gammu ``issue178-dell.dump``).
#: ``gsm7_hex``: packed GSM-7 as hex labelled 15 (Huawei E160, ``02-E160.dump``; oFono's Huawei
#: driver always hex-decodes; several Qualcomm sticks).
#: ``ucs2_72``: UCS-2 as hex labelled 72 (Huawei E3276 ``issue109-E3276.dump``; SIMCom and
#: Quectel with ``AT+CSCS="UCS2"``).
#: ``ucs2_15``: UCS-2 as hex mislabelled 15 (Quectel M35, ``Uissue358-Quectel_M35.dump``).
#: Whatever the coding, a text beyond ASCII comes as UCS-2 hex (the network sent it in UCS-2).
UssdCoding = Literal["text", "gsm7_hex", "ucs2_72", "ucs2_15"]

#: The ``<str>`` ``AT+CUSD=1,<str>`` wants (F5, A10).
#: ``text``: in the current character set (27.007).
#: ``packed_hex``: packed GSM-7 as hex only; a plain-text request is answered ``ERROR``
#: (Huawei E1752 in its default ``^USSDMODE`` 1: python-gsmmodem ``test/fakemodems.py``
#: ``HuaweiE1752.getResponse``; transcript ``pgm-huawei-e1752-ussd-mode.at``).
#: ``either``: text, or packed hex when the string is hex (newer Huawei firmware; ModemManager
#: sends hex to every Huawei, ``mm-broadband-modem-huawei.c`` L2686-2712).
UssdRequest = Literal["text", "packed_hex", "either"]


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
    #: 27.005 PDU mode exists. ``False``: a text-only model (old GSM terminals and their
    #: clones), ``AT+CMGF=?`` answers ``+CMGF: (1)``, ``AT+CMGF=0`` ``+CMS ERROR: 303`` and
    #: the modem boots in text mode.
    has_pdu_mode: bool = True
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
    #: How a ``+CUSD`` answer's text is presented (F4).
    ussd_coding: UssdCoding = "text"
    #: What ``AT+CUSD=1,<str>`` accepts as ``<str>`` (F5, A10).
    ussd_request: UssdRequest = "text"
    #: The ``+CUSD`` answer comes before the ``OK`` of ``AT+CUSD=1`` (B15: Ericsson MBM, MM
    #: commit 9976625f; python-gsmmodem ``modem.py`` L687).
    ussd_before_ok: bool = False
    #: A bare ``+CUSD: 2`` follows a completed answer, releasing the session (F6:
    #: python-gsmmodem ``modem.py`` L1130-1150, "non-standard 'extra' +CUSD notification").
    ussd_extra_release: bool = False
    #: An unsupported request is answered ``+CUSD: 4`` then ``+CME ERROR: unknown`` instead of
    #: ``OK`` (F6: SIMCom manual "+CUSD: 4"; the error after it from a public comment, grade U).
    ussd_unsupported_cme: bool = False

    @property
    def has_ceer(self) -> bool:
        """``AT+CEER`` exists."""
        return self.ceer_style != "absent"

    @property
    def ussd_request_packed_hex(self) -> bool:
        """``AT+CUSD=1`` takes only packed GSM-7 hex (a text request is ``ERROR``)."""
        return self.ussd_request == "packed_hex"


PLAIN = Habits()
