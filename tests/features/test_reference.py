"""Tests of the port reference table and its loader (features.data.reference)."""

from __future__ import annotations

import doctest
import math
import re

import numpy as np
import polars as pl
import pytest

import features.data.reference as reference
from features.data.contracts import PORTS
from features.data.reference import (
    EARTH_RADIUS_KM,
    PortReferenceError,
    haversine_km,
    haversine_km_np,
    known_locodes,
    load_ports,
    port_coordinates_frame,
    read_ports_csv,
)

HEADER = "locode,name,country,latitude,longitude,is_transshipment_hub\n"
GOOD_ROWS = "NLRTM,Rotterdam,NL,51.9,4.4,true\nSGSIN,Singapore,SG,1.24,103.83,true\n"


@pytest.fixture(scope="module")
def ports() -> pl.DataFrame:
    return load_ports()


def _coords(ports: pl.DataFrame, locode: str) -> tuple[float, float]:
    row = ports.filter(pl.col("locode") == locode)
    assert row.height == 1, locode
    return row.get_column("latitude").item(), row.get_column("longitude").item()


# --- the packaged table ------------------------------------------------------


def test_table_has_at_least_220_ports(ports):
    assert ports.height >= 220


def test_schema_equals_ports_contract(ports):
    assert ports.schema == PORTS.schema
    assert ports.columns == PORTS.column_names


def test_no_nulls(ports):
    assert ports.null_count().row(0) == (0,) * ports.width


def test_locodes_unique_and_well_formed(ports):
    codes = ports.get_column("locode")
    assert codes.n_unique() == ports.height
    assert codes.str.contains(reference.LOCODE_PATTERN).all()
    assert all(re.fullmatch(r"[A-Z]{2}[A-Z2-9]{3}", c) for c in codes)


def test_country_equals_locode_prefix(ports):
    assert (ports.get_column("country") == ports.get_column("locode").str.slice(0, 2)).all()


def test_coordinates_within_bounds_and_finite(ports):
    lat, lon = ports.get_column("latitude"), ports.get_column("longitude")
    assert lat.is_finite().all() and lon.is_finite().all()
    assert lat.min() >= -90 and lat.max() <= 90
    assert lon.min() >= -180 and lon.max() <= 180


def test_names_non_empty_and_trimmed(ports):
    names = ports.get_column("name")
    assert (names.str.len_chars() > 0).all()
    assert (names == names.str.strip_chars()).all()


def test_no_two_ports_share_exact_coordinates_with_different_countries(ports):
    dup = ports.group_by("latitude", "longitude").agg(pl.col("country").n_unique().alias("n"))
    assert dup.filter(pl.col("n") > 1).height == 0


def test_sorted_by_locode(ports):
    assert ports.get_column("locode").is_sorted()


@pytest.mark.parametrize(
    ("locode", "lat", "lon", "tol"),
    [
        ("NLRTM", 51.9, 4.1, 0.5),  # searoute places Rotterdam in the city (4.44E); Maasvlakte is 4.03E
        ("SGSIN", 1.26, 103.8, 0.15),
        ("ECGYE", -2.28, -79.9, 0.15),
        ("USLAX", 33.7, -118.3, 0.15),
        ("BEANR", 51.27, 4.35, 0.2),
        ("DEHAM", 53.54, 9.93, 0.2),
        ("ESALG", 36.13, -5.44, 0.1),
        ("COCTG", 10.39, -75.53, 0.15),
        ("PAMIT", 9.37, -79.88, 0.1),
        ("MAPTM", 35.89, -5.50, 0.1),
        ("CNSHA", 31.2, 121.5, 0.5),
        ("AUSYD", -33.95, 151.2, 0.2),
        ("BRSSZ", -23.97, -46.3, 0.15),
        ("ZADUR", -29.87, 31.03, 0.15),
        ("TGLFW", 6.13, 1.28, 0.1),
        ("AEJEA", 25.01, 55.06, 0.1),
    ],
)
def test_known_port_coordinates(ports, locode, lat, lon, tol):
    got_lat, got_lon = _coords(ports, locode)
    assert abs(got_lat - lat) <= tol
    assert abs(got_lon - lon) <= tol


def test_ports_lie_in_their_hemisphere(ports):
    # cheap guard against swapped latitude/longitude
    for locode, lat_sign, lon_sign in [
        ("ECGYE", -1, -1),
        ("BRSSZ", -1, -1),
        ("AUMEL", -1, 1),
        ("NZAKL", -1, 1),
        ("JPTYO", 1, 1),
        ("USNYC", 1, -1),
        ("ZACPT", -1, 1),
    ]:
        lat, lon = _coords(ports, locode)
        assert math.copysign(1, lat) == lat_sign and math.copysign(1, lon) == lon_sign, locode


