"""A prepaid balance read from the carrier's USSD answer (pure: text in, amount out).

With the policy's ``balance_pattern`` (a regular expression the operator wrote for their
carrier's answer) the amount is what it captures: the named group ``amount`` if it has one,
else group 1, else the whole match. Without a pattern the answer is scanned for an amount
that *looks like money*; when in doubt the answer is None (the daemon then changes nothing
and logs ``balance_unreadable``): a wrong amount would rest a SIM, a missing one only asks
the operator for a pattern.

How an amount is written (:func:`parse_amount`):

- ``10.50`` and ``10,50`` (decimal comma); ``1,234.56`` and ``1.234,56``; groups of three
  separated by a space, a no-break or thin space or an apostrophe (``1 234,56``, ``1'234.56``);
- one ``.`` or ``,`` followed by exactly three digits groups thousands (``1,234`` and
  ``1.234`` are both 1234) unless what precedes it is ``0`` or longer than three digits;
  with any other number of digits after it, it is the decimal point;
- a sign ``-`` or ``−`` (U+2212; negative balances exist); any Unicode decimal digits
  (Arabic-Indic, fullwidth…), fullwidth and Arabic separators.

What the scan without a pattern takes (:func:`read_balance`):

- never dates (``2027-01-31``, ``31.01.2027``, ``01/31/27``), times (``12:30``), phone
  numbers (``+44 7700 900123``), USSD codes (``*100#``) or percentages;
- a number glued to letters of a script that spaces its words (``5GB``, ``SMS2``, ``4G``) only
  when those letters are a currency (``10.00EUR``, ``123,45р``) or it has exactly two decimal
  places (so ``2.50GB`` would be taken: write a pattern for such a carrier). Scripts written
  without spaces (Chinese, Japanese, Korean, Thai…) glue to numbers freely: ``余额为12.30元``;
- first choice, the first number next to a currency (a symbol such as ``€``, a code such as
  ``EUR``, a word such as ``руб``/``元``) or after a balance word (``balance``, ``Guthaben``,
  ``баланс``, ``余额``…) with no other number in between; else the first number with exactly
  two decimal places; else None.
"""  # noqa: RUF002 - real Cyrillic and the minus sign, on purpose

from __future__ import annotations

import functools
import re
import unicodedata
from decimal import Decimal

#: Characters read as a minus sign, a decimal point or a comma, whatever script wrote them.
_SIGNS = {"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-", "\uff0d": "-"}
_POINTS = {"\uff0e": ".", "\u066b": ".", "\uff0c": ",", "\u066c": ","}
#: Thousands separators besides ``.`` and ``,``.
_GROUPING = " \u00a0\u202f\u2009'\u2019"

_NUMBER = re.compile(
    rf"(?<![\d.,])(?P<sign>-)?"
    rf"(?P<body>\d{{1,3}}(?:[{_GROUPING}]\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)*)(?!\d)",
    re.ASCII,
)
_ONE_NUMBER = re.compile(rf"\s*(?P<sign>[-+])?\s*(?P<body>\d+(?:[.,{_GROUPING}]\d+)*)\s*", re.ASCII)
_PARTS = re.compile(rf"([.,{_GROUPING}])")
#: What the scan never reads as an amount.
_NOT_AMOUNTS = re.compile(
    r"(?<!\d)(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?!\d)"  # dates
    r"|(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)"  # times
    r"|\+\d[\d \-()]{5,}\d"  # phone numbers
    r"|[*#][\d*#]*#",  # USSD codes
    re.ASCII,
)

#: Currency codes and words (lower case) that mark a number as money: the common ISO 4217
#: codes ("try" left out: it is an English word), local words and abbreviations, and the
#: characters that follow amounts in scripts written without spaces.
_ISO_CODES = (
    "eur usd gbp chf rub uah byn kzt uzs pln czk huf ron bgn rsd sek nok dkk isk cny rmb jpy"
    " krw inr pkr bdt lkr idr myr php thb vnd sgd hkd twd aud nzd cad mxn brl ars clp cop pen"
    " zar ngn kes ghs egp mad tnd aed sar qar kwd ils"
)
_LOCAL_WORDS = (
    "р руб рублей рубля рубль грн гривень лв ден тг сум so'm zł zl kč kc kr ft lei din rs tl"  # noqa: RUF001 - real Cyrillic
    " euro euros dollar dollars pound pounds yuan rupees pesos reais ريال درهم دينار جنيه"
    " 元 円 圆 块 원"
)
CURRENCY_WORDS = frozenset(f"{_ISO_CODES} {_LOCAL_WORDS}".split())

#: Words after which a number is the balance.
BALANCE_WORDS = (
    "balance",
    "credit",
    "crédit",
    "saldo",
    "guthaben",
    "kontostand",
    "solde",
    "bakiye",
    "баланс",
    "остаток",
    "залишок",
    "余额",
    "餘額",
    "잔액",
    "残高",
    "رصيد",
)
_NO_SPACES = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")


def validate_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regular expression (None: it is)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def balance_low(amount: Decimal, floor: Decimal) -> bool:
    """Whether ``amount`` is under ``floor`` (an amount equal to the floor is not low)."""
    return amount < floor


