"""Notebook 04 (ST-MANet) runs end to end under papermill with tiny parameters: stages, TDA, SDA, the whole
model with its losses and FLOPs, two Table-4 rows and the attention across stages before / after training."""
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.st_manet import STMANetParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "04_st_manet.ipynb"
TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=32, synth_size=32, num_frames=32,
            short_side=32, crop_size=32, width=4, epochs=1, batch_size=4, warmup_epochs=0.0)


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(STMANetParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_04.py"


def test_params_validation() -> None:
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(STMANetParams, {"row": "all"})
    with pytest.raises(ValueError, match="rows"):
        STMANetParams(rows="+TDA,+XYZ")
    with pytest.raises(ValueError, match="stages"):
        STMANetParams(stages="1,2")
    e = STMANetParams(preset="paper").resolved()
    assert (e.optimizer, e.lr, e.batch_size, e.epochs, e.width, e.num_frames, e.stride, e.crop_size) == (
        "sgd", 0.01, 32, 90, 64, 32, 2, 112)
    assert e.schedule_overrides()["milestones"] == (15, 30, 45, 60, 75)
    assert e.data_overrides() == {"train_crop": "random_size", "test_windows": True}


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    assert "paper 3D ResNet-50 at 400 classes: 47,018,576 parameters" in text
    assert "Z^5: (1, 128, 2, 1, 1)" in text  # width 4: 2048 / 16 channels, T 32 / 16, 32 px / 32
    assert "loss_div_temporal" in text and "loss_div_spatial" in text
    assert "no reading reproduces it" in text
    result = json.loads((tmp_path / "runs" / "st_manet.json").read_text())
    assert [r["row"] for r in result["rows"]] == ["3D ResNet-50", "ST-MANet"]
    assert set(result["rows"][1]["terms"]) >= {"loss_div_temporal", "loss_div_spatial"}
    assert text.count('"image/png"') == 2  # Table-4 bars, A_t before / after
