"""Optical flow extraction into the TSN frame-folder layout (``stia data flow``, ``data_prep/extract_flow.py``).

Every video under a source tree becomes one folder (``src/Class/v_x.avi -> dst/Class/v_x/``) holding

- ``img_00001.jpg ... img_<n>.jpg``: the n decoded RGB frames (``rgb=True``);
- ``flow_x_00001.jpg ... flow_x_<n-1>.jpg`` and ``flow_y_*``: the n-1 flow fields, one grey JPEG per
  component; field t is the flow from frame t to frame t+1 (both 1-based), so ``img_t`` and ``flow_*_t``
  share the frame index;
- ``.flow_done.json``: the completion marker, written atomically and LAST.

Readings (labels as in ``../shared/specs/two_stream.md``):

- paper: TV-L1 flow (STILT Sec. 4.1 "TVL1 method ... stored as JPEG images"; T-STAM Sec. 4.2 "TV-L1 ...
  quantizing the flow data to [0, 255] through linear transformation"). Farneback and DIS are fast options
  neither paper uses.
- TSN convention (dense_flow, the "tool provided by Wang et al." of T-STAM Sec. 4.2): TV-L1 with OpenCV's
  default parameters on grey frames; each component clipped to ``+-bound`` pixels (default 20) and mapped
  linearly, ``q = round(255 (v + bound) / (2 bound))``, so zero motion is 128; JPEG quality 95 (OpenCV's
  default); resizing (``short_side``) happens before the flow, and flow values are never rescaled.
- reading: dense_flow writes n-1 RGB images (the second frame of every pair); the kit writes all n frames,
  so ``img_t`` is the first frame of field t and the frame-folder datasets can put the RGB frame at the
  centre of a flow stack. ``short_side`` keeps the aspect ratio (dense_flow resizes to a fixed W x H).
- reading: Farneback uses the OpenCV tutorial parameters (:data:`FARNEBACK_PARAMS`), DIS an OpenCV preset
  (``FlowConfig.dis_preset``).

Decoding is strict and sequential with PyAV (as :mod:`stia_kit.data.video_io` does for packed-bitstream
AVIs): each video is decoded ONCE and the RGB image and the grey frame for the flow come from the same
decoded frame, so the two modalities cannot disagree on indices. A damaged or truncated file raises
:class:`~stia_kit.data.video_io.VideoReadError` (the tree run reports it and goes on).

Resumability: a folder counts as finished only when its marker is valid, names the same settings and the
same source (size and mtime) and the file counts match (:func:`is_complete`). Any other folder that holds
extraction files is "half written" (an interrupted run): its files are deleted and the video redone.

This module does not need torch; pool workers are spawned processes that set ``cv2.setNumThreads(1)``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from ..fileio import write_json_atomic
from ..progress import Progress
from .check import find_videos
from .video_io import VideoReadError, _check_file, _open_av, _pyav_count, _video_stream, probe

__all__ = [
    "DIS_PRESETS", "FLOW_METHODS", "FLOW_MARKER", "FLOW_SUMMARY", "DisPreset", "FlowConfig", "FlowMethod",
    "FlowSummary", "VideoFlowResult", "compute_flow", "dequantise_flow", "extract_tree", "extract_video",
    "flow_backend_check", "flow_to_rgb", "flow_wheel", "is_complete", "iter_video_frames", "load_flow",
    "make_flow_estimator", "quantise_flow", "read_marker",
]

FlowMethod = Literal["tvl1", "farneback", "dis"]
FLOW_METHODS: tuple[str, ...] = ("tvl1", "farneback", "dis")
DisPreset = Literal["ultrafast", "fast", "medium"]
DIS_PRESETS: tuple[str, ...] = ("ultrafast", "fast", "medium")
#: completion marker written last (atomically) into every finished video folder
FLOW_MARKER = ".flow_done.json"
#: the tree run's summary, written atomically into the destination root
FLOW_SUMMARY = "flow_summary.json"
MARKER_FORMAT = 1  # bump when the folder layout changes: older markers then count as half written
#: reading: Farneback parameters of the OpenCV tutorial (neither paper uses Farneback)
FARNEBACK_PARAMS: dict[str, float | int] = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
                                                poly_sigma=1.2, flags=0)
_IMG, _FX, _FY = "img_", "flow_x_", "flow_y_"


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class FlowConfig:
    """How flow (and RGB) images are extracted; validated on construction (errors name the field)."""

    method: FlowMethod = "tvl1"  # paper: TV-L1 (STILT 4.1, T-STAM 4.2); "farneback" / "dis": fast options
    bound: float = 20.0  # TSN convention (dense_flow): clip to +-bound pixels, then map linearly to [0, 255]
    jpeg_quality: int = 95  # JPEG quality of every image (TSN convention: OpenCV's default, as dense_flow)
    short_side: int | None = None  # resize frames (short side, aspect kept) before flow and RGB; None = native
    rgb: bool = True  # also write img_*.jpg from the same decode
    max_frames: int | None = None  # decode at most this many frames per video (demos, tests); None = all
    dis_preset: DisPreset = "medium"  # method="dis" only: OpenCV DISOpticalFlow preset

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            _fail("method", f"must be one of {list(FLOW_METHODS)}, got {self.method!r}")
        if isinstance(self.bound, bool) or not isinstance(self.bound, (int, float)) or not (
                math.isfinite(self.bound) and self.bound > 0):
            _fail("bound", f"must be a finite number > 0 (pixels), got {self.bound!r}")
        _int_field(self.jpeg_quality, "jpeg_quality", 1, 100)
        if self.short_side is not None:
            _int_field(self.short_side, "short_side", 8, None)
        if not isinstance(self.rgb, bool):
            _fail("rgb", f"must be a bool, got {self.rgb!r}")
        if self.max_frames is not None:
            _int_field(self.max_frames, "max_frames", 2, None)
        if self.dis_preset not in DIS_PRESETS:
            _fail("dis_preset", f"must be one of {list(DIS_PRESETS)}, got {self.dis_preset!r}")

    def settings(self) -> dict[str, Any]:
        """The fields that determine the written files (stored in the marker, compared on resume)."""
        d = asdict(self)
        d["bound"] = float(self.bound)
        if self.method != "dis":
            d.pop("dis_preset")
        return d


def _fail(name: str, message: str) -> None:
    raise ValueError(f"FlowConfig.{name} {message}")


def _int_field(value: object, name: str, lo: int, hi: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, f"must be an int, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):  # type: ignore[operator]
        _fail(name, f"must be in [{lo}, {hi}], got {value}" if hi is not None else f"must be >= {lo}, got {value}")


def _as_config(cfg_or_method: FlowConfig | str) -> FlowConfig:
    if isinstance(cfg_or_method, FlowConfig):
        return cfg_or_method
    return FlowConfig(method=cfg_or_method)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- backends


def _tvl1_constructor() -> Callable[[], Any] | None:
    """The TV-L1 factory of this OpenCV build, or None (names differ between OpenCV 4 and 5 wheels)."""
    optflow = getattr(cv2, "optflow", None)
    if optflow is None:
        return None
    cls = getattr(optflow, "DualTVL1OpticalFlow", None)
    if cls is not None and hasattr(cls, "create"):
        return cls.create
    return getattr(optflow, "createOptFlow_DualTVL1", None)


def flow_backend_check(method: FlowMethod | str) -> None:
    """Raise a clear error when this OpenCV build lacks ``method``.

    Raises:
        ValueError: unknown method.
        RuntimeError: TV-L1 without OpenCV's contrib module ``cv2.optflow`` (or a core function missing).
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"flow method must be one of {list(FLOW_METHODS)}, got {method!r}")
    if method == "tvl1" and _tvl1_constructor() is None:
        raise RuntimeError(
            f"TV-L1 optical flow needs OpenCV's contrib module cv2.optflow "
            f"(cv2.optflow.DualTVL1OpticalFlow.create or cv2.optflow.createOptFlow_DualTVL1), which this "
            f"cv2 {cv2.__version__} does not have: install the pinned opencv-contrib-python-headless "
            f"(not opencv-python / opencv-python-headless, which shadow it), or use method 'farneback' or 'dis'")
    if method == "dis" and not hasattr(cv2, "DISOpticalFlow"):
        raise RuntimeError(f"cv2 {cv2.__version__} has no cv2.DISOpticalFlow (OpenCV >= 3.4 core)")
    if method == "farneback" and not hasattr(cv2, "calcOpticalFlowFarneback"):
        raise RuntimeError(f"cv2 {cv2.__version__} has no cv2.calcOpticalFlowFarneback")


