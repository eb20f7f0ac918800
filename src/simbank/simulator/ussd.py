"""USSD as the simulated network answers it and as a simulated modem shows it (modem-realism.md
§B15, §F4-F6).

The network (:func:`network_answer`, pure): a balance code answered with a carrier-style notice
built from the SIM's prepaid balance, a menu code that opens a session (``+CUSD: 1``) which a
reply continues and the network ends (``+CUSD: 2`` with the text kept), unsupported codes
(``+CUSD: 4``), and every other code answered with the SIM's fixed reply.

The modem (:func:`present`, :func:`decode_request`, pure): the codings real modems put on the
wire (``Habits.ussd_coding``) and the packed GSM-7 hex requests Huawei wants
(``Habits.ussd_request``). Written here, not imported from ``simbank.sms``: the modem side of
the wire shares no protocol code with the client, so a codec bug on either side shows up as a
wrong answer instead of being mirrored. The alphabet is ``simulator.pdu``'s table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from simbank.simulator.habits import UssdCoding, UssdRequest
from simbank.simulator.pdu import PduError, gsm7_text, unpack_septets

#: Carrier-style balance notices (``{balance}`` is the amount with two decimals). The Chinese
#: one is the kind of notice the seed's carrier (China Unicom) sends; it goes out as UCS-2.
BALANCE_NOTICES: dict[str, str] = {
    "en": "Your balance is {balance} {currency}",
    "en-valid": "Your balance is {balance} {currency}. Valid till {valid_till}",
    "ru": "Ваш баланс {balance} {currency}. Действует до {valid_till}",
    "zh": "尊敬的客户，您的账户余额为{balance}{currency}，有效期至{valid_till}。",  # noqa: RUF001 (real CJK commas)
}
DEFAULT_BALANCE_NOTICE = BALANCE_NOTICES["en"]
MENU_TEXT = "Select: 1 Balance, 2 Tariff, 0 Exit"
TARIFF_TEXT = "Your tariff is Test Basic. Calls 0.10 per minute"
#: The session the network keeps open after the menu (``SimCard.ussd_session``).
MENU_SESSION = "menu"

_SERVICE_CODE = re.compile(r"[*#][0-9*#+]*#")  # what the network looks up as a service code
_USSD_TEXT = re.compile(r"[0-9*#+]+")  # a request string in plain digits (a code or a reply)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_CR = 0x0D


@dataclass(frozen=True)
class UssdService:
    """The carrier's USSD codes (the same for every SIM of a scenario)."""

    balance_code: str = "*100#"
    menu_code: str = "*111#"
    unsupported_codes: tuple[str, ...] = ("*999#",)


@dataclass(frozen=True)
class Answer:
    """The network's answer: ``status`` is ``<m>`` (0 done, 1 further action, 2 ended by the
    network, 4 not supported), ``text`` what it says (None: a bare ``+CUSD: <m>``), ``session``
    the menu left open for a reply (None: no session)."""

    status: int
    text: str | None = None
    session: str | None = None


def balance_notice(template: str, balance: float, currency: str, valid_till: str) -> str:
    """The balance notice: ``template`` with ``{balance}`` (two decimals), ``{currency}`` and
    ``{valid_till}`` filled in (``KeyError``/``ValueError`` for other placeholders)."""
    return template.format(balance=f"{balance:.2f}", currency=currency, valid_till=valid_till)


def network_answer(
    request: str,
    *,
    service: UssdService,
    session: str | None,
    balance_text: str | None,
    reply: str,
    override: str | None = None,
) -> Answer:
    """What the network answers to ``request`` (a decoded ``AT+CUSD=1`` string) from a SIM
    whose open session is ``session``, whose balance notice is ``balance_text`` (None: no
    prepaid balance) and whose fixed reply is ``reply``; ``override`` answers everything."""
    if override is not None:
        return Answer(0, override)
    if session == MENU_SESSION:
        if request == "1":
            return Answer(2, balance_text if balance_text is not None else reply)
        if request == "2":
            return Answer(2, TARIFF_TEXT)
        if request == "0":
            return Answer(2)
        return Answer(1, f"Invalid choice. {MENU_TEXT}", MENU_SESSION)
    if not _SERVICE_CODE.fullmatch(request) or request in service.unsupported_codes:
        return Answer(4)
    if request == service.balance_code and balance_text is not None:
        return Answer(0, balance_text)
    if request == service.menu_code:
        return Answer(1, MENU_TEXT, MENU_SESSION)
    return Answer(0, reply)


