"""Notebook 03 (T-STAM) runs end to end under papermill with tiny parameters: flow, SE-BN-Inception,
temporal and multi-spatial attention, the stream model, the section-4.3 runs and the trained attention."""
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.tstam import TSTAMParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "03_tstam_attention.ipynb"
TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=12, synth_size=32, short_side=32,
            crop_size=32, num_segments=2, new_length=2, test_segments=3, epochs=1, batch_size=8,
            warmup_epochs=0.0, flow_method="dis", flow_workers=1, runs="tstam_rgb,tstam_flow,tsn_rgb", num_spatial=2)


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(TSTAMParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_02.py"


def test_unknown_parameter_is_an_error() -> None:
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(TSTAMParams, {"num_segment": 3})  # the field is `num_segments`


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    assert "with SE on all 10 modules" in text and "(+646,398)" in text
    assert "each sums to 1 over positions: True" in text
    result = json.loads((tmp_path / "runs" / "tstam.json").read_text())
    assert [r["run"] for r in result["rows"]] == ["tstam_rgb", "tstam_flow", "tsn_rgb"]
    assert "fusion-weight grid (section 4.3.3)" in text and "quoted, not reproduced" in text
    assert text.count('"image/png"') >= 3  # flow, fusion grid, attention over the frames
