"""Data-pipeline configuration: one frozen dataclass, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .sampling import dense_indices, tsn_indices, window_indices
from .transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomContrast,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShortSideResize,
    RandomSizeCrop,
    Resize,
    ShortSideResize,
    TenCrop,
    ThreeCrop,
)

__all__ = ["DataConfig", "KINETICS_MEAN", "KINETICS_STD"]

KINETICS_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
KINETICS_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class DataConfig:
    """How clips are sampled, decoded and transformed (train and test).

    The 3D-attention protocols (issue 10, spec ``3d_attention.md``) are selected by fields that default to off:

    - ST-MANet (paper, sec. 4.1): ``num_frames=32, stride=2, train_crop="random_size"`` (height and width each
      0.5-1 x the short side, then resized to ``crop_size=112``), ``flip``; test ``test_windows=True`` (every
      non-overlapping 64-frame window at stride 2, V varies per video) with a centre crop.
    - MSF-Net (paper, sec. 4.1): ``sampling="tsn", num_frames=8, resize_hw=(128, 171)`` (171 wide x 128 high),
      ``crop_size=112``, ``flip``, ``contrast=(0.8, 1.2)`` (range: the spec's choice); test: segment centres,
      one clip, centre crop (spec reading).
    """

    num_frames: int = 8  # T: frames per clip (dense) or segments (TSN)
    stride: int = 2  # s: step between sampled frames in a dense clip (ignored by TSN)
    sampling: Literal["dense", "tsn"] = "dense"  # dense clip at stride s, or TSN one-frame-per-segment
    short_side: int = 72  # short side after resizing (test; train too unless scale_jitter is set)
    crop_size: int = 64  # square crop side fed to the model
    scale_jitter: tuple[int, int] | None = None  # train: random short side in [min, max] instead of short_side
    flip: bool = True  # train: random horizontal flip (p = 0.5)
    mean: tuple[float, float, float] = KINETICS_MEAN  # per-channel mean (RGB, [0, 1] scale)
    std: tuple[float, float, float] = KINETICS_STD  # per-channel std (RGB, [0, 1] scale)
    test_clips: int = 1  # test: temporal clips per video
    test_crops: Literal[1, 3, 10] = 1  # test: spatial crops per clip (centre / three-crop / ten-crop)
    short_clip: Literal["loop", "repeat_last"] = "loop"  # rule for videos shorter than a clip
    backend: Literal["auto", "decord", "pyav"] = "auto"  # decoder (auto = decord, PyAV fallback)
    frame_cache: bool = True  # reuse decoded uint8 frames via the dataset's FrameCache (stia_kit.data.cache)
    cache_resized: bool = False  # also cache frames after the fixed short-side resize (float32 [C, N, h, w])
    train_crop: Literal["random", "random_size"] = "random"  # train: square RandomCrop, or RandomSizeCrop + resize
    crop_fracs: tuple[float, float] = (0.5, 1.0)  # random_size: crop side range / short side (h, w independent)
    resize_hw: tuple[int, int] | None = None  # fixed (height, width) resize replacing the short-side resize
    contrast: tuple[float, float] | None = None  # train: RandomContrast factor range (lo, hi), before normalise
    test_windows: bool = False  # test: every non-overlapping num_frames*stride window (V varies; dense, 1 clip)

    def __post_init__(self) -> None:
        for name in ("num_frames", "stride", "short_side", "crop_size", "test_clips"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"DataConfig.{name} must be a positive int, got {value!r}")
        self._check_choice("sampling", ("dense", "tsn"))
        self._check_choice("test_crops", (1, 3, 10))
        self._check_choice("short_clip", ("loop", "repeat_last"))
        self._check_choice("backend", ("auto", "decord", "pyav"))
        self._check_choice("train_crop", ("random", "random_size"))
        for name in ("flip", "frame_cache", "cache_resized", "test_windows"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DataConfig.{name} must be a bool, got {getattr(self, name)!r}")
        self._check_resize_hw()
        if self.resize_hw is None and self.crop_size > self.short_side:
            raise ValueError(
                f"DataConfig.crop_size ({self.crop_size}) must be <= short_side ({self.short_side})"
            )
        self._check_jitter()
        self._check_fracs()
        self._check_contrast()
        self._check_windows()
        self._check_stats("mean", positive=False)
        self._check_stats("std", positive=True)

    def _check_choice(self, name: str, choices: tuple[object, ...]) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or value not in choices:
            raise ValueError(f"DataConfig.{name} must be one of {choices}, got {value!r}")

    def _check_jitter(self) -> None:
        jitter = self.scale_jitter
        if jitter is None:
            return
        if not isinstance(jitter, tuple) or len(jitter) != 2 or not all(_is_int(v) for v in jitter):
            raise ValueError(f"DataConfig.scale_jitter must be None or a (min, max) tuple of ints, got {jitter!r}")
        low, high = jitter
        if not self.crop_size <= low <= high:
            raise ValueError(
                f"DataConfig.scale_jitter must satisfy crop_size ({self.crop_size}) <= min <= max, got {jitter}"
            )

    def _check_resize_hw(self) -> None:
        hw = self.resize_hw
        if hw is None:
            return
        if not isinstance(hw, tuple) or len(hw) != 2 or not all(_is_int(v) and v >= 1 for v in hw):
            raise ValueError(f"DataConfig.resize_hw must be None or a (height, width) tuple of positive ints, "
                             f"got {hw!r}")
        if self.crop_size > min(hw):
            raise ValueError(f"DataConfig.crop_size ({self.crop_size}) must be <= both sides of resize_hw {hw}")
        if self.scale_jitter is not None:
            raise ValueError("DataConfig.resize_hw and scale_jitter are exclusive (both set the training resize); "
                             f"got resize_hw={hw}, scale_jitter={self.scale_jitter}")

    def _check_fracs(self) -> None:
        fr = self.crop_fracs
        ok = isinstance(fr, tuple) and len(fr) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                            for v in fr)
        if not ok or not 0.0 < fr[0] <= fr[1] <= 1.0:
            raise ValueError(f"DataConfig.crop_fracs must be a (min, max) tuple with 0 < min <= max <= 1, got {fr!r}")

    def _check_contrast(self) -> None:
        c = self.contrast
        if c is None:
            return
        ok = isinstance(c, tuple) and len(c) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in c)
        if not ok or not 0.0 <= c[0] <= c[1]:
            raise ValueError(f"DataConfig.contrast must be None or a (lo, hi) tuple with 0 <= lo <= hi, got {c!r}")

    def _check_windows(self) -> None:
        if not self.test_windows:
            return
        if self.sampling != "dense":
            raise ValueError(f"DataConfig.test_windows needs sampling='dense' (windows of num_frames * stride "
                             f"frames), got sampling={self.sampling!r}")
        if self.test_clips != 1:
            raise ValueError(f"DataConfig.test_windows takes every window, so test_clips must stay 1, "
                             f"got {self.test_clips}")

    def _check_stats(self, name: str, positive: bool) -> None:
        value = getattr(self, name)
        ok = isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)
        if not ok or (positive and any(v <= 0 for v in value)):
            need = "3 positive numbers" if positive else "3 numbers"
            raise ValueError(f"DataConfig.{name} must be a tuple of {need}, got {value!r}")

    @property
    def test_views(self) -> int:
        """V = test_clips * test_crops: views per video in test mode.

        Raises:
            ValueError: with ``test_windows`` V varies per video (``num_windows(n, T, s) * test_crops``).
        """
        if self.test_windows:
            raise ValueError("DataConfig.test_views: with test_windows=True the views per video vary "
                             "(stia_kit.data.sampling.num_windows(n, num_frames, stride) * test_crops)")
        return self.test_clips * self.test_crops

    def sample_indices(self, num_frames: int, *, train: bool, rng: np.random.Generator | None) -> np.ndarray:
        """Frame indices for one video.

        Shape:
            int64 ``[clips, T]``: ``clips = 1`` when training, ``test_clips`` when testing (with
            ``test_windows``: every non-overlapping window, ``max(1, num_frames // (T * stride))``).
        """
        if self.test_windows and not train:
            return window_indices(num_frames, self.num_frames, self.stride, short_clip=self.short_clip)
        clips = 1 if train else self.test_clips
        if self.sampling == "tsn":
            return tsn_indices(
                num_frames, self.num_frames, train=train, rng=rng, num_clips=clips, short_clip=self.short_clip
            )
        return dense_indices(
            num_frames,
            self.num_frames,
            self.stride,
            train=train,
            rng=rng,
            num_clips=clips,
            short_clip=self.short_clip,
        )

    def _resize(self) -> ShortSideResize | Resize:
        return Resize(*self.resize_hw) if self.resize_hw is not None else ShortSideResize(self.short_side)

    def train_transform(self) -> Compose:
        """Resize (short side, scale jitter or fixed ``resize_hw``) -> random crop (square, or ``random_size``
        then resized) -> optional flip -> optional contrast -> normalise.

        Shape:
            ``[C, T, H, W] -> [C, T, crop_size, crop_size]``.
        """
        if self.scale_jitter is not None:
            steps: list = [RandomShortSideResize(*self.scale_jitter)]
        else:
            steps = [self._resize()]
        if self.train_crop == "random_size":
            steps.append(RandomSizeCrop(*self.crop_fracs, size=self.crop_size))
        else:
            steps.append(RandomCrop(self.crop_size))
        if self.flip:
            steps.append(RandomHorizontalFlip(0.5))
        if self.contrast is not None:
            steps.append(RandomContrast(*self.contrast))
        steps.append(Normalize(self.mean, self.std))
        return Compose(steps)

    def test_transform(self) -> Compose:
        """Resize (short side or ``resize_hw``) -> centre / three / ten crop -> normalise.

        Shape:
            ``[C, T, H, W] -> [C, T, crop, crop]`` (1 crop) or ``[K, C, T, crop, crop]`` (K = 3 or 10).
        """
        crop = {1: CenterCrop, 3: ThreeCrop, 10: TenCrop}[self.test_crops](self.crop_size)
        return Compose([self._resize(), crop, Normalize(self.mean, self.std)])
