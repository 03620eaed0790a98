"""Party-name normalisation and similarity for watchlist matching and party resolution.

Trade documents spell one trader many ways: ``Acme Trading Ltd.``,
``ACME TRADING LIMITED``, ``Trading Acme Ltd``, ``Café Andino S.A.``,
``CAFE ANDINO SOCIEDAD ANONIMA``. :func:`normalise_party_name` maps such
variants to one canonical string (upper case, accents folded, punctuation
removed, legal forms unified, whitespace collapsed) and
:func:`party_similarity` scores two names 0..100 with ``rapidfuzz``'s
token-sort ratio on the normalised forms (word order does not matter).

Both functions are pure and deterministic (no clock, no state).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import fuzz

# Letters that NFKD does not decompose into a base letter plus a mark.
_FOLD_EXTRA = str.maketrans({
    "ß": "SS", "ẞ": "SS", "Ø": "O", "ø": "O", "Æ": "AE", "æ": "AE", "Œ": "OE", "œ": "OE",
    "Ð": "D", "ð": "D", "Þ": "TH", "þ": "TH", "Ł": "L", "ł": "L", "Đ": "D", "đ": "D", "ı": "I",
})

# Multi-word legal forms, longest first, in their normalised (folded, upper-case) spelling.
_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(
        (
            (tuple(phrase.split()), canonical)
            for phrase, canonical in (
                ("SOCIEDAD ANONIMA", "SA"),
                ("SOCIEDADE ANONIMA", "SA"),
                ("SOCIETE ANONYME", "SA"),
                ("SOCIETA PER AZIONI", "SPA"),
                ("SOCIEDAD POR ACCIONES SIMPLIFICADA", "SAS"),
                ("SOCIETE PAR ACTIONS SIMPLIFIEE", "SAS"),
                ("SOCIETE PAR ACTIONS SIMPLIFIE", "SAS"),
                ("SOCIEDAD DE RESPONSABILIDAD LIMITADA", "SRL"),
                ("SOCIETA A RESPONSABILITA LIMITATA", "SRL"),
                ("SOCIETE A RESPONSABILITE LIMITEE", "SARL"),
                ("SOCIEDAD LIMITADA", "SL"),
                ("S DE RL", "SRL"),
                ("GESELLSCHAFT MIT BESCHRANKTER HAFTUNG", "GMBH"),
                ("BESLOTEN VENNOOTSCHAP", "BV"),
                ("NAAMLOZE VENNOOTSCHAP", "NV"),
                ("LIMITED LIABILITY COMPANY", "LLC"),
                ("LIMITED LIABILITY CO", "LLC"),
                ("PUBLIC LIMITED COMPANY", "PLC"),
                ("PRIVATE LIMITED", "PVT LTD"),
                ("PTY LIMITED", "PTY LTD"),
                ("CO LTD", "CO LTD"),
            )
        ),
        key=lambda item: -len(item[0]),
    )
)

# Single-word legal forms and their usual abbreviations.
_WORDS: dict[str, str] = {
    "LIMITED": "LTD", "LTD": "LTD", "LTDA": "LTDA", "LIMITADA": "LTDA",
    "INCORPORATED": "INC", "INC": "INC", "CORPORATION": "CORP", "CORP": "CORP",
    "COMPANY": "CO", "CO": "CO", "COMPANIA": "CIA", "COMPANHIA": "CIA", "CIA": "CIA",
    "GMBH": "GMBH", "AKTIENGESELLSCHAFT": "AG", "AG": "AG",
    "LLC": "LLC", "LLP": "LLP", "PLC": "PLC", "SARL": "SARL", "SAS": "SAS", "SA": "SA",
    "SPA": "SPA", "SRL": "SRL", "SL": "SL", "BV": "BV", "NV": "NV", "PTY": "PTY",
    "PRIVATE": "PVT", "PVT": "PVT", "BROTHERS": "BROS", "BROS": "BROS",
    "&": "AND", "Y": "AND", "ET": "AND", "UND": "AND",
}

LEGAL_FORMS: frozenset[str] = frozenset(
    {"LTD", "LTDA", "INC", "CORP", "CO", "CIA", "GMBH", "AG", "LLC", "LLP", "PLC", "SARL", "SAS",
     "SA", "SPA", "SRL", "SL", "BV", "NV", "PTY", "PVT", "DE", "CV"}
)
"""Normalised legal-form tokens (see :func:`strip_legal_forms`)."""

_DOTTED_INITIALS = re.compile(r"^(?:[A-Z]\.)+[A-Z]?\.?$")
_SEPARATORS = re.compile(r"[^A-Z0-9&.\s]+")


def fold_accents(text: str) -> str:
    """Return ``text`` with diacritics removed (``Café Ñandú`` -> ``Cafe Nandu``, ``ß`` -> ``SS``)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _tokens(name: str) -> list[str]:
    """Split an upper-case, folded name into words; dotted initials (``S.A.``) become one word."""
    upper = fold_accents(name).upper().replace("'", "").replace("’", "")
    upper = upper.replace("&", " & ")
    words: list[str] = []
    for raw in _SEPARATORS.sub(" ", upper).split():
        if _DOTTED_INITIALS.match(raw):
            words.append(raw.replace(".", ""))
        else:
            words.extend(part for part in raw.split(".") if part)
    return _merge_initials(words)