def make_flow_estimator(cfg_or_method: FlowConfig | FlowMethod = "tvl1") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A reusable ``(prev_grey, next_grey) -> flow`` function (one OpenCV object per video, not per pair).

    Shape:
        grey frames uint8 ``[H, W]`` -> flow float32 ``[H, W, 2]`` (dx, dy) in pixels, with
        ``prev(y, x) ~ next(y + dy, x + dx)`` (OpenCV convention: rightward motion has dx > 0).
    """
    cfg = _as_config(cfg_or_method)
    flow_backend_check(cfg.method)
    if cfg.method == "tvl1":
        tvl1 = _tvl1_constructor()()  # type: ignore[misc]  # TSN convention: OpenCV defaults, as dense_flow

        def estimate(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return tvl1.calc(prev, nxt, None)
    elif cfg.method == "dis":
        preset = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                  "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[cfg.dis_preset]
        dis = cv2.DISOpticalFlow.create(preset)

        def estimate(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return dis.calc(prev, nxt, None)
    else:

        def estimate(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, **FARNEBACK_PARAMS)

    def checked(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        _check_grey(prev, "prev_gray")
        _check_grey(nxt, "next_gray")
        if prev.shape != nxt.shape:
            raise ValueError(f"prev_gray {prev.shape} and next_gray {nxt.shape} must have the same shape")
        return np.asarray(estimate(prev, nxt), dtype=np.float32)

    return checked


def _check_grey(img: np.ndarray, name: str) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 2 or img.dtype != np.uint8:
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"{name} must be a grey uint8 [H, W] array, got {got}")


def compute_flow(prev_gray: np.ndarray, next_gray: np.ndarray, cfg_or_method: FlowConfig | FlowMethod = "tvl1",
                 *, estimator: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Dense flow from ``prev_gray`` to ``next_gray`` (pass ``estimator`` to reuse one over many pairs).

    Shape:
        uint8 ``[H, W]`` x 2 -> float32 ``[H, W, 2]``: (dx, dy) in pixels (see :func:`make_flow_estimator`).
    """
    if estimator is None:
        estimator = make_flow_estimator(cfg_or_method)
    return estimator(prev_gray, next_gray)


