"""The quickstart experiment (notebook 00, ``stia train``/``stia eval``/``stia quickstart``).

Train a 3D model (R3D-18) and a frame-level 2D baseline (R2D-18: the same ResNet-18 with every temporal
kernel 1, frames averaged) on the same data and compare them. On SynthActions the gap is the point: its
classes come in pairs that a single frame cannot separate (walk/run, sit/stand, ...).

Everything here is plain library code; the notebook only calls it and plots.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..data import DataConfig, VideoDataset, build_dataset
from ..models import build_model
from ..synth import SynthConfig, generate_synth_actions
from ..train import EvalResult, FitResult, TrainConfig, evaluate, fit, load_checkpoint

DatasetName = Literal["synth", "ucf101", "hmdb51", "arid"]


@dataclass(frozen=True)
class QuickstartParams:
    """Flat parameters of the quickstart (the papermill parameters of notebook 00 and the CLI options)."""

    dataset: DatasetName = "synth"  # synth = SynthActions generated under data_root (UCF101 layout)
    data_root: str = "data/synth"  # dataset root (official layout) or where SynthActions is generated
    split: int = 1  # official split 1..3
    missing: Literal["raise", "skip"] = "raise"  # files listed in the split but not on disk
    on_error: Literal["raise", "skip"] = "skip"  # unreadable videos: fail, or substitute and report
    model: str = "r3d_18"  # the 3D model (registry name)
    baseline: str = "r2d_18"  # frame-level 2D baseline trained alongside ("" = none)
    width: int = 16  # channels of the first ResNet stage (paper: 64)
    paper_size: bool = False  # True: paper sizes (width 64, 16 x 112^2 clips) -- hours on a CPU
    num_frames: int = 8  # frames per clip T
    stride: int = 4  # temporal stride between sampled frames (8 x 4 covers a 32-frame video)
    short_side: int = 64  # resize the short side to this
    crop_size: int = 56  # square crop fed to the model
    test_clips: int = 1  # temporal clips per test video
    test_crops: int = 1  # spatial crops per test clip (1, 3 or 10)
    synth_clips_per_class: int = 48  # SynthActions: clips per class (groups of 4; 30 % of groups held out)
    synth_frames: int = 32  # SynthActions: frames per video
    synth_size: int = 64  # SynthActions: frame size
    synth_seed: int = 0  # SynthActions: generation seed
    epochs: int = 25  # training epochs per model
    batch_size: int = 8  # clips per batch
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"  # optimiser
    lr: float = 0.001  # peak learning rate (2e-3 and 3e-3 left R3D-18 stuck at chance in some runs)
    weight_decay: float = 0.0001  # weight decay (not on norms/biases)
    warmup_epochs: float = 1.0  # linear warm-up before the cosine schedule
    num_workers: int = 0  # DataLoader workers
    seed: int = 0  # training seed
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # mixed precision (auto: on for CUDA only)
    out_dir: str = "runs/quickstart"  # run folder (checkpoints, metrics.jsonl, metrics.json)

    def __post_init__(self) -> None:
        if self.split not in (1, 2, 3):
            raise ValueError(f"QuickstartParams.split must be 1, 2 or 3, got {self.split}")
        if self.test_crops not in (1, 3, 10):
            raise ValueError(f"QuickstartParams.test_crops must be 1, 3 or 10, got {self.test_crops}")
        if self.crop_size > self.short_side:
            raise ValueError(f"QuickstartParams.crop_size ({self.crop_size}) exceeds short_side ({self.short_side})")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"QuickstartParams.warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}")
        for name in ("width", "num_frames", "stride", "epochs", "batch_size", "test_clips", "synth_clips_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"QuickstartParams.{name} must be >= 1, got {getattr(self, name)}")

    def effective(self) -> "QuickstartParams":
        """The parameters actually used: ``paper_size=True`` switches width and clip geometry to the paper's."""
        if not self.paper_size:
            return self
        return dataclasses.replace(self, width=64, num_frames=16, stride=2, short_side=128, crop_size=112)


def data_config(p: QuickstartParams) -> DataConfig:
    """The clip sampling / transform configuration of a run."""
    p = p.effective()
    return DataConfig(num_frames=p.num_frames, stride=p.stride, short_side=p.short_side, crop_size=p.crop_size,
                      test_clips=p.test_clips, test_crops=p.test_crops)  # type: ignore[arg-type]


def synth_config(p: QuickstartParams) -> SynthConfig:
    return SynthConfig(clips_per_class=p.synth_clips_per_class, num_frames=p.synth_frames, size=p.synth_size,
                       seed=p.synth_seed)


def split_dataset(p: QuickstartParams, *, train: bool) -> VideoDataset:
    """The train or test split of ``p.dataset`` at ``p.data_root`` (SynthActions is read as UCF101)."""
    name = "ucf101" if p.dataset == "synth" else p.dataset  # SynthActions is written in the UCF101 layout
    return build_dataset(name, p.data_root, split=p.split, train=train, config=data_config(p), missing=p.missing,
                         on_error=p.on_error, seed=p.seed)


