"""Frame-folder datasets: RGB frames and stacked optical flow stored as JPEG (the TSN layout), two-stream samples.

On-disk layout (written by :mod:`stia_kit.data.flow`), one folder per video, mirroring the video tree below
the dataset's video folder (UCF101 ``<root>/UCF-101/<Class>/<v>.avi`` -> ``<frames_root>/<Class>/<v>/``;
HMDB51 ``<root>/hmdb51_org/...``; ARID its ``clips_v1`` folder)::

    <frames_root>/<Class>/<video stem>/img_00001.jpg .. img_<n>.jpg         n RGB frames (1-based)
                                       flow_x_00001.jpg .. flow_x_<n-1>.jpg  n - 1 grey fields, 128 ~ no motion
                                       flow_y_00001.jpg .. flow_y_<n-1>.jpg
                                       .flow_done.json                       completion marker, written last:
                                                                             {"n_frames": n, "n_flow": n - 1, ...}

A folder without the marker is incomplete (extraction unfinished) and counts as missing.

Samples are dicts (DESIGN.md "Dataset samples"), with one key per modality instead of ``"video"``::

    {"rgb": Tensor,    # [3, N, H, W] float32 (N segments); test mode with V = test_crops > 1: [V, 3, N, H, W]
     "flow": Tensor,   # [2L, N, H, W], channels x1, y1, ..., xL, yL (L = new_length); test: [V, 2L, N, H, W]
     "label": int, "index": int, "failed": str}   # as VideoDataset

``modality="rgb"`` / ``"flow"`` samples carry only that key (per-stream training, :meth:`with_modality`).
Each segment contributes one flow stack of L consecutive fields and the RGB frame at its centre
(:func:`~stia_kit.data.sampling.tsn_stack_indices`). One geometric transform (resize, crop, flip; TenCrop in
testing) runs on the channel concatenation ``[3 + 2L, N, H, W]``, so both modalities get the same window and
the same flip; a flip also inverts flow x (``1 - x`` after ``/ 255``, spec "Optical flow"), in TenCrop's
flipped views too. Resizing does not rescale flow values (TSN convention).

Readings: the RGB frame of a segment is the centre of its stack in every modality (reading: STILT pairs one
frame with one stack and never says which; an RGB stream trained alone then sees the frames it sees inside
the two-stream model, where TSN's RGB stream samples all n frames: they differ only in the L/2 frames at
each end). ``modality="rgb"`` reads no flow file (a plain frame-folder dataset). Flow x flipped as ``1 - x``
maps the quantised zero motion 128 to 127 (TSN convention; 0.4 % of the range).

Policies are those of :class:`~stia_kit.data.datasets.VideoDataset`: ``missing=`` ("raise": one
:class:`MissingFramesError` listing how many folders are absent or incomplete and the first few; "skip": one
warning) at construction; ``on_error=`` for an unreadable / corrupt JPEG, a bad marker or too few files when a
sample is read ("skip": the next sample is substituted and ``"folder: reason"`` is reported in ``"failed"``
and ``dataset.quarantine``). Sample ``i`` in epoch ``e`` draws from ``numpy.random.default_rng([seed, e, i])``.

Optional decoded-image cache (``TwoStreamConfig.frame_cache_mb``, :class:`ImageCache`): reading the JPEGs
is most of a sample's cost at the kit's teaching sizes, so later epochs can reuse the decoded uint8 images
(see :class:`ImageCache` for what was measured). Samples are identical with and without it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from .datasets import (
    ARID_VIDEO_DIRS,
    MissingVideosError,
    SampleDataset,
    arid_split,
    hmdb51_split,
    ucf101_split,
)
from .sampling import stack_field_indices, tsn_stack_indices
from .transforms import (
    CenterCrop,
    Compose,
    FixedCornerMultiScaleCrop,
    Normalize,
    RandomCrop,
    RandomHorizontalFlipFlow,
    ShortSideResize,
    TenCropFlow,
    to_tensor_clip,
)

__all__ = [
    "FLOW_MARKER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FLOW_MEAN",
    "FLOW_STD",
    "BGR255_MEAN",
    "FrameReadError",
    "ImageCache",
    "MissingFramesError",
    "TwoStreamConfig",
    "TwoStreamDataset",
    "build_two_stream_dataset",
    "flow_channel_order",
    "frames_split",
]

Modality = Literal["rgb", "flow", "both"]
FramesLayout = Literal["ucf101", "hmdb51", "arid"]
MissingPolicy = Literal["raise", "skip"]
ErrorPolicy = Literal["raise", "skip"]

#: Completion marker of a frame folder (written last by the flow extraction): ``{"n_frames", "n_flow", ...}``.
FLOW_MARKER = ".flow_done.json"
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB, [0, 1] scale (STILT: ImageNet ResNet)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
FLOW_MEAN, FLOW_STD = 0.5, 0.226  # flow v / 255 (TSN convention, spec "STILT Readings")
BGR255_MEAN: tuple[float, float, float] = (104.0, 117.0, 128.0)  # BN-Inception, BGR 0-255, std 1 (TSN convention)
BGR255_FLOW_MEAN = 128.0  # BN-Inception flow: v - 128 on the 0-255 scale (TSN convention)
_SHOW_FIRST = 5
_LAYOUTS: tuple[str, ...] = ("ucf101", "hmdb51", "arid")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def flow_channel_order(new_length: int) -> list[str]:
    """Names of the ``2 * new_length`` flow channels in order: ``["x1", "y1", ..., "xL", "yL"]`` (spec)."""
    if not _is_int(new_length) or new_length < 1:
        raise ValueError(f"new_length must be a positive int, got {new_length!r}")
    return [f"{axis}{i}" for i in range(1, new_length + 1) for axis in ("x", "y")]


@dataclass(frozen=True)
class TwoStreamConfig:
    """How a two-stream sample is drawn from a frame folder and transformed.

    Readings (spec "STILT Readings", "T-STAM Readings"): segments and test protocol are TSN's (STILT never
    states them; T-STAM uses N = 6); one short-side resize in training and testing (TSN resizes to 256 at
    test time and crops the stored 240x320 frames in training; T-STAM: "resized to 240x320", i.e.
    ``short_side=240`` for 4:3 videos); the RGB frame of a segment is the centre of its flow stack.

    Memory: the TSN test protocol (25 segments x 10 crops at 224, L = 10) makes one flow sample
    ``10 x 20 x 25 x 224 x 224`` float32, about 1 GB; use fewer test segments / crops at teaching sizes.
    """

    modality: Modality = "both"  # which inputs a sample carries ("rgb" / "flow": per-stream training views)
    num_segments: int = 3  # TSN convention (STILT never states it; T-STAM: 6): training segments N
    new_length: int = 10  # L flow fields per stack (STILT Table 2: 20 channels); T-STAM: 5 (TSN convention)
    test_segments: int = 25  # segments per test video (TSN protocol)
    test_crops: Literal[1, 10] = 10  # test views: 1 = centre crop, 10 = TenCrop (TSN protocol)
    short_side: int = 256  # short side after resizing, train and test (TSN test scale; 240 = T-STAM's 240x320)
    crop_size: int = 224  # square crop fed to the model (both papers)
    train_crop: Literal["multiscale", "random", "center"] = "multiscale"  # TSN fixed-corner multi-scale crop
    flip: bool = True  # training: random horizontal flip (p = 0.5), flow x inverted with it
    normalize: Literal["imagenet", "bgr255"] = "imagenet"  # ImageNet + flow (v-0.5)/0.226 | BN-Inception BGR 0-255
    frame_cache_mb: int = 0  # in-memory cache of decoded JPEGs (uint8) per dataset and worker, MiB; 0 = off

    def __post_init__(self) -> None:
        if self.modality not in ("rgb", "flow", "both"):
            raise ValueError(f"TwoStreamConfig.modality must be 'rgb', 'flow' or 'both', got {self.modality!r}")
        for name in ("num_segments", "new_length", "test_segments", "short_side", "crop_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"TwoStreamConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.test_crops, bool) or self.test_crops not in (1, 10):
            raise ValueError(f"TwoStreamConfig.test_crops must be 1 or 10, got {self.test_crops!r}")
        if self.crop_size > self.short_side:
            raise ValueError(f"TwoStreamConfig.crop_size ({self.crop_size}) must be <= short_side ({self.short_side})")
        if self.train_crop not in ("multiscale", "random", "center"):
            raise ValueError(f"TwoStreamConfig.train_crop must be 'multiscale', 'random' or 'center', "
                             f"got {self.train_crop!r}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"TwoStreamConfig.flip must be a bool, got {self.flip!r}")
        if self.normalize not in ("imagenet", "bgr255"):
            raise ValueError(f"TwoStreamConfig.normalize must be 'imagenet' or 'bgr255', got {self.normalize!r}")
        if not _is_int(self.frame_cache_mb) or self.frame_cache_mb < 0:
            raise ValueError(f"TwoStreamConfig.frame_cache_mb must be an int >= 0 (0 = off), "
                             f"got {self.frame_cache_mb!r}")

    @property
    def keys(self) -> tuple[str, ...]:
        """The tensor keys of a sample: ``("rgb", "flow")``, ``("rgb",)`` or ``("flow",)``."""
        return ("rgb", "flow") if self.modality == "both" else (self.modality,)

    @property
    def flow_channels(self) -> int:
        """2L: channels of a flow sample."""
        return 2 * self.new_length

    def x_channels(self) -> list[int]:
        """Flow-x channels of the concatenated clip ``[rgb?, flow?]`` (inverted by a flip)."""
        if self.modality == "rgb":
            return []
        offset = 3 if self.modality == "both" else 0
        return [offset + 2 * j for j in range(self.new_length)]

    def geometric_transform(self, train: bool) -> Compose:
        """Resize + crop (+ flip) applied once to the channel concatenation, so both modalities share them.

        Shape:
            ``[C, N, H, W] -> [C, N, crop, crop]``; test with ``test_crops=10``: ``-> [10, C, N, crop, crop]``.
        """
        steps: list[Any] = [ShortSideResize(self.short_side)]
        if train:
            crop = {"multiscale": lambda: FixedCornerMultiScaleCrop(self.crop_size),
                    "random": lambda: RandomCrop(self.crop_size),
                    "center": lambda: CenterCrop(self.crop_size)}[self.train_crop]()
            steps.append(crop)
            if self.flip:
                steps.append(RandomHorizontalFlipFlow(0.5, self.x_channels()))
        elif self.test_crops == 10:
            steps.append(TenCropFlow(self.crop_size, self.x_channels()))
        else:
            steps.append(CenterCrop(self.crop_size))
        return Compose(steps)

    def normalizers(self) -> dict[str, Compose]:
        """Per-modality normalisation after the split: ``{"rgb": ..., "flow": ...}`` (keys of the modality).

        ``"imagenet"``: RGB ``(v - mean) / std`` with ImageNet statistics, flow ``(v - 0.5) / 0.226`` (TSN
        convention, spec "STILT Readings"). ``"bgr255"`` (BN-Inception, TSN convention, spec "T-STAM
        Readings"): RGB reordered to BGR on the 0-255 scale minus (104, 117, 128), std 1; flow ``255 v - 128``.
        In ``"bgr255"`` the ``"rgb"`` tensor is BGR-ordered (the key names the modality).
        """
        flow_c = self.flow_channels
        if self.normalize == "imagenet":
            rgb: list[Any] = [Normalize(IMAGENET_MEAN, IMAGENET_STD)]
            flow = Normalize([FLOW_MEAN] * flow_c, [FLOW_STD] * flow_c)
        else:
            rgb = [_ToBGR(), Normalize([m / 255.0 for m in BGR255_MEAN], [1.0 / 255.0] * 3)]
            flow = Normalize([BGR255_FLOW_MEAN / 255.0] * flow_c, [1.0 / 255.0] * flow_c)
        out = {"rgb": Compose(rgb), "flow": Compose([flow])}
        return {k: out[k] for k in self.keys}


class _ToBGR:
    """Reverse the channel order (RGB -> BGR) of ``[..., 3, T, H, W]``."""

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        return clip.flip(-4)

    def __repr__(self) -> str:
        return "ToBGR()"


# ------------------------------------------------------------------------------------------- errors


class FrameReadError(RuntimeError):
    """A frame folder could not be read (corrupt / missing JPEG, bad marker, too few files, size mismatch).

    Attributes:
        path: the folder (None in the message-only form a DataLoader re-raises).
        reason: short human-readable reason.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str | None = None) -> None:
        if reason is None:  # one-argument form: DataLoader re-raises a worker's exception as type(exc)(message)
            self.path: Path | None = None
            self.reason = str(path)
            super().__init__(self.reason)
            return
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingFramesError(MissingVideosError):
    """Listed frame folders are absent or incomplete (no completion marker); raised once per dataset.

    A :class:`~stia_kit.data.datasets.MissingVideosError`, so code handling missing videos handles it too.
    """

    def __init__(self, name: str, missing: Sequence[Path], total: int, absent: int | None = None) -> None:
        self.missing = list(missing)
        self.total = total
        n_absent = len(self.missing) if absent is None else absent
        first = "\n  ".join(str(p) for p in self.missing[:_SHOW_FIRST])
        more = f"\n  ... and {len(self.missing) - _SHOW_FIRST} more" if len(self.missing) > _SHOW_FIRST else ""
        FileNotFoundError.__init__(
            self,
            f"{name}: {len(self.missing)} of {total} listed frame folders are missing ({n_absent} absent, "
            f"{len(self.missing) - n_absent} without the completion marker {FLOW_MARKER}: extraction "
            f"unfinished), e.g.:\n  {first}{more}\nRun the flow extraction (`stia data flow`, it resumes), or "
            f"pass missing='skip' to use only the {total - len(self.missing)} complete folders.",
        )


