"""Port reference table: container ports with UN/LOCODE and coordinates.

The table ships with the package as ``features/data/ports.csv`` (columns
of the :data:`features.data.contracts.PORTS` contract; booleans written
``true``/``false``). It lists 421 real container ports in every region,
41 of them flagged as major transshipment hubs.

Source
------
Names were curated by hand (English port names). Coordinates come from the
``searoute`` package, version 1.6.0 (Apache-2.0), file
``searoute/data/ports.geojson``, with these exceptions:

- Official UN/LOCODE used where searoute files the same port under another
  code (coordinates taken from that record): TNRDS (searoute TNRAD), SADMM
  (SADMN), IRBUZ (IRBUS), JOAQJ (JOAQB), MGTMM (MGTOA), CNTXG (CNXIP), IDMAK
  (IDUPG), USPDX (USPWM), KRKAN (KRKWA), TRAMR (TRKMX, Kumport, Ambarli),
  NZPOE (NZORR, Otago Harbour).
- Coordinates supplied by hand (accurate to about 0.1 degree) where
  searoute lacks the port (MAPTM, AEKHL, OMDQM, BHKBS, LKHBA, VNCLI, TLDIL,
  TOTBU, USILM) or places it more than about 15 km from its container
  terminal (BRNVT, PAMIT, CMKBI, OMSOH, IRBND, TWTPE, KRPTK, MYPEN, MYKUA,
  CNNGB).

Coordinates are in decimal degrees (WGS 84); distances in kilometres. The
distances here are great-circle distances; sea-route distances are longer.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
from importlib import resources

import numpy as np
import numpy.typing as npt
import polars as pl

from features.data.contracts import PORTS

__all__ = [
    "EARTH_RADIUS_KM",
    "LOCODE_PATTERN",
    "PortReferenceError",
    "haversine_km",
    "haversine_km_np",
    "known_locodes",
    "load_ports",
    "location_coordinates",
    "location_locodes",
    "port_reference",
    "seaport_locodes",
    "port_coordinates_frame",
    "read_ports_csv",
]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG) in kilometres."""

LOCODE_PATTERN = r"^[A-Z]{2}[A-Z2-9]{3}$"
"""UN/LOCODE shape: ISO 3166-1 alpha-2 country code and 3 characters from A-Z and 2-9."""

_PACKAGE = "features.data"
_RESOURCE = ("ports.csv",)
_BOOLEANS = {"true": True, "false": False}
_LOCODE_RE = re.compile(LOCODE_PATTERN)
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class PortReferenceError(ValueError):
    """The port reference file breaks a rule (shape, duplicates, bounds)."""


def _line(row: int) -> int:
    """File line of 0-based data row ``row`` (line 1 is the header)."""
    return row + 2


def _fail(source_name: str, rows: list[int], locodes: list[str | None], rule: str) -> None:
    first = rows[0]
    more = f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""
    raise PortReferenceError(f"{source_name} line {_line(first)} (locode {locodes[first]!r}): {rule}{more}")


