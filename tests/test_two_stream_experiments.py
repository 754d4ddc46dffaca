"""The two-stream experiments layer (notebooks 02 / 03): parameters, presets, schedules, fusion grid, and one
tiny end-to-end run of each pipeline on SynthActions frames + flow."""
from __future__ import annotations

import json

import numpy as np
import pytest

from stia_kit.experiments import stilt as st
from stia_kit.experiments import tstam as tm
from stia_kit.experiments import two_stream as ts

TINY = dict(synth_clips_per_class=4, synth_clips_per_group=2, synth_frames=12, synth_size=32, short_side=32,
            crop_size=32, num_segments=2, new_length=2, test_segments=3, epochs=1, batch_size=8,
            warmup_epochs=0.0, flow_method="dis", flow_workers=1)


def test_stilt_paper_preset_is_section_4_2() -> None:
    e = st.STILTParams(preset="paper").resolved()
    assert (e.optimizer, e.lr, e.momentum, e.weight_decay, e.batch_size, e.new_length, e.crop_size) == (
        "sgd", 0.001, 0.9, 5e-4, 128, 10, 224)
    assert (e.num_segments, e.test_segments, e.test_crops, e.schedule) == (3, 25, 10, "step")
    kw = e.model_kwargs("resnet50", streams="both", stil=True)
    assert kw["new_length"] == 10 and "width" not in kw  # the paper preset's ResNet-50 at full width


def test_iteration_schedule_converts_section_4_2() -> None:
    # UCF101 split 1: 9,537 training clips, batch 128 -> 75 iterations per epoch
    assert st.iteration_schedule(9537, 128, step_every=10_000) == (667, (133, 267, 400, 533))
    epochs, milestones = st.iteration_schedule(3570, 128, step_every=5_000)  # HMDB51 split 1
    assert epochs == round(50_000 / 28) and milestones[0] == round(5_000 / 28) and len(milestones) == 9


def test_params_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="backbones"):
        st.STILTParams(backbones="resnet50,alexnet")
    with pytest.raises(ValueError, match="awf_fit_on"):
        st.STILTParams(awf_fit_on="holdout")  # needs val_fraction > 0
    with pytest.raises(ValueError, match="crop_size"):
        st.STILTParams(crop_size=80)
    with pytest.raises(ValueError, match="milestones"):
        st.STILTParams(schedule="step")
    with pytest.raises(ValueError, match="runs"):
        tm.TSTAMParams(runs="tstam_rgb,tstam_depth")
    with pytest.raises(ValueError, match="spatial_sweep"):
        tm.TSTAMParams(spatial_sweep="1,x")


def test_tstam_paper_preset_and_flow_schedule() -> None:
    e = tm.TSTAMParams(preset="paper").resolved()
    assert (e.num_segments, e.num_spatial, e.new_length, e.batch_size, e.short_side, e.crop_size) == (6, 4, 5, 32, 240, 224)
    assert e.schedule_for("rgb")["milestones"] == (30, 60) and e.schedule_for("rgb").get("epochs") is None
    flow = e.schedule_for("flow")
    assert flow["epochs"] == 340 and flow["milestones"] == (190, 300) and flow["clip_grad_norm"] == 20.0
    assert e.model_kwargs("tstam_rgb")["dropout"] == 0.8 and e.model_kwargs("tstam_flow")["dropout"] == 0.7
    assert e.model_kwargs("tsn_se_rgb")["se"] is True and "num_spatial" not in e.model_kwargs("tsn_rgb")


def test_fusion_grid_end_points_are_the_streams() -> None:
    rng = np.random.default_rng(0)
    p_rgb, p_flow = rng.dirichlet(np.ones(4), 50), rng.dirichlet(np.ones(4), 50)
    y = rng.integers(0, 4, 50)
    grid = {g["rgb_weight"]: g["top1"] for g in tm.fusion_grid(p_rgb, p_flow, y, weights=(1.0, 0.25, 0.0))}
    assert grid[1.0] == round(100 * float((p_rgb.argmax(1) == y).mean()), 1)
    assert grid[0.0] == round(100 * float((p_flow.argmax(1) == y).mean()), 1)
    fused = (0.25 * p_rgb + 0.75 * p_flow).argmax(1)
    assert grid[0.25] == round(100 * float((fused == y).mean()), 1)


def test_video_dir_per_layout(tmp_path) -> None:
    assert ts.video_dir("ucf101", tmp_path) == tmp_path / "UCF-101"
    assert ts.video_dir("hmdb51", tmp_path) == tmp_path / "hmdb51_org"
    (tmp_path / "clips_v1").mkdir()
    assert ts.video_dir("arid", tmp_path) == tmp_path / "clips_v1"
    with pytest.raises(ValueError, match="layout"):
        ts.video_dir("kinetics", tmp_path)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("two_stream")


def test_stilt_pipeline_tiny(tiny_root) -> None:
    p = st.STILTParams(**TINY, data_root=str(tiny_root / "synth"), out_dir=str(tiny_root / "stilt"),
                       awf_lambdas="0,1")
    result = st.run_stilt(p, progress=False)
    res = result["backbones"]["resnet50"]
    assert set(res["table4"]) == set(st.PAPER_TABLE4) and set(res["table5"]) == set(st.PAPER_TABLE5)
    assert all(0 <= v <= 100 for v in res["table4"].values())
    assert res["table5"]["awf"] == res["table4"]["Two-stream + STIL + AWF"]
    assert res["table5"]["late_avg"] == res["table4"]["Two-stream + STIL"]
    w = np.asarray(res["awf_weights"])
    assert w.shape == (len(result["classes"]), 2) and np.allclose(w.sum(1), 1)
    assert [r["lambda"] for r in res["lambda_sweep"]] == [0.0, 1.0]
    saved = json.loads((tiny_root / "stilt" / "stilt.json").read_text())
    assert saved["backbones"]["resnet50"]["table4"] == res["table4"]
    assert [r["row"] for r in st.table_rows(result, "table4")] == list(st.PAPER_TABLE4)
    # the flow folders were written once and are reused (finished videos skipped)
    again = ts.extract_flow(p, progress=False)
    assert again.failed == [] and again.done == [] and len(again.skipped) == again.total > 0


def test_tstam_pipeline_tiny(tiny_root) -> None:
    p = tm.TSTAMParams(**TINY, data_root=str(tiny_root / "synth"), out_dir=str(tiny_root / "tstam"),
                       runs="tstam_rgb,tstam_flow,tsn_rgb", num_spatial=2, spatial_sweep="1")
    result = tm.run_tstam(p, progress=False)
    assert [r["run"] for r in result["rows"]] == ["tstam_rgb", "tstam_flow", "tsn_rgb", "spatial_1"]
    assert all(r["epochs"] == 1 and r["seed"] == 0 for r in result["rows"])
    assert result["rows"][-1]["num_spatial"] == 1
    grid = {g["rgb_weight"]: g["top1"] for g in result["fusion_grid"]}
    rows = {r["run"]: r["top1"] for r in result["rows"]}
    assert grid[1.0] == rows["tstam_rgb"] and grid[0.0] == rows["tstam_flow"]
    assert result["two_stream_top1"] == grid[0.25]
