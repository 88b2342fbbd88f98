"""Tests for exchanged.ids: NIK, NIP (PNS and PPPK) and NKK validation.

All numbers here are constructed for the tests, not real people's numbers.
"""

from __future__ import annotations

import datetime
import pickle
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import exchanged.ids
from exchanged.ids import nik, nip, nkk
from exchanged.ids.exceptions import (
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

MODULES: tuple[ModuleType, ...] = (nik, nip, nkk)
CONCRETE_ERRORS = (InvalidFormat, InvalidLength, InvalidComponent)

NIK_WOMAN = "3171014101900001"  # woman, 1 January 1990, 31.71.01
NIK_MAN = "3171010101900001"  # man, 1 January 1990
NIP_PNS = "199001012015031999"  # man, born 1990-01-01, CPNS March 2015
NIP_PPPK = "198807172022211997"  # man, born 1988-07-17, PPPK appointed 2022
NKK_VALID = "3171012001100042"  # entered 20 January 2010

# Digits that str.isdigit() accepts and int() mostly converts, but that are
# not ASCII.  Superscripts are isdigit() but int() refuses them.
UNICODE_DIGIT_SETS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "extended-arabic-indic": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "full-width": "０１２３４５６７８９",
    "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹",
    "mathematical-bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
}


def to_digits(number: str, digits: str) -> str:
    """Rewrite the ASCII digits of `number` in another digit set."""
    return number.translate(str.maketrans("0123456789", digits))


def digit_runs(text: str) -> set[str]:
    """Runs of four or more digits in `text`, as written and as ASCII.

    The ASCII form catches a message that would echo a number written in,
    say, Arabic-Indic digits after converting it.
    """
    runs = set(re.findall(r"\d{4,}", text))
    ascii_text = "".join(
        str(unicodedata.decimal(c)) if unicodedata.decimal(c, None) is not None else c
        for c in text
    )
    runs.update(re.findall(r"[0-9]{4,}", ascii_text))
    return runs


def assert_safe_error(exc: BaseException, raw: object) -> None:
    """Check an error is a concrete, typed error that does not leak the input."""
    assert isinstance(exc, CONCRETE_ERRORS), f"unexpected {type(exc).__name__}"
    assert isinstance(exc, ValidationError)
    # A chained exception would be printed with the traceback in the logs.
    assert exc.__cause__ is None
    assert exc.__context__ is None
    texts = [str(exc), repr(exc), exc.message, *(str(a) for a in exc.args)]
    # Messages state rules ("16 digits", "cannot be 00"); they never need a
    # run of three or more digits, whatever the input was.
    for text in texts:
        assert not re.search(r"\d{3,}", text), text
    if isinstance(raw, str):
        for run in digit_runs(raw):
            for text in texts:
                assert run not in text


def expect_error(func: Callable[[str], object], raw: str, error: type[ValidationError]) -> None:
    with pytest.raises(error) as caught:
        func(raw)
    assert type(caught.value) is error
    assert_safe_error(caught.value, raw)


# --------------------------------------------------------------------------
# exceptions
# --------------------------------------------------------------------------


def test_exception_hierarchy_codes_and_messages() -> None:
    assert exchanged.ids.ValidationError is ValidationError
    assert set(exchanged.ids.__all__) == {
        "ValidationError",
        "InvalidFormat",
        "InvalidLength",
        "InvalidComponent",
    }
    assert issubclass(ValidationError, ValueError)
    codes = {cls: cls.code for cls in CONCRETE_ERRORS}
    assert codes == {
        InvalidFormat: "INVALID_FORMAT",
        InvalidLength: "INVALID_LENGTH",
        InvalidComponent: "INVALID_COMPONENT",
    }
    for cls in CONCRETE_ERRORS:
        assert issubclass(cls, ValidationError)
        default = cls()
        assert str(default) == cls.message
        assert default.message.endswith(".")
        custom = cls("The birth date in the NIK is not a real date.")
        assert str(custom) == custom.message == "The birth date in the NIK is not a real date."
        assert cls.message != custom.message  # the class default is untouched