# ------------------------------------------------------------------------------------------ quantisation


def _check_bound(bound: float) -> float:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a finite number > 0, got {bound!r}")
    return float(bound)


def quantise_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """TSN convention (dense_flow's ``CAST``): clip to ``+-bound``, ``q = round(255 (v + bound) / (2 bound))``.

    Zero motion maps to 128 (127.5 rounded to even); ``-bound`` to 0, ``+bound`` to 255.

    Shape:
        float ``[H, W, 2]`` (any shape) -> uint8, same shape.
    """
    bound = _check_bound(bound)
    v = np.clip(np.asarray(flow, dtype=np.float32), -bound, bound)
    return np.rint((v + bound) * np.float32(255.0 / (2.0 * bound))).astype(np.uint8)


def dequantise_flow(q: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Inverse of :func:`quantise_flow` up to quantisation: ``v = q 2 bound / 255 - bound`` (|error| <= bound/255
    for values inside the bound).

    Shape:
        uint8 ``[H, W, 2]`` (any shape) -> float32, same shape.
    """
    bound = _check_bound(bound)
    return np.asarray(q, dtype=np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)


# -------------------------------------------------------------------------------------------- decoding


def iter_video_frames(path: str | os.PathLike[str], max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode ``path`` once, sequentially and strictly (FFmpeg ``err_detect=explode``), yielding RGB frames.

    The same decoding as ``video_io``'s PyAV path, but streamed (one frame in memory). A demux pass first
    counts the picture packets (DivX skip packets excluded) and checks the container header; decoding fewer
    frames than that count is reported as truncation.

    Shape:
        yields uint8 ``[H, W, 3]`` (RGB).

    Raises:
        VideoReadError: missing / empty / non-video / truncated / undecodable file (names file and reason).
    """
    path = Path(path)
    _check_file(path)
    expected = _pyav_count(path, probe(path))
    if expected <= 0:
        raise VideoReadError(path, "no decodable video frames")
    decoded = 0
    with _open_av(path) as container:
        stream = _video_stream(path, container)
        stream.codec_context.options = {"err_detect": "explode"}
        stream.codec_context.thread_count = 1  # one core per worker; the flow dominates the time anyway
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                decoded += 1
                if max_frames is not None and decoded >= max_frames:
                    return
        except av.error.FFmpegError as exc:
            raise VideoReadError(
                path, f"truncated/undecodable frame at index {decoded} ({exc.strerror or exc})") from exc
    if decoded == 0:
        raise VideoReadError(path, "no decodable video frames")
    if decoded < expected:
        raise VideoReadError(
            path, f"truncated/undecodable frame at index {decoded} (decoded {decoded} of {expected} frames)")


def _short_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """``(height, width)`` with the short side ``size``; the rounding of ``transforms.ShortSideResize``."""
    if h <= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


def _resize(frame: np.ndarray, short_side: int | None) -> np.ndarray:
    if short_side is None:
        return frame
    h, w = frame.shape[:2]
    nh, nw = _short_side_size(h, w, short_side)
    if (nh, nw) == (h, w):
        return frame
    interp = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
    return cv2.resize(frame, (nw, nh), interpolation=interp)


# ------------------------------------------------------------------------------------------ video folder


@dataclass(frozen=True)
class VideoFlowResult:
    """What :func:`extract_video` did for one video."""

    video: Path  # source file
    out_dir: Path  # its frame folder
    status: Literal["done", "redone", "skipped"]  # new / half-written folder redone / already finished
    n_frames: int  # decoded frames (img_* files when rgb)
    n_flow: int  # flow fields (flow_x_* = flow_y_* files) = n_frames - 1
    height: int  # size of the written images
    width: int
    seconds: float  # wall time of this call


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"{path}: OpenCV could not encode the JPEG")
    with open(path, "wb") as fh:
        fh.write(buf.tobytes())


