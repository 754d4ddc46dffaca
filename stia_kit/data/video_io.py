"""Video decoding: decord first, PyAV as the fallback that decodes everything.

Public functions:

- :func:`read_frames` decodes only the requested frame indices of one file.
- :func:`num_frames` returns the number of *decodable* frames of one file.
- :func:`read_clip` opens a file once, asks an index function for indices given the frame count, and
  decodes them (what datasets use, so a file is opened only once per sample).
- :func:`decode_all` decodes every frame (used by :mod:`stia_kit.data.check`).

Backends (``backend=``):

- ``"decord"``: ``decord.VideoReader.get_batch``. Fast random access, but it cannot decode AV1, fails on raw
  elementary streams without a container index (e.g. ``ucf101_reencoded/*.mp4``), and for AVI files with
  DivX/XviD "packed bitstream" its frame count includes the 1-byte "frame skip" packets that decode to no
  picture (HMDB51 files: decord says 409, FFmpeg decodes 408) and its seeking can return the WRONG frame
  (no error). Use ``"decord"`` explicitly only on data you have checked; ``"auto"`` avoids these cases.
- ``"pyav"``: decodes sequentially and keeps only the wanted frames, stopping after the last wanted one.
  Decoding is strict (FFmpeg ``err_detect=explode``): a damaged frame raises instead of being concealed.
- ``"auto"``: probe the container with PyAV (a few ms: format, codec, header frame count), then

  1. raw elementary streams (``m4v``, ``h264``, ``hevc``, ...), streams without any frame count and AV1 go
     straight to PyAV;
  2. otherwise decord is tried; ANY decord exception (``decord._ffi.base.DECORDError`` is not a
     ``RuntimeError``) or a decord frame count of 0 falls back to PyAV;
  3. for MPEG-4 Part 2 streams (``mpeg4`` codec, where skip packets occur) a PyAV demux pass (no decoding,
     ~5 ms) counts the picture packets, so the count equals the decoded count; if the stream HAS skip
     packets the frames are decoded with PyAV too, because decord's random access is wrong on such files
     (measured on HMDB51 ``brush_hair/April_09_...``: decord returns frame 49 when asked for frame 136).

Damage detection: when the container header declares H frames and decord indexes fewer, the file is
reported as truncated/damaged (decord silently shortens such files). Errors are always
:class:`VideoReadError` (a ``RuntimeError``) naming the file and the reason.

No global reader cache: every call opens and closes its own reader, so DataLoader worker processes created
by ``fork`` never share decoder state. (Decoded *frames* are reused by :mod:`stia_kit.data.cache`, which
calls :func:`read_clip`.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

try:  # decord is optional at run time: without it "auto" simply uses PyAV.
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's per-macroblock error spam; errors are raised.
except ImportError:  # pragma: no cover - decord is pinned in the project requirements
    decord = None

__all__ = [
    "Backend",
    "VideoReadError",
    "VideoInfo",
    "probe",
    "num_frames",
    "read_frames",
    "read_clip",
    "decode_all",
    "VIDEO_SUFFIXES",
]

Backend = Literal["auto", "decord", "pyav"]
BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")

#: File suffixes treated as videos by folder scans: the one definition, used by ``stia data check``
#: (:func:`stia_kit.data.check.find_videos`) and ``stia enhance`` (``stia_kit.enhance.video.VIDEO_EXTENSIONS``).
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts"}
)
#: libavformat demuxer names of raw elementary streams (no container index, no reliable count).
RAW_FORMATS: frozenset[str] = frozenset(
    {"m4v", "h264", "hevc", "h263", "mpegvideo", "mjpeg", "rawvideo", "obu", "ivf", "vc1", "cavsvideo"}
)
#: codecs decord cannot decode.
DECORD_UNSUPPORTED_CODECS: frozenset[str] = frozenset({"av1", "libdav1d", "libaom-av1"})
#: FFmpeg's DivX/XviD "frame skip" packets are this small and decode to no picture.
SKIP_PACKET_MAX_BYTES = 1


class VideoReadError(RuntimeError):
    """A video file could not be read.

    Attributes:
        path: the file (None only for the message-only form re-raised by a DataLoader).
        reason: short human-readable reason ("zero bytes", "not a video", "truncated/undecodable frame at
            index 88", ...).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str | None = None) -> None:
        if reason is None:
            # One-argument form: torch's DataLoader re-raises a worker's exception as ``type(exc)(message)``,
            # so the main process gets a VideoReadError whose message holds the worker's traceback.
            self.path: Path | None = None
            self.reason = str(path)
            super().__init__(self.reason)
            return
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[Path | str, str | None]]:  # picklable across processes
        if self.path is None:
            return (type(self), (self.reason, None))
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    """What the PyAV container probe tells about a file's first video stream."""

    format_name: str  # libavformat demuxer name, e.g. "avi", "mov,mp4,m4a,3gp,3g2,mj2", "m4v"
    codec: str  # decoder name, e.g. "mpeg4", "h264"
    header_frames: int  # frame count declared by the container (0 = unknown)
    width: int
    height: int

    @property
    def is_raw_stream(self) -> bool:
        """True for elementary streams without a container index (frame count must be demuxed)."""
        return any(name in RAW_FORMATS for name in self.format_name.split(","))


