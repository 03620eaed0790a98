"""The manifests of the lake, as the service checks outcomes against them.

An outcome may only name a manifest that the posting officer's port handles
(:func:`features.data.handling.handles`) with that manifest's container
number. :class:`ManifestDirectory` keeps a small index of the lake's manifests
(id, container, ports) and re-reads it when the lake has a new commit (checked
at most every ``refresh_seconds``). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.data.handling import handled_directions
from features.data.lake import Lake

INDEX_COLUMNS = ("manifest_id", "container_number", "port_of_loading", "port_of_discharge", "transshipment_ports")


@dataclass(frozen=True)
class ManifestRef:
    """What outcome checks need of a manifest."""

    manifest_id: str
    container_number: str
    port_of_loading: str | None
    port_of_discharge: str | None
    transshipment_ports: tuple[str, ...]

    def handled_by(self, port: str) -> tuple[str, ...]:
        """Directions in which ``port`` handles this manifest (empty: it does not)."""
        return handled_directions(
            {"port_of_loading": self.port_of_loading, "port_of_discharge": self.port_of_discharge, "transshipment_ports": self.transshipment_ports},
            port,
        )


class ManifestDirectory:
    """Index of the lake's manifests by id (the last committed row of an id wins).

    Parameters
    ----------
    lake_dir
        The lake; a missing directory is an empty lake.
    refresh_seconds
        How often (monotonic seconds) the lake's last commit is checked.
    """

    def __init__(self, lake_dir: Path, *, refresh_seconds: float = 2.0) -> None:
        self._lake = Lake(lake_dir)
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._seq: int | None = None
        self._checked = float("-inf")
        self._frame = pl.DataFrame(schema={c: pl.String for c in INDEX_COLUMNS[:-1]} | {"transshipment_ports": pl.List(pl.String)})
        self._index: dict[str, ManifestRef] = {}

    def _refresh(self) -> None:
        if time.monotonic() - self._checked < self._refresh_seconds:
            return
        seq = self._lake.last_seq() if self._lake.root.is_dir() else 0
        self._checked = time.monotonic()
        if seq == self._seq:
            return
        frame = self._lake.scan("manifests").select(INDEX_COLUMNS).collect()
        frame = frame.unique(subset="manifest_id", keep="last", maintain_order=True)
        self._index = {
            r["manifest_id"]: ManifestRef(
                r["manifest_id"], r["container_number"], r["port_of_loading"], r["port_of_discharge"], tuple(r["transshipment_ports"] or ())
            )
            for r in frame.iter_rows(named=True)
        }
        self._frame, self._seq = frame, seq

    def find(self, manifest_id: str) -> ManifestRef | None:
        """The manifest ``manifest_id``, ``None`` when the lake has none."""
        with self._lock:
            self._refresh()
            return self._index.get(manifest_id)

    def frame(self) -> pl.DataFrame:
        """The index as a frame (:data:`INDEX_COLUMNS`)."""
        with self._lock:
            self._refresh()
            return self._frame


_directories: dict[Path, ManifestDirectory] = {}  # by the path given and by the resolved path
_directories_lock = threading.Lock()


def manifest_directory(lake_dir: Path) -> ManifestDirectory:
    """The process's shared :class:`ManifestDirectory` of ``lake_dir``."""
    directory = _directories.get(lake_dir)  # the path as given: no resolve() (a filesystem walk) per request
    if directory is not None:
        return directory
    key = Path(lake_dir).resolve()
    with _directories_lock:
        directory = _directories.get(key)
        if directory is None:
            directory = _directories[key] = ManifestDirectory(key)
        _directories[lake_dir] = directory
        return directory
