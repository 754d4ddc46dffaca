"""Shared steps of the two-stream experiments (notebooks 02 STILT and 03 T-STAM): frames + optical flow.

Both papers train on RGB frames and stacked TV-L1 flow stored as JPEG folders (the TSN layout written by
:func:`stia_kit.data.flow.extract_tree`), sampled with TSN segments (:mod:`stia_kit.data.frames`). The
parameter groups below sit next to the platform's (``experiments/common.py``):

- :class:`TwoStreamDataFields`: which videos, where their frame folders go, the flow method, segments,
  stack length and crops (it replaces ``DataFields``: a two-stream sample has no ``num_frames`` / ``stride``);
- :class:`~stia_kit.experiments.common.ScheduleFields` (shared): the learning-rate shape, so the papers' step
  schedules are presets too.

:func:`prepare_two_stream_data` generates SynthActions (when ``dataset="synth"``), extracts the flow once
(resumable: a finished video is skipped) and opens the train / validation / test splits as
:class:`~stia_kit.data.frames.TwoStreamDataset` of the requested modality. The training and testing step
is the platform's :func:`~stia_kit.experiments.common.train_and_test`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import cv2
import numpy as np

from ..data.datasets import ARID_VIDEO_DIRS
from ..data.flow import FlowConfig, FlowSummary, compute_flow, dequantise_flow, extract_tree, quantise_flow
from ..data.video_io import read_clip
from ..data.frames import TwoStreamConfig, TwoStreamDataset, build_two_stream_dataset
from ..synth import generate_synth_actions
from .common import (SYNTH_LAYOUT, DataSplits, DatasetName, ParamGroup, _resolved, holdout_groups, synth_config,
                     synth_workers)

Modality = Literal["rgb", "flow", "both"]


@dataclass(frozen=True)
class TwoStreamDataFields(ParamGroup):
    """Which videos, their frame + flow folders, and the TSN segment sampling fed to two-stream models."""

    dataset: DatasetName = "synth"  # synth = SynthActions generated under data_root (UCF101 layout)
    data_root: str = "data/synth_two_stream"  # dataset root (official layout) or where SynthActions is generated
    frames_root: str = ""  # where the img_/flow_ folders are written and read ("" = <data_root>/frames)
    split: int = 1  # official split 1..3
    missing: Literal["raise", "skip"] = "raise"  # videos listed in the split without a finished frame folder
    on_error: Literal["raise", "skip"] = "skip"  # unreadable frame folders: fail, or substitute and report
    val_fraction: float = 0.0  # hold out this fraction of the training groups for validation (0 = none)
    flow_method: Literal["tvl1", "farneback", "dis"] = "dis"  # optical flow (both papers, the paper preset: TV-L1; DIS: ~60x faster end to end at 64 px, benchmarks/flow.py)
    flow_bound: float = 20.0  # flow clipped to +-bound before quantising to [0, 255] (TSN / dense_flow convention)
    flow_workers: int = 2  # processes extracting flow
    num_segments: int = 3  # TSN segments per training sample (STILT never states it: TSN convention 3)
    new_length: int = 5  # L flow fields per stack (2L input channels)
    test_segments: int = 5  # segments per test video (TSN protocol: 25)
    test_crops: int = 1  # spatial test crops: 1 (centre) or 10 (TenCrop; TSN protocol)
    short_side: int = 64  # resize the frames' short side to this
    crop_size: int = 56  # square crop fed to the model
    train_crop: Literal["multiscale", "random", "center"] = "multiscale"  # TSN fixed-corner multi-scale crop
    normalize: Literal["imagenet", "bgr255"] = "imagenet"  # input scaling: ImageNet mean/std, or BN-Inception's BGR 0-255 (TSN convention, for its weights)
    frame_cache_mb: int = 256  # in-memory cache of decoded JPEG folders per dataset (0 = off; SynthActions needs ~200)

    def _check(self) -> None:
        if self.split not in (1, 2, 3):
            self._fail("split", "must be 1, 2 or 3")
        if self.test_crops not in (1, 10):
            self._fail("test_crops", "must be 1 or 10")
        self._at_least(1, "flow_workers", "num_segments", "new_length", "test_segments", "short_side", "crop_size")
        self._at_least(0, "frame_cache_mb")
        if self.crop_size > self.short_side:
            self._fail("crop_size", f"must not exceed short_side={self.short_side}")
        if not 0.0 <= self.val_fraction < 1.0:
            self._fail("val_fraction", "must be in [0, 1)")
        if not self.flow_bound > 0:
            self._fail("flow_bound", "must be > 0")


# ---------------------------------------------------------------------------------------------- data
def frames_dir(p: TwoStreamDataFields) -> Path:
    """The frame + flow folder tree of ``p``."""
    p = _resolved(p)
    return Path(p.frames_root) if p.frames_root else Path(p.data_root) / "frames"


def layout_of(p: TwoStreamDataFields) -> str:
    return SYNTH_LAYOUT if p.dataset == "synth" else p.dataset


def video_dir(layout: str, root: str | Path) -> Path:
    """The folder holding a dataset's class folders of videos (what the flow extraction mirrors)."""
    root = Path(root)
    if layout == "ucf101":
        return root / "UCF-101"
    if layout == "hmdb51":
        return root / "hmdb51_org"
    if layout == "arid":
        for d in ARID_VIDEO_DIRS:
            if d and (root / d).is_dir():
                return root / d
        return root
    raise ValueError(f"unknown dataset layout {layout!r}; expected ucf101, hmdb51 or arid")


