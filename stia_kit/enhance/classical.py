"""Classical low-light enhancement baselines (OpenCV) and the enhancer registry `ENHANCERS`.

Every enhancer implements the `Enhancer` protocol: ``__call__(frames) -> frames`` on uint8 RGB frames
[T, H, W, 3] (the layout the video readers return), keeping shape and dtype. The curve models are wrapped
by `stia_kit.enhance.video.CurveEnhancer` so all methods are interchangeable in `enhance_videos`,
`EnhanceTransform` and `benchmarks/enhance.py`.

`ENHANCERS` (a `stia_kit.registry.Registry`, like `stia_kit.models.MODELS`) maps every method name to a
keyword-only builder ``(**options) -> Enhancer``: "none", "gamma", "histeq", "clahe" (OpenCV), and
"zero_dce" / "zero_dce_pp" (a curve model wrapped in its inference `CurveEnhancer`; options: the curve
model's config fields plus checkpoint, device, temporal smoothing and chunk size). An option a method does
not take raises a TypeError naming it; CLI choices come from ``ENHANCERS.names()``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch import nn

from ..registry import Registry
from .video import CurveEnhancer
from .zero_dce import ZeroDCE, ZeroDCEConfig, ZeroDCEPP, ZeroDCEPPConfig, load_curve_weights


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


ENHANCERS: Registry[Enhancer] = Registry("enhancer")


def build_enhancer(name: str, **options: Any) -> Enhancer:
    """Build enhancer ``name`` (one of ``ENHANCERS.names()``) with its ``options``.

    - "none": identity. "gamma": `gamma`. "histeq": no options. "clahe": `clip_limit`, `tile_grid`.
    - "zero_dce" / "zero_dce_pp": the `ZeroDCEConfig` / `ZeroDCEPPConfig` fields (e.g. ``scale_factor=12``);
      `checkpoint` loads weights with ``torch.load(..., weights_only=True)`` (`official_checkpoint=True`
      for files from the official repositories); `device` defaults to cuda when available;
      `temporal_smoothing` and `chunk_size` as in `CurveEnhancer`. Without a checkpoint the model is
      randomly initialised (useful only for tests and speed measurements).

    An unknown name raises a KeyError listing the known ones; an option the method does not take, a
    TypeError.
    """
    builder = ENHANCERS.get(name)
    try:
        inspect.signature(builder).bind(**options)
    except TypeError as e:
        raise TypeError(f"bad options {sorted(options)} for enhancer {name!r}: {e}") from None
    return builder(**options)


ENHANCERS.register("none")(IdentityEnhancer)
ENHANCERS.register("gamma")(GammaEnhancer)
ENHANCERS.register("histeq")(HistEqEnhancer)
ENHANCERS.register("clahe")(ClaheEnhancer)


def _curve_enhancer(model: nn.Module, checkpoint: str | None, official_checkpoint: bool,
                    device: str | torch.device | None, temporal_smoothing: float, chunk_size: int) -> CurveEnhancer:
    """Load ``checkpoint`` into ``model``, move it to ``device`` (default: cuda when available), wrap it."""
    if checkpoint is not None:
        load_curve_weights(model, checkpoint, official=official_checkpoint)
    elif official_checkpoint:
        raise TypeError("official_checkpoint=True needs a checkpoint")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return CurveEnhancer(model.to(dev), temporal_smoothing=temporal_smoothing, chunk_size=chunk_size)


def _register_curve(name: str, build: Callable[..., nn.Module]) -> None:
    def builder(*, checkpoint: str | None = None, official_checkpoint: bool = False,
                device: str | torch.device | None = None, temporal_smoothing: float = 0.0, chunk_size: int = 32,
                **cfg: Any) -> CurveEnhancer:
        return _curve_enhancer(build(**cfg), checkpoint, official_checkpoint, device, temporal_smoothing, chunk_size)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"{name}: {build.__doc__}"
    ENHANCERS.register(name)(builder)


def _zero_dce(**cfg: Any) -> ZeroDCE:
    """Zero-DCE (`ZeroDCEConfig` fields as options) in a `CurveEnhancer`."""
    return ZeroDCE(ZeroDCEConfig(**cfg))


def _zero_dce_pp(**cfg: Any) -> ZeroDCEPP:
    """Zero-DCE++ (`ZeroDCEPPConfig` fields as options) in a `CurveEnhancer`."""
    return ZeroDCEPP(ZeroDCEPPConfig(**cfg))


_register_curve("zero_dce", _zero_dce)
_register_curve("zero_dce_pp", _zero_dce_pp)
