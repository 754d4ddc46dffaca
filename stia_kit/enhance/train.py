"""Zero-reference training of the curve models on dark frames sampled from videos.

No paired data and no labels: the four non-reference losses of `stia_kit.enhance.losses` are the whole
objective. Optimiser and clipping follow the official code: Adam, lr 1e-4, weight decay 1e-4 on every
parameter, gradient-norm clipping at 0.1.

- `DarkFrameDataset(root)`: random frames (random crops) from every video under a folder.
- `train_curve_model(model, data, cfg)`: a fixed number of optimisation steps run by the kit's one training
  engine, `stia_kit.train.fit` (AMP, clipping, the non-finite check, atomic checkpoints and exact resume are
  the engine's); returns the loss history per component and step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.data import Dataset

from ..train import TrainConfig, fit, select_device
from .losses import ZeroDCELoss, ZeroDCELossConfig
from .video import VIDEO_EXTENSIONS, find_videos
from .zero_dce import ZeroDCEPP

# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------


class DarkFrameDataset(Dataset):
    """Random RGB frames from a folder of (dark) videos, e.g. ARID, as [3, crop, crop] float tensors in [0, 1].

    Item i is reproducible: a generator seeded with (seed, i) picks a video, a frame index and a crop
    position. Frames smaller than `crop_size` are first resized (keeping the aspect ratio) so that their
    shorter side equals `crop_size`. Videos are decoded with `stia_kit.data.video_io`. A video that cannot be
    read is put in `quarantine` (a list of "path: reason", once per path) and another one is drawn instead; the
    draws do not depend on which failures were seen before, so item i stays a function of (seed, i) in any
    process and at any time (what exact resume with DataLoader workers needs).

    Shape:
        __getitem__ -> [3, crop_size, crop_size] float32.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        crop_size: int = 128,
        samples_per_epoch: int = 1024,
        seed: int = 0,
        exts: tuple[str, ...] = VIDEO_EXTENSIONS,
    ) -> None:
        if crop_size < 8:
            raise ValueError(f"crop_size must be >= 8, got {crop_size}")
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.root = Path(root)
        self.videos = find_videos(self.root, exts)
        if not self.videos:
            raise FileNotFoundError(f"no videos with suffix {exts} under root={self.root}")
        self.crop_size, self.samples_per_epoch, self.seed = crop_size, samples_per_epoch, seed
        self.quarantine: list[str] = []
        self._counts: dict[Path, int] = {}
        self._no_count: dict[Path, str] = {}  # videos whose frame count could not be read -> reason

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _frame(self, path: Path, rng: np.random.Generator) -> np.ndarray:
        from stia_kit.data.video_io import num_frames, read_frames  # keeps stia_kit.enhance importable alone

        if path in self._no_count:  # known unreadable: fail again without reopening (no draw was made for it)
            raise ValueError(self._no_count[path])
        if path not in self._counts:
            try:
                self._counts[path] = num_frames(path)
            except Exception as e:
                self._no_count[path] = f"{type(e).__name__}: {e}"
                raise
        n = self._counts[path]
        if n < 1:
            raise ValueError("video has no frames")
        return read_frames(path, [int(rng.integers(n))])[0]

    def __getitem__(self, i: int) -> Tensor:
        rng = np.random.default_rng([self.seed, i])
        for _ in range(4 * len(self.videos) + 8):  # draws with replacement: a few bad files never exhaust them
            path = self.videos[int(rng.integers(len(self.videos)))]
            try:
                img = self._frame(path, rng)
                break
            except Exception as e:  # unreadable video: report it once, draw another
                if not any(q.startswith(f"{path}: ") for q in self.quarantine):
                    self.quarantine.append(f"{path}: {self._no_count.get(path, f'{type(e).__name__}: {e}')}")
        else:
            raise RuntimeError(f"no readable video under {self.root}; quarantine: {self.quarantine}")
        c = self.crop_size
        h, w = img.shape[:2]
        if min(h, w) < c:
            s = c / min(h, w)
            img = cv2.resize(img, (max(c, round(w * s)), max(c, round(h * s))), interpolation=cv2.INTER_LINEAR)
            h, w = img.shape[:2]
        y, x = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
        crop = np.ascontiguousarray(img[y : y + c, x : x + c])
        return torch.from_numpy(crop).permute(2, 0, 1).float().div_(255.0)


# --------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------