def _validate(raw: pl.DataFrame, source_name: str) -> pl.DataFrame:
    """Check an all-string frame against the PORTS contract and cast it to its schema."""
    expected = PORTS.column_names
    if raw.columns != expected:
        raise PortReferenceError(f"{source_name}: columns {raw.columns} differ from the PORTS contract {expected}")
    if raw.height == 0:
        raise PortReferenceError(f"{source_name}: no rows")

    cols = {name: raw.get_column(name).to_list() for name in expected}
    locodes: list[str | None] = cols["locode"]

    def check(rule: str, ok: list[bool]) -> None:
        bad = [i for i, good in enumerate(ok) if not good]
        if bad:
            _fail(source_name, bad, locodes, rule)

    for name in expected:
        check(f"empty {name}", [v is not None and v != "" for v in cols[name]])
    check(
        f"locode does not match {LOCODE_PATTERN}",
        [_LOCODE_RE.fullmatch(v) is not None for v in locodes],
    )
    check(
        "country is not an upper-case ISO 3166-1 alpha-2 code",
        [_COUNTRY_RE.fullmatch(v) is not None for v in cols["country"]],
    )
    check(
        "country differs from the locode's first two letters",
        [c == code[:2] for c, code in zip(cols["country"], locodes, strict=True)],
    )
    check("name has leading or trailing whitespace", [v == v.strip() for v in cols["name"]])
    check(
        "is_transshipment_hub is not 'true' or 'false'",
        [v in _BOOLEANS for v in cols["is_transshipment_hub"]],
    )

    def to_float(value: str) -> float:
        try:
            return float(value)
        except ValueError:
            return math.nan

    lat = [to_float(v) for v in cols["latitude"]]
    lon = [to_float(v) for v in cols["longitude"]]
    check("latitude is not a finite number", [math.isfinite(v) for v in lat])
    check("longitude is not a finite number", [math.isfinite(v) for v in lon])
    check("latitude outside [-90, 90]", [-90.0 <= v <= 90.0 for v in lat])
    check("longitude outside [-180, 180]", [-180.0 <= v <= 180.0 for v in lon])

    first_seen: dict[str, int] = {}
    for i, code in enumerate(locodes):
        if code in first_seen:
            raise PortReferenceError(
                f"{source_name} line {_line(i)} (locode {code!r}): duplicate locode "
                f"(first on line {_line(first_seen[code])})"
            )
        first_seen[code] = i

    return pl.DataFrame(
        {
            "locode": locodes,
            "name": cols["name"],
            "country": cols["country"],
            "latitude": lat,
            "longitude": lon,
            "is_transshipment_hub": [_BOOLEANS[v] for v in cols["is_transshipment_hub"]],
        },
        schema=PORTS.schema,
    )


def read_ports_csv(
    source: str | os.PathLike[str] | bytes,
    *,
    source_name: str | None = None,
) -> pl.DataFrame:
    """Read and validate a port reference CSV.

    Parameters
    ----------
    source
        Path of a UTF-8 CSV file, or its content as bytes. The header must be
        exactly the :data:`~features.data.contracts.PORTS` column names, in order.
    source_name
        Name used in error messages; defaults to the file name (or
        ``"ports.csv"`` for bytes).

    Returns
    -------
    polars.DataFrame
        One row per port, in file order, with exactly the ``PORTS`` schema:
        latitude and longitude in decimal degrees, ``is_transshipment_hub``
        boolean.

    Raises
    ------
    PortReferenceError
        (a ``ValueError``) naming the first offending line, its locode and the
        rule: unreadable CSV, wrong columns, no rows, an empty field, a
        malformed locode or country code, a country differing from the
        locode's prefix, a boolean other than ``true``/``false``, a
        non-finite or out-of-range coordinate (latitude in [-90, 90],
        longitude in [-180, 180], bounds inclusive), a duplicate locode.
    """
    if isinstance(source, bytes):
        data, name = source, source_name or "ports.csv"
    else:
        path = os.fspath(source)
        with open(path, "rb") as fh:
            data = fh.read()
        name = source_name or os.path.basename(path)
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise PortReferenceError(f"{name}: not a readable CSV file ({type(exc).__name__})") from None
    return _validate(raw, name)


@functools.cache
def load_ports() -> pl.DataFrame:
    """Return the packaged port reference table, validated on first load.

    Returns
    -------
    polars.DataFrame
        Exactly the :data:`~features.data.contracts.PORTS` schema (``locode``,
        ``name``, ``country``, ``latitude`` and ``longitude`` in decimal
        degrees, ``is_transshipment_hub``), one row per port, sorted by
        locode. The frame is cached: every call returns the same object, so
        never mutate it in place.

    Raises
    ------
    PortReferenceError
        If the packaged file is broken (see :func:`read_ports_csv`).

    Examples
    --------
    >>> ports = load_ports()
    >>> ports.filter(pl.col("locode") == "NLRTM").get_column("name").item()
    'Rotterdam'
    """
    resource = resources.files(_PACKAGE).joinpath(*_RESOURCE)
    ports = read_ports_csv(resource.read_bytes(), source_name="/".join((_PACKAGE, *_RESOURCE)))
    return ports.sort("locode")


