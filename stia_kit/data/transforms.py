"""Clip transforms that work on the whole clip tensor at once (no per-frame loop).

Every transform is a callable ``transform(clip, rng) -> clip`` on float tensors shaped ``[..., C, T, H, W]``:
random parameters are drawn ONCE per call from the ``numpy.random.Generator`` passed in, so every frame of a
clip gets the same crop / scale / flip, and a seeded generator reproduces the result. Resizing uses
``torch.nn.functional.interpolate`` on the clip reshaped to ``[N, 1, H, W]``.

Multi-view transforms (:class:`ThreeCrop`, :class:`TenCrop`) insert a view dimension:
``[..., C, T, H, W] -> [..., V, C, T, H, W]``.

Typical pipelines (see :meth:`stia_kit.data.config.DataConfig.train_transform`)::

    frames = read_frames(path, idx)                 # uint8 [T, H, W, 3]
    clip = to_tensor_clip(frames)                   # float [3, T, H, W] in [0, 1]
    clip = Compose([ShortSideResize(72), RandomCrop(64), RandomHorizontalFlip(), Normalize(m, s)])(clip, rng)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ClipTransform",
    "to_tensor_clip",
    "Compose",
    "ShortSideResize",
    "RandomShortSideResize",
    "RandomCrop",
    "CenterCrop",
    "ThreeCrop",
    "TenCrop",
    "MultiScaleCrop",
    "RandomHorizontalFlip",
    "Normalize",
    "FixedCornerMultiScaleCrop",
    "Resize",
    "RandomSizeCrop",
    "RandomContrast",
    "invert_flow_x",
    "RandomHorizontalFlipFlow",
    "TenCropFlow",
]


class ClipTransform(Protocol):
    """``(clip [..., C, T, H, W], rng) -> clip``."""

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor: ...


def _need_rng(rng: np.random.Generator | None, name: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{name} is random: pass rng=numpy.random.Generator (e.g. np.random.default_rng(0))")
    return rng


def _check_clip(clip: torch.Tensor, name: str) -> None:
    if not isinstance(clip, torch.Tensor) or clip.dim() < 4:
        shape = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise ValueError(f"{name} expects a tensor [..., C, T, H, W], got {shape}")


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def to_tensor_clip(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convert decoded frames to a float clip in ``[0, 1]``.

    Shape:
        frames: uint8 ``[T, H, W, C]`` -> returns float32 ``[C, T, H, W]``.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if x.dim() != 4:
        raise ValueError(f"to_tensor_clip expects frames [T, H, W, C], got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise ValueError(f"to_tensor_clip expects uint8 frames, got {x.dtype}")
    return x.permute(3, 0, 1, 2).contiguous().float().div_(255.0)


def resize_clip(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of the last two dims.

    Shape:
        ``[..., H, W] -> [..., height, width]``.
    """
    *lead, h, w = clip.shape
    if (h, w) == (height, width):
        return clip
    flat = clip.reshape(-1, 1, h, w)
    out = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, height, width)


def _short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    if h <= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


class Compose:
    """Apply transforms in order, passing the same generator to each."""

    def __init__(self, transforms: Sequence[ClipTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            clip = t(clip, rng)
        return clip

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class ShortSideResize:
    """Resize so the shorter spatial side equals ``size`` (aspect ratio kept).

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, H', W']`` with ``min(H', W') == size``.
    """

    def __init__(self, size: int) -> None:
        self.size = _positive(size, "ShortSideResize size")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "ShortSideResize")
        h, w = clip.shape[-2:]
        return resize_clip(clip, *_short_side_size(h, w, self.size))

    def __repr__(self) -> str:
        return f"ShortSideResize({self.size})"


class RandomShortSideResize:
    """Scale jitter: resize the short side to a random integer in ``[min_size, max_size]``.

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, H', W']`` with ``min_size <= min(H', W') <= max_size``.
    """

    def __init__(self, min_size: int, max_size: int) -> None:
        _positive(min_size, "RandomShortSideResize min_size")
        _positive(max_size, "RandomShortSideResize max_size")
        if min_size > max_size:
            raise ValueError(f"RandomShortSideResize: min_size {min_size} > max_size {max_size}")
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "RandomShortSideResize")
        size = int(_need_rng(rng, "RandomShortSideResize").integers(self.min_size, self.max_size + 1))
        h, w = clip.shape[-2:]
        return resize_clip(clip, *_short_side_size(h, w, size))

    def __repr__(self) -> str:
        return f"RandomShortSideResize({self.min_size}, {self.max_size})"