def _is_output_name(name: str) -> bool:
    """Files this module writes into a video folder (the only ones it ever deletes)."""
    if name == FLOW_MARKER or (name.startswith(f".{FLOW_MARKER}.") and name.endswith(".tmp")):
        return True  # the marker and fileio's temporary marker files
    return name.endswith(".jpg") and name.startswith((_IMG, _FX, _FY))


def _count_outputs(out_dir: Path) -> tuple[int, int, int]:
    n_img = n_fx = n_fy = 0
    with os.scandir(out_dir) as it:
        for entry in it:
            name = entry.name
            if not name.endswith(".jpg"):
                continue
            if name.startswith(_IMG):
                n_img += 1
            elif name.startswith(_FX):
                n_fx += 1
            elif name.startswith(_FY):
                n_fy += 1
    return n_img, n_fx, n_fy


def _clear_outputs(out_dir: Path) -> int:
    """Delete the marker first, then every extraction file of ``out_dir``; returns how many were deleted."""
    if not out_dir.is_dir():
        return 0
    removed = 0
    marker = out_dir / FLOW_MARKER
    if marker.exists():
        marker.unlink()
        removed += 1
    with os.scandir(out_dir) as it:
        names = [e.name for e in it if _is_output_name(e.name)]
    for name in names:
        (out_dir / name).unlink(missing_ok=True)
        removed += 1
    return removed