@functools.cache
def known_locodes() -> frozenset[str]:
    """Return the UN/LOCODEs of the port reference table.

    Examples
    --------
    >>> "SGSIN" in known_locodes(), "XXXXX" in known_locodes()
    (True, False)
    """
    return frozenset(load_ports().get_column("locode").to_list())


def port_coordinates_frame() -> pl.DataFrame:
    """Return ``locode``, ``latitude``, ``longitude`` (decimal degrees) of every known port.

    Convenient for joining coordinates onto a frame of locodes (e.g. twice,
    for the origin and the destination, before :func:`haversine_km`).
    """
    return load_ports().select("locode", "latitude", "longitude")


def _expr(value: pl.Expr | str | float) -> pl.Expr:
    if isinstance(value, pl.Expr):
        return value
    if isinstance(value, str):
        return pl.col(value)
    return pl.lit(float(value), dtype=pl.Float64)


def haversine_km(
    lat1: pl.Expr | str | float,
    lon1: pl.Expr | str | float,
    lat2: pl.Expr | str | float,
    lon2: pl.Expr | str | float,
) -> pl.Expr:
    """Great-circle distance in km between two points given in decimal degrees.

    Uses the haversine formula on a sphere of radius :data:`EARTH_RADIUS_KM`
    (error under 0.5 % against the WGS 84 ellipsoid).

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Expressions (a string is a column name, a number a constant) in
        degrees; latitudes are expected in [-90, 90]. Values are not
        range-checked.

    Returns
    -------
    polars.Expr
        Float64 distance in kilometres, >= 0; null where any input is null,
        NaN where any input is NaN.

    Examples
    --------
    >>> df = pl.DataFrame({"lat": [0.0], "lon": [0.0]})
    >>> round(df.select(haversine_km("lat", "lon", 0.0, 1.0)).item(), 3)
    111.195
    """
    phi1 = _expr(lat1).cast(pl.Float64).radians()
    phi2 = _expr(lat2).cast(pl.Float64).radians()
    dphi = phi2 - phi1
    dlmb = (_expr(lon2).cast(pl.Float64) - _expr(lon1).cast(pl.Float64)).radians()
    a = (dphi / 2).sin().pow(2) + phi1.cos() * phi2.cos() * (dlmb / 2).sin().pow(2)
    return (2 * EARTH_RADIUS_KM) * a.sqrt().clip(upper_bound=1.0).arcsin()


def haversine_km_np(
    lat1: npt.ArrayLike,
    lon1: npt.ArrayLike,
    lat2: npt.ArrayLike,
    lon2: npt.ArrayLike,
) -> npt.NDArray[np.float64]:
    """Great-circle distance in km between points given in decimal degrees (numpy).

    The numpy twin of :func:`haversine_km`: same formula, same radius.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Array-likes in degrees, broadcast together; latitudes are expected in
        [-90, 90]. Values are not range-checked.

    Returns
    -------
    numpy.ndarray
        Float64 distances in kilometres (a 0-d array for scalar inputs); NaN
        where any input is NaN.

    Examples
    --------
    >>> round(float(haversine_km_np(0.0, 0.0, 0.0, 1.0)), 3)
    111.195
    """
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    return np.asarray((2 * EARTH_RADIUS_KM) * np.arcsin(np.minimum(np.sqrt(a), 1.0)), dtype=np.float64)


# --------------------------------------------------------------------------- locations and seaports


@functools.cache
def searoute_ports() -> pl.DataFrame:
    """``locode``, ``latitude``, ``longitude`` of the ~3,900 ports shipped by ``searoute`` (``searoute/data/ports.geojson``).

    Rows with a malformed code are skipped; when a code appears twice the
    first record is kept. Sorted by locode.
    """
    import json

    data = json.loads(resources.files("searoute").joinpath("data", "ports.geojson").read_text(encoding="utf-8"))
    seen: dict[str, tuple[float, float]] = {}
    for feature in data["features"]:
        code = str(feature["properties"].get("port") or "")
        lon, lat = feature["geometry"]["coordinates"][:2]
        if _LOCODE_RE.fullmatch(code) and code not in seen:
            seen[code] = (float(lat), float(lon))
    codes = sorted(seen)
    return pl.DataFrame(
        {"locode": codes, "latitude": [seen[c][0] for c in codes], "longitude": [seen[c][1] for c in codes]},
        schema={"locode": pl.String, "latitude": pl.Float64, "longitude": pl.Float64},
    )


