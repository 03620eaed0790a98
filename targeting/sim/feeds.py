"""Write a simulated world as raw feeds, the way real data arrives: text fields, some rows malformed.

Every table is written with all values as text (timestamps ISO 8601 with a
UTC offset, list fields ';'-separated, booleans ``true``/``false``). A
configurable share of rows is deliberately broken (bad check digits, unknown
ports, naive timestamps, impossible masses, duplicates, conflicting
duplicates...) so ingest's quarantine is exercised. The oracle (hidden truth)
is written beside the feeds, typed, and must never be ingested.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from features.data.contracts import LIST_SEPARATOR

FEED_TABLES = ("manifests", "events", "outcomes", "alerts")
FORMATS = ("parquet", "csv", "jsonl")
CHUNK_ROWS = 200_000


def to_raw_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, as a feed would carry it (nulls stay null)."""
    columns = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            columns.append(col.dt.to_string("%Y-%m-%dT%H:%M:%S%:z").alias(name))
        elif isinstance(dtype, pl.List):
            columns.append(col.list.join(LIST_SEPARATOR).alias(name))
        elif dtype == pl.Boolean:
            columns.append(pl.when(col).then(pl.lit("true")).when(col.not_()).then(pl.lit("false")).alias(name))
        else:
            columns.append(col.cast(pl.String).alias(name))
    return frame.select(columns)


# ---------------------------------------------------------------- deliberate faults
def _flip_last_digit(s: str) -> str:
    return s[:-1] + str((int(s[-1]) + 1) % 10) if s and s[-1].isdigit() else s + "X"


def _naive(ts: str) -> str:
    return ts[:19] if ts else ts


def _future(ts: str) -> str:
    return str(int(ts[:4]) + 3) + ts[4:] if ts else ts


Fault = Callable[[dict], tuple[dict, str]]

MANIFEST_FAULTS: tuple[tuple[str, Fault], ...] = (
    ("container check digit", lambda r: ({**r, "container_number": _flip_last_digit(r["container_number"])}, "container_number")),
    ("unknown port", lambda r: ({**r, "port_of_loading": "ZZQXQ"}, "port_of_loading")),
    ("naive timestamp", lambda r: ({**r, "eta": _naive(r["eta"])}, "eta")),
    ("negative mass", lambda r: ({**r, "gross_mass_kg": "-" + r["gross_mass_kg"]}, "gross_mass_kg")),
    ("NaN mass", lambda r: ({**r, "gross_mass_kg": "NaN"}, "gross_mass_kg")),
    ("mass above max gross", lambda r: ({**r, "gross_mass_kg": "48000.0"}, "gross_mass_kg")),
    ("bad HS code", lambda r: ({**r, "hs_code": "7712AB"}, "hs_code")),
    ("ETA before ETD", lambda r: ({**r, "eta": r["etd"], "etd": r["eta"]}, "eta")),
    ("IMO check digit", lambda r: ({**r, "vessel_imo": _flip_last_digit(r["vessel_imo"])}, "vessel_imo")),
    ("unknown freight payment", lambda r: ({**r, "freight_payment": "XX"}, "freight_payment")),
    ("far-future ETA", lambda r: ({**r, "eta": _future(r["eta"])}, "eta")),
    ("missing consignee", lambda r: ({**r, "consignee_id": None}, "consignee_id")),
)
EVENT_FAULTS: tuple[tuple[str, Fault], ...] = (
    ("container check digit", lambda r: ({**r, "container_number": _flip_last_digit(r["container_number"])}, "container_number")),
    ("unknown port", lambda r: ({**r, "locode": "ZZQXQ"}, "locode")),
    ("naive timestamp", lambda r: ({**r, "event_time": _naive(r["event_time"])}, "event_time")),
    ("unknown event type", lambda r: ({**r, "event_type": "TELEPORT"}, "event_type")),
)
OUTCOME_FAULTS: tuple[tuple[str, Fault], ...] = (
    ("seizure without category", lambda r: ({**r, "result": "SEIZURE", "seizure_category": None}, "seizure_category")),
    ("unknown result", lambda r: ({**r, "result": "MAYBE"}, "result")),
    ("naive timestamp", lambda r: ({**r, "inspected_at": _naive(r["inspected_at"])}, "inspected_at")),
)
FAULTS = {"manifests": MANIFEST_FAULTS, "events": EVENT_FAULTS, "outcomes": OUTCOME_FAULTS, "alerts": ()}
CONFLICT_FIELD = {"manifests": "declared_value", "events": "vessel_imo", "outcomes": "examiner", "alerts": "reason"}


@dataclass
class FaultLog:
    """What was broken on purpose: fault name -> rows."""

    counts: dict[str, int]

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n


def inject_faults(raw: pl.DataFrame, table: str, rate: float, rng: np.random.Generator, log: FaultLog) -> pl.DataFrame:
    """Break about ``rate`` of the rows of ``raw`` (text frame); half the budget goes to row faults, half to duplicates."""
    n = raw.height
    k = int(rng.binomial(n, rate)) if n else 0
    if k == 0:
        return raw
    faults = FAULTS[table]
    picks = np.sort(rng.choice(n, size=min(k, n), replace=False))
    row_faults = picks[: len(picks) // 2] if faults else np.array([], dtype=int)
    dup_rows = picks[len(row_faults):]
    broken = raw
    if len(row_faults):
        rows = raw[row_faults.tolist()].to_dicts()
        fixed = []
        for row in rows:
            name, fault = faults[int(rng.integers(len(faults)))]
            new_row, _ = fault(row)
            fixed.append(new_row)
            log.add(f"{table}: {name}")
        replacement = pl.DataFrame(fixed, schema=raw.schema)
        keep = np.ones(n, dtype=bool)
        keep[row_faults] = False
        broken = pl.concat([raw.filter(pl.Series(keep)), replacement])
    extra = []
    if len(dup_rows):
        dups = raw[dup_rows.tolist()]
        conflict = rng.random(len(dup_rows)) < 0.4
        field = CONFLICT_FIELD[table]
        exact = dups.filter(pl.Series(~conflict))
        clash = dups.filter(pl.Series(conflict)).with_columns((pl.col(field).fill_null("") + "9").alias(field))
        extra = [exact, clash]
        log.add(f"{table}: exact duplicate", exact.height)
        log.add(f"{table}: conflicting duplicate", clash.height)
    return pl.concat([broken, *extra])


# ---------------------------------------------------------------- writing
def _write_chunks(frames, path: Path, fmt: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        writer = None
        for frame in frames:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()
    else:
        with open(tmp, "wb") as handle:
            for i, frame in enumerate(frames):
                if fmt == "csv":
                    frame.write_csv(handle, include_header=(i == 0))
                else:
                    frame.write_ndjson(handle)
    os.replace(tmp, path)


def write_feed(frame: pl.DataFrame, table: str, out: Path, *, fmt: str, malformed_rate: float, rng: np.random.Generator, log: FaultLog) -> Path:
    """Write one table as a raw text feed, in chunks, with deliberate faults."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = out / f"{table}.{fmt}"
    schema_frame = to_raw_text(frame.head(0))
    chunks = (
        inject_faults(to_raw_text(frame.slice(i, CHUNK_ROWS)), table, malformed_rate, rng, log).cast(schema_frame.schema)
        for i in range(0, max(frame.height, 1), CHUNK_ROWS)
    )
    _write_chunks(chunks, path, fmt)
    return path


def write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