def _source_stamp(video: Path) -> dict[str, Any]:
    st = video.stat()
    return {"name": video.name, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def read_marker(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The completion marker of a video folder, or None when it is missing, unreadable or malformed."""
    path = Path(out_dir) / FLOW_MARKER
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    for key in ("n_frames", "n_flow", "n_img"):
        if not isinstance(marker.get(key), int) or marker[key] < 0:
            return None
    if marker["n_flow"] != marker["n_frames"] - 1 or not isinstance(marker.get("settings"), dict):
        return None
    if not isinstance(marker.get("source"), dict):
        return None
    return marker


def is_complete(out_dir: str | os.PathLike[str], cfg: FlowConfig | None = None, *,
                source: str | os.PathLike[str] | None = None) -> bool:
    """True when ``out_dir`` holds a finished extraction.

    The marker must be present and valid and the ``img_*`` / ``flow_x_*`` / ``flow_y_*`` counts must equal
    its counts; with ``cfg`` the marker's settings must equal ``cfg.settings()``; with ``source`` the video's
    size and mtime must equal the ones recorded (a replaced video is redone).
    """
    out_dir = Path(out_dir)
    marker = read_marker(out_dir)
    if marker is None:
        return False
    if cfg is not None and marker["settings"] != json.loads(json.dumps(cfg.settings())):
        return False
    if source is not None:
        try:
            stamp = _source_stamp(Path(source))
        except OSError:
            return False
        if any(marker["source"].get(k) != stamp[k] for k in ("size", "mtime_ns")):
            return False
    try:
        counts = _count_outputs(out_dir)
    except OSError:
        return False
    return counts == (marker["n_img"], marker["n_flow"], marker["n_flow"])


def _result_from_marker(video: Path, out_dir: Path, marker: dict[str, Any], seconds: float) -> VideoFlowResult:
    return VideoFlowResult(video, out_dir, "skipped", marker["n_frames"], marker["n_flow"],
                           int(marker.get("height", 0)), int(marker.get("width", 0)), seconds)


def extract_video(video: str | os.PathLike[str], out_dir: str | os.PathLike[str], cfg: FlowConfig = FlowConfig(),
                  *, force: bool = False) -> VideoFlowResult:
    """Decode ``video`` once and write its RGB frames, flow fields and (last) the completion marker.

    A finished folder (:func:`is_complete` with ``cfg`` and the source) is skipped unless ``force``; a
    folder with extraction files but no valid marker (half written) is cleared and redone. When the video
    turns out to be unreadable, the files written so far are deleted and the error is raised; an interrupt
    (KeyboardInterrupt, a killed process) leaves them for the next run to clear.

    Raises:
        VideoReadError: the video cannot be decoded, or has fewer than 2 frames.
        RuntimeError: the flow backend is missing (:func:`flow_backend_check`).
    """
    start = time.perf_counter()
    video, out_dir = Path(video), Path(out_dir)
    _check_file(video)
    flow_backend_check(cfg.method)
    if not force and is_complete(out_dir, cfg, source=video):
        return _result_from_marker(video, out_dir, read_marker(out_dir) or {}, time.perf_counter() - start)
    stamp = _source_stamp(video)
    status: Literal["done", "redone"] = "redone" if _clear_outputs(out_dir) else "done"
    out_dir.mkdir(parents=True, exist_ok=True)
    estimator = make_flow_estimator(cfg)
    q = cfg.jpeg_quality
    n = 0
    height = width = 0
    prev: np.ndarray | None = None
    try:
        for rgb in iter_video_frames(video, cfg.max_frames):
            rgb = _resize(rgb, cfg.short_side)  # [H, W, 3]
            n += 1
            if n == 1:
                height, width = rgb.shape[:2]
            if cfg.rgb:
                _write_jpeg(out_dir / f"{_IMG}{n:05d}.jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), q)
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # [H, W] uint8
            if prev is not None:
                flow = quantise_flow(estimator(prev, grey), cfg.bound)  # [H, W, 2] uint8, field n-1 -> n
                _write_jpeg(out_dir / f"{_FX}{n - 1:05d}.jpg", np.ascontiguousarray(flow[..., 0]), q)
                _write_jpeg(out_dir / f"{_FY}{n - 1:05d}.jpg", np.ascontiguousarray(flow[..., 1]), q)
            prev = grey
        if n < 2:
            raise VideoReadError(video, f"{n} decodable frame(s); optical flow needs at least 2")
    except Exception:
        _clear_outputs(out_dir)
        try:
            out_dir.rmdir()  # only when empty: a failed video leaves no folder behind
        except OSError:
            pass
        raise
    seconds = time.perf_counter() - start
    marker = {"format": MARKER_FORMAT, "n_frames": n, "n_flow": n - 1, "n_img": n if cfg.rgb else 0,
              "height": height, "width": width, "method": cfg.method, "bound": float(cfg.bound),
              "settings": cfg.settings(), "source": stamp, "seconds": round(seconds, 3),
              "opencv": cv2.__version__}
    write_json_atomic(out_dir / FLOW_MARKER, marker)  # LAST: its presence means "finished"
    return VideoFlowResult(video, out_dir, status, n, n - 1, height, width, seconds)


def load_flow(out_dir: str | os.PathLike[str], index: int, *, bound: float | None = None) -> np.ndarray:
    """Read field ``index`` (1-based) of a video folder back as pixels (bound from the marker when None).

    Shape:
        returns float32 ``[H, W, 2]`` (dx, dy).
    """
    out_dir = Path(out_dir)
    if bound is None:
        marker = read_marker(out_dir)
        if marker is None:
            raise FileNotFoundError(f"{out_dir}: no valid {FLOW_MARKER}; pass bound= explicitly")
        bound = float(marker["bound"])
    comps = []
    for prefix in (_FX, _FY):
        path = out_dir / f"{prefix}{index:05d}.jpg"
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(f"cannot read flow image {path}")
        comps.append(img)
    return dequantise_flow(np.stack(comps, axis=-1), bound)  # [H, W, 2]


# ------------------------------------------------------------------------------------------------- tree


@dataclass
class FlowSummary:
    """What :func:`extract_tree` did; paths are relative to ``src``, ``failed`` entries are "path: reason"."""

    src: str  # source root
    dst: str  # destination root
    settings: dict[str, Any]  # FlowConfig.settings() of the run
    total: int  # videos found (after ``limit``)
    done: list[str] = field(default_factory=list)  # extracted in this run (no earlier files)
    skipped: list[str] = field(default_factory=list)  # already finished (valid marker), not recomputed
    redone: list[str] = field(default_factory=list)  # half written (or other settings / source): cleared, redone
    failed: list[str] = field(default_factory=list)  # "path: reason" for every video that could not be done
    frames: int = 0  # frames decoded (and images written) in this run
    fields: int = 0  # flow fields computed in this run
    workers: int = 1  # processes used
    seconds: float = 0.0  # wall time

    @property
    def ok(self) -> bool:
        """True when no video failed."""
        return not self.failed

    def format(self) -> str:
        """A few human-readable lines: counts, speed, then one line per failed video."""
        rate = self.fields / self.seconds if self.seconds > 0 else 0.0
        lines = [f"flow ({self.settings.get('method')}): {self.total} videos: {len(self.done)} done, "
                 f"{len(self.skipped)} already finished, {len(self.redone)} redone (half written or stale), "
                 f"{len(self.failed)} failed",
                 f"{self.fields} flow fields / {self.frames} frames in {self.seconds:.1f} s "
                 f"({rate:.1f} fields/s, {self.workers} worker(s)) -> {self.dst}"]
        if self.failed:
            lines.append("failed:")
            lines.extend(f"  {entry}" for entry in self.failed)
        return "\n".join(lines)


def _worker_init() -> None:
    """Pool initialiser of every spawned worker: one OpenCV thread (the pool provides the parallelism)."""
    cv2.setNumThreads(1)


#: reason recorded for a video whose worker process died (segfault, out of memory) - found by rerunning
#: the videos that were in flight one at a time
WORKER_DIED = "worker process died while extracting this video (a crash in FFmpeg/OpenCV or out of memory)"


def _tree_job(video: str, out_dir: str, cfg: FlowConfig) -> tuple[str, int, int, str]:
    """One video in a worker: ``(status, n_frames, n_flow, reason)``; never raises for a bad video."""
    try:
        r = extract_video(video, out_dir, cfg, force=True)
        return r.status, r.n_frames, r.n_flow, ""
    except VideoReadError as exc:
        return "failed", 0, 0, exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the tree
        return "failed", 0, 0, f"{type(exc).__name__}: {exc}"


def extract_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str], cfg: FlowConfig = FlowConfig(), *,
                 workers: int = 2, progress: bool = True, limit: int | None = None) -> FlowSummary:
    """Extract every video under ``src`` (recursively, :data:`VIDEO_SUFFIXES`) into ``dst``.

    ``src/a/b/v.avi -> dst/a/b/v/`` (UCF-101/, hmdb51_org/, ARID clips_v1/ and SynthActions trees alike).
    Finished videos are skipped, half-written ones redone, an unreadable video is reported and skipped (the
    run goes on); the summary is returned and written atomically to ``dst/flow_summary.json``.
    ``workers > 1`` runs a spawn-based process pool (each worker with one OpenCV thread); ``workers=1`` runs
    in this process, also with one OpenCV thread (restored afterwards). ``limit``: only the first ``limit``
    videos (sorted paths). ``progress``: one bar over videos (:mod:`stia_kit.progress`).

    Raises:
        NotADirectoryError: ``src`` is not a directory.
        ValueError: ``dst`` equals ``src``, bad ``workers`` / ``limit``.
        RuntimeError: the flow backend is missing (checked once, before any work).
    """
    start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise NotADirectoryError(f"flow source is not a directory: {src}")
    if src.resolve() == dst.resolve():
        raise ValueError("dst must differ from src (frame folders are named like the videos)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or an int >= 1, got {limit!r}")
    flow_backend_check(cfg.method)
    dst_resolved = dst.resolve()
    videos = [v for v in find_videos(src) if dst_resolved not in v.resolve().parents]
    if limit is not None:
        videos = videos[:limit]
    summary = FlowSummary(str(src), str(dst), cfg.settings(), len(videos))

    jobs: list[tuple[str, Path, Path]] = []  # (relative name, video, out_dir)
    owners: dict[Path, str] = {}
    for video in videos:
        rel = video.relative_to(src)
        out_dir = dst / rel.with_suffix("")
        if out_dir in owners:
            summary.failed.append(f"{rel}: output folder {out_dir} is also the folder of {owners[out_dir]}")
            continue
        owners[out_dir] = str(rel)
        if is_complete(out_dir, cfg, source=video):
            summary.skipped.append(str(rel))
        else:
            jobs.append((str(rel), video, out_dir))

    def record(rel: str, outcome: tuple[str, int, int, str]) -> None:
        status, n_frames, n_flow, reason = outcome
        if status == "failed":
            summary.failed.append(f"{rel}: {reason}")
            return
        (summary.redone if status == "redone" else summary.done).append(rel)
        summary.frames += n_frames
        summary.fields += n_flow

    used = max(1, min(workers, len(jobs)))
    summary.workers = used
    with Progress(len(videos), f"flow {cfg.method}", unit="video", enabled=progress) as bar:
        bar.update(len(videos) - len(jobs), status=f"{len(summary.skipped)} already finished")
        if used == 1:
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                for rel, video, out_dir in jobs:
                    record(rel, _tree_job(str(video), str(out_dir), cfg))
                    bar.update(1, status=f"{rel} ({len(summary.failed)} failed)")
            finally:
                cv2.setNumThreads(threads)
        else:
            _run_pool(jobs, cfg, used, record, bar, summary)
        summary.seconds = time.perf_counter() - start
        bar.close(summary.format().splitlines()[0])
    write_json_atomic(dst / FLOW_SUMMARY, asdict(summary))
    return summary


def _run_pool(jobs: list[tuple[str, Path, Path]], cfg: FlowConfig, workers: int,
              record: Callable[[str, tuple[str, int, int, str]], None], bar: Progress, summary: FlowSummary) -> None:
    """Run the jobs on a spawn pool, at most ``2 * workers`` in flight (an interrupt cancels the rest).

    A worker process that dies breaks the whole pool and every job in flight with it; those jobs are then
    rerun one at a time in a fresh pool (those that had finished are only collected), so only the video
    that kills its worker again is failed (:data:`WORKER_DIED`) and the run goes on.
    """
    ctx = multiprocessing.get_context("spawn")
    queue: deque[tuple[str, Path, Path]] = deque(jobs)
    suspects: deque[tuple[str, Path, Path]] = deque()  # in flight when a worker died: rerun alone

    def submit(pool: ProcessPoolExecutor, job: tuple[str, Path, Path]) -> Future[tuple[str, int, int, str]]:
        return pool.submit(_tree_job, str(job[1]), str(job[2]), cfg)

    def outcome_of(fut: Future[tuple[str, int, int, str]]) -> tuple[str, int, int, str] | None:
        """The job's outcome, or None when the pool broke under it."""
        try:
            return fut.result()
        except BrokenProcessPool:
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result fails its video only
            return ("failed", 0, 0, f"{type(exc).__name__}: {exc}")

    def done(rel: str, outcome: tuple[str, int, int, str]) -> None:
        record(rel, outcome)
        bar.update(1, status=f"{rel} ({len(summary.failed)} failed)")

    pool: ProcessPoolExecutor | None = None
    try:
        while queue or suspects:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
            broken = False
            while suspects and not broken:  # isolation: one suspect at a time pins down the culprit
                job = suspects.popleft()
                marker = read_marker(job[2]) if is_complete(job[2], cfg, source=job[1]) else None
                if marker is not None:  # it had finished; only its result was lost with the pool
                    done(job[0], ("done", marker["n_frames"], marker["n_flow"], ""))
                    continue
                outcome = outcome_of(submit(pool, job))
                broken = outcome is None
                done(job[0], outcome or ("failed", 0, 0, WORKER_DIED))
            pending: dict[Future[tuple[str, int, int, str]], tuple[str, Path, Path]] = {}
            while not broken and (queue or pending):
                while queue and len(pending) < 2 * workers:
                    job = queue.popleft()
                    pending[submit(pool, job)] = job
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = pending.pop(fut)
                    outcome = outcome_of(fut)
                    if outcome is None:
                        broken = True
                        suspects.append(job)
                    else:
                        done(job[0], outcome)
            for fut, job in pending.items():  # the pool broke: the others in flight are suspects too
                outcome = outcome_of(fut)
                if outcome is None:
                    suspects.append(job)
                else:
                    done(job[0], outcome)
            pool.shutdown(wait=not broken, cancel_futures=True)
            pool = None
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise


# -------------------------------------------------------------------------------------------- rendering


def flow_to_rgb(flow: np.ndarray, *, max_magnitude: float | None = None,
                background: Literal["white", "black"] = "white") -> np.ndarray:
    """HSV colour coding of a flow field: hue = direction, strength = magnitude / ``max_magnitude``.

    Hue 0 (red) is rightward motion (dx > 0), then (image y points down) yellow-green downward, cyan
    leftward, blue-violet upward; see :func:`flow_wheel`. ``background="white"``: saturation grows with
    magnitude, zero flow is white (Middlebury-style); ``"black"``: value grows with magnitude, zero flow is
    black (OpenCV tutorial style). ``max_magnitude`` None = the field's largest magnitude (all-zero flow
    gives the background colour); magnitudes above it saturate.

    Shape:
        float ``[H, W, 2]`` (dx, dy) -> uint8 ``[H, W, 3]`` (RGB).
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [H, W, 2], got shape {flow.shape}")
    if flow.dtype == np.uint8:
        raise ValueError("flow_to_rgb expects flow in pixels; convert quantised images with dequantise_flow")
    if background not in ("white", "black"):
        raise ValueError(f"background must be 'white' or 'black', got {background!r}")
    fx, fy = flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32)
    mag = np.hypot(fx, fy)  # [H, W]
    scale = float(mag.max()) if max_magnitude is None else float(max_magnitude)
    if max_magnitude is not None and not scale > 0:
        raise ValueError(f"max_magnitude must be > 0, got {max_magnitude!r}")
    strength = np.clip(mag / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(mag)
    hue = np.rint(np.degrees(np.arctan2(fy, fx)) % 360.0 / 2.0).astype(np.int32) % 180  # OpenCV 8-bit hue
    full = np.full(mag.shape, 255, dtype=np.uint8)
    level = np.rint(strength * 255.0).astype(np.uint8)
    sat, val = (level, full) if background == "white" else (full, level)
    hsv = np.stack([hue.astype(np.uint8), sat, val], axis=-1)  # [H, W, 3]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def flow_wheel(size: int = 64, *, background: Literal["white", "black"] = "white") -> np.ndarray:
    """Legend of :func:`flow_to_rgb`: a disc whose pixel colour codes the flow from the centre to it.

    The rim is ``max_magnitude``; outside the disc is the background colour.

    Shape:
        uint8 ``[size, size, 3]`` (RGB).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3:
        raise ValueError(f"size must be an int >= 3, got {size!r}")
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([xx - c, yy - c], axis=-1)  # [size, size, 2]
    img = flow_to_rgb(flow, max_magnitude=c, background=background)
    outside = np.hypot(xx - c, yy - c) > c
    img[outside] = 255 if background == "white" else 0
    return img
