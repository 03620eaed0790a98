"""Render ``docs/data-contracts.md`` from the contracts and the validation rules.

The committed file must equal :func:`render_data_contracts_markdown` (a test
checks it), so the documentation cannot drift from the code. Regenerate with::

    python -m features.data.contracts_doc > docs/data-contracts.md
"""

from __future__ import annotations

import polars as pl

from features.data.contracts import CONTRACTS, LIST_SEPARATOR, TableContract
from features.data.validation import (
    BOOLEAN_VALUES,
    CONTAINER_LENGTHS,
    FUTURE_TOLERANCE,
    MIN_TIMESTAMP,
    SCHEDULE_COLUMNS,
    SCHEDULE_FUTURE_TOLERANCE,
    UNBOUNDED_FUTURE_COLUMNS,
    rule_catalogue,
)

__all__ = ["render_data_contracts_markdown", "main"]


def _type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return f"timestamp (UTC, {dtype.time_unit})"
    if isinstance(dtype, pl.List):
        return f"list of {_type_name(dtype.inner).lower()}"
    return {
        pl.String: "string",
        pl.Int64: "integer (int64)",
        pl.Float64: "number (float64)",
        pl.Boolean: "boolean",
    }.get(type(dtype), str(dtype))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table_section(c: TableContract) -> list[str]:
    from features.data.ingest import lake_conflict_reason

    lines = [f"## `{c.name}`", "", c.description, ""]
    lines += [
        f"- **key**: {', '.join(f'`{k}`' for k in c.key)}",
        "- **partitioning**: "
        + (f"UTC date of `{c.partition_by}` (Delta table `{c.name}/`, partition column `partition_date`)" if c.partition_by else f"none (Delta table `{c.name}/`)"),
        "",
        "| column | type | required | nullable | description |",
        "|---|---|---|---|---|",
    ]
    for col in c.columns:
        lines.append(
            f"| `{col.name}` | {_type_name(col.dtype)} | {'yes' if col.required else 'no'} "
            f"| {'yes' if col.nullable else 'no'} | {_cell(col.description)} |"
        )
    lines.append("")
    if c.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in c.notes] + [""]
    lines += ["Rejection reasons (exact texts):", ""]
    lines += [f"- `{r}`" for r in rule_catalogue(c.name)]
    lines += [f"- `{lake_conflict_reason(c)}` (at ingest)", ""]
    return lines


def _days(td) -> str:  # noqa: ANN001
    n = td.days
    return f"{n} day" if n == 1 else f"{n} days"


