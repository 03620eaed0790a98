"""Specification of ingest (features.data.ingest): formats, file-level faults, idempotency, lake dedup."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.data.contracts import CONTRACTS
from features.data.ingest import IngestFileError, ingest, read_raw
from features.data.lake import Lake, sha256_file

sys.path.insert(0, str(Path(__file__).parent))
from ingest_samples import NOW, SAMPLES, manifest_rows, row  # noqa: E402

UTC = timezone.utc


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema={c: pl.String for c in columns}).write_csv(path)
    return path


def visible(lake: Lake, table: str = "manifests") -> tuple:
    """What readers see: rows, quarantine, committed files, data hash."""
    key = CONTRACTS[table].key
    return (
        lake.scan(table).sort(key).collect().rows(),
        lake.scan_quarantine(table).collect().rows(),
        [str(p) for p in lake.files(table)] + [str(p) for p in lake.quarantine_files(table)],
        lake.data_sha256(table),
    )


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


# --------------------------------------------------------------------------- formats


def test_csv_parquet_and_jsonl_give_the_same_rows(tmp_path: Path) -> None:
    rows = manifest_rows(3)
    csv = write_csv(tmp_path / "m.csv", rows)
    raw = pl.read_csv(csv, infer_schema=False)
    raw.write_parquet(tmp_path / "m.parquet")
    raw.write_ndjson(tmp_path / "m.jsonl")
    frames = []
    for name in ("m.csv", "m.parquet", "m.jsonl"):
        lk = Lake(tmp_path / f"lake-{name}")
        summary = ingest(lk, "manifests", [tmp_path / name], now=NOW)
        assert (summary.accepted, summary.quarantined) == (3, 0)
        frames.append(lk.scan("manifests").sort("manifest_id").collect())
    assert_frame_equal(frames[0], frames[1])
    assert_frame_equal(frames[0], frames[2])


def test_typed_parquet_and_json_values_are_read_as_text(tmp_path: Path, lake: Lake) -> None:
    typed = pl.DataFrame(
        {
            **{k: [v] for k, v in row("manifests").items() if k not in ("transshipment_ports", "reefer", "packages", "gross_mass_kg", "eta", "booked_at")},
            "transshipment_ports": [["PAMIT", "CNSHA"]],
            "reefer": [False],
            "packages": [1080],
            "gross_mass_kg": [21000.5],
            "eta": [datetime(2024, 1, 20, 6, tzinfo=UTC)],
            "booked_at": [datetime(2024, 1, 2, 11, tzinfo=UTC)],
        }
    ).with_columns(pl.col("booked_at").dt.convert_time_zone("Europe/Amsterdam"))
    typed.write_parquet(tmp_path / "typed.pq")
    summary = ingest(lake, "manifests", [tmp_path / "typed.pq"], now=NOW)
    assert summary.accepted == 1, summary.reasons
    got = lake.scan("manifests").collect().row(0, named=True)
    assert got["transshipment_ports"] == ["PAMIT", "CNSHA"]
    assert got["gross_mass_kg"] == 21000.5 and got["packages"] == 1080
    assert got["booked_at"] == datetime(2024, 1, 2, 11, tzinfo=UTC)
    (tmp_path / "m.ndjson").write_text(
        json.dumps({**row("manifests", manifest_id="J1"), "transshipment_ports": ["PAMIT"], "packages": 7, "reefer": False}) + "\n"
    )
    assert ingest(lake, "manifests", [tmp_path / "m.ndjson"], now=NOW).accepted == 1


def test_naive_parquet_timestamps_are_quarantined(tmp_path: Path, lake: Lake) -> None:
    df = pl.DataFrame([row("manifests")]).with_columns(pl.lit(datetime(2024, 1, 20, 6)).alias("eta"))
    df.write_parquet(tmp_path / "naive.parquet")
    summary = ingest(lake, "manifests", [tmp_path / "naive.parquet"], now=NOW)
    assert summary.reasons == {"eta: timezone missing": 1}
    assert lake.scan_quarantine("manifests").collect()["eta"].to_list() == ["2024-01-20T06:00:00"]


def test_read_raw_numbers_rows_and_names_the_file(tmp_path: Path) -> None:
    raw = read_raw(write_csv(tmp_path / "m.csv", manifest_rows(2)), "manifests")
    assert raw.columns[:3] == ["__file", "__row", "manifest_id"]
    assert raw["__row"].to_list() == [0, 1] and raw["__file"].to_list() == ["m.csv", "m.csv"]
    assert all(t == pl.String for n, t in raw.schema.items() if n != "__row")


# --------------------------------------------------------------------------- file-level faults


def test_missing_required_column_names_the_column_and_the_file(tmp_path: Path, lake: Lake) -> None:
    rows = [{k: v for k, v in r.items() if k not in ("hs_code", "eta")} for r in manifest_rows(2)]
    path = write_csv(tmp_path / "m.csv", rows)
    with pytest.raises(IngestFileError, match=r"m\.csv: missing required column\(s\) for table 'manifests': hs_code, eta"):
        ingest(lake, "manifests", [path], now=NOW)
    assert lake.log() == []


def test_extra_columns_are_ignored_but_kept_in_quarantine(tmp_path: Path, lake: Lake) -> None:
    rows = [{**r, "remarks": "x", "booking_ref": "B"} for r in manifest_rows(2)]
    rows[1]["hs_code"] = "770000"
    summary = ingest(lake, "manifests", [write_csv(tmp_path / "m.csv", rows)], now=NOW)
    assert summary.ignored_columns == ["booking_ref", "remarks"]
    assert (summary.accepted, summary.quarantined) == (1, 1)
    assert "remarks" not in lake.scan("manifests").collect().columns
    q = lake.scan_quarantine("manifests").collect()
    assert q["remarks"].to_list() == ["x"] and q["__file"].to_list() == ["m.csv"] and q["__row"].to_list() == [1]


def test_latin1_csv_is_refused_as_not_utf8(tmp_path: Path, lake: Lake) -> None:
    path = write_csv(tmp_path / "m.csv", [row("manifests", consignee_name="Café")])
    path.write_bytes(path.read_bytes().decode("utf-8").encode("latin-1"))
    with pytest.raises(IngestFileError, match=r"m\.csv: not valid UTF-8"):
        ingest(lake, "manifests", [path], now=NOW)
    assert lake.log() == []


def test_truncated_parquet_is_refused(tmp_path: Path, lake: Lake) -> None:
    path = tmp_path / "m.parquet"
    pl.DataFrame(manifest_rows(20)).write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestFileError, match=r"m\.parquet: not a readable Parquet file \(truncated or corrupt\?\)"):
        ingest(lake, "manifests", [path], now=NOW)


@pytest.mark.parametrize("name", ["m.csv", "m.parquet", "m.jsonl"])
def test_empty_file_is_refused(tmp_path: Path, lake: Lake, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(IngestFileError, match=rf"{name}: file is empty"):
        ingest(lake, "manifests", [path], now=NOW)


def test_header_only_csv_ingests_zero_rows(tmp_path: Path, lake: Lake) -> None:
    path = tmp_path / "m.csv"
    path.write_text(",".join(SAMPLES["manifests"]) + "\n")
    summary = ingest(lake, "manifests", [path], now=NOW)
    assert (summary.input_rows, summary.accepted, summary.quarantined) == (0, 0, 0)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.txt", b"a,b\n", r"m\.txt: unsupported file type '\.txt'"),
        ("m.csv", b"manifest_id,manifest_id\n1,2\n", r"m\.csv: duplicate column name\(s\): manifest_id"),
        ("m.csv", b"a,b\n1,2,3\n", r"m\.csv: not a readable CSV file"),
        ("m.jsonl", b'{"a": 1}\n{"a": \n', r"m\.jsonl: not a readable JSON Lines file: line 2: invalid JSON \(Expecting value at column 7\)"),
        ("m.jsonl", b'{"a": 1}\n\n{"a": 2}\n{"a": 3,}\n{"a": 4}\n', r"m\.jsonl: not a readable JSON Lines file: line 4: invalid JSON"),
        ("m.jsonl", b'{"a": 1}\n["a", 2]\n', r"m\.jsonl: not a readable JSON Lines file: line 2: a record must be a JSON object, not list"),
        ("m.jsonl", '{"a": "caf\xe9"}\n'.encode("latin-1"), r"m\.jsonl: not valid UTF-8"),
        ("m.csv", b"__row,manifest_id\n1,2\n", r"m\.csv: reserved column name\(s\): __row"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_message(tmp_path: Path, lake: Lake, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestFileError, match=message):
        ingest(lake, "manifests", [path], now=NOW)


def test_missing_file_is_refused(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(IngestFileError, match=r"nope\.csv: file not found"):
        ingest(lake, "manifests", [tmp_path / "nope.csv"], now=NOW)


def test_one_bad_file_means_nothing_is_written(tmp_path: Path, lake: Lake) -> None:
    good = write_csv(tmp_path / "good.csv", manifest_rows(2))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    with pytest.raises(IngestFileError, match="bad.csv"):
        ingest(lake, "manifests", [good, bad], now=NOW)
    assert lake.log() == [] and not any(lake.root.rglob("*.parquet"))


# --------------------------------------------------------------------------- idempotency and dedup


def test_ingesting_the_same_file_twice_changes_nothing(tmp_path: Path, lake: Lake) -> None:
    rows = manifest_rows(5)
    rows += [row("manifests", manifest_id="BAD", container_number="CSQU3054384"), rows[0]]  # bad row, duplicate row
    path = write_csv(tmp_path / "m.csv", rows)
    first = ingest(lake, "manifests", [path], now=NOW)
    assert (first.input_rows, first.accepted, first.unchanged, first.quarantined) == (7, 5, 0, 2)
    assert first.reasons == {"container_number: ISO 6346 check digit mismatch": 1, "manifest_id: duplicate row": 1}
    before = visible(lake)

    second = ingest(lake, "manifests", [path], now=NOW)
    assert (second.accepted, second.unchanged, second.quarantined, second.quarantine_unchanged) == (0, 5, 2, 2)
    assert second.files_added == []
    assert visible(lake) == before
    assert (second.seq, [e.seq for e in lake.log()]) == (None, [1])  # an ingest that adds nothing logs nothing


def test_same_key_with_new_content_conflicts_with_the_lake(tmp_path: Path, lake: Lake) -> None:
    ingest(lake, "manifests", [write_csv(tmp_path / "a.csv", manifest_rows(2))], now=NOW)
    changed = [row("manifests", manifest_id="M0", packages="5"), row("manifests", manifest_id="M1"), row("manifests", manifest_id="M9")]
    summary = ingest(lake, "manifests", [write_csv(tmp_path / "b.csv", changed)], now=NOW)
    assert (summary.accepted, summary.unchanged, summary.quarantined) == (1, 1, 1)
    assert summary.reasons == {"manifest_id: conflicts with row already in the lake": 1}
    q = lake.scan_quarantine("manifests").collect()
    assert q.select("__file", "__row", "packages").rows() == [("b.csv", 0, "5")]
    assert lake.scan("manifests").filter(pl.col("manifest_id") == "M0").collect()["packages"].to_list() == [1080]


def test_duplicates_across_files_of_one_ingest_are_detected(tmp_path: Path, lake: Lake) -> None:
    a = write_csv(tmp_path / "a.csv", manifest_rows(2))
    b = write_csv(tmp_path / "b.csv", [row("manifests", manifest_id="M1"), row("manifests", manifest_id="M0", packages="3")])
    summary = ingest(lake, "manifests", [a, b], now=NOW)
    assert summary.accepted == 1 and summary.quarantined == 3
    assert summary.reasons == {"manifest_id: conflicting duplicate": 2, "manifest_id: duplicate row": 1}
    sources = lake.log()[0].sources
    assert [(s["name"], s["rows"]) for s in sources] == [("a.csv", 2), ("b.csv", 2)]
    assert [s["sha256"] for s in sources] == [sha256_file(a), sha256_file(b)]


def test_ports_in_the_lake_extend_the_port_reference(tmp_path: Path, lake: Lake) -> None:
    events = write_csv(tmp_path / "e.csv", [row("events", locode="XXABC")])
    assert ingest(lake, "events", [events], now=NOW).reasons == {"locode: unknown UN/LOCODE (not in the port reference)": 1}
    assert ingest(lake, "ports", [write_csv(tmp_path / "p.csv", [row("ports")])], now=NOW).accepted == 1
    assert ingest(lake, "events", [events], now=NOW).accepted == 1


def test_future_timestamps_depend_on_now(tmp_path: Path, lake: Lake) -> None:
    path = write_csv(tmp_path / "o.csv", [row("outcomes")])
    early = ingest(lake, "outcomes", [path], now=datetime(2024, 1, 20, tzinfo=UTC))
    assert early.reasons == {"inspected_at: more than 1 day after now": 1}
    assert ingest(lake, "outcomes", [path], now=NOW).accepted == 1


def test_ingest_refuses_bad_arguments(tmp_path: Path, lake: Lake) -> None:
    path = write_csv(tmp_path / "m.csv", manifest_rows(1))
    with pytest.raises(ValueError, match="unknown table"):
        ingest(lake, "cargo", [path], now=NOW)
    with pytest.raises(ValueError, match="no input files"):
        ingest(lake, "manifests", [], now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        ingest(lake, "manifests", [path], now=datetime(2024, 2, 1))


def test_progress_receives_each_step(tmp_path: Path, lake: Lake) -> None:
    messages: list[str] = []
    ingest(lake, "manifests", [write_csv(tmp_path / "m.csv", manifest_rows(1))], now=NOW, progress=messages.append)
    assert messages[0] == "reading m.csv" and messages[-1].startswith("writing")


# --------------------------------------------------------------------------- properties

cell = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.sampled_from(["CSQU3054383", "NLRTM", "2024-01-10T00:00:00Z", "2024-01-10T00:00:00", "1", "NaN", "22G1", "a;;b"]),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_files_never_crash_and_are_idempotent(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    lake = Lake(tmp / "lake")
    names = list(SAMPLES["manifests"])
    valid = data.draw(st.lists(st.sampled_from(range(6)), max_size=4))
    rows = [row("manifests", manifest_id=f"V{i}") for i in valid]
    rows += data.draw(st.lists(st.fixed_dictionaries({n: st.one_of(st.just(SAMPLES["manifests"][n]), cell) for n in names}), max_size=5))
    rows = data.draw(st.permutations(rows))
    if not rows:
        rows = [row("manifests")]
    fmt = data.draw(st.sampled_from(["csv", "parquet", "jsonl"]))
    frame = pl.DataFrame({n: [r[n] for r in rows] for n in names}, schema={n: pl.String for n in names})
    path = tmp / f"in.{fmt}"
    {"csv": frame.write_csv, "parquet": frame.write_parquet, "jsonl": frame.write_ndjson}[fmt](path)

    first = ingest(lake, "manifests", [path], now=NOW)
    assert first.accepted + first.unchanged + first.quarantined == first.input_rows == len(rows)
    assert lake.scan("manifests").collect().height == first.accepted
    q = lake.scan_quarantine("manifests").collect()
    assert q.height == first.quarantined
    raw = read_raw(path, "manifests")
    # a Delta table's scan order is not its write order: compare in source-row order
    assert q.drop("reasons").select(raw.columns).sort("__row").rows() == raw.filter(pl.col("__row").is_in(q["__row"].implode())).sort("__row").rows()
    before = visible(lake)

    second = ingest(lake, "manifests", [path], now=NOW)
    assert (second.accepted, second.unchanged, second.quarantined) == (0, first.accepted, first.quarantined)
    assert second.quarantine_unchanged == second.quarantined
    assert visible(lake) == before
