"""fit/evaluate end to end on tiny in-memory data: learning, exact resume, NaN stop, quarantine, AMP, DDP."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from stia_kit.train import (EvalResult, NonFiniteLossError, TooManyFailedSamplesError, TrainConfig, evaluate, fit,
                            load_best, load_checkpoint)

NUM_CLASSES = 3
CLIP = (3, 4, 8, 8)  # C, T, H, W


class ToyClips(Dataset):
    """Class c brightens channel c; augmentation draws noise from torch's and a flip from numpy's global RNG."""

    def __init__(self, n: int = 24, *, augment: bool = True, fail_every: int = 0, views: int = 0) -> None:
        self.n, self.augment, self.fail_every, self.views = n, augment, fail_every, views
        self.classes = [f"class{c}" for c in range(NUM_CLASSES)]
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return self.n

    def _clip(self, label: int, index: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(index)
        video = 0.3 * torch.randn(CLIP, generator=g)
        video[label] += 1.0
        if self.augment:
            video = video + 0.1 * torch.randn(CLIP)
            if np.random.rand() < 0.5:
                video = video.flip(-1)
        return video

    def __getitem__(self, index: int) -> dict[str, Any]:
        label = index % NUM_CLASSES
        failed = f"clip_{index}.mp4: cannot decode" if self.fail_every and index % self.fail_every == 0 else ""
        video = (torch.stack([self._clip(label, index) for _ in range(self.views)]) if self.views
                 else self._clip(label, index))
        return {"video": video, "label": label, "index": index, "failed": failed}


class TinyNet(nn.Module):
    """Two Conv3d layers (+BN, dropout) -> global pool -> linear."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
            nn.Conv3d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Dropout(dropout),
        )
        self.head = nn.Linear(8, num_classes)
        self.seen_dtypes: set[torch.dtype] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.features[0](x)
        self.seen_dtypes.add(first.dtype)  # what autocast ran the first conv in
        return self.head(self.features[1:](first))


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """The CI box has 2 shared cores; intra-op threading makes these tiny convs ~30x slower there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def base_cfg(tmp_path: Path | None = None, **kw: Any) -> TrainConfig:
    values: dict[str, Any] = dict(epochs=4, batch_size=6, lr=0.05, optimizer="sgd", warmup_epochs=0.5, seed=3,
                                  deterministic=True, amp="off", device="cpu", log_every=1,
                                  out_dir=str(tmp_path) if tmp_path is not None else None)
    values.update(kw)
    return TrainConfig(**values)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def strip_times(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if k != "time"}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------- learning
def test_fit_learns_separable_data_and_writes_run_dir(tmp_path: Path) -> None:
    model = tiny_model()
    result = fit(model, ToyClips(30), ToyClips(12, augment=False), base_cfg(tmp_path, epochs=6),
                 progress=False)
    assert result.finished and result.epochs_completed == 6
    assert result.history[-1]["train"]["top1"] >= 0.9
    assert result.history[-1]["val"]["top1"] >= 0.9
    assert result.best_checkpoint == tmp_path / "best.pt" and result.last_checkpoint == tmp_path / "last.pt"
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(l["epoch"], l["split"]) for l in lines] == [(e, s) for e in range(6) for s in ("train", "val")]
    for line in lines:
        assert {"epoch", "split", "step", "loss", "top1", "top5", "loss_ce", "lr", "time", "num_samples",
                "num_failed", "quarantined"} <= set(line)
        assert line["quarantined"] == [] and line["top5"] == 1.0  # top-5 clipped to 3 classes
    assert lines[0]["num_samples"] == 30 and lines[1]["num_samples"] == 12
    assert len(lines[1]["per_class"]) == NUM_CLASSES
    assert lines[-2]["lr"] < lines[2]["lr"]  # cosine decays
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 5 and ckpt["global_step"] == 6 * 5 and ckpt["config"]["epochs"] == 6
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    report = evaluate(model, ToyClips(12, augment=False), batch_size=5, return_predictions=True)
    assert isinstance(report, EvalResult) and report.num_samples == 12
    assert report.top1 == pytest.approx(result.history[-1]["val"]["top1"])
    assert report.class_names == ["class0", "class1", "class2"]
    assert report.confusion.sum() == 12 and report.predictions is not None and len(report.predictions) == 12
    assert report.targets == [i % 3 for i in range(12)]


def test_evaluate_multiview_averages_softmax() -> None:
    model = tiny_model()
    single = evaluate(model, ToyClips(9, augment=False), batch_size=4, num_classes=3)
    multi = evaluate(model, ToyClips(9, augment=False, views=2), batch_size=4, num_classes=3)
    # Without augmentation both views are the same clip, so the averaged softmax equals the single-view one.
    assert multi.top1 == single.top1 and multi.loss == pytest.approx(single.loss, abs=1e-5)


# ---------------------------------------------------------------------------------------------- resume
class KillAfter:
    """Callback simulating a crash right after epoch ``k`` (its checkpoint is already on disk)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, entry: dict[str, Any]) -> None:
        if entry["epoch"] == self.k:
            raise KeyboardInterrupt(f"simulated kill after epoch {self.k}")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_after_kill_equals_uninterrupted(tmp_path: Path, num_workers: int) -> None:
    epochs = 4 if num_workers == 0 else 3
    cfg_a = base_cfg(tmp_path / "a", epochs=epochs, num_workers=num_workers, optimizer="adamw", lr=0.01,
                     clip_grad_norm=1.0)
    full_model = tiny_model()
    full = fit(full_model, ToyClips(20), ToyClips(6), cfg_a, progress=False)

    cfg_b = cfg_a.replace(out_dir=str(tmp_path / "b"))
    killed_model = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        fit(killed_model, ToyClips(20), ToyClips(6), cfg_b, callbacks=[KillAfter(1)], progress=False)
    # Perturb the global RNGs: the resume must restore them from the checkpoint.
    torch.rand(100), np.random.rand(100)
    resumed_model = tiny_model(seed=123)  # different init: weights must come from last.pt
    resumed = fit(resumed_model, ToyClips(20), ToyClips(6), cfg_b, progress=False)

    assert resumed.resumed_from == tmp_path / "b" / "last.pt"
    full_state, resumed_state = full_model.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)
    assert strip_times(resumed.history) == strip_times(full.history)
    assert strip_times(read_jsonl(tmp_path / "b" / "metrics.jsonl")) == strip_times(
        read_jsonl(tmp_path / "a" / "metrics.jsonl"))


