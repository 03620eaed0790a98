"""Spelling variants of party names and identifiers, as different filers write them.

Real manifests spell one trader many ways and identify it inconsistently.
:func:`spell_parties` rewrites the party columns of a share of manifest rows
the way another filer would:

- the name: upper case, legal form written out or abbreviated (``Ltd`` <->
  ``Limited``, ``S.A.`` <-> ``Sociedad Anonima``, ``GmbH`` <-> ``G.m.b.H.``),
  punctuation added, accents dropped, two words transposed, or a one-letter
  typo;
- the identifier: kept, written with spaces and dashes, replaced by a
  placeholder (``UNKNOWN``, ``N/A``), or replaced by the filer's own code for
  the trader (stable per trader and filer).

Deterministic for a given generator state; the generator is the caller's
(the world passes one of its own so worlds without variants are unchanged).
"""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np
import polars as pl

ROLES = ("shipper", "consignee", "notify")
_LONG = {"Ltd": "Limited", "S.A.": "Sociedad Anonima", "GmbH": "G.m.b.H.", "Inc.": "Incorporated", "Co.": "Company", "B.V.": "BV", "S.A.S.": "SAS", "SARL": "S.A.R.L."}
_SHORT = {v: k for k, v in _LONG.items()}
NAME_KINDS = ("upper", "legal_form", "punctuation", "accents", "transpose", "typo")
ID_KINDS = ("keep", "format", "placeholder", "filer_code")
ID_WEIGHTS = (0.45, 0.2, 0.15, 0.2)


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def variant_name(name: str, kind: str, rng: np.random.Generator) -> str:
    """One spelling variant of ``name`` (``kind`` from :data:`NAME_KINDS`)."""
    words = name.split()
    if kind == "upper":
        return name.upper()
    if kind == "legal_form":
        for short, long in [*_LONG.items(), *_SHORT.items()]:
            if name.endswith(" " + short):
                return name[: -len(short)] + long
        return name + " Ltd"
    if kind == "punctuation" and len(words) > 1:
        return ", ".join([" ".join(words[:-1]), words[-1]]) + ("." if not words[-1].endswith(".") else "")
    if kind == "accents":
        return _fold(name)
    if kind == "transpose" and len(words) > 2:
        i = int(rng.integers(0, len(words) - 2))
        words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)
    if kind == "typo" and len(name) > 6:
        letters = [i for i, ch in enumerate(name) if ch.isalpha()]
        i = letters[int(rng.integers(1, len(letters)))]
        return name[:i] + name[i + 1 :] if rng.random() < 0.5 else name[:i] + name[i] + name[i:]
    return name.upper()


def variant_id(party_id: str, kind: str, filer: str, rng: np.random.Generator) -> str:
    """One way a filer writes the trader's identifier (``kind`` from :data:`ID_KINDS`)."""
    if kind == "format":
        return " ".join(party_id[i : i + 4] for i in range(0, len(party_id), 4))
    if kind == "placeholder":
        return ["UNKNOWN", "N/A", "TO ORDER"][int(rng.integers(0, 3))]
    if kind == "filer_code":
        return "F" + hashlib.sha256(f"{filer}:{party_id}".encode()).hexdigest()[:9].upper()
    return party_id


def spell_parties(manifests: pl.DataFrame, rng: np.random.Generator, *, rate: float, filer_column: str = "carrier") -> pl.DataFrame:
    """``manifests`` with the party id and name of a share ``rate`` of (row, role) pairs rewritten by another filer.

    Row order, other columns and the country are unchanged; the rows' true
    identifiers are not kept here (callers that need them keep a copy).
    """
    if rate <= 0 or manifests.height == 0:
        return manifests
    out = {}
    filers = manifests[filer_column].to_list() if filer_column in manifests.columns else [""] * manifests.height
    for role in ROLES:
        ids, names = manifests[f"{role}_id"].to_list(), manifests[f"{role}_name"].to_list()
        draws = rng.random(manifests.height)
        for i in np.flatnonzero(draws < rate):
            if ids[i] is None or names[i] is None:
                continue
            name_kind = NAME_KINDS[int(rng.integers(0, len(NAME_KINDS)))]
            id_kind = ID_KINDS[int(rng.choice(len(ID_KINDS), p=ID_WEIGHTS))]
            names[i] = variant_name(names[i], name_kind, rng)
            ids[i] = variant_id(ids[i], id_kind, str(filers[i]), rng)
        out[f"{role}_id"], out[f"{role}_name"] = ids, names
    return manifests.with_columns(pl.Series(k, v, dtype=pl.String) for k, v in out.items())
