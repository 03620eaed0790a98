"""Pure validators for the identifiers and codes that enter the lake.

Every validator comes in two forms that agree on every input:

* a scalar function (``iso6346_is_valid("CSQU3054383")``) that accepts any
  object and never raises (``None`` and non-strings are simply invalid);
* a vectorised Polars expression builder (``iso6346_valid_expr(pl.col("c"))``)
  used by :mod:`features.data.validation` on whole columns. It returns a Boolean
  expression that is ``False`` (never null) for null or malformed input.

Inputs are normalised the same way in both forms: surrounding whitespace is
stripped and letters are upper-cased before the shape is checked.

The check-digit functions (:func:`iso6346_check_digit`, :func:`imo_check_digit`)
are public so that simulators can generate valid numbers; unlike the
validators they raise ``ValueError`` on malformed input.
"""

from __future__ import annotations

import re
import string

import polars as pl

__all__ = [
    "WHITESPACE",
    "imo_normalize_expr",
    "ISO6346_PATTERN",
    "IMO_PATTERN",
    "LOCODE_PATTERN",
    "HS_CODE_PATTERN",
    "ISO6346_LETTER_VALUES",
    "normalize_code",
    "normalize_code_expr",
    "iso6346_check_digit",
    "iso6346_is_valid",
    "iso6346_shape_ok",
    "iso6346_shape_expr",
    "iso6346_check_digit_expr",
    "iso6346_valid_expr",
    "imo_check_digit",
    "imo_is_valid",
    "imo_shape_ok",
    "imo_shape_expr",
    "imo_valid_expr",
    "locode_shape_ok",
    "locode_shape_expr",
    "hs_code_ok",
    "hs_code_digits_ok",
    "hs_code_digits_expr",
    "hs_chapter_ok",
    "hs_chapter_expr",
    "hs_code_valid_expr",
]

ISO6346_PATTERN = r"^[A-Z]{3}[UJZ][0-9]{7}$"
"""Container number after normalisation: owner code, category U/J/Z, 6-digit serial, check digit."""
IMO_PATTERN = r"^[0-9]{7}$"
"""IMO ship number after normalisation: seven digits (no ``IMO`` prefix)."""
LOCODE_PATTERN = r"^[A-Z]{2}[A-Z2-9]{3}$"
"""UN/LOCODE: ISO 3166-1 country code plus three characters from A-Z and 2-9."""
HS_CODE_PATTERN = r"^(?:[0-9]{6}|[0-9]{8}|[0-9]{10})$"
"""Harmonized System code: 6, 8 or 10 digits."""

WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Characters stripped around every value: Unicode White_Space (same set in Python and Polars)."""

_ISO6346_RE = re.compile(ISO6346_PATTERN)
_IMO_RE = re.compile(IMO_PATTERN)
_LOCODE_RE = re.compile(LOCODE_PATTERN)
_HS_RE = re.compile(HS_CODE_PATTERN)


def _letter_values() -> dict[str, int]:
    values: dict[str, int] = {}
    v = 10
    for letter in string.ascii_uppercase:
        if v % 11 == 0:
            v += 1
        values[letter] = v
        v += 1
    return values


ISO6346_LETTER_VALUES: dict[str, int] = _letter_values()
"""ISO 6346 letter values: A=10, B=12, ... Z=38 (multiples of 11 are skipped)."""

_ISO6346_CHAR_VALUES: dict[str, int] = {**{str(d): d for d in range(10)}, **ISO6346_LETTER_VALUES}
_IMO_WEIGHTS = (7, 6, 5, 4, 3, 2)


# --------------------------------------------------------------------------- normalisation


def normalize_code(value: object) -> str | None:
    """Strip surrounding whitespace and upper-case; ``None`` for non-strings.

    Examples
    --------
    >>> normalize_code("  csqu3054383 ")
    'CSQU3054383'
    >>> normalize_code(42) is None
    True
    """
    if not isinstance(value, str):
        return None
    return value.strip(WHITESPACE).upper()


def normalize_code_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`normalize_code` for a String expression (nulls stay null)."""
    return expr.str.strip_chars(WHITESPACE).str.to_uppercase()


