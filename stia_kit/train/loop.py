"""``fit`` (train + validate + checkpoint + resume) and ``evaluate``: the one training engine of the kit.

Run directory layout (``TrainConfig.out_dir``; nothing is written when it is None), rank 0 only:

* ``metrics.jsonl`` — one JSON object per line, one line per (epoch, split); see :func:`fit`.
* ``last.pt`` — written atomically after every epoch; ``fit(..., resume=True)`` continues from it.
* ``best.pt`` — the same content, written whenever the validation score improves (top-1, or the loss for
  unlabelled data); :func:`load_best` / ``fit(..., restore_best=True)`` put those weights back.

Model output contract (DESIGN.md): ``model(inputs)`` returns logits ``[B, C]``, or a dict with

* ``"logits"`` — the (fused) prediction ``[B, C]``: top-1/top-5, confusion and scores are computed on it;
* ``"loss_*"`` — scalar terms added to the objective and logged under their name;
* ``"stream_logits"`` — optional ``{head: [B, C]}``. When present, the classification loss is one
  cross-entropy per head, summed (STILT's two "softmax loss layers"), logged as ``loss_ce_<head>`` with the
  head's accuracy ``top1_<head>``; ``"logits"`` is then the fused output, evaluated but not trained by a
  cross-entropy of its own (no ``loss_ce`` term).

A ``loss_fn`` hook replaces the classification loss: ``loss_fn(model_output, batch) -> (loss, {name: scalar
tensor})``; the loss is trained, the named terms are logged (e.g. the zero-reference losses of curve-model
training, :func:`stia_kit.enhance.train_curve_model`). Samples then need no ``"label"``; accuracies are
computed only when the batch has ``"label"`` and the model returns a dict with ``"logits"``.

Model inputs: ``batch[k]`` for each ``k`` in the model's ``input_keys`` (a dict), else ``batch["video"]``
(clips ``[B, C, T, H, W]``), else ``batch["image"]`` (frames ``[B, C, H, W]``).

Seeding and exact resume — one mechanism per process kind:

* the data order is a function of ``(seed, epoch)`` only (a ``DistributedSampler`` is used even in
  single-process runs; its ``set_epoch`` reseeds the shuffle);
* DataLoader workers: the dataset wrapper :class:`_EpochSeededDataset` reseeds the worker's python / NumPy /
  torch RNGs from ``(seed, rank, epoch, worker id, loader)`` at the first sample of every epoch, so worker
  randomness depends on the epoch only (also with persistent workers and after a resume). This is the only
  worker seeding: no ``worker_init_fn``; the loaders get a private ``torch.Generator`` only so that creating
  a DataLoader iterator never draws from the main process's global RNG;
* the main process (augmentation when ``num_workers=0``, dropout, ...) uses the global RNGs, seeded once at
  the start of a fresh run and saved in / restored from every checkpoint.

On CPU with ``deterministic=True`` a run interrupted after epoch k and resumed therefore ends with
bit-identical weights and metrics to an uninterrupted run.

Progress: one :class:`stia_kit.progress.Progress` line per ``fit`` / ``evaluate`` call (one updating output in
a notebook, a tqdm bar in a terminal); per-epoch summaries go to the ``stia_kit.train`` logger, to
``metrics.jsonl`` and into that line's status.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, get_worker_info

from ..progress import Progress
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .device import (AmpSettings, DistInfo, all_gather_objects, autocast, barrier, broadcast_buffers,
                     cleanup_distributed, device_for, make_grad_scaler, maybe_init_distributed, resolve_amp,
                     to_channels_last, to_device, unwrap, wrap_ddp)
from .metrics import NUM_VIEWS_KEY, MetricAccumulator, collate_views, fold_views, mean_view_probs
from .optim import build_optimizer, build_scheduler

logger = logging.getLogger("stia_kit.train")

Callback = Callable[[dict[str, Any]], "bool | None"]
"""Called on every rank after each epoch (after checkpointing) with that epoch's history entry.
Return True to stop training after this epoch; raising (e.g. KeyboardInterrupt) aborts the run."""

LossFn = Callable[[Any, Mapping[str, Any]], "tuple[torch.Tensor, Mapping[str, torch.Tensor]]"]
"""``loss_fn(model_output, batch) -> (loss, {name: scalar tensor})``: the trained objective and the terms to log
(``batch`` is on the device). Term names must not clash with the record keys (``loss``, ``top1``, ...)."""

CHECKPOINT_FORMAT = 1
# Config fields that may legitimately change between a run and its resumption.
_RESUME_FREE_FIELDS = frozenset({"epochs", "max_epochs_this_run", "out_dir", "num_workers", "pin_memory",
                                 "log_every", "device", "eval_every", "eval_batch_size"})
# Keys of a metrics record that a loss term / stream head may not take.
_RECORD_KEYS = frozenset({"epoch", "split", "step", "loss", "top1", "top5", "num_samples", "per_class", "confusion",
                          "predictions", "lr", "time", "num_failed", "quarantined", "steps"})


# ---------------------------------------------------------------------------------------------- errors/results
class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/inf; the run stopped and the last checkpoint was left untouched."""

    def __init__(self, epoch: int, iteration: int, value: float, terms: Mapping[str, float] | None = None) -> None:
        self.epoch, self.iteration, self.value = epoch, iteration, value
        self.terms = dict(terms or {})
        detail = ", ".join(f"{k}={v:.4g}" for k, v in self.terms.items())
        super().__init__(
            f"non-finite training loss {value} at epoch {epoch}, iteration {iteration}"
            + (f" (terms: {detail})" if detail else "")
            + "; training stopped, the last checkpoint on disk is from the previous epoch. "
              "Try a lower lr, gradient clipping (clip_grad_norm) or amp='off'."
        )


