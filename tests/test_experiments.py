"""The shared experiments layer: parameter groups, presets, model/clip checks, splits, run folders, atomic files."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from stia_kit.experiments import common
from stia_kit.experiments.dual_pathway import STIN_PAPER, DualPathwayParams
from stia_kit.experiments.lowlight import LowLightParams
from stia_kit.experiments.quickstart import QuickstartParams
from stia_kit.experiments.runs import load_run, new_run, read_run_info
from stia_kit.fileio import json_safe, write_json_atomic, write_text_atomic

ALL_PARAMS = (QuickstartParams, DualPathwayParams, LowLightParams)
GROUPS = (common.PresetFields, common.DataFields, common.SynthFields, common.RecipeFields, common.RunFields)


@pytest.mark.parametrize("cls", ALL_PARAMS, ids=lambda c: c.__name__)
def test_every_experiment_composes_the_shared_groups_with_flat_fields(cls: type) -> None:
    assert all(issubclass(cls, g) for g in GROUPS)
    group_fields = {f.name for g in GROUPS for f in dataclasses.fields(g)}
    own = [f.name for f in dataclasses.fields(cls) if f.name not in group_fields]
    assert own, "an experiment adds its own fields"
    for f in dataclasses.fields(cls):
        assert isinstance(f.default, (int, float, str, bool)), f"{cls.__name__}.{f.name} is not a flat primitive"
    assert set(cls.PAPER) <= {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls, field, value, match", [
    (QuickstartParams, "split", 4, "QuickstartParams.split must be 1, 2 or 3"),
    (DualPathwayParams, "val_fraction", 1.0, r"DualPathwayParams.val_fraction must be in \[0, 1\)"),
    (LowLightParams, "warmup_epochs", 30.0, r"LowLightParams.warmup_epochs must be in \[0, epochs=15\)"),
    (QuickstartParams, "preset", "huge", "QuickstartParams.preset must be one of"),
    (QuickstartParams, "device", "tpu", "QuickstartParams.device"),
    (QuickstartParams, "model", "r4d_18", "QuickstartParams.model must be a registered model"),
    (DualPathwayParams, "depths", "1,x", "DualPathwayParams.depths"),
])
def test_errors_name_the_class_and_the_field(cls: type, field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**{field: value})


def test_paper_preset_replaces_only_fields_left_at_their_default() -> None:
    p = DualPathwayParams(preset="paper", epochs=3).resolved()
    assert p.epochs == 3  # set by the user: kept
    assert (p.width, p.num_frames, p.crop_size, p.optimizer, p.lr) == (64, 64, 224, "sgd", 0.01)
    assert {k: getattr(p, k) for k in STIN_PAPER if k != "epochs"} == {k: v for k, v in STIN_PAPER.items() if k != "epochs"}
    assert DualPathwayParams().resolved() == DualPathwayParams()  # teaching: the defaults themselves
    q = QuickstartParams(preset="paper").resolved()
    assert (q.width, q.num_frames, q.stride, q.crop_size) == (64, 16, 2, 112)
    assert q.resolved() == q  # idempotent


def test_model_and_clip_checked_when_parameters_are_made() -> None:
    with pytest.raises(ValueError, match=r"DualPathwayParams: STINConfig: the clip length T=20 must be a positive multiple of tau=8"):
        DualPathwayParams(num_frames=20)
    with pytest.raises(ValueError, match=r"QuickstartParams: model 'stin'"):
        QuickstartParams(model="stin", num_frames=4)
    QuickstartParams(model="stin", num_frames=32, stride=1)  # a STIN that can take the clips is fine


def test_train_config_maps_the_recipe_and_run_fields(tmp_path: Path) -> None:
    p = QuickstartParams(epochs=7, eval_every=0, channels_last=False, lr=0.002)
    cfg = common.train_config(p, tmp_path)
    assert (cfg.epochs, cfg.eval_every, cfg.channels_last, cfg.lr, cfg.out_dir) == (7, 7, False, 0.002, str(tmp_path))
    assert common.train_config(p, tmp_path, eval_every=2).eval_every == 2


@pytest.fixture(scope="module")
def grouped_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny SynthActions with 4 actor groups per class (2 in each training split)."""
    from stia_kit.synth import SynthConfig, generate_synth_actions

    root = tmp_path_factory.mktemp("grouped")
    generate_synth_actions(root, SynthConfig(clips_per_class=8, clips_per_group=2, num_frames=8, size=32),
                           progress=False)
    return root


