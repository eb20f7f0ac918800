"""The prepaid balance read from USSD answers: carrier-style answers in several languages,
operator patterns, the ways amounts are written, and a round-trip property."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.balance import balance_low, parse_amount, read_balance, validate_pattern

D = Decimal


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # English
        ("Your balance is 10.00 TEST", D("10.00")),
        ("Your balance is 3.46 TEST. Valid till 2027-01-31", D("3.46")),
        ("Your balance is -1.50 TEST", D("-1.50")),
        ("Your account balance is 49.10 USD and will expire on 04/03/16.", D("49.10")),
        ("Balance:-3.20", D("-3.20")),
        ("TEST 10.00", D("10.00")),
        ("5.00 EUR", D("5.00")),
        ("EUR10.00 left", D("10.00")),
        ("Balance at 12:30 is 7.5 EUR", D("7.5")),
        ("Call +44 7700 900123 for help. Balance 4.20", D("4.20")),
        ("You have 5GB and 100 SMS left. Balance 2 EUR", D("2")),
        ("Credit: $1,234.56", D("1234.56")),
        ("Rs. 50 balance", D("50")),
        ("1'234.56 CHF", D("1234.56")),
        # German
        ("Ihr Guthaben beträgt 1.234,56 EUR", D("1234.56")),
        ("Ihr Guthaben: € 5,00. Gültig bis 31.12.2027", D("5.00")),
        ("Kontostand 0,50 €", D("0.50")),
        # Russian
        ("Баланс: 123,45 р.", D("123.45")),
        ("Баланс:12.34р", D("12.34")),
        ("Ваш баланс 7.00 TEST. Действует до 2027-01-31", D("7.00")),
        ("До 31.01 ваш баланс 5,00 р.", D("5.00")),
        ("Ваш баланс 1 234,56 руб.", D("1234.56")),
        ("Баланс: -3,20 р.", D("-3.20")),
        # Chinese, Japanese, Korean, Arabic, Polish
        ("您的余额为12.30元", D("12.30")),
        ("尊敬的客户，您的账户余额为12.50元，有效期至2027-01-31。", D("12.50")),
        ("尊敬的客户，您的账户余额为12.50TEST，有效期至2027-01-31。", D("12.50")),
        ("残高は１２３４円です", D("1234")),
        ("잔액은 10,000원입니다", D("10000")),
        ("رصيدك ١٢٫٥٠ ريال", D("12.50")),
        ("Saldo: 1 234,56 zł", D("1234.56")),
        # Nothing that looks like money: None rather than a guess
        ("You have 5GB and 100 SMS left.", None),
        ("Service unavailable, error 13", None),
        ("Dial *100# for your balance", None),
        ("Bonus balance 50% extra", None),
        ("Your request is being processed", None),
        ("Valid till 2027-01-31 23:59", None),
        ("", None),
    ],
)
def test_read_balance_without_a_pattern(answer: str, expected: Decimal | None) -> None:
    found = read_balance(answer, None)
    assert found == expected
    if expected is not None:
        assert str(found) == str(expected)  # the places as written are kept


def test_the_minus_sign_is_a_sign() -> None:
    assert read_balance("Main balance: \u22123.20 EUR", None) == D("-3.20")
    assert read_balance("Main balance: \u22123,20 EUR", None) == D("-3.20")


@pytest.mark.parametrize(
    ("answer", "pattern", "expected"),
    [
        ("Balance: 10,50 EUR; bonus 3.00", r"Balance: (?P<amount>\S+)", D("10.50")),
        ("Bonus 3.00, main 7.25", r"main ([-\d.,]+)", D("7.25")),
        ("Bonus 3.00, main 7.25", r"main [\d.]+", D("7.25")),  # no group: the whole match
        ("Balance: € 10,50 left", r"Balance: (.*)", D("10.50")),  # first number of the capture
        ("Баланс: 123,45 р.", r"Баланс: (\d+,\d+)", D("123.45")),
        ("余额：１２.３０元", r"余额：(\S+)元", D("12.30")),
        ("You have 100 SMS", r"(\d+) SMS", D("100")),  # the operator decides what is money
        ("Balance 7.25", r"Saldo (\d+)", None),  # no match
        ("Balance", r"Balance(?: (\d+))?", None),  # the group did not take part
        ("Balance: n/a", r"Balance: (\S+)", None),  # captured, but no number
    ],
)
def test_read_balance_with_a_pattern(answer: str, pattern: str, expected: Decimal | None) -> None:
    assert read_balance(answer, pattern) == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("10.50", D("10.50")),
        ("10,50", D("10.50")),
        ("1,234.56", D("1234.56")),
        ("1.234,56", D("1234.56")),
        ("1 234,56", D("1234.56")),
        ("1\u00a0234\u00a0567,89", D("1234567.89")),
        ("1'234'567.89", D("1234567.89")),
        ("1,234", D("1234")),
        ("1.234", D("1234")),
        ("1,234,567", D("1234567")),
        ("0,500", D("0.500")),
        ("1234,567", D("1234.567")),
        ("10,5", D("10.5")),
        ("-3.20", D("-3.20")),
        ("\u22123.20", D("-3.20")),
        ("+3.20", D("3.20")),
        (" 42 ", D("42")),
        ("٣٫٥٠", D("3.50")),
        ("１２３", D("123")),
        ("1,23,4", None),
        ("1.234.56", None),
        ("12 34", None),
        ("1,234.567,8", None),
        ("abc", None),
        ("5 EUR", None),
        ("", None),
    ],
)
def test_parse_amount(written: str, expected: Decimal | None) -> None:
    assert parse_amount(written) == expected


@pytest.mark.parametrize(
    ("pattern", "valid"),
    [(r"Balance: (\d+)", True), (r"(?P<amount>[\d.,]+)", True), ("(unclosed", False), ("*", False)],
)
def test_validate_pattern(pattern: str, valid: bool) -> None:
    error = validate_pattern(pattern)
    assert (error is None) == valid
    if not valid:
        assert error


@pytest.mark.parametrize(
    ("amount", "floor", "low"),
    [
        (D("4.99"), D("5"), True),
        (D("5.00"), D("5"), False),  # at the floor is not under it
        (D("5.01"), D("5"), False),
        (D("-0.01"), D("0"), True),
        (D("0"), D("0"), False),
    ],
)
def test_balance_low(amount: Decimal, floor: Decimal, low: bool) -> None:
    assert balance_low(amount, floor) is low


TEMPLATES = [
    "Your balance is {} EUR",
    "Ihr Guthaben beträgt {} €. Gültig bis 31.12.2027",
    "Баланс: {} р.",
    "您的余额为{}元",
    "TEST {}",
    "{}",
    "Call +44 7700 900123 or dial *100#. Main account: {} USD, valid till 2027-01-31 23:59",
]
DIGITS = ["0123456789", "٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９"]
# Filler without digits, signs or separators that could join the amount.
FILLER = st.text(
    alphabet=st.characters(
        categories=["Lu", "Ll", "Lo"], exclude_characters="\u2212", max_codepoint=0x9FFF
    ),
    max_size=12,
)


@given(
    cents=st.integers(min_value=-(10**11), max_value=10**11),
    decimal_comma=st.booleans(),
    grouped=st.booleans(),
    template=st.sampled_from(TEMPLATES),
    digits=st.sampled_from(DIGITS),
    minus=st.sampled_from(["-", "\u2212"]),
    before=FILLER,
    after=FILLER,
)
def test_a_written_amount_reads_back(
    cents: int,
    decimal_comma: bool,
    grouped: bool,
    template: str,
    digits: str,
    minus: str,
    before: str,
    after: str,
) -> None:
    amount = Decimal(cents).scaleb(-2)
    written = f"{amount:,.2f}" if grouped else f"{amount:.2f}"
    if decimal_comma:
        written = written.translate(str.maketrans(",.", ".,"))
    written = written.replace("-", minus).translate(str.maketrans("0123456789", digits))
    text = f"{before} {template.format(written)} {after}"
    assert read_balance(text, None) == amount
    assert parse_amount(written) == amount


@given(text=st.text(max_size=200), pattern=st.sampled_from([None, r"(\S+)", r"[\d.,]+"]))
def test_any_answer_reads_without_error(text: str, pattern: str | None) -> None:
    found = read_balance(text, pattern)
    assert found is None or found.is_finite()