# --------------------------------------------------------------------------------------------- helpers


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _check_file(path: Path) -> None:
    """Raise VideoReadError for files that no decoder should be asked about."""
    if not path.exists():
        raise VideoReadError(path, "file does not exist")
    if not path.is_file():
        raise VideoReadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "zero bytes")


def _looks_like_video(path: Path) -> bool:
    """True when the first bytes carry a known container signature (AVI, MP4/MOV, Matroska, MPEG)."""
    with path.open("rb") as fh:
        head = fh.read(12)
    return (
        (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[4:8] == b"ftyp"
        or head[:4] == b"\x1aE\xdf\xa3"
        or head[:3] == b"\x00\x00\x01"
    )


def _open_av(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        detail = exc.strerror or str(exc)
        if _looks_like_video(path):
            raise VideoReadError(path, f"truncated/damaged container (cannot open: {detail})") from exc
        raise VideoReadError(path, f"not a video (cannot open container: {detail})") from exc


def _video_stream(path: Path, container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoReadError(path, "not a video (no video stream)")
    return container.streams.video[0]


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read container and stream headers with PyAV (no decoding).

    Raises:
        VideoReadError: missing file, zero bytes, or not a video container.
    """
    path = Path(path)
    _check_file(path)
    with _open_av(path) as container:
        stream = _video_stream(path, container)
        return VideoInfo(
            format_name=container.format.name,
            codec=stream.codec_context.name,
            header_frames=int(stream.frames or 0),
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
        )


def _as_indices(path: Path, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError(f"{path}: no frame indices requested")
    if idx.min() < 0:
        raise ValueError(f"{path}: frame indices must be >= 0, got {int(idx.min())}")
    return idx


# ------------------------------------------------------------------------------------------------ PyAV


def _pyav_packet_counts(path: Path) -> tuple[int, int]:
    """Demux (no decoding) and return ``(picture_packets, skip_packets)`` of the first video stream."""
    pictures = skips = 0
    with _open_av(path) as container:
        stream = _video_stream(path, container)
        try:
            for packet in container.demux(stream):
                if packet.size > SKIP_PACKET_MAX_BYTES:
                    pictures += 1
                elif packet.size > 0:
                    skips += 1
        except av.error.FFmpegError as exc:
            raise VideoReadError(path, f"damaged container (demuxing failed: {exc.strerror or exc})") from exc
    return pictures, skips


def _pyav_frame_count(path: Path, info: VideoInfo | None = None) -> tuple[int, int]:
    """``(decodable frames, skip packets)`` by demuxing, checked against the container header if any."""
    pictures, skips = _pyav_packet_counts(path)
    if info is not None and info.header_frames > 0 and pictures + skips < info.header_frames:
        raise VideoReadError(
            path,
            f"truncated/damaged: the container declares {info.header_frames} frames "
            f"but only {pictures + skips} packets are present",
        )
    return pictures, skips


def _pyav_count(path: Path, info: VideoInfo | None = None) -> int:
    """Decodable frames by demuxing: picture packets (see :func:`_pyav_frame_count`)."""
    return _pyav_frame_count(path, info)[0]


def _pyav_decode(
    path: Path, wanted: set[int] | None, stop_after: int | None
) -> tuple[dict[int, np.ndarray], int]:
    """Decode sequentially (strict), keeping frames whose index is in ``wanted`` (all when None).

    Returns the kept frames by index and the number of frames decoded.
    """
    frames: dict[int, np.ndarray] = {}
    decoded = 0
    with _open_av(path) as container:
        stream = _video_stream(path, container)
        stream.codec_context.options = {"err_detect": "explode"}
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if wanted is None or decoded in wanted:
                    frames[decoded] = frame.to_ndarray(format="rgb24")
                decoded += 1
                if stop_after is not None and decoded > stop_after:
                    break
        except av.error.FFmpegError as exc:
            raise VideoReadError(
                path, f"truncated/undecodable frame at index {decoded} ({exc.strerror or exc})"
            ) from exc
    return frames, decoded


def _pyav_read(path: Path, idx: np.ndarray) -> np.ndarray:
    wanted = set(int(i) for i in idx)
    last = int(idx.max())
    frames, decoded = _pyav_decode(path, wanted, stop_after=last)
    if decoded <= last:
        raise VideoReadError(
            path, f"truncated/undecodable frame at index {decoded} (stream ended; frame {last} was requested)"
        )
    return np.stack([frames[int(i)] for i in idx])


# ---------------------------------------------------------------------------------------------- decord


def _decord_reader(path: Path) -> "decord.VideoReader":
    if decord is None:  # pragma: no cover
        raise VideoReadError(path, "decord is not installed")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # DECORDError is not a RuntimeError subclass
        raise VideoReadError(path, f"decord cannot open the file ({_short(exc)})") from exc


def _decord_batch(path: Path, reader: "decord.VideoReader", idx: np.ndarray) -> np.ndarray:
    try:
        return reader.get_batch(idx.tolist()).asnumpy()
    except Exception as exc:
        raise VideoReadError(path, f"truncated/undecodable frame among indices {_span(idx)} ({_short(exc)})") from exc


def _decord_count(path: Path, reader: "decord.VideoReader", info: VideoInfo | None) -> int:
    """decord's frame count, checked against the container header (detects truncation/damage)."""
    count = len(reader)
    if count <= 0:
        raise VideoReadError(path, "decord reports 0 frames")
    if info is not None and info.header_frames > 0 and count < info.header_frames:
        raise VideoReadError(
            path,
            f"truncated/damaged: the container declares {info.header_frames} frames but only {count} are indexed",
        )
    return count


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:200]


def _span(idx: np.ndarray) -> str:
    return f"{int(idx.min())}..{int(idx.max())}"


# ------------------------------------------------------------------------------------------- dispatch


def _probe_or_none(path: Path, backend: str) -> VideoInfo | None:
    """Probe for auto/decord; for explicit decord a failed probe is not fatal (decord may still read)."""
    if backend == "decord":
        try:
            return probe(path)
        except VideoReadError:
            return None
    return probe(path)


def _decord_suitable(info: VideoInfo | None) -> bool:
    if decord is None or info is None:
        return decord is not None
    return not info.is_raw_stream and info.codec not in DECORD_UNSUPPORTED_CODECS


def _needs_demux_count(info: VideoInfo | None) -> bool:
    """Streams where decord's count may include skip packets or is unknown."""
    return info is not None and (info.codec == "mpeg4" or info.header_frames <= 0 or info.is_raw_stream)


def read_clip(
    path: str | os.PathLike[str],
    index_fn: Callable[[int], np.ndarray],
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Open ``path`` once, choose indices from its frame count, decode only those frames.

    Args:
        path: video file.
        index_fn: ``num_frames -> indices`` (any shape; values in ``[0, num_frames)``).
        backend: ``"auto"``, ``"decord"`` or ``"pyav"`` (see module docstring).

    Returns:
        ``(frames, indices, num_frames)``.

    Shape:
        frames: uint8 ``[K, H, W, 3]`` with ``K = indices.size`` (indices flattened in C order).

    Raises:
        VideoReadError: the file cannot be read (names the file and the reason).
    """
    _check_backend(backend)
    path = Path(path)
    _check_file(path)
    if backend == "pyav":
        return _read_clip_pyav(path, index_fn, probe(path))
    info = _probe_or_none(path, backend)
    exact: int | None = None
    if backend == "auto":
        if not _decord_suitable(info):
            return _read_clip_pyav(path, index_fn, info)
        if _needs_demux_count(info):
            exact, skips = _pyav_frame_count(path, info)
            if skips > 0:  # decord's index <-> timestamp map is wrong after skip packets: decode sequentially
                return _read_clip_pyav(path, index_fn, info, count=exact)
    try:
        reader = _decord_reader(path)
        try:
            count = _decord_count(path, reader, info)
            if exact is not None:
                count = min(count, exact)
            idx = _checked(path, index_fn(count), count)
            frames = _decord_batch(path, reader, idx.reshape(-1))
        finally:
            del reader
    except VideoReadError as exc:
        if backend == "decord" or exc.reason.startswith("truncated/damaged"):
            raise
        return _read_clip_pyav(path, index_fn, info, count=exact)
    return frames, idx, count


def _read_clip_pyav(
    path: Path, index_fn: Callable[[int], np.ndarray], info: VideoInfo | None, count: int | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    if count is None:
        count = _pyav_count(path, info)
    if count <= 0:
        raise VideoReadError(path, "no decodable video frames")
    idx = _checked(path, index_fn(count), count)
    return _pyav_read(path, idx.reshape(-1)), idx, count


def _checked(path: Path, indices: np.ndarray, count: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64)
    flat = _as_indices(path, idx)
    if flat.max() >= count:
        raise ValueError(f"{path}: frame index {int(flat.max())} out of range for a video of {count} frames")
    return idx


def read_frames(
    path: str | os.PathLike[str], indices: Sequence[int] | np.ndarray, backend: Backend = "auto"
) -> np.ndarray:
    """Decode only the frames at ``indices`` (any order, repeats allowed).

    Shape:
        returns uint8 ``[len(indices), H, W, 3]`` (RGB).

    Raises:
        VideoReadError: unreadable file, or an index at/after the end of the decodable stream.
        ValueError: empty or negative indices.
    """
    _check_backend(backend)
    path = Path(path)
    _check_file(path)
    idx = _as_indices(path, indices)

    def fixed(count: int) -> np.ndarray:
        if idx.max() >= count:
            raise VideoReadError(path, f"frame {int(idx.max())} requested but the video has {count} frames")
        return idx

    frames, _, _ = read_clip(path, fixed, backend)
    return frames


def num_frames(path: str | os.PathLike[str], backend: Backend = "auto") -> int:
    """Number of decodable frames (what decoding every frame with FFmpeg yields).

    ``"pyav"`` demuxes the stream and counts picture packets (skip packets excluded), ``"decord"`` returns
    ``len(VideoReader)`` (may count DivX skip packets), ``"auto"`` uses decord except where its count is
    unreliable (MPEG-4 Part 2, raw streams, no header count, decord failure), where it uses PyAV.

    Raises:
        VideoReadError: unreadable file.
    """
    _, _, count = read_clip(path, lambda n: np.zeros(1, dtype=np.int64), backend)
    return count


def decode_all(path: str | os.PathLike[str], backend: Backend = "auto", chunk: int = 64) -> int:
    """Decode every frame of ``path`` and return how many were decoded.

    ``"auto"`` decodes with PyAV (strict) - the most thorough check - and ``"decord"`` reads every frame with
    decord in chunks of ``chunk`` frames.  A container header that declares more frames than could be
    decoded is reported as truncated.

    Raises:
        VideoReadError: the file, or any frame of it, cannot be decoded.
    """
    _check_backend(backend)
    path = Path(path)
    _check_file(path)
    if backend == "decord":
        info = _probe_or_none(path, backend)
        reader = _decord_reader(path)
        count = _decord_count(path, reader, info)
        for start in range(0, count, chunk):
            _decord_batch(path, reader, np.arange(start, min(count, start + chunk)))
        return count
    info = probe(path)
    expected = _pyav_count(path, info)
    _, decoded = _pyav_decode(path, wanted=set(), stop_after=None)
    if decoded == 0:
        raise VideoReadError(path, "no decodable video frames")
    if decoded < expected:
        raise VideoReadError(
            path, f"truncated/undecodable frame at index {decoded} (decoded {decoded} of {expected} frames)"
        )
    return decoded