# --------------------------------------------------------------------------- ISO 6346


def iso6346_check_digit(prefix10: str) -> int:
    """Return the ISO 6346 check digit of a 10-character container-number prefix.

    Parameters
    ----------
    prefix10
        Owner code (3 letters), category identifier (``U``, ``J`` or ``Z``) and
        6-digit serial number, e.g. ``"CSQU305438"``. Upper-cased, no spaces.

    Returns
    -------
    int
        The check digit 0-9: sum of the character values times ``2**i``,
        modulo 11, with a remainder of 10 mapped to 0.

    Raises
    ------
    ValueError
        If ``prefix10`` is not 3 letters + U/J/Z + 6 digits.

    Examples
    --------
    >>> iso6346_check_digit("CSQU305438")
    3
    """
    if not isinstance(prefix10, str) or not re.fullmatch(r"[A-Z]{3}[UJZ][0-9]{6}", prefix10):
        raise ValueError(f"ISO 6346 prefix must be 3 letters, U/J/Z and 6 digits, got {prefix10!r}")
    total = sum(_ISO6346_CHAR_VALUES[ch] * (1 << i) for i, ch in enumerate(prefix10))
    return total % 11 % 10


def iso6346_shape_ok(value: object) -> bool:
    """True when the normalised value matches :data:`ISO6346_PATTERN`; never raises."""
    code = normalize_code(value)
    return code is not None and _ISO6346_RE.fullmatch(code) is not None


def iso6346_is_valid(value: object) -> bool:
    """True for a well-formed ISO 6346 container number with a correct check digit.

    Never raises: malformed input, ``None`` and non-strings return ``False``.

    Examples
    --------
    >>> iso6346_is_valid("CSQU3054383"), iso6346_is_valid("csqu3054384")
    (True, False)
    >>> iso6346_is_valid("AB_U3054383")
    False
    """
    if not iso6346_shape_ok(value):
        return False
    code = normalize_code(value)
    assert code is not None
    return iso6346_check_digit(code[:10]) == int(code[10])


def iso6346_shape_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`iso6346_shape_ok` (``False`` for null)."""
    return normalize_code_expr(expr).str.contains(ISO6346_PATTERN).fill_null(False)


def iso6346_check_digit_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised check digit (Int64) of the first 10 characters of a normalised number.

    Null when the value does not have the ISO 6346 shape.
    """
    code = normalize_code_expr(expr)
    terms = [
        code.str.slice(i, 1).replace_strict(_ISO6346_CHAR_VALUES, default=None, return_dtype=pl.Int64) * (1 << i)
        for i in range(10)
    ]
    total = pl.sum_horizontal(terms, ignore_nulls=False)
    return pl.when(iso6346_shape_expr(expr)).then(total % 11 % 10)


def iso6346_valid_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`iso6346_is_valid`: shape and check digit (``False`` for null)."""
    code = normalize_code_expr(expr)
    given = code.str.slice(10, 1).str.to_integer(strict=False)
    return (iso6346_shape_expr(expr) & (iso6346_check_digit_expr(expr) == given)).fill_null(False)


# --------------------------------------------------------------------------- IMO


def _imo_digits(value: object) -> str | None:
    """Normalised IMO number: stripped, upper-cased, optional ``IMO`` prefix removed."""
    code = normalize_code(value)
    if code is None:
        return None
    if code.startswith("IMO"):
        code = code[3:]
        if code.startswith(" "):
            code = code[1:]
    return code


def imo_check_digit(six_digits: str) -> int:
    """Return the IMO ship-number check digit of the first six digits.

    The check digit is the last digit of ``sum(d_i * w_i)`` with weights 7..2.

    Raises
    ------
    ValueError
        If ``six_digits`` is not exactly six ASCII digits.

    Examples
    --------
    >>> imo_check_digit("907472")
    9
    """
    if not isinstance(six_digits, str) or not re.fullmatch(r"[0-9]{6}", six_digits):
        raise ValueError(f"IMO prefix must be 6 digits, got {six_digits!r}")
    return sum(int(d) * w for d, w in zip(six_digits, _IMO_WEIGHTS)) % 10


def imo_shape_ok(value: object) -> bool:
    """True when the value is seven digits, optionally prefixed ``IMO``; never raises."""
    digits = _imo_digits(value)
    return digits is not None and _IMO_RE.fullmatch(digits) is not None


def imo_is_valid(value: object) -> bool:
    """True for a 7-digit IMO number (optionally prefixed ``IMO``) with a correct check digit.

    Examples
    --------
    >>> imo_is_valid("9074729"), imo_is_valid("IMO 9074729"), imo_is_valid("9074728")
    (True, True, False)
    """
    if not imo_shape_ok(value):
        return False
    digits = _imo_digits(value)
    assert digits is not None
    return imo_check_digit(digits[:6]) == int(digits[6])


def imo_normalize_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised IMO normalisation: strip, upper-case, drop an ``IMO`` prefix."""
    return normalize_code_expr(expr).str.replace(r"^IMO ?", "")


