"""STIA-Kit data layer: decoding, frame sampling, clip transforms, datasets and dataset checks.

Quick start::

    from stia_kit.data import DataConfig, build_dataset
    ds = build_dataset("ucf101", "/data/ucf101", split=1, train=True, config=DataConfig(), missing="skip")
    sample = ds[0]   # {"video": [C, T, H, W] float32, "label": int, "index": int, "failed": str}

Decoded frames are kept in a process-wide, size-bounded :class:`FrameCache` (see :mod:`stia_kit.data.cache`),
so later epochs, models and ablation rows skip decoding; ``DataConfig(frame_cache=False)`` turns it off.
"""

from .cache import CacheStats, FrameCache, configure_default_cache, default_cache, set_default_cache
from .check import CheckReport, detect_layout, check_videos, find_videos, format_report
from .config import KINETICS_MEAN, KINETICS_STD, DataConfig
from .datasets import (
    ARID,
    DATASET_NAMES,
    DATASETS,
    HMDB51,
    UCF101,
    ManifestDataset,
    MissingVideosError,
    NoReadableSampleError,
    VideoDataset,
    arid_split,
    build_dataset,
    hmdb51_split,
    manifest_samples,
    ucf101_split,
)
from .sampling import clip_span, dense_indices, tsn_indices
from .transforms import (
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShortSideResize,
    ShortSideResize,
    TenCrop,
    ThreeCrop,
    resize_clip,
    to_tensor_clip,
)
from .video_io import VIDEO_SUFFIXES, VideoInfo, VideoReadError, decode_all, num_frames, probe, read_clip, read_frames

__all__ = [
    "ARID", "CacheStats", "CenterCrop", "CheckReport", "Compose", "DATASETS", "DATASET_NAMES", "DataConfig",
    "FrameCache", "HMDB51", "KINETICS_MEAN", "KINETICS_STD", "ManifestDataset", "MissingVideosError",
    "MultiScaleCrop", "NoReadableSampleError", "Normalize", "RandomCrop", "RandomHorizontalFlip",
    "RandomShortSideResize", "ShortSideResize", "TenCrop", "ThreeCrop", "UCF101", "VIDEO_SUFFIXES", "VideoDataset",
    "VideoInfo", "VideoReadError", "arid_split", "build_dataset", "check_videos", "clip_span",
    "configure_default_cache", "decode_all", "default_cache", "dense_indices", "detect_layout", "find_videos",
    "format_report", "hmdb51_split", "manifest_samples", "num_frames", "probe", "read_clip", "read_frames",
    "resize_clip", "set_default_cache", "to_tensor_clip", "tsn_indices", "ucf101_split",
]

# optical flow extraction into TSN frame folders (stia data flow)
from .flow import (  # noqa: E402
    FlowConfig,
    FlowSummary,
    VideoFlowResult,
    compute_flow,
    dequantise_flow,
    extract_tree,
    extract_video,
    flow_backend_check,
    flow_to_rgb,
    flow_wheel,
    is_complete,
    load_flow,
    quantise_flow,
    read_marker,
)

__all__ += [
    "FlowConfig", "FlowSummary", "VideoFlowResult", "compute_flow", "dequantise_flow", "extract_tree",
    "extract_video", "flow_backend_check", "flow_to_rgb", "flow_wheel", "is_complete", "load_flow",
    "quantise_flow", "read_marker",
]

# frame folders + flow stacks (two-stream samples)
from .frames import (  # noqa: E402
    FrameReadError,
    ImageCache,
    MissingFramesError,
    TwoStreamConfig,
    TwoStreamDataset,
    build_two_stream_dataset,
    flow_channel_order,
    frames_split,
)
from .sampling import stack_field_indices, tsn_stack_indices  # noqa: E402
from .transforms import FixedCornerMultiScaleCrop, RandomHorizontalFlipFlow, TenCropFlow, invert_flow_x  # noqa: E402

__all__ += [
    "FixedCornerMultiScaleCrop", "FrameReadError", "ImageCache", "MissingFramesError", "RandomHorizontalFlipFlow",
    "TenCropFlow", "TwoStreamConfig", "TwoStreamDataset", "build_two_stream_dataset", "flow_channel_order",
    "frames_split", "invert_flow_x", "stack_field_indices", "tsn_stack_indices",
]

from .sampling import num_windows, window_indices  # noqa: E402  (every non-overlapping test window)
from .transforms import RandomContrast, RandomSizeCrop, Resize  # noqa: E402  (ST-MANet / MSF-Net protocols)

__all__ += ["num_windows", "window_indices", "RandomContrast", "RandomSizeCrop", "Resize"]