def _general_section() -> list[str]:
    booleans = "/".join(BOOLEAN_VALUES)
    lengths = ", ".join(f"`{code}` {label} {kg:,} kg" for code, (label, kg) in CONTAINER_LENGTHS.items())
    schedule = ", ".join(f"`{n}`" for n in sorted(SCHEDULE_COLUMNS))
    unbounded = ", ".join(f"`{n}`" for n in sorted(UNBOUNDED_FUTURE_COLUMNS))
    return [
        "## Ingesting real data",
        "",
        "```",
        "targeting ingest --lake DIR TABLE FILE... [--json] [--now 2024-05-01T00:00:00Z]",
        "```",
        "",
        "- **File formats** (by extension): CSV (`.csv`, UTF-8, comma-separated, one header line), "
        "Parquet (`.parquet`, `.pq`) and JSON Lines (`.jsonl`, `.ndjson`, UTF-8, one object per line). "
        "Every value is read as text and parsed by the rules below, whatever the file's own types.",
        "- **Columns**: every *required* column must be present (otherwise the whole file is refused, "
        "naming the column); optional columns may be absent. Extra columns are ignored for the lake but "
        "kept in quarantined rows and reported in the summary. Column names `__file`, `__row` and "
        "`reasons` are reserved.",
        f"- **Lists** (e.g. `transshipment_ports`): elements separated by `{LIST_SEPARATOR}` in CSV "
        f"(JSON arrays and Parquet lists also work); an empty field is an empty list; an empty element "
        f"(`A{LIST_SEPARATOR}{LIST_SEPARATOR}B`) is an error.",
        "- **Timestamps**: ISO 8601 *with* a UTC offset or `Z`, e.g. `2024-05-01T13:45:00+02:00`, "
        "`2024-05-01 11:45Z`; stored in UTC. Naive timestamps (no offset) are rejected "
        "(`<field>: timezone missing`).",
        f"- **Future limits**: {schedule} at most {_days(SCHEDULE_FUTURE_TOLERANCE)} after the ingest time; "
        f"{unbounded} unlimited; every other timestamp at most {_days(FUTURE_TOLERANCE)} after it. "
        f"Nothing before {MIN_TIMESTAMP.date().isoformat()}.",
        f"- **Booleans**: {booleans} (any case). **Numbers**: `.` decimal point, optional exponent; "
        "masses and values must be finite.",
        "- **Canonical values**: surrounding whitespace is stripped and an empty value is missing; "
        "codes and identifiers are upper-cased (`manifest_id`, `alert_id` and `examiner` keep their "
        "case); free text has runs of whitespace collapsed; an IMO number may carry an `IMO` prefix.",
        "- **Codes**: container numbers ISO 6346 with a valid check digit; container types ISO 6346 "
        "size-type codes (e.g. `22G1`, `45R1`, `L5G1`); places and ports UN/LOCODEs known to the port reference "
        "(the packaged UN/LOCODE list with about 116,000 locations, the container-port list, `searoute`'s ports "
        "or the lake's `ports` table); a port of loading, discharge or transshipment must be a seaport "
        "(UN/LOCODE function 1, a `searoute` port, the container-port list or the lake's `ports`), a place of "
        "receipt or delivery may be inland; HS codes 6, 8 or 10 digits, chapter 01-97 but not 77; "
        "IMO numbers 7 digits with a valid check digit.",
        f"- **Max gross mass by length code** (first character of the container type): {lengths}. "
        "`reefer = true` requires a reefer type (third character `R`); a reefer type with "
        "`reefer = false` is accepted (non-operating reefer).",
        "- **Outcome of each row**: *accepted* (new, written), *unchanged* (same key and same content "
        "already in the lake: not rewritten, so re-ingesting a file changes nothing) or *quarantined* "
        "(kept unchanged with its reasons under `DIR/_quarantine/`). Every reason reads "
        "`<field>: <rule>`; a row lists every rule it breaks. Within one ingest, identical copies of a "
        "row are accepted once (later copies: `<key>: duplicate row`) and rows sharing a key with "
        "different contents are all rejected (`<key>: conflicting duplicate`); these two checks apply "
        "to rows that pass every other rule. A valid row whose key is already in the lake with "
        "different content is quarantined (`<key>: conflicts with row already in the lake`); correct "
        "such a row under a new key. A quarantined row already in the quarantine with the same values "
        "is not written again (`quarantine_unchanged` in the summary).",
        "- **Exit codes**: 0 when the ingest ran (quarantined rows included), 2 when a file cannot be "
        "ingested at all (unsupported type, unreadable, truncated, not UTF-8, empty, missing column): "
        "nothing is written then.",
        "",
    ]


def render_data_contracts_markdown() -> str:
    """Return the Markdown of ``docs/data-contracts.md``.

    Lists every table of :data:`features.data.contracts.CONTRACTS` (columns with
    type, required, nullable and description; key; partitioning; the exact
    rejection reasons) and how to ingest real data.
    """
    lines = [
        "# Data contracts",
        "",
        "<!-- Generated by features.data.contracts_doc.render_data_contracts_markdown(); do not edit. -->",
        "",
        "The canonical input tables of the engine (source of truth: `features/contracts.py`; "
        "rules: `features/validation.py`). Every timestamp is stored in UTC.",
        "",
        *_general_section(),
    ]
    for c in CONTRACTS.values():
        lines += _table_section(c)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    """Print the rendered Markdown (``python -m features.data.contracts_doc``)."""
    print(render_data_contracts_markdown(), end="")


if __name__ == "__main__":
    main()
