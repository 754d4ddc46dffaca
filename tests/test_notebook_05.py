"""Notebook 05 (MSF-Net) runs end to end under papermill with tiny parameters: the MSL, the MSF block, the
count table, the DCT basis and FSAM, three rows trained and FSAM's trained weights."""
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.msf_net import MSFParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "05_msf_fsam.ipynb"
TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=16, synth_size=32, short_side=32,
            crop_size=32, width=8, epochs=1, batch_size=4, warmup_epochs=0.0)


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(MSFParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_05.py"


def test_params_validation() -> None:
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(MSFParams, {"row": "msf_r3d"})
    with pytest.raises(ValueError, match="rows"):
        MSFParams(rows="msf_r3d,msf_r3d_nst")
    e = MSFParams(preset="paper").resolved()
    assert (e.optimizer, e.lr, e.batch_size, e.num_frames, e.crop_size, e.short_side, e.resize_width) == (
        "adam", 1e-4, 16, 8, 112, 128, 171)
    assert e.data_overrides() == {"sampling": "tsn", "resize_hw": (128, 171), "contrast": (0.8, 1.2)}
    assert e.schedule_overrides()["milestones"] == (10, 20)


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    assert "MSL(64, S=4): (1, 64, 8, 28, 28) -> (1, 64, 8, 28, 28)" in text
    assert "21.835" in text and "78.410" in text  # MSF-R3D (b, S = 4) and C3D, counted live
    result = json.loads((tmp_path / "runs" / "msf_net.json").read_text())
    assert [r["row"] for r in result["rows"]] == ["r3d_18", "msf_r3d", "msf_r3d_fsam"]
    assert text.count('"image/png"') == 3  # DCT basis, rows bars, trained FSAM weights
