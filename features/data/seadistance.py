"""Sea-route distances between ports, from ``searoute``'s maritime network, cached per port pair.

:func:`sea_distance_m` gives the length of the shortest sea route between two
UN/LOCODEs in whole metres (``searoute`` 1.6.0, Dijkstra on its network with
the Northwest Passage closed, ports placed at the coordinates of
:func:`features.data.reference.location_coordinates`). Whole metres make sums
exact whatever order they are added in, so route features are bit-identical
across runs.

Two caches, both keyed by the unordered port pair:

- in process: a dict (thread-safe);
- on disk: a CSV ``a,b,metres`` appended to as pairs are computed. Its path
  is ``CCP_SEA_DISTANCE_CACHE`` (``off`` disables it), by default
  ``$XDG_CACHE_HOME/ccp-targeting/sea-distances-searoute-<version>.csv``
  (``~/.cache/...``). The file name carries the ``searoute`` version, so a
  new network never reuses old distances. A cached value equals the value the
  network gives, so the cache changes speed, never results.
"""

from __future__ import annotations

import csv
import os
import threading
from importlib import metadata
from pathlib import Path

__all__ = ["cache_path", "sea_distance_m", "sea_distances_m"]

_lock = threading.Lock()
_memory: dict[tuple[str, str], int | None] = {}
_loaded_from: list[Path | None] = []
_NO_PATH = -1


def _searoute_version() -> str:
    return metadata.version("searoute")


def cache_path() -> Path | None:
    """Where computed distances persist (see the module docstring); ``None`` when disabled."""
    configured = os.environ.get("CCP_SEA_DISTANCE_CACHE")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "none", "0") else Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ccp-targeting" / f"sea-distances-searoute-{_searoute_version()}.csv"


def _load_disk(path: Path | None) -> None:
    """Read the disk cache once per path into the in-process cache (malformed lines are ignored)."""
    if _loaded_from and _loaded_from[-1] == path:
        return
    _loaded_from.append(path)
    if path is None or not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) == 3 and row[2].lstrip("-").isdigit():
                metres = int(row[2])
                _memory[(row[0], row[1])] = None if metres == _NO_PATH else metres


def _append_disk(path: Path | None, rows: list[tuple[str, str, int | None]]) -> None:
    if path is None or not rows:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows((a, b, _NO_PATH if m is None else m) for a, b, m in rows)
    except OSError:
        pass  # a read-only home: the in-process cache still works


def _coordinates() -> dict[str, tuple[float, float]]:
    from features.data.reference import location_coordinates

    frame = location_coordinates()
    return dict(zip(frame["locode"].to_list(), zip(frame["longitude"].to_list(), frame["latitude"].to_list(), strict=True), strict=True))


_coords_cache: list[dict[str, tuple[float, float]]] = []


def _compute(a: str, b: str) -> int | None:
    """Metres of the shortest sea route between ports ``a`` and ``b``; ``None`` without coordinates or path."""
    import searoute

    if not _coords_cache:
        _coords_cache.append(_coordinates())
    coords = _coords_cache[0]
    if a not in coords or b not in coords:
        return None
    try:
        route = searoute.searoute(list(coords[a]), list(coords[b]), units="m")
    except Exception:  # noqa: BLE001 - searoute raises bare exceptions for unreachable points
        return None
    length = route.get("properties", {}).get("length")
    return None if length is None else int(round(float(length)))


def sea_distances_m(pairs: list[tuple[str, str]]) -> list[int | None]:
    """:func:`sea_distance_m` of each pair, computing the missing ones once and persisting them together."""
    path = cache_path()
    out: list[int | None] = []
    fresh: list[tuple[str, str, int | None]] = []
    with _lock:
        _load_disk(path)
        for a, b in pairs:
            if a == b:
                out.append(0)
                continue
            key = (a, b) if a < b else (b, a)
            if key not in _memory:
                _memory[key] = _compute(*key)
                fresh.append((*key, _memory[key]))
            out.append(_memory[key])
        _append_disk(path, fresh)
    return out


def sea_distance_m(a: str, b: str) -> int | None:
    """Shortest sea-route distance between ports ``a`` and ``b`` in whole metres.

    Symmetric; 0 for the same port; ``None`` when a port has no coordinates
    or the network has no path. Deterministic for a given ``searoute``
    version and port reference.
    """
    return sea_distances_m([(a, b)])[0]
