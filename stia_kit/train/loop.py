"""``fit`` (train + validate + checkpoint + resume) and ``evaluate``.

Run directory layout (``TrainConfig.out_dir``; nothing is written when it is None), rank 0 only:

* ``metrics.jsonl`` — one JSON object per line, one line per (epoch, split); see :func:`fit`.
* ``last.pt`` — written atomically after every epoch; ``fit(..., resume=True)`` continues from it.
* ``best.pt`` — the same content, written whenever validation top-1 improves.

Exact resume: the data order is a function of ``(seed, epoch)`` only (a ``DistributedSampler`` is used
even in single-process runs; its ``set_epoch`` reseeds the shuffle), DataLoader workers reseed their
python/numpy/torch RNGs from ``(seed, rank, epoch, worker id)`` at the first sample of every epoch
(this also works with persistent workers), and the main-process RNG states are stored in the
checkpoint. On CPU with ``deterministic=True`` a run interrupted after epoch k and resumed therefore
ends with bit-identical weights and metrics to an uninterrupted run.
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
from tqdm.auto import tqdm

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .device import (AmpSettings, DistInfo, all_gather_objects, autocast, barrier, cleanup_distributed,
                     device_for, make_grad_scaler, maybe_init_distributed, resolve_amp, to_device, unwrap,
                     wrap_ddp)
from .metrics import MetricAccumulator, multiview_probs
from .optim import build_optimizer, build_scheduler

logger = logging.getLogger("stia_kit.train")

Callback = Callable[[dict[str, Any]], "bool | None"]
"""Called on every rank after each epoch (after checkpointing) with that epoch's history entry.
Return True to stop training after this epoch; raising (e.g. KeyboardInterrupt) aborts the run."""

CHECKPOINT_FORMAT = 1
# Config fields that may legitimately change between a run and its resumption.
_RESUME_FREE_FIELDS = frozenset({"epochs", "max_epochs_this_run", "out_dir", "num_workers", "pin_memory",
                                 "log_every", "device", "eval_every", "eval_batch_size"})


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
    """Outcome of :func:`evaluate` (accuracies in [0, 1])."""

    top1: float  # top-1 accuracy
    top5: float  # top-5 accuracy (k clipped to the number of classes)
    loss: float  # mean cross-entropy (+ model loss terms) per sample
    per_class: list[float]  # accuracy (recall) of every class, nan for classes without samples
    confusion: torch.Tensor  # [C, C] int64, rows = true class, columns = predicted
    num_samples: int  # samples evaluated
    class_names: list[str] | None = None  # names for per_class / confusion rows, if known
    predictions: list[int] | None = None  # argmax per sample in loader order (if requested)
    targets: list[int] | None = None  # true labels in the same order (if predictions requested)
    terms: dict[str, float] = field(default_factory=dict)  # mean of each loss term ("loss_ce", "loss_*")
    quarantined: list[str] = field(default_factory=list)  # non-empty "failed" strings seen


@dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    history: list[dict[str, Any]]  # one {"epoch", "train", "val"} entry per completed epoch (incl. resumed ones)
    epochs_completed: int  # epochs done in total (== cfg.epochs when finished)
    finished: bool  # all cfg.epochs done (False after max_epochs_this_run or a callback stop)
    best_top1: float | None  # best validation top-1 so far (None without a validation set)
    out_dir: Path | None  # run directory (None when cfg.out_dir is None)
    metrics_path: Path | None  # out_dir/metrics.jsonl
    last_checkpoint: Path | None  # out_dir/last.pt
    best_checkpoint: Path | None  # out_dir/best.pt (None until a validation epoch ran)
    resumed_from: Path | None  # checkpoint this call resumed from


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


def _worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy/python from the per-worker torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


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
    """Dataset wrapper fed by :class:`_EpochTaggedSampler`. On the first sample of a new epoch it calls
    ``dataset.set_epoch(epoch)`` (if ``forward_set_epoch``) and, inside a DataLoader worker, reseeds that
    worker's RNGs from ``(seed, rank, epoch, worker id, stream)`` — so worker randomness depends on the
    epoch only, also with persistent workers and after a resume."""

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


def _train_loader(dataset: Dataset, cfg: TrainConfig, device: torch.device,
                  info: DistInfo) -> tuple[DataLoader, _EpochTaggedSampler]:
    inner = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                               seed=cfg.seed, drop_last=False)
    sampler = _EpochTaggedSampler(inner)
    loader = DataLoader(
        _EpochSeededDataset(dataset, cfg.seed, info.rank, stream=0, forward_set_epoch=True), batch_size=cfg.batch_size, sampler=sampler,
        num_workers=cfg.num_workers, pin_memory=_pin(cfg.pin_memory, device), drop_last=cfg.drop_last,
        worker_init_fn=_worker_init, generator=torch.Generator().manual_seed(cfg.seed),
        persistent_workers=cfg.num_workers > 0,
    )
    return loader, sampler


def _eval_loader(dataset: Dataset, batch_size: int, num_workers: int, pin_memory: bool,
                 info: DistInfo, seed: int = 0) -> tuple[DataLoader, _EpochTaggedSampler]:
    """Ordered, unpadded, sharded loader; workers reseeded per epoch like the training loader."""
    sampler = _EpochTaggedSampler(_ShardSampler(len(dataset), info))  # type: ignore[arg-type]
    loader = DataLoader(_EpochSeededDataset(dataset, seed, info.rank, stream=1, forward_set_epoch=False),
                        batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                        worker_init_fn=_worker_init, generator=torch.Generator().manual_seed(seed),
                        persistent_workers=num_workers > 0)
    return loader, sampler


# ---------------------------------------------------------------------------------------------- forward/loss
def _check_batch(batch: Any) -> Mapping[str, Any]:
    if not isinstance(batch, Mapping) or "label" not in batch:
        raise TypeError("datasets must return sample dicts with at least 'video' (or the model's input_keys) and "
                        f"'label' (see DESIGN.md); got a batch of type {type(batch).__name__}"
                        + (f" with keys {sorted(batch)}" if isinstance(batch, Mapping) else ""))
    return batch


def _model_inputs(model: nn.Module, batch: Mapping[str, Any]) -> Any:
    """``batch["video"]``, or ``{key: batch[key]}`` for models declaring ``input_keys``."""
    keys = getattr(unwrap(model), "input_keys", None)
    if keys:
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(f"model declares input_keys={tuple(keys)} but the batch lacks {missing}")
        return {k: batch[k] for k in keys}
    if "video" not in batch:
        raise KeyError(f"batch has no 'video' key (keys: {sorted(batch)}) and the model declares no input_keys")
    return batch["video"]


def _split_output(out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(logits, {"loss_*": scalar})`` from a model output (a tensor or a dict with ``"logits"``)."""
    if isinstance(out, torch.Tensor):
        return out, {}
    if isinstance(out, Mapping):
        if "logits" not in out:
            raise KeyError(f"model returned a dict without 'logits' (keys: {sorted(out)})")
        terms = {k: v for k, v in out.items() if k.startswith("loss_")}
        for name, value in terms.items():
            if name == "loss_ce":
                raise ValueError("model loss term 'loss_ce' clashes with the loop's cross-entropy; rename it")
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError(f"model loss term {name!r} must be a scalar tensor, got {value!r:.80}")
        return out["logits"], {k: v.reshape(()) for k, v in terms.items()}
    raise TypeError(f"model must return logits or a dict with 'logits', got {type(out).__name__}")


