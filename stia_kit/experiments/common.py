"""The shared experiments layer: parameter groups every notebook composes, and the steps they share.

A notebook's parameters are one flat frozen dataclass (papermill injects flat primitives) built from these
groups by inheritance, so every field stays a top-level name::

    @dataclass(frozen=True)
    class QuickstartParams(RunFields, RecipeFields, SynthFields, DataFields, PresetFields):
        model: str = "r3d_18"  # the notebook's own fields follow the groups'
        PAPER: ClassVar[Mapping[str, Any]] = {"width": 64, "num_frames": 16, ...}

        def _check(self) -> None: ...  # the notebook's own validation

Each group validates its own fields in ``_check`` (all of them run, base groups first, errors name the
class and the field). The shared steps take any params built this way: :func:`prepare_data` (SynthActions
generation, the train / validation / test splits), :func:`data_config`, :func:`synth_config`,
:func:`train_config`, :func:`check_model_input` (builds the model on the meta device and runs one forward,
so a model that cannot take the clips fails when the parameters are made, not after data generation) and
:func:`train_and_test` (one run folder: build, fit, pick the weights, test).

**Presets** (the kit's one size convention, see :data:`stia_kit.registry.PRESETS`): every experiment has
``preset = "teaching"`` (the defaults: minutes on a 2-core CPU) or ``"paper"``. :meth:`PresetFields.resolved`
applies the class's ``PAPER`` table to every field that is still at its teaching default, so
``preset="paper", epochs=3`` is the paper's sizes and recipe with 3 epochs. Models are built with the same
``preset`` (:func:`stia_kit.models.build_model`).
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, TypeVar

import numpy as np
import torch
from torch import nn

from ..data import DataConfig, VideoDataset, build_dataset
from ..data.cache import configure_default_cache
from ..models import build_model
from ..registry import Preset, check_preset
from ..synth import SynthConfig, generate_synth_actions
from ..train import EvalResult, FitResult, TrainConfig, evaluate, fit
from .runs import new_run

DatasetName = Literal["synth", "ucf101", "hmdb51", "arid"]
#: SynthActions is written in the UCF101 layout and read by the UCF101 loader.
SYNTH_LAYOUT = "ucf101"

G = TypeVar("G", bound="ParamGroup")


# ---------------------------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class ParamGroup:
    """Base of the parameter groups: runs every class's ``_check`` (base groups first) after construction."""

    def __post_init__(self) -> None:
        for klass in reversed(type(self).__mro__):
            check = klass.__dict__.get("_check")
            if check is not None:
                check(self)

    def _fail(self, name: str, requirement: str) -> None:
        raise ValueError(f"{type(self).__name__}.{name} {requirement}, got {getattr(self, name)!r}")

    def _at_least(self, minimum: float, *names: str) -> None:
        for name in names:
            if getattr(self, name) < minimum:
                self._fail(name, f"must be >= {minimum}")