HISTORY_KEYS: tuple[str, ...] = ("total", "spa", "exp", "col", "tv", "brightness")  # train_curve_model's history
_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EnhanceTrainConfig:
    """Training hyper-parameters (official-code defaults where they exist).

    The engine (`stia_kit.train.fit`) counts epochs; here one engine epoch is `checkpoint_every` steps when
    `out_dir` is set (a checkpoint closes every epoch, so `checkpoint_every` must divide `steps`), else all
    `steps` (one epoch, nothing written).
    """

    steps: int = 1000  # optimisation steps (batches) in total, counting steps done before a resume
    batch_size: int = 8  # frames per batch (official: 8)
    lr: float = 1e-4  # Adam learning rate (official: 1e-4)
    weight_decay: float = 1e-4  # Adam (L2) weight decay on every parameter (official: 1e-4)
    grad_clip: float = 0.1  # max gradient norm (official: 0.1); 0 disables clipping
    w_tv: float | None = None  # illumination smoothness weight; None = 200 (Zero-DCE) / 1600 (Zero-DCE++)
    w_spa: float = 1.0  # spatial consistency weight
    w_col: float = 5.0  # colour constancy weight
    w_exp: float = 10.0  # exposure control weight
    well_exposed: float = 0.6  # exposure level E
    num_workers: int = 0  # DataLoader worker processes
    device: str = "auto"  # "auto" (cuda if available, else cpu) | "cpu" | "cuda" | "cuda:N"
    amp: bool = True  # float16 autocast + GradScaler, used on CUDA only (ignored on CPU)
    out_dir: str | None = None  # run folder (the engine's: last.pt, metrics.jsonl); None = nothing written
    checkpoint_every: int = 100  # steps per engine epoch, i.e. between checkpoints, when out_dir is set
    resume: bool = True  # continue from out_dir/last.pt if it exists
    seed: int = 0  # seeds the data order and the engine's RNGs
    log_every: int = 0  # refresh the progress line's losses every this many steps; 0 = no progress display

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr",):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "grad_clip", "w_spa", "w_col", "w_exp", "num_workers", "log_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.w_tv is not None and self.w_tv < 0:
            raise ValueError(f"w_tv must be >= 0 or None, got {self.w_tv}")
        if not 0.0 <= self.well_exposed <= 1.0:
            raise ValueError(f"well_exposed must be in [0, 1], got {self.well_exposed}")
        if not isinstance(self.device, str) or not (
                self.device in _DEVICES or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.out_dir is not None and (not isinstance(self.out_dir, str) or not self.out_dir):
            raise ValueError(f"out_dir must be None or a non-empty str, got {self.out_dir!r}")
        if self.out_dir is not None and self.steps % self.checkpoint_every:
            raise ValueError(f"checkpoint_every must divide steps={self.steps} when out_dir is set (a checkpoint "
                             f"closes each engine epoch), got {self.checkpoint_every}")

    @property
    def steps_per_epoch(self) -> int:
        """Steps per engine epoch: `checkpoint_every` with an `out_dir`, else all `steps`."""
        return self.checkpoint_every if self.out_dir is not None else self.steps

    def loss_config(self, model: nn.Module) -> ZeroDCELossConfig:
        w_tv = self.w_tv if self.w_tv is not None else (1600.0 if isinstance(model, ZeroDCEPP) else 200.0)
        return ZeroDCELossConfig(
            w_tv=w_tv, w_spa=self.w_spa, w_col=self.w_col, w_exp=self.w_exp, well_exposed=self.well_exposed
        )

    def train_config(self, device: torch.device) -> TrainConfig:
        """The engine's config: Adam (beta1 0.9) with L2 decay on all parameters and a constant lr, as the
        official code; clipping; fp16 AMP on CUDA when `amp`; per-step loss records."""
        return TrainConfig(
            epochs=self.steps // self.steps_per_epoch, batch_size=self.batch_size, optimizer="adam", lr=self.lr,
            momentum=0.9, weight_decay=self.weight_decay, weight_decay_all=True, schedule="constant",
            clip_grad_norm=self.grad_clip if self.grad_clip > 0 else None,
            amp="fp16" if self.amp and device.type == "cuda" else "off", device=self.device,
            num_workers=self.num_workers, seed=self.seed, log_every=max(1, self.log_every), out_dir=self.out_dir,
            max_bad_fraction=1.0, record_steps=True,
        )


class FrameStream(Dataset):
    """Step-based training data for the engine: an endless stream of shuffled passes over a frame source, cut
    into engine epochs of `length` samples.

    Position ``p = epoch * length + j`` of the stream is frame ``perm_k[p mod N]`` of pass ``k = p // N``, with
    ``perm_k`` a permutation seeded by ``(seed, k)``; so every pass shows every frame once, whatever the epoch
    length, and the data depend on ``(seed, epoch)`` only (exact resume). Failures recorded by the source in its
    ``quarantine`` list (`DarkFrameDataset`) are reported as the sample's ``"failed"`` string.

    Shape:
        frames[i]: [3, H, W] float in [0, 1] -> {"image": [3, H, W], "index": i, "failed": str}.
    """

    def __init__(self, frames: Dataset | Tensor, length: int, seed: int = 0) -> None:
        if isinstance(frames, Tensor) and (frames.ndim != 4 or frames.shape[1] != 3):
            raise ValueError(f"a tensor of frames must be [N, 3, H, W], got {tuple(frames.shape)}")
        if not isinstance(frames, (Dataset, Tensor)):
            raise TypeError(f"frames must be a Dataset of [3, H, W] frames or a tensor [N, 3, H, W], "
                            f"got {type(frames).__name__}")
        self.n = len(frames)  # type: ignore[arg-type]
        if self.n < 1 or length < 1:
            raise ValueError(f"FrameStream needs frames and length >= 1, got {self.n} frames, length {length}")
        self.frames, self.length, self.seed = frames, length, seed
        self.epoch = 0
        self._perms: dict[int, Tensor] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _perm(self, k: int) -> Tensor:
        if k not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, k]).generate_state(1)[0]))
            self._perms[k] = torch.randperm(self.n, generator=g)
        return self._perms[k]

    def __getitem__(self, j: int) -> dict[str, Any]:
        k, pos = divmod(self.epoch * self.length + j, self.n)
        i = int(self._perm(k)[pos])
        quarantine = getattr(self.frames, "quarantine", None)
        before = len(quarantine) if isinstance(quarantine, list) else 0
        frame = self.frames[i]
        if not isinstance(frame, Tensor) or frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f"frame {i} must be a [3, H, W] tensor, got {getattr(frame, 'shape', type(frame))}")
        failed = "; ".join(quarantine[before:]) if isinstance(quarantine, list) else ""
        return {"image": frame.float(), "index": i, "failed": failed}