def _is_multiview(inputs: Any) -> bool:
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    return isinstance(first, torch.Tensor) and first.ndim == 6


# ---------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def _run_eval(model: nn.Module, loader: DataLoader, *, device: torch.device, amp: AmpSettings,
              num_classes: int | None, info: DistInfo, channels_last: bool = False,
              keep_predictions: bool = False, progress: bool = False,
              desc: str = "eval") -> tuple[dict[str, Any], list[str], list[int]]:
    """Evaluate ``model`` (eval mode, restored afterwards); returns (metrics, failed strings, targets)."""
    was_training = model.training
    model.eval()
    acc = MetricAccumulator(num_classes, keep_predictions=keep_predictions) if num_classes else None
    failed: list[str] = []
    targets: list[int] = []
    try:
        for batch in tqdm(loader, desc=desc, disable=not (progress and info.is_main), leave=False,
                          dynamic_ncols=True):
            batch = _check_batch(batch)
            failed.extend(s for s in batch.get("failed", ()) if s)
            batch = to_device(batch, device, channels_last=channels_last)
            inputs, target = _model_inputs(model, batch), batch["label"]
            with autocast(device, amp.dtype):
                if _is_multiview(inputs):
                    probs = multiview_probs(model, inputs)
                    logits, terms = probs.clamp_min(1e-12).log(), {}
                    ce = F.nll_loss(logits, target)
                else:
                    logits, terms = _split_output(model(inputs))
                    logits = logits.float()
                    ce = F.cross_entropy(logits, target)
            if acc is None:
                acc = MetricAccumulator(logits.shape[1], keep_predictions=keep_predictions)
            total = ce + sum(terms.values()) if terms else ce
            acc.update(logits, target, float(total),
                       {"loss_ce": float(ce), **{k: float(v) for k, v in terms.items()}})
            if keep_predictions:
                targets.extend(int(t) for t in target.cpu())
    finally:
        model.train(was_training)
    if acc is None:
        raise ValueError("evaluation data is empty and num_classes is unknown")
    acc.all_reduce(info)
    metrics = acc.compute()
    metrics["predictions"] = acc.predictions if keep_predictions else None
    return metrics, failed, targets