def _crop(clip: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    return clip[..., top : top + size, left : left + size]


def _check_crop(clip: torch.Tensor, size: int, name: str) -> tuple[int, int]:
    _check_clip(clip, name)
    h, w = clip.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"{name}: crop {size}x{size} is larger than the clip's {h}x{w} frames (resize first)")
    return h, w


class RandomCrop:
    """Square crop at a random position (the same for every frame).

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, size, size]``.
    """

    def __init__(self, size: int) -> None:
        self.size = _positive(size, "RandomCrop size")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        h, w = _check_crop(clip, self.size, "RandomCrop")
        g = _need_rng(rng, "RandomCrop")
        top = int(g.integers(0, h - self.size + 1))
        left = int(g.integers(0, w - self.size + 1))
        return _crop(clip, top, left, self.size)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class CenterCrop:
    """Square centre crop.

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, size, size]``.
    """

    def __init__(self, size: int) -> None:
        self.size = _positive(size, "CenterCrop size")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        h, w = _check_crop(clip, self.size, "CenterCrop")
        return _crop(clip, (h - self.size) // 2, (w - self.size) // 2, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class ThreeCrop:
    """Three square crops along the long side (start, centre, end), centred on the short side.

    Shape:
        ``[..., C, T, H, W] -> [..., 3, C, T, size, size]``.
    """

    def __init__(self, size: int) -> None:
        self.size = _positive(size, "ThreeCrop size")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        h, w = _check_crop(clip, self.size, "ThreeCrop")
        s = self.size
        if w >= h:
            top = (h - s) // 2
            boxes = [(top, 0), (top, (w - s) // 2), (top, w - s)]
        else:
            left = (w - s) // 2
            boxes = [(0, left), ((h - s) // 2, left), (h - s, left)]
        return torch.stack([_crop(clip, t, l, s) for t, l in boxes], dim=-5)

    def __repr__(self) -> str:
        return f"ThreeCrop({self.size})"


class TenCrop:
    """Four corner crops + centre crop, and the same five flipped horizontally.

    Shape:
        ``[..., C, T, H, W] -> [..., 10, C, T, size, size]`` (views 5..9 are the flips of 0..4).
    """

    def __init__(self, size: int) -> None:
        self.size = _positive(size, "TenCrop size")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        h, w = _check_crop(clip, self.size, "TenCrop")
        s = self.size
        boxes = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), ((h - s) // 2, (w - s) // 2)]
        five = [_crop(clip, t, l, s) for t, l in boxes]
        return torch.stack(five + [c.flip(-1) for c in five], dim=-5)

    def __repr__(self) -> str:
        return f"TenCrop({self.size})"


class MultiScaleCrop:
    """TSN multi-scale crop: crop height and width are each ``scale * min(H, W)`` for scales drawn from
    ``scales`` (at most ``max_distort`` positions apart), at a random position, then resized to ``size``.

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, size, size]``.
    """

    def __init__(self, size: int, scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66), max_distort: int = 1) -> None:
        self.size = _positive(size, "MultiScaleCrop size")
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"MultiScaleCrop scales must be in (0, 1], got {tuple(scales)}")
        if max_distort < 0:
            raise ValueError(f"MultiScaleCrop max_distort must be >= 0, got {max_distort}")
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = max_distort

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "MultiScaleCrop")
        g = _need_rng(rng, "MultiScaleCrop")
        h, w = clip.shape[-2:]
        base = min(h, w)
        sizes = [max(1, int(base * s)) for s in self.scales]
        pairs = [
            (ch, cw)
            for i, ch in enumerate(sizes)
            for j, cw in enumerate(sizes)
            if abs(i - j) <= self.max_distort
        ]
        ch, cw = pairs[int(g.integers(0, len(pairs)))]
        top = int(g.integers(0, h - ch + 1))
        left = int(g.integers(0, w - cw + 1))
        return resize_clip(clip[..., top : top + ch, left : left + cw], self.size, self.size)

    def __repr__(self) -> str:
        return f"MultiScaleCrop({self.size}, scales={self.scales}, max_distort={self.max_distort})"


class RandomHorizontalFlip:
    """Flip every frame left-right with probability ``p`` (one draw per clip).

    Shape:
        ``[..., C, T, H, W]`` unchanged.
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "RandomHorizontalFlip")
        if _need_rng(rng, "RandomHorizontalFlip").random() < self.p:
            return clip.flip(-1)
        return clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """``(clip - mean) / std`` per channel.

    Shape:
        ``[..., C, T, H, W]`` unchanged (C must equal ``len(mean)``).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != len(std):
            raise ValueError(f"Normalize: mean has {len(mean)} values but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"Normalize: std values must be > 0, got {tuple(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "Normalize")
        if clip.shape[-4] != self.mean.shape[0]:
            raise ValueError(f"Normalize: clip has {clip.shape[-4]} channels, mean/std have {self.mean.shape[0]}")
        return (clip - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


# ----------------------------------------------------------------------- two-stream (RGB + flow) clips
# A two-stream clip concatenates RGB and flow channels, ``[3 + 2L, T, H, W]`` (or flow alone, ``[2L, T, H, W]``),
# so ONE geometric transform crops and flips both modalities identically. Flow channels hold quantised flow
# after ``/ 255`` (0.5 ~ zero motion); resizing interpolates them without rescaling the values (TSN
# convention), and a horizontal flip must also negate the x motion: ``x -> 1 - x`` (spec "Optical flow").


def invert_flow_x(clip: torch.Tensor, x_channels: Sequence[int]) -> torch.Tensor:
    """A copy of ``clip`` with ``1 - v`` in the flow-x channels (the x motion of a mirrored clip).

    Shape:
        ``[..., C, T, H, W]`` unchanged; ``x_channels`` index C (dim -4).
    """
    _check_clip(clip, "invert_flow_x")
    if not len(x_channels):
        return clip
    c = clip.shape[-4]
    bad = [i for i in x_channels if not 0 <= i < c]
    if bad:
        raise ValueError(f"invert_flow_x: channels {bad} out of range for {c} channels")
    out = clip.clone()
    idx = torch.as_tensor(list(x_channels), dtype=torch.long)
    out[..., idx, :, :, :] = 1.0 - clip[..., idx, :, :, :]
    return out


def _channels(x_channels: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(i) for i in x_channels)
    if any(i < 0 for i in out):
        raise ValueError(f"flow x channels must be >= 0, got {out}")
    return out


class RandomHorizontalFlipFlow:
    """:class:`RandomHorizontalFlip` for clips carrying flow: flips left-right with probability ``p`` (one draw
    per clip) and inverts the flow-x channels (``1 - v``), so the motion is mirrored too.

    Shape:
        ``[..., C, T, H, W]`` unchanged.
    """

    def __init__(self, p: float = 0.5, x_channels: Sequence[int] = ()) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlipFlow p must be in [0, 1], got {p}")
        self.p = p
        self.x_channels = _channels(x_channels)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "RandomHorizontalFlipFlow")
        if _need_rng(rng, "RandomHorizontalFlipFlow").random() < self.p:
            return invert_flow_x(clip.flip(-1), self.x_channels)
        return clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlipFlow(p={self.p}, x_channels={self.x_channels})"


class TenCropFlow:
    """:class:`TenCrop` for clips carrying flow: the five flipped views (5..9) also invert the flow-x channels.

    Shape:
        ``[..., C, T, H, W] -> [..., 10, C, T, size, size]`` (views 5..9 are the mirrored 0..4).
    """

    def __init__(self, size: int, x_channels: Sequence[int] = ()) -> None:
        self.crop = TenCrop(size)
        self.size = self.crop.size
        self.x_channels = _channels(x_channels)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        views = self.crop(clip, rng)  # [..., 10, C, T, s, s]
        if not self.x_channels:
            return views
        flipped = invert_flow_x(views[..., 5:, :, :, :, :], self.x_channels)
        return torch.cat([views[..., :5, :, :, :, :], flipped], dim=-5)

    def __repr__(self) -> str:
        return f"TenCropFlow({self.size}, x_channels={self.x_channels})"


class FixedCornerMultiScaleCrop:
    """TSN's ``GroupMultiScaleCrop`` with ``fix_crop=True`` (TSN convention; T-STAM: "randomly cropped from
    fixed corners"): crop height and width are each ``int(scale * min(H, W))`` for scales drawn from ``scales``
    at most ``max_distort`` positions apart (a side within 3 px of ``size`` snaps to ``size``, as in TSN), placed
    at one of 5 fixed offsets (4 corners + centre) or, with ``more_fix_crop`` (TSN default), 13 (plus the edge
    centres and the quarter points), then resized to ``size`` x ``size``. :class:`MultiScaleCrop` is the
    random-position variant.

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, size, size]``.
    """

    def __init__(self, size: int, scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66), max_distort: int = 1,
                 more_fix_crop: bool = True) -> None:
        self.size = _positive(size, "FixedCornerMultiScaleCrop size")
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"FixedCornerMultiScaleCrop scales must be in (0, 1], got {tuple(scales)}")
        if max_distort < 0:
            raise ValueError(f"FixedCornerMultiScaleCrop max_distort must be >= 0, got {max_distort}")
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = max_distort
        self.more_fix_crop = bool(more_fix_crop)

    def offsets(self, h: int, w: int, ch: int, cw: int) -> list[tuple[int, int]]:
        """The fixed ``(top, left)`` positions of a ``ch`` x ``cw`` crop in an ``h`` x ``w`` frame (TSN order)."""
        hs, ws = (h - ch) // 4, (w - cw) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        return [(i * hs, j * ws) for i, j in grid]

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "FixedCornerMultiScaleCrop")
        g = _need_rng(rng, "FixedCornerMultiScaleCrop")
        h, w = clip.shape[-2:]
        base = min(h, w)
        sizes = [max(1, int(base * s)) for s in self.scales]
        sizes = [self.size if abs(x - self.size) < 3 and self.size <= base else x for x in sizes]
        pairs = [(ch, cw) for i, ch in enumerate(sizes) for j, cw in enumerate(sizes) if abs(i - j) <= self.max_distort]
        ch, cw = pairs[int(g.integers(0, len(pairs)))]
        options = self.offsets(h, w, ch, cw)
        top, left = options[int(g.integers(0, len(options)))]
        return resize_clip(clip[..., top : top + ch, left : left + cw], self.size, self.size)

    def __repr__(self) -> str:
        return (f"FixedCornerMultiScaleCrop({self.size}, scales={self.scales}, max_distort={self.max_distort}, "
                f"more_fix_crop={self.more_fix_crop})")


# ------------------------------------------------------------------ 3D attention papers (issue 10, spec "Data")


class Resize:
    """Fixed resize to ``height`` x ``width`` (aspect ratio NOT kept).

    MSF-Net (paper, sec. 4.1): frames "scaled to 171 * 128" = 171 wide x 128 high (the C3D convention, UCF101's
    320 x 240 frames keep roughly their 4:3 shape), i.e. ``Resize(height=128, width=171)``.

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, height, width]``.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height = _positive(height, "Resize height")
        self.width = _positive(width, "Resize width")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "Resize")
        return resize_clip(clip, self.height, self.width)

    def __repr__(self) -> str:
        return f"Resize(height={self.height}, width={self.width})"


class RandomSizeCrop:
    """ST-MANet's training crop (paper, sec. 4.1): crop height and width are drawn independently, each a
    uniform fraction in ``[min_frac, max_frac]`` of the frame's short side ("the length and width set between
    0.5 and 1 times the length of the shorter side"), at a uniformly random position, then the crop is resized
    to ``size`` x ``size`` (aspect ratio not kept). Reading: the side is ``round(frac * min(H, W))``, at least 1
    px, fractions drawn from a continuous uniform (the paper gives the range only).

    Shape:
        ``[..., C, T, H, W] -> [..., C, T, size, size]``.
    """

    def __init__(self, min_frac: float = 0.5, max_frac: float = 1.0, size: int = 112) -> None:
        self.size = _positive(size, "RandomSizeCrop size")
        if not (isinstance(min_frac, (int, float)) and isinstance(max_frac, (int, float))
                and 0.0 < min_frac <= max_frac <= 1.0):
            raise ValueError(f"RandomSizeCrop needs 0 < min_frac <= max_frac <= 1, got {min_frac!r}, {max_frac!r}")
        self.min_frac, self.max_frac = float(min_frac), float(max_frac)

    def crop_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """``(top, left, crop_height, crop_width)`` for an ``h`` x ``w`` frame (four draws from ``rng``)."""
        base = min(h, w)
        fh, fw = rng.uniform(self.min_frac, self.max_frac, size=2)  # independent: height, width
        ch = min(h, max(1, round(float(fh) * base)))
        cw = min(w, max(1, round(float(fw) * base)))
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
        return top, left, ch, cw

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "RandomSizeCrop")
        h, w = clip.shape[-2:]
        top, left, ch, cw = self.crop_box(h, w, _need_rng(rng, "RandomSizeCrop"))
        return resize_clip(clip[..., top : top + ch, left : left + cw], self.size, self.size)

    def __repr__(self) -> str:
        return f"RandomSizeCrop(min_frac={self.min_frac}, max_frac={self.max_frac}, size={self.size})"


#: ITU-R BT.601 luma weights (the grey level torchvision's ``adjust_contrast`` blends towards).
_LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)


class RandomContrast:
    """Contrast augmentation (MSF-Net, paper sec. 4.1: "contrast enhancement"; the range [0.8, 1.2] is the
    spec's choice). One factor ``a ~ U[lo, hi]`` per clip; ``out = clamp(m + a * (x - m), 0, 1)``.

    Reading (the paper gives no formula): ``m`` is the mean grey level (BT.601 luma for 3 channels, the channel
    mean otherwise) of the whole clip (``per_frame=False``) or of each frame (``per_frame=True``, torchvision's
    per-image ``adjust_contrast``), so brightness is kept and only the spread changes; it must run on ``[0, 1]``
    values, before :class:`Normalize`.

    Shape:
        ``[..., C, T, H, W]`` unchanged.
    """

    def __init__(self, lo: float = 0.8, hi: float = 1.2, per_frame: bool = False) -> None:
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 0.0 <= lo <= hi):
            raise ValueError(f"RandomContrast needs 0 <= lo <= hi, got lo={lo!r}, hi={hi!r}")
        self.lo, self.hi = float(lo), float(hi)
        self.per_frame = bool(per_frame)

    def grey_mean(self, clip: torch.Tensor) -> torch.Tensor:
        """The level contrast scales around: ``[..., 1, 1, 1, 1]`` (clip) or ``[..., 1, T, 1, 1]`` (per frame)."""
        c = clip.shape[-4]
        if c == 3:
            w = torch.tensor(_LUMA, dtype=clip.dtype, device=clip.device).view(3, 1, 1, 1)
            grey = (clip * w).sum(dim=-4, keepdim=True)  # [..., 1, T, H, W]
        else:
            grey = clip.mean(dim=-4, keepdim=True)  # [..., 1, T, H, W]
        dims = (-2, -1) if self.per_frame else (-3, -2, -1)
        return grey.mean(dim=dims, keepdim=True)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_clip(clip, "RandomContrast")
        factor = float(_need_rng(rng, "RandomContrast").uniform(self.lo, self.hi))
        m = self.grey_mean(clip)
        return (m + factor * (clip - m)).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        return f"RandomContrast(lo={self.lo}, hi={self.hi}, per_frame={self.per_frame})"
