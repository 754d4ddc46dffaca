"""Video datasets: UCF101, HMDB51, ARID, manifest files, all on one :class:`VideoDataset` base.

Samples are dicts (see DESIGN.md)::

    {"video": Tensor,  # [C, T, H, W] float32; test mode with V = test_clips * test_crops > 1: [V, C, T, H, W]
     "label": int,     # 0-based class index
     "index": int,     # index of the sample actually returned (differs from the request when substituted)
     "failed": str}    # "" normally; "path: reason" for every file skipped to produce this sample ("; "-joined)

Missing files (``missing=``) are found once, at construction: ``"raise"`` raises one
:class:`MissingVideosError` (how many of how many are missing, the first few paths); ``"skip"`` keeps the
present files, lists the others in ``dataset.missing`` and emits one ``warnings.warn``.

Unreadable files (``on_error=``) are found when read: ``"raise"`` raises :class:`VideoReadError`; ``"skip"``
substitutes the next sample (``index + 1``, ``index + 2``, ... wrapping; at most ``max_attempts`` files), records
``"path: reason"`` in the sample's ``"failed"`` field and in ``dataset.quarantine``, and raises
:class:`NoReadableSampleError` only if every attempt fails. Inside DataLoader workers ``quarantine`` fills in
the worker's copy of the dataset; the main process learns about skipped files through ``"failed"``.

Decoding goes through the decoded-frame cache (:mod:`stia_kit.data.cache`; ``DataConfig.frame_cache``, the
``cache=`` argument): it stores uint8 frames, so samples, their random sampling and augmentation are the same
with and without it. Datasets are built by name through the :data:`DATASETS` registry (:func:`build_dataset`).

Randomness: sample ``i`` in epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])`` for both frame
sampling and transforms, so results are reproducible for any number of DataLoader workers and differ across
samples and epochs. Call :meth:`VideoDataset.set_epoch` before each epoch (with ``persistent_workers=True`` the
workers keep the epoch they were created with, so keep persistent workers off when relying on ``set_epoch``).
"""

from __future__ import annotations

import copy
import csv
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..registry import Registry
from .cache import FrameCache, default_cache
from .config import DataConfig
from .transforms import ClipTransform, Compose, Resize, ShortSideResize, to_tensor_clip
from .video_io import VideoReadError, read_clip

__all__ = [
    "MissingVideosError",
    "NoReadableSampleError",
    "VideoDataset",
    "UCF101",
    "HMDB51",
    "ARID",
    "ManifestDataset",
    "build_dataset",
    "DATASETS",
    "DATASET_NAMES",
]

MissingPolicy = Literal["raise", "skip"]
ErrorPolicy = Literal["raise", "skip"]
#: Datasets by name, like :data:`stia_kit.models` registers models. A builder takes
#: ``(root, *, split, train, config, missing, on_error, seed, **kwargs)`` (kwargs: ``cache``, ``max_attempts``)
#: and returns a :class:`VideoDataset`; :func:`build_dataset` calls it. CLI choices: ``DATASETS.names()``.
DATASETS: Registry[VideoDataset] = Registry("dataset")
_SHOW_FIRST = 5


class MissingVideosError(FileNotFoundError):
    """Listed video files are missing on disk (raised once per dataset, not per file)."""

    def __init__(self, name: str, missing: Sequence[Path], total: int) -> None:
        self.missing = list(missing)
        self.total = total
        first = "\n  ".join(str(p) for p in self.missing[:_SHOW_FIRST])
        more = f"\n  ... and {len(self.missing) - _SHOW_FIRST} more" if len(self.missing) > _SHOW_FIRST else ""
        super().__init__(
            f"{name}: {len(self.missing)} of {total} listed video files are missing, e.g.:\n  {first}{more}\n"
            f"Pass missing='skip' to use only the {total - len(self.missing)} present files."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_exception, (type(self), str(self)))


class NoReadableSampleError(RuntimeError):
    """on_error='skip' tried ``max_attempts`` consecutive samples and none could be read."""