def test_max_epochs_this_run_then_resume(tmp_path: Path) -> None:
    cfg = base_cfg(tmp_path, epochs=3, max_epochs_this_run=2)
    first = fit(tiny_model(), ToyClips(12), None, cfg, progress=False)
    assert not first.finished and first.epochs_completed == 2 and first.best_checkpoint is None
    train_set = ToyClips(12)
    second = fit(tiny_model(), train_set, None, cfg, progress=False)
    assert second.finished and second.epochs_completed == 3 and len(second.history) == 3
    assert 2 in train_set.epochs_seen and 0 not in train_set.epochs_seen
    again = fit(tiny_model(), ToyClips(12), None, cfg, progress=False)  # nothing left to do
    assert again.finished and len(again.history) == 3


# ---------------------------------------------------------------------------------------------- failures
class NaNAtCall(TinyNet):
    """Produces NaN logits on the ``bad_call``-th training forward (0-based)."""

    def __init__(self, bad_call: int) -> None:
        super().__init__()
        self.bad_call, self.calls = bad_call, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.training:
            self.calls += 1
            if self.calls - 1 == self.bad_call:
                out = out * float("nan")
        return out


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path: Path) -> None:
    snapshots: list[bytes] = []
    torch.manual_seed(0)
    model = NaNAtCall(bad_call=6)  # 4 iterations per epoch -> epoch 1, iteration 2
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, iteration 2") as info:
        fit(model, ToyClips(24), None, base_cfg(tmp_path, epochs=3),
            callbacks=[lambda e: snapshots.append((tmp_path / "last.pt").read_bytes())], progress=False)
    assert info.value.epoch == 1 and info.value.iteration == 2 and np.isnan(info.value.value)
    assert len(snapshots) == 1 and (tmp_path / "last.pt").read_bytes() == snapshots[0]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 0


