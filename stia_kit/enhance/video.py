"""Enhancing videos with curve models: clips in memory, a data-pipeline transform, and an offline pass.

- `enhance_clip(model, clip)`: float clips [C, T, H, W] / [B, C, T, H, W] through a Zero-DCE(-++) model,
  frames batched in chunks on the model's device.
- Temporal smoothing: per-frame curve estimation jitters with sensor noise, which a video shows as flicker.
  With `temporal_smoothing = s` in [0, 1) the curve maps are smoothed causally over time by an exponential
  moving average,  A'_0 = A_0,  A'_t = s A'_{t-1} + (1 - s) A_t,  and frame t is enhanced with A'_t
  (s = 0: independent frames). Causal, so it streams across chunks and over arbitrarily long videos; the
  price is a lag of about s / (1 - s) frames when the scene brightness really changes.
  What it can and cannot fix: it removes flicker caused by the *curve estimate* changing from frame to
  frame; it cannot remove noise that is in the pixels themselves (the curve amplifies that either way; a
  pixel-domain temporal denoiser would be needed). In our checks, briefly trained models on synthetic
  static clips with per-pixel noise produced nearly constant curves (per-frame std of the mean curve ~1e-4),
  so smoothing changed flicker by < 10% there; with global brightness jitter an exposure-seeking curve
  partly compensates per frame, and smoothing that away can slightly *increase* flicker. Measure with
  `stia_kit.enhance.metrics.flicker` before relying on it.
- `CurveEnhancer`: a curve model behind the common `Enhancer` interface (uint8 [T, H, W, 3] -> same).
- `EnhanceTransform`: any enhancer as a data-pipeline transform.
- `enhance_videos(src_root, dst_root, method)`: mirrors a folder tree of videos into enhanced copies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..data.video_io import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from .classical import Enhancer

log = logging.getLogger(__name__)

#: The suffixes `stia data check` treats as videos (`stia_kit.data.video_io.VIDEO_SUFFIXES`, the one
#: definition), sorted: a folder that passes the check is enhanced file for file.
VIDEO_EXTENSIONS: tuple[str, ...] = tuple(sorted(VIDEO_SUFFIXES))

# --------------------------------------------------------------------------------------------------------
# Curve smoothing and float clips
# --------------------------------------------------------------------------------------------------------


class CurveSmoother:
    """Causal exponential moving average of curve maps over time (state kept across calls).

    A'_0 = A_0, A'_t = s A'_{t-1} + (1 - s) A_t with s = `smoothing`.

    Shape:
        __call__: curves [T, K, H, W] (consecutive frames) -> [T, K, H, W].
    """

    def __init__(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"temporal_smoothing must be in [0, 1), got {smoothing}")
        self.smoothing = smoothing
        self.state: Tensor | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, curves: Tensor) -> Tensor:
        s = self.smoothing
        if s == 0.0:
            return curves
        out = torch.empty_like(curves)
        for t in range(curves.shape[0]):
            if self.state is None or self.state.shape != curves.shape[1:]:
                self.state = curves[t]
            else:
                self.state = s * self.state + (1.0 - s) * curves[t]
            out[t] = self.state
        return out


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.inference_mode()
def _enhance_frames(model: nn.Module, frames: Tensor, chunk_size: int, smoother: CurveSmoother | None) -> Tensor:
    """Frames [T, 3, H, W] float in [0, 1] (any device) -> enhanced [T, 3, H, W] float32 on the same device."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    device = _model_device(model)
    smooth = smoother is not None and smoother.smoothing > 0
    if smooth and not hasattr(model, "estimate_curves"):
        raise TypeError(f"temporal_smoothing needs a curve model with estimate_curves(), got {type(model).__name__}")
    outs = []
    for i in range(0, frames.shape[0], chunk_size):
        x = frames[i : i + chunk_size].to(device=device, dtype=torch.float32)
        if smooth:
            y = model.apply_curves(x, smoother(model.estimate_curves(x)))
        else:
            y = model(x)[0]
        outs.append(y.clamp_(0.0, 1.0).to(frames.device))
    return torch.cat(outs, 0) if outs else frames.to(torch.float32)


def enhance_clip(
    model: nn.Module, clip: Tensor, *, chunk_size: int = 32, temporal_smoothing: float = 0.0
) -> Tensor:
    """Enhance a float clip (or batch of clips) frame by frame with a curve model.

    Frames are sent through the model on the model's device in chunks of `chunk_size` frames (bounding
    memory), under inference mode, and come back on the clip's device. With `temporal_smoothing` > 0 the
    curve maps follow the causal EMA of the module docstring, independently per clip of a batch.

    Shape:
        clip: [C, T, H, W] or [B, C, T, H, W], C = 3, values in [0, 1] -> same shape, float32, in [0, 1].
    """
    if clip.ndim == 4:
        return enhance_clip(model, clip[None], chunk_size=chunk_size, temporal_smoothing=temporal_smoothing)[0]
    if clip.ndim != 5 or clip.shape[1] != 3:
        raise ValueError(f"clip must be [C, T, H, W] or [B, C, T, H, W] with C = 3, got {tuple(clip.shape)}")
    out = []
    for b in range(clip.shape[0]):
        smoother = CurveSmoother(temporal_smoothing)
        frames = clip[b].transpose(0, 1)  # [T, C, H, W]
        out.append(_enhance_frames(model, frames, chunk_size, smoother).transpose(0, 1))
    return torch.stack(out, 0)


