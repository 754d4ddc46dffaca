"""Unit tests of stia_kit.train: config validation, optimizer/scheduler, metrics, checkpoints, devices."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from stia_kit.train import (AmpSettings, CheckpointError, MetricAccumulator, TrainConfig, autocast, build_optimizer,
                            build_scheduler, capture_rng_state, confusion_matrix, load_checkpoint,
                            multiview_probs, per_class_accuracy, resolve_amp, restore_rng_state, save_checkpoint,
                            select_device, split_decay_params, to_device, topk_accuracy)


# ---------------------------------------------------------------------------------------------- config
def test_config_defaults_roundtrip_and_flat_construction() -> None:
    cfg = TrainConfig.from_dict({"epochs": 5, "lr": 1, "milestones": [2, 4], "schedule": "step"})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.milestones == (2, 4)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["milestones"] == [2, 4]
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['lrr'\]"):
        TrainConfig.from_dict({"lrr": 0.1})


@pytest.mark.parametrize(("changes", "field"), [
    ({"lr": 0}, "lr"), ({"epochs": 0}, "epochs"), ({"epochs": 2.0}, "epochs"), ({"batch_size": True}, "batch_size"),
    ({"warmup_epochs": 3, "epochs": 3}, "warmup_epochs"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"schedule": "poly"}, "schedule"), ({"amp": "fp8"}, "amp"), ({"momentum": 1.0}, "momentum"),
    ({"nesterov": True, "optimizer": "adam"}, "nesterov"), ({"clip_grad_norm": 0}, "clip_grad_norm"),
    ({"milestones": (5, 3)}, "milestones"), ({"device": "tpu"}, "device"), ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"max_bad_fraction": 1.5}, "max_bad_fraction"), ({"pin_memory": "yes"}, "pin_memory"),
    ({"lr": float("nan")}, "lr"), ({"out_dir": ""}, "out_dir"), ({"max_epochs_this_run": 0}, "max_epochs_this_run"),
    ({"weight_decay_all": 1}, "weight_decay_all"), ({"record_steps": "yes"}, "record_steps"),
])
def test_config_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field} "):
        TrainConfig(**changes)


# ---------------------------------------------------------------------------------------------- optim
def test_no_weight_decay_on_bias_and_norm_params() -> None:
    net = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.Conv3d(4, 2, 1, bias=False))
    decay, no_decay = split_decay_params(net)
    assert {id(p) for p in decay} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in no_decay} == {id(net[0].bias), id(net[1].weight), id(net[1].bias)}
    opt = build_optimizer(net, TrainConfig(weight_decay=0.1, optimizer="adamw"))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert isinstance(opt, torch.optim.AdamW)
    sgd = build_optimizer(net, TrainConfig(nesterov=True))
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["momentum"] == 0.9
    every = build_optimizer(net, TrainConfig(weight_decay=0.1, optimizer="adam", weight_decay_all=True))
    assert len(every.param_groups) == 1 and every.param_groups[0]["weight_decay"] == 0.1
    assert [id(p) for p in every.param_groups[0]["params"]] == [id(p) for p in net.parameters()]  # module order


def _lrs(cfg: TrainConfig, iters_per_epoch: int) -> list[float]:
    param = nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.SGD([param], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, iters_per_epoch)
    out = []
    for _ in range(cfg.epochs * iters_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_reaches_zero() -> None:
    lrs = _lrs(TrainConfig(epochs=10, lr=0.4, warmup_epochs=2, schedule="cosine"), iters_per_epoch=5)
    warm, rest = lrs[:10], lrs[10:]
    assert warm == pytest.approx([0.4 * (i + 1) / 10 for i in range(10)])
    assert rest[0] == pytest.approx(0.4) and all(a > b for a, b in zip(rest, rest[1:]))
    assert rest[-1] < 0.4 * 0.01
    assert rest[len(rest) // 2] == pytest.approx(0.2, rel=0.05)  # half-way down the cosine


def test_step_and_constant_schedules() -> None:
    step = _lrs(TrainConfig(epochs=6, lr=1.0, schedule="step", step_size=2, step_gamma=0.5), iters_per_epoch=3)
    assert step == pytest.approx([1.0] * 6 + [0.5] * 6 + [0.25] * 6)
    ms = _lrs(TrainConfig(epochs=5, lr=1.0, schedule="step", milestones=(1, 4), step_gamma=0.1), iters_per_epoch=2)
    assert ms == pytest.approx([1.0] * 2 + [0.1] * 6 + [0.01] * 2)
    const = _lrs(TrainConfig(epochs=3, lr=0.3, schedule="constant", warmup_epochs=1), iters_per_epoch=2)
    assert const == pytest.approx([0.15, 0.3, 0.3, 0.3, 0.3, 0.3])


# ---------------------------------------------------------------------------------------------- metrics
def test_topk_confusion_and_per_class_on_hand_made_predictions() -> None:
    logits = torch.tensor([[0.9, 0.05, 0.05],   # true 0, pred 0
                           [0.6, 0.3, 0.1],     # true 1, pred 0 (1 is 2nd)
                           [0.2, 0.1, 0.7],     # true 2, pred 2
                           [0.5, 0.1, 0.4]])    # true 1, pred 0 (1 is 3rd)
    target = torch.tensor([0, 1, 2, 1])
    acc = topk_accuracy(logits, target, ks=(1, 2, 5))
    assert acc == {1: 0.5, 2: 0.75, 5: 1.0}  # top-5 clipped to 3 classes
    conf = confusion_matrix(logits.argmax(1), target, 3)
    assert conf.tolist() == [[1, 0, 0], [2, 0, 0], [0, 0, 1]]  # rows = true class
    assert per_class_accuracy(conf) == [1.0, 0.0, 1.0]
    empty = per_class_accuracy(confusion_matrix(torch.tensor([0]), torch.tensor([0]), 2))
    assert empty[0] == 1.0 and math.isnan(empty[1])
    with pytest.raises(ValueError, match="target has values outside"):
        confusion_matrix(torch.tensor([0]), torch.tensor([3]), 3)


def test_metric_accumulator_over_batches() -> None:
    acc = MetricAccumulator(3, keep_predictions=True)
    acc.update(torch.tensor([[2.0, 0, 0], [0, 2.0, 0]]), torch.tensor([0, 2]), loss=1.0, terms={"loss_ce": 1.0})
    acc.update(torch.tensor([[0, 0, 2.0]]), torch.tensor([2]), loss=4.0, terms={"loss_ce": 3.0})
    out = acc.compute()
    assert out["num_samples"] == 3 and out["top1"] == pytest.approx(2 / 3) and out["top5"] == 1.0
    assert out["loss"] == pytest.approx((1.0 * 2 + 4.0) / 3) and out["loss_ce"] == pytest.approx(5 / 3)
    assert out["confusion"].tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    assert acc.predictions == [0, 1, 2] and out["per_class"][2] == 0.5 and math.isnan(out["per_class"][1])


def test_metric_accumulator_heads_and_loss_only() -> None:
    acc = MetricAccumulator(2)
    acc.update(torch.tensor([[2.0, 0], [0, 2.0]]), torch.tensor([0, 0]), loss=1.0,
               heads={"rgb": torch.tensor([[1.0, 0], [1.0, 0]]), "flow": torch.tensor([[0, 1.0], [0, 1.0]])})
    out = acc.compute()
    assert (out["top1"], out["top1_rgb"], out["top1_flow"]) == (0.5, 1.0, 0.0)
    loss_only = MetricAccumulator(None)
    loss_only.update(None, None, 2.0, {"mse": 1.0}, n=3)
    loss_only.update(None, None, 4.0, {"mse": 3.0}, n=1)
    out = loss_only.compute()
    assert out == {"loss": 2.5, "mse": 1.5, "num_samples": 4}  # no accuracy keys without labels
    with pytest.raises(ValueError, match="needs n"):
        loss_only.update(None, None, 1.0)
    with pytest.raises(ValueError, match="takes no logits"):
        loss_only.update(torch.zeros(1, 2), torch.zeros(1), 1.0, n=1)


def test_multiview_probs_mean_of_softmax_over_views() -> None:
    class PoolNet(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": x.mean(dim=(2, 3, 4))}  # [N, C] with C = channels

    video = torch.randn(2, 3, 4, 1, 2, 2)  # [B, V, C, T, H, W]
    probs = multiview_probs(PoolNet(), video)
    expected = video.mean(dim=(3, 4, 5)).softmax(-1).mean(dim=1)
    assert probs.shape == (2, 4) and torch.allclose(probs, expected)


# ---------------------------------------------------------------------------------------------- checkpoints
def test_atomic_save_roundtrip_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ck.pt"
    state = {"model": nn.Linear(2, 2).state_dict(), "epoch": 3, "history": [{"loss": 0.5, "q": ["a: b"]}],
             "config": TrainConfig().to_dict(), "best": None}
    save_checkpoint(path, state)
    save_checkpoint(path, {**state, "epoch": 4})  # overwrite
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 4 and loaded["config"] == TrainConfig().to_dict()
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert os.listdir(path.parent) == ["ck.pt"]


def test_failing_write_keeps_old_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(1000), "bad": lambda: None})  # unpicklable
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


class Custom:
    """A class weights_only loading must refuse to instantiate."""


def test_load_rejects_checkpoints_needing_arbitrary_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"epoch": 1, "obj": Custom()}, path)
    with pytest.raises(CheckpointError, match="arbitrary unpickling"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_roundtrip_through_weights_only_file(tmp_path: Path) -> None:
    import random

    np.random.randn()  # leave a cached gaussian in numpy's state
    state = capture_rng_state()
    expected = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())
    save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    random.random(), np.random.rand(5), torch.rand(5)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == expected


# ---------------------------------------------------------------------------------------------- devices / AMP
def test_select_device_and_amp_resolution() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device("cuda:1")
    with pytest.raises(ValueError):
        select_device("banana")
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == AmpSettings(None, False)  # off on CPU unless asked
    assert resolve_amp("bf16", cpu) == AmpSettings(torch.bfloat16, False)
    assert resolve_amp("fp16", cpu) == AmpSettings(torch.float16, True)
    with autocast(cpu, torch.bfloat16):
        assert nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast(cpu, None):
        assert nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.float32


def test_to_device_nested_and_channels_last() -> None:
    batch = {"video": torch.randn(2, 3, 4, 5, 5), "label": torch.tensor([0, 1]), "failed": ["", "x: y"],
             "extra": (torch.zeros(1),)}
    moved = to_device(batch, torch.device("cpu"), channels_last=True)
    assert moved["video"].is_contiguous(memory_format=torch.channels_last_3d)
    assert moved["failed"] == ["", "x: y"] and isinstance(moved["extra"], tuple)
    assert torch.equal(moved["video"], batch["video"])