def test_exceptions_survive_pickling() -> None:
    # Errors may cross process boundaries (worker pools); args hold only the
    # message, so they must rebuild from it.
    err = InvalidComponent("The serial number in the NIK cannot be all zeros.")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is InvalidComponent
    assert copy.message == err.message
    assert copy.code == "INVALID_COMPONENT"


# --------------------------------------------------------------------------
# NIK
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        NIK_WOMAN,
        NIK_MAN,
        "3171014101909999",  # serial 9999
        "3171013101900001",  # man, 31 January
        "3171017101900001",  # woman, 31 January: day 71
        "3171015101900001",  # woman, 11 January
        "3171016912900001",  # woman, 29 December
        "3171012902920001",  # 29 February 1992/2092
        "3171016902920001",  # woman, 29 February 1992/2092
        "3171012902000001",  # 29 February 2000 (1900 was not a leap year)
        "3171012802900001",  # 28 February on a non-leap year
        "9471010101900001",  # province codes are not checked against a list
        "1101010101000001",
    ],
)
def test_nik_valid(number: str) -> None:
    assert nik.validate(number) == number
    assert nik.is_valid(number)


def test_nik_info() -> None:
    assert nik.info(NIK_WOMAN) == nik.NikInfo(
        province="31",
        regency="71",
        district="01",
        birth_day=1,
        birth_month=1,
        birth_yy=90,
        female=True,
        serial="0001",
    )
    man = nik.info("3171013112850042")
    assert (man.birth_day, man.birth_month, man.birth_yy, man.female) == (31, 12, 85, False)
    assert nik.info("3171017101900001").birth_day == 31
    with pytest.raises(AttributeError):
        man.serial = "0002"  # type: ignore[misc]


@pytest.mark.parametrize(
    "number",
    [
        "3171017201900001",  # day 72: 32 after removing 40
        "3171018001900001",  # day 80
        "3171019901900001",  # day 99
        "3171017104900001",  # woman, 31 April
        "3171017106900001",  # woman, 31 June
        "3171017109900001",  # woman, 31 September
        "3171017111900001",  # woman, 31 November
        "3171014001900001",  # day 40: day 0 for a woman
        "3171010001900001",  # day 00
        "3171013201900001",  # day 32
        "3171013501900001",  # day 35: neither a man's nor a woman's day
        "3171013901900001",  # day 39
        "3171013102900001",  # 31 February
        "3171013002900001",  # 30 February
        "3171017002920001",  # woman, 30 February even in a leap year
        "3171012902900001",  # 29 February 1990/2090
        "3171012902010001",  # 29 February 1901/2001
        "3171016902900001",  # woman, 29 February 1990/2090
        "3171010100900001",  # month 00
        "3171010113900001",  # month 13
        "3171014199900001",  # month 99
    ],
)
def test_nik_impossible_birth_date(number: str) -> None:
    expect_error(nik.validate, number, InvalidComponent)
    assert not nik.is_valid(number)
    with pytest.raises(InvalidComponent, match="birth date"):
        nik.validate(number)


@pytest.mark.parametrize(
    ("number", "part"),
    [
        ("3171014101900000", "serial"),
        ("0071014101900001", "province"),
        ("3100014101900001", "regency"),
        ("3171004101900001", "district"),
    ],
)
def test_nik_zero_parts(number: str, part: str) -> None:
    expect_error(nik.validate, number, InvalidComponent)
    with pytest.raises(InvalidComponent, match=part):
        nik.validate(number)


@pytest.mark.parametrize(
    "raw",
    [
        " 3171014101900001",
        "3171014101900001 ",
        "\t3171014101900001\r\n",
        "\n\n  3171014101900001\t \r",
    ],
)
def test_nik_surrounding_ascii_whitespace_is_trimmed(raw: str) -> None:
    assert nik.compact(raw) == NIK_WOMAN
    assert nik.validate(raw) == NIK_WOMAN
    assert nik.info(raw).serial == "0001"