MAJOR_HUBS = [
    "SGSIN", "MYTPP", "MYPKG", "LKCMB", "AEJEA", "OMSLL", "EGPSD", "ESALG", "ESVLC", "MAPTM",
    "ITGIT", "MTMAR", "GRPIR", "PAMIT", "PABLB", "PACTB", "JMKIN", "BSFPO", "DOCAU", "COCTG",
    "TGLFW", "CNSHA", "KRPUS", "HKHKG", "TWKHH", "NLRTM", "BEANR", "DEHAM",
]  # fmt: skip


def test_major_transshipment_hubs_flagged(ports):
    hubs = set(ports.filter(pl.col("is_transshipment_hub")).get_column("locode"))
    assert set(MAJOR_HUBS) <= hubs
    assert 30 <= len(hubs) <= 45


def test_gateway_ports_are_not_hubs(ports):
    gateways = ["USLAX", "GBFXT", "FRLEH", "ECGYE", "NGAPP", "AUSYD", "INNSA"]
    flagged = ports.filter(pl.col("locode").is_in(gateways) & pl.col("is_transshipment_hub"))
    assert flagged.height == 0


REQUIRED_PORTS = [
    # South and Central America, Caribbean, Mexico
    "ECGYE", "ECPSJ", "COCTG", "COBUN", "COSMR", "COBAQ", "COTRB", "PECLL", "PEPAI", "BRSSZ",
    "BRPNG", "BRRIG", "BRITJ", "BRNVT", "BRSSA", "BRRIO", "BRPEC", "BRSUA", "PAMIT", "PABLB",
    "PAONX", "PACTB", "VEPBL", "VELAG", "CLSAI", "CLVAP", "ARBUE", "UYMVD", "PYASU", "GTSTC",
    "GTPRQ", "HNPCR", "CRMOB", "CRLIO", "DOCAU", "DOHAI", "JMKIN", "BSFPO", "TTPOS", "GYGEO",
    "SRPBM", "MXZLO", "MXLZC", "MXVER", "MXATM",
    # West and Central Africa
    "TGLFW", "GHTEM", "NGAPP", "NGTIN", "NGONN", "CIABJ", "CISPY", "SNDKR", "BJCOO", "CMDLA",
    "CMKBI", "CGPNR", "GNCKY", "SLFNA", "LRMLW", "GMBJL", "GWOXB", "AOLAD", "GALBV",
    # East, South and North Africa
    "KEMBA", "TZDAR", "DJJIB", "ZADUR", "ZACPT", "MAPTM", "MACAS", "EGPSD", "EGALY",
    # Mediterranean and Black Sea
    "ESALG", "ESVLC", "ESBCN", "ITGIT", "MTMAR", "GRPIR", "ITGOA", "ITSPE", "ITLIV", "ITTRS",
    "SIKOP", "HRRJK", "TRAMR", "TRMER", "TRIZM", "ILHFA", "ILASH", "LBBEY", "ROCND",
    # Northern Europe and Atlantic Iberia
    "NLRTM", "BEANR", "BEZEE", "DEHAM", "DEBRV", "DEWVN", "FRLEH", "FRDKK", "GBFXT", "GBSOU",
    "GBLGP", "GBLIV", "IEDUB", "PLGDN", "SEGOT", "DKAAR", "DKCPH", "FIHEL", "LTKLJ", "RULED",
    "PTSIE", "PTLIS", "PTLEI", "ESBIO",
    # Middle East
    "AEJEA", "AEKHL", "OMSLL", "OMSOH", "SAJED", "SADMM", "SAKAC", "QAHMD", "IRBND", "JOAQJ",
    # South Asia
    "LKCMB", "INNSA", "INMUN", "INMAA", "INCCU", "INVTZ", "INCOK", "PKKHI", "PKBQM", "BDCGP",
    # East and South-East Asia
    "CNSHA", "CNNGB", "CNYTN", "CNSHK", "CNNSA", "CNTAO", "CNTXG", "CNXMN", "CNDLC", "HKHKG",
    "TWKHH", "TWKEL", "TWTXG", "KRPUS", "KRINC", "JPTYO", "JPYOK", "JPUKB", "JPOSA", "JPNGO",
    "SGSIN", "MYPKG", "MYTPP", "MYPEN", "THLCH", "THBKK", "VNSGN", "VNCLI", "VNCMT", "VNHPH",
    "VNDAD", "PHMNL", "PHCEB", "IDTPP", "IDSUB", "IDSRG", "IDBLW", "KHPNH", "KHKOS", "MMRGN",
    # Oceania
    "AUSYD", "AUMEL", "AUBNE", "AUFRE", "AUADL", "NZAKL", "NZTRG", "NZLYT",
    # North America
    "USLAX", "USLGB", "USOAK", "USSEA", "USTIW", "USNYC", "USSAV", "USCHS", "USORF", "USHOU",
    "USMIA", "USPEF", "USBAL", "USPHL", "USMSY", "USJAX", "CAVAN", "CAPRR", "CAMTR", "CAHAL",
]  # fmt: skip