@functools.cache
def seaport_locodes() -> frozenset[str]:
    """UN/LOCODEs that may be a port of loading, discharge or transshipment.

    The union of the UN/LOCODE list's seaports (function 1), the ``searoute``
    ports and the packaged port reference (:func:`known_locodes`).
    """
    from features.data.unlocode import unlocode_seaports

    return unlocode_seaports() | frozenset(searoute_ports().get_column("locode").to_list()) | known_locodes()


@functools.cache
def location_locodes() -> frozenset[str]:
    """Every known UN/LOCODE: the whole UN/LOCODE list plus :func:`seaport_locodes` (a place of receipt or delivery may be inland)."""
    from features.data.unlocode import unlocode_codes

    return unlocode_codes() | seaport_locodes()


@functools.cache
def location_coordinates() -> pl.DataFrame:
    """``locode``, ``latitude``, ``longitude`` of every location with coordinates.

    Precedence: the port reference (curated container-terminal positions),
    then ``searoute``'s ports, then the UN/LOCODE list. Sorted by locode.
    """
    from features.data.unlocode import load_unlocode

    layers = [
        load_ports().select("locode", "latitude", "longitude"),
        searoute_ports(),
        load_unlocode().select("locode", "latitude", "longitude").drop_nulls(),
    ]
    return pl.concat(layers, how="vertical").unique("locode", keep="first", maintain_order=True).sort("locode")


@functools.cache
def port_reference() -> pl.DataFrame:
    """Every known location with its UN/LOCODE functions and the engine's own flags on top.

    Columns: ``locode``, ``name``, ``country``, ``latitude``, ``longitude``
    (see :func:`location_coordinates`; null when unknown), the UN/LOCODE
    function flags ``is_seaport``, ``is_rail``, ``is_road``, ``is_airport``,
    ``is_inland_water``, ``is_border`` (``is_seaport`` also true for
    ``searoute`` ports and the container-port list), and the engine's flags
    ``is_container_port`` (in ``ports.csv``) and ``is_transshipment_hub``.
    Sorted by locode.
    """
    from features.data.unlocode import load_unlocode

    ports = load_ports()
    unlocode = load_unlocode().select(
        "locode", "name", "country", "is_seaport", "is_rail", "is_road", "is_airport", "is_inland_water", "is_border"
    )
    extra = (
        pl.concat([ports.select("locode", "name", "country"), searoute_ports().select("locode", pl.lit(None, pl.String).alias("name"), pl.col("locode").str.slice(0, 2).alias("country"))])
        .unique("locode", keep="first", maintain_order=True)
        .join(unlocode.select("locode"), on="locode", how="anti")
    )
    base = pl.concat([unlocode, extra], how="diagonal").with_columns(pl.col(c).fill_null(False) for c in ("is_seaport", "is_rail", "is_road", "is_airport", "is_inland_water", "is_border"))
    seaports = pl.Series(sorted(seaport_locodes()), dtype=pl.String).implode()
    return (
        base.with_columns(pl.col("is_seaport") | pl.col("locode").is_in(seaports))
        .join(location_coordinates(), on="locode", how="left")
        .join(ports.select("locode", pl.lit(True).alias("is_container_port"), "is_transshipment_hub"), on="locode", how="left")
        .with_columns(pl.col("is_container_port").fill_null(False), pl.col("is_transshipment_hub").fill_null(False))
        .select("locode", "name", "country", "latitude", "longitude", "is_seaport", "is_rail", "is_road", "is_airport", "is_inland_water", "is_border", "is_container_port", "is_transshipment_hub")
        .sort("locode")
    )


def clear_location_caches() -> None:
    """Forget the location sets (after the UN/LOCODE list was replaced)."""
    for cached in (seaport_locodes, location_locodes, location_coordinates, port_reference):
        cached.cache_clear()