@pytest.mark.parametrize(
    "raw",
    [
        "3171 0141 0190 0001",
        "3171 014101900001",
        "3171-01-410190-0001",
        "31.71.01.410190.0001",
        "3171014101900001\x00",
        "3171014101900001\u00a0",  # no-break space is not trimmed
        "\u30003171014101900001",  # ideographic space is not trimmed
        "3171014101900001\x0b",  # vertical tab is not trimmed
        "3171014101900001\x0c",  # form feed is not trimmed
        "\ufeff3171014101900001",  # byte order mark
        "3171014101900001\u200b",  # zero-width space
        "+3171014101900001",
        "O171014101900001",  # letter O
        "317101410190000l",  # letter l
        "b'3171014101900001'",
    ],
)
def test_nik_characters_inside_are_invalid_format(raw: str) -> None:
    expect_error(nik.validate, raw, InvalidFormat)
    assert not nik.is_valid(raw)
    assert nik.compact(raw) == raw.strip(" \t\r\n")  # compact removes nothing inside


@pytest.mark.parametrize("digit_set", sorted(UNICODE_DIGIT_SETS))
def test_non_ascii_digits_are_invalid_format(digit_set: str) -> None:
    digits = UNICODE_DIGIT_SETS[digit_set]
    for module, valid in ((nik, NIK_WOMAN), (nip, NIP_PNS), (nip, NIP_PPPK), (nkk, NKK_VALID)):
        whole = to_digits(valid, digits)
        expect_error(module.validate, whole, InvalidFormat)
        # One non-ASCII digit hidden among ASCII ones.
        for position in (0, 7, len(valid) - 1):
            mixed = valid[:position] + to_digits(valid[position], digits) + valid[position + 1 :]
            expect_error(module.validate, mixed, InvalidFormat)
            assert not module.is_valid(mixed)


@pytest.mark.parametrize(
    ("module", "raw"),
    [
        (nik, ""),
        (nik, "   "),
        (nik, "\t\r\n"),
        (nik, "317101410190001"),  # 15
        (nik, "31710141019000011"),  # 17
        (nik, NIP_PNS),  # a NIP is not a NIK
        (nkk, ""),
        (nkk, "317101200110004"),
        (nkk, "31710120011000421"),
        (nip, ""),
        (nip, "19900101201503199"),  # 17
        (nip, "1990010120150319990"),  # 19
        (nip, NIK_WOMAN),  # a NIK is not a NIP
    ],
)
def test_wrong_length(module: ModuleType, raw: str) -> None:
    expect_error(module.validate, raw, InvalidLength)
    assert not module.is_valid(raw)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("junk", [None, b"3171014101900001", 3171014101900001, 1.5, ["x"]])
def test_non_text_input_is_invalid_format(module: ModuleType, junk: Any) -> None:
    for func in (module.compact, module.validate, module.info):
        with pytest.raises(InvalidFormat) as caught:
            func(junk)
        assert_safe_error(caught.value, str(junk))
    assert module.is_valid(junk) is False


# --------------------------------------------------------------------------
# NIP
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        (NIP_PNS, "PNS"),
        ("198507142010122998", "PNS"),  # woman, CPNS December
        ("199001012005011999", "PNS"),  # CPNS exactly at birth year + 15
        ("208001012099121999", "PNS"),  # CPNS in 2099, the last plausible year
        ("190001012015031999", "PNS"),  # born 1900
        ("200002292020011999", "PNS"),  # born 29 February 2000
        ("199212292020011999", "PNS"),
        (NIP_PPPK, "PPPK"),
        ("199203152023212996", "PPPK"),  # woman
        ("199001012005211999", "PPPK"),  # appointed exactly at birth year + 15
        ("208001012099211999", "PPPK"),
    ],
)
def test_nip_valid(number: str, kind: str) -> None:
    assert nip.validate(number) == number
    assert nip.is_valid(number)
    assert nip.kind(number) == kind


def test_nip_pppk_is_not_judged_by_the_pns_month_rule() -> None:
    # "21" in the month position would be month 21 for a PNS number.
    assert nip.kind(NIP_PPPK) == "PPPK"
    assert nip.info(NIP_PPPK).start_month is None


def test_nip_info() -> None:
    assert nip.info("198507142010122998") == nip.NipInfo(
        kind="PNS",
        birth_date=datetime.date(1985, 7, 14),
        start_year=2010,
        start_month=12,
        female=True,
        serial="998",
    )
    assert nip.info(NIP_PPPK) == nip.NipInfo(
        kind="PPPK",
        birth_date=datetime.date(1988, 7, 17),
        start_year=2022,
        start_month=None,
        female=False,
        serial="997",
    )