@dataclass(frozen=True)
class PresetFields(ParamGroup):
    """``preset``: the one switch between the teaching sizes (defaults) and the paper's."""

    preset: Preset = "teaching"  # "paper": the paper's sizes and recipe for every field left at its teaching default

    PAPER: ClassVar[Mapping[str, Any]] = {}  # field -> the paper's value (per experiment)

    def _check(self) -> None:
        check_preset(self.preset, f"{type(self).__name__}.preset")
        fields = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = sorted(set(self.PAPER) - fields)
        if unknown:
            raise TypeError(f"{type(self).__name__}.PAPER names unknown fields {unknown}")

    def resolved(self: G) -> G:
        """The parameters actually used: for ``preset="paper"``, ``PAPER`` replaces every field still at its
        (teaching) default; fields the user set keep their value. The teaching preset returns ``self``."""
        if self.preset != "paper" or not self.PAPER:  # type: ignore[attr-defined]
            return self
        defaults = {f.name: f.default for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        changes = {k: v for k, v in self.PAPER.items()  # type: ignore[attr-defined]
                   if getattr(self, k) == defaults[k] and getattr(self, k) != v}
        return dataclasses.replace(self, **changes) if changes else self


@dataclass(frozen=True)
class DataFields(ParamGroup):
    """Which data, and the clip geometry fed to the model."""

    dataset: DatasetName = "synth"  # synth = SynthActions generated under data_root (UCF101 layout)
    data_root: str = "data/synth"  # dataset root (official layout) or where SynthActions is generated
    split: int = 1  # official split 1..3
    missing: Literal["raise", "skip"] = "raise"  # files listed in the split but not on disk
    on_error: Literal["raise", "skip"] = "skip"  # unreadable videos: fail, or substitute and report
    val_fraction: float = 0.0  # hold out this fraction of the training groups for validation / best checkpoint (0 = none)
    num_frames: int = 8  # frames per clip T
    stride: int = 4  # temporal stride between sampled frames
    short_side: int = 64  # resize the short side to this
    crop_size: int = 56  # square crop fed to the model
    test_clips: int = 1  # temporal clips per test video
    test_crops: int = 1  # spatial crops per test clip (1, 3 or 10)
    cache_mb: int = 1024  # decoded-frame cache in RAM (MiB), shared by every dataset of the process (0 = off)
    cache_dir: str = ""  # opt-in on-disk frame cache folder, reused by repeated runs ("" = none)
    cache_resized: bool = False  # also cache the frames after the fixed short-side resize (float32: ~4x the memory)

    def _check(self) -> None:
        if self.split not in (1, 2, 3):
            self._fail("split", "must be 1, 2 or 3")
        if self.test_crops not in (1, 3, 10):
            self._fail("test_crops", "must be 1, 3 or 10")
        self._at_least(1, "num_frames", "stride", "short_side", "crop_size", "test_clips")
        self._at_least(0, "cache_mb")
        if self.crop_size > self.short_side:
            self._fail("crop_size", f"must not exceed short_side={self.short_side}")
        if not 0.0 <= self.val_fraction < 1.0:
            self._fail("val_fraction", "must be in [0, 1)")


@dataclass(frozen=True)
class SynthFields(ParamGroup):
    """SynthActions generation (used when ``dataset="synth"``)."""

    synth_clips_per_class: int = 48  # SynthActions: clips per class (groups of synth_clips_per_group; 30 % of groups held out)
    synth_clips_per_group: int = 4  # SynthActions: clips per actor group (>= 2 groups per class)
    synth_frames: int = 32  # SynthActions: frames per video
    synth_size: int = 64  # SynthActions: frame size
    synth_seed: int = 0  # SynthActions: generation seed

    def _check(self) -> None:
        self._at_least(1, "synth_clips_per_class", "synth_clips_per_group", "synth_frames")
        self._at_least(16, "synth_size")


@dataclass(frozen=True)
class RecipeFields(ParamGroup):
    """The training recipe (optimiser, schedule, length)."""

    epochs: int = 15  # training epochs per model (25 before the frame cache; 15 keeps the quickstart within ~5 min)
    batch_size: int = 8  # clips per batch
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"  # optimiser
    lr: float = 0.001  # peak learning rate (warm-up, then cosine)
    momentum: float = 0.9  # SGD momentum / Adam beta1
    weight_decay: float = 0.0001  # weight decay (not on norms/biases)
    warmup_epochs: float = 1.0  # linear warm-up before the cosine schedule
    eval_every: int = 0  # validate every N epochs (needs val_fraction > 0; 0 = after the last epoch only)

    def _check(self) -> None:
        self._at_least(1, "epochs", "batch_size")
        self._at_least(0, "eval_every", "weight_decay")
        if not self.lr > 0:
            self._fail("lr", "must be > 0")
        if not 0 <= self.momentum < 1:
            self._fail("momentum", "must be in [0, 1)")
        if not 0 <= self.warmup_epochs < self.epochs:
            self._fail("warmup_epochs", f"must be in [0, epochs={self.epochs})")


@dataclass(frozen=True)
class RunFields(ParamGroup):
    """Where and how a run executes."""

    seed: int = 0  # training seed
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # mixed precision (auto: on for CUDA only)
    channels_last: bool = True  # channels_last_3d memory format (measured faster for these 3D CNNs on CPU)
    num_workers: int = 0  # DataLoader workers (0: decode in the main process; the frame cache makes epochs after the first cheap)
    out_dir: str = "runs/experiment"  # run folder (checkpoints, metrics.jsonl, results JSON, HTML figures)

    def _check(self) -> None:
        self._at_least(0, "seed", "num_workers")
        if not (self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device)):
            self._fail("device", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if not self.out_dir:
            self._fail("out_dir", "must be a non-empty path")


@dataclass(frozen=True)
class ScheduleFields(ParamGroup):
    """The learning-rate shape after warm-up (the papers use step schedules)."""

    schedule: Literal["cosine", "step"] = "cosine"  # cosine annealing, or x0.1 at the milestones
    milestones: str = ""  # "step": comma-separated epochs where the lr is divided by 10 (e.g. "30,60")
    clip_grad_norm: float = 0.0  # clip the global gradient norm to this (0 = off; TSN convention: 20)

    def _check(self) -> None:
        self.milestone_list()
        self._at_least(0, "clip_grad_norm")
        if self.schedule == "step" and not self.milestone_list():
            self._fail("milestones", "must list at least one epoch when schedule='step'")

    def milestone_list(self) -> tuple[int, ...]:
        return parse_milestones(self.milestones, f"{type(self).__name__}.milestones")

    def schedule_overrides(self) -> dict[str, Any]:
        """``train_and_test`` / ``TrainConfig`` overrides for this schedule."""
        p = _resolved(self)
        out: dict[str, Any] = {"schedule": p.schedule,
                               "clip_grad_norm": p.clip_grad_norm if p.clip_grad_norm > 0 else None}
        if p.schedule == "step":
            out.update(milestones=p.milestone_list(), step_gamma=0.1)
        return out


def parse_milestones(text: str, field: str) -> tuple[int, ...]:
    """``"30,60"`` -> ``(30, 60)``; a ValueError naming ``field`` unless increasing positive ints."""
    try:
        out = tuple(int(m) for m in text.split(",") if m.strip())
    except ValueError:
        raise ValueError(f"{field} must be comma-separated ints, got {text!r}") from None
    if any(m < 1 for m in out) or list(out) != sorted(set(out)):
        raise ValueError(f"{field} must be increasing positive ints, got {text!r}")
    return out


# ---------------------------------------------------------------------------------------------- configs
def data_config(p: DataFields, **overrides: Any) -> DataConfig:
    """The clip sampling / transform configuration of ``p`` (resolved preset). An experiment whose protocol
    needs more :class:`DataConfig` fields (TSN sampling, other crops) defines ``data_overrides() -> dict``."""
    p = _resolved(p)
    values: dict[str, Any] = dict(num_frames=p.num_frames, stride=p.stride, short_side=p.short_side,
                                  crop_size=p.crop_size, test_clips=p.test_clips, test_crops=p.test_crops,
                                  frame_cache=p.cache_mb > 0 or bool(p.cache_dir), cache_resized=p.cache_resized)
    extra = getattr(p, "data_overrides", None)
    if callable(extra):
        values.update(extra())
    values.update(overrides)
    return DataConfig(**values)


def synth_config(p: SynthFields, **overrides: Any) -> SynthConfig:
    """The SynthActions configuration of ``p`` (``overrides`` e.g. ``lowlight=True, layouts=("arid",)``)."""
    p = _resolved(p)
    return SynthConfig(clips_per_class=p.synth_clips_per_class, clips_per_group=p.synth_clips_per_group,
                       num_frames=p.synth_frames, size=p.synth_size, seed=p.synth_seed, **overrides)


def train_config(p: Any, run_dir: str | Path, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of params ``p`` (RecipeFields + RunFields) writing into ``run_dir``."""
    p = _resolved(p)
    values: dict[str, Any] = dict(
        epochs=p.epochs, batch_size=p.batch_size, optimizer=p.optimizer, lr=p.lr, momentum=p.momentum,
        weight_decay=p.weight_decay, warmup_epochs=p.warmup_epochs, schedule="cosine",
        eval_every=p.eval_every or p.epochs, num_workers=p.num_workers, seed=p.seed, deterministic=True,
        device=p.device, amp=p.amp, channels_last=p.channels_last, out_dir=str(run_dir))
    values.update(overrides)
    return TrainConfig(**values)


def _resolved(p: Any) -> Any:
    return p.resolved() if isinstance(p, PresetFields) else p


# ---------------------------------------------------------------------------------------------- model checks
def check_model_input(who: str, model: str, model_kwargs: Mapping[str, Any], *, preset: str,
                      clip: tuple[int, int, int, int] | Mapping[str, tuple[int, int, int, int]]) -> None:
    """Build registry ``model`` on the meta device and run one ``[1, *clip]`` forward (no memory, no compute);
    ``clip`` is a dict ``{key: (C, T, H, W)}`` for multi-input models (two-stream: ``rgb`` / ``flow``).

    Raises a ValueError naming ``who`` (the params class), the model and the clip shape when the model cannot
    be built with these settings or cannot take such clips (e.g. STIN with T=8 < tau).
    """
    try:
        with torch.device("meta"):
            net = build_model(model, 2, preset=preset, **dict(model_kwargs))
            net.eval()
            with torch.no_grad():
                net({k: torch.empty(1, *c) for k, c in clip.items()} if isinstance(clip, Mapping)
                    else torch.empty(1, *clip))
    except (ValueError, RuntimeError, TypeError, KeyError, AssertionError) as e:
        raise ValueError(f"{who}: model {model!r} (preset {preset!r}, {dict(model_kwargs)}) cannot take clips of "
                         f"shape [C, T, H, W] = {dict(clip) if isinstance(clip, Mapping) else list(clip)}: {e}") from e


def clip_shape(p: DataFields) -> tuple[int, int, int, int]:
    """``(C, T, H, W)`` of the clips ``p`` feeds to a model."""
    p = _resolved(p)
    return (3, p.num_frames, p.crop_size, p.crop_size)


# ---------------------------------------------------------------------------------------------- data
@dataclass
class DataSplits:
    """The datasets of one experiment. ``val`` is held out of the training split (never the test split)."""

    train: VideoDataset
    val: VideoDataset | None
    test: VideoDataset

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)


def dataset_layout(dataset: str) -> str:
    """The loader that reads ``dataset`` (SynthActions -> its UCF101 layout)."""
    return SYNTH_LAYOUT if dataset == "synth" else dataset


def open_split(p: DataFields, *, train: bool, dataset: str | None = None, root: str | None = None,
               config: DataConfig | None = None) -> VideoDataset:
    """One official split of ``p.dataset`` at ``p.data_root`` (or of ``dataset`` at ``root``), reading through
    the process-wide decoded-frame cache sized by ``p.cache_mb`` / ``p.cache_dir``."""
    p = _resolved(p)
    configure_default_cache(p.cache_mb * 2**20, p.cache_dir or None)
    return build_dataset(dataset_layout(dataset or p.dataset), root or p.data_root, split=p.split, train=train,
                         config=config or data_config(p), missing=p.missing, on_error=p.on_error,
                         seed=getattr(p, "seed", 0))


def group_of(path: Path) -> str:
    """The actor group of a video (UCF101 / SynthActions ``_gNN_``), else the file stem (one clip = one group).

    UCF101's groups are numbered within each class, so a group is identified by (class, group) below."""
    m = re.search(r"_g(\d+)_", path.name)
    return m.group(1) if m else path.stem


def holdout_groups(train: VideoDataset, fraction: float, seed: int) -> tuple[VideoDataset, VideoDataset | None]:
    """Split ``train`` into (train, validation) by whole actor groups, class by class (no group in both):
    in every class with at least 2 groups, ``round(fraction * groups)`` of them (at least 1, at most all but
    one), chosen with ``seed``, become validation clips. ``fraction == 0`` returns (train, None)."""
    if fraction <= 0:
        return train, None
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[str]] = {}
    for path, label in train.samples:
        groups = by_class.setdefault(label, [])
        if group_of(path) not in groups:
            groups.append(group_of(path))
    held: set[tuple[int, str]] = set()
    for label, groups in sorted(by_class.items()):
        if len(groups) < 2:
            continue
        k = min(len(groups) - 1, max(1, round(fraction * len(groups))))
        held |= {(label, g) for g in rng.choice(sorted(groups), size=k, replace=False).tolist()}
    if not held:
        raise ValueError(f"val_fraction={fraction}: no class of {train.name} has 2 or more actor groups to hold out")
    is_val = [(label, group_of(path)) in held for path, label in train.samples]
    return (train.subset([i for i, v in enumerate(is_val) if not v], name=f"{train.name}[train]"),
            train.subset([i for i, v in enumerate(is_val) if v], name=f"{train.name}[val: {len(held)} groups]"))


def synth_workers() -> int:
    """Processes that render SynthActions (the output is identical for any number): the CPUs, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def prepare_data(p: Any, *, progress: bool = True) -> DataSplits:
    """Generate SynthActions when ``p.dataset == "synth"`` (a no-op when complete), then open the training
    split (minus the validation groups when ``p.val_fraction > 0``) and the test split."""
    p = _resolved(p)
    if p.dataset == "synth":
        generate_synth_actions(p.data_root, synth_config(p), progress=progress, workers=synth_workers())
    train, val = holdout_groups(open_split(p, train=True), p.val_fraction, p.seed)
    return DataSplits(train, val, open_split(p, train=False))


# ---------------------------------------------------------------------------------------------- one run
@dataclass
class RunResult:
    """One trained model: its fit history, its test evaluation and bookkeeping."""

    name: str
    fit: FitResult
    test: EvalResult
    seconds: float  # fit + test wall time
    num_params: int
    run_dir: Path
    weights: str  # "last.pt" or "best.pt" (chosen on the validation split)
    model: nn.Module | None = None  # the trained network (in memory only; rebuild from run_dir with load_run)

    def summary(self) -> dict[str, Any]:
        return {"model": self.name, "top1": self.test.top1, "top5": self.test.top5, "loss": self.test.loss,
                "per_class": self.test.per_class, "confusion": self.test.confusion.tolist(),
                "num_params": self.num_params, "train_seconds": round(self.seconds, 1),
                "epochs": self.fit.epochs_completed, "weights": self.weights,
                "best_val_top1": self.fit.best_top1, "quarantined": self.test.quarantined,
                "run_dir": str(self.run_dir)}


def train_and_test(p: Any, name: str, model: str, model_kwargs: Mapping[str, Any], splits: DataSplits, *,
                   train_set: VideoDataset | None = None, test_set: VideoDataset | None = None,
                   init: Mapping[str, torch.Tensor] | None = None, resume: bool = True, progress: bool = True,
                   test_scores: bool = False, init_partial: bool = False, **train_overrides: Any) -> RunResult:
    """Build registry ``model`` (seeded) into the run folder ``out_dir/name``, fit it (resuming an interrupted
    run), take the best-validation weights when there is a validation split (else the last), and test it.

    ``train_set`` / ``test_set`` replace the splits' (e.g. enhanced copies of them); ``init`` is a state dict
    the new model starts from (fine-tuning) instead of its random initialisation. ``init_partial`` lets ``init`` cover only part of the model (e.g. STILT's
    streams from the single-stream runs; the rest keeps its initialisation). ``test_scores`` keeps the
    per-sample test softmax of every head (``RunResult.test.scores``: late / learned fusion).
    """
    p = _resolved(p)
    run_dir = Path(p.out_dir) / name
    train, test = train_set or splits.train, test_set or splits.test
    net = new_run(run_dir, model, list(train.classes), preset=p.preset, model_kwargs=model_kwargs, params=p,
                  seed=p.seed)
    if init is not None:
        missing, unexpected = net.load_state_dict(init, strict=not init_partial)
        if unexpected or (missing and len(missing) == len(net.state_dict())):
            raise ValueError(f"{name}: init matches none of {model!r}'s parameters" if not unexpected else
                             f"{name}: init has keys {model!r} lacks: {unexpected[:5]}")
    start = time.perf_counter()
    result = fit(net, train, splits.val, train_config(p, run_dir, **train_overrides), resume=resume,
                 progress=progress, restore_best=splits.val is not None)
    weights = "best.pt" if result.restored_best else "last.pt"
    test_result = evaluate(net, test, batch_size=p.batch_size, num_classes=len(train.classes),
                           class_names=list(train.classes), device=next(net.parameters()).device,
                           num_workers=p.num_workers, progress=progress, return_scores=test_scores)
    return RunResult(name, result, test_result, time.perf_counter() - start, num_params(net), run_dir, weights,
                     net.eval())


def flat_history(result: FitResult) -> list[dict[str, Any]]:
    """``fit`` history as one row per (epoch, split), the form :func:`stia_kit.viz.training_curves` plots."""
    rows = []
    for entry in result.history:
        for split in ("train", "val"):
            if entry.get(split):
                rows.append({"epoch": entry["epoch"], "split": split, **entry[split]})
    return rows


def num_params(model: nn.Module) -> int:
    return sum(x.numel() for x in model.parameters())