def _rebuild_exception(cls: type[BaseException], message: str) -> BaseException:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc


def _check_policy(name: str, value: str) -> None:
    if value not in ("raise", "skip"):
        raise ValueError(f"{name} must be 'raise' or 'skip', got {value!r}")


class SampleDataset(Dataset):
    """The sample-dict protocol shared by :class:`VideoDataset` and the frame-folder
    :class:`~stia_kit.data.frames.TwoStreamDataset`: per-sample generators, the ``on_error`` substitution loop
    (``"failed"`` / ``quarantine``), ``subset``. A subclass sets ``name``, ``classes``, ``samples``, ``on_error``,
    ``seed``, ``epoch``, ``max_attempts``, ``quarantine`` and implements :meth:`load_tensors`.
    """

    _read_error: type[Exception] = VideoReadError  # the subclass's read error; its ``reason`` is what is reported
    _item_kind = "video"  # what one sample is read from, for messages

    def _check_labels(self, listed: list[tuple[Path, int]]) -> None:
        for path, label in listed:
            if not 0 <= label < len(self.classes):
                raise ValueError(
                    f"{self.name}: label {label} of {path} is outside [0, {len(self.classes)}) "
                    f"({len(self.classes)} classes)"
                )

    def load_tensors(self, index: int) -> dict[str, torch.Tensor]:
        """The tensors of sample ``index`` keyed as in its sample dict (no error handling)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Change the per-sample random streams (call before each training epoch)."""
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator used for sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} samples")
        index = index % len(self)
        failures: list[str] = []
        for attempt in range(min(self.max_attempts, len(self))):
            current = (index + attempt) % len(self)
            path, label = self.samples[current]
            try:
                tensors = self.load_tensors(current)
            except Exception as exc:  # noqa: BLE001 - in skip mode every failure is recorded, never fatal
                if self.on_error == "raise":
                    raise
                reason = exc.reason if isinstance(exc, self._read_error) else f"{type(exc).__name__}: {exc}"
                failures.append(f"{path}: {reason}")
                self.quarantine.append(failures[-1])
                continue
            return {**tensors, "label": label, "index": current, "failed": "; ".join(failures)}
        raise NoReadableSampleError(
            f"{self.name}: no readable {self._item_kind} among {len(failures)} samples tried from index {index}: "
            + "; ".join(failures)
        )

    def subset(self, indices: "Sequence[int]", *, name: str | None = None) -> Any:
        """A shallow copy holding only ``samples[i]`` for ``i`` in ``indices`` (same classes, transforms, cache).

        Used to hold a validation split out of a training split (e.g. whole actor groups).
        """
        n = len(self.samples)
        bad = [i for i in indices if not 0 <= int(i) < n]
        if bad:
            raise IndexError(f"{self.name}.subset: indices {bad[:5]} out of range for {n} samples")
        out = copy.copy(self)
        out.samples = [self.samples[int(i)] for i in indices]
        out.quarantine = []
        out.name = name or f"{self.name}[subset of {len(out.samples)}]"
        return out