def evaluate(model: nn.Module, data: Dataset | DataLoader, *, batch_size: int = 8,
             device: torch.device | str | None = None, amp: str = "off", num_classes: int | None = None,
             class_names: Sequence[str] | None = None, num_workers: int = 0, return_predictions: bool = False,
             channels_last: bool = False, progress: bool = False) -> EvalResult:
    """Evaluate ``model`` on a dataset of sample dicts (or a ready DataLoader) in a single process.

    Multi-view samples (``video`` of shape ``[V, C, T, H, W]``, batched ``[B, V, C, T, H, W]``) are scored by
    the mean softmax over views (:func:`~stia_kit.train.metrics.multiview_probs`); their loss is the NLL of
    that mean. ``device`` defaults to the model's device; ``num_classes``/``class_names`` default to
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
    info = DistInfo(False, 0, 1, 0)
    loader = data if isinstance(data, DataLoader) else _eval_loader(
        data, batch_size, num_workers, device.type == "cuda", info)[0]
    metrics, failed, targets = _run_eval(model, loader, device=device, amp=resolve_amp(amp, device),
                                         num_classes=num_classes, info=info, channels_last=channels_last,
                                         keep_predictions=return_predictions, progress=progress)
    return EvalResult(
        top1=metrics["top1"], top5=metrics["top5"], loss=metrics["loss"], per_class=metrics["per_class"],
        confusion=metrics["confusion"], num_samples=metrics["num_samples"],
        class_names=list(class_names) if class_names is not None else None,
        predictions=metrics["predictions"], targets=targets if return_predictions else None,
        terms={k: v for k, v in metrics.items() if k.startswith("loss_")}, quarantined=_unique(failed),
    )


# ---------------------------------------------------------------------------------------------- fit helpers
def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


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


def _epoch_summary(record: Mapping[str, Any]) -> str:
    parts = [f"epoch {record['epoch']} {record['split']}: loss {record['loss']:.4f}",
             f"top1 {record['top1']:.4f}", f"top5 {record['top5']:.4f}"]
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
    global_step: int = 0
    best_top1: float | None = None
    num_classes: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _train_one_epoch(run: _Run, loader: DataLoader, epoch: int, progress: bool) -> dict[str, Any]:
    cfg, device, model = run.cfg, run.device, run.model
    model.train()
    acc: MetricAccumulator | None = None
    failed: list[str] = []
    lr = run.optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"train {epoch + 1}/{cfg.epochs}", disable=not (progress and run.info.is_main),
               leave=False, dynamic_ncols=True)
    for it, batch in enumerate(bar):
        batch = _check_batch(batch)
        failed.extend(s for s in batch.get("failed", ()) if s)
        batch = to_device(batch, device, channels_last=cfg.channels_last)
        inputs, target = _model_inputs(model, batch), batch["label"]
        with autocast(device, run.amp.dtype):
            logits, terms = _split_output(model(inputs))
            ce = F.cross_entropy(logits.float(), target, label_smoothing=cfg.label_smoothing)
            loss = ce + sum(t.float() for t in terms.values()) if terms else ce
        loss_value = float(loss.detach())
        term_values = {"loss_ce": float(ce.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(epoch, it, loss_value, term_values)
        lr = run.optimizer.param_groups[0]["lr"]
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.clip_grad_norm is not None:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        run.global_step += 1
        if acc is None:
            run.num_classes = run.num_classes or logits.shape[1]
            acc = MetricAccumulator(run.num_classes)
        acc.update(logits, target, loss_value, term_values)
        if (it + 1) % cfg.log_every == 0:
            bar.set_postfix(loss=f"{acc.loss_sum / acc.n:.4f}", lr=f"{lr:.3g}")
    if acc is None:
        raise ValueError(f"epoch {epoch}: the training loader produced no batches "
                         f"(dataset of {len(loader.dataset)} samples, batch_size={cfg.batch_size}, "  # type: ignore[arg-type]
                         f"drop_last={cfg.drop_last})")
    acc.all_reduce(run.info)
    failed = _unique([s for rank_failed in all_gather_objects(failed, run.info) for s in rank_failed])
    metrics = acc.compute()
    record: dict[str, Any] = {"epoch": epoch, "split": "train", "step": run.global_step}
    record.update({k: v for k, v in metrics.items() if k not in ("confusion", "per_class")})
    record.update({"lr": lr, "time": time.perf_counter() - start, "num_failed": len(failed), "quarantined": failed})
    return record


def _validate(run: _Run, loader: DataLoader, epoch: int, progress: bool) -> dict[str, Any]:
    start = time.perf_counter()
    metrics, failed, _ = _run_eval(unwrap(run.model), loader, device=run.device, amp=run.amp,
                                   num_classes=run.num_classes, info=run.info, channels_last=run.cfg.channels_last,
                                   progress=progress, desc=f"val {epoch + 1}/{run.cfg.epochs}")
    failed = _unique([s for rank_failed in all_gather_objects(failed, run.info) for s in rank_failed])
    record: dict[str, Any] = {"epoch": epoch, "split": "val", "step": run.global_step}
    record.update({k: v for k, v in metrics.items() if k not in ("confusion", "predictions")})
    record.update({"lr": run.optimizer.param_groups[0]["lr"], "time": time.perf_counter() - start,
                   "num_failed": len(failed), "quarantined": failed})
    return record


def _checkpoint_state(run: _Run, epoch: int) -> dict[str, Any]:
    """Everything needed to resume after ``epoch`` (collective: call on every rank)."""
    rng_per_rank = all_gather_objects(capture_rng_state(), run.info)
    return {
        "format": CHECKPOINT_FORMAT,
        "model": unwrap(run.model).state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "epoch": epoch,
        "global_step": run.global_step,
        "best_top1": run.best_top1,
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
    run.best_top1 = state.get("best_top1")
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
        progress: bool = True) -> FitResult:
    """Train ``model`` on ``train_set`` (datasets of sample dicts, see DESIGN.md) according to ``cfg``.

    Every iteration: forward (under autocast when AMP is on), loss = cross-entropy (with label smoothing)
    + every ``loss_*`` term of a dict output, non-finite check (raises :class:`NonFiniteLossError`),
    backward through a GradScaler (pass-through unless fp16), optional gradient clipping, optimizer and
    per-iteration scheduler step. Every epoch: train metrics, validation (every ``eval_every`` epochs and
    after the last), quarantine report (raises :class:`TooManyFailedSamplesError` above
    ``max_bad_fraction``), ``metrics.jsonl`` lines, ``last.pt`` (+ ``best.pt`` on a new best val top-1),
    then ``callbacks``.

    ``metrics.jsonl`` lines hold: ``epoch`` (0-based), ``split`` ("train"/"val"), ``step`` (global
    optimizer steps so far), ``loss`` (total, per-sample mean), ``top1``, ``top5``, ``loss_ce`` and every
    model ``loss_*`` term, ``num_samples``, ``lr`` (train: lr of the epoch's last step), ``time``
    (seconds), ``num_failed`` and ``quarantined`` (the unique non-empty ``failed`` strings); val lines also
    have ``per_class``. Non-finite numbers are written as null.

    ``resume``: True continues from ``out_dir/last.pt`` when it exists (a fresh run otherwise, which
    truncates an existing ``metrics.jsonl``); False always starts fresh; a path resumes from that file.
    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) or an initialised process group the model is wrapped
    in DistributedDataParallel and data is sharded; only rank 0 logs and writes files. Training shards come from
    ``DistributedSampler`` (which pads with up to ``world_size - 1`` repeated samples, counted in the train
    metrics); validation shards are exact. A non-finite loss is
    detected per rank: in a multi-process run the other ranks then wait in their next collective until the
    launcher tears the job down.

    ``dataset.set_epoch(epoch)`` is called (when defined) at the start of every epoch, in the DataLoader
    workers too. The model is moved to the configured device (and memory format) in place.
    """
    if cfg is None:
        cfg = TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"fit: cfg must be a TrainConfig, got {type(cfg).__name__}")
    info = maybe_init_distributed()
    try:
        return _fit(model, train_set, val_set, cfg, info, resume, list(callbacks or ()), progress)
    finally:
        cleanup_distributed(info)


def _fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None, cfg: TrainConfig, info: DistInfo,
         resume: bool | str | os.PathLike[str], callbacks: list[Callback], progress: bool) -> FitResult:
    device = device_for(info, cfg.device)
    configure_determinism(cfg.deterministic)
    amp = resolve_amp(cfg.amp, device)
    out_dir = Path(cfg.out_dir) if cfg.out_dir is not None else None
    metrics_path = out_dir / "metrics.jsonl" if out_dir is not None else None
    if out_dir is not None and info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    optimizer = build_optimizer(model, cfg)
    train_loader, train_sampler = _train_loader(train_set, cfg, device, info)
    if len(train_loader) == 0:
        raise ValueError(f"fit: empty training loader ({len(train_set)} samples, batch_size={cfg.batch_size}, "  # type: ignore[arg-type]
                         f"drop_last={cfg.drop_last})")
    scheduler = build_scheduler(optimizer, cfg, len(train_loader))
    run = _Run(cfg, model, optimizer, scheduler, make_grad_scaler(device, amp), device, amp, info,
               iters_per_epoch=len(train_loader), num_classes=_dataset_num_classes(train_set))

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
    for epoch in range(start_epoch, end_epoch):
        train_sampler.set_epoch(epoch)
        if cfg.num_workers > 0 and hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)  # the main-process copy; workers' copies are told by the loader wrapper
        train_rec = _train_one_epoch(run, train_loader, epoch, progress)
        _log_record(train_rec, metrics_path, info, progress)
        _report_quarantine(train_rec, cfg, info)
        val_rec = None
        if val_loader is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            val_sampler.set_epoch(epoch)  # type: ignore[union-attr]
            val_rec = _validate(run, val_loader, epoch, progress)
            _log_record(val_rec, metrics_path, info, progress)
            _report_quarantine(val_rec, cfg, info)
        improved = val_rec is not None and (run.best_top1 is None or val_rec["top1"] > run.best_top1)
        if improved:
            run.best_top1 = val_rec["top1"]  # type: ignore[index]
        entry = {"epoch": epoch, "train": train_rec, "val": val_rec}
        run.history.append(entry)
        if out_dir is not None:
            _save_epoch_checkpoints(run, epoch, out_dir, improved)
        barrier(info)
        if any([bool(cb(entry)) for cb in callbacks]):
            stopped_by_callback = True
            break
    completed = epoch + 1  # == start_epoch when nothing was left to train
    if stopped_by_callback and info.is_main:
        logger.info("training stopped by a callback after epoch %d", epoch)
    return FitResult(
        history=run.history, epochs_completed=completed, finished=completed >= cfg.epochs,
        best_top1=run.best_top1, out_dir=out_dir, metrics_path=metrics_path,
        last_checkpoint=_existing(out_dir, "last.pt"), best_checkpoint=_existing(out_dir, "best.pt"),
        resumed_from=resumed_from,
    )


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
    """``last.pt`` (and ``best.pt`` when val top-1 improved); collective, files written by rank 0 only."""
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


def _log_record(record: dict[str, Any], metrics_path: Path | None, info: DistInfo, progress: bool) -> None:
    if not info.is_main:
        return
    summary = _epoch_summary(record)
    logger.info(summary)
    if progress:
        tqdm.write(summary)
    if metrics_path is not None:
        _append_jsonl(metrics_path, record)