def prepare_data(p: QuickstartParams, *, progress: bool = True) -> tuple[VideoDataset, VideoDataset]:
    """(train, test) datasets; for ``dataset="synth"`` generate SynthActions first (a no-op when present)."""
    if p.dataset == "synth":
        generate_synth_actions(p.data_root, synth_config(p), progress=progress)
    return split_dataset(p, train=True), split_dataset(p, train=False)


def model_kwargs(name: str, width: int) -> dict[str, Any]:
    """Width keyword understood by the model family (ResNets take ``width``, C3D ``width_mult``)."""
    return {"width_mult": width / 64} if name == "c3d" else {"width": width}


def new_run(run_dir: Path, name: str, classes: list[str], width: int, params: Any, *, seed: int) -> nn.Module:
    """Build registry model ``name`` (seeded) and record in ``run_dir/run.json`` what :func:`load_run` needs."""
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = model_kwargs(name, width)
    (run_dir / "run.json").write_text(json.dumps(
        {"model": name, "model_kwargs": kwargs, "num_classes": len(classes), "classes": list(classes),
         "params": dataclasses.asdict(params)}, indent=2))
    torch.manual_seed(seed)
    return build_model(name, len(classes), **kwargs)


def train_config(p: QuickstartParams, run_dir: Path) -> TrainConfig:
    return TrainConfig(epochs=p.epochs, batch_size=p.batch_size, optimizer=p.optimizer, lr=p.lr,
                       weight_decay=p.weight_decay, warmup_epochs=p.warmup_epochs, schedule="cosine",
                       num_workers=p.num_workers, seed=p.seed, deterministic=True, device=p.device, amp=p.amp,
                       out_dir=str(run_dir))


@dataclass
class RunResult:
    """One trained model: its fit history, its test evaluation and bookkeeping."""

    name: str
    fit: FitResult
    test: EvalResult
    seconds: float
    num_params: int
    run_dir: Path

    def summary(self) -> dict[str, Any]:
        return {"model": self.name, "top1": self.test.top1, "top5": self.test.top5, "loss": self.test.loss,
                "per_class": self.test.per_class, "confusion": self.test.confusion.tolist(),
                "num_params": self.num_params, "train_seconds": round(self.seconds, 1),
                "epochs": self.fit.epochs_completed, "quarantined": self.test.quarantined,
                "run_dir": str(self.run_dir)}


def train_model(name: str, p: QuickstartParams, train_set: VideoDataset, test_set: VideoDataset,
                *, progress: bool = True) -> RunResult:
    """Train registry model ``name`` (resuming ``out_dir/name`` if interrupted) and evaluate it on ``test_set``.

    ``run.json`` in the run folder records what :func:`load_run` needs to rebuild the model.
    """
    run_dir = Path(p.out_dir) / name
    model = new_run(run_dir, name, list(train_set.classes), p.effective().width, p, seed=p.seed)
    start = time.perf_counter()
    result = fit(model, train_set, test_set, train_config(p, run_dir), progress=progress)
    seconds = time.perf_counter() - start
    test = evaluate(model, test_set, batch_size=p.batch_size, num_classes=len(train_set.classes),
                    class_names=list(train_set.classes), device=next(model.parameters()).device,
                    num_workers=p.num_workers)
    return RunResult(name, result, test, seconds, sum(x.numel() for x in model.parameters()), run_dir)


def load_run(run_dir: str | os.PathLike[str], *, checkpoint: str = "last.pt") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a run folder (``run.json`` + checkpoint, loaded with weights_only=True)."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: not a run folder written by stia train / the quickstart")
    info = json.loads(info_path.read_text())
    model = build_model(info["model"], info["num_classes"], **info["model_kwargs"])
    state = load_checkpoint(run_dir / checkpoint)
    model.load_state_dict(state["model"])
    return model, info


def flat_history(result: FitResult) -> list[dict[str, Any]]:
    """``fit`` history as one row per (epoch, split), the form :func:`stia_kit.viz.training_curves` plots."""
    rows = []
    for entry in result.history:
        for split in ("train", "val"):
            if entry.get(split):
                rows.append({"epoch": entry["epoch"], "split": split, **entry[split]})
    return rows


def write_metrics(path: str | os.PathLike[str], p: QuickstartParams, classes: list[str],
                  runs: list[RunResult]) -> Path:
    """Write the quickstart's metrics JSON (atomically) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"params": dataclasses.asdict(p), "classes": classes, "chance_top1": 1.0 / len(classes),
               "models": {r.name: r.summary() for r in runs}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
    return path


def run_quickstart(p: QuickstartParams, *, progress: bool = True) -> tuple[list[RunResult], Path]:
    """Prepare data, train ``p.model`` and ``p.baseline``, write ``out_dir/metrics.json``."""
    train_set, test_set = prepare_data(p, progress=progress)
    names = [p.model] + ([p.baseline] if p.baseline else [])
    runs = [train_model(n, p, train_set, test_set, progress=progress) for n in names]
    return runs, write_metrics(Path(p.out_dir) / "metrics.json", p, list(train_set.classes), runs)
