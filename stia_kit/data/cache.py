"""Decoded-frame cache: every frame of a video decoded once, as uint8, and reused by every later read.

What is cached: the uint8 frames ``[N, H, W, 3]`` of *all* ``N`` decodable frames of a file, exactly as
:func:`stia_kit.data.video_io.read_clip` returns them for the indices ``0 .. N-1``. A read then picks the
sampled indices out of the cached array, so frame sampling, augmentation and every clip transform run
exactly as without the cache (same generator draws, bit-identical clips); only decoding is skipped.

Where:

- in memory, per process: a byte budget (``max_bytes``), least-recently-used eviction, :meth:`FrameCache.stats`
  (hits, misses, bytes, ...). :func:`default_cache` is the process-wide instance that every
  :class:`~stia_kit.data.datasets.VideoDataset` uses unless given another one, so the train and test sets,
  their ``with_clip_transform`` / ``subset`` copies, and the datasets of later models and ablation rows in
  the same process share decoded frames;
- optionally on disk (``disk_dir``, opt-in): one ``.npy`` per file, written atomically (a temporary file in
  the same folder, then ``os.replace``), so concurrent writers (DataLoader workers, two runs) never expose a
  partial file and the last complete write wins (all writers write the same bytes). Repeated runs read
  the frames instead of decoding them. It stores every decoded frame uncompressed (``N x H x W x 3``
  bytes per video: 393 KB for a 32 x 64^2 SynthActions clip, ~40 MB for a 180-frame 320 x 240 UCF101 clip)
  and has no size limit: use it for the small sets it is meant for.

Keys: the absolute path, the file's size, ``st_mtime_ns`` and ``st_ctime_ns``, the decoding backend and the
decoder versions (PyAV, decord). A file that is changed, replaced or re-encoded gets a new key, so a stale
entry is never served (stale disk entries are simply never read again; :meth:`FrameCache.clear` removes
them).

When a whole video is *not* decoded: a full decode costs more than decoding one clip's frames (a dense
8-frame clip of a 300-frame video). It only pays off when the file is read again from the cache, i.e.
when the dataset's decoded frames fit in the budget. Admission rule: a file is fully decoded and cached
when ``estimated bytes x expected_items <= max_bytes`` (``expected_items`` = the dataset's length; the
estimate comes from the container header, learned once per file), or always when a disk cache is set.
Otherwise the read is the ordinary partial decode (``stats().bypassed``). SynthActions at the teaching
sizes (528 videos of 32 x 64^2 frames: 207 MB) is cached whole; UCF101 at 320 x 240 (~13k videos,
~0.5 TB decoded) is read as before. Files whose full decode fails (damaged frames after the clip) are
read the ordinary way and not retried (the ordinary read then succeeds or raises exactly as without the
cache).

Derived entries (:meth:`FrameCache.read_derived`, memory only): a deterministic per-frame function of all
frames of a video, computed once, e.g. ``DataConfig(cache_resized=True)`` (the fixed short-side resize) or a
low-light enhancer given to ``VideoDataset.with_clip_transform(step, per_frame=True)``. Stored as float32
(4 bytes per value), they trade memory for the per-epoch cost of that function.

DataLoader workers: each worker process holds its own memory cache (a copy of the parent's when forked;
an empty one when spawned: pickling a cache drops its entries). With ``persistent_workers`` (what
:func:`stia_kit.train.fit` uses) a worker keeps its cache across epochs; each worker may then hold up to
``max_bytes``. Across ablation rows new workers start from the parent's cache, so with workers the disk
cache (whose files the OS page cache shares between processes) is the way to share decoded frames.

Configuration of the default cache: ``STIA_FRAME_CACHE_BYTES`` (bytes, with an optional K/M/G suffix; ``0``
disables the memory cache) and ``STIA_FRAME_CACHE_DIR`` (enables the disk cache there), or
:func:`configure_default_cache` / :func:`set_default_cache`. Default budget: ``min(2 GiB, physical memory / 4)``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from .video_io import Backend, VideoReadError, _check_backend, _checked, decord, probe, read_clip

__all__ = [
    "CacheStats",
    "FrameCache",
    "FrameKey",
    "configure_default_cache",
    "default_cache",
    "set_default_cache",
    "parse_bytes",
    "DEFAULT_MAX_BYTES",
]

#: Bumped when the on-disk format or the meaning of an entry changes (old files are then never read).
CACHE_FORMAT = 1
#: Decoder versions are part of every key: another FFmpeg build may decode (colour-convert) differently.
_DECODERS = f"av={av.__version__};decord={getattr(decord, '__version__', 'none')}"

#: ``(absolute path, size, mtime_ns, ctime_ns, backend)``: identifies one decoded version of one file
#: (derived entries, see :meth:`FrameCache.read_derived`, append their tag).
FrameKey = tuple[Any, ...]


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return None


def _default_max_bytes() -> int:
    ram = _physical_memory()
    return min(2 << 30, ram // 4) if ram else 1 << 30


#: Default memory budget of :func:`default_cache`: ``min(2 GiB, physical memory / 4)``.
DEFAULT_MAX_BYTES: int = _default_max_bytes()


def parse_bytes(text: str | int) -> int:
    """``"512M"`` -> 536870912; accepts an int, or digits with an optional K/M/G/T suffix (powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        s = str(text).strip().upper().removesuffix("B").removesuffix("I")
        scale = 1
        if s and s[-1] in "KMGT":
            scale = 1 << (10 * ("KMGT".index(s[-1]) + 1))
            s = s[:-1]
        try:
            value = int(float(s) * scale)
        except ValueError:
            raise ValueError(f"expected a byte count like 1073741824, 512M or 2G, got {text!r}") from None
    if value < 0:
        raise ValueError(f"a byte count must be >= 0, got {text!r}")
    return value


@dataclass(frozen=True)
class CacheStats:
    """Counters of one :class:`FrameCache` (this process only)."""

    hits: int  # reads served from memory
    disk_hits: int  # reads served from the disk cache (then kept in memory if admitted)
    misses: int  # reads that decoded a whole video (then cached)
    bypassed: int  # reads decoded the ordinary way (not admitted, or a full decode failed)
    evictions: int  # entries dropped to stay within max_bytes
    items: int  # entries in memory now
    bytes: int  # bytes of those entries
    max_bytes: int  # the memory budget
    disk_dir: str | None  # the disk cache folder (None = no disk cache)

    @property
    def hit_rate(self) -> float:
        """(hits + disk_hits) / reads (0.0 before any read)."""
        reads = self.hits + self.disk_hits + self.misses + self.bypassed
        return (self.hits + self.disk_hits) / reads if reads else 0.0


_LIVE: "weakref.WeakSet[FrameCache]" = weakref.WeakSet()


def _reset_locks_after_fork() -> None:  # a lock held by another thread at fork time would never be released
    for cache in list(_LIVE):
        cache._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


class FrameCache:
    """Decoded uint8 frames of whole videos: an LRU memory cache with a byte budget, optionally backed by disk.

    Args:
        max_bytes: memory budget (``0`` disables the memory part; a disk cache still works).
        disk_dir: folder of the on-disk cache (``None`` = memory only). Created on first write.

    Use :meth:`read_clip` where :func:`stia_kit.data.video_io.read_clip` would be called; it returns the same
    ``(frames, indices, num_frames)``, bit for bit.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, disk_dir: str | os.PathLike[str] | None = None) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"FrameCache.max_bytes must be an int >= 0, got {max_bytes!r}")
        self.max_bytes = int(max_bytes)
        self.disk_dir: Path | None = Path(disk_dir) if disk_dir is not None else None
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[FrameKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._sizes: dict[FrameKey, int] = {}  # estimated decoded bytes of files seen (admission rule)
        self._failed: set[FrameKey] = set()  # files whose full decode failed (read the ordinary way)
        self._counts = dict(hits=0, disk_hits=0, misses=0, bypassed=0, evictions=0)
        _LIVE.add(self)

    # -------------------------------------------------------------------- pickling (spawned workers)

    def __getstate__(self) -> dict[str, Any]:
        """Settings only: a cache sent to another process arrives empty (each process has its own)."""
        return {"max_bytes": self.max_bytes, "disk_dir": self.disk_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.max_bytes = state["max_bytes"]
        self.disk_dir = state["disk_dir"]
        self._init_state()

    # -------------------------------------------------------------------------------- bookkeeping

    def stats(self) -> CacheStats:
        """Counters and the memory in use, in this process."""
        with self._lock:
            return CacheStats(**self._counts, items=len(self._entries), bytes=self._bytes, max_bytes=self.max_bytes,
                              disk_dir=str(self.disk_dir) if self.disk_dir is not None else None)

    def clear(self, *, disk: bool = False) -> None:
        """Drop every memory entry and reset the counters; with ``disk=True`` also delete the disk cache's files."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._sizes.clear()
            self._failed.clear()
            self._counts = dict.fromkeys(self._counts, 0)
        if disk and self.disk_dir is not None and self.disk_dir.is_dir():
            for pattern in ("*.npy", ".*.tmp"):  # entries, and temporary files of interrupted writers
                for f in self.disk_dir.glob(f"v{CACHE_FORMAT}/*/{pattern}"):
                    f.unlink(missing_ok=True)

    def configure(self, max_bytes: int, disk_dir: str | os.PathLike[str] | None = None) -> None:
        """Change the budget (least-recently-used entries are evicted to fit) and the disk folder; entries stay."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"FrameCache.max_bytes must be an int >= 0, got {max_bytes!r}")
        with self._lock:
            self.max_bytes = int(max_bytes)
            self.disk_dir = Path(disk_dir) if disk_dir is not None else None
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
                self._counts["evictions"] += 1

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        s = self.stats()
        return (f"FrameCache({s.items} videos, {s.bytes / 2**20:.1f} of {s.max_bytes / 2**20:.0f} MiB, "
                f"hits={s.hits} disk_hits={s.disk_hits} misses={s.misses} bypassed={s.bypassed}, "
                f"disk_dir={s.disk_dir})")

    @staticmethod
    def key(path: str | os.PathLike[str], backend: Backend = "auto") -> FrameKey:
        """The key of ``path``'s current contents decoded by ``backend`` (``os.stat`` of the file).

        Raises:
            VideoReadError: the file does not exist.
        """
        try:
            st = os.stat(path)
        except OSError:
            raise VideoReadError(path, "file does not exist") from None
        return (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, backend)

    def disk_path(self, key: FrameKey) -> Path | None:
        """Where the disk cache keeps ``key`` (``None`` without a disk cache)."""
        if self.disk_dir is None:
            return None
        digest = hashlib.sha256(repr((CACHE_FORMAT, _DECODERS, key)).encode()).hexdigest()
        return self.disk_dir / f"v{CACHE_FORMAT}" / digest[:2] / f"{digest}.npy"

    # ----------------------------------------------------------------------------------- memory part

    def get(self, key: FrameKey) -> np.ndarray | None:
        """The cached frames of ``key`` (read-only uint8 ``[N, H, W, 3]``) or ``None``; marks it recently used."""
        with self._lock:
            frames = self._entries.get(key)
            if frames is not None:
                self._entries.move_to_end(key)
            return frames

    def put(self, key: FrameKey, frames: np.ndarray) -> bool:
        """Keep ``frames`` under ``key`` (evicting least-recently-used entries); False if larger than the budget."""
        frames.setflags(write=False)  # entries are shared by every reader: nobody may modify them in place
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if frames.nbytes > self.max_bytes:
                return False
            while self._bytes + frames.nbytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
                self._counts["evictions"] += 1
            self._entries[key] = frames
            self._bytes += frames.nbytes
            return True

    # ------------------------------------------------------------------------------------- disk part

    def _disk_load(self, key: FrameKey) -> np.ndarray | None:
        target = self.disk_path(key)
        if target is None or not target.is_file():
            return None
        try:
            frames = np.load(target, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # unreadable (e.g. a disk error): decode again and rewrite
            return None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] < 1:
            return None
        return frames

    def _disk_store(self, key: FrameKey, frames: np.ndarray) -> None:
        target = self.disk_path(key)
        if target is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(frames), allow_pickle=False)
            os.replace(tmp, target)  # atomic: readers see no file or the complete file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ---------------------------------------------------------------------------------------- reading

    def _admit(self, path: Path, key: FrameKey, expected_items: int) -> bool:
        """Whether to decode the whole file (see the module docstring's admission rule)."""
        if key in self._failed:
            return False
        if self.disk_dir is not None:
            return True
        if self.max_bytes == 0:
            return False
        size = self._sizes.get(key)
        if size is None:
            try:
                info = probe(path)
            except VideoReadError:
                return False  # let the ordinary read raise its own error
            if info.header_frames <= 0:
                return False  # unknown length: learned from the first ordinary read
            size = info.header_frames * info.width * info.height * 3
            self._sizes[key] = size
        return size * max(1, expected_items) <= self.max_bytes

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def read_clip(
        self,
        path: str | os.PathLike[str],
        index_fn: Callable[[int], np.ndarray],
        backend: Backend = "auto",
        *,
        expected_items: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """:func:`stia_kit.data.video_io.read_clip` through the cache (same arguments, same result).

        Args:
            path: video file.
            index_fn: ``num_frames -> indices``; called exactly once, as by ``read_clip``.
            backend: decoder, part of the key.
            expected_items: how many files the caller will read repeatedly (a dataset's length): the
                admission rule caches a file only if that many files of its size fit in ``max_bytes``.

        Shape:
            frames: uint8 ``[K, H, W, 3]``, ``K = indices.size``.

        Raises:
            VideoReadError: as ``read_clip``.
        """
        _check_backend(backend)
        path = Path(path)
        key = self.key(path, backend)
        frames = self.get(key)
        if frames is not None:
            self._count("hits")
        else:
            frames = self._disk_load(key)
            if frames is not None:
                self._count("disk_hits")
                self._keep(path, key, frames, expected_items)
            elif self._admit(path, key, expected_items):
                frames = self._decode_all(path, key, backend)
                if frames is not None:
                    self._count("misses")
                    self._disk_store(key, frames)
                    self._keep(path, key, frames, expected_items)
        if frames is None:
            self._count("bypassed")
            out, idx, count = read_clip(path, index_fn, backend)
            if key not in self._sizes:
                self._sizes[key] = count * int(np.prod(out.shape[1:]))
            return out, idx, count
        count = int(frames.shape[0])
        idx = _checked(path, index_fn(count), count)
        return frames[idx.reshape(-1)], idx, count

    def read_derived(
        self,
        path: str | os.PathLike[str],
        index_fn: Callable[[int], np.ndarray],
        backend: Backend,
        tag: str,
        make: Callable[[np.ndarray], np.ndarray],
        *,
        expected_items: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, int] | None:
        """``make(all decoded frames)`` of ``path``, computed once and cached under the file's key + ``tag``,
        then indexed like :meth:`read_clip`; ``None`` (before ``index_fn`` is called) when it cannot be served.

        ``make`` must be a deterministic *per-frame* function (frame ``i`` of its output depends on frame ``i`` of
        its input only), e.g. a low-light enhancer: then indexing its output equals applying it to the sampled
        frames. ``tag`` names the function (different functions need different tags). Derived entries live in
        memory only and count against the same budget; the admission rule applies to their size. ``None`` is
        returned when the entry would not fit (known after the first computation) or the file cannot be
        decoded whole (the caller then works clip by clip, which succeeds or raises as without the cache).

        Shape:
            ``make``: uint8 ``[N, H, W, 3]`` -> any ``[N, ...]``; returns ``out[indices.reshape(-1)]``.
        """
        key = (*self.key(path, backend), tag)
        derived = self.get(key)
        if derived is not None:
            self._count("hits")
        else:
            known = self._sizes.get(key)
            if key in self._failed or (known is not None and known * max(1, expected_items) > self.max_bytes):
                return None
            try:
                frames, _, _ = self.read_clip(path, lambda n: np.arange(n, dtype=np.int64), backend,
                                              expected_items=expected_items)
            except (VideoReadError, ValueError):
                self._failed.add(key)
                return None
            derived = np.ascontiguousarray(make(frames))
            if derived.shape[0] != frames.shape[0]:
                raise ValueError(f"read_derived({tag!r}): make() must keep the frame axis first: "
                                 f"{frames.shape[0]} frames in, shape {derived.shape} out")
            self._sizes[key] = derived.nbytes
            if derived.nbytes * max(1, expected_items) <= self.max_bytes:
                self.put(key, derived)
            else:
                derived.setflags(write=False)
        count = int(derived.shape[0])
        idx = _checked(Path(path), index_fn(count), count)
        return derived[idx.reshape(-1)], idx, count

    def _keep(self, path: Path, key: FrameKey, frames: np.ndarray, expected_items: int) -> None:
        self._sizes[key] = frames.nbytes
        if frames.nbytes * max(1, expected_items) <= self.max_bytes:
            self.put(key, frames)

    def _decode_all(self, path: Path, key: FrameKey, backend: Backend) -> np.ndarray | None:
        """Every frame, decoded as ``read_clip`` decodes them; None (and never again) when that fails."""
        try:
            frames, _, _ = read_clip(path, lambda n: np.arange(n, dtype=np.int64), backend)
        except (VideoReadError, ValueError):
            self._failed.add(key)
            return None
        return np.ascontiguousarray(frames)


# ------------------------------------------------------------------------------------ process default

_default: FrameCache | None = None


def default_cache() -> FrameCache:
    """The process-wide cache (created on first use from ``STIA_FRAME_CACHE_BYTES`` / ``STIA_FRAME_CACHE_DIR``)."""
    global _default
    if _default is None:
        env_bytes = os.environ.get("STIA_FRAME_CACHE_BYTES", "").strip()
        env_dir = os.environ.get("STIA_FRAME_CACHE_DIR", "").strip()
        _default = FrameCache(parse_bytes(env_bytes) if env_bytes else DEFAULT_MAX_BYTES, env_dir or None)
    return _default


def configure_default_cache(max_bytes: int, disk_dir: str | os.PathLike[str] | None = None) -> FrameCache:
    """Set the process-wide cache's budget and disk folder, keeping what it holds (what experiments call with
    their ``cache_mb``); returns it. ``max_bytes=0`` turns the memory part off."""
    cache = default_cache()
    cache.configure(max_bytes, disk_dir)
    return cache


def set_default_cache(cache: FrameCache | None) -> FrameCache | None:
    """Replace the process-wide cache (``None``: recreate it from the environment on next use); returns the old one."""
    global _default
    old, _default = _default, cache
    return old
