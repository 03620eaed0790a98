"""docs/features.md is generated from the feature registry (``targeting docs features``) and cannot drift."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from features.pipeline import assert_registry_complete
from features.registry import REGISTRY, computed_columns, feature_columns
from targeting.cli import _register, app
from targeting.cli.features import render_features_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"
_register()


def test_committed_features_doc_equals_the_rendered_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_features_doc(), (
        "docs/features.md is stale: run `targeting docs features --out docs/features.md`"
    )


def test_doc_lists_every_feature_with_its_description() -> None:
    assert_registry_complete()
    text = render_features_doc()
    for name in computed_columns():
        spec = REGISTRY[name]
        assert f"| `{name}`" in text
        assert spec.description.replace("|", "/") in text
    assert text.count("\n| `") == len(computed_columns())
    assert text.count("(off by default)") == len(computed_columns()) - len(feature_columns()) > 0


def test_cli_prints_the_doc_exactly(tmp_path: Path) -> None:
    printed = CliRunner().invoke(app, ["docs", "features"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == render_features_doc()
    written = CliRunner().invoke(app, ["docs", "features", "--out", str(tmp_path / "docs" / "features.md")])
    assert written.exit_code == 0, written.output
    assert (tmp_path / "docs" / "features.md").read_text(encoding="utf-8") == render_features_doc()


def test_the_column_order_does_not_depend_on_which_feature_module_a_process_imports_first() -> None:
    import subprocess
    import sys

    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1].split(','): importlib.import_module(name)\n"
        "import features.pipeline\n"
        "from features.registry import computed_columns\n"
        "print(','.join(computed_columns()))\n"
    )
    orders = ["features.pipeline", "features.entity,features.priors,features.anomaly,features.routing,features.loading,features.manifest"]
    seen = [subprocess.run([sys.executable, "-c", probe, order], capture_output=True, text=True, check=True).stdout.strip() for order in orders]
    assert seen[0] == seen[1] == ",".join(computed_columns())
