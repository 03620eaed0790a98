"""Specification of the cluster setting (issue 16): ``CCP_DASK_SCHEDULER`` / ``dask_scheduler`` and ``targeting train --cluster``.

Unset, nothing changes (one machine, no Dask import); set, it is a scheduler address or ``local``.
The equality of the cluster path itself is specified in ``tests/models/test_distributed.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from serve.settings import Settings
from targeting.cli import _register, app
from targeting.config import StoreSettings

_register()


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("CCP_HOME", "CCP_DASK_SCHEDULER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_scheduler_setting_there_is_no_cluster() -> None:
    assert StoreSettings().dask_scheduler is None
    assert Settings().dask_scheduler is None


def test_the_scheduler_comes_from_ccp_toml_and_the_environment_overrides_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "ccp.toml").write_text('dask_scheduler = "tcp://10.0.0.5:8786"\n')
    assert StoreSettings().dask_scheduler == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("CCP_DASK_SCHEDULER", "local")
    assert Settings().dask_scheduler == "local"


@pytest.mark.parametrize("value", ["scheduler:8786", "10.0.0.5", "LOCAL "])
def test_a_scheduler_that_is_neither_an_address_nor_local_is_refused_by_name(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCP_DASK_SCHEDULER", value)
    with pytest.raises(ValidationError, match="dask_scheduler .* must be a scheduler address such as tcp://host:8786, or 'local'"):
        StoreSettings()


def test_the_single_machine_path_never_imports_dask() -> None:
    probe = (
        "import sys\n"
        "from targeting.cli import _register\n"
        "_register()\n"
        "import features.pipeline, models.training, models.workflow, targeting.kernel\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed') or m in ('features.distributed', 'models.distributed')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_train_help_offers_the_cluster_option() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--cluster" in result.output and "CCP_DASK_SCHEDULER" in result.output
