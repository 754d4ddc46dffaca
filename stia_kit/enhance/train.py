"""Zero-reference training of the curve models on dark frames sampled from videos.

No paired data and no labels: the four non-reference losses of `stia_kit.enhance.losses` are the whole
objective. Optimiser and clipping follow the official code: Adam, lr 1e-4, weight decay 1e-4, gradient-norm
clipping at 0.1.

- `DarkFrameDataset(root)`: random frames (random crops) from every .avi/.mp4/.mkv under a folder.
- `train_curve_model(model, data, cfg)`: a fixed number of optimisation steps; returns the loss history per
  component; optional atomic checkpoints and resume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

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
    read is put in `quarantine` (a list of "path: reason") and another one is drawn instead.

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

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _frame(self, path: Path, rng: np.random.Generator) -> np.ndarray:
        from stia_kit.data.video_io import num_frames, read_frames  # keeps stia_kit.enhance importable alone

        if path not in self._counts:
            self._counts[path] = num_frames(path)
        n = self._counts[path]
        if n < 1:
            raise ValueError("video has no frames")
        return read_frames(path, [int(rng.integers(n))])[0]

    def __getitem__(self, i: int) -> Tensor:
        rng = np.random.default_rng([self.seed, i])
        bad = {q.rsplit(": ", 1)[0] for q in self.quarantine}
        for _ in range(len(self.videos)):
            path = self.videos[int(rng.integers(len(self.videos)))]
            if str(path) in bad:
                continue
            try:
                img = self._frame(path, rng)
                break
            except Exception as e:  # unreadable video: remember it, draw another
                self.quarantine.append(f"{path}: {type(e).__name__}: {e}")
                bad.add(str(path))
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


@dataclass(frozen=True)
class EnhanceTrainConfig:
    """Training hyper-parameters (official-code defaults where they exist)."""

    steps: int = 1000  # optimisation steps (batches) in total, counting steps done before a resume
    batch_size: int = 8  # frames per batch when `data` is a Dataset or a tensor of frames (official: 8)
    lr: float = 1e-4  # Adam learning rate (official: 1e-4)
    weight_decay: float = 1e-4  # Adam weight decay (official: 1e-4)
    grad_clip: float = 0.1  # max gradient norm (official: 0.1); 0 disables clipping
    w_tv: float | None = None  # illumination smoothness weight; None = 200 (Zero-DCE) / 1600 (Zero-DCE++)
    w_spa: float = 1.0  # spatial consistency weight
    w_col: float = 5.0  # colour constancy weight
    w_exp: float = 10.0  # exposure control weight
    well_exposed: float = 0.6  # exposure level E
    num_workers: int = 0  # DataLoader workers when `data` is a Dataset
    device: str = "auto"  # "auto" = cuda if available else cpu; or any torch device string
    amp: bool = True  # float16 autocast + GradScaler, used on CUDA only (ignored on CPU)
    checkpoint_path: str | None = None  # where to save {model, optimizer, step, history}; None = never
    checkpoint_every: int = 100  # save every this many steps (and at the end) when checkpoint_path is set
    resume: bool = True  # continue from checkpoint_path if the file exists
    seed: int = 0  # seeds data shuffling
    log_every: int = 0  # print the losses every this many steps; 0 = silent

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

    def loss_config(self, model: nn.Module) -> ZeroDCELossConfig:
        w_tv = self.w_tv if self.w_tv is not None else (1600.0 if isinstance(model, ZeroDCEPP) else 200.0)
        return ZeroDCELossConfig(
            w_tv=w_tv, w_spa=self.w_spa, w_col=self.w_col, w_exp=self.w_exp, well_exposed=self.well_exposed
        )


def _batches(data: Dataset | Tensor | Iterable[Tensor], cfg: EnhanceTrainConfig) -> Iterator[Tensor]:
    """Endless stream of [N, 3, H, W] batches from a frame Dataset, a frame tensor or an iterable of batches."""
    if isinstance(data, Tensor):
        if data.ndim != 4 or data.shape[1] != 3:
            raise ValueError(f"a tensor of frames must be [N, 3, H, W], got {tuple(data.shape)}")
        g = torch.Generator().manual_seed(cfg.seed)
        while True:
            perm = torch.randperm(data.shape[0], generator=g)
            for i in range(0, len(perm), cfg.batch_size):
                yield data[perm[i : i + cfg.batch_size]]
    elif isinstance(data, Dataset):
        g = torch.Generator().manual_seed(cfg.seed)
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=False,
                            num_workers=cfg.num_workers, generator=g)
        while True:
            yield from loader
    else:
        while True:
            n = 0
            for batch in data:
                n += 1
                yield batch
            if n == 0:
                raise ValueError("data yielded no batches")


def _save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_curve_model(
    model: nn.Module, data: Dataset | Tensor | Iterable[Tensor], cfg: EnhanceTrainConfig | None = None
) -> dict[str, list[float]]:
    """Train a `ZeroDCE` / `ZeroDCEPP` with the total non-reference loss, Eq. (8), for `cfg.steps` steps.

    `data` is a Dataset of [3, H, W] frames (e.g. `DarkFrameDataset`, batched by a DataLoader), a tensor
    of frames [N, 3, H, W] (shuffled into batches), or any re-iterable of [N, 3, H, W] batches (cycled).

    Checkpoints ({"model", "optimizer", "step", "history"}) are written atomically (temporary file +
    os.replace) every `checkpoint_every` steps and at the end; with `resume` an existing checkpoint is loaded
    with ``torch.load(..., weights_only=True)`` and training continues from its step (data order restarts).

    Returns the history: {"total", "spa", "exp", "col", "tv"} -> one float per step (weighted losses,
    including the steps before a resume), plus "brightness" (mean of the enhanced batch) per step.

    Shape:
        batches: [N, 3, H, W] float in [0, 1].
    """
    cfg = cfg or EnhanceTrainConfig()
    if cfg.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    model.to(device).train()
    criterion = ZeroDCELoss(cfg.loss_config(model)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: dict[str, list[float]] = {k: [] for k in ("total", "spa", "exp", "col", "tv", "brightness")}
    step = 0
    ckpt = Path(cfg.checkpoint_path) if cfg.checkpoint_path else None
    if ckpt is not None and cfg.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        history = {k: [float(v) for v in vals] for k, vals in state["history"].items()}

    def save() -> None:
        if ckpt is not None:
            _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                          "history": history}, ckpt)

    batches = _batches(data, cfg)
    while step < cfg.steps:
        x = next(batches).to(device, dtype=torch.float32, non_blocking=True)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
            enhanced, curves = model(x)
        losses = criterion(x, enhanced.float(), curves.float())
        if not math.isfinite(losses["total"].item()):
            raise FloatingPointError(f"non-finite loss at step {step}: { {k: v.item() for k, v in losses.items()} }")
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        step += 1
        for k, v in losses.items():
            history[k].append(v.item())
        history["brightness"].append(enhanced.detach().float().mean().item())
        if cfg.log_every and step % cfg.log_every == 0:
            print(f"step {step}: " + " ".join(f"{k} {v[-1]:.4f}" for k, v in history.items()))
        if ckpt is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
            save()
    return history