def flow_config(p: TwoStreamDataFields) -> FlowConfig:
    p = _resolved(p)
    return FlowConfig(method=p.flow_method, bound=p.flow_bound)


def extract_flow(p: TwoStreamDataFields, *, progress: bool = True) -> FlowSummary:
    """Extract RGB frames and flow of every video of ``p``'s dataset into :func:`frames_dir` (resumable)."""
    p = _resolved(p)
    return extract_tree(video_dir(layout_of(p), p.data_root), frames_dir(p), flow_config(p),
                        workers=p.flow_workers, progress=progress)


def two_stream_config(p: TwoStreamDataFields, modality: Modality, **overrides: Any) -> TwoStreamConfig:
    """The sampling / transform configuration of ``p`` for ``modality``."""
    p = _resolved(p)
    values: dict[str, Any] = dict(modality=modality, num_segments=p.num_segments, new_length=p.new_length,
                                  test_segments=p.test_segments, test_crops=p.test_crops, short_side=p.short_side,
                                  crop_size=p.crop_size, train_crop=p.train_crop, normalize=p.normalize,
                                  frame_cache_mb=p.frame_cache_mb)
    values.update(overrides)
    return TwoStreamConfig(**values)


def open_two_stream(p: TwoStreamDataFields, *, train: bool, modality: Modality = "both",
                    test_views: bool | None = None, **config: Any) -> TwoStreamDataset:
    """One official split of ``p`` as a :class:`TwoStreamDataset`. ``test_views`` (default: ``not train``)
    reads the split with the test protocol (e.g. training-set scores for AWF, STILT section 3.3)."""
    p = _resolved(p)
    ds = build_two_stream_dataset(layout_of(p), p.data_root, frames_dir(p), split=p.split, train=train,
                                  config=two_stream_config(p, modality, **config), missing=p.missing,
                                  on_error=p.on_error, seed=getattr(p, "seed", 0))
    if test_views is not None and test_views == train:
        ds = TwoStreamDataset(ds.samples, ds.classes, ds.config, train=not test_views, missing=p.missing,
                              on_error=p.on_error, seed=ds.seed, name=f"{ds.name}[{'test' if test_views else 'train'} views]")
    return ds


