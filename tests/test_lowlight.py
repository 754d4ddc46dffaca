"""The ARID before/after experiment: params, class mapping, enhancement as a transform, table shape, CLI."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stia_kit.cli import main
from stia_kit.data import read_frames
from stia_kit.enhance import GammaEnhancer, find_videos
from stia_kit.experiments import lowlight as ll
from stia_kit.train import EvalResult

#: tiny geometry: 11 classes x 8 clips of 8 frames at 32 px, 1 epoch, 3 curve steps
TINY_LL = dict(synth_clips_per_class=8, synth_frames=8, synth_size=32, num_frames=4, stride=2, short_side=32,
               crop_size=28, width=4, epochs=1, warmup_epochs=0.0, curve_steps=3, curve_crop=32, quality_clips=3)


@pytest.fixture(scope="module")
def tiny_params(tmp_path_factory: pytest.TempPathFactory) -> ll.LowLightParams:
    """Params pointing at tiny SynthActions clean + dark roots (generated once for this module)."""
    base = tmp_path_factory.mktemp("lowlight")
    p = ll.LowLightParams(data_root=str(base / "clean"), dark_root=str(base / "dark"), out_dir=str(base / "run"),
                          **TINY_LL)
    ll.prepare_roots(p, progress=False)
    return p


def test_params_validate_and_name_the_field() -> None:
    with pytest.raises(ValueError, match="methods.*unknown method"):
        ll.LowLightParams(methods="none,retinex")
    with pytest.raises(ValueError, match="crop_size"):
        ll.LowLightParams(crop_size=80, short_side=40)
    with pytest.raises(ValueError, match="class_map"):
        ll.LowLightParams(class_map="Drink-drink")
    assert ll.LowLightParams(methods="gamma,zero_dce", enhanced_train="").curve_list == ["zero_dce"]
    for f in dataclasses.fields(ll.LowLightParams):
        assert isinstance(f.default, (int, float, str, bool)), f"{f.name} is not a flat primitive"


def test_class_mapping_identity_names_and_errors() -> None:
    arid = ["Drink", "Pour", "Walk"]
    hmdb = ["brush_hair", "drink", "pour", "run", "walk"]
    assert ll.class_mapping(arid, hmdb) == [1, 2, 4]
    assert ll.class_mapping(arid, ["Drink", "Pour", "Walk"]) == [0, 1, 2]
    assert ll.class_mapping(arid, ["sip", "pour", "walk"], "Drink:sip") == [0, 1, 2]
    with pytest.raises(ValueError, match="no recogniser class for.*Drink"):
        ll.class_mapping(arid, ["pour", "walk"])
    with pytest.raises(ValueError, match="not in the dark dataset"):
        ll.class_mapping(arid, hmdb, "Jump:jump")


def test_class_subset_selects_logits_in_order() -> None:
    model = torch.nn.Linear(2, 5, bias=False)
    model.weight.data = torch.arange(10.0).reshape(5, 2)
    sub = ll.ClassSubset(model, [4, 1])
    x = torch.ones(3, 2)
    assert torch.equal(sub(x), model(x)[:, [4, 1]])


def test_enhancement_is_applied_to_decoded_frames_before_normalisation(tiny_params: ll.LowLightParams) -> None:
    p = tiny_params
    dark = ll.dark_dataset(p, train=False)
    gamma = GammaEnhancer(0.5)
    enhanced = ll.with_enhancement(dark, gamma, "gamma")
    assert enhanced is not dark and ll.with_enhancement(dark, None) is dark
    cfg = dark.config
    plain, bright = dark[0]["video"], enhanced[0]["video"]
    assert plain.shape == bright.shape == (3, p.num_frames, p.crop_size, p.crop_size)
    # expected: gamma on the uint8 frames, then the dataset's own test pipeline (resize, crop, normalise)
    path, _ = dark.samples[0]
    from stia_kit.data import read_clip, to_tensor_clip

    frames, _, _ = read_clip(path, lambda n: cfg.sample_indices(n, train=False, rng=dark.rng_for(0)), cfg.backend)
    expected = cfg.test_transform()(to_tensor_clip(gamma(frames))[None], None)[0]
    assert torch.allclose(bright, expected, atol=1e-5)
    mean = torch.tensor(cfg.mean)[:, None, None, None]
    std = torch.tensor(cfg.std)[:, None, None, None]
    assert (bright * std + mean).mean() > (plain * std + mean).mean() + 0.05  # brighter before normalising


def test_runner_pieces_table_shape_and_quality(tiny_params: ll.LowLightParams) -> None:
    p = dataclasses.replace(tiny_params, methods="none,gamma,clahe,zero_dce_pp", enhanced_train="")
    dark_train, dark_test = ll.dark_dataset(p, train=True), ll.dark_dataset(p, train=False)
    frames = ll.curve_train_frames(p, dark_train)
    test_paths = {path for path, _ in dark_test.samples}
    assert test_paths and not set(frames.videos) & test_paths  # the curve models never see a dark test clip
    drawn: list[Path] = []
    real_frame = frames._frame
    frames._frame = lambda path, rng: (drawn.append(path), real_frame(path, rng))[1]  # type: ignore[method-assign]
    for i in range(24):
        frames[i]
    frames._frame = real_frame  # type: ignore[method-assign]
    assert len(drawn) == 24 and not set(drawn) & test_paths
    curves = ll.train_curves(p, frames)
    assert list(curves) == ["zero_dce_pp"] and len(curves["zero_dce_pp"].history["tv"]) == p.curve_steps
    assert curves["zero_dce_pp"].path.is_file()
    enhancers = ll.build_enhancers(p, curves)
    assert enhancers["none"] is None and list(enhancers) == p.method_list

    quality = ll.enhancement_quality(p, dark_test, enhancers)
    assert set(quality) == {*p.method_list, ll.CLEAN_ROW}
    assert quality[ll.CLEAN_ROW]["ssim"] == pytest.approx(1.0)
    assert quality["gamma"]["brightness"] > quality["none"]["brightness"]
    assert quality["gamma"]["psnr"] > quality["none"]["psnr"]  # gamma undoes most of SynthActions' darkening

    clean = ll.clean_datasets(p)
    rec, clean_test = ll.train_recogniser(p, "clean", clean.train, clean.test, progress=False)
    assert clean_test.num_samples == len(clean.test)
    results = ll.evaluate_methods(p, rec, dark_test, enhancers)
    table = ll.per_class_table(results, list(dark_test.classes))
    assert table["columns"] == p.method_list
    assert list(table["rows"]) == [*dark_test.classes, "average"]
    assert all(len(v) == len(p.method_list) for v in table["rows"].values())
    md = ll.table_markdown(table, paper=True)
    assert "| Drink |" in md and "61.5" in md and "83.2" in md and "paper: before" in md
    assert "| Jump |" in md and "62.3" in md and "86.5" in md  # every class of the paper's Table 5

    # recogniser_run: the same trained model loaded from its run folder gives the same dark-test results
    loaded, loaded_clean = ll.get_recogniser(dataclasses.replace(p, recogniser_run=str(rec.run_dir)), clean)
    assert loaded.fit is None and loaded.classes == rec.classes
    assert torch.equal(loaded_clean.confusion, clean_test.confusion)
    again = ll.evaluate_methods(p, loaded, dark_test, {"none": None})
    assert torch.equal(again["none"].confusion, results["none"].confusion)


def test_per_class_table_average_is_mean_of_classes() -> None:
    r = EvalResult(top1=0.5, top5=1.0, loss=0.0, per_class=[1.0, 0.0, float("nan")],
                   confusion=torch.zeros(3, 3, dtype=torch.long), num_samples=4)
    t = ll.per_class_table({"none": r}, ["a", "b", "c"])
    assert t["rows"]["average"] == [50.0] and t["top1"] == {"none": 50.0}
    assert "–" in ll.table_markdown(t)


def test_cli_enhance_writes_brighter_videos(tiny_params: ll.LowLightParams, tmp_path: Path) -> None:
    src = Path(tiny_params.dark_root) / "clips_v1" / "Drink"
    dst = tmp_path / "out"
    assert main(["enhance", str(src), str(dst), "--method", "gamma", "--quiet"]) == 0
    videos = find_videos(src)
    assert len(find_videos(dst)) == len(videos)
    a, b = read_frames(videos[0], [0]), read_frames(dst / videos[0].name, [0])
    assert b.mean() > a.mean() + 20
    assert main(["enhance", str(src), str(dst), "--method", "gamma", "--quiet"]) == 0  # resumable: all skipped
    assert main(["enhance", str(src), str(dst), "--method", "gamma", "--checkpoint", "x.pt", "--quiet"]) == 2


def test_cli_arid_eval_runs_end_to_end(tiny_params: ll.LowLightParams, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    p = tiny_params
    out = tmp_path / "run"
    args = ["arid-eval", "--data-root", p.data_root, "--dark-root", p.dark_root, "--out-dir", str(out),
            "--methods", "none,histeq,zero_dce", "--enhanced-train", "gamma", "--quiet"]
    for k, v in TINY_LL.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| class | none | histeq | zero_dce |" in text and "Enhancement quality" in text
    data = json.loads((out / "lowlight.json").read_text())
    assert data["table"]["columns"] == ["none", "histeq", "zero_dce"]
    assert len(data["table"]["rows"]) == 12 and set(data["enhanced_train"]) == {"gamma"}
    assert data["paper_table5"]["average"] == [60.3, 83.2]
    assert (out / "confusion_dark.html").stat().st_size > 100_000


def test_cli_arid_eval_rejects_bad_parameters() -> None:
    with pytest.raises(SystemExit):
        main(["arid-eval", "--epochs", "many"])
    with pytest.raises(SystemExit):  # not a registered model: argparse choices come from the registry
        main(["arid-eval", "--model", "r4d_18"])


def test_incompatible_model_fails_when_params_are_made() -> None:
    """STIN needs T to be a multiple of tau: the parameters fail at construction, before any data work."""
    with pytest.raises(ValueError, match=r"LowLightParams: model 'stin'.*\[3, 4, 56, 56\]"):
        ll.LowLightParams(model="stin", num_frames=4)
    with pytest.raises(ValueError, match="dataset"):
        ll.LowLightParams(dataset="arid")
    with pytest.raises(ValueError, match="methods"):
        main(["arid-eval", "--methods", "none,sharpen"])