# -- the modem's codings -----------------------------------------------------------------------


def _septet_table() -> dict[str, tuple[int, ...]]:
    """Character → septets (basic table first, then the escaped extension characters)."""
    table: dict[str, tuple[int, ...]] = {}
    for value in range(128):
        if value != 0x1B:
            table.setdefault(gsm7_text([value]), (value,))
    for value in range(128):
        if value != 0x1B:
            table.setdefault(gsm7_text([0x1B, value]), (0x1B, value))
    return table


_SEPTETS = _septet_table()


def gsm7_septets(text: str) -> list[int] | None:
    """``text`` in the GSM 03.38 default alphabet (extension characters escaped), or None when
    a character is outside it."""
    septets: list[int] = []
    for char in text:
        found = _SEPTETS.get(char)
        if found is None:
            return None
        septets.extend(found)
    return septets


def pack_septets(septets: list[int]) -> bytes:
    """Septets packed LSB first (23.038 §6.1.2.1.1); a CR fills a last octet whose 7 spare
    bits would otherwise read as '@' (§6.1.2.3.1)."""
    if len(septets) % 8 == 7:
        septets = [*septets, _CR]
    value = 0
    for index, septet in enumerate(septets):
        value |= septet << (7 * index)
    return value.to_bytes((len(septets) * 7 + 7) // 8, "little")


def _ucs2_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def present(text: str, coding: UssdCoding) -> tuple[str, int]:
    """(the ``<str>`` a modem with ``coding`` shows for ``text``, the ``<dcs>`` it labels it
    with). A text beyond ASCII came from the network as UCS-2 and is shown as UCS-2 hex
    (labelled 72, or 15 by the mislabelling model) unless packed GSM-7 can carry it."""
    mislabel = 15 if coding == "ucs2_15" else 72
    if coding == "gsm7_hex":
        septets = gsm7_septets(text)
        if septets is not None:
            return pack_septets(septets).hex().upper(), 15
        return _ucs2_hex(text), mislabel
    if coding == "text" and text.isascii():
        return text, 15
    return _ucs2_hex(text), mislabel


def cusd_line(answer: Answer, coding: UssdCoding) -> str:
    """``+CUSD: <m>[,"<str>",<dcs>]`` as the modem writes it (quotes inside the text are
    written as they are: chan_dongle ``at_parse.c`` L451-460)."""
    if answer.text is None:
        return f"+CUSD: {answer.status}"
    shown, dcs = present(answer.text, coding)
    return f'+CUSD: {answer.status},"{shown}",{dcs}'


def unpack_request(hex_text: str) -> str | None:
    """A packed GSM-7 hex request (``AA180C3602`` is ``*100#``), or None if it is not one.
    A trailing CR pad (or a zero septet filling a whole spare octet) is dropped."""
    if not _HEX.fullmatch(hex_text):
        return None
    data = bytes.fromhex(hex_text)
    septets = unpack_septets(data, len(data) * 8 // 7)
    if len(data) % 7 == 0 and septets and septets[-1] in (_CR, 0):
        septets = septets[:-1]
    while septets and septets[-1] == _CR:
        septets = septets[:-1]
    try:
        text = gsm7_text(septets)
    except PduError:
        return None
    return text or None


def decode_request(string: str, mode: UssdRequest) -> str | None:
    """The request a modem taking ``mode`` reads from ``AT+CUSD=1,<string>``; None when the
    modem refuses it (a packed-hex-only modem given text or broken hex: ``ERROR``)."""
    if mode == "text":
        return string
    if mode == "either" and _USSD_TEXT.fullmatch(string):
        return string
    decoded = unpack_request(string)
    if decoded is None and mode == "either":
        return string
    return decoded
