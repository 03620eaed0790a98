"""The UN/LOCODE code list: every trade and transport location with its functions.

The packaged list ``features/data/unlocode.csv.gz`` holds one row per
UN/LOCODE (about 116,000) with its name, subdivision, status, function
classifier and coordinates; ``features/data/unlocode.json`` records its
release, source and sha256. It is built from the UNECE release CSV by
:func:`read_release` and replaced in one command::

    targeting reference update --from "2024-2 UNLOCODE CodeListPart1.csv" --from ...Part2.csv --from ...Part3.csv

Source of the shipped file: UNECE UN/LOCODE release 2023-2 as split by
country in UN/CEFACT's ``vocab-locode`` repository (commit e845bd9,
2024-12-11, which also carries the Danish corrections of 2024). Function
classifier (UNECE): 1 seaport, 2 rail, 3 road, 4 airport, 5 postal,
6 multimodal, 7 fixed installation, 8 inland water (river/lake port), B
border crossing, 0 (first position) not officially functional.

Everything here is deterministic and reads no clock; the loaded frame is
cached per process (:func:`load_unlocode`), reset by :func:`clear_cache`.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import polars as pl

__all__ = [
    "FUNCTIONS",
    "UnlocodeError",
    "clear_cache",
    "load_unlocode",
    "read_release",
    "release_info",
    "unlocode_codes",
    "unlocode_seaports",
    "write_release",
]

_PACKAGE = "features.data"
DATA_FILE = "unlocode.csv.gz"
INFO_FILE = "unlocode.json"

FUNCTIONS: dict[str, str] = {
    "seaport": "1",
    "rail": "2",
    "road": "3",
    "airport": "4",
    "postal": "5",
    "multimodal": "6",
    "fixed": "7",
    "inland_water": "8",
    "border": "B",
}
"""Character of each function in the 8-character UN/LOCODE function classifier (``0`` first: not officially functional)."""

COLUMNS = ("locode", "name", "subdivision", "status", "function", "latitude", "longitude")
_SCHEMA = {
    "locode": pl.String,
    "name": pl.String,
    "subdivision": pl.String,
    "status": pl.String,
    "function": pl.String,
    "latitude": pl.Float64,
    "longitude": pl.Float64,
}
_COORD = re.compile(r"^(\d{2})(\d{2})([NS])\s+(\d{3})(\d{2})([EW])$")
_COORD_DECIMAL = re.compile(r"^(\d+(?:\.\d+)?)([NS])\s+(\d+(?:\.\d+)?)([EW])$")
_CODE = re.compile(r"^[A-Z]{2}$")
_LOC = re.compile(r"^[A-Z0-9]{3}$")  # a few real codes use 0 and 1


class UnlocodeError(ValueError):
    """A UN/LOCODE release file cannot be read (names the file and line)."""


def parse_coordinates(text: str) -> tuple[float | None, float | None]:
    """``"5128N 00645E"`` (degrees and minutes) or ``"26.81N 89.19E"`` -> (lat, lon) in degrees; (None, None) if absent or malformed."""
    value = (text or "").strip()
    match = _COORD.match(value)
    if match:
        lat = int(match[1]) + int(match[2]) / 60.0
        lon = int(match[4]) + int(match[5]) / 60.0
        lat, lon = (-lat if match[3] == "S" else lat), (-lon if match[6] == "W" else lon)
    else:
        match = _COORD_DECIMAL.match(value)
        if not match:
            return None, None
        lat, lon = float(match[1]), float(match[3])
        lat, lon = (-lat if match[2] == "S" else lat), (-lon if match[4] == "W" else lon)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None, None
    return round(lat, 6), round(lon, 6)


def _decode(path: Path, data: bytes) -> str:
    """UNECE ships Latin-1 CSVs; UN/CEFACT's split files are UTF-8. Accept both."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _release_rows(path: Path) -> list[tuple[str, ...]]:
    """Rows ``(locode, name, subdivision, status, function, coordinates, change)`` of one release CSV."""
    try:
        text = _decode(path, path.read_bytes())
    except OSError as exc:
        raise UnlocodeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = []
    order = (0, 1, 2, 3, 5, 6, 7, 10)  # UNECE layout: Ch, country, location, name, plain name, subdivision, function, status, date, IATA, coordinates
    for line_no, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        if fields[0] == "Change":  # header of the datasets/un-locode layout: columns by name
            names = {n: i for i, n in enumerate(fields)}
            order = tuple(names[n] for n in ("Change", "Country", "Location", "Name", "Subdivision", "Function", "Status", "Coordinates"))
            continue
        if len(fields) < 11:
            raise UnlocodeError(f"{path} line {line_no}: {len(fields)} fields, a UN/LOCODE release row has 11 or 12")
        change, country, loc, name, subdivision, function, status, coordinates = (fields[i] for i in order)
        if not loc.strip():
            continue  # country header row (".COLOMBIA")
        country, loc = country.strip(), loc.strip()
        if not _CODE.match(country) or not _LOC.match(loc):
            raise UnlocodeError(f"{path} line {line_no}: {country!r} {loc!r} is not a UN/LOCODE")
        rows.append((country + loc, name.strip(), subdivision.strip(), status.strip(), function.strip().ljust(8, "-")[:8], coordinates, change.strip()))
    return rows


