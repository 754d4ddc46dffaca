"""Notebook 02 (STILT) runs end to end under papermill with tiny parameters: flow, sample, backbone,
co-attention, STILT, the AWF worked example, Tables 4 / 5 / 6 and the trained model's attention."""
import dataclasses
import json
import re
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.stilt import STILTParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "02_stilt_two_stream.ipynb"
TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=12, synth_size=32, short_side=32,
            crop_size=32, num_segments=2, new_length=2, test_segments=3, epochs=1, batch_size=8,
            warmup_epochs=0.0, flow_method="dis", flow_workers=1, awf_lambdas="0,1")


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(STILTParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_02.py"


def test_unknown_parameter_is_an_error() -> None:
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(STILTParams, {"backbone": "resnet50"})  # the field is `backbones`


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    assert "flow channels: x1, y1, x2, y2" in text
    assert "identical segments -> the attended embedding equals their embedding: True" in text
    assert re.search(r"embeddings 2048 -> 512 \(x2\) +2,098,176 parameters", text)
    assert re.search(r"steps 2 \+ 3 \(W_k, W_g, w_hk\) +1,051,650 parameters", text)
    assert "-> W (linprog) [[1.0, 0.0], [0.0, 1.0]]" in text  # the worked AWF example at lambda 0.5
    assert "AWF (eq. 9) [[0.6, 0.5, 0.35]] -> class [0]" in text
    assert "paper size (ResNet-50 streams, L = 10, UCF101's 101 classes): 51,740,045 parameters" in text
    result = json.loads((tmp_path / "runs" / "stilt.json").read_text())
    assert set(result["backbones"]) == {"resnet50"}
    assert text.count('"image/png"') >= 3  # flow, Table-4 bars, co-attention weights