def imo_shape_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`imo_shape_ok` (``False`` for null)."""
    return imo_normalize_expr(expr).str.contains(IMO_PATTERN).fill_null(False)


def imo_valid_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`imo_is_valid` (``False`` for null)."""
    digits = imo_normalize_expr(expr)
    weighted = pl.sum_horizontal(
        [digits.str.slice(i, 1).str.to_integer(strict=False) * w for i, w in enumerate(_IMO_WEIGHTS)],
        ignore_nulls=False,
    )
    given = digits.str.slice(6, 1).str.to_integer(strict=False)
    return (imo_shape_expr(expr) & ((weighted % 10) == given)).fill_null(False)


# --------------------------------------------------------------------------- UN/LOCODE


def locode_shape_ok(value: object) -> bool:
    """True when the normalised value has the UN/LOCODE shape ``^[A-Z]{2}[A-Z2-9]{3}$``.

    Only the shape is checked; membership in the port reference is a separate
    rule (see :mod:`features.data.validation`).

    Examples
    --------
    >>> locode_shape_ok("nlrtm"), locode_shape_ok("NLRT1")
    (True, False)
    """
    code = normalize_code(value)
    return code is not None and _LOCODE_RE.fullmatch(code) is not None


def locode_shape_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`locode_shape_ok` (``False`` for null)."""
    return normalize_code_expr(expr).str.contains(LOCODE_PATTERN).fill_null(False)


# --------------------------------------------------------------------------- HS code


def hs_code_digits_ok(value: object) -> bool:
    """True when the stripped value is 6, 8 or 10 ASCII digits."""
    code = normalize_code(value)
    return code is not None and _HS_RE.fullmatch(code) is not None


def hs_chapter_ok(value: object) -> bool:
    """True when the first two characters form an HS chapter 01-97 other than 77."""
    code = normalize_code(value)
    if code is None or not re.fullmatch(r"[0-9]{2}", code[:2]):
        return False
    chapter = int(code[:2])
    return 1 <= chapter <= 97 and chapter != 77


def hs_code_ok(value: object) -> bool:
    """True for a Harmonized System code: digits only, 6/8/10 long, chapter 01-97 but not 77.

    Examples
    --------
    >>> hs_code_ok("080390"), hs_code_ok("770000"), hs_code_ok("0803.90")
    (True, False, False)
    """
    return hs_code_digits_ok(value) and hs_chapter_ok(value)


def hs_code_digits_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`hs_code_digits_ok` (``False`` for null)."""
    return normalize_code_expr(expr).str.contains(HS_CODE_PATTERN).fill_null(False)


def hs_chapter_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`hs_chapter_ok` (``False`` for null)."""
    head = normalize_code_expr(expr).str.slice(0, 2)
    chapter = pl.when(head.str.contains(r"^[0-9]{2}$")).then(head.str.to_integer(strict=False))
    return (chapter.is_between(1, 97) & (chapter != 77)).fill_null(False)


def hs_code_valid_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised :func:`hs_code_ok` (``False`` for null)."""
    return hs_code_digits_expr(expr) & hs_chapter_expr(expr)