def read_balance(text: str, pattern: str | None) -> Decimal | None:
    """The balance in a USSD answer; None when none is found (see the module docstring).
    ``pattern`` must compile (:func:`validate_pattern`; the config checks it): else
    ``re.error``."""
    if pattern is None:
        return _scan(_normalise(text), strict=True)
    found = _compiled(pattern).search(text)
    if found is None:
        return None
    if "amount" in found.re.groupindex:
        captured = found.group("amount")
    elif found.re.groups:
        captured = found.group(1)
    else:
        captured = found.group(0)
    if not captured:
        return None
    # The operator chose the spot: the capture as one number, else the first number in it.
    amount = parse_amount(captured)
    return amount if amount is not None else _scan(_normalise(captured), strict=False)


def parse_amount(text: str) -> Decimal | None:
    """``text`` as one amount (spaces around and a sign allowed), None if it is not one.
    Trailing zeros are kept: ``parse_amount("10,50") == Decimal("10.50")``."""
    found = _ONE_NUMBER.fullmatch(_normalise(text))
    if found is None:
        return None
    value = _parse_body(found["body"])
    if value is None:
        return None
    return -value if found["sign"] == "-" else value


@functools.lru_cache(maxsize=32)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _normalise(text: str) -> str:
    """ASCII digits, ``-``, ``.`` and ``,`` for their look-alikes; the length is kept, so
    positions in the result are positions in ``text``."""
    out = []
    for char in text:
        if char.isdecimal():
            out.append(str(int(char)))
        else:
            out.append(_SIGNS.get(char) or _POINTS.get(char) or char)
    return "".join(out)


def _parse_body(body: str) -> Decimal | None:
    """Digits and separators (no sign) as a non-negative amount, None if the grouping is
    not one of the ways amounts are written."""
    pieces = _PARTS.split(body)
    groups, seps = pieces[0::2], pieces[1::2]
    if not seps:
        return Decimal(body)
    last = seps[-1]
    decimal_point = last in ".," and not (
        all(sep == last for sep in seps)
        and (len(seps) > 1 or (len(groups[-1]) == 3 and groups[0] != "0" and len(groups[0]) <= 3))
    )
    whole, thousands = (groups[:-1], seps[:-1]) if decimal_point else (groups, seps)
    if thousands and (
        len(set(thousands)) != 1
        or (decimal_point and thousands[0] == last)
        or not 1 <= len(whole[0]) <= 3
        or any(len(group) != 3 for group in whole[1:])
    ):
        return None
    number = "".join(whole)
    return Decimal(f"{number}.{groups[-1]}" if decimal_point else number)


def _scan(norm: str, *, strict: bool) -> Decimal | None:
    """The amount in normalised text: with ``strict`` by the money rules of the module
    docstring, else simply the first number."""
    blanked = _NOT_AMOUNTS.sub(lambda m: " " * len(m.group()), norm) if strict else norm
    second_choice: Decimal | None = None
    for found in _NUMBER.finditer(blanked):
        value = _parse_body(found["body"])
        if value is None:
            continue
        if found["sign"]:
            value = -value
        if not strict:
            return value
        start, end = found.start(), found.end()
        two_places = value.as_tuple().exponent == -2
        after = norm[end : end + 2].lstrip(" \u00a0")
        if after.startswith("%"):
            continue
        glued = [run for run in (_letters_before(norm, start), _letters_after(norm, end)) if run]
        if glued and not two_places and not all(_is_currency(run) for run in glued):
            continue
        if _currency_near(norm, start, end) or _after_balance_word(norm, start):
            return value
        if two_places and second_choice is None:
            second_choice = value
    return second_choice


def _spaced_letter(char: str) -> bool:
    """A letter of a script that separates its words with spaces."""
    return char.isalpha() and not unicodedata.name(char, "").startswith(_NO_SPACES)


def _letters_before(text: str, index: int) -> str:
    start = index
    while start > 0 and _spaced_letter(text[start - 1]):
        start -= 1
    return text[start:index]


def _letters_after(text: str, index: int) -> str:
    end = index
    while end < len(text) and _spaced_letter(text[end]):
        end += 1
    return text[index:end]


def _is_currency(word: str) -> bool:
    return word.lower() in CURRENCY_WORDS


def _currency_near(text: str, start: int, end: int) -> bool:
    """A currency symbol, code or word right after or right before the number (one space or
    a ``.`` in between at most: ``5 EUR``, ``€ 5``, ``Rs. 50``, ``12.30元``)."""
    after = end
    while after < len(text) and after - end < 2 and text[after] in " \u00a0":
        after += 1
    if after < len(text):
        char = text[after]
        if unicodedata.category(char) == "Sc" or (
            not _spaced_letter(char) and char in CURRENCY_WORDS
        ):
            return True
        if _is_currency(_letters_after(text, after)):
            return True
    before = start
    while before > 0 and start - before < 2 and text[before - 1] in " \u00a0.":
        before -= 1
    if before > 0:
        char = text[before - 1]
        if unicodedata.category(char) == "Sc":
            return True
        if _is_currency(_letters_before(text, before)):
            return True
    return False


def _after_balance_word(text: str, start: int) -> bool:
    """A balance word in the 24 characters before the number, no digit in between."""
    window = text[max(0, start - 24) : start]
    digits = [i for i, char in enumerate(window) if char.isdigit()]
    if digits:
        window = window[digits[-1] + 1 :]
    window = window.lower()
    return any(word in window for word in BALANCE_WORDS)