def test_every_region_covered():
    missing = sorted(set(REQUIRED_PORTS) - known_locodes())
    assert missing == []


def test_load_ports_is_cached():
    assert load_ports() is load_ports()


def test_known_locodes_matches_table(ports):
    codes = known_locodes()
    assert isinstance(codes, frozenset)
    assert codes == set(ports.get_column("locode"))
    assert "NLRTM" in codes and "XXXXX" not in codes


def test_port_coordinates_frame(ports):
    frame = port_coordinates_frame()
    assert frame.columns == ["locode", "latitude", "longitude"]
    assert frame.height == ports.height
    assert frame.schema["latitude"] == pl.Float64


def test_module_doctests():
    result = doctest.testmod(reference)
    assert result.attempted > 0 and result.failed == 0


# --- validation of broken files ----------------------------------------------


def test_read_ports_csv_accepts_well_formed_bytes():
    df = read_ports_csv((HEADER + GOOD_ROWS).encode())
    assert df.schema == PORTS.schema
    assert df.get_column("is_transshipment_hub").to_list() == [True, True]


def test_read_ports_csv_reads_a_path(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + GOOD_ROWS)
    assert read_ports_csv(path).height == 2
    path.write_text(HEADER + GOOD_ROWS + "NLRTM,Rotterdam,NL,51.9,4.4,true\n")
    with pytest.raises(PortReferenceError, match=r"^mine\.csv line 4 "):
        read_ports_csv(path)


def test_port_reference_error_is_value_error():
    assert issubclass(PortReferenceError, ValueError)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "NLRTM,Rotterdam,NL,51.9,4.4,true\nNLRTM,Rotterdam,NL,51.9,4.4,true\n",
            "ports.csv line 3 (locode 'NLRTM'): duplicate locode (first on line 2)",
        ),
        ("NLRT1,Rotterdam,NL,51.9,4.4,true\n", "ports.csv line 2 (locode 'NLRT1'): locode does not match"),
        ("nlrtm,Rotterdam,NL,51.9,4.4,true\n", "ports.csv line 2 (locode 'nlrtm'): locode does not match"),
        (
            "NLRTM,Rotterdam,BE,51.9,4.4,true\n",
            "ports.csv line 2 (locode 'NLRTM'): country differs from the locode's first two letters",
        ),
        ("NLRTM,Rotterdam,nl,51.9,4.4,true\n", "ports.csv line 2 (locode 'NLRTM'): country is not an upper-case"),
        (
            GOOD_ROWS + "USLAX,Los Angeles,US,91.0,-118.3,false\n",
            "ports.csv line 4 (locode 'USLAX'): latitude outside [-90, 90]",
        ),
        (
            "USLAX,Los Angeles,US,33.7,-181,false\n",
            "ports.csv line 2 (locode 'USLAX'): longitude outside [-180, 180]",
        ),
        ("USLAX,Los Angeles,US,nan,-118.3,false\n", "ports.csv line 2 (locode 'USLAX'): latitude is not a finite"),
        ("USLAX,Los Angeles,US,33.7,east,false\n", "ports.csv line 2 (locode 'USLAX'): longitude is not a finite"),
        ("USLAX,Los Angeles,US,33.7,-118.3,yes\n", "ports.csv line 2 (locode 'USLAX'): is_transshipment_hub is not"),
        ("USLAX,,US,33.7,-118.3,false\n", "ports.csv line 2 (locode 'USLAX'): empty name"),
        ("USLAX,Los Angeles,US,33.7\n", "ports.csv line 2 (locode 'USLAX'): empty longitude"),
        (" USLAX,Los Angeles,US,33.7,-118.3,false\n", "ports.csv line 2 (locode ' USLAX'): locode does not match"),
    ],
)
def test_broken_rows_are_named(rows, message):
    with pytest.raises(PortReferenceError, match=re.escape(message)):
        read_ports_csv((HEADER + rows).encode())