@pytest.mark.parametrize(
    ("number", "part"),
    [
        ("199001012015131999", "month"),  # PNS, month 13
        ("199001012015001999", "month"),  # PNS, month 00
        ("199001012015201999", "month"),  # PNS, month 20: not the PPPK code
        ("199001012015221999", "month"),  # PNS, month 22
        ("199002302015031999", "birth date"),  # 30 February
        ("199013012015031999", "birth date"),  # birth month 13
        ("199001002015031999", "birth date"),  # birth day 00
        ("190002292020011999", "birth date"),  # 1900 was not a leap year
        ("189912312015031999", "birth year"),
        ("210001012120031999", "birth year"),
        ("000001012015031999", "birth year"),
        ("199001012004031999", "fifteen years"),  # CPNS at 14
        ("199001011989031999", "fifteen years"),  # CPNS before birth
        ("199001012004211999", "fifteen years"),  # PPPK at 14
        ("208501012100031999", "start year"),  # CPNS in 2100
        ("209001012105211999", "start year"),  # PPPK in 2105
        ("199001012015030999", "gender"),
        ("199001012015033999", "gender"),
        ("199001012015039999", "gender"),
        ("198807172022213997", "gender"),  # PPPK, gender 3
        ("199001012015031000", "serial"),
        ("198807172022211000", "serial"),  # PPPK
    ],
)
def test_nip_invalid_component(number: str, part: str) -> None:
    expect_error(nip.validate, number, InvalidComponent)
    assert not nip.is_valid(number)
    with pytest.raises(InvalidComponent, match=part):
        nip.validate(number)


@pytest.mark.parametrize(
    "raw", ["19900101 201503 1 999", "19900101-201503-1-999", "199001012015031999\u00a0"]
)
def test_nip_separators_are_invalid_format(raw: str) -> None:
    expect_error(nip.validate, raw, InvalidFormat)


def test_nip_surrounding_whitespace_is_trimmed() -> None:
    assert nip.validate(" \t" + NIP_PPPK + "\r\n") == NIP_PPPK


# --------------------------------------------------------------------------
# NKK
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [NKK_VALID, "3171013112990042", "3171012902000042", "3171012902960042", "3171010101000001"],
)
def test_nkk_valid(number: str) -> None:
    assert nkk.validate(number) == number
    assert nkk.is_valid(number)


@pytest.mark.parametrize(
    ("number", "part"),
    [
        ("3171014101100042", "date"),  # day 41: no +40 in an NKK
        ("3171017101100042", "date"),
        ("3171013102100042", "date"),  # 31 February
        ("3171013002000042", "date"),  # 30 February
        ("3171012902010042", "date"),  # 29 February 1901/2001
        ("3171010001100042", "date"),  # day 00
        ("3171012013100042", "date"),  # month 13
        ("3171012001100000", "serial"),
        ("0071012001100042", "province"),
        ("3100012001100042", "regency"),
        ("3171002001100042", "district"),
    ],
)
def test_nkk_invalid_component(number: str, part: str) -> None:
    expect_error(nkk.validate, number, InvalidComponent)
    with pytest.raises(InvalidComponent, match=part):
        nkk.validate(number)


def test_nkk_compact_and_info() -> None:
    assert nkk.compact("\n" + NKK_VALID + " ") == NKK_VALID
    expect_error(nkk.validate, "317101 200110 0042", InvalidFormat)
    assert nkk.info(NKK_VALID) == nkk.NkkInfo(
        province="31",
        regency="71",
        district="01",
        entry_day=20,
        entry_month=1,
        entry_yy=10,
        serial="0042",
    )


# --------------------------------------------------------------------------
# robustness
# --------------------------------------------------------------------------

