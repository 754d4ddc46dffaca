"""The clips an explanation is computed on, and the SynthActions actor masks aligned with them.

A run folder (``experiments/runs.py``) stores the parameters of the experiment that trained it; from them
:func:`run_params` rebuilds that experiment's params object and :func:`run_data_config` its test-time
``DataConfig`` (one clip, one centre crop), so an explanation sees exactly the geometry the model was tested
on. :func:`prepare_clip` decodes one video through that pipeline and also returns the frames as the model
saw them (resized and cropped, before normalisation: what the views draw); :func:`mask_clip` sends the
actor masks through the same frame indices, resize and crop.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from ..data import DataConfig
from ..data.transforms import Compose, Normalize, to_tensor_clip
from ..data.video_io import read_clip
from ..params import from_mapping


@dataclass
class ExplainClip:
    """One clip ready for a model and for the views.

    Shape:
        ``clip`` float32 ``[C, T, h, w]`` (normalised, the model's input); ``frames`` uint8 ``[T, h, w, 3]``
        (the same pixels before normalisation); ``indices`` int64 ``[T]`` (frame numbers in the video).
    """

    path: Path
    clip: Tensor
    frames: np.ndarray
    indices: np.ndarray
    num_video_frames: int


def run_params(info: Mapping[str, Any], **overrides: Any) -> Any:
    """The params object of the experiment that wrote ``run.json`` (``info``), rebuilt with ``overrides``.

    The class is found by ``info["params_class"]`` among the modules of :mod:`stia_kit.experiments`; unknown
    saved names (from an older version) are dropped. Raises ValueError when the run stores no parameters."""
    name, saved = info.get("params_class"), info.get("params")
    if not name or not isinstance(saved, Mapping):
        raise ValueError("run.json stores no experiment parameters (params / params_class): cannot rebuild the "
                         "test pipeline; pass the clip geometry explicitly")
    from .. import experiments
    for mod in pkgutil.iter_modules(experiments.__path__):
        module = importlib.import_module(f"{experiments.__name__}.{mod.name}")
        cls = getattr(module, name, None)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            known = {f.name for f in dataclasses.fields(cls)}
            return from_mapping(cls, {**{k: v for k, v in saved.items() if k in known}, **overrides})
    raise ValueError(f"run.json names params_class {name!r}, which no module of stia_kit.experiments defines")


def run_data_config(params: Any) -> DataConfig:
    """The run's test-time :class:`DataConfig` with a single clip and a single centre crop."""
    from ..experiments.common import data_config
    return dataclasses.replace(data_config(params), test_clips=1, test_crops=1, test_windows=False)


def black_value(cfg: DataConfig, key: str = "video") -> tuple[tuple[str, tuple[float, ...]], ...]:
    """``ExplainConfig.black_value`` for clips normalised by ``cfg``: a black pixel is ``(0 - mean) / std`` per
    channel (a zero tensor would be the dataset's mean colour, not black)."""
    return ((key, tuple(float(-m / s) for m, s in zip(cfg.mean, cfg.std))),)


def _geometry(cfg: DataConfig) -> Compose:
    """The test transform without its final normalisation: resize then centre crop."""
    steps = cfg.test_transform().transforms
    if not isinstance(steps[-1], Normalize):
        raise RuntimeError(f"expected the test transform to end with Normalize, got {steps}")
    return Compose(steps[:-1])


def prepare_clip(path: str | Path, cfg: DataConfig) -> ExplainClip:
    """Decode ``path`` at the test indices of ``cfg`` (first clip) and transform it as the test set does.

    Raises:
        VideoReadError: the file cannot be decoded (the message names it).
    """
    path = Path(path)
    frames, idx, n = read_clip(path, lambda k: cfg.sample_indices(k, train=False, rng=None)[:1], cfg.backend)
    raw = to_tensor_clip(frames)  # [C, T, H, W] in [0, 1]
    geo = _geometry(cfg)(raw)  # [C, T, h, w]
    clip = cfg.test_transform().transforms[-1](geo)  # normalised
    shown = (geo.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()  # [T, h, w, 3]
    return ExplainClip(path, clip.contiguous(), shown, np.asarray(idx).reshape(-1).astype(np.int64), int(n))


def mask_clip(masks: np.ndarray, indices: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """The actor masks of the sampled frames, resized and cropped like the clip (threshold 0.5 after the
    bilinear resize).

    Shape:
        ``masks`` bool ``[F, H, W]`` (every video frame), ``indices`` ``[T]`` -> bool ``[T, h, w]``.
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must be [F, H, W], got shape {masks.shape}")
    if indices.max(initial=0) >= masks.shape[0]:
        raise ValueError(f"frame index {int(indices.max())} outside the {masks.shape[0]} mask frames")
    m = torch.from_numpy(masks[indices].astype(np.float32))[None]  # [1, T, H, W]
    return (_geometry(cfg)(m)[0] > 0.5).numpy()