def test_error_counts_further_offending_rows():
    rows = "AAXXX,A,AA,91,0,false\nBBXXX,B,BB,95,0,false\n"
    with pytest.raises(PortReferenceError, match=re.escape("latitude outside [-90, 90] (and 1 more rows)")):
        read_ports_csv((HEADER + rows).encode())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "ports.csv: not a readable CSV file"),
        (HEADER.encode(), "ports.csv: no rows"),
        (
            b"locode,name,country,latitude,longitude\nNLRTM,Rotterdam,NL,51.9,4.4\n",
            "ports.csv: columns ['locode', 'name', 'country', 'latitude', 'longitude'] differ from the PORTS contract",
        ),
        (
            b"name,locode,country,latitude,longitude,is_transshipment_hub\nRotterdam,NLRTM,NL,51.9,4.4,true\n",
            "ports.csv: columns ['name', 'locode',",
        ),
        (HEADER.encode() + b"NLRTM,Rotterdam,NL,51.9,4.4,true,extra\n", "ports.csv: not a readable CSV file"),
        (HEADER.encode() + b"NLRTM,Rotterd\xe4m,NL,51.9,4.4,true\n", "ports.csv: not a readable CSV file"),
    ],
)
def test_broken_files_are_rejected(content, message):
    with pytest.raises(PortReferenceError, match=re.escape(message)):
        read_ports_csv(content)


# --- great-circle distance ---------------------------------------------------


def test_rotterdam_singapore_about_10500_km(ports):
    (lat1, lon1), (lat2, lon2) = _coords(ports, "NLRTM"), _coords(ports, "SGSIN")
    d = float(haversine_km_np(lat1, lon1, lat2, lon2))
    assert 10_300 <= d <= 10_700


def test_one_degree_of_equator_and_half_circumference():
    assert float(haversine_km_np(0, 0, 0, 1)) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-12)
    assert float(haversine_km_np(0, 0, 0, 180)) == pytest.approx(EARTH_RADIUS_KM * math.pi, rel=1e-12)
    assert float(haversine_km_np(90, 0, -90, 0)) == pytest.approx(EARTH_RADIUS_KM * math.pi, rel=1e-12)


def test_known_city_distance():
    # London Heathrow - New York JFK great circle is about 5,540 km
    assert float(haversine_km_np(51.47, -0.4543, 40.6413, -73.7781)) == pytest.approx(5540, abs=15)


def test_distance_across_antimeridian_is_short():
    assert float(haversine_km_np(0, 179.5, 0, -179.5)) == pytest.approx(111.195, abs=0.01)


def test_expression_and_numpy_agree_on_all_pairs(ports):
    pairs = ports.select("locode", "latitude", "longitude").join(
        ports.select("locode", "latitude", "longitude"), how="cross", suffix="_2"
    )
    got = pairs.select(haversine_km("latitude", "longitude", "latitude_2", "longitude_2")).to_series().to_numpy()
    want = haversine_km_np(
        pairs.get_column("latitude").to_numpy(),
        pairs.get_column("longitude").to_numpy(),
        pairs.get_column("latitude_2").to_numpy(),
        pairs.get_column("longitude_2").to_numpy(),
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    assert got.min() >= 0 and got.max() <= EARTH_RADIUS_KM * math.pi + 1e-6


def test_zero_distance_to_self(ports):
    d = ports.select(
        haversine_km(pl.col("latitude"), pl.col("longitude"), pl.col("latitude"), pl.col("longitude"))
    ).to_series()
    assert (d == 0).all()
    np.testing.assert_array_equal(
        haversine_km_np(ports["latitude"].to_numpy(), ports["longitude"].to_numpy(),
                        ports["latitude"].to_numpy(), ports["longitude"].to_numpy()),
        0.0,
    )  # fmt: skip


def test_distance_is_symmetric(ports):
    lat, lon = ports["latitude"].to_numpy(), ports["longitude"].to_numpy()
    rlat, rlon = lat[::-1], lon[::-1]
    np.testing.assert_allclose(haversine_km_np(lat, lon, rlat, rlon), haversine_km_np(rlat, rlon, lat, lon), rtol=1e-12)


def test_expression_accepts_constants_and_propagates_nulls():
    df = pl.DataFrame({"lat": [0.0, None], "lon": [0.0, 0.0]}, schema={"lat": pl.Float64, "lon": pl.Float64})
    out = df.select(haversine_km(pl.col("lat"), "lon", 0, 1.0).alias("d")).get_column("d")
    assert out[0] == pytest.approx(111.195, abs=1e-3)
    assert out[1] is None
    assert out.dtype == pl.Float64


def test_numpy_version_broadcasts_and_propagates_nan():
    out = haversine_km_np([0.0, np.nan], 0.0, 0.0, 1.0)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(111.195, abs=1e-3) and np.isnan(out[1])


def test_haversine_joins_on_port_coordinates():
    legs = pl.DataFrame({"origin": ["ECGYE", "COCTG"], "destination": ["BEANR", "NLRTM"]})
    coords = port_coordinates_frame()
    out = (
        legs.join(coords, left_on="origin", right_on="locode")
        .join(coords, left_on="destination", right_on="locode", suffix="_dest")
        .select(haversine_km("latitude", "longitude", "latitude_dest", "longitude_dest").alias("km"))
        .get_column("km")
    )
    assert (out > 8_000).all() and (out < 10_500).all()
