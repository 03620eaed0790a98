"""Specification of the identifier validators (features.data.checks): scalar and vectorised forms agree."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iso6346 as stdnum_iso6346

from features.data import checks
from features.data.checks import (
    hs_code_ok,
    hs_code_valid_expr,
    imo_check_digit,
    imo_is_valid,
    imo_valid_expr,
    iso6346_check_digit,
    iso6346_check_digit_expr,
    iso6346_is_valid,
    iso6346_valid_expr,
    locode_shape_expr,
    locode_shape_ok,
)

VALID_CONTAINERS = ["CSQU3054383", "TEXU3070079", "MSKU6011672", "GESU3927660", "CSQU0000070"]


def column(values: list[object], expr_fn) -> list[bool]:  # noqa: ANN001
    """Apply a vectorised validator to a String column of ``values``."""
    df = pl.DataFrame({"x": values}, schema={"x": pl.String})
    return df.select(expr_fn(pl.col("x")).alias("ok")).to_series().to_list()


# --------------------------------------------------------------------------- ISO 6346


@pytest.mark.parametrize("number", VALID_CONTAINERS)
def test_domain_vectors_are_valid_container_numbers(number: str) -> None:
    assert iso6346_is_valid(number)
    assert iso6346_check_digit(number[:10]) == int(number[10])


def test_wrong_check_digit_is_invalid() -> None:
    assert not iso6346_is_valid("CSQU3054384")


def test_letter_values_skip_multiples_of_eleven() -> None:
    values = checks.ISO6346_LETTER_VALUES
    assert (values["A"], values["B"], values["K"], values["L"], values["U"], values["V"], values["Z"]) == (
        10, 12, 21, 23, 32, 34, 38,
    )
    assert not any(v % 11 == 0 for v in values.values())


def test_remainder_ten_maps_to_zero() -> None:
    # CSQU000007: weighted sum 4,025; 4,025 % 11 == 10 -> check digit 0.
    assert iso6346_check_digit("CSQU000007") == 0
    assert iso6346_is_valid("CSQU0000070")


@pytest.mark.parametrize(
    "value",
    ["", "CSQU305438", "CSQU30543833", "CSQX3054383", "C5QU3054383", "AB_U3054383", "CSQU 3054383", "ÇSQU3054383", None, 3054383, b"CSQU3054383"],
)
def test_malformed_container_numbers_are_invalid_without_raising(value: object) -> None:
    assert iso6346_is_valid(value) is False


def test_container_number_is_normalised_before_checking() -> None:
    assert iso6346_is_valid("  csqu3054383\t")
    assert column(["  csqu3054383\t"], iso6346_valid_expr) == [True]


def test_python_stdnum_raises_where_our_wrapper_returns_false() -> None:
    with pytest.raises(ValueError):
        stdnum_iso6346.is_valid("AB_U3054383")
    assert iso6346_is_valid("AB_U3054383") is False


@pytest.mark.parametrize("prefix", ["", "CSQU30543", "CSQU3054383", "csqu305438", "CSQR305438", None])
def test_iso6346_check_digit_rejects_malformed_prefix(prefix: object) -> None:
    with pytest.raises(ValueError, match="ISO 6346 prefix"):
        iso6346_check_digit(prefix)  # type: ignore[arg-type]


owner_codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
serials = st.text(alphabet="0123456789", min_size=6, max_size=6)


@settings(max_examples=200, deadline=None)
@given(owner=owner_codes, category=st.sampled_from("UJZ"), serial=serials)
def test_generated_numbers_validate_and_agree_with_stdnum(owner: str, category: str, serial: str) -> None:
    prefix = owner + category + serial
    number = prefix + str(iso6346_check_digit(prefix))
    assert iso6346_is_valid(number)
    assert stdnum_iso6346.is_valid(number)
    wrong = prefix + str((int(number[-1]) + 1) % 10)
    assert not iso6346_is_valid(wrong)


near_containers = st.one_of(
    st.builds(lambda o, c, s, d: o + c + s + d, owner_codes, st.sampled_from("UJZRX"), serials, st.text("0123456789", min_size=1, max_size=1)),
    st.text(alphabet="ACSQUZJ0123456789 _-\t\xa0\x1cıß", max_size=13),
    st.text(max_size=14),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.none(), near_containers), max_size=20))
def test_iso6346_expression_agrees_with_scalar(values: list[str | None]) -> None:
    assert column(values, iso6346_valid_expr) == [iso6346_is_valid(v) for v in values]
    digits = column(values, iso6346_check_digit_expr)
    for v, d in zip(values, digits):
        if checks.iso6346_shape_ok(v):
            assert d == iso6346_check_digit(checks.normalize_code(v)[:10])  # type: ignore[index]
        else:
            assert d is None


# --------------------------------------------------------------------------- IMO


def test_imo_domain_vector() -> None:
    assert imo_check_digit("907472") == 9
    assert imo_is_valid("9074729")
    assert imo_is_valid("IMO 9074729")
    assert imo_is_valid("imo9074729")
    assert not imo_is_valid("9074728")


@pytest.mark.parametrize("value", ["", "907472", "90747290", "9O74729", "IMO", "IMO  9074729", None, 9074729])
def test_malformed_imo_numbers_are_invalid(value: object) -> None:
    assert imo_is_valid(value) is False


@pytest.mark.parametrize("prefix", ["90747", "9074729", "abcdef", None])
def test_imo_check_digit_rejects_malformed_prefix(prefix: object) -> None:
    with pytest.raises(ValueError, match="IMO prefix must be 6 digits"):
        imo_check_digit(prefix)  # type: ignore[arg-type]


near_imos = st.one_of(
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.builds(lambda p, d: p + d, st.sampled_from(["IMO", "IMO ", "imo", " IMO  ", ""]), st.text("0123456789", min_size=6, max_size=8)),
    st.text(max_size=10),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.none(), near_imos), max_size=20))
def test_imo_expression_agrees_with_scalar(values: list[str | None]) -> None:
    assert column(values, imo_valid_expr) == [imo_is_valid(v) for v in values]


# --------------------------------------------------------------------------- UN/LOCODE and HS


@pytest.mark.parametrize(("value", "ok"), [("NLRTM", True), ("nlrtm ", True), ("CNSH2", True), ("NLRT1", False), ("NL RTM", False), ("NLRTMX", False), ("", False), (None, False)])
def test_locode_shape(value: object, ok: bool) -> None:
    assert locode_shape_ok(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("080390", True),
        ("08039010", True),
        ("0803901000", True),
        ("970000", True),
        ("010100", True),
        ("0803", False),
        ("0803901", False),
        ("770000", False),
        ("980000", False),
        ("000000", False),
        ("0803.90", False),
        ("08039O", False),
        ("", False),
        (None, False),
    ],
)
def test_hs_code(value: object, ok: bool) -> None:
    assert hs_code_ok(value) is ok
    assert column([value], hs_code_valid_expr) == [ok]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet="0123456789 .", max_size=11), st.text(alphabet="ABNLRTM2395 ", max_size=6), st.text(max_size=8)),
        max_size=20,
    )
)
def test_locode_and_hs_expressions_agree_with_scalar(values: list[str | None]) -> None:
    assert column(values, locode_shape_expr) == [locode_shape_ok(v) for v in values]
    assert column(values, hs_code_valid_expr) == [hs_code_ok(v) for v in values]
