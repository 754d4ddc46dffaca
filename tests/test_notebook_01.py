"""Notebook 01 runs end to end under papermill with tiny parameters (all six sections, the 4-row ablation)."""
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import parameters_cell_values
from stia_kit.experiments.dual_pathway import DualPathwayParams
from stia_kit.params import ParameterError, from_mapping

NB = Path(__file__).resolve().parents[1] / "notebooks" / "01_dual_pathway_cdai.ipynb"
# crop 40 makes the res2 map 10 wide, unlike its 8 channels: a Q/K/V applied along the wrong axis fails
TINY = dict(width=8, beta_inv=4, alpha=4, tau=8, num_frames=16, short_side=40, crop_size=40,
            synth_clips_per_class=2, synth_clips_per_group=1, synth_frames=16, synth_size=32, epochs=1,
            batch_size=4)


def test_parameters_cell_equals_library_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(DualPathwayParams)}
    assert parameters_cell_values(NB) == defaults, "rebuild with: python notebooks/src/build_01.py"


def test_named_configs():
    paper = DualPathwayParams(preset="paper").resolved()
    assert (paper.optimizer, paper.lr, paper.momentum, paper.weight_decay, paper.dropout, paper.epochs,
            paper.batch_size) == ("sgd", 0.01, 0.9, 6e-4, 0.5, 150, 8)
    cfg = paper.model_config()
    assert (cfg.width, cfg.beta_inv, cfg.alpha, cfg.tau, cfg.num_frames, cfg.depths) == (64, 8, 8, 16, 64, (3, 4, 6, 3))
    with pytest.raises(ValueError, match="T=20 must be a positive multiple of tau=8"):
        DualPathwayParams(num_frames=20)
    with pytest.raises(ParameterError, match="unknown parameter"):
        from_mapping(DualPathwayParams, {"epoch": 3})
    with pytest.raises(ValueError, match="unknown row"):
        DualPathwayParams(rows="both,triple")


def test_notebook_runs_with_tiny_parameters(tmp_path, executed_notebooks):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    params = dict(TINY, data_root=str(tmp_path / "synth"), out_dir=str(tmp_path / "runs"))
    papermill.execute_notebook(str(NB), str(out), parameters=params, kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    executed_notebooks[NB.name] = out
    text = out.read_text()
    assert "sparse frames [0, 8]" in text and "dense frames  [0, 2, 4, 6, 8, 10, 12, 14]" in text
    assert ("axis T: Q/K sequences (100, 2, 8), V (100, 2, 8), attention (100, 2, 2), output (1, 8, 2, 10, 10)"
            in text)
    assert "axis W: Q/K sequences (20, 10, 8), V (20, 10, 8), attention (20, 10, 10)" in text and "interval_conv" in text and "dense share of pathways" in text
    assert text.count('"image/png"') == 3  # pathway frames, attention maps, ablation bars
    result = json.loads((tmp_path / "runs" / "ablation.json").read_text())
    assert [r["row"] for r in result["rows"]] == ["dense only", "sparse only", "both", "both + CDAI"]
    assert all(r["epochs"] == 1 and r["seed"] == 0 for r in result["rows"])
    # the "both" row is SlowFast (the paper's Table 3 prints the same numbers for both): same parameter count
    p = DualPathwayParams(**params)
    from stia_kit.models import build_model
    from stia_kit.models.stin import table3_configs
    both = table3_configs(p.model_config())["both"]
    slowfast = build_model("slowfast_r50", 11, preset="teaching", width=both.width, beta_inv=both.beta_inv,
                           alpha=both.alpha, tau=both.tau, num_frames=both.num_frames, depths=both.depths)
    rows = {r["row"]: r for r in result["rows"]}
    assert rows["both"]["num_params"] == sum(x.numel() for x in slowfast.parameters())
    assert rows["both + CDAI"]["num_params"] > rows["both"]["num_params"] > rows["sparse only"]["num_params"]
    for r in result["rows"]:  # top-1 is the clip-weighted mean of the per-class accuracies
        counts = result["test_class_counts"]
        assert r["top1"] == pytest.approx(100 * sum(a * n for a, n in zip(r["per_class"], counts) if n) / sum(counts), abs=0.051)
