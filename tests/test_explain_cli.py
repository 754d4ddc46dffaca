"""``stia explain`` and ``stia explain-eval`` on a tiny run trained through the CLI: the report is one
self-contained file with every method and attention module; the table has every method x metric, chance
levels that match the masks, and the sanity check; the masks line up with the clip the model saw."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY
from stia_kit.cli import main
from stia_kit.explain import measures as M
from stia_kit.explain.clips import mask_clip, prepare_clip, run_data_config, run_params
from stia_kit.explain.evaluate import ExplainEvalConfig, evaluate_explanations, pick_clips
from stia_kit.experiments.runs import read_run_info
from stia_kit.synth import load_masks


def _train(data: Path, out: Path, model: str, extra: list[str] = ()) -> Path:
    args = ["train", "--dataset", "synth", "--data-root", str(data), "--out-dir", str(out), "--epochs", "1",
            "--model", model, "--baseline", ""]
    for k, v in TINY.items():
        if not k.startswith("synth_"):
            args += ["--" + k.replace("_", "-"), str(v)]
    assert main(args + ["--synth-clips-per-class", "8", "--synth-frames", "8", "--synth-size", "32", *extra]) == 0
    return out / model


@pytest.fixture(scope="module")
def run_dir(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tiny_synth, tmp_path_factory.mktemp("explain_run"), "r3d_18")


def test_masks_follow_the_clip_geometry(run_dir: Path, tiny_synth: Path) -> None:
    info = read_run_info(run_dir)
    cfg = run_data_config(run_params(info))
    video = sorted((tiny_synth / "UCF-101" / "Sit").glob("*.avi"))[0]
    item = prepare_clip(video, cfg)
    masks, boxes, meta = load_masks(video)
    mask = mask_clip(masks, item.indices, cfg)
    assert item.clip.shape == (3, 4, 28, 28) and item.frames.shape == (4, 28, 28, 3) and mask.shape == (4, 28, 28)
    # 32 px frames, short side 32 (no resize), centre crop 28: the mask is the centre of the original mask
    np.testing.assert_array_equal(mask, masks[item.indices][:, 2:30, 2:30])
    assert 0 < mask.mean() < 0.5
    # the displayed frames are the crop of the decoded frames (pixels darker where the actor is not)
    assert item.frames.dtype == np.uint8


def test_stia_explain_writes_one_self_contained_report(run_dir: Path, tiny_synth: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    video = sorted((tiny_synth / "UCF-101" / "Sit").glob("*.avi"))[0]
    out = tmp_path / "report.html"
    assert main(["explain", str(video), "--run", str(run_dir), "--out", str(out), "--method",
                 "saliency,gradcam,integrated_gradients", "--ig-steps", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "top-3:" in printed and "(true: Sit)" in printed and f"report: {out}" in printed
    assert re.search(r"saliency: pointing [01]\.000, energy 0\.\d+, energy_chance 0\.\d+", printed)
    html = out.read_text()
    from plotly.offline import get_plotlyjs
    rest = html.replace(get_plotlyjs(), "")  # the inlined bundle itself mentions URLs in its code
    assert html.count(get_plotlyjs()) == 1 and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest)
    for method in ("saliency", "gradcam", "integrated_gradients"):
        assert method in rest
    from test_explain_report_browser import CHROMIUM, _render
    if CHROMIUM is not None:  # the real report renders in headless Chromium without a script error
        result = _render(html, tmp_path)
        assert result["errors"] == [] and result["graphs"] == rest.count('class="plotly-graph-div"') == 2  # clip strip + maps (r3d_18: no attention)
    with pytest.raises(SystemExit, match="unknown"):
        main(["explain", str(video), "--run", str(run_dir), "--method", "lime"])


def test_stia_explain_eval_table(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain-eval", str(run_dir), "--out", str(tmp_path), "--clips", "3", "--sanity-clips", "1",
                 "--sanity-layers", "2", "--method", "saliency,gradcam", "--quiet"]) == 0
    result = json.loads((tmp_path / "explain_eval.json").read_text())
    md = (tmp_path / "explain_eval.md").read_text()
    assert result["clips"] == 3 and set(result["rows"]) == {"saliency", "gradcam"}  # r3d_18 has no attention
    for method, row in result["rows"].items():
        assert set(row) == {"pointing", "energy", "rank", "phase", "deletion_auc"}
        assert 0 <= row["energy"] <= 1 and 0 <= row["pointing"] <= 1
        assert f"| {method} |" in md
        rho, passed = result["sanity"][method], result["sanity_passed"][method]  # NaN (a constant map) -> null
        assert (rho is None and passed is None) or (-1 <= rho <= 1 and passed == (rho < 0.5))
    # the chance levels are those of the clips' masks (recomputed here independently)
    info = read_run_info(run_dir)
    cfg = run_data_config(run_params(info))
    energies = []
    for clip in result["per_clip"]:
        item = prepare_clip(clip["path"], cfg)
        masks, _, _ = load_masks(clip["path"])
        energies.append(mask_clip(masks, item.indices, cfg).mean())
    assert result["chance"]["energy"] == pytest.approx(float(np.mean(energies)))
    assert result["chance"]["pointing"] >= result["chance"]["energy"]  # the dilated mask is larger
    assert "chance" in md and "sanity" in md


def test_explain_eval_rejects_runs_not_trained_on_synthactions(run_dir: Path, tmp_path: Path) -> None:
    import shutil
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run)
    info = json.loads((run / "run.json").read_text())
    info["params"]["dataset"] = "ucf101"
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="SynthActions"):
        evaluate_explanations(run, ExplainEvalConfig(methods=("saliency",), max_clips=1))


def test_attention_maps_become_saliency_volumes_at_clip_size() -> None:
    from stia_kit.explain.evaluate import attention_saliency
    from stia_kit.models import build_model
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 32, 32)
    vols = attention_saliency(build_model("msf_r3d", 4, preset="teaching", attention="fsam").eval(), x)
    assert len(vols) == 2 and all(k.startswith("attention:") and k.endswith(":spatiotemporal") for k in vols)
    assert all(v.shape == (8, 32, 32) and (v >= 0).all() and v.std() > 0 for v in vols.values())
    vols = attention_saliency(build_model("st_manet", 4, preset="teaching").eval(), x)  # A_s: received attention
    assert vols and all(v.shape == (8, 32, 32) for v in vols.values())
    np.testing.assert_allclose(*[list(vols.values())[0][t] for t in (0, 7)])  # the same for every frame


def test_pick_clips_is_round_robin_over_classes() -> None:
    samples = [(Path(f"c{y}_{i}"), y) for y in range(3) for i in range(4)]
    picked = pick_clips(samples, 5)
    assert len(picked) == 5 and sorted({samples[i][1] for i in picked}) == [0, 1, 2]
    assert pick_clips(samples, 0) == list(range(12))