def _check_policy(name: str, value: str) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"{name} must be 'raise' or 'skip', got {value!r}")


# ------------------------------------------------------------------------------------------ reading


class ImageCache:
    """Least-recently-used cache of decoded frame-folder images (uint8), bounded in bytes, per process.

    Keys: ``(folder, marker mtime_ns, file name)``; a re-extracted folder writes a new completion marker, so a
    stale entry is never served. Entries are read-only arrays; a read copies them into the sample, so samples
    (their random draws, transforms and values) are identical with and without the cache. DataLoader workers
    each hold their own copy (with persistent workers, as :func:`stia_kit.train.fit` uses, it lives across
    epochs); pickling (spawned workers) drops the entries.

    Measured when this was written (2 shared CPU cores, one thread, 64x64 JPEGs, 56 px crops, 3 segments; the
    best of 3 runs of 100 samples): a training sample took 6.2 ms (L = 5) / 10.7 ms (L = 10) reading the JPEGs
    and 2.6 / 3.6 ms from a warm cache; reading + decoding is ~60% of the uncached sample (~100-150 us per
    file in the loop, 3 RGB + 2 x 3L flow files), the rest is resize / crop / flip / normalise.
    Memory: 12 KB per 64x64 RGB frame, 4 KB per flow field (SynthActions' teaching set fits in ~200 MB); at
    320x240 a UCF101 video takes ~40 MB, so keep the cache for small sets.
    """

    def __init__(self, max_bytes: int) -> None:
        if not _is_int(max_bytes) or max_bytes < 0:
            raise ValueError(f"ImageCache max_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int, str]) -> np.ndarray | None:
        image = self._entries.get(key)
        if image is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return image

    def put(self, key: tuple[str, int, str], image: np.ndarray) -> None:
        if image.nbytes > self.max_bytes or key in self._entries:
            return
        image.flags.writeable = False
        self._entries[key] = image
        self.bytes += image.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_entries"], state["bytes"] = OrderedDict(), 0
        return state

    def __repr__(self) -> str:
        return (f"ImageCache({len(self)} images, {self.bytes / 2**20:.1f} of {self.max_bytes / 2**20:.0f} MiB, "
                f"{self.hits} hits, {self.misses} misses)")


def _read_counts(folder: Path) -> tuple[int, int, int, int]:
    """``(n_frames, n_flow, n_img, marker mtime_ns)`` from the folder's completion marker (``n_img``, the
    img_* files written, defaults to ``n_frames``; the extraction writes 0 when run without RGB)."""
    path = folder / FLOW_MARKER
    try:
        mtime = path.stat().st_mtime_ns
        marker = json.loads(path.read_text(encoding="utf-8"))
        n_frames, n_flow = marker["n_frames"], marker["n_flow"]
        n_img = marker.get("n_img", n_frames)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FrameReadError(folder, f"bad completion marker {FLOW_MARKER} ({type(exc).__name__}: {exc})") from None
    counts = (n_frames, n_flow, n_img)
    if not all(_is_int(c) and c >= 0 for c in counts):
        raise FrameReadError(folder, f"bad completion marker {FLOW_MARKER}: n_frames={n_frames!r}, n_flow={n_flow!r}, "
                             f"n_img={n_img!r}")
    return int(n_frames), int(n_flow), int(n_img), int(mtime)


def _imread(folder: Path, name: str, grey: bool) -> np.ndarray:
    path = folder / name
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        raise FrameReadError(folder, f"{name} is missing or unreadable") from None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise FrameReadError(folder, f"{name} cannot be decoded (corrupt or not a JPEG)")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_many(folder: Path, pattern: str, indices: np.ndarray, grey: bool,
               cache: ImageCache | None = None, tag: int = 0) -> np.ndarray:
    """Decode the 0-based ``indices`` (each distinct file once) of ``pattern % (i + 1)``, through ``cache``.

    Shape:
        ``indices [...]`` -> uint8 ``[..., H, W]`` (grey) or ``[..., H, W, 3]`` (RGB).
    """
    unique, inverse = np.unique(indices, return_inverse=True)
    images = []
    for i in unique:
        name = pattern % (int(i) + 1)
        key = (str(folder), tag, name)
        image = cache.get(key) if cache is not None else None
        if image is None:
            image = _imread(folder, name, grey)
            if cache is not None:
                cache.put(key, image)
        images.append(image)
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise FrameReadError(folder, f"{pattern.split('%')[0]}* images differ in size: {sorted(shapes)}")
    stacked = np.stack(images)  # [U, H, W(, 3)]
    return stacked[inverse.reshape(indices.shape)]


# ------------------------------------------------------------------------------------------ dataset


class TwoStreamDataset(SampleDataset):
    """``(frame folder, label)`` pairs read as two-stream samples (see the module docstring).

    Args:
        samples: ``(frame folder, 0-based label)`` pairs.
        classes: class names.
        config: sampling / transform settings (:class:`TwoStreamConfig`).
        train: training mode (``num_segments`` random stacks, crop + flip) or test mode
            (``test_segments`` evenly placed stacks, centre crop or TenCrop).
        missing: ``"raise"`` or ``"skip"`` listed folders that are absent or lack the completion marker.
        on_error: ``"raise"`` or ``"skip"`` (substitute) folders whose files cannot be read.
        seed: base seed of the per-sample generators.
        max_attempts: folders tried per item when ``on_error="skip"``.
        name: used in messages.

    Shape:
        ``self[i]["rgb"]``: ``[3, N, crop, crop]``; ``self[i]["flow"]``: ``[2L, N, crop, crop]`` (N =
        ``num_segments``); test mode: N = ``test_segments`` and, with ``test_crops = 10``, a leading view
        dimension: ``[10, 3, N, crop, crop]`` / ``[10, 2L, N, crop, crop]`` (one view: no view dimension, as
        :class:`~stia_kit.data.datasets.VideoDataset`).
    """

    _read_error = FrameReadError  # its reason is what "failed" / quarantine report
    _item_kind = "frame folder"

    def __init__(
        self,
        samples: Iterable[tuple[str | os.PathLike[str], int]],
        classes: Sequence[str],
        config: TwoStreamConfig = TwoStreamConfig(),
        train: bool = True,
        missing: MissingPolicy = "raise",
        on_error: ErrorPolicy = "raise",
        seed: int = 0,
        max_attempts: int = 10,
        name: str | None = None,
    ) -> None:
        _check_policy("missing", missing)
        _check_policy("on_error", on_error)
        if not isinstance(config, TwoStreamConfig):
            raise TypeError(f"config must be a TwoStreamConfig, got {type(config).__name__}")
        if not _is_int(max_attempts) or max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")
        self.name = name or type(self).__name__
        self.classes: list[str] = list(classes)
        listed = [(Path(p), int(label)) for p, label in samples]
        self._check_labels(listed)
        self.config = config
        self.train = bool(train)
        self.on_error = on_error
        self.seed = int(seed)
        self.max_attempts = int(max_attempts)
        self.epoch = 0
        self.quarantine: list[str] = []
        self.num_listed = len(listed)
        complete = [(p / FLOW_MARKER).is_file() for p, _ in listed]
        self.samples: list[tuple[Path, int]] = [s for s, ok in zip(listed, complete) if ok]
        self.missing: list[Path] = [p for (p, _), ok in zip(listed, complete) if not ok]
        self._handle_missing(missing)
        #: decoded-image cache (``config.frame_cache_mb`` > 0), shared by :meth:`subset` / :meth:`with_modality` copies
        self.cache: ImageCache | None = ImageCache(config.frame_cache_mb * 2**20) if config.frame_cache_mb else None
        self._set_transforms()

    def _handle_missing(self, policy: MissingPolicy) -> None:
        if not self.missing:
            return
        absent = sum(not p.is_dir() for p in self.missing)
        if policy == "raise" or not self.samples:
            raise MissingFramesError(self.name, self.missing, self.num_listed, absent)
        warnings.warn(
            f"{self.name}: skipping {len(self.missing)} of {self.num_listed} listed frame folders that are missing "
            f"({absent} absent, {len(self.missing) - absent} without {FLOW_MARKER}; first: {self.missing[0]}); "
            f"{len(self.samples)} remain",
            stacklevel=3,
        )

    def _set_transforms(self) -> None:
        self._geometry = self.config.geometric_transform(self.train)
        self._normalize = self.config.normalizers()

    # ------------------------------------------------------------------ dataset protocol

    @property
    def modality(self) -> Modality:
        """The modality read (``config.modality``)."""
        return self.config.modality

    def indices(self, index: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(flow fields [N, L], RGB frames [N])`` (0-based) that sample ``index`` reads this epoch.

        ``rng``: the generator to draw from (default: a fresh :meth:`rng_for`; :meth:`load` passes its own,
        which then goes on to draw the crop and flip).

        Shape:
            ``([N, L], [N])`` int64, N = ``num_segments`` (train) or ``test_segments`` (test).

        Raises:
            FrameReadError: bad marker, or too few files (no flow field; RGB frames and flow fields disagree).
        """
        fields, frames, _ = self._indices(index, rng)
        return fields, frames

    def _indices(self, index: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, int]:
        """:meth:`indices` plus the marker's mtime_ns (the cache tag)."""
        folder, _ = self.samples[index]
        n_frames, n_flow, n_img, tag = _read_counts(folder)
        cfg = self.config
        if self.modality == "rgb":
            n_flow = n_frames - 1  # the RGB stream samples the same stack centres without reading the flow
        reads_rgb = self.modality != "flow"
        bad = n_flow < 1 or (self.modality == "both" and n_frames != n_flow + 1) or (reads_rgb and n_img != n_frames)
        if bad:
            need = {"rgb": "n_frames >= 2 img_* files", "flow": "n_flow >= 1",
                    "both": "n_flow >= 1 and n_frames = n_img = n_flow + 1"}[self.modality]
            raise FrameReadError(folder, f"too few files: marker says n_frames={n_frames}, n_flow={n_flow}, "
                                 f"n_img={n_img} (need {need})")
        segments = cfg.num_segments if self.train else cfg.test_segments
        if rng is None:
            rng = self.rng_for(index)
        starts, rgb = tsn_stack_indices(n_flow, segments, cfg.new_length, train=self.train, rng=rng)
        return stack_field_indices(starts[0], cfg.new_length, n_flow), rgb[0], tag

    def load_tensors(self, index: int) -> dict[str, torch.Tensor]:
        return self.load(index)

    def load(self, index: int) -> dict[str, torch.Tensor]:
        """Read and transform sample ``index`` (no error handling): ``{"rgb"?: ..., "flow"?: ...}``.

        Shape:
            see the class docstring.

        Raises:
            FrameReadError: a file is missing or corrupt, the marker is bad, or the frames differ in size.
        """
        folder, _ = self.samples[index]
        rng = self.rng_for(index)  # one stream per sample: stacks, then crop and flip
        fields, frames, tag = self._indices(index, rng)  # [N, L], [N], marker mtime_ns
        cfg = self.config
        cache = self.cache
        parts: list[torch.Tensor] = []
        if self.modality in ("rgb", "both"):
            rgb = _read_many(folder, "img_%05d.jpg", frames, False, cache, tag)  # [N, H, W, 3]
            parts.append(to_tensor_clip(rgb))  # [3, N, H, W]
        if self.modality in ("flow", "both"):
            fx = _read_many(folder, "flow_x_%05d.jpg", fields, True, cache, tag)  # [N, L, H, W]
            fy = _read_many(folder, "flow_y_%05d.jpg", fields, True, cache, tag)
            n, length, h, w = fx.shape
            stack = np.stack([fx, fy], axis=2).reshape(n, 2 * length, h, w)  # [N, 2L, H, W]: x1, y1, ..., xL, yL
            parts.append(torch.from_numpy(np.ascontiguousarray(stack.transpose(1, 0, 2, 3))).float().div_(255.0))
        if len(parts) == 2 and parts[0].shape[-2:] != parts[1].shape[-2:]:
            raise FrameReadError(folder, f"RGB frames are {tuple(parts[0].shape[-2:])} but flow fields are "
                                 f"{tuple(parts[1].shape[-2:])}")
        clip = torch.cat(parts, dim=0) if len(parts) == 2 else parts[0]  # [3 + 2L, N, H, W]
        views = self._geometry(clip, rng)  # [C, N, s, s] or [10, C, N, s, s]
        out: dict[str, torch.Tensor] = {}
        offset = 0
        for key in cfg.keys:
            width = 3 if key == "rgb" else cfg.flow_channels
            part = views[..., offset : offset + width, :, :, :]
            out[key] = self._normalize[key](part, None).contiguous()
            offset += width
        return out

    # ------------------------------------------------------------------ copies

    def with_modality(self, modality: Modality, *, name: str | None = None) -> "TwoStreamDataset":
        """A shallow copy reading only ``modality`` (``"rgb"``, ``"flow"`` or ``"both"``) for per-stream training.

        Same samples, seed and epoch, so the stacks, crops and flips of a sample are those of the original
        (the random draws do not depend on the channels).
        """
        out = copy.copy(self)
        out.config = dataclasses.replace(self.config, modality=modality)
        out._set_transforms()
        out.quarantine = []
        out.name = name or f"{self.name}[{modality}]"
        return out

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        cfg = self.config
        segments = cfg.num_segments if self.train else cfg.test_segments
        return (f"{self.name}({len(self)} of {self.num_listed} listed frame folders, {len(self.classes)} classes, "
                f"{mode}, {cfg.modality}, {segments} segments, L={cfg.new_length}, {len(self.missing)} missing)")


# ------------------------------------------------------------------------------------- official splits


class _DirResolver:
    """Resolve relative folder paths under ``base`` ignoring case (listings cached), e.g. UCF101's
    ``HandstandPushups`` list entries vs ``HandStandPushups`` folders."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, directory: Path) -> dict[str, str]:
        if directory not in self._listings:
            try:
                self._listings[directory] = {n.lower(): n for n in os.listdir(directory)}
            except OSError:
                self._listings[directory] = {}
        return self._listings[directory]

    def resolve(self, rel: Path) -> Path:
        exact = self.base / rel
        if exact.is_dir():
            return exact
        current = self.base
        for part in rel.parts:
            found = self._listing(current).get(part.lower())
            if found is None:
                return exact
            current = current / found
        return current if current.is_dir() else exact


def _video_bases(layout: str, root: Path) -> list[Path]:
    if layout == "ucf101":
        return [root / "UCF-101"]
    if layout == "hmdb51":
        return [root / "hmdb51_org"]
    return [root / d if d else root for d in ARID_VIDEO_DIRS]


def frames_split(
    layout: FramesLayout,
    root: str | os.PathLike[str],
    frames_root: str | os.PathLike[str],
    *,
    split: int = 1,
    train: bool = True,
) -> tuple[list[tuple[Path, int]], list[str]]:
    """The official split's videos mapped to their frame folders: ``(samples, classes)``.

    The split files are parsed by :func:`~stia_kit.data.datasets.ucf101_split`, ``hmdb51_split`` or
    ``arid_split`` (videos need not exist); each video ``<video folder>/<Class>/<v>.<ext>`` maps to
    ``frames_root/<Class>/<v>/`` (video folder: ``root/UCF-101``, ``root/hmdb51_org``, ARID's ``clips_v1`` /
    ``clips_v1.5`` / ``root``), the folder names matched case-insensitively when the exact one does not exist.
    SynthActions uses the UCF101 layout. Folders need not exist (the dataset applies ``missing=``).
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    root, frames_root = Path(root), Path(frames_root)
    parse = {"ucf101": ucf101_split, "hmdb51": hmdb51_split, "arid": arid_split}[layout]
    videos, classes = parse(root, split, train)
    bases = _video_bases(layout, root)
    resolver = _DirResolver(frames_root)
    samples: list[tuple[Path, int]] = []
    for video, label in videos:
        rel = next((video.relative_to(b) for b in bases if video.is_relative_to(b)), None)
        if rel is None:  # cannot happen with the parsers above; kept as a clear error
            raise ValueError(f"{video} is not below the {layout} video folders {[str(b) for b in bases]}")
        samples.append((resolver.resolve(rel.with_suffix("")), label))
    return samples, classes


def build_two_stream_dataset(
    layout: FramesLayout,
    root: str | os.PathLike[str],
    frames_root: str | os.PathLike[str],
    *,
    split: int = 1,
    train: bool = True,
    config: TwoStreamConfig = TwoStreamConfig(),
    missing: MissingPolicy = "raise",
    on_error: ErrorPolicy = "raise",
    seed: int = 0,
    max_attempts: int = 10,
) -> TwoStreamDataset:
    """An official split (:func:`frames_split`) as a :class:`TwoStreamDataset`."""
    samples, classes = frames_split(layout, root, frames_root, split=split, train=train)
    name = f"{layout}-frames(split {split}, {'train' if train else 'test'})"
    return TwoStreamDataset(samples, classes, config, train=train, missing=missing, on_error=on_error, seed=seed,
                            max_attempts=max_attempts, name=name)
