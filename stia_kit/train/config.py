"""Training configuration: one frozen, validated dataclass built from flat primitives.

``TrainConfig`` follows the project convention (see DESIGN.md): every field has a one-line comment,
``__post_init__`` validates all of them and errors name the offending field. ``TrainConfig.from_dict``
builds one from a flat mapping (papermill parameters, JSON, CLI) and rejects unknown keys;
``TrainConfig.to_dict`` gives the plain-python form stored in checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

OptimizerName = Literal["sgd", "adam", "adamw"]
ScheduleName = Literal["cosine", "step", "constant"]
AmpMode = Literal["auto", "off", "bf16", "fp16"]

_OPTIMIZERS = ("sgd", "adam", "adamw")
_SCHEDULES = ("cosine", "step", "constant")
_AMP_MODES = ("auto", "off", "bf16", "fp16")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``fit`` needs besides the model and the datasets.

    Epoch numbers are 0-based everywhere (``set_epoch``, checkpoints, ``metrics.jsonl``).
    """

    epochs: int = 10  # total number of training epochs (>= 1)
    batch_size: int = 8  # per-process mini-batch size (>= 1)
    optimizer: OptimizerName = "sgd"  # "sgd" | "adam" | "adamw"
    lr: float = 0.01  # peak learning rate, reached at the end of warm-up (> 0)
    momentum: float = 0.9  # SGD momentum in [0, 1); for Adam/AdamW it is beta1
    weight_decay: float = 1e-4  # L2 / decoupled decay on weights (not on biases/norm layers unless weight_decay_all)
    weight_decay_all: bool = False  # decay every parameter incl. biases and norm layers (the official Zero-DCE code)
    nesterov: bool = False  # Nesterov momentum (SGD only; needs momentum > 0)
    schedule: ScheduleName = "cosine"  # learning-rate shape after warm-up: "cosine" | "step" | "constant"
    warmup_epochs: float = 0.0  # linear warm-up length in epochs, applied per iteration (< epochs)
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr, in [0, 1)
    step_size: int = 10  # "step" schedule: multiply lr by step_gamma every step_size epochs
    step_gamma: float = 0.1  # "step" schedule: decay factor in (0, 1]
    milestones: tuple[int, ...] | None = None  # "step" schedule: explicit decay epochs (overrides step_size)
    clip_grad_norm: float | None = None  # max global gradient L2 norm, None = no clipping
    amp: AmpMode = "auto"  # mixed precision: "auto" (CUDA: bf16 if supported else fp16; CPU: off) | "off" | "bf16" | "fp16"
    channels_last: bool = False  # convert model and 5-D inputs to torch.channels_last_3d
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    num_workers: int = 0  # DataLoader worker processes (persistent when > 0)
    pin_memory: bool | None = None  # pin host memory; None = auto (True on CUDA)
    seed: int = 0  # seeds python/numpy/torch RNGs and the data order
    deterministic: bool = False  # deterministic algorithms + cuDNN flags (bit-exact resume on CPU)
    label_smoothing: float = 0.0  # cross-entropy label smoothing in [0, 1)
    log_every: int = 10  # iterations between progress-bar loss updates (>= 1)
    out_dir: str | None = None  # run directory for metrics.jsonl / last.pt / best.pt; None = nothing written
    eval_batch_size: int | None = None  # validation batch size; None = batch_size
    eval_every: int = 1  # validate every N epochs (and always after the last one)
    max_bad_fraction: float = 0.05  # error out when more than this fraction of an epoch's samples failed
    drop_last: bool = False  # drop the last incomplete training batch
    max_epochs_this_run: int | None = None  # stop (resumably) after this many epochs in this call; None = run to the end
    record_steps: bool = False  # add every iteration's loss and terms to the train records ("steps": {name: [..]})

    def __post_init__(self) -> None:
        if isinstance(self.milestones, list):
            object.__setattr__(self, "milestones", tuple(self.milestones))
        for name in ("lr", "momentum", "weight_decay", "warmup_epochs", "min_lr_ratio", "step_gamma",
                     "label_smoothing", "max_bad_fraction"):
            if _is_int(getattr(self, name)):
                object.__setattr__(self, name, float(getattr(self, name)))
        if _is_int(self.clip_grad_norm):
            object.__setattr__(self, "clip_grad_norm", float(self.clip_grad_norm))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def fail(name: str, requirement: str) -> None:
            raise ValueError(f"TrainConfig.{name} {requirement}, got {getattr(self, name)!r}")

        for name, minimum in (("epochs", 1), ("batch_size", 1), ("step_size", 1), ("log_every", 1),
                              ("eval_every", 1), ("num_workers", 0), ("seed", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                fail(name, f"must be an int >= {minimum}")
        for name in ("nesterov", "channels_last", "deterministic", "drop_last", "weight_decay_all", "record_steps"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be a bool")
        for name in ("lr", "momentum", "weight_decay", "warmup_epochs", "min_lr_ratio", "step_gamma",
                     "label_smoothing", "max_bad_fraction"):
            if not _is_real(getattr(self, name)):
                fail(name, "must be a finite number")
        if self.optimizer not in _OPTIMIZERS:
            fail("optimizer", f"must be one of {_OPTIMIZERS}")
        if self.schedule not in _SCHEDULES:
            fail("schedule", f"must be one of {_SCHEDULES}")
        if self.amp not in _AMP_MODES:
            fail("amp", f"must be one of {_AMP_MODES}")
        if self.lr <= 0:
            fail("lr", "must be > 0")
        if not 0 <= self.momentum < 1:
            fail("momentum", "must be in [0, 1)")
        if self.weight_decay < 0:
            fail("weight_decay", "must be >= 0")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            fail("nesterov", "needs optimizer='sgd' and momentum > 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            fail("warmup_epochs", f"must be in [0, epochs={self.epochs})")
        if not 0 <= self.min_lr_ratio < 1:
            fail("min_lr_ratio", "must be in [0, 1)")
        if not 0 < self.step_gamma <= 1:
            fail("step_gamma", "must be in (0, 1]")
        if self.milestones is not None:
            ms = self.milestones
            if not isinstance(ms, tuple) or not all(_is_int(m) and m >= 1 for m in ms) or list(ms) != sorted(set(ms)):
                fail("milestones", "must be None or strictly increasing ints >= 1")
        if self.clip_grad_norm is not None and (not _is_real(self.clip_grad_norm) or self.clip_grad_norm <= 0):
            fail("clip_grad_norm", "must be None or a number > 0")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            fail("device", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.pin_memory is not None and not isinstance(self.pin_memory, bool):
            fail("pin_memory", "must be None or a bool")
        if not 0 <= self.label_smoothing < 1:
            fail("label_smoothing", "must be in [0, 1)")
        if self.out_dir is not None and (not isinstance(self.out_dir, str) or not self.out_dir):
            fail("out_dir", "must be None or a non-empty str")
        if self.eval_batch_size is not None and (not _is_int(self.eval_batch_size) or self.eval_batch_size < 1):
            fail("eval_batch_size", "must be None or an int >= 1")
        if not 0 <= self.max_bad_fraction <= 1:
            fail("max_bad_fraction", "must be in [0, 1]")
        if self.max_epochs_this_run is not None and (
            not _is_int(self.max_epochs_this_run) or self.max_epochs_this_run < 1
        ):
            fail("max_epochs_this_run", "must be None or an int >= 1")

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a flat mapping of primitives; unknown keys raise ``ValueError`` naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (tuples become lists) suitable for JSON and ``weights_only`` checkpoints."""
        out = dataclasses.asdict(self)
        if out["milestones"] is not None:
            out["milestones"] = list(out["milestones"])
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)