def test_quarantine_is_reported_and_enforced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="stia_kit.train")
    result = fit(tiny_model(), ToyClips(20, fail_every=5), ToyClips(6), base_cfg(tmp_path, epochs=1,
                 max_bad_fraction=0.3), progress=False)
    expected = sorted(f"clip_{i}.mp4: cannot decode" for i in (0, 5, 10, 15))
    train_line = read_jsonl(tmp_path / "metrics.jsonl")[0]
    assert sorted(train_line["quarantined"]) == expected and train_line["num_failed"] == 4
    assert sorted(result.history[0]["train"]["quarantined"]) == expected
    assert "4 of 20 sample(s) were substituted" in caplog.text and "clip_15.mp4" in caplog.text

    with pytest.raises(TooManyFailedSamplesError, match=r"4/20 samples"):
        fit(tiny_model(), ToyClips(20, fail_every=5), None, base_cfg(tmp_path / "strict", epochs=1,
            max_bad_fraction=0.1), progress=False)
    assert read_jsonl(tmp_path / "strict" / "metrics.jsonl")[0]["num_failed"] == 4  # logged before erroring


# ---------------------------------------------------------------------------------------------- model contract
class DictOutputNet(TinyNet):
    """Multi-input model: declares input_keys, returns logits plus an auxiliary loss term."""

    input_keys = ("video", "aux")

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:  # type: ignore[override]
        logits = super().forward(inputs["video"] + inputs["aux"].view(-1, 1, 1, 1, 1))
        return {"logits": logits, "loss_reg": 0.01 * logits.pow(2).mean()}


class WithAux(ToyClips):
    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        sample["aux"] = torch.tensor(0.0)
        return sample