class TooManyFailedSamplesError(RuntimeError):
    """More than ``TrainConfig.max_bad_fraction`` of an epoch's samples had to be substituted."""


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate` (accuracies in [0, 1]; nan / empty for unlabelled data)."""

    top1: float  # top-1 accuracy of "logits" (the fused prediction)
    top5: float  # top-5 accuracy (k clipped to the number of classes)
    loss: float  # mean objective per sample (cross-entropies + model loss terms, or the loss_fn value)
    per_class: list[float]  # accuracy (recall) of every class, nan for classes without samples
    confusion: torch.Tensor  # [C, C] int64, rows = true class, columns = predicted
    num_samples: int  # samples evaluated
    class_names: list[str] | None = None  # names for per_class / confusion rows, if known
    predictions: list[int] | None = None  # argmax per sample, in dataset order (if requested)
    targets: list[int] | None = None  # true labels in the same order (if predictions or scores requested)
    terms: dict[str, float] = field(default_factory=dict)  # mean of each logged term (loss_ce[_<head>], loss_*)
    quarantined: list[str] = field(default_factory=list)  # non-empty "failed" strings seen
    head_top1: dict[str, float] = field(default_factory=dict)  # top-1 of every stream head ({} without stream_logits)
    scores: dict[str, torch.Tensor] | None = None  # return_scores: {"logits" | head: [N, C] softmax, view-averaged}
    indices: list[int] | None = None  # dataset index of every row of scores / predictions / targets


@dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    history: list[dict[str, Any]]  # one {"epoch", "train", "val"} entry per completed epoch (incl. resumed ones)
    epochs_completed: int  # epochs done in total (== cfg.epochs when finished)
    finished: bool  # all cfg.epochs done (False after max_epochs_this_run or a callback stop)
    best_top1: float | None  # best validation top-1 so far (None without a labelled validation set)
    out_dir: Path | None  # run directory (None when cfg.out_dir is None)
    metrics_path: Path | None  # out_dir/metrics.jsonl
    last_checkpoint: Path | None  # out_dir/last.pt
    best_checkpoint: Path | None  # out_dir/best.pt (None until a validation epoch ran)
    resumed_from: Path | None  # checkpoint this call resumed from
    best_epoch: int | None = None  # 0-based epoch of the best validation score (None without validation)
    best_metric: str | None = None  # what chose it: "top1" (higher is better) or "loss" (unlabelled: lower is better)
    best_value: float | None = None  # that validation score
    restored_best: bool = False  # fit(restore_best=True) put the best epoch's weights into the model


# ---------------------------------------------------------------------------------------------- seeding/data
def seed_everything(seed: int) -> None:
    """Seed python ``random``, NumPy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic algorithms + cuDNN flags, or cuDNN autotuning (``benchmark``) for speed.

    This changes process-global torch settings. Deterministic mode also sets ``CUBLAS_WORKSPACE_CONFIG``
    (needed by deterministic cuBLAS) unless already set; nondeterministic ops only warn.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True


def _seed_from(*parts: int) -> tuple[int, int]:
    """Two independent seeds (63-bit for torch, 32-bit for numpy/python) derived from ``parts``."""
    a, b = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint64)
    return int(a) & (2**63 - 1), int(b) % 2**32


class _EpochTaggedSampler(Sampler):
    """Yields ``(epoch, index)`` so the dataset wrapper knows the epoch even in persistent workers."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, int(i)) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class _EpochSeededDataset(Dataset):
    """The one worker-seeding mechanism (see the module docstring). Fed ``(epoch, index)`` keys by
    :class:`_EpochTaggedSampler`; on the first sample of a new epoch it calls ``dataset.set_epoch(epoch)`` (if
    ``forward_set_epoch``) and, inside a DataLoader worker only, reseeds that worker's python / NumPy / torch RNGs
    from ``(seed, rank, epoch, worker id, stream)``. In the main process (``num_workers=0``) it does not reseed:
    there the global RNG stream, saved in checkpoints, is used."""

    def __init__(self, dataset: Dataset, seed: int, rank: int, *, stream: int, forward_set_epoch: bool) -> None:
        self.dataset, self.seed, self.rank, self.stream = dataset, seed, rank, stream
        self.forward_set_epoch = forward_set_epoch
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self._epoch:
            self._epoch = epoch
            if self.forward_set_epoch and hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            worker = get_worker_info()
            if worker is not None:
                torch_seed, other_seed = _seed_from(self.seed, self.rank, epoch, worker.id, self.stream)
                torch.manual_seed(torch_seed)
                np.random.seed(other_seed)
                random.seed(other_seed)
        return self.dataset[index]


class _ShardSampler(Sampler):
    """Evaluation sampler: indices ``rank::world_size`` in order, no padding (exact counts after all-reduce)."""

    def __init__(self, n: int, info: DistInfo) -> None:
        self.indices = list(range(info.rank, n, info.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _pin(cfg_pin: bool | None, device: torch.device) -> bool:
    return (device.type == "cuda") if cfg_pin is None else cfg_pin


def _loader(dataset: Dataset, sampler: _EpochTaggedSampler, *, batch_size: int, num_workers: int, pin_memory: bool,
            seed: int, rank: int, stream: int, drop_last: bool) -> DataLoader:
    """The training (``stream=0``) and evaluation (``stream=1``) loaders differ only in sampler and stream."""
    return DataLoader(
        _EpochSeededDataset(dataset, seed, rank, stream=stream, forward_set_epoch=stream == 0),
        batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
        collate_fn=collate_views,  # default_collate, padding samples with different numbers of views
        generator=torch.Generator().manual_seed(seed),  # isolates iterator creation from the global RNG
        persistent_workers=num_workers > 0,
    )


def _train_loader(dataset: Dataset, cfg: TrainConfig, device: torch.device,
                  info: DistInfo) -> tuple[DataLoader, _EpochTaggedSampler]:
    inner = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                               seed=cfg.seed, drop_last=False)
    sampler = _EpochTaggedSampler(inner)
    return _loader(dataset, sampler, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                   pin_memory=_pin(cfg.pin_memory, device), seed=cfg.seed, rank=info.rank, stream=0,
                   drop_last=cfg.drop_last), sampler


def _eval_loader(dataset: Dataset, batch_size: int, num_workers: int, pin_memory: bool,
                 info: DistInfo, seed: int = 0) -> tuple[DataLoader, _EpochTaggedSampler]:
    """Ordered, unpadded, sharded loader; workers reseeded per epoch like the training loader."""
    sampler = _EpochTaggedSampler(_ShardSampler(len(dataset), info))  # type: ignore[arg-type]
    return _loader(dataset, sampler, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                   seed=seed, rank=info.rank, stream=1, drop_last=False), sampler


# ---------------------------------------------------------------------------------------------- forward/loss
def _check_batch(batch: Any, *, need_label: bool) -> Mapping[str, Any]:
    if not isinstance(batch, Mapping):
        raise TypeError("datasets must return sample dicts with at least 'video' (or the model's input_keys) and "
                        f"'label' (see DESIGN.md); got a batch of type {type(batch).__name__}")
    if need_label and "label" not in batch:
        raise KeyError(f"batch has no 'label' (keys: {sorted(batch)}); classification needs labelled samples "
                       "(DESIGN.md), unlabelled data needs a loss_fn")
    return batch


def _model_inputs(model: nn.Module, batch: Mapping[str, Any]) -> Any:
    """``{key: batch[key]}`` for models declaring ``input_keys``, else ``batch["video"]``, else ``batch["image"]``."""
    keys = getattr(unwrap(model), "input_keys", None)
    if keys:
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"model declares input_keys={tuple(keys)} but the batch lacks {missing}")
        return {k: batch[k] for k in keys}
    for key in ("video", "image"):
        if key in batch:
            return batch[key]
    raise KeyError(f"batch has neither 'video' nor 'image' (keys: {sorted(batch)}) and the model declares no "
                   "input_keys")


@dataclass
class _Output:
    """A parsed classification output (see the module docstring)."""

    logits: torch.Tensor  # [B, C] fused prediction
    streams: dict[str, torch.Tensor]  # head -> [B, C]; empty without "stream_logits"
    terms: dict[str, torch.Tensor]  # "loss_*" -> scalar


def _split_output(out: Any) -> _Output:
    """Parse a model output: a logits tensor, or a dict with ``"logits"``, ``"loss_*"``, ``"stream_logits"``."""
    if isinstance(out, torch.Tensor):
        return _Output(out, {}, {})
    if not isinstance(out, Mapping):
        raise TypeError(f"model must return logits or a dict with 'logits', got {type(out).__name__}")
    if "logits" not in out:
        raise KeyError(f"model returned a dict without 'logits' (keys: {sorted(out)})")
    terms = {k: v for k, v in out.items() if k.startswith("loss_")}
    for name, value in terms.items():
        if name == "loss_ce" or name.startswith("loss_ce_"):
            raise ValueError(f"model loss term {name!r} clashes with the loop's cross-entropy terms; rename it")
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"model loss term {name!r} must be a scalar tensor, got {value!r:.80}")
    streams = out.get("stream_logits") or {}
    if not isinstance(streams, Mapping):
        raise TypeError(f"'stream_logits' must be a dict {{head: [B, C] tensor}}, got {type(streams).__name__}")
    for head, value in streams.items():
        if not isinstance(head, str) or not head or head == "logits" or not head.isidentifier():
            raise ValueError(f"stream head names must be identifiers other than 'logits', got {head!r}")
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            raise ValueError(f"stream_logits[{head!r}] must be a [B, C] tensor, got {getattr(value, 'shape', value)!r}")
    return _Output(out["logits"], dict(streams), {k: v.reshape(()) for k, v in terms.items()})


def _is_multiview(inputs: Any) -> bool:
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    return isinstance(first, torch.Tensor) and first.ndim == 6


def _batch_len(inputs: Any) -> int:
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    return int(first.shape[0])


@dataclass
class _BatchOut:
    """What one forward (+ loss) of a batch gives, in training and evaluation alike."""

    loss: torch.Tensor  # scalar objective (with its graph in training)
    terms: dict[str, torch.Tensor]  # logged scalars (loss_ce | loss_ce_<head>, loss_*, or the hook's terms)
    logits: torch.Tensor | None  # [B, C] float for the metrics (log of the view-mean softmax for multi-view)
    streams: dict[str, torch.Tensor]  # head -> [B, C] float, same convention
    target: torch.Tensor | None  # [B] labels (None for unlabelled data)
    n: int  # samples in the batch
    probs: dict[str, torch.Tensor] | None  # want_scores: {"logits" | head: [B, C] softmax (view-averaged)}


def _forward_batch(model: nn.Module, batch: Mapping[str, Any], *, device: torch.device, amp: AmpSettings,
                   channels_last: bool, loss_fn: LossFn | None = None, label_smoothing: float = 0.0,
                   want_scores: bool = False) -> _BatchOut:
    """The per-batch step shared by training and evaluation: device transfer, forward under autocast, the
    objective (one CE per head, or a single CE, + ``loss_*`` terms; or ``loss_fn``), metrics inputs.

    Multi-view inputs (``[B, V, C, T, H, W]``, classification only) are folded into one forward of ``B * V``
    clips; the softmax of every output is averaged over views and the loss is the NLL of that mean. A batch
    whose samples have different numbers of views (``DataConfig.test_windows``) arrives padded by
    :func:`~stia_kit.train.metrics.collate_views` with ``"num_views"``: only the real views are forwarded and
    each sample averages its own.
    """
    batch = to_device(batch, device, channels_last=channels_last)
    inputs = _model_inputs(model, batch)
    target = batch.get("label")
    with autocast(device, amp.dtype):
        if loss_fn is not None:
            raw = model(inputs)
            loss, terms = _check_hook_result(loss_fn(raw, batch))
            parsed = _split_output(raw) if isinstance(raw, Mapping) and "logits" in raw else None
            if parsed is None or target is None:
                return _BatchOut(loss, terms, None, {}, None, _batch_len(inputs), None)
            logits = parsed.logits.float()
            streams = {h: s.float() for h, s in parsed.streams.items()}
            probs = _softmax_scores(logits, streams) if want_scores else None
            return _BatchOut(loss, terms, logits, streams, target, int(target.shape[0]), probs)
        if target is None:
            raise KeyError(f"batch has no 'label' (keys: {sorted(batch)}); unlabelled data needs a loss_fn")
        if _is_multiview(inputs):
            counts = batch.get(NUM_VIEWS_KEY)  # [B] views per sample when collate_views padded them
            flat, b, v = fold_views(inputs, counts)
            parsed = _split_output(model(flat))
            mean = {"logits": mean_view_probs(parsed.logits, b, v, counts),
                    **{h: mean_view_probs(s, b, v, counts) for h, s in parsed.streams.items()}}
            log_mean = {k: p.clamp_min(1e-12).log() for k, p in mean.items()}
            logits, streams = log_mean.pop("logits"), log_mean
            ce_terms = ({f"loss_ce_{h}": F.nll_loss(s, target) for h, s in streams.items()} if streams
                        else {"loss_ce": F.nll_loss(logits, target)})
            probs = mean if want_scores else None
        else:
            parsed = _split_output(model(inputs))
            logits = parsed.logits.float()
            streams = {h: s.float() for h, s in parsed.streams.items()}
            ce_terms = ({f"loss_ce_{h}": F.cross_entropy(s, target, label_smoothing=label_smoothing)
                         for h, s in streams.items()} if streams
                        else {"loss_ce": F.cross_entropy(logits, target, label_smoothing=label_smoothing)})
            probs = _softmax_scores(logits, streams) if want_scores else None
        objective = sum(ce_terms.values())
        if parsed.terms:
            objective = objective + sum(t.float() for t in parsed.terms.values())
    terms = {**ce_terms, **parsed.terms}
    return _BatchOut(objective, terms, logits, streams, target, int(target.shape[0]), probs)  # type: ignore[arg-type]


def _softmax_scores(logits: torch.Tensor, streams: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{"logits": softmax, head: softmax}`` (single view) for ``evaluate(return_scores=True)``."""
    return {"logits": logits.softmax(-1), **{h: s.softmax(-1) for h, s in streams.items()}}


def _check_hook_result(result: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping)):
        raise TypeError(f"loss_fn must return (loss, {{name: scalar tensor}}), got {type(result).__name__}")
    loss, terms = result
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_fn: the loss must be a scalar tensor, got {loss!r:.80}")
    for name, value in terms.items():
        if not isinstance(name, str) or name in _RECORD_KEYS or name.startswith("top1_"):
            raise ValueError(f"loss_fn term name {name!r} is reserved or not a str (reserved: {sorted(_RECORD_KEYS)}, "
                             "top1_*)")
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"loss_fn term {name!r} must be a scalar tensor, got {value!r:.80}")
    return loss.reshape(()), {k: v.reshape(()) for k, v in terms.items()}


def _new_accumulator(num_classes: int | None, out: _BatchOut | None) -> MetricAccumulator:
    """A labelled accumulator when the batch gives logits and targets (width from ``num_classes`` or the logits)."""
    if out is not None and out.logits is not None and out.target is not None:
        return MetricAccumulator(num_classes or out.logits.shape[1])
    if out is None and num_classes:
        return MetricAccumulator(num_classes)
    return MetricAccumulator(None)


def _accumulate(acc: MetricAccumulator, out: _BatchOut, loss_value: float, term_values: Mapping[str, float]) -> None:
    if acc.labelled:
        acc.update(out.logits, out.target, loss_value, term_values, heads=out.streams)
    else:
        acc.update(None, None, loss_value, term_values, n=out.n)


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass
class _Rows:
    """Per-sample rows kept by an evaluation (predictions, targets, scores), with their dataset indices."""

    indices: list[int] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    scores: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def add(self, out: _BatchOut, indices: Sequence[int]) -> None:
        self.indices.extend(int(i) for i in indices)
        if out.logits is not None and out.target is not None:
            self.predictions.extend(int(p) for p in out.logits.argmax(dim=1).cpu())
            self.targets.extend(int(t) for t in out.target.cpu())
        for key, probs in (out.probs or {}).items():
            self.scores.setdefault(key, []).append(probs.detach().float().cpu())

    def gathered(self, info: DistInfo, sort: bool) -> "_Rows":
        """All ranks' rows (collective), sorted by dataset index when ``sort``."""
        parts = all_gather_objects((self.indices, self.predictions, self.targets,
                                    {k: torch.cat(v) for k, v in self.scores.items()}), info)
        indices = [i for p in parts for i in p[0]]
        order = sorted(range(len(indices)), key=indices.__getitem__) if sort else list(range(len(indices)))
        keys = [k for p in parts for k in p[3]]
        scores = {k: torch.cat([p[3][k] for p in parts if k in p[3]]) for k in dict.fromkeys(keys)}
        predictions = [x for p in parts for x in p[1]]
        targets = [x for p in parts for x in p[2]]
        out = _Rows([indices[i] for i in order])
        if predictions:
            out.predictions = [predictions[i] for i in order]
            out.targets = [targets[i] for i in order]
        out.scores = {k: [v[torch.tensor(order, dtype=torch.long)]] for k, v in scores.items()}
        return out


@torch.no_grad()
def _run_eval(model: nn.Module, loader: DataLoader, *, device: torch.device, amp: AmpSettings,
              num_classes: int | None, info: DistInfo, channels_last: bool = False, loss_fn: LossFn | None = None,
              keep_rows: bool = False, want_scores: bool = False, row_order: Sequence[int] | None = None,
              bar: Progress | None = None, count_batches: bool = True,
              status: Callable[[int, int | None], str] | None = None
              ) -> tuple[dict[str, Any], list[str], _Rows | None]:
    """Evaluate ``model`` (eval mode, restored afterwards); returns (metrics, failed strings, rows).

    ``row_order``: the dataset index of every sample the loader yields, in order (our sharded loaders); without
    it rows take the batch's ``"index"`` (else their position). Rows are gathered over ranks and, with
    ``row_order``, sorted into dataset order. ``bar``: counts batches (``count_batches``) and shows
    ``status(batch number, number of batches)``.
    """
    was_training = model.training
    model.eval()
    acc = MetricAccumulator(num_classes) if num_classes and loss_fn is None else None
    failed: list[str] = []
    rows = _Rows() if keep_rows or want_scores else None
    position = 0
    n_batches = _len_or_none(loader)
    try:
        for i, batch in enumerate(loader):
            batch = _check_batch(batch, need_label=loss_fn is None)
            failed.extend(s for s in batch.get("failed", ()) if s)
            out = _forward_batch(model, batch, device=device, amp=amp, channels_last=channels_last, loss_fn=loss_fn,
                                 want_scores=want_scores)
            if acc is None:
                acc = _new_accumulator(num_classes, out)
            _accumulate(acc, out, float(out.loss), {k: float(v) for k, v in out.terms.items()})
            if rows is not None:
                if row_order is not None:
                    idx: Sequence[int] = row_order[position:position + out.n]
                elif "index" in batch:
                    idx = [int(x) for x in batch["index"]]
                else:
                    idx = range(position, position + out.n)
                rows.add(out, idx)
            position += out.n
            if bar is not None:
                bar.update(1 if count_batches else 0, status=status(i + 1, n_batches) if status else None)
    finally:
        model.train(was_training)
    if acc is None:
        if loss_fn is None:
            raise ValueError("evaluation data is empty and num_classes is unknown")
        acc = MetricAccumulator(None)
    acc.all_reduce(info)
    metrics = acc.compute()
    if rows is not None:
        rows = rows.gathered(info, sort=row_order is not None)
    return metrics, failed, rows


def evaluate(model: nn.Module, data: Dataset | DataLoader, *, batch_size: int = 8,
             device: torch.device | str | None = None, amp: str = "off", num_classes: int | None = None,
             class_names: Sequence[str] | None = None, num_workers: int = 0, return_predictions: bool = False,
             return_scores: bool = False, channels_last: bool = False, loss_fn: LossFn | None = None,
             distributed: bool = False, progress: bool = False) -> EvalResult:
    """Evaluate ``model`` on a dataset of sample dicts (or a ready DataLoader).

    The batch step is the training loop's (:func:`fit`): the same output contract, ``stream_logits`` heads
    (``EvalResult.head_top1`` and ``terms["loss_ce_<head>"]``) and ``loss_fn`` hook. Multi-view samples
    (``video`` of shape ``[V, C, T, H, W]``, batched ``[B, V, C, T, H, W]``) are scored by the mean softmax over
    views (:func:`~stia_kit.train.metrics.multiview_probs`); their loss is the NLL of that mean. V may vary per
    video (``DataConfig.test_windows``): the loader pads with :func:`~stia_kit.train.metrics.collate_views` and
    each video averages its own views (a caller's DataLoader needs ``collate_fn=collate_views``).

    ``return_scores``: ``EvalResult.scores`` holds the per-sample softmax class scores ``[N, C]`` (averaged over
    views) of ``"logits"`` and of every stream head, for late or learned fusion; ``EvalResult.indices`` gives the
    dataset index of every row, and ``targets`` the labels in the same order. For a dataset, rows are in dataset
    order (``indices == range(N)``); for a caller's DataLoader they are in its order, indexed by each sample's
    ``"index"``. ``return_predictions`` adds the argmax per row in the same order.

    ``distributed=True`` inside a process group (initialised by the caller, or from ``torchrun``'s environment,
    see :func:`~stia_kit.train.device.maybe_init_distributed`): the dataset is sharded over the ranks, counts
    are all-reduced and rows gathered, so every rank gets the full result; call it on every rank. Otherwise
    the whole dataset is evaluated in this process.

    ``device`` defaults to the model's device; ``num_classes``/``class_names`` default to
    ``len(dataset.classes)``/``dataset.classes`` when the dataset has them, else the logits width.
    The model is moved to ``device`` in place and evaluated in eval mode (its train/eval mode is restored).
    """
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    dataset = data.dataset if isinstance(data, DataLoader) else data
    classes = getattr(dataset, "classes", None)
    if class_names is None and classes is not None:
        class_names = list(classes)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    info = maybe_init_distributed() if distributed else DistInfo(False, 0, 1, 0)
    try:
        if isinstance(data, DataLoader):
            loader, row_order = data, None
        else:
            loader, sampler = _eval_loader(data, batch_size, num_workers, device.type == "cuda", info)
            row_order = sampler.inner.indices  # type: ignore[attr-defined]
        bar = Progress(_len_or_none(loader), "eval", unit="batch", enabled=progress and info.is_main)
        with bar:
            metrics, failed, rows = _run_eval(
                model, loader, device=device, amp=resolve_amp(amp, device), num_classes=num_classes, info=info,
                channels_last=channels_last, loss_fn=loss_fn, keep_rows=return_predictions,
                want_scores=return_scores, row_order=row_order, bar=bar)
            failed = _unique([s for rank_failed in all_gather_objects(failed, info) for s in rank_failed])
            bar.close(f"eval: {_metrics_summary(metrics)} on {metrics['num_samples']} samples in "
                      f"{bar.elapsed:.1f} s")
    finally:
        cleanup_distributed(info)
    nan = float("nan")
    return EvalResult(
        top1=metrics.get("top1", nan), top5=metrics.get("top5", nan), loss=metrics["loss"],
        per_class=metrics.get("per_class", []),
        confusion=metrics.get("confusion", torch.zeros(0, 0, dtype=torch.int64)),
        num_samples=metrics["num_samples"], class_names=list(class_names) if class_names is not None else None,
        predictions=rows.predictions if rows is not None and return_predictions else None,
        targets=rows.targets if rows is not None else None,
        terms={k: v for k, v in metrics.items() if _is_term(k)}, quarantined=failed,
        head_top1={k[len("top1_"):]: v for k, v in metrics.items() if k.startswith("top1_")},
        scores={k: v[0] for k, v in rows.scores.items()} if rows is not None and return_scores else None,
        indices=rows.indices if rows is not None else None,
    )


def load_best(model: nn.Module, result: FitResult | str | os.PathLike[str]) -> nn.Module:
    """Load the best validation epoch's weights (``result.best_checkpoint``, or a checkpoint path) into ``model``.

    The best epoch is chosen on the validation set given to :func:`fit`, which therefore must not be the test
    split (report test accuracy of these weights on data the selection never saw). Returns ``model``.
    """
    path = result.best_checkpoint if isinstance(result, FitResult) else Path(result)
    if path is None:
        raise ValueError("load_best: this fit has no best checkpoint (no validation set, or cfg.out_dir=None: "
                         "use fit(..., restore_best=True) then)")
    unwrap(model).load_state_dict(load_checkpoint(path, map_location="cpu")["model"])
    return model


# ---------------------------------------------------------------------------------------------- fit helpers
def _len_or_none(loader: DataLoader) -> int | None:
    try:
        return len(loader)
    except TypeError:  # an IterableDataset without __len__
        return None


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _is_term(key: str) -> bool:
    """A logged term of a metrics dict (everything but the fixed record keys and the head accuracies)."""
    return key not in _RECORD_KEYS and not key.startswith("top1_")


def _jsonable(value: Any) -> Any:
    """JSON-safe copy: nan/inf -> None, tensors -> lists, tuples -> lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(_jsonable(record), sort_keys=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _truncate_jsonl(path: Path, keep_before_epoch: int) -> None:
    """Keep only lines of epochs ``< keep_before_epoch`` (drops lines of an interrupted epoch)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("epoch", math.inf) < keep_before_epoch:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a torn final line from a crash
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


def _metrics_summary(record: Mapping[str, Any]) -> str:
    """``loss 0.1234, top1 0.5000, top1_rgb 0.4000`` (accuracies only when present)."""
    parts = [f"loss {record['loss']:.4f}"]
    parts += [f"{k} {record[k]:.4f}" for k in record if k == "top1" or k.startswith("top1_")]
    return ", ".join(parts)


def _epoch_summary(record: Mapping[str, Any]) -> str:
    parts = [f"epoch {record['epoch']} {record['split']}: {_metrics_summary(record)}"]
    if "top5" in record:
        parts.append(f"top5 {record['top5']:.4f}")
    if "lr" in record:
        parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['time']:.1f}s")
    return ", ".join(parts)


def _report_quarantine(record: dict[str, Any], cfg: TrainConfig, info: DistInfo) -> None:
    """Log the epoch's failed samples; raise when their fraction exceeds ``max_bad_fraction``."""
    n_failed, n = record["num_failed"], record["num_samples"]
    if n_failed and info.is_main:
        shown = record["quarantined"]
        logger.warning("epoch %d %s: %d of %d sample(s) were substituted because files failed:\n  %s",
                       record["epoch"], record["split"], n_failed, n, "\n  ".join(shown))
    if n and n_failed / n > cfg.max_bad_fraction:
        raise TooManyFailedSamplesError(
            f"epoch {record['epoch']} {record['split']}: {n_failed}/{n} samples "
            f"({n_failed / n:.1%}) needed substitution, more than max_bad_fraction={cfg.max_bad_fraction:.1%}. "
            f"Failed files: {record['quarantined'][:10]}"
            + (" ..." if len(record["quarantined"]) > 10 else "")
        )


@dataclass
class _Run:
    """Mutable state of one fit() call."""

    cfg: TrainConfig
    model: nn.Module  # possibly DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: AmpSettings
    info: DistInfo
    iters_per_epoch: int
    loss_fn: LossFn | None = None
    bar: Progress | None = None
    global_step: int = 0
    best: dict[str, Any] | None = None  # {"epoch", "metric", "value"} of the best validation epoch so far
    best_state: dict[str, torch.Tensor] | None = None  # in-memory best weights (restore_best without out_dir)
    num_classes: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    last_summary: str = ""  # the last completed epoch's one-line summary (shown in the progress status)

    def status(self, text: str) -> str:
        return f"{text} | {self.last_summary}" if self.last_summary else text


def _train_one_epoch(run: _Run, loader: DataLoader, epoch: int) -> dict[str, Any]:
    cfg, device, model = run.cfg, run.device, run.model
    model.train()
    acc: MetricAccumulator | None = None
    failed: list[str] = []
    steps: dict[str, list[float]] | None = {"loss": []} if cfg.record_steps else None
    lr = run.optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    for it, batch in enumerate(loader):
        batch = _check_batch(batch, need_label=run.loss_fn is None)
        failed.extend(s for s in batch.get("failed", ()) if s)
        out = _forward_batch(model, batch, device=device, amp=run.amp, channels_last=cfg.channels_last,
                             loss_fn=run.loss_fn, label_smoothing=cfg.label_smoothing)
        loss_value = float(out.loss.detach())
        term_values = {k: float(v.detach()) for k, v in out.terms.items()}
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(epoch, it, loss_value, term_values)
        lr = run.optimizer.param_groups[0]["lr"]
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(out.loss).backward()
        if cfg.clip_grad_norm is not None:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        run.global_step += 1
        if acc is None:
            acc = _new_accumulator(run.num_classes, out)
            run.num_classes = run.num_classes or acc.num_classes
        _accumulate(acc, out, loss_value, term_values)
        if steps is not None:
            steps["loss"].append(loss_value)
            for k, v in term_values.items():
                steps.setdefault(k, []).append(v)
        if run.bar is not None:
            status = None
            if (it + 1) % cfg.log_every == 0:
                status = run.status(f"epoch {epoch + 1}/{cfg.epochs}: loss {acc.loss_sum / max(acc.n, 1):.4f}, "
                                    f"lr {lr:.3g}")
            run.bar.update(1, status=status)
    if acc is None:
        raise ValueError(f"epoch {epoch}: the training loader produced no batches "
                         f"(dataset of {len(loader.dataset)} samples, batch_size={cfg.batch_size}, "  # type: ignore[arg-type]
                         f"drop_last={cfg.drop_last})")
    broadcast_buffers(unwrap(model), run.info)  # rank 0's BatchNorm statistics everywhere before validation
    acc.all_reduce(run.info)
    failed = _unique([s for rank_failed in all_gather_objects(failed, run.info) for s in rank_failed])
    metrics = acc.compute()
    record: dict[str, Any] = {"epoch": epoch, "split": "train", "step": run.global_step}
    record.update({k: v for k, v in metrics.items() if k not in ("confusion", "per_class")})
    record.update({"lr": lr, "time": time.perf_counter() - start, "num_failed": len(failed), "quarantined": failed})
    if steps is not None:
        record["steps"] = steps
    return record


def _validate(run: _Run, loader: DataLoader, epoch: int) -> dict[str, Any]:
    start = time.perf_counter()
    metrics, failed, _ = _run_eval(unwrap(run.model), loader, device=run.device, amp=run.amp,
                                   num_classes=run.num_classes, info=run.info, channels_last=run.cfg.channels_last,
                                   loss_fn=run.loss_fn, bar=run.bar, count_batches=False,
                                   status=lambda i, n: run.status(f"epoch {epoch + 1}/{run.cfg.epochs}: "
                                                                  f"validating {i}/{n}"))
    failed = _unique([s for rank_failed in all_gather_objects(failed, run.info) for s in rank_failed])
    record: dict[str, Any] = {"epoch": epoch, "split": "val", "step": run.global_step}
    record.update({k: v for k, v in metrics.items() if k not in ("confusion", "predictions")})
    record.update({"lr": run.optimizer.param_groups[0]["lr"], "time": time.perf_counter() - start,
                   "num_failed": len(failed), "quarantined": failed})
    return record


def _improved(run: _Run, val_rec: Mapping[str, Any] | None) -> bool:
    """Update ``run.best`` from a validation record: top-1 (higher) when labelled, else the loss (lower)."""
    if val_rec is None:
        return False
    metric = "top1" if "top1" in val_rec else "loss"
    value = float(val_rec[metric])
    if not math.isfinite(value):
        return False
    best = run.best
    if best is not None and best["metric"] == metric and (
            value <= best["value"] if metric == "top1" else value >= best["value"]):
        return False
    run.best = {"epoch": int(val_rec["epoch"]), "metric": metric, "value": value}
    return True


def _checkpoint_state(run: _Run, epoch: int) -> dict[str, Any]:
    """Everything needed to resume after ``epoch`` (collective: call on every rank)."""
    rng_per_rank = all_gather_objects(capture_rng_state(), run.info)
    best = run.best
    return {
        "format": CHECKPOINT_FORMAT,
        "model": unwrap(run.model).state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "global_step": run.global_step,
        "best_top1": best["value"] if best is not None and best["metric"] == "top1" else None,
        "best": dict(best) if best is not None else None,
        "num_classes": run.num_classes,
        "iters_per_epoch": run.iters_per_epoch,
        "history": run.history,
        "rng": rng_per_rank,
        "config": run.cfg.to_dict(),
    }


def _restore(run: _Run, state: Mapping[str, Any], path: Path) -> int:
    """Load a checkpoint into ``run``; returns the first epoch still to train."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {state.get('format')!r} "
                         f"(expected {CHECKPOINT_FORMAT}); was it written by stia_kit.train.fit?")
    saved_cfg = state.get("config", {})
    changed = sorted(k for k, v in run.cfg.to_dict().items()
                     if k not in _RESUME_FREE_FIELDS and k in saved_cfg and saved_cfg[k] != v)
    if changed and run.info.is_main:
        logger.warning("resuming %s with a different config for %s (saved: %s)", path, changed,
                       {k: saved_cfg[k] for k in changed})
    if state.get("iters_per_epoch") != run.iters_per_epoch and run.info.is_main:
        logger.warning("resuming %s: iterations per epoch changed from %s to %d; the lr schedule will shift",
                       path, state.get("iters_per_epoch"), run.iters_per_epoch)
    unwrap(run.model).load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.global_step = int(state["global_step"])
    if state.get("best") is not None:
        run.best = dict(state["best"])
    elif state.get("best_top1") is not None:  # written before "best" existed
        run.best = {"epoch": None, "metric": "top1", "value": float(state["best_top1"])}
    run.num_classes = state.get("num_classes")
    run.history = list(state.get("history", []))
    rng = state["rng"]
    if len(rng) == run.info.world_size:
        restore_rng_state(rng[run.info.rank])
    else:
        logger.warning("resuming %s: saved by %d process(es), now %d; RNG streams are reseeded instead of restored",
                       path, len(rng), run.info.world_size)
        seed_everything(run.cfg.seed + run.info.rank + 1_000_003 * (int(state["epoch"]) + 1))
    return int(state["epoch"]) + 1


def _resume_path(resume: bool | str | os.PathLike[str], out_dir: Path | None) -> Path | None:
    if isinstance(resume, bool):
        if resume and out_dir is not None and (out_dir / "last.pt").is_file():
            return out_dir / "last.pt"
        return None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"fit(resume={str(resume)!r}): no such checkpoint file")
    return path


# ---------------------------------------------------------------------------------------------- fit
def fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None = None, cfg: TrainConfig | None = None, *,
        resume: bool | str | os.PathLike[str] = True, callbacks: Sequence[Callback] | None = None,
        progress: bool = True, loss_fn: LossFn | None = None, restore_best: bool = False) -> FitResult:
    """Train ``model`` on ``train_set`` (datasets of sample dicts, see DESIGN.md) according to ``cfg``.

    Every iteration (one helper, shared with :func:`evaluate`): forward (under autocast when AMP is on);
    loss = cross-entropy (with label smoothing) — one per head, summed, when the model returns
    ``"stream_logits"`` — + every ``loss_*`` term of a dict output, or ``loss_fn(output, batch)`` when given
    (see the module docstring); non-finite check (raises :class:`NonFiniteLossError`); backward through a
    GradScaler (pass-through unless fp16), optional gradient clipping, optimizer and per-iteration scheduler
    step. Every epoch: train metrics, validation (every ``eval_every`` epochs and after the last), quarantine
    report (raises :class:`TooManyFailedSamplesError` above ``max_bad_fraction``), ``metrics.jsonl`` lines,
    ``last.pt`` (+ ``best.pt`` on a new best validation score), then ``callbacks``.

    ``metrics.jsonl`` lines hold: ``epoch`` (0-based), ``split`` ("train"/"val"), ``step`` (global
    optimizer steps so far), ``loss`` (the objective, per-sample mean), ``top1``, ``top5``, ``top1_<head>``
    for every stream head, every logged term (``loss_ce`` or ``loss_ce_<head>`` per head, every model
    ``loss_*`` term, or the ``loss_fn`` terms), ``num_samples``, ``lr`` (train: lr of the epoch's last step),
    ``time`` (seconds), ``num_failed`` and ``quarantined`` (the unique non-empty ``failed`` strings); val
    lines also have ``per_class``; with ``cfg.record_steps`` train lines have ``steps`` ({"loss": [...],
    term: [...]}, one value per iteration, rank 0's batches). Unlabelled data (``loss_fn`` without labels)
    gives no accuracy keys. Non-finite numbers are written as null.

    Best epoch: the validation epoch with the highest top-1 (with labels) or the lowest loss (without); its
    weights are ``best.pt``; ``FitResult.best_epoch`` / ``best_value`` name it. ``restore_best=True`` loads
    those weights into ``model`` before returning (from ``best.pt``, or from an in-memory copy when
    ``cfg.out_dir`` is None); :func:`load_best` does the same later. ``val_set`` drives that choice, so it must
    not be the test split: hold a validation split out of the training data and test on data it never chose.

    ``resume``: True continues from ``out_dir/last.pt`` when it exists (a fresh run otherwise, which
    truncates an existing ``metrics.jsonl``); False always starts fresh; a path resumes from that file.
    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) or an initialised process group the model is wrapped
    in DistributedDataParallel and data is sharded; only rank 0 logs, shows progress and writes files.
    Training shards come from ``DistributedSampler`` (which pads with up to ``world_size - 1`` repeated
    samples, counted in the train metrics); validation shards are exact. A non-finite loss is detected per
    rank: in a multi-process run the other ranks then wait in their next collective until the launcher tears
    the job down.

    ``progress``: one updating line for the whole call (notebook output or terminal bar, see
    :mod:`stia_kit.progress`) with the current epoch and the last epoch's summary; each epoch's summary also
    goes to the ``stia_kit.train`` logger (INFO); a summary line is left at the end.

    ``dataset.set_epoch(epoch)`` is called (when defined) at the start of every epoch, in the DataLoader
    workers too. The model is moved to the configured device (and memory format) in place.
    """
    if cfg is None:
        cfg = TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"fit: cfg must be a TrainConfig, got {type(cfg).__name__}")
    info = maybe_init_distributed()
    try:
        return _fit(model, train_set, val_set, cfg, info, resume, list(callbacks or ()), progress, loss_fn,
                    restore_best)
    finally:
        cleanup_distributed(info)


def _fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None, cfg: TrainConfig, info: DistInfo,
         resume: bool | str | os.PathLike[str], callbacks: list[Callback], progress: bool, loss_fn: LossFn | None,
         restore_best: bool) -> FitResult:
    device = device_for(info, cfg.device)
    configure_determinism(cfg.deterministic)
    amp = resolve_amp(cfg.amp, device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    metrics_path = out_dir / "metrics.jsonl" if out_dir is not None else None
    if out_dir is not None and info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    model.to(device)
    if cfg.channels_last:
        to_channels_last(model)
    optimizer = build_optimizer(model, cfg)
    train_loader, train_sampler = _train_loader(train_set, cfg, device, info)
    if len(train_loader) == 0:
        raise ValueError(f"fit: empty training loader ({len(train_set)} samples, batch_size={cfg.batch_size}, "  # type: ignore[arg-type]
                         f"drop_last={cfg.drop_last})")
    scheduler = build_scheduler(optimizer, cfg, len(train_loader))
    run = _Run(cfg, model, optimizer, scheduler, make_grad_scaler(device, amp), device, amp, info,
               iters_per_epoch=len(train_loader), loss_fn=loss_fn, num_classes=_dataset_num_classes(train_set))

    resumed_from = _resume_path(resume, out_dir)
    start_epoch = _start_or_resume(run, resumed_from, metrics_path)
    run.model = wrap_ddp(model, device, info)

    val_loader = val_sampler = None
    if val_set is not None:
        val_loader, val_sampler = _eval_loader(val_set, cfg.eval_batch_size or cfg.batch_size, cfg.num_workers,
                                               _pin(cfg.pin_memory, device), info, cfg.seed)
    end_epoch = cfg.epochs if cfg.max_epochs_this_run is None else min(cfg.epochs, start_epoch + cfg.max_epochs_this_run)
    stopped_by_callback = False
    epoch = start_epoch - 1
    name = type(unwrap(model)).__name__
    run.bar = Progress(max(0, end_epoch - start_epoch) * run.iters_per_epoch, f"fit {name}",
                       enabled=progress and info.is_main)
    with run.bar:
        for epoch in range(start_epoch, end_epoch):
            train_sampler.set_epoch(epoch)
            if cfg.num_workers > 0 and hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)  # the main-process copy; workers' copies are told by the loader wrapper
            train_rec = _train_one_epoch(run, train_loader, epoch)
            _log_record(train_rec, metrics_path, info)
            _report_quarantine(train_rec, cfg, info)
            val_rec = None
            if val_loader is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                val_sampler.set_epoch(epoch)  # type: ignore[union-attr]
                val_rec = _validate(run, val_loader, epoch)
                _log_record(val_rec, metrics_path, info)
                _report_quarantine(val_rec, cfg, info)
            improved = _improved(run, val_rec)
            if improved and restore_best and out_dir is None:
                run.best_state = {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}
            entry = {"epoch": epoch, "train": train_rec, "val": val_rec}
            run.history.append(entry)
            run.last_summary = _entry_summary(entry, cfg.epochs)
            run.bar.set_status(run.last_summary)
            if out_dir is not None:
                _save_epoch_checkpoints(run, epoch, out_dir, improved)
            barrier(info)
            if any([bool(cb(entry)) for cb in callbacks]):
                stopped_by_callback = True
                break
        completed = epoch + 1  # == start_epoch when nothing was left to train
        if stopped_by_callback and info.is_main:
            logger.info("training stopped by a callback after epoch %d", epoch)
        restored = _restore_best(run, out_dir) if restore_best else False
        run.bar.close(_fit_summary(name, run, start_epoch, completed, restored))
    best = run.best or {}
    return FitResult(
        history=run.history, epochs_completed=completed, finished=completed >= cfg.epochs,
        best_top1=best.get("value") if best.get("metric") == "top1" else None, out_dir=out_dir,
        metrics_path=metrics_path, last_checkpoint=_existing(out_dir, "last.pt"),
        best_checkpoint=_existing(out_dir, "best.pt"), resumed_from=resumed_from, best_epoch=best.get("epoch"),
        best_metric=best.get("metric"), best_value=best.get("value"), restored_best=restored,
    )


def _restore_best(run: _Run, out_dir: Path | None) -> bool:
    """Load the best validation weights into the model (``best.pt`` or the in-memory copy); False if none."""
    path = _existing(out_dir, "best.pt")
    if path is not None:
        load_best(run.model, path)
        return True
    if run.best_state is not None:
        unwrap(run.model).load_state_dict(run.best_state)
        return True
    if run.info.is_main:
        logger.warning("fit(restore_best=True): no best weights to restore (no validation epoch ran in a run "
                       "without out_dir); the model keeps its last weights")
    return False


def _entry_summary(entry: Mapping[str, Any], epochs: int) -> str:
    """``epoch 3/10: train loss .., top1 ..; val loss .., top1 ..`` (1-based epoch for people)."""
    text = f"epoch {entry['epoch'] + 1}/{epochs}: train {_metrics_summary(entry['train'])}"
    if entry.get("val"):
        text += f"; val {_metrics_summary(entry['val'])}"
    return text


def _fit_summary(name: str, run: _Run, start_epoch: int, completed: int, restored: bool) -> str:
    text = f"fit {name}: {completed - start_epoch} epoch(s) in {run.bar.elapsed:.1f} s"  # type: ignore[union-attr]
    text += f" ({completed}/{run.cfg.epochs} done)"
    if run.last_summary:
        text += f" | {run.last_summary}"
    if run.best is not None and run.best.get("epoch") is not None:
        text += f" | best val {run.best['metric']} {run.best['value']:.4f} at epoch {run.best['epoch'] + 1}"
        text += " (restored)" if restored else ""
    return text


def _start_or_resume(run: _Run, resumed_from: Path | None, metrics_path: Path | None) -> int:
    """Restore ``resumed_from`` (or seed a fresh run); align ``metrics.jsonl``; return the first epoch to train."""
    info = run.info
    if resumed_from is None:
        seed_everything(run.cfg.seed + info.rank)
        if metrics_path is not None and info.is_main and metrics_path.exists():
            logger.warning("fresh run: truncating existing %s", metrics_path)
            metrics_path.write_text("", encoding="utf-8")
        return 0
    start_epoch = _restore(run, load_checkpoint(resumed_from, map_location="cpu"), resumed_from)
    if metrics_path is not None and info.is_main:
        _truncate_jsonl(metrics_path, start_epoch)
    if info.is_main:
        logger.info("resumed from %s at epoch %d", resumed_from, start_epoch)
    return start_epoch


def _save_epoch_checkpoints(run: _Run, epoch: int, out_dir: Path, improved: bool) -> None:
    """``last.pt`` (and ``best.pt`` when the validation score improved); collective, written by rank 0 only."""
    state = _checkpoint_state(run, epoch)
    if run.info.is_main:
        if improved:
            save_checkpoint(out_dir / "best.pt", state)
        save_checkpoint(out_dir / "last.pt", state)


def _existing(out_dir: Path | None, name: str) -> Path | None:
    return out_dir / name if out_dir is not None and (out_dir / name).exists() else None


def _dataset_num_classes(dataset: Dataset) -> int | None:
    classes = getattr(dataset, "classes", None)
    return len(classes) if classes is not None else None


def _log_record(record: dict[str, Any], metrics_path: Path | None, info: DistInfo) -> None:
    """Rank 0: the epoch summary to the logger (INFO) and the record to ``metrics.jsonl``."""
    if not info.is_main:
        return
    logger.info(_epoch_summary(record))
    if metrics_path is not None:
        _append_jsonl(metrics_path, record)
