"""Rule profiles (ASYCUDA-style selectivity criteria) as data, in a small safe language.

A rule profile is a code, a plain-language reason shown to officers, a
validity window, a level (national or port) and a selection weight, plus a
boolean *expression* over manifest fields. Expressions are parsed by a
hand-written tokenizer and recursive-descent parser, type-checked against the
manifest contract (:data:`features.data.contracts.MANIFESTS`) and compiled to a
Polars expression. Python is never evaluated: there is no ``eval``/``exec``,
no attribute access, no subscripts and no calls except the whitelisted
functions below.

Grammar
-------
::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [ CMP operand | "in" list | "not" "in" list ]
    CMP        := "==" | "!=" | "<" | "<=" | ">" | ">="
    operand    := literal | FIELD | FUNCTION "(" [arg ("," arg)*] ")" | "(" or_expr ")"
    arg        := or_expr | list
    list       := "[" [literal ("," literal)* [","]] "]"
    literal    := STRING | ["-"] NUMBER | "true" | "false" | "null"

Keywords are lower case. Strings are single- or double-quoted (escapes:
``\\\\``, ``\\"`` and ``\\'`` only). Numbers are ``123``, ``1.5``, ``2e3``.
``null`` may only appear in ``field == null`` / ``field != null``.
Comparisons do not chain (``a < b < c`` is an error).

Fields: every column of the manifest contract, plus the derived fields

- ``hs_chapter`` (string): first 2 digits of ``hs_code``;
- ``hs_heading`` (string): first 4 digits of ``hs_code``;
- ``origin_country`` (string): country (first two letters) of ``port_of_loading``;
- ``transshipment_count`` (int): number of transshipment ports, 0 when null or empty;
- ``value_per_kg`` (float): ``declared_value / gross_mass_kg``, null when the mass is <= 0 or null;
- ``house_bl_only`` (bool): a house B/L is present (NVOCC consolidation);
- ``filing_lead_hours`` (float): ``eta - filed_at`` in hours.

Functions (all other names are rejected):

- ``startswith(s, "prefix")`` -> condition, case-sensitive;
- ``contains(s, "text")`` -> condition, case-insensitive substring;
- ``any_in(list_field, ["A", "B"])`` -> condition, true when any element is in the list;
- ``len(list_field)`` -> int (null when the list field is null);
- ``country(locode)`` -> string, the first two letters of a UN/LOCODE;
- ``hour(ts)`` -> int, hour of day 0..23 in UTC;
- ``hours_between(ts_a, ts_b)`` -> float, ``ts_b - ts_a`` in hours;
- ``lower(s)`` -> string, lower-cased.

Types are checked at compile time: strings compare with strings, numbers with
numbers (int and float mix), datetimes with datetimes, booleans only with
``==``/``!=``; lists only through ``any_in``, ``len`` or ``== null``.
Membership (``in``/``not in``) and string comparisons are case-sensitive.

Examples::

    reefer and hs_heading == "0803" and origin_country in ["EC", "CO"]
    any_in(transshipment_ports, ['PAMIT', 'JMKIN']) and transshipment_count >= 2
    contains(goods_description, "said to contain") or lower(goods_description) == "fak"
    house_bl_only and freight_payment not in ["PP"]
    hours_between(amended_at, eta) < 48 and not (consignee_country == "NL")

Null semantics
--------------
A rule never fires because a field is missing. Every *atomic* predicate (a
comparison, a membership test, ``startswith``/``contains``/``any_in``, or a
boolean field used as a condition) is false when a value it reads is null
(``fill_null(False)``). ``not`` is pushed down to the atomic predicates first
(De Morgan), and a negated atom is also false on null: ``not (x == "A")`` and
``x != "A"`` are both false when ``x`` is null. Only ``x == null`` and
``x != null`` look at missingness explicitly. (This equals SQL/Kleene
three-valued logic where an unknown result counts as "does not fire".)

Time semantics
--------------
Timestamps are ``Datetime("us", "UTC")``; ``hour`` is the UTC hour. A profile
is active at ``t`` when ``valid_from <= t < valid_to`` (``valid_to`` exclusive,
``None`` open-ended).

Errors
------
Every problem with an expression raises :class:`RuleSyntaxError` (a
``ValueError``) whose message is ``"<problem> at <offset>"`` with the
0-based character offset, e.g. ``unknown field 'consigne_id' at 0`` or
``expected ')' at 17``.

>>> import polars as pl
>>> frame = pl.DataFrame({"port_of_loading": ["ECGYE", "NLRTM", None]})
>>> frame.select(hit=compile_rule('origin_country in ["EC", "CO"]'))["hit"].to_list()
[True, False, False]
>>> validate_expression("consigne_id == 'X'")
Traceback (most recent call last):
...
features.rules.language.RuleSyntaxError: unknown field 'consigne_id' at 0

Layout: :mod:`features.rules.fields` (limits, fields, the error),
:mod:`features.rules.syntax` (tokenizer, parser, type checks),
:mod:`features.rules.compile` (to Polars), :mod:`features.rules.profiles`
(the profile model and the default profiles, ``default_profiles.json``) and
:mod:`features.rules.evaluation`. This module re-exports the public names.
"""

from __future__ import annotations

from features.rules.fields import DERIVED_FIELDS, MAX_EXPRESSION_LENGTH, MAX_NESTING_DEPTH, RULESET_FORMAT, RuleSyntaxError, field_types
from features.rules.syntax import FUNCTIONS
from features.rules.compile import compile_rule, referenced_columns, validate_expression
from features.rules.profiles import RuleProfile, default_rule_profiles, ruleset_hash
from features.rules.evaluation import evaluate_rules, reason_columns, reason_expr

__all__ = [
    "DERIVED_FIELDS",
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "MAX_NESTING_DEPTH",
    "RULESET_FORMAT",
    "RuleProfile",
    "RuleSyntaxError",
    "compile_rule",
    "default_rule_profiles",
    "evaluate_rules",
    "field_types",
    "referenced_columns",
    "ruleset_hash",
    "validate_expression",
]
