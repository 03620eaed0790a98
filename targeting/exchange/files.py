"""Signed JSON Lines files: the same signed messages, for units without a network link.

One signed message (``{"message": ..., "signature": ...}``) per line, UTF-8. Writing is atomic (a
temporary file renamed into place). Reading never trusts a line: each is checked on import exactly as an
HTTP receipt (signature, sender, schema, addressing, validity, replay) by the importing instance.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, payloads: Iterable[dict[str, Any]]) -> int:
    """Write the signed messages to ``path`` atomically; returns how many lines were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for payload in payloads:
                handle.write(json.dumps(payload, sort_keys=True, ensure_ascii=False) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def read_jsonl(path: Path) -> list[tuple[int, Any]]:
    """``(line number, parsed JSON or None when the line is not JSON)`` of every non-blank line of ``path``."""
    out: list[tuple[int, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append((number, json.loads(line)))
            except ValueError:
                out.append((number, None))
    return out