def read_release(paths: Sequence[str | os.PathLike[str]]) -> pl.DataFrame:
    """Read UNECE UN/LOCODE release CSV files into one frame of :data:`COLUMNS`, sorted by locode.

    Parameters
    ----------
    paths
        The release's code-list CSV files (``CodeListPart1..3.csv`` of the
        UNECE zip, Latin-1, no header; UN/CEFACT's per-country files, UTF-8;
        or the ``code-list.csv`` of the datasets/un-locode package, with a
        header) or directories of such files (every ``*.csv`` inside).

    Returns
    -------
    polars.DataFrame
        One row per UN/LOCODE. When a code appears twice (reference entries,
        ``=``), the entry that is not a reference entry is kept.

    Raises
    ------
    UnlocodeError
        A file that cannot be read or a row that is not a UN/LOCODE row, or no row at all.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.csv")) if p.is_dir() else [p])
    best: dict[str, tuple[str, ...]] = {}
    for path in files:
        for row in _release_rows(path):
            kept = best.get(row[0])
            if kept is None or (kept[6] == "=" and row[6] != "="):
                best[row[0]] = row
    if not best:
        raise UnlocodeError(f"no UN/LOCODE rows in {', '.join(map(str, files)) or 'no files'}")
    records = []
    for code in sorted(best):
        locode, name, subdivision, status, function, coordinates, _change = best[code]
        lat, lon = parse_coordinates(coordinates)
        records.append((locode, name, subdivision or None, status or None, function, lat, lon))
    return pl.DataFrame(records, schema=_SCHEMA, orient="row")


def _package_dir() -> Path:
    return Path(str(resources.files(_PACKAGE)))


def write_release(frame: pl.DataFrame, *, source: str, release: str, directory: str | os.PathLike[str] | None = None) -> dict:
    """Write ``frame`` (from :func:`read_release`) as the packaged list, with its release info; return the info.

    The gzip stream has no timestamp, so the same input gives the same bytes.
    """
    target = Path(directory) if directory is not None else _package_dir()
    buffer = io.BytesIO()
    frame.select(COLUMNS).write_csv(buffer, float_precision=6)
    raw = buffer.getvalue()
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    seaports = int(frame.get_column("function").str.contains("1", literal=True).sum())
    info = {
        "release": release,
        "source": source,
        "locations": frame.height,
        "seaports": seaports,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    tmp = target / (DATA_FILE + ".tmp")
    tmp.write_bytes(packed)
    os.replace(tmp, target / DATA_FILE)
    (target / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    clear_cache()
    return info


def release_info() -> dict:
    """Release, source, number of locations and seaports and sha256 of the packaged list."""
    return json.loads(resources.files(_PACKAGE).joinpath(INFO_FILE).read_text(encoding="utf-8"))


@functools.cache
def load_unlocode() -> pl.DataFrame:
    """The packaged UN/LOCODE list: :data:`COLUMNS` plus ``country`` and one boolean per :data:`FUNCTIONS` name (``is_seaport`` ...).

    Cached: every call returns the same frame (never mutate it).
    """
    data = gzip.decompress(resources.files(_PACKAGE).joinpath(DATA_FILE).read_bytes())
    frame = pl.read_csv(io.BytesIO(data), schema=_SCHEMA)
    flags = [pl.col("function").str.contains(char, literal=True).alias(f"is_{name}") for name, char in FUNCTIONS.items()]
    return frame.with_columns(pl.col("locode").str.slice(0, 2).alias("country"), *flags)


@functools.cache
def unlocode_codes() -> frozenset[str]:
    """Every UN/LOCODE of the packaged list."""
    return frozenset(load_unlocode().get_column("locode").to_list())


@functools.cache
def unlocode_seaports() -> frozenset[str]:
    """UN/LOCODEs whose function classifier has a ``1`` (seaport)."""
    return frozenset(load_unlocode().filter(pl.col("is_seaport")).get_column("locode").to_list())


def clear_cache() -> None:
    """Forget the loaded list (after :func:`write_release`)."""
    for cached in (load_unlocode, unlocode_codes, unlocode_seaports):
        cached.cache_clear()
    from features.data import reference

    reference.clear_location_caches()