class CurveLoss:
    """The engine's loss hook for curve models: the total non-reference loss, Eq. (8), computed in float32
    outside autocast; logs the weighted components and the mean brightness of the enhanced batch.

    Shape:
        output (enhanced [N, 3, H, W], curves [N, K, H, W]), batch["image"] [N, 3, H, W] -> (scalar, terms).
    """

    def __init__(self, criterion: ZeroDCELoss) -> None:
        self.criterion = criterion

    def __call__(self, output: Any, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enhanced, curves = output
        x = batch["image"]
        with torch.autocast(x.device.type, enabled=False):
            parts = self.criterion(x.float(), enhanced.float(), curves.float())
        terms = {k: parts[k] for k in ("spa", "exp", "col", "tv")}
        terms["brightness"] = enhanced.detach().float().mean()
        return parts["total"], terms


def train_curve_model(
    model: nn.Module, data: Dataset | Tensor, cfg: EnhanceTrainConfig | None = None, *,
    progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train a `ZeroDCE` / `ZeroDCEPP` with the total non-reference loss, Eq. (8), for `cfg.steps` steps.

    `data` is a Dataset of [3, H, W] frames (e.g. `DarkFrameDataset`) or a tensor of frames [N, 3, H, W];
    batches are drawn from shuffled passes over it (`FrameStream`). The steps run through `stia_kit.train.fit`
    with the `CurveLoss` hook (`EnhanceTrainConfig.train_config`): with `cfg.out_dir`, `last.pt` is written
    atomically every `checkpoint_every` steps and, with `resume`, an interrupted run continues from it with the
    same exact-resume guarantee as classification (bit-identical weights and history on CPU). `last.pt`'s
    "model" entry is what `load_curve_weights` / `build_enhancer(checkpoint=...)` read.

    `progress`: one updating progress line (see `stia_kit.progress`); None = shown when `cfg.log_every > 0`.

    Returns the history: {"total", "spa", "exp", "col", "tv"} -> one float per step (weighted losses,
    including the steps before a resume), plus "brightness" (mean of the enhanced batch) per step.

    Shape:
        frames: [3, H, W] float in [0, 1].
    """
    cfg = cfg or EnhanceTrainConfig()
    device = select_device(cfg.device)
    criterion = ZeroDCELoss(cfg.loss_config(model)).to(device)
    stream = FrameStream(data, cfg.steps_per_epoch * cfg.batch_size, seed=cfg.seed)
    result = fit(model, stream, None, cfg.train_config(device), resume=cfg.resume,
                 progress=cfg.log_every > 0 if progress is None else progress, loss_fn=CurveLoss(criterion))
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    for entry in result.history:
        steps = entry["train"]["steps"]
        for key in HISTORY_KEYS:
            history[key].extend(steps["loss" if key == "total" else key])
    return history