def test_dict_output_losses_are_summed_and_logged(tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = fit(DictOutputNet(), WithAux(12), WithAux(6), base_cfg(tmp_path, epochs=1), progress=False)
    rec = result.history[0]["train"]
    assert rec["loss"] == pytest.approx(rec["loss_ce"] + rec["loss_reg"], rel=1e-5) and rec["loss_reg"] > 0
    assert "loss_reg" in read_jsonl(tmp_path / "metrics.jsonl")[0]


class TwoStreamNet(nn.Module):
    """Two heads ("rgb" on the clip, "flow" on its temporal difference) and a fused output with its own bias."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rgb, self.flow = TinyNet(), TinyNet()
        self.fuse_bias = nn.Parameter(torch.zeros(NUM_CLASSES))  # only a CE on "logits" could train it

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        rgb, flow = self.rgb(x), self.flow(torch.diff(x, dim=2, prepend=x[:, :, :1]))
        return {"logits": (rgb + flow) / 2 + self.fuse_bias, "stream_logits": {"rgb": rgb, "flow": flow},
                "loss_reg": 1e-3 * rgb.pow(2).mean()}


def test_stream_heads_one_ce_each_logged_and_fused_logits_not_trained(tmp_path: Path) -> None:
    model = TwoStreamNet()
    result = fit(model, ToyClips(12), ToyClips(6), base_cfg(tmp_path, epochs=2), progress=False)
    for rec in (result.history[-1]["train"], result.history[-1]["val"]):
        assert rec["loss"] == pytest.approx(rec["loss_ce_rgb"] + rec["loss_ce_flow"] + rec["loss_reg"], rel=1e-5)
        assert "loss_ce" not in rec and {"top1", "top1_rgb", "top1_flow"} <= set(rec)
    for line in read_jsonl(tmp_path / "metrics.jsonl"):
        assert {"loss_ce_rgb", "loss_ce_flow", "top1_rgb", "top1_flow"} <= set(line)
    assert torch.equal(model.fuse_bias.detach(), torch.zeros(NUM_CLASSES))  # evaluated, never trained
    report = evaluate(model, ToyClips(6), batch_size=4)
    assert set(report.head_top1) == {"rgb", "flow"} and set(report.terms) == {"loss_ce_rgb", "loss_ce_flow", "loss_reg"}
    assert report.head_top1["rgb"] == pytest.approx(result.history[-1]["val"]["top1_rgb"])


class ShiftedViews(ToyClips):
    """Multi-view clips whose views differ (view v is shifted by 0.5 v), without randomness."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = super().__getitem__(index)
        sample["video"] = sample["video"] + 0.5 * torch.arange(self.views).view(-1, 1, 1, 1, 1)
        return sample


def test_return_scores_are_view_averaged_softmax_per_head_in_dataset_order() -> None:
    model = TwoStreamNet().eval()
    data = ShiftedViews(7, augment=False, views=3)
    report = evaluate(model, data, batch_size=3, return_scores=True, return_predictions=True)
    assert report.scores is not None and set(report.scores) == {"logits", "rgb", "flow"}
    assert report.indices == list(range(7)) and report.targets == [i % 3 for i in range(7)]
    with torch.no_grad():
        for i in range(7):
            out = model(data[i]["video"])  # the 3 views as a batch
            for key, logits in (("logits", out["logits"]), *out["stream_logits"].items()):
                assert torch.allclose(report.scores[key][i], logits.softmax(-1).mean(0), atol=1e-6), (key, i)
    assert report.predictions == report.scores["logits"].argmax(1).tolist()
    assert report.top1 == pytest.approx(np.mean([p == t for p, t in zip(report.predictions, report.targets)]))


def test_eval_every_and_best_epoch_restored(tmp_path: Path) -> None:
    """Validation labels rotated by one class: val top-1 falls as training learns, so the best epoch is early."""

    class Rotated(ToyClips):
        def __getitem__(self, index: int) -> dict[str, Any]:
            sample = super().__getitem__(index)
            sample["label"] = (sample["label"] + 1) % NUM_CLASSES
            return sample

    cfg = base_cfg(tmp_path, epochs=5, eval_every=2)
    model = tiny_model()
    result = fit(model, ToyClips(24), Rotated(9, augment=False), cfg, progress=False, restore_best=True)
    assert [e["epoch"] for e in result.history if e["val"] is not None] == [1, 3, 4]  # every 2nd + the last
    assert [(l["epoch"], l["split"]) for l in read_jsonl(tmp_path / "metrics.jsonl") if l["split"] == "val"] == [
        (1, "val"), (3, "val"), (4, "val")]
    vals = {e["epoch"]: e["val"]["top1"] for e in result.history if e["val"] is not None}
    assert result.best_metric == "top1" and result.best_epoch == max(vals, key=vals.get) and result.best_epoch < 4
    assert result.best_value == result.best_top1 == vals[result.best_epoch] and result.restored_best
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == result.best_epoch and best["best"]["epoch"] == result.best_epoch
    state = model.state_dict()
    assert all(torch.equal(state[k], best["model"][k]) for k in state)
    assert not all(torch.equal(state[k], last["model"][k]) for k in state)
    assert evaluate(model, Rotated(9, augment=False)).top1 == pytest.approx(result.best_value)

    in_memory = tiny_model()  # no out_dir: the best weights are kept in memory
    fit(in_memory, ToyClips(24), Rotated(9, augment=False), cfg.replace(out_dir=None), progress=False,
        restore_best=True)
    assert all(torch.equal(in_memory.state_dict()[k], state[k]) for k in state)
    other = load_best(tiny_model(seed=5), result)
    assert all(torch.equal(other.state_dict()[k], state[k]) for k in state)
    with pytest.raises(ValueError, match="no best checkpoint"):
        load_best(tiny_model(), fit(tiny_model(), ToyClips(6), None, base_cfg(None, epochs=1), progress=False))


class Unlabelled(Dataset):
    """Regression samples without "label": image -> y (a fixed linear map), for the loss_fn hook."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> dict[str, Any]:
        x = torch.randn(4, generator=torch.Generator().manual_seed(index))
        return {"image": x, "y": x.sum(0, keepdim=True), "index": index, "failed": ""}


def mse_loss(output: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    err = (output - batch["y"]).pow(2).mean()
    return err, {"mse": err, "abs": (output - batch["y"]).abs().mean()}


def test_loss_fn_hook_on_unlabelled_data(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    cfg = base_cfg(tmp_path, epochs=3, batch_size=4, lr=0.02, record_steps=True)
    result = fit(model, Unlabelled(), Unlabelled(), cfg, progress=False, loss_fn=mse_loss, restore_best=True)
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert all("top1" not in l and "per_class" not in l and {"mse", "abs"} <= set(l) for l in lines)
    train = [l for l in lines if l["split"] == "train"]
    assert all(len(l["steps"]["loss"]) == len(l["steps"]["mse"]) == 3 for l in train)  # 10 samples, batch 4
    assert train[0]["loss"] == pytest.approx(train[0]["mse"]) and train[-1]["loss"] < train[0]["loss"]
    vals = [e["val"]["loss"] for e in result.history]
    assert result.best_metric == "loss" and result.best_value == min(vals) and result.best_top1 is None
    assert result.best_epoch == vals.index(min(vals))
    report = evaluate(model, Unlabelled(), loss_fn=mse_loss)
    assert report.loss == pytest.approx(result.best_value) and np.isnan(report.top1)
    assert set(report.terms) == {"mse", "abs"}

    with pytest.raises(KeyError, match="needs a loss_fn"):
        fit(nn.Linear(4, 1), Unlabelled(), None, base_cfg(None, epochs=1), progress=False)
    with pytest.raises(ValueError, match="reserved"):
        fit(nn.Linear(4, 1), Unlabelled(), None, base_cfg(None, epochs=1), progress=False,
            loss_fn=lambda out, b: (out.pow(2).mean(), {"top1": out.mean()}))


# ---------------------------------------------------------------------------------------------- AMP / memory format
def test_bf16_autocast_on_cpu_with_channels_last() -> None:
    model = tiny_model()
    result = fit(model, ToyClips(12), None, base_cfg(None, epochs=1, amp="bf16", channels_last=True),
                 progress=False)
    assert torch.bfloat16 in model.seen_dtypes and np.isfinite(result.history[0]["train"]["loss"])
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model.features[0].weight.dtype == torch.float32  # autocast, not a cast of the weights


def test_fp16_gradscaler_path_on_cpu(tmp_path: Path) -> None:
    model = tiny_model()
    fit(model, ToyClips(12), None, base_cfg(tmp_path, epochs=1, amp="fp16", clip_grad_norm=0.5), progress=False)
    assert torch.float16 in model.seen_dtypes
    assert load_checkpoint(tmp_path / "last.pt")["scaler"]["scale"] > 0  # an enabled GradScaler was saved


# ---------------------------------------------------------------------------------------------- distributed
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_gloo_world_size_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    for name, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0",
                        "WORLD_SIZE": "1", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    wrapped: list[str] = []
    model = tiny_model()
    model.register_forward_pre_hook(lambda *_: wrapped.append(str(dist.is_initialized())))
    result = fit(model, ToyClips(12), ToyClips(6), base_cfg(tmp_path, epochs=2), progress=False)
    assert "True" in wrapped and not dist.is_initialized()  # ran inside the group; fit cleaned it up
    assert result.history[-1]["val"]["num_samples"] == 6 and result.history[-1]["train"]["num_samples"] == 12
    assert "module." not in next(iter(load_checkpoint(tmp_path / "last.pt")["model"]))  # unwrapped weights


def test_caller_initialised_tcp_group_is_used_and_left_alone(tmp_path: Path) -> None:
    import torch.distributed as dist

    from stia_kit.train import MetricAccumulator, maybe_init_distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        info = maybe_init_distributed()
        assert info.enabled and info.world_size == 1 and info.is_main and not info.initialized_here
        acc = MetricAccumulator(3)
        acc.update(torch.eye(3), torch.tensor([0, 1, 1]), loss=2.0, terms={"loss_ce": 2.0})
        acc.all_reduce(info)  # a real gloo all-reduce of the counts
        assert acc.n == 3 and acc.correct1 == 2 and acc.confusion.sum() == 3
        result = fit(tiny_model(), ToyClips(6), None, base_cfg(tmp_path, epochs=1), progress=False)
        assert result.finished and dist.is_initialized()  # fit did not destroy a group it did not create
    finally:
        dist.destroy_process_group()


def test_callback_can_stop_and_resume_false_starts_fresh(tmp_path: Path) -> None:
    stopped = fit(tiny_model(), ToyClips(6), None, base_cfg(tmp_path, epochs=3), callbacks=[lambda e: True],
                  progress=False)
    assert not stopped.finished and stopped.epochs_completed == 1
    fresh = fit(tiny_model(), ToyClips(6), None, base_cfg(tmp_path, epochs=2), resume=False, progress=False)
    assert fresh.resumed_from is None and [l["epoch"] for l in read_jsonl(tmp_path / "metrics.jsonl")] == [0, 1]
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        fit(tiny_model(), ToyClips(6), None, base_cfg(None), resume=str(tmp_path / "nope.pt"), progress=False)


def _ddp_worker(rank: int, port: int, eval_port: int, out_dir: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    model = tiny_model()
    fit(model, ToyClips(13), ToyClips(7), base_cfg(Path(out_dir), epochs=2), progress=False)
    os.environ["MASTER_PORT"] = str(eval_port)  # a fresh group for the sharded evaluation
    report = evaluate(model, ToyClips(7, augment=False), batch_size=2, distributed=True, return_scores=True,
                      return_predictions=True)
    if rank == 0:
        torch.save({"top1": report.top1, "n": report.num_samples, "indices": report.indices,
                    "targets": report.targets, "predictions": report.predictions, "scores": report.scores},
                   Path(out_dir) / "eval.pt")


@pytest.mark.slow
def test_ddp_gloo_two_processes(tmp_path: Path) -> None:
    """Two real gloo ranks (spawned; ~20 s on 2 shared cores): sharded data, all-reduced counts, rank-0 files,
    and a sharded evaluate whose gathered scores equal a single-process evaluation."""
    import torch.multiprocessing as mp

    mp.start_processes(_ddp_worker, args=(_free_port(), _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert [(l["epoch"], l["split"]) for l in lines] == [(0, "train"), (0, "val"), (1, "train"), (1, "val")]
    assert lines[0]["num_samples"] == 14  # 13 samples, DistributedSampler pads to a multiple of 2
    assert lines[1]["num_samples"] == 7  # validation shards are exact
    assert lines[0]["step"] == 2  # 7 samples per rank, batch 6 -> 2 iterations
    sharded = torch.load(tmp_path / "eval.pt", weights_only=True)
    model = tiny_model()
    model.load_state_dict(load_checkpoint(tmp_path / "last.pt")["model"])
    single = evaluate(model, ToyClips(7, augment=False), batch_size=2, return_scores=True, return_predictions=True)
    assert sharded["n"] == 7 and sharded["indices"] == single.indices == list(range(7))
    assert sharded["targets"] == single.targets and sharded["predictions"] == single.predictions
    assert sharded["top1"] == single.top1 and torch.allclose(sharded["scores"]["logits"], single.scores["logits"])