def test_validation_split_holds_out_whole_groups(grouped_synth: Path) -> None:
    from conftest import TINY

    p = QuickstartParams(**{**TINY, "data_root": str(grouped_synth), "synth_clips_per_group": 2, "val_fraction": 0.34})
    splits = common.prepare_data(p, progress=False)
    assert splits.val is not None
    train_groups = {(y, common.group_of(path)) for path, y in splits.train.samples}
    val_groups = {(y, common.group_of(path)) for path, y in splits.val.samples}
    assert {y for y, _ in val_groups} == set(range(11))  # every class is validated
    test_paths = {path for path, _ in splits.test.samples}
    assert train_groups and val_groups and not train_groups & val_groups
    assert not test_paths & {path for path, _ in splits.val.samples}  # validation never comes from the test split
    full = common.open_split(p, train=True)
    assert len(splits.train) + len(splits.val) == len(full)
    assert common.prepare_data(dataclasses.replace(p, val_fraction=0.0), progress=False).val is None


def test_train_and_test_with_validation_uses_the_best_checkpoint(grouped_synth: Path, tmp_path: Path) -> None:
    from conftest import TINY

    p = QuickstartParams(**{**TINY, "data_root": str(grouped_synth), "synth_clips_per_group": 2, "val_fraction": 0.34, "epochs": 2,
                            "eval_every": 1, "out_dir": str(tmp_path)})
    splits = common.prepare_data(p, progress=False)
    run = common.train_and_test(p, "r3d", "r3d_18", {"width": 4}, splits, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "r3d" / "metrics.jsonl").read_text().splitlines()]
    assert [(l["epoch"], l["split"]) for l in lines] == [(0, "train"), (0, "val"), (1, "train"), (1, "val")]
    assert all(l["num_samples"] == len(splits.val) for l in lines if l["split"] == "val")
    assert run.weights == "best.pt" and run.fit.best_top1 == max(l["top1"] for l in lines if l["split"] == "val")
    best, _ = load_run(tmp_path / "r3d", checkpoint="best.pt")
    for a, b in zip(best.state_dict().values(), run.model.state_dict().values()):
        assert torch.equal(a, b)


def test_run_folder_round_trip_and_errors(tmp_path: Path) -> None:
    from stia_kit.train import save_checkpoint

    net = new_run(tmp_path / "r", "r2d_18", ["a", "b", "c"], preset="teaching", model_kwargs={"width": 4},
                  params=QuickstartParams(), seed=3)
    save_checkpoint(tmp_path / "r" / "last.pt", {"model": net.state_dict()})
    info = read_run_info(tmp_path / "r")
    assert (info["model"], info["preset"], info["num_classes"], info["params_class"]) == ("r2d_18", "teaching", 3,
                                                                                          "QuickstartParams")
    again, _ = load_run(tmp_path / "r")
    x = torch.randn(2, 3, 4, 28, 28)
    net.eval()
    assert torch.equal(again(x), net(x))
    with pytest.raises(FileNotFoundError, match="is not a run folder"):
        load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="best.pt not found.*last.pt"):
        load_run(tmp_path / "r", checkpoint="best.pt")


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "a" / "x.json", {"v": float("nan"), "w": float("inf"), "t": (1, 2)})
    assert json.loads(path.read_text()) == {"v": None, "w": "inf", "t": [1, 2]}
    before = path.stat().st_mtime_ns
    write_text_atomic(path, path.read_text(), skip_unchanged=True)
    assert path.stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.json"]
    assert json_safe({"a": [float("-inf")]}) == {"a": ["-inf"]}
