"""Classical low-light enhancement baselines (OpenCV) and the `build_enhancer` registry.

Every enhancer implements the `Enhancer` protocol: ``__call__(frames) -> frames`` on uint8 RGB frames
[T, H, W, 3] (the layout the video readers return), keeping shape and dtype. The curve models are wrapped
by `stia_kit.enhance.video.CurveEnhancer` so all methods are interchangeable in `enhance_videos`,
`EnhanceTransform` and `benchmarks/enhance.py`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args, runtime_checkable

import cv2
import numpy as np
import torch

from .video import CurveEnhancer
from .zero_dce import ZeroDCE, ZeroDCEConfig, ZeroDCEPP, ZeroDCEPPConfig, load_curve_weights

Method = Literal["none", "gamma", "histeq", "clahe", "zero_dce", "zero_dce_pp"]


@runtime_checkable
class Enhancer(Protocol):
    """Shape: ``__call__``: uint8 [T, H, W, 3] RGB -> uint8 [T, H, W, 3] RGB."""

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must be a uint8 numpy array [T, H, W, 3], got {type(frames).__name__} "
            f"{getattr(frames, 'dtype', None)} {getattr(frames, 'shape', None)}"
        )


class IdentityEnhancer:
    """No enhancement (the "none" baseline); returns a copy."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        _check_frames(frames)
        return frames.copy()


class GammaEnhancer:
    """Gamma correction out = 255 (in / 255)^gamma through a 256-entry lookup table; gamma < 1 brightens.

    Shape: uint8 [T, H, W, 3] -> uint8 [T, H, W, 3].
    """

    def __init__(self, gamma: float = 0.4) -> None:
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = gamma
        self.lut = np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        _check_frames(frames)
        return self.lut[frames]


def _on_luma(frames: np.ndarray, fn: Any) -> np.ndarray:
    """Apply `fn` (uint8 [H, W] -> uint8 [H, W]) to the Y channel of each frame in YCrCb, keep chroma."""
    out = np.empty_like(frames)
    for t, rgb in enumerate(frames):
        ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        ycc[..., 0] = fn(np.ascontiguousarray(ycc[..., 0]))
        out[t] = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    return out


class HistEqEnhancer:
    """Global histogram equalisation of the luminance (Y of YCrCb, per frame); chroma untouched.

    Shape: uint8 [T, H, W, 3] -> uint8 [T, H, W, 3].
    """

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        _check_frames(frames)
        return _on_luma(frames, cv2.equalizeHist)


class ClaheEnhancer:
    """Contrast-limited adaptive histogram equalisation (CLAHE) of the luminance (Y of YCrCb, per frame).

    Shape: uint8 [T, H, W, 3] -> uint8 [T, H, W, 3].
    """

    def __init__(self, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)) -> None:
        if not clip_limit > 0:
            raise ValueError(f"clip_limit must be > 0, got {clip_limit}")
        if len(tile_grid) != 2 or min(tile_grid) < 1:
            raise ValueError(f"tile_grid must be two positive ints, got {tile_grid}")
        self.clip_limit, self.tile_grid = clip_limit, tuple(int(v) for v in tile_grid)
        self._clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=self.tile_grid)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        _check_frames(frames)
        return _on_luma(frames, self._clahe.apply)


def build_enhancer(
    name: Method,
    *,
    checkpoint: str | None = None,
    official_checkpoint: bool = False,
    device: str | torch.device | None = None,
    temporal_smoothing: float = 0.0,
    chunk_size: int = 32,
    **kwargs: Any,
) -> Enhancer:
    """Build an enhancer by name.

    - "none": identity. "gamma": `gamma`. "histeq": no options. "clahe": `clip_limit`, `tile_grid`.
    - "zero_dce" / "zero_dce_pp": remaining `kwargs` go to `ZeroDCEConfig` / `ZeroDCEPPConfig` (e.g.
      ``scale_factor=12``); `checkpoint` loads weights with ``torch.load(..., weights_only=True)``
      (`official_checkpoint=True` for files from the official repositories); `device` defaults to cuda
      when available; `temporal_smoothing` and `chunk_size` as in `CurveEnhancer`. Without a checkpoint the
      model is randomly initialised (useful only for tests and speed measurements).
    """
    if name not in get_args(Method):
        raise ValueError(f"unknown enhancer name {name!r}; choose from {get_args(Method)}")
    if name in ("zero_dce", "zero_dce_pp"):
        model = ZeroDCE(ZeroDCEConfig(**kwargs)) if name == "zero_dce" else ZeroDCEPP(ZeroDCEPPConfig(**kwargs))
        if checkpoint is not None:
            load_curve_weights(model, checkpoint, official=official_checkpoint)
        dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return CurveEnhancer(model.to(dev), temporal_smoothing=temporal_smoothing, chunk_size=chunk_size)
    if checkpoint is not None or official_checkpoint or temporal_smoothing or device is not None:
        raise TypeError(f"checkpoint/official_checkpoint/device/temporal_smoothing do not apply to {name!r}")
    factory: dict[str, type] = {
        "none": IdentityEnhancer,
        "gamma": GammaEnhancer,
        "histeq": HistEqEnhancer,
        "clahe": ClaheEnhancer,
    }
    try:
        return factory[name](**kwargs)
    except TypeError as e:
        raise TypeError(f"bad options {sorted(kwargs)} for enhancer {name!r}: {e}") from None
