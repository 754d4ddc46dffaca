"""Notebook 07 (attention and attribution) runs end to end under papermill with tiny parameters: masks, three
models, recorded attention, attributions side by side, the sit / stand comparison, the localisation table,
the explorer and the HTML report."""
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.explain import ExplainParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "07_attention_and_attribution.ipynb"
TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=16, synth_size=32, num_frames=4,
            stride=2, short_side=32, crop_size=32, epochs=1, batch_size=8, warmup_epochs=0.0, eval_clips=3,
            sanity_layers=2, ig_steps=4, methods="saliency,integrated_gradients,gradcam")


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ExplainParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_07.py"


def test_params_validation() -> None:
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(ExplainParams, {"method": "saliency"})
    with pytest.raises(ValueError, match="models"):
        ExplainParams(models="r3d_18,vit")
    with pytest.raises(ValueError, match="methods"):
        ExplainParams(methods="saliency,lime")
    e = ExplainParams(preset="paper").resolved()
    assert (e.num_frames, e.crop_size, e.stride) == (16, 112, 2)
    cfg = ExplainParams().explain_config("saliency")
    (key, black), = cfg.black_value
    assert key == "video" and len(black) == 3 and all(v < 0 for v in black)  # black = (0 - mean) / std < 0


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    runs = tmp_path / "runs"
    summary = json.loads((runs / "explain_summary.json").read_text())
    assert list(summary["models"]) == ["r2d_18", "r3d_18", "msf_r3d_fsam"]
    fsam = summary["models"]["msf_r3d_fsam"]
    assert any(k.startswith("attention:") for k in fsam["rows"])  # FSAM's spatio-temporal maps are scored too
    for row in summary["models"].values():
        assert set(row["chance"]) >= {"pointing", "energy", "rank", "phase"}
        assert {"saliency", "integrated_gradients", "gradcam"} <= set(row["rows"])
    assert (runs / "report_stand.html").is_file() and (runs / "explain_eval_r3d_18.md").is_file()
    assert "phase mass" in text and "sanity similarity" in text and "Traceback" not in text
