"""docs/data-contracts.md is generated from the contracts and cannot drift."""

from __future__ import annotations

from pathlib import Path

from features.data.contracts import CONTRACTS
from features.data.contracts_doc import render_data_contracts_markdown
from features.data.validation import rule_catalogue

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-contracts.md"


def test_committed_data_contracts_doc_equals_the_rendered_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_data_contracts_markdown(), (
        "docs/data-contracts.md is stale: run `python -m features.data.contracts_doc > docs/data-contracts.md`"
    )


def test_doc_lists_every_column_and_every_reason() -> None:
    text = render_data_contracts_markdown()
    for table, c in CONTRACTS.items():
        assert f"## `{table}`" in text
        for col in c.columns:
            assert f"| `{col.name}` |" in text
        for reason in rule_catalogue(table):
            assert f"- `{reason}`" in text
    assert "conflicts with row already in the lake" in text
