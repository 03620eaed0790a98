"""Rule language: compiling a checked syntax tree to a Polars expression, and the public checks on expressions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import polars as pl

from features.data.contracts import MANIFESTS
from features.rules.fields import DERIVED_FIELDS, RuleSyntaxError, _NUMERIC
from features.rules.syntax import FUNCTIONS, _BoolOp, _Call, _Compare, _Field, _ListLit, _Lit, _Member, _Node, _Not, _parse


# --------------------------------------------------------------------------- compiler

_LITERAL_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
}


def _value(node: _Node) -> pl.Expr:
    """Polars expression of a value node (field, literal or value-returning call)."""
    if isinstance(node, _Field):
        derived = DERIVED_FIELDS.get(node.name)
        return derived.build() if derived else pl.col(node.name)
    if isinstance(node, _Lit):
        return pl.lit(node.value, dtype=_LITERAL_DTYPES.get(node.type))
    if isinstance(node, _Call):
        return _call(node)
    raise AssertionError(f"not a value node: {node!r}")  # pragma: no cover


def _call(node: _Call) -> pl.Expr:
    spec = FUNCTIONS[node.name]
    args = [_argument(kind, arg) for kind, arg in zip(spec.params, node.args, strict=True)]
    return spec.build(*args)


def _argument(kind: str, node: _Node) -> object:
    if kind == "string_literal":
        assert isinstance(node, _Lit)
        return node.value
    if kind == "list_literal":
        assert isinstance(node, _ListLit)
        return node.values
    return _value(node)


def _compare(node: _Compare) -> pl.Expr:
    """Raw (null-propagating) comparison; ``== null``/``!= null`` test missingness."""
    left, right = node.left, node.right
    if "null" in (left.type, right.type):
        present = _value(right if left.type == "null" else left)
        return present.is_null() if node.op == "==" else present.is_not_null()
    a, b = _value(left), _value(right)
    operators: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "==": pl.Expr.eq,
        "!=": pl.Expr.ne,
        "<": pl.Expr.lt,
        "<=": pl.Expr.le,
        ">": pl.Expr.gt,
        ">=": pl.Expr.ge,
    }
    return operators[node.op](a, b)


def _member(node: _Member) -> pl.Expr:
    """Raw ``operand [not] in [...]``; null when the operand is null.

    Numbers compare as Float64 when the operand or any list element is a float.
    """
    operand = _value(node.operand)
    kind = node.operand.type
    if kind in _NUMERIC:
        kind = "float" if "float" in (kind, node.values.element_type) else "int"
        operand = operand.cast(_LITERAL_DTYPES[kind])
    values = list(node.values.values)
    if kind == "float":
        values = [float(v) for v in values]  # type: ignore[arg-type]
    found = operand.is_in(pl.Series(values, dtype=_LITERAL_DTYPES[kind]).implode())
    return ~found if node.negated else found


def _atom(node: _Node) -> pl.Expr:
    """Raw boolean of an atomic predicate; may be null."""
    if isinstance(node, _Compare):
        return _compare(node)
    if isinstance(node, _Member):
        return _member(node)
    return _value(node)


def _predicate(node: _Node, negated: bool = False) -> pl.Expr:
    """Null-safe boolean: negation pushed to atoms, each atom ``fill_null(False)``."""
    if isinstance(node, _Not):
        return _predicate(node.operand, not negated)
    if isinstance(node, _BoolOp):
        parts = [_predicate(part, negated) for part in node.operands]
        conjunction = (node.op == "and") != negated
        return pl.all_horizontal(parts) if conjunction else pl.any_horizontal(parts)
    raw = _atom(node)
    return (~raw if negated else raw).fill_null(False)


@functools.lru_cache(maxsize=1024)
def _compiled(expression: str) -> tuple[pl.Expr, frozenset[str]]:
    tree = _parse(expression)
    return _predicate(tree), frozenset(_columns(tree))


def _columns(node: _Node) -> Iterator[str]:
    """Manifest columns read by ``node`` (derived fields expanded)."""
    if isinstance(node, _Field):
        derived = DERIVED_FIELDS.get(node.name)
        yield from derived.columns if derived else (node.name,)
    for child in _children(node):
        yield from _columns(child)


def _children(node: _Node) -> tuple[_Node, ...]:
    if isinstance(node, _Call):
        return node.args
    if isinstance(node, _Compare):
        return (node.left, node.right)
    if isinstance(node, _Member):
        return (node.operand,)
    if isinstance(node, _Not):
        return (node.operand,)
    if isinstance(node, _BoolOp):
        return node.operands
    return ()


def compile_rule(expression: str) -> pl.Expr:
    """Compile a rule expression to a Boolean Polars expression.

    Parameters
    ----------
    expression
        Text in the rule language (see the module docstring), at most
        :data:`MAX_EXPRESSION_LENGTH` characters.

    Returns
    -------
    pl.Expr
        A Boolean expression over a frame with the manifest contract's
        columns. It is never null: an atomic predicate reading a null value is
        false, and so is its negation. Timestamps are read as UTC.

    Raises
    ------
    RuleSyntaxError
        The expression is malformed, ill-typed, too long, too deep, or uses an
        unknown field or function. The message names the character offset.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"hs_code": ["080390", "090111"], "reefer": [True, True]})
    >>> frame.filter(compile_rule('reefer and hs_heading == "0803"'))["hs_code"].to_list()
    ['080390']
    """
    return _compiled(_require_text(expression))[0]


def _require_text(expression: object) -> str:
    if not isinstance(expression, str):
        raise RuleSyntaxError("expression must be a string", 0)
    return expression


def referenced_columns(expression: str) -> frozenset[str]:
    """Return the manifest columns ``expression`` reads (derived fields expanded).

    Raises :class:`RuleSyntaxError` like :func:`compile_rule`.

    >>> sorted(referenced_columns("value_per_kg < 1 and reefer"))
    ['declared_value', 'gross_mass_kg', 'reefer']
    """
    return _compiled(_require_text(expression))[1]


def validate_expression(expression: str) -> None:
    """Raise :class:`RuleSyntaxError` unless ``expression`` compiles to a Boolean rule.

    Besides parsing and type checking, the compiled expression is resolved
    against an empty frame with the manifest contract's schema, so any
    expression that validates also runs. Never raises any other exception.
    """
    predicate = compile_rule(expression)
    try:
        dtype = _EMPTY_MANIFESTS.select(predicate.alias("hit")).collect_schema()["hit"]
    except Exception as exc:  # pragma: no cover - defence in depth: the type checker should prevent this
        raise RuleSyntaxError(f"expression cannot be evaluated ({type(exc).__name__})", 0) from None
    if dtype != pl.Boolean():  # pragma: no cover
        raise RuleSyntaxError(f"expression is not boolean ({dtype})", 0)


_EMPTY_MANIFESTS = pl.LazyFrame(schema=MANIFESTS.schema)
