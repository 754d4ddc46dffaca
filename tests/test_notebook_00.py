"""Notebook 00 under papermill: tiny parameters run end to end; the parameters cell matches the library."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nbformat
import pytest

from conftest import TINY, parameters_cell_values
from stia_kit.experiments.quickstart import QuickstartParams

NB = Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb"


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(QuickstartParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_00.py"


def test_notebook_runs_and_writes_metrics(tiny_synth: Path, tmp_path: Path, executed_notebooks) -> None:
    import papermill as pm

    out_dir = tmp_path / "run"
    params = dict(TINY, data_root=str(tiny_synth), out_dir=str(out_dir), epochs=2)
    pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                        progress_bar=False, cwd=str(tmp_path))
    executed_notebooks[NB.name] = tmp_path / "out.ipynb"
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == {"r3d_18", "r2d_18"}
    assert metrics["chance_top1"] == pytest.approx(1 / 11)
    for m in metrics["models"].values():
        assert m["epochs"] == 2 and len(m["per_class"]) == 11
    for html in ("samples.html", "curves.html", "confusion_r3d_18.html"):
        assert (out_dir / html).stat().st_size > 100_000  # plotly JS bundled: opens offline
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for c in executed.cells
               if c.cell_type == "code" for o in c.get("outputs", []))


def test_unknown_parameter_fails_the_run(tmp_path: Path) -> None:
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="unknown parameter"):
        pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters={"epoch": 3}, kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path))
