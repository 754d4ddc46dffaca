"""Notebook 06 under papermill: tiny parameters run end to end; the parameters cell matches the library."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nbformat
import pytest
from conftest import parameters_cell_values

from stia_kit.experiments.lowlight import LowLightParams

NB = Path(__file__).resolve().parents[1] / "notebooks" / "06_lowlight_arid.ipynb"
TINY = dict(synth_clips_per_class=8, synth_frames=8, synth_size=32, num_frames=4, stride=2, short_side=32,
            crop_size=28, width=4, epochs=1, warmup_epochs=0.0, curve_steps=3, curve_crop=32, quality_clips=2,
            methods="none,clahe,zero_dce_pp", enhanced_train="")


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(LowLightParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_06.py"


def test_notebook_runs_with_tiny_parameters(tmp_path: Path, executed_notebooks) -> None:
    import papermill as pm

    out_dir = tmp_path / "run"
    params = dict(TINY, data_root=str(tmp_path / "clean"), dark_root=str(tmp_path / "dark"), out_dir=str(out_dir))
    pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                        progress_bar=False, cwd=str(tmp_path))
    executed_notebooks[NB.name] = tmp_path / "out.ipynb"
    data = json.loads((out_dir / "lowlight.json").read_text())
    assert data["table"]["columns"] == ["none", "clahe", "zero_dce_pp"]
    assert data["enhanced_train"] == {}  # that path runs in tests/test_lowlight.py (CLI)
    for html in ("confusion_dark.html", "curve_losses.html", "before_after_video.html"):
        assert (out_dir / html).is_file()
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "static view of the LE explorer missing"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("paper: before" in o.get("data", {}).get("text/markdown", "") for o in outputs)


def test_unknown_parameter_fails_the_run(tmp_path: Path) -> None:
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="unknown parameter"):
        pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters={"epoch": 3}, kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path))