_ASCII_DIGITS = "0123456789"
_JUNK_ALPHABET = (
    _ASCII_DIGITS * 6
    + "".join(UNICODE_DIGIT_SETS.values())
    + " \t\r\n\x0b\x0c\x00\x1b\x7f\u00a0\u2007\u200b\u200f\u3000\ufeff"
    + "-./,_+:;'\"\\()[]{}"
    + "abcxyzOlIBE"
    + "é\u0301ß"
    + "①⑯½"  # circled and fraction: isnumeric() but not decimal
    + "😀\U0010ffff\ud800\udfff"  # emoji, last code point, lone surrogates
)


def _random_junk(rng: random.Random) -> Iterator[str]:
    valid_numbers = (NIK_WOMAN, NIK_MAN, NIP_PNS, NIP_PPPK, NKK_VALID)
    for _ in range(10_000):
        strategy = rng.randrange(5)
        if strategy == 0:
            # ASCII digits of about the right length: reaches the component
            # checks with random dates, serials and codes.
            length = rng.choice([0, 1, 15, 16, 16, 16, 17, 18, 18, 18, 19, rng.randrange(60)])
            yield "".join(rng.choice(_ASCII_DIGITS) for _ in range(length))
        elif strategy == 1:
            # A valid number with one character replaced, inserted or removed.
            chars = list(rng.choice(valid_numbers))
            position = rng.randrange(len(chars))
            action = rng.randrange(3)
            if action == 0:
                chars[position] = rng.choice(_JUNK_ALPHABET)
            elif action == 1:
                chars.insert(position, rng.choice(_JUNK_ALPHABET))
            else:
                del chars[position]
            yield "".join(chars)
        elif strategy == 2:
            yield "".join(rng.choice(_JUNK_ALPHABET) for _ in range(rng.randrange(41)))
        elif strategy == 3:
            # Any code point at all, surrogates included.
            yield "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(25)))
        else:
            # Digits wrapped in random (often non-ASCII) whitespace.
            pad = " \t\r\n\u00a0\u3000\x0b"
            yield (
                "".join(rng.choice(pad) for _ in range(rng.randrange(4)))
                + "".join(rng.choice(_ASCII_DIGITS) for _ in range(rng.choice([16, 18])))
                + "".join(rng.choice(pad) for _ in range(rng.randrange(4)))
            )


def test_validators_only_raise_validation_errors_on_junk() -> None:
    rng = random.Random(1234)
    fixed: list[object] = [
        "",
        " ",
        "\t\r\n",
        "None",
        "none",
        "null",
        "NULL",
        "nil",
        "undefined",
        "NaN",
        "N/A",
        "-",
        "0",
        "-0",
        "0" * 16,
        "0" * 18,
        "9" * 16,
        "9" * 18,
        "\x00" * 16,
        "3171014101900001.0",
        "3.171014101900001e15",
        "1e16",
        "0x" + "f" * 16,
        "b'3171014101900001'",
        'b"199001012015031999"',
        repr(b"\x00\xff" * 8),
        "\\x33\\x31\\x37\\x31",
        b"3171014101900001".hex(),
        "3" * 1_000_000,
        NIK_WOMAN * 10_000,
        NIP_PNS + "\n" + NIP_PNS,
        " " * 100_000 + NIK_WOMAN + " " * 100_000,  # valid once trimmed
        "\u00a0" * 100_000,
        "😀" * 100_000,
        None,
        b"3171014101900001",
        bytearray(b"3171014101900001"),
        3171014101900001,
        199001012015031999,
        1.5,
        [],
        {},
        object(),
    ]
    inputs: list[object] = [*fixed, *_random_junk(rng)]

    lengths = {nik: 16, nip: 18, nkk: 16}
    for raw in inputs:
        for module in MODULES:
            funcs: list[Callable[[Any], object]] = [module.compact, module.validate, module.info]
            if module is nip:
                funcs.append(nip.kind)
            for func in funcs:
                try:
                    func(raw)
                except ValidationError as exc:
                    assert_safe_error(exc, raw if isinstance(raw, str) else "")
                # Anything else propagates and fails the test.

            is_valid = module.is_valid(raw)
            assert type(is_valid) is bool
            try:
                result = module.validate(raw)
            except ValidationError:
                assert not is_valid
            else:
                assert is_valid
                assert isinstance(result, str)
                assert result.isascii() and result.isdigit()
                assert len(result) == lengths[module]