def prepare_two_stream_data(p: Any, *, modality: Modality = "both", progress: bool = True) -> DataSplits:
    """SynthActions (when ``p.dataset == "synth"``; a no-op when complete), flow extraction (finished videos
    are skipped), then the training split (minus the validation groups) and the test split."""
    p = _resolved(p)
    if p.dataset == "synth":
        generate_synth_actions(p.data_root, synth_config(p), progress=progress, workers=synth_workers())
    summary = extract_flow(p, progress=progress)
    if summary.failed and p.on_error == "raise":
        raise RuntimeError(f"flow extraction failed for {len(summary.failed)} videos (on_error='raise'): "
                           + "; ".join(summary.failed[:3]))
    train, val = holdout_groups(open_two_stream(p, train=True, modality=modality), p.val_fraction, p.seed)
    return DataSplits(train, val, open_two_stream(p, train=False, modality=modality))


def input_shapes(p: TwoStreamDataFields, modality: Modality) -> dict[str, tuple[int, int, int, int]]:
    """``{key: (C, N, H, W)}`` of one training sample of ``modality`` (for the meta-device model check)."""
    p = _resolved(p)
    shapes = {"rgb": (3, p.num_segments, p.crop_size, p.crop_size),
              "flow": (2 * p.new_length, p.num_segments, p.crop_size, p.crop_size)}
    return shapes if modality == "both" else {modality: shapes[modality]}


def with_modality(splits: DataSplits, modality: Modality) -> DataSplits:
    """The same splits reading only ``modality`` (per-stream training)."""
    return DataSplits(splits.train.with_modality(modality),
                      splits.val.with_modality(modality) if splits.val is not None else None,
                      splits.test.with_modality(modality))


def model_inputs_summary(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {list(v)}" for k, v in shapes.items())


# ---------------------------------------------------------------------------------------------- teaching helpers
def read_frame_folder(folder: str | Path, *, bound: float = 20.0, max_frames: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The RGB frames and the de-quantised flow of one extracted video folder (TSN layout).

    Shape:
        returns (uint8 ``[n, H, W, 3]`` RGB, float32 ``[n - 1, H, W, 2]`` flow in pixels, clipped to +-bound).
    """
    folder = Path(folder)
    imgs = sorted(folder.glob("img_*.jpg"))[:max_frames]
    if not imgs:
        raise FileNotFoundError(f"{folder}: no img_*.jpg frames (run the flow extraction first)")
    rgb = np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in imgs])
    flows = []
    for k in range(1, len(imgs)):
        fx = cv2.imread(str(folder / f"flow_x_{k:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
        fy = cv2.imread(str(folder / f"flow_y_{k:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
        if fx is None or fy is None:
            break
        flows.append(dequantise_flow(np.stack([fx, fy], axis=-1), bound))
    return rgb, np.stack(flows) if flows else np.zeros((0, *rgb.shape[1:3], 2), np.float32)


def flow_demo(video: str | Path, *, frames: int = 8, method: str = "tvl1", bound: float = 20.0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Flow of the first ``frames`` frames of a video file, computed in memory (nothing written).

    Shape:
        returns (uint8 ``[frames, H, W, 3]``, float32 ``[frames - 1, H, W, 2]``), the flow quantised and
        de-quantised as it would be stored (so it shows what a model sees).
    """
    rgb, _, _ = read_clip(video, lambda n: np.arange(min(frames, n)), "pyav")
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]
    cfg = FlowConfig(method=method, bound=bound)  # type: ignore[arg-type]
    flows = [dequantise_flow(quantise_flow(compute_flow(a, b, cfg), bound), bound) for a, b in zip(grey, grey[1:])]
    return rgb, np.stack(flows)


def real_clip(prefer: str = "") -> Path | None:
    """A real UCF101 clip from ``../shared/realdata`` next to the repository (``prefer``: a path or a file name
    part), or None when the folder is absent."""
    if prefer and Path(prefer).is_file():
        return Path(prefer)
    base = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "ucf101" / "UCF-101"
    clips = sorted(base.glob("*/*.avi")) if base.is_dir() else []
    chosen = [c for c in clips if prefer and prefer in c.name] or clips
    return chosen[0] if chosen else None