# --------------------------------------------------------------------------------------------------------
# The Enhancer interface for curve models
# --------------------------------------------------------------------------------------------------------


def frames_to_tensor(frames: np.ndarray) -> Tensor:
    """uint8 [T, H, W, 3] -> float32 [T, 3, H, W] in [0, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_frames(x: Tensor) -> np.ndarray:
    """float [T, 3, H, W] in [0, 1] -> uint8 [T, H, W, 3] (rounded)."""
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class CurveEnhancer:
    """A Zero-DCE / Zero-DCE++ model behind the `Enhancer` interface.

    `__call__` treats its frames as one clip (temporal smoothing restarts on each call); `stream()` returns a
    callable that keeps the smoothing state across calls, for feeding one long video chunk by chunk.

    Shape:
        __call__: uint8 [T, H, W, 3] -> uint8 [T, H, W, 3].
    """

    def __init__(self, model: nn.Module, temporal_smoothing: float = 0.0, chunk_size: int = 32) -> None:
        CurveSmoother(temporal_smoothing)  # validates the value
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.model = model.eval()
        self.temporal_smoothing = temporal_smoothing
        self.chunk_size = chunk_size

    def enhance_tensor(self, frames: Tensor, smoother: CurveSmoother | None = None) -> Tensor:
        """Shape: float [T, 3, H, W] in [0, 1] -> float32 [T, 3, H, W]."""
        smoother = smoother or CurveSmoother(self.temporal_smoothing)
        return _enhance_frames(self.model, frames, self.chunk_size, smoother)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return tensor_to_frames(self.enhance_tensor(frames_to_tensor(frames)))

    def stream(self) -> Callable[[np.ndarray], np.ndarray]:
        smoother = CurveSmoother(self.temporal_smoothing)
        return lambda frames: tensor_to_frames(self.enhance_tensor(frames_to_tensor(frames), smoother))


class EnhanceTransform:
    """Enhancement as a data-pipeline transform. Apply it *before* normalisation (mean/std), on intensities:

    - numpy uint8 frames [T, H, W, 3] straight from the video reader -> uint8 [T, H, W, 3] (recommended
      place: first transform after decoding); or
    - a float clip tensor [C, T, H, W] in [0, 1] (after ToTensor-like scaling, before Normalize) -> float32
      [C, T, H, W]. Curve models process the floats directly; classical methods quantise to uint8 and back.

    `method` is an `Enhancer` or a `build_enhancer` name (keyword arguments go to `build_enhancer`). In
    DataLoader workers each worker holds its own copy of a curve model; keep `torch.set_num_threads` low.
    """

    def __init__(self, method: "str | Enhancer" = "zero_dce_pp", **kwargs: Any) -> None:
        if isinstance(method, str):
            from .classical import build_enhancer

            method = build_enhancer(method, **kwargs)  # type: ignore[arg-type]
        elif kwargs:
            raise TypeError(f"keyword arguments {sorted(kwargs)} only apply when method is a name")
        self.enhancer = method

    def __call__(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        if isinstance(x, np.ndarray):
            return self.enhancer(x)
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[0] != 3 or not x.is_floating_point():
            raise ValueError(f"expected uint8 numpy [T, H, W, 3] or float tensor [3, T, H, W], got {type(x)} "
                             f"{getattr(x, 'shape', None)}")
        frames = x.transpose(0, 1)  # [T, 3, H, W]
        if isinstance(self.enhancer, CurveEnhancer):
            return self.enhancer.enhance_tensor(frames).transpose(0, 1)
        out = self.enhancer(tensor_to_frames(frames.cpu()))
        return frames_to_tensor(out).to(x.device).transpose(0, 1)


# --------------------------------------------------------------------------------------------------------
# Offline enhancement of a folder tree
# --------------------------------------------------------------------------------------------------------


@dataclass
class EnhanceReport:
    """What `enhance_videos` did: paths relative to src_root."""

    done: list[str] = field(default_factory=list)  # enhanced and written this run
    skipped: list[str] = field(default_factory=list)  # output already present (finished in an earlier run)
    failed: dict[str, str] = field(default_factory=dict)  # path -> "ExceptionType: message"

    def summary(self) -> str:
        lines = [f"enhanced {len(self.done)}, skipped {len(self.skipped)} (already done), failed {len(self.failed)}"]
        lines += [f"  FAILED {p}: {why}" for p, why in sorted(self.failed.items())]
        return "\n".join(lines)


def find_videos(root: str | os.PathLike, exts: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[Path]:
    """All files under `root` whose suffix (case-insensitive) is in `exts`, sorted; hidden files skipped."""
    root = Path(root)
    found = [
        Path(d) / f
        for d, _, files in os.walk(root)
        for f in files
        if Path(f).suffix.lower() in exts and not f.startswith(".")
    ]
    return sorted(found)


def _decode_chunks(container: Any, chunk_size: int) -> Iterator[np.ndarray]:
    """Decode the first video stream as uint8 RGB [T, H, W, 3] chunks of at most `chunk_size` frames."""
    buf: list[np.ndarray] = []
    for frame in container.decode(video=0):
        buf.append(frame.to_ndarray(format="rgb24"))
        if len(buf) == chunk_size:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def _count_decodable_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def enhance_video_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    enhancer: "Enhancer",
    *,
    chunk_size: int = 32,
    bits_per_pixel: float = 1.0,
) -> int:
    """Enhance one video into `dst` (MPEG-4 Part 2 via PyAV, container from dst's suffix, source frame rate).

    Decodes and encodes in chunks (bounded memory), writes to a hidden temporary file beside `dst`, checks
    that the result decodes to the same number of frames, then renames it into place (os.replace), so
    `dst` exists only when complete. Odd frame sizes are cropped by one row/column (yuv420p needs even
    sizes). Returns the number of frames written; raises on any failure (the temporary file is removed).
    """
    import av

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    process = enhancer.stream() if hasattr(enhancer, "stream") else enhancer
    written = 0
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
            in_stream = inp.streams.video[0]
            fps = in_stream.average_rate or in_stream.guessed_rate or 25
            out_stream = None
            for chunk in _decode_chunks(inp, chunk_size):
                enhanced = process(chunk)
                if enhanced.shape != chunk.shape or enhanced.dtype != np.uint8:
                    raise ValueError(f"enhancer returned {enhanced.dtype} {enhanced.shape} for {chunk.shape}")
                h, w = chunk.shape[1] // 2 * 2, chunk.shape[2] // 2 * 2
                if out_stream is None:
                    out_stream = out.add_stream("mpeg4", rate=fps)
                    out_stream.width, out_stream.height, out_stream.pix_fmt = w, h, "yuv420p"
                    out_stream.bit_rate = int(max(200_000, bits_per_pixel * w * h * float(fps)))
                for img in enhanced[:, :h, :w]:
                    out.mux(out_stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
                    written += 1
            if out_stream is None:
                raise ValueError("no decodable video frames")
            out.mux(out_stream.encode(None))
        n = _count_decodable_frames(tmp)
        if n != written:
            raise OSError(f"written video decodes to {n} frames, expected {written}")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return written


def enhance_videos(
    src_root: str | os.PathLike,
    dst_root: str | os.PathLike,
    method: "str | Enhancer" = "zero_dce_pp",
    *,
    exts: tuple[str, ...] = VIDEO_EXTENSIONS,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
    **method_kwargs: Any,
) -> EnhanceReport:
    """Enhance every video under `src_root` into the same relative path under `dst_root`.

    `method` is an `Enhancer` or a `build_enhancer` name; `method_kwargs` (e.g. ``checkpoint=...``,
    ``temporal_smoothing=0.8``, ``gamma=0.5``) go to `build_enhancer`. Each output is written atomically
    (see `enhance_video_file`), so a run that is interrupted can simply be started again: outputs that
    exist are skipped unless `overwrite`. A video that fails (corrupt, unreadable, ...) is recorded in the
    report and the pass continues. A tqdm bar shows progress and a summary is printed at the end when
    `progress` is True (and always logged).
    """
    from tqdm.auto import tqdm

    src_root, dst_root = Path(src_root), Path(dst_root)
    if not src_root.is_dir():
        raise FileNotFoundError(f"src_root is not a directory: {src_root}")
    if src_root.resolve() == dst_root.resolve():
        raise ValueError("dst_root must differ from src_root (outputs keep the source file names)")
    if isinstance(method, str):
        from .classical import build_enhancer

        enhancer = build_enhancer(method, **method_kwargs)  # type: ignore[arg-type]
    elif method_kwargs:
        raise TypeError(f"keyword arguments {sorted(method_kwargs)} only apply when method is a name")
    else:
        enhancer = method

    report = EnhanceReport()
    videos = find_videos(src_root, exts)
    bar = tqdm(videos, desc="enhance", unit="video", disable=not progress)
    for src in bar:
        rel = src.relative_to(src_root)
        dst = dst_root / rel
        if dst.exists() and not overwrite:
            report.skipped.append(str(rel))
            continue
        try:
            enhance_video_file(src, dst, enhancer, chunk_size=chunk_size)
            report.done.append(str(rel))
        except Exception as e:  # one bad video must not stop the pass
            report.failed[str(rel)] = f"{type(e).__name__}: {e}"
            log.warning("enhance failed for %s: %s", rel, report.failed[str(rel)])
        bar.set_postfix(failed=len(report.failed))
    bar.close()
    log.info(report.summary())
    if progress:
        tqdm.write(report.summary())
    return report