class VideoDataset(SampleDataset):
    """A list of ``(video path, label)`` pairs decoded and transformed according to a :class:`DataConfig`.

    Args:
        samples: ``(path, 0-based label)`` pairs.
        classes: class names; ``classes[label]`` names a sample's class.
        config: sampling / transform / backend settings.
        train: training mode (random clip + augmentation) or test mode (multi-view).
        missing: ``"raise"`` or ``"skip"`` listed files that do not exist.
        on_error: ``"raise"`` or ``"skip"`` (substitute) files that cannot be decoded.
        seed: base seed of the per-sample generators.
        max_attempts: files tried per item when ``on_error="skip"``.
        name: used in messages.
        cache: the :class:`~stia_kit.data.cache.FrameCache` used when ``config.frame_cache`` is True;
            ``None`` = the process-wide :func:`~stia_kit.data.cache.default_cache` (looked up at read time, so
            every dataset of a process shares it). Copies made by :meth:`with_clip_transform` and
            :meth:`subset` share their original's cache. Cached frames are the decoded uint8 frames, so
            samples are identical with and without the cache.

    Shape:
        ``self[i]["video"]``: ``[C, T, crop, crop]``, or ``[V, C, T, crop, crop]`` in test mode with
        ``V = config.test_clips * config.test_crops > 1``.
    """

    def __init__(
        self,
        samples: Iterable[tuple[str | os.PathLike[str], int]],
        classes: Sequence[str],
        config: DataConfig = DataConfig(),
        train: bool = True,
        missing: MissingPolicy = "raise",
        on_error: ErrorPolicy = "raise",
        seed: int = 0,
        max_attempts: int = 10,
        name: str | None = None,
        cache: FrameCache | None = None,
    ) -> None:
        _check_policy("missing", missing)
        _check_policy("on_error", on_error)
        if not isinstance(config, DataConfig):
            raise TypeError(f"config must be a DataConfig, got {type(config).__name__}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if cache is not None and not isinstance(cache, FrameCache):
            raise TypeError(f"cache must be a FrameCache or None (the process-wide default), "
                            f"got {type(cache).__name__}")
        self.cache = cache
        self.name = name or type(self).__name__
        self.classes: list[str] = list(classes)
        listed = [(Path(p), int(label)) for p, label in samples]
        self._check_labels(listed)
        self.config = config
        self.train = train
        self.on_error = on_error
        self.seed = int(seed)
        self.max_attempts = max_attempts
        self.epoch = 0
        self.quarantine: list[str] = []
        self.num_listed = len(listed)
        self.samples: list[tuple[Path, int]] = [s for s in listed if s[0].is_file()]
        self.missing: list[Path] = [p for p, _ in listed if not p.is_file()]
        self._handle_missing(missing)
        self._set_pipeline(None, per_frame=False)

    # ------------------------------------------------------------------ construction helpers

    def _handle_missing(self, policy: MissingPolicy) -> None:
        if not self.missing:
            return
        if policy == "raise":
            raise MissingVideosError(self.name, self.missing, self.num_listed)
        warnings.warn(
            f"{self.name}: skipping {len(self.missing)} of {self.num_listed} listed video files that are missing "
            f"(first: {self.missing[0]}); {len(self.samples)} remain",
            stacklevel=3,
        )
        if not self.samples:
            raise MissingVideosError(self.name, self.missing, self.num_listed)

    # ------------------------------------------------------------------ dataset protocol

    def load_tensors(self, index: int) -> dict[str, torch.Tensor]:
        return {"video": self.load(index)}

    def load(self, index: int) -> torch.Tensor:
        """Decode and transform sample ``index`` (no error handling).

        Shape:
            ``[C, T, crop, crop]`` or ``[V, C, T, crop, crop]`` (test mode, V > 1).

        Raises:
            VideoReadError: the file cannot be decoded.
        """
        path, _ = self.samples[index]
        rng = self.rng_for(index)
        cfg = self.config

        def index_fn(n: int) -> np.ndarray:
            return cfg.sample_indices(n, train=self.train, rng=rng)

        cache = (self.cache if self.cache is not None else default_cache()) if cfg.frame_cache else None
        derived = None
        if self._whole_steps and cache is not None:
            derived = cache.read_derived(path, index_fn, cfg.backend, self._whole_tag, self._whole_video,
                                         expected_items=len(self))
        if derived is not None:
            stepped, idx, _ = derived  # float32 [clips * T, C, h, w]: the whole-video steps already applied
            clip = torch.from_numpy(stepped).permute(1, 0, 2, 3).contiguous()
            tf = self._rest_tf
        else:
            if cache is not None:
                frames, idx, _ = cache.read_clip(path, index_fn, cfg.backend, expected_items=len(self))
            else:
                frames, idx, _ = read_clip(path, index_fn, cfg.backend)
            clip = to_tensor_clip(frames)  # [C, clips * T, H, W]
            if self._frame_step is not None:
                clip = self._frame_step(clip, None)
            tf = self._train_tf if self.train else self._test_tf
        if self.train:
            return tf(clip, rng)
        clips, t = idx.shape
        c, _, h, w = clip.shape
        multi = clip.reshape(c, clips, t, h, w).transpose(0, 1)  # [clips, C, T, H, W]
        views = tf(multi, rng)  # [clips, C, T, h, w] or [clips, K, C, T, h, w]
        views = views.reshape(-1, *views.shape[-4:])
        return views[0] if views.shape[0] == 1 else views.contiguous()

    def with_clip_transform(self, step: ClipTransform, *, name: str | None = None,
                            per_frame: bool = False) -> "VideoDataset":
        """A shallow copy whose decoded clips pass through ``step`` before the config's transforms.

        ``step(clip, rng)`` receives the clip right after decoding, float in [0, 1] (``to_tensor_clip`` only
        divides the uint8 frames by 255): ``[C, T, H, W]`` in training, ``[clips, C, T, H, W]`` in test mode;
        it must keep that layout. Used e.g. to enhance dark videos before resize / crop / normalise. The copy
        shares the original's frame cache (decoded frames are cached before ``step``, which runs every time).

        ``per_frame=True`` declares ``step`` deterministic and per-frame (frame ``t`` of its output depends
        only on frame ``t`` of its input; it is called with ``rng=None``), e.g. a low-light enhancer without
        temporal smoothing. It then receives the frames as one ``[C, K, H, W]`` clip in both modes, and with
        the frame cache on it runs once on *all* frames of each video, whose float32 result is cached
        (:meth:`FrameCache.read_derived`, 4 bytes per pixel and channel; memory only) and indexed in later
        epochs: the same values as applying it to the sampled frames, bit for bit when ``step`` treats each
        frame independently of how many are batched together (measured: Zero-DCE yes; Zero-DCE++ within
        5e-7, its convolutions round differently for other batch sizes). A step that draws from ``rng`` or
        mixes frames (temporal smoothing) must not use ``per_frame``.
        """
        out = copy.copy(self)
        out._set_pipeline(step, per_frame=per_frame)
        out.quarantine = []
        out.name = name or f"{self.name}+{type(step).__name__}"
        return out

    def _set_pipeline(self, step: ClipTransform | None, *, per_frame: bool) -> None:
        """Set the transforms after decoding, and which of them may run once per whole video (cached).

        Whole-video steps (their output for frame t depends on frame t only, no randomness): a ``per_frame``
        step, then the config's fixed resize (short side, or ``resize_hw``) when ``config.cache_resized`` (train
        without ``scale_jitter``, and test) and no ordinary step runs before it.
        """
        cfg = self.config
        train_steps, test_steps = cfg.train_transform().transforms, cfg.test_transform().transforms
        plain = [step] if step is not None and not per_frame else []
        self._frame_step = step if per_frame else None  # run on [C, K, H, W] right after decoding
        self._train_tf = Compose([*plain, *train_steps])
        self._test_tf = Compose([*plain, *test_steps])
        steps = train_steps if self.train else test_steps
        whole: list[ClipTransform] = [step] if step is not None and per_frame else []
        tags = [f"per_frame:{uuid.uuid4().hex}"] if whole else []
        if cfg.cache_resized and not plain and type(steps[0]) in (ShortSideResize, Resize):
            whole.append(steps[0])  # a fixed resize: short side, or resize_hw (MSF-Net's 171 x 128)
            tags.append(f"resize:{cfg.short_side}" if cfg.resize_hw is None else f"resize_hw:{cfg.resize_hw}")
            steps = steps[1:]
        self._whole_steps = whole  # run once on all frames of a video, result cached (FrameCache.read_derived)
        self._whole_tag = "|".join(tags)
        self._rest_tf = Compose(steps)  # what follows them

    def _whole_video(self, frames: np.ndarray) -> np.ndarray:
        """The whole-video steps on every frame: uint8 ``[N, H, W, 3]`` -> float32 ``[N, C, h, w]``."""
        clip = to_tensor_clip(frames)  # [C, N, H, W]
        for step in self._whole_steps:
            clip = step(clip, None)
        return clip.detach().to(torch.float32).permute(1, 0, 2, 3).contiguous().cpu().numpy()

    def __repr__(self) -> str:
        mode = "train" if self.train else "test"
        return (
            f"{self.name}({len(self)} of {self.num_listed} listed videos, {len(self.classes)} classes, {mode}, "
            f"{len(self.missing)} missing)"
        )


# ---------------------------------------------------------------------------------------- helpers


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"split/list file not found: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def _check_split(split: int) -> None:
    if split not in (1, 2, 3):
        raise ValueError(f"split must be 1, 2 or 3, got {split!r}")


class _CaseInsensitiveResolver:
    """Resolve relative paths under ``base`` ignoring case (directory listings cached per instance)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, directory: Path) -> dict[str, str]:
        if directory not in self._listings:
            try:
                self._listings[directory] = {name.lower(): name for name in os.listdir(directory)}
            except OSError:
                self._listings[directory] = {}
        return self._listings[directory]

    def resolve(self, rel: str) -> Path:
        exact = self.base / rel
        if exact.is_file():
            return exact
        current = self.base
        for part in Path(rel).parts:
            name = self._listing(current).get(part.lower())
            if name is None:
                return exact
            current = current / name
        return current if current.is_file() else exact


# ------------------------------------------------------------------------------------------ UCF101


def ucf101_split(root: str | os.PathLike[str], split: int = 1, train: bool = True) -> tuple[list[tuple[Path, int]], list[str]]:
    """Parse ``root/ucfTrainTestlist`` into ``(samples, classes)`` (files need not exist).

    ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based) gives the classes. Train lines carry a 1-based label; test
    lines do not, so their label comes from the folder name (case-insensitive, for ``HandstandPushups`` vs
    ``HandStandPushups``). Videos resolve to ``root/UCF-101/<rel>``, case-insensitively when the exact path
    does not exist.
    """
    _check_split(split)
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    classes: list[str] = []
    for line in _read_lines(lists / "classInd.txt"):
        number, name = line.split(maxsplit=1)
        if int(number) != len(classes) + 1:
            raise ValueError(f"{lists / 'classInd.txt'}: expected class number {len(classes) + 1}, got {line!r}")
        classes.append(name.strip())
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    list_file = lists / f"{'train' if train else 'test'}list0{split}.txt"
    resolver = _CaseInsensitiveResolver(root / "UCF-101")
    samples: list[tuple[Path, int]] = []
    for line in _read_lines(list_file):
        parts = line.split()
        rel = parts[0]
        folder = rel.split("/")[0].lower()
        if folder not in by_lower:
            raise ValueError(f"{list_file}: class folder of {rel!r} is not in classInd.txt")
        label = int(parts[1]) - 1 if len(parts) > 1 else by_lower[folder]
        samples.append((resolver.resolve(rel), label))
    return samples, classes


class OfficialSplitDataset(VideoDataset):
    """A dataset defined by official split files: subclasses set :attr:`parse_split`
    (``(root, split, train) -> (samples, classes)``); everything else is :class:`VideoDataset`."""

    parse_split: Callable[[str | os.PathLike[str], int, bool], tuple[list[tuple[Path, int]], list[str]]]

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: int = 1,
        train: bool = True,
        config: DataConfig = DataConfig(),
        missing: MissingPolicy = "raise",
        on_error: ErrorPolicy = "raise",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        samples, classes = type(self).parse_split(root, split, train)
        super().__init__(samples, classes, config, train, missing, on_error, seed,
                         name=f"{type(self).__name__}(split {split})", **kwargs)


@DATASETS.register("ucf101")
class UCF101(OfficialSplitDataset):
    """UCF101 in its official layout: ``root/UCF-101/<Class>/v_*.avi`` and ``root/ucfTrainTestlist/``.

    Any dataset in the same layout works (the classes come from ``classInd.txt``).
    """

    parse_split = staticmethod(ucf101_split)


# ------------------------------------------------------------------------------------------ HMDB51

_HMDB_SPLIT = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[123])\.txt$")


def hmdb51_split(root: str | os.PathLike[str], split: int = 1, train: bool = True) -> tuple[list[tuple[Path, int]], list[str]]:
    """Parse ``root/testTrainMulti_7030_splits/<class>_test_split<k>.txt`` into ``(samples, classes)``.

    Lines are ``<video>.avi <tag>`` with tag 1 = train, 2 = test, 0 = unused. Classes are the sorted class
    names found in the split file names. Videos resolve to ``root/hmdb51_org/<class>/<video>``.
    """
    _check_split(split)
    root = Path(root)
    split_dir = root / "testTrainMulti_7030_splits"
    if not split_dir.is_dir():
        raise FileNotFoundError(f"HMDB51 split folder not found: {split_dir}")
    files = {}
    for entry in sorted(split_dir.iterdir()):
        m = _HMDB_SPLIT.match(entry.name)
        if m and int(m["k"]) == split:
            files[m["cls"]] = entry
    if not files:
        raise FileNotFoundError(f"no '<class>_test_split{split}.txt' files in {split_dir}")
    classes = sorted(files)
    wanted = "1" if train else "2"
    samples: list[tuple[Path, int]] = []
    for label, cls in enumerate(classes):
        for line in _read_lines(files[cls]):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{files[cls]}: expected '<video> <0|1|2>', got {line!r}")
            if parts[1] == wanted:
                samples.append((root / "hmdb51_org" / cls / parts[0], label))
    return samples, classes


@DATASETS.register("hmdb51")
class HMDB51(OfficialSplitDataset):
    """HMDB51 in its official layout: ``root/hmdb51_org/<class>/*.avi`` + ``root/testTrainMulti_7030_splits/``."""

    parse_split = staticmethod(hmdb51_split)


# -------------------------------------------------------------------------------------------- ARID

#: Folders searched, in order, for an ARID list entry ``Class/Class_<actor>_<n>.avi``.
ARID_VIDEO_DIRS: tuple[str, ...] = ("clips_v1", "clips_v1.5", "")


def arid_split(root: str | os.PathLike[str], split: int = 1, train: bool = True) -> tuple[list[tuple[Path, int]], list[str]]:
    """Parse ``root/splits_v1/ARID_split<k>_{train,test}.txt`` and ``mapping_table.txt``.

    List lines are ``index<TAB>label<TAB>Class/Class_<actor>_<n>.avi``. Each video is looked up in
    ``root/clips_v1/``, then ``root/clips_v1.5/``, then ``root/`` itself; the first existing file wins (a
    missing file is reported at its ``clips_v1`` path).
    """
    _check_split(split)
    root = Path(root)
    splits = root / "splits_v1"
    classes: list[str] = []
    for line in _read_lines(splits / "mapping_table.txt"):
        number, name = line.split(maxsplit=1)
        if int(number) != len(classes):
            raise ValueError(f"{splits / 'mapping_table.txt'}: expected class {len(classes)}, got {line!r}")
        classes.append(name.strip())
    list_file = splits / f"ARID_split{split}_{'train' if train else 'test'}.txt"
    samples: list[tuple[Path, int]] = []
    for line in _read_lines(list_file):
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 3:
            raise ValueError(f"{list_file}: expected 'index<TAB>label<TAB>path', got {line!r}")
        rel = parts[2].strip()
        candidates = [root / d / rel if d else root / rel for d in ARID_VIDEO_DIRS]
        found = next((c for c in candidates if c.is_file()), candidates[0])
        samples.append((found, int(parts[1])))
    return samples, classes


@DATASETS.register("arid")
class ARID(OfficialSplitDataset):
    """ARID (dark videos): split lists in ``root/splits_v1/``, videos in ``root/clips_v1/`` (see :func:`arid_split`)."""

    parse_split = staticmethod(arid_split)


# ---------------------------------------------------------------------------------------- manifest


def _manifest_rows(path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line])) if "," in line else line.rsplit(None, 1)
        fields = [f.strip() for f in fields]
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"{path}:{number}: expected 'path,label' or 'path label', got {line!r}")
        rows.append((fields[0], fields[1]))
    if rows and rows[0][0].lower() == "path" and rows[0][1].lower() == "label":
        rows = rows[1:]
    return rows


def manifest_samples(
    rows: Sequence[tuple[str | os.PathLike[str], int | str]],
    root: Path | None,
    classes: Sequence[str] | None = None,
    source: str = "manifest",
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Turn ``(path, label)`` rows (label: int or class name) into samples and classes.

    With class-name labels the classes are ``classes`` if given, else the sorted distinct names. With integer
    labels the classes are ``classes`` if given, else ``["0", "1", ..., str(max label)]``.
    """
    labels = [str(label).strip() for _, label in rows]
    numeric = [lab.lstrip("-").isdigit() for lab in labels]
    if any(numeric) and not all(numeric):
        raise ValueError(f"{source}: labels mix integers and class names")
    if all(numeric) and labels:
        ints = [int(lab) for lab in labels]
        names = list(classes) if classes is not None else [str(i) for i in range(max(ints) + 1)]
    else:
        names = list(classes) if classes is not None else sorted(set(labels))
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(labels) - set(lookup))
        if unknown:
            raise ValueError(f"{source}: labels {unknown[:5]} are not among the given classes")
        ints = [lookup[lab] for lab in labels]
    samples = []
    for (p, _), label in zip(rows, ints):
        path = Path(p)
        samples.append((path if path.is_absolute() or root is None else root / path, label))
    return samples, names


class ManifestDataset(VideoDataset):
    """Videos listed in a manifest file or given as a list.

    Args:
        manifest: a file with one ``path,label`` (CSV) or ``path label`` (whitespace) per line, an optional
            ``path,label`` header and ``#`` comments; or a list of ``(path, label)`` pairs. Labels are ints or
            class names.
        root: base of relative paths (default: the manifest file's folder; for a list: paths as given).
        classes: class names (optional; see :func:`manifest_samples`).
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str] | Sequence[tuple[str | os.PathLike[str], int | str]],
        root: str | os.PathLike[str] | None = None,
        train: bool = True,
        config: DataConfig = DataConfig(),
        missing: MissingPolicy = "raise",
        on_error: ErrorPolicy = "raise",
        seed: int = 0,
        classes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(manifest, (str, os.PathLike)):
            path = Path(manifest)
            if not path.is_file():
                raise FileNotFoundError(f"manifest file not found: {path}")
            rows: Sequence[tuple[Any, Any]] = _manifest_rows(path)
            base = Path(root) if root is not None else path.parent
            source = str(path)
        else:
            rows, base, source = list(manifest), (Path(root) if root is not None else None), "manifest list"
        samples, names = manifest_samples(rows, base, classes, source)
        super().__init__(samples, names, config, train, missing, on_error, seed, name=f"Manifest({source})", **kwargs)


# ------------------------------------------------------------------------------------------ factory


@DATASETS.register("manifest")
def manifest_dataset(root: str | os.PathLike[str], *, split: int = 1, **kwargs: Any) -> ManifestDataset:
    """The registry's ``"manifest"`` builder: ``root`` is the manifest file; ``split`` is ignored."""
    del split  # a manifest lists one split; accepted so that every registered builder takes the same arguments
    return ManifestDataset(root, **kwargs)


def build_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    split: int = 1,
    train: bool = True,
    config: DataConfig = DataConfig(),
    missing: MissingPolicy = "raise",
    on_error: ErrorPolicy = "raise",
    seed: int = 0,
    **kwargs: Any,
) -> VideoDataset:
    """``DATASETS.build(name, root, ...)``: a registered dataset by name (``"manifest"``: ``root`` is the file).

    ``kwargs`` go to the dataset (``cache=``, ``max_attempts=``).

    Raises:
        ValueError: ``name`` is not registered (the message lists :data:`DATASET_NAMES`).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASET_NAMES}")
    return DATASETS.build(name, root, split=split, train=train, config=config, missing=missing, on_error=on_error,
                          seed=seed, **kwargs)


#: The registered dataset names, sorted (``DATASETS.names()``).
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS.names())