def _merge_initials(words: list[str]) -> list[str]:
    """Join runs of single letters (``S A S`` -> ``SAS``, ``B V`` -> ``BV``); ``&`` is not a letter."""
    merged: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if run:
            merged.append("".join(run))
            run = []
        if word:
            merged.append(word)
    return merged


def _unify_legal_forms(words: list[str]) -> list[str]:
    """Replace multi-word then single-word legal forms by their canonical abbreviation."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for phrase, canonical in _PHRASES:
            if tuple(words[i : i + len(phrase)]) == phrase:
                out.extend(canonical.split())
                i += len(phrase)
                break
        else:
            out.append(_WORDS.get(words[i], words[i]))
            i += 1
    return out


@lru_cache(maxsize=65_536)
def normalise_party_name(name: str) -> str:
    """Return the canonical spelling of a party name.

    Upper case, accents folded, apostrophes dropped, other punctuation turned
    into spaces, dotted initials joined (``S.A.`` -> ``SA``), legal forms
    unified (``LIMITED`` -> ``LTD``, ``SOCIEDAD ANONIMA`` -> ``SA``,
    ``INCORPORATED`` -> ``INC``, ``COMPANY`` -> ``CO``, ``&`` -> ``AND`` ...),
    whitespace collapsed. ``None``-like empty input gives ``""``.

    Examples
    --------
    >>> normalise_party_name("Acme Trading Limited")
    'ACME TRADING LTD'
    >>> normalise_party_name("Café Andino, Sociedad Anónima")
    'CAFE ANDINO SA'
    >>> normalise_party_name("  Müller & Söhne G.m.b.H. ")
    'MULLER AND SOHNE GMBH'
    """
    if not name:
        return ""
    return " ".join(_unify_legal_forms(_tokens(str(name))))


def strip_legal_forms(normalised: str) -> str:
    """Return a normalised name without its legal-form words (``ACME TRADING LTD`` -> ``ACME TRADING``).

    Used as a blocking key for record linkage; a name made only of legal forms is returned unchanged.
    """
    core = [word for word in normalised.split() if word not in LEGAL_FORMS and word != "AND"]
    return " ".join(core) if core else normalised


def party_similarity(a: str, b: str) -> float:
    """Similarity of two party names, 0..100, insensitive to word order, case, accents and legal-form spelling.

    The larger of ``rapidfuzz.fuzz.token_sort_ratio`` of the two
    :func:`normalise_party_name` forms and the plain ratio of those forms with
    spaces removed (so ``HUA-XIN`` and ``HUAXIN`` agree); 0.0 when either name
    is empty.

    Examples
    --------
    >>> party_similarity("ACME TRADING LTD", "Trading Acme Limited")
    100.0
    """
    left, right = normalise_party_name(a or ""), normalise_party_name(b or "")
    if not left or not right:
        return 0.0
    by_tokens = fuzz.token_sort_ratio(left, right)
    unspaced = fuzz.ratio(left.replace(" ", ""), right.replace(" ", ""))
    return float(max(by_tokens, unspaced))
