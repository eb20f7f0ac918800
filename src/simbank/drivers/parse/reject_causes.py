"""Registration reject causes (3GPP TS 24.008 §10.5.3.6 MM/GMM, TS 24.301 §9.9.3.9 EMM) as
modems report them in ``AT+CEER`` after a denial that came without a cause.

``+CEER`` has no fixed shape (modem-realism.md E3): a bare token
(``+CEER: EPS_AND_NON_EPS_SERVICES_NOT_ALLOWED``, Altair LTE, ModemManager
``plugins/altair/tests``), free text (``+CEER: "Illegal MS"``), a number and text
(``+CEER: "3 Illegal MS"``), a category and number (``+CEER: "EMM INFO",7``), an empty
``+CEER:`` or a bare ``OK``. Only reject causes are read here: a call-control cause left over
from the last call ("Normal call clearing", 16) is not a registration reject cause.
"""

from __future__ import annotations

import re

from simbank.drivers.parse.causes import EPS_REJECT_CAUSES, REJECT_CAUSES
from simbank.drivers.parse.fields import body_of, split_fields, unquote
from simbank.errors import ProtocolGarbage

_CATEGORIES = frozenset({"MM INFO", "GMM INFO", "EMM INFO", "SM INFO", "ESM INFO"})
_REGISTRATION_CATEGORIES = frozenset({"MM INFO", "GMM INFO", "EMM INFO"})
_NUMBERED = re.compile(r"^(\d{1,3})\s+(.+)$")


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[_\-/]", " ", text).casefold().split())


#: Reject cause → the names (and token forms) it is reported under, normalised
#: (the one table is :mod:`simbank.drivers.parse.causes`).
REJECT_CAUSE_NAMES: dict[int, tuple[str, ...]] = {
    cause: tuple(_normal(n) for n in (name, *EPS_REJECT_CAUSES.get(cause, ())))
    for cause, name in REJECT_CAUSES.items()
}
_BY_NAME = {name: cause for cause, names in REJECT_CAUSE_NAMES.items() for name in names}


def reject_cause_from_ceer(line: str) -> int | None:
    """The 24.008/24.301 reject cause a ``+CEER`` line names, or None (no cause, or a cause
    that is not a registration reject: a call's clearing cause, free text we do not know)."""
    try:
        _prefix, body = body_of(line, ("+CEER",))
        fields = [unquote(f).strip() for f in split_fields(body, raw=line)]
    except ProtocolGarbage:
        return None
    fields = [f for f in fields if f]
    if not fields:
        return None
    category = fields[0].upper()
    if category in _CATEGORIES:
        rest = fields[1:]
        if category in _REGISTRATION_CATEGORIES:
            for field in rest:
                if field.isdecimal() and 0 < int(field) < 256:
                    return int(field)
        fields = rest
    for field in fields:
        text = _normal(field)
        if text in _BY_NAME:
            return _BY_NAME[text]
        numbered = _NUMBERED.match(text)
        if numbered and _BY_NAME.get(numbered.group(2)) == int(numbered.group(1)):
            return int(numbered.group(1))
    return None
