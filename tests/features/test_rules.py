"""Specification of the rule-profile language and evaluation (features.rules.language)."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from features.data.contracts import MANIFESTS
from features.rules.language import (
    reason_expr,
    MAX_EXPRESSION_LENGTH,
    MAX_NESTING_DEPTH,
    RuleProfile,
    RuleSyntaxError,
    compile_rule,
    default_rule_profiles,
    evaluate_rules,
    referenced_columns,
    ruleset_hash,
    validate_expression,
)

UTC = timezone.utc
AT = datetime(2024, 4, 9, tzinfo=UTC)


def ts(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def base_row(**overrides: object) -> dict[str, object]:
    """A benign manifest line (furniture from Shanghai to Antwerp) that no default rule selects."""
    row: dict[str, object] = {
        "manifest_id": "A",
        "container_number": "CSQU3054383",
        "container_type": "22G1",
        "reefer": False,
        "seal_number": "SL123456",
        "master_bl": "MAEU240300001",
        "house_bl": None,
        "vessel_imo": "9074729",
        "voyage": "412W",
        "carrier": "MAEU",
        "place_of_receipt": "CNSHA",
        "port_of_loading": "CNSHA",
        "transshipment_ports": [],
        "port_of_discharge": "BEANR",
        "place_of_delivery": "BEANR",
        "shipper_id": "CN91310000",
        "shipper_name": "SHANGHAI HOME FURNISHING CO LTD",
        "shipper_country": "CN",
        "consignee_id": "BE0403170701",
        "consignee_name": "MEUBELEN JANSSENS NV",
        "consignee_country": "BE",
        "notify_id": "BE0403170701",
        "notify_name": "MEUBELEN JANSSENS NV",
        "notify_country": "BE",
        "hs_code": "940360",
        "goods_description": "WOODEN FURNITURE",
        "packages": 120,
        "gross_mass_kg": 12000.0,
        "verified_gross_mass_kg": 12050.0,
        "declared_value": 48000.0,
        "currency": "USD",
        "freight_payment": "PP",
        "booked_at": ts(2024, 3, 1),
        "filed_at": ts(2024, 3, 5, 10),
        "amended_at": None,
        "amended_fields": None,
        "etd": ts(2024, 3, 7),
        "eta": ts(2024, 4, 10, 6),
    }
    unknown = set(overrides) - set(row)
    assert not unknown, unknown
    row.update(overrides)
    return row


def frame(*rows: dict[str, object]) -> pl.LazyFrame:
    return pl.DataFrame(list(rows), schema=MANIFESTS.schema).lazy()


# Four rows exercising every field kind; see each test's expected selection.
ROWS = frame(
    base_row(),
    base_row(
        manifest_id="B",
        container_type="45R1",
        reefer=True,
        place_of_receipt="ECGYE",
        port_of_loading="ECGYE",
        transshipment_ports=["PAMIT"],
        hs_code="080390",
        goods_description="Fresh Bananas",
        packages=1960,
        gross_mass_kg=21000.0,
        declared_value=6300.0,
        freight_payment="CC",
        house_bl="HBL-77",
        consignee_country="NL",
        notify_id=None,
        notify_name=None,
        notify_country=None,
        etd=ts(2024, 3, 25),
        filed_at=ts(2024, 4, 9, 20),
        eta=ts(2024, 4, 10, 14),
        amended_at=ts(2024, 4, 9, 12),
        amended_fields=["consignee"],
    ),
    base_row(
        manifest_id="C",
        place_of_receipt="BRSSZ",
        port_of_loading="BRSSZ",
        transshipment_ports=["ESALG", "MAPTM", "PAMIT"],
        hs_code="180100",
        goods_description="STC cocoa beans",
        packages=300,
        gross_mass_kg=18000.0,
        declared_value=9000.0,
        freight_payment="TP",
        house_bl="  ",
        etd=ts(2024, 3, 10),
        filed_at=ts(2024, 3, 20),
        eta=ts(2024, 4, 11, 23, 30),
        amended_fields=[],
    ),
    base_row(
        manifest_id="D",
        transshipment_ports=None,
        seal_number=None,
        hs_code="291400",
        goods_description="KETONES",
        packages=10,
        gross_mass_kg=0.0,
        verified_gross_mass_kg=None,
        declared_value=100.0,
        currency="CNY",
        etd=ts(2024, 3, 28),
        filed_at=ts(2024, 4, 1),
        eta=ts(2024, 4, 12),
    ),
)
ALL = {"A", "B", "C", "D"}


def selected(expression: str, rows: pl.LazyFrame = ROWS) -> set[str]:
    result = rows.select("manifest_id", hit=compile_rule(expression)).collect()
    assert result.schema["hit"] == pl.Boolean()
    assert result["hit"].null_count() == 0
    return set(result.filter("hit")["manifest_id"])


# --------------------------------------------------------------------------- constructs


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # boolean fields, literals and connectives
        ("reefer", {"B"}),
        ("not reefer", {"A", "C", "D"}),
        ("not not reefer", {"B"}),
        ("reefer == true", {"B"}),
        ("reefer != true", {"A", "C", "D"}),
        ("reefer == false", {"A", "C", "D"}),
        ("true", ALL),
        ("false", set()),
        ('reefer and origin_country == "EC" or hs_chapter == "18"', {"B", "C"}),
        ('reefer and (origin_country == "BR" or hs_chapter == "08")', {"B"}),
        ('origin_country == "CN" and not (hs_chapter == "29")', {"A"}),
        ("reefer\n  and\thouse_bl_only", {"B"}),
        # comparisons on strings, ints, floats, datetimes
        ('hs_code != "940360"', {"B", "C", "D"}),
        ("port_of_loading == 'ECGYE'", {"B"}),
        ('goods_description >= "S"', {"A", "C"}),
        ('goods_description != "it\\"s"', ALL),
        ("packages > 300", {"B"}),
        ("packages >= 300", {"B", "C"}),
        ("packages < 120", {"D"}),
        ("packages <= 120", {"A", "D"}),
        ("packages == 120.0", {"A"}),
        ("-1 < packages", ALL),
        ("gross_mass_kg > 1.8e4", {"B"}),
        ("gross_mass_kg >= 18000", {"B", "C"}),
        ("amended_at > etd", {"B"}),
        # membership
        ('origin_country in ["EC", "BR"]', {"B", "C"}),
        ('origin_country not in ["CN"]', {"B", "C"}),
        ("origin_country in []", set()),
        ("origin_country not in []", ALL),
        ('origin_country in ["EC",]', {"B"}),
        ("packages in [10, 120]", {"A", "D"}),
        ("packages in [10.0, 1960.5]", {"D"}),
        ("packages not in [10]", {"A", "B", "C"}),
        ("gross_mass_kg in [18000, 0]", {"C", "D"}),
        ("reefer in [true]", {"B"}),
        # derived fields
        ('hs_heading == "0803"', {"B"}),
        ('hs_chapter == "29"', {"D"}),
        ("transshipment_count == 0", {"A", "D"}),
        ("transshipment_count >= 3", {"C"}),
        ("value_per_kg < 0.4", {"B"}),
        ("value_per_kg == null", {"D"}),
        ("house_bl_only", {"B"}),
        ("not house_bl_only", {"A", "C", "D"}),
        ("filing_lead_hours < 24", {"B"}),
        # functions
        ('startswith(goods_description, "STC")', {"C"}),
        ('startswith(goods_description, "stc")', set()),
        ('contains(goods_description, "BANANA")', {"B"}),
        ('contains(goods_description, "ketone")', {"D"}),
        ('any_in(transshipment_ports, ["PAMIT"])', {"B", "C"}),
        ('any_in(transshipment_ports, ["MAPTM", "XXXXX"])', {"C"}),
        ("any_in(transshipment_ports, [])", set()),
        ('any_in(amended_fields, ["consignee"])', {"B"}),
        ("len(transshipment_ports) == 0", {"A"}),
        ("len(amended_fields) == 0", {"C"}),
        ('country(place_of_receipt) == "CN"', {"A", "D"}),
        ("hour(eta) == 23", {"C"}),
        ("hour(eta) in [6, 14]", {"A", "B"}),
        ("hours_between(filed_at, eta) < 24", {"B"}),
        ("hours_between(eta, filed_at) > -24", {"B"}),
        ('lower(goods_description) == "wooden furniture"', {"A"}),
        ('lower(country(port_of_loading)) == "ec"', {"B"}),
        # null tests
        ("seal_number == null", {"D"}),
        ("seal_number != null", {"A", "B", "C"}),
        ("null == seal_number", {"D"}),
        ("house_bl != null", {"B", "C"}),
        ("transshipment_ports == null", {"D"}),
        # combinations
        ('freight_payment in ["CC", "TP"] and house_bl_only', {"B"}),
        ('amended_fields != null and any_in(amended_fields, ["consignee"])', {"B"}),
        ('currency != "USD"', {"D"}),
    ],
)
def test_every_construct_selects_the_expected_rows(expression: str, expected: set[str]) -> None:
    assert selected(expression) == expected


def test_string_arguments_are_literals_not_column_names() -> None:
    rows = frame(base_row(goods_description="hs_code list"), base_row(manifest_id="B"))
    assert selected('startswith(goods_description, "hs_code")', rows) == {"A"}
    assert selected('contains(goods_description, "HS_CODE")', rows) == {"A"}
    assert selected('goods_description in ["hs_code list"]', rows) == {"A"}


def test_hours_between_is_b_minus_a_as_float() -> None:
    result = ROWS.select(h=compile_rule("hours_between(filed_at, eta) == 18.0")).collect()
    assert result["h"].to_list() == [False, True, False, False]
    assert selected("hours_between(filed_at, eta) > 17.5 and hours_between(filed_at, eta) < 18.5") == {"B"}


def test_referenced_columns_expands_derived_fields() -> None:
    assert referenced_columns("value_per_kg < 1 and hours_between(amended_at, eta) > 2") == {
        "declared_value",
        "gross_mass_kg",
        "amended_at",
        "eta",
    }
    assert referenced_columns("true") == frozenset()


def test_expression_at_the_length_limit_is_accepted() -> None:
    text = "reefer" + " or reefer" * 199
    text += " " * (MAX_EXPRESSION_LENGTH - len(text))
    assert len(text) == MAX_EXPRESSION_LENGTH
    assert selected(text) == {"B"}


def test_nesting_at_the_depth_limit_is_accepted() -> None:
    depth = MAX_NESTING_DEPTH
    assert selected("(" * depth + "reefer" + ")" * depth) == {"B"}
    assert selected("not " * depth + "reefer") == {"B"}


# --------------------------------------------------------------------------- null semantics

NULLS = frame(
    base_row(manifest_id="present", seal_number="S1", packages=1),
    base_row(manifest_id="missing", seal_number=None, packages=1),
    base_row(manifest_id="missing2", seal_number=None, packages=2),
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('seal_number == "S1"', {"present"}),
        ('seal_number != "S1"', set()),
        ('not (seal_number == "S1")', set()),
        ('not (seal_number == "X")', {"present"}),
        ('not (seal_number != "S1")', {"present"}),
        ('seal_number in ["S1"]', {"present"}),
        ('seal_number not in ["X"]', {"present"}),
        ('not (seal_number in ["X"])', {"present"}),
        ('not startswith(seal_number, "X")', {"present"}),
        ('not contains(seal_number, "X")', {"present"}),
        ('seal_number < "T"', {"present"}),
        ('not (seal_number < "A")', {"present"}),
        ('not (seal_number == "X" and packages == 1)', {"present", "missing2"}),
        ('not (seal_number == "X" or packages == 2)', {"present"}),
        ('seal_number == "S1" or packages == 2', {"present", "missing2"}),
        ("seal_number == null", {"missing", "missing2"}),
        ("not (seal_number == null)", {"present"}),
        ("not (seal_number != null)", {"missing", "missing2"}),
        ('lower(seal_number) == "s1"', {"present"}),
    ],
)
def test_a_missing_field_never_makes_a_predicate_fire(expression: str, expected: set[str]) -> None:
    assert selected(expression, NULLS) == expected


def test_null_list_and_timestamp_fields_are_false_under_negation() -> None:
    rows = frame(base_row(transshipment_ports=None, amended_at=None))
    for expression in (
        'any_in(transshipment_ports, ["PAMIT"])',
        'not any_in(transshipment_ports, ["PAMIT"])',
        "len(transshipment_ports) == 0",
        "not (len(transshipment_ports) > 0)",
        "hour(amended_at) >= 0",
        "not (hour(amended_at) >= 0)",
        "hours_between(amended_at, eta) < 48",
        "not (hours_between(amended_at, eta) < 48)",
    ):
        assert selected(expression, rows) == set(), expression
    assert selected("transshipment_count == 0", rows) == {"A"}


def test_null_boolean_field_is_false_and_so_is_its_negation() -> None:
    rows = pl.LazyFrame(
        {"manifest_id": ["A"], "reefer": [None]}, schema={"manifest_id": pl.String, "reefer": pl.Boolean}
    )
    assert selected("reefer", rows) == set()
    assert selected("not reefer", rows) == set()
    assert selected("reefer == null", rows) == {"A"}


def test_value_per_kg_is_null_for_non_positive_or_missing_mass() -> None:
    rows = frame(
        base_row(manifest_id="zero", gross_mass_kg=0.0),
        base_row(manifest_id="negative", gross_mass_kg=-5.0),
        base_row(manifest_id="missing", gross_mass_kg=None),
        base_row(manifest_id="ok", gross_mass_kg=100.0, declared_value=50.0),
    )
    assert selected("value_per_kg == null", rows) == {"zero", "negative", "missing"}
    assert selected("value_per_kg == 0.5", rows) == {"ok"}
    assert selected("not (value_per_kg > 1)", rows) == {"ok"}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("consigne_id == 'X'", "unknown field 'consigne_id' at 0"),
        ('origin_country in ["EC"] and shiper_id == "1"', "unknown field 'shiper_id' at 29"),
        ("upper(hs_code) == 'X'", "unknown function 'upper' at 0"),
        ('(reefer and hs_code == "1" ', "expected ')' at 27"),
        ("len(transshipment_ports", "expected ')' at 23"),
        ('origin_country in ["EC"', "expected ']' at 23"),
        ("", "expression is empty at 0"),
        (" \n\t", "expression is empty at 0"),
        ("reefer and", "unexpected end of expression at 10"),
        ("not", "unexpected end of expression at 3"),
        ("reefer reefer", "unexpected 'reefer' at 7"),
        ("reefer)", "unexpected ')' at 6"),
        ("and reefer", "unexpected 'and' at 0"),
        ("reefer = true", "unexpected '=' (use '==') at 7"),
        ("reefer & true", "unexpected character '&' at 7"),
        ("hs_code == 'abc", "unterminated string at 11"),
        ('hs_code == "a\nb"', "unterminated string at 11"),
        ('hs_code == "a\\tb"', "invalid escape in string at 13"),
        ("packages > 1.", "malformed number at 11"),
        ("packages > 1e", "malformed number at 11"),
        ("packages > 12abc", "malformed number at 11"),
        ("packages > 99999999999999999999", "integer out of range at 11"),
        ("gross_mass_kg > 1e400", "number out of range at 16"),
        ("packages > - reefer", "expected a number after '-' at 13"),
        ('packages == "1"', "cannot compare int with string at 9"),
        ("hs_code > 5", "cannot compare string with int at 8"),
        ("eta > 5", "cannot compare datetime with int at 4"),
        ("reefer < true", "'<' is not defined for bool at 7"),
        ('transshipment_ports == "PAMIT"', "cannot compare list with string; use any_in() or len() at 20"),
        ("null == null", "cannot compare null with null at 5"),
        ("packages > null", "null can only be compared with '==' or '!=' at 9"),
        ("null in ['a']", "null is only allowed in '== null' or '!= null' at 0"),
        ('hs_code in ["a", null]', "null is not allowed in a list at 17"),
        ('hs_code in ["a", 1]', "mixed literal types in list at 12"),
        ("hs_code in [1, 2]", "cannot look up string in a list of int at 8"),
        ('packages not in ["1"]', "cannot look up int in a list of string at 9"),
        ("eta in [1]", "'in' is not defined for datetime at 4"),
        ('transshipment_ports in ["PAMIT"]', "'in' needs a single value on the left, got list; use any_in() at 20"),
        ('hs_code in "abc"', "expected '[' after 'in' at 11"),
        ("hs_code in [hs_code]", "expected a literal, got 'hs_code' at 12"),
        ('["a"] == hs_code', "unexpected '[' at 0"),
        ('any_in(hs_code, ["A"])', "'any_in' expects a list field as argument 1, got string at 7"),
        ("any_in(transshipment_ports, [1])", "'any_in' expects a list of strings as argument 2 at 28"),
        ('any_in(transshipment_ports, "PAMIT")', "'any_in' expects a list of strings as argument 2 at 28"),
        ("len(hs_code) > 1", "'len' expects a list field as argument 1, got string at 4"),
        ("len() > 1", "'len' expects 1 argument, got 0 at 0"),
        ('startswith(hs_code) ', "'startswith' expects 2 arguments, got 1 at 0"),
        ("startswith(hs_code, hs_code)", "'startswith' expects a string literal as argument 2 at 20"),
        ("contains(packages, '1')", "'contains' expects a string as argument 1, got int at 9"),
        ("hour(hs_code) > 1", "'hour' expects a datetime as argument 1, got string at 5"),
        ("hours_between(eta, 5) > 1", "'hours_between' expects a datetime as argument 2, got int at 19"),
        ("country(reefer == true) == 'EC'", "'country' expects a string as argument 1, got condition at 8"),
        ("lower(['a']) == 'a'", "'lower' expects a string as argument 1, got a list literal at 6"),
        ("packages", "expected a condition, got int at 0"),
        ("'abc'", "expected a condition, got string at 0"),
        ("reefer and packages", "expected a condition, got int at 11"),
        ("not hs_code", "expected a condition, got string at 4"),
        ("(reefer == true) == true", "expected a value, got a condition at 1"),
        ("packages < 1 < 2", "unexpected '<' at 13"),
        ("(" * (MAX_NESTING_DEPTH + 1) + "reefer" + ")" * (MAX_NESTING_DEPTH + 1), "nesting too deep (max 32) at 32"),
        ("not " * (MAX_NESTING_DEPTH + 1) + "reefer", "nesting too deep (max 32) at 128"),
        ("x" * (MAX_EXPRESSION_LENGTH + 1), "expression too long (max 2000 characters) at 2000"),
    ],
)
def test_errors_name_the_problem_and_the_offset(expression: str, message: str) -> None:
    with pytest.raises(RuleSyntaxError, match="^" + re.escape(message) + "$") as caught:
        validate_expression(expression)
    assert isinstance(caught.value, ValueError)
    assert f"{caught.value.problem} at {caught.value.position}" == message
    with pytest.raises(RuleSyntaxError, match="^" + re.escape(message) + "$"):
        compile_rule(expression)


@pytest.mark.parametrize("value", [None, 42, b"reefer", ["reefer"]])
def test_non_string_expression_is_a_rule_syntax_error(value: object) -> None:
    with pytest.raises(RuleSyntaxError, match=r"^expression must be a string at 0$"):
        validate_expression(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "__import__('os').system('id')",
        "a.b",
        "goods_description.upper() == 'X'",
        "hs_code.__class__",
        "().__class__.__bases__",
        "lambda: True",
        "lambda x: x",
        "transshipment_ports[0] == 'PAMIT'",
        "hs_code[0:2] == '08'",
        "[p for p in transshipment_ports]",
        "any(p == 'PAMIT' for p in transshipment_ports)",
        'f"{hs_code}" == "x"',
        "f'{__import__(\"os\")}'",
        "b'x' == hs_code",
        "open('/etc/passwd')",
        "eval('1')",
        "exec('import os')",
        "getattr(reefer, 'real')",
        "globals()",
        "print(reefer)",
        "str(packages) == '1'",
        "reefer if reefer else reefer",
        "reefer; import os",
        "import os",
        "packages ** 2 > 1",
        "packages + 1 > 2",
        "{1: 2}",
        "reefer # comment",
        "@reefer",
        "`reefer`",
        "reefer == True",
        "reefer AND reefer",
        "hs_code == 'x' \\\n or reefer",
        "\x00",
        "reefer\u2028or reefer",
        "packages > ١",
    ],
)
def test_python_constructs_are_rejected(expression: str) -> None:
    with pytest.raises(RuleSyntaxError):
        validate_expression(expression)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_rule_syntax_errors(text: str) -> None:
    try:
        validate_expression(text)
    except RuleSyntaxError:
        pass


_TOKENS = [
    "reefer", "packages", "hs_code", "hs_chapter", "eta", "filed_at", "amended_at", "transshipment_ports",
    "seal_number", "value_per_kg", "house_bl_only", "transshipment_count", "origin_country", "amended_fields",
    "and", "or", "not", "in", "true", "false", "null", "==", "!=", "<", "<=", ">", ">=", "(", ")", "[", "]",
    ",", "-", "1", "2.5", "'08'", '"EC"', "startswith", "contains", "any_in", "len", "country", "hour",
    "hours_between", "lower", "upper", ".", "=", "__import__",
]  # fmt: skip


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=25).map(" ".join))
def test_token_soup_either_fails_cleanly_or_runs_without_nulls(text: str) -> None:
    try:
        validate_expression(text)
    except RuleSyntaxError:
        return
    selected(text)  # runs on real rows, Boolean, never null


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_STRINGS = st.text(alphabet="ABCENOS08 '\"\\", max_size=6).map(_quote)
_STRING_VALUES = st.sampled_from(
    ["hs_chapter", "origin_country", "seal_number", "lower(goods_description)", "country(port_of_loading)", "house_bl"]
)
_NUMBER_VALUES = st.sampled_from(
    [
        "packages",
        "gross_mass_kg",
        "value_per_kg",
        "transshipment_count",
        "filing_lead_hours",
        "hour(eta)",
        "len(transshipment_ports)",
        "hours_between(amended_at, eta)",
    ]
)
_NUMBERS = st.sampled_from(["0", "1", "2.5", "-3", "1e3", "300", "18000"])
_COMPARE = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
_ATOMS = st.one_of(
    st.sampled_from(["reefer", "house_bl_only", "true", "false", "seal_number == null", "amended_fields != null"]),
    st.builds("{} {} {}".format, _NUMBER_VALUES, _COMPARE, _NUMBERS),
    st.builds("{} {} {}".format, _STRING_VALUES, _COMPARE, _STRINGS),
    st.builds(
        "{} {} [{}]".format,
        _STRING_VALUES,
        st.sampled_from(["in", "not in"]),
        st.lists(_STRINGS, max_size=3).map(", ".join),
    ),
    st.builds(
        "{} {} [{}]".format,
        _NUMBER_VALUES,
        st.sampled_from(["in", "not in"]),
        st.lists(_NUMBERS, max_size=3).map(", ".join),
    ),
    st.builds("any_in(transshipment_ports, [{}])".format, st.lists(_STRINGS, max_size=3).map(", ".join)),
    st.builds("{}({}, {})".format, st.sampled_from(["startswith", "contains"]), _STRING_VALUES, _STRINGS),
)
_CONDITIONS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.builds("not ({})".format, inner),
        st.builds("({}) {} ({})".format, inner, st.sampled_from(["and", "or"]), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONDITIONS)
def test_generated_rules_run_and_a_rule_and_its_negation_never_both_fire(expression: str) -> None:
    validate_expression(expression)
    fires = selected(expression)
    negation_fires = selected(f"not ({expression})")
    assert not fires & negation_fires
    assert fires | negation_fires <= ALL


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONDITIONS, st.data())
def test_mutated_rules_fail_cleanly_or_run(expression: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(expression)))
    insert = data.draw(st.sampled_from(["", "(", ")", "[", '"', "'", ".", "-", "not ", " and", "=", "\\", "1"]))
    drop = data.draw(st.integers(0, 2))
    mutated = expression[:position] + insert + expression[position + drop :]
    try:
        validate_expression(mutated)
    except RuleSyntaxError:
        return
    selected(mutated)


# --------------------------------------------------------------------------- profiles


def profile(**overrides: object) -> RuleProfile:
    fields: dict[str, object] = {
        "code": "R1",
        "reason": "Test rule",
        "expression": "reefer",
        "valid_from": ts(2024, 1, 1),
        "valid_to": None,
        "level": "NATIONAL",
        "port": None,
        "weight": 10.0,
    }
    fields.update(overrides)
    return RuleProfile(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"code": ""}, "at least 1 character"),
        ({"code": "r1"}, "should match pattern"),
        ({"code": "R 1"}, "should match pattern"),
        ({"code": "R" * 33}, "at most 32 characters"),
        ({"reason": "   "}, "at least 1 character"),
        ({"reason": "x" * 301}, "at most 300 characters"),
        ({"expression": "consigne_id == 'X'"}, "unknown field 'consigne_id' at 0"),
        ({"expression": ""}, "at least 1 character"),
        ({"valid_from": datetime(2024, 1, 1)}, "timezone"),
        ({"valid_to": datetime(2025, 1, 1)}, "timezone"),
        ({"valid_to": ts(2024, 1, 1)}, "valid_to must be after valid_from"),
        ({"level": "REGIONAL"}, "NATIONAL"),
        ({"level": "PORT"}, "port is required when level is PORT"),
        ({"port": "BEANR"}, "port must be empty when level is NATIONAL"),
        ({"level": "PORT", "port": "beanr"}, "should match pattern"),
        ({"level": "PORT", "port": "BEAN1"}, "should match pattern"),
        ({"weight": 0}, "greater than 0"),
        ({"weight": -1}, "greater than 0"),
        ({"weight": 100.5}, "less than or equal to 100"),
        ({"weight": float("nan")}, "finite number"),
        ({"severity": 3}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_profiles_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        profile(**overrides)


def test_profile_is_frozen_and_hashable() -> None:
    rule = profile()
    with pytest.raises(ValidationError):
        rule.weight = 5.0  # type: ignore[misc]
    assert hash(rule) == hash(profile())


def test_profile_accepts_boundary_weights_and_other_offsets() -> None:
    assert profile(weight=100).weight == 100.0
    cet = timezone(timedelta(hours=1))
    rule = profile(valid_from=datetime(2024, 1, 1, 1, tzinfo=cet), valid_to=datetime(2024, 2, 1, tzinfo=cet))
    assert rule.is_active(ts(2024, 1, 1), "BEANR")
    assert not rule.is_active(ts(2024, 1, 31, 23), "BEANR")


def test_is_active_window_is_inclusive_start_exclusive_end() -> None:
    rule = profile(valid_from=ts(2024, 1, 1), valid_to=ts(2024, 2, 1))
    assert not rule.is_active(ts(2023, 12, 31, 23, 59, 59), "BEANR")
    assert rule.is_active(ts(2024, 1, 1), "BEANR")
    assert rule.is_active(ts(2024, 1, 31, 23, 59, 59), "BEANR")
    assert not rule.is_active(ts(2024, 2, 1), "BEANR")
    assert profile().is_active(ts(2099, 1, 1), "NLRTM")


def test_is_active_port_rule_applies_only_to_its_port() -> None:
    rule = profile(level="PORT", port="BEANR")
    assert rule.is_active(AT, "BEANR")
    assert not rule.is_active(AT, "NLRTM")
    assert profile().is_active(AT, "NLRTM")


def test_is_active_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="^at must be timezone-aware$"):
        profile().is_active(datetime(2024, 1, 1), "BEANR")


# --------------------------------------------------------------------------- evaluation


def evaluate(
    rules: list[RuleProfile], rows: pl.LazyFrame = ROWS, *, at: datetime = AT, port: str | None = "BEANR"
) -> dict[str, tuple]:
    """Evaluate and collect, checking the output contract; manifest_id -> (codes, reasons, score)."""
    result = evaluate_rules(rules, rows, at=at, port=port)
    assert isinstance(result, pl.LazyFrame)
    collected = result.collect()
    assert collected.schema == pl.Schema(
        {
            "manifest_id": pl.String(),
            "rule_codes": pl.List(pl.String()),
            "rule_reasons": pl.List(pl.String()),
            "rule_score": pl.Float64(),
        }
    )
    return {r["manifest_id"]: (r["rule_codes"], r["rule_reasons"], r["rule_score"]) for r in collected.to_dicts()}


def test_zero_rules_give_empty_lists_and_zero_scores() -> None:
    assert evaluate([]) == {m: ([], [], 0.0) for m in ALL}


def test_fired_rules_are_ordered_by_weight_then_code_and_scores_sum() -> None:
    rules = [
        profile(code="B", reason="reason B", expression="reefer", weight=5),
        profile(code="A2", reason="reason A2", expression="house_bl_only", weight=10),
        profile(code="A", reason="reason A", expression='origin_country == "EC"', weight=5),
        profile(code="Z", reason="reason Z", expression="transshipment_count >= 3", weight=0.25),
    ]
    result = evaluate(rules)
    assert result["B"] == (["A2", "A", "B"], ["reason A2", "reason A", "reason B"], 20.0)
    assert result["C"] == (["Z"], ["reason Z"], 0.25)
    assert result["A"] == ([], [], 0.0)
    assert evaluate(list(reversed(rules))) == result


def test_only_rules_valid_at_the_decision_time_apply() -> None:
    rules = [
        profile(code="STARTS-NOW", expression="true", valid_from=AT, weight=1),
        profile(code="ENDS-NOW", expression="true", valid_from=ts(2024, 1, 1), valid_to=AT, weight=2),
        profile(code="FUTURE", expression="true", valid_from=AT + timedelta(microseconds=1), weight=4),
        profile(code="OPEN", expression="true", valid_from=ts(2000, 1, 1), weight=8),
    ]
    codes, _, score = evaluate(rules)["A"]
    assert codes == ["OPEN", "STARTS-NOW"]
    assert score == 9.0
    assert evaluate(rules, at=AT - timedelta(microseconds=1))["A"][0] == ["OPEN", "ENDS-NOW"]


def test_port_rules_apply_only_at_their_port() -> None:
    rules = [
        profile(code="NAT", expression="true", weight=1),
        profile(code="ANR", expression="true", level="PORT", port="BEANR", weight=2),
        profile(code="RTM", expression="true", level="PORT", port="NLRTM", weight=4),
    ]
    assert evaluate(rules, port="BEANR")["A"][0] == ["ANR", "NAT"]
    assert evaluate(rules, port="NLRTM")["A"][0] == ["RTM", "NAT"]
    assert evaluate(rules, port="FRLEH")["A"][0] == ["NAT"]


def test_without_a_port_each_port_rule_applies_to_its_port_of_discharge() -> None:
    rules = [
        profile(code="NAT", expression="true", weight=1),
        profile(code="ANR", expression="true", level="PORT", port="BEANR", weight=2),
        profile(code="RTM", expression="true", level="PORT", port="NLRTM", weight=4),
    ]
    rows = frame(base_row(manifest_id="anr"), base_row(manifest_id="rtm", port_of_discharge="NLRTM"))
    result = evaluate(rules, rows, port=None)
    assert result["anr"] == (["ANR", "NAT"], ["Test rule", "Test rule"], 3.0)
    assert result["rtm"] == (["RTM", "NAT"], ["Test rule", "Test rule"], 5.0)


def test_evaluation_keeps_row_order_and_is_independent_of_it() -> None:
    rules = default_rule_profiles()
    rows = ROWS.collect()
    expected = evaluate(rules)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=7)
    out = evaluate_rules(rules, shuffled.lazy(), at=AT, port="BEANR").collect()
    assert out["manifest_id"].to_list() == shuffled["manifest_id"].to_list()
    assert {r["manifest_id"]: (r["rule_codes"], r["rule_reasons"], r["rule_score"]) for r in out.to_dicts()} == expected


def test_missing_optional_columns_read_as_null() -> None:
    rows = ROWS.drop("amended_fields", "verified_gross_mass_kg")
    rules = [profile(code="AMD", expression='any_in(amended_fields, ["consignee"]) or amended_fields == null')]
    assert evaluate(rules, rows) == {m: (["AMD"], ["Test rule"], 10.0) for m in ALL}


def test_missing_required_columns_are_named() -> None:
    rules = [profile(expression="reefer")]
    with pytest.raises(ValueError, match="^manifests lack columns needed by the active rules: reefer$"):
        evaluate_rules(rules, ROWS.drop("reefer"), at=AT, port="BEANR")


def test_empty_input_gives_empty_output() -> None:
    assert evaluate(default_rule_profiles(), frame()) == {}


def test_duplicate_active_codes_are_rejected_but_successive_versions_are_fine() -> None:
    old = profile(code="R1", valid_to=ts(2024, 3, 1), weight=1)
    new = profile(code="R1", valid_from=ts(2024, 3, 1), weight=2)
    assert evaluate([old, new])["B"][2] == 2.0
    with pytest.raises(ValueError, match="^duplicate active rule codes: R1$"):
        evaluate_rules([new, profile(code="R1", valid_from=ts(2024, 2, 1))], ROWS, at=AT, port="BEANR")


def test_evaluate_rejects_naive_decision_time() -> None:
    with pytest.raises(ValueError, match="^at must be timezone-aware$"):
        evaluate_rules([], ROWS, at=datetime(2024, 1, 1), port=None)


# --------------------------------------------------------------------------- hashing


def test_ruleset_hash_is_order_independent_and_content_sensitive() -> None:
    rules = default_rule_profiles()
    digest = ruleset_hash(rules)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    shuffled = list(rules)
    random.Random(3).shuffle(shuffled)
    assert ruleset_hash(shuffled) == digest
    changed = [rules[0].model_copy(update={"weight": 29.0}), *rules[1:]]
    assert ruleset_hash(changed) != digest
    assert ruleset_hash(rules[1:]) != digest
    assert ruleset_hash([]) != digest


def test_ruleset_hash_normalises_time_zones() -> None:
    cet = timezone(timedelta(hours=1))
    utc_rule = profile(valid_from=ts(2024, 1, 1))
    cet_rule = profile(valid_from=datetime(2024, 1, 1, 1, tzinfo=cet))
    assert ruleset_hash([utc_rule]) == ruleset_hash([cet_rule])


# --------------------------------------------------------------------------- default rule set

DEFAULT_TRIGGERS: dict[str, dict[str, object]] = {
    "COC-REEFER-FRUIT": {
        "reefer": True,
        "container_type": "45R1",
        "hs_code": "080390",
        "port_of_loading": "ECGYE",
        "goods_description": "FRESH BANANAS",
    },
    "COC-COVER-LOAD": {"hs_code": "180100", "port_of_loading": "BRSSZ", "goods_description": "COCOA BEANS"},
    "COC-TS-CARIBBEAN": {"transshipment_ports": ["PAMIT"]},
    "COC-TS-WEST-AFRICA": {"port_of_loading": "BRSSZ", "transshipment_ports": ["TGLFW"]},
    "VAGUE-DESCRIPTION": {"goods_description": "FAK"},
    "PRECURSOR-ORIGIN": {"hs_code": "293299", "goods_description": "ORGANIC CHEMICALS"},
    "METH-TEA-SEA": {"hs_code": "090230", "port_of_loading": "MMRGN", "goods_description": "BLACK TEA"},
    "HBL-FREIGHT-COLLECT": {"house_bl": "HBL-1", "freight_payment": "CC"},
    "LATE-FILING": {"filed_at": ts(2024, 4, 9, 20)},
    "LATE-AMENDMENT": {"amended_at": ts(2024, 4, 9, 18), "amended_fields": ["consignee"]},
    "LOW-VALUE-PER-KG": {
        "hs_code": "090111",
        "port_of_loading": "VNSGN",
        "goods_description": "GREEN COFFEE",
        "declared_value": 1000.0,
    },
    "CIRCUITOUS-ROUTE": {"transshipment_ports": ["SGSIN", "LKCMB", "EGPSD"]},
    "REEFER-NON-PERISHABLE": {"reefer": True, "container_type": "45R1"},
}


def test_default_rule_set_is_a_realistic_national_starter_set() -> None:
    rules = default_rule_profiles()
    assert 10 <= len(rules) <= 14
    assert len({r.code for r in rules}) == len(rules)
    assert {r.code for r in rules} == set(DEFAULT_TRIGGERS)
    for rule in rules:
        assert rule.level == "NATIONAL" and rule.port is None
        assert rule.valid_from == ts(2000, 1, 1) and rule.valid_to is None
        assert 0 < rule.weight <= 100
        validate_expression(rule.expression)


def test_default_rules_ignore_a_benign_manifest() -> None:
    assert evaluate(default_rule_profiles(), frame(base_row())) == {"A": ([], [], 0.0)}


@pytest.mark.parametrize("code", sorted(DEFAULT_TRIGGERS))
def test_each_default_rule_fires_on_its_purpose_built_row(code: str) -> None:
    rules = default_rule_profiles()
    rule = next(r for r in rules if r.code == code)
    row = frame(base_row(**DEFAULT_TRIGGERS[code]))
    assert selected(rule.expression, row) == {"A"}
    codes, reasons, score = evaluate(rules, row)["A"]
    assert code in codes
    assert reasons[codes.index(code)] == row.select(reason_expr(rule.reason)).collect().item()
    assert "{" not in reasons[codes.index(code)]  # placeholders are filled with the row's port, hubs, HS code
    assert score >= rule.weight


@pytest.mark.parametrize(
    ("description", "fires"),
    [
        ("FAK", True),
        ("fak consolidated cargo", True),
        ("STC 20 PALLETS", True),
        ("Said To Contain machine parts", True),
        ("GENERAL CARGO", True),
        ("Freight All Kinds", True),
        ("FAKE FUR COATS", False),
        ("POSTCARDS", False),
        ("FROZEN SHRIMP", False),
    ],
)
def test_vague_description_rule(description: str, fires: bool) -> None:
    rule = next(r for r in default_rule_profiles() if r.code == "VAGUE-DESCRIPTION")
    assert selected(rule.expression, frame(base_row(goods_description=description))) == ({"A"} if fires else set())


def test_precursor_rule_spares_established_exporters() -> None:
    rule = next(r for r in default_rule_profiles() if r.code == "PRECURSOR-ORIGIN")
    assert selected(rule.expression, frame(base_row(hs_code="293299", port_of_loading="DEHAM"))) == set()
