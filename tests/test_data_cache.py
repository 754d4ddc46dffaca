"""Decoded-frame cache: bit-identical samples, LRU budget, disk reuse across processes, workers, stale files."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from stia_kit.data import (
    UCF101,
    DataConfig,
    FrameCache,
    ManifestDataset,
    VideoReadError,
    default_cache,
    read_clip,
    set_default_cache,
)
from stia_kit.data.cache import parse_bytes

TRAIN = DataConfig(num_frames=4, stride=2, short_side=36, crop_size=32, scale_jitter=(32, 40))
TEST = DataConfig(num_frames=4, stride=2, short_side=36, crop_size=32, test_clips=2, test_crops=3)


def write_textured(path: Path, n: int = 30, seed: int = 0, size: tuple[int, int] = (40, 56), gop: int = 5) -> Path:
    """MPEG-4 AVI of noisy moving frames with a keyframe every ``gop`` frames (decord seeks between them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0], size[1] + n, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(n):
            img = np.ascontiguousarray(base[:, i : i + size[1]])
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture()
def videos(tmp_path: Path) -> list[Path]:
    return [write_textured(tmp_path / f"v{i}.avi", n=24 + 3 * i, seed=i) for i in range(4)]


@pytest.fixture()
def fresh_default() -> Iterator[FrameCache]:
    """A fresh process-wide cache for the test, the previous one restored afterwards."""
    cache = FrameCache()
    old = set_default_cache(cache)
    yield cache
    set_default_cache(old)


def uncached(config: DataConfig) -> DataConfig:
    return DataConfig(**{**config.__dict__, "frame_cache": False})


def epochs_of(ds: Any, epochs: int) -> list[torch.Tensor]:
    out = []
    for e in range(epochs):
        ds.set_epoch(e)
        out += [ds[i]["video"] for i in range(len(ds))]
    return out


# ---------------------------------------------------------------------------------- bit-identical samples


def test_cached_samples_equal_uncached_bit_for_bit(videos: list[Path], tiny_synth: Path) -> None:
    """Random sampling + scale jitter + flips over 3 epochs, multi-view test clips; MPEG-4 (seeking) and MJPEG."""
    rows = [(v, i % 2) for i, v in enumerate(videos)]
    for make in (lambda cfg, **kw: ManifestDataset(rows, config=cfg, train=True, seed=3, **kw),
                 lambda cfg, **kw: UCF101(tiny_synth, train=True, config=cfg, seed=3, **kw)):
        cache = FrameCache()
        ds = make(TRAIN, cache=cache)
        ref = make(uncached(TRAIN))
        got, want = epochs_of(ds, 3), epochs_of(ref, 3)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        s = cache.stats()
        assert (s.misses, s.hits, s.bypassed) == (len(ds), 2 * len(ds), 0) and s.items == len(ds)
        assert s.bytes == sum(e.nbytes for e in cache._entries.values()) and s.hit_rate == pytest.approx(2 / 3)
    test = ManifestDataset(rows, config=TEST, train=False, cache=FrameCache())
    ref = ManifestDataset(rows, config=uncached(TEST), train=False)
    for i in range(len(test)):
        a, b = test[i]["video"], ref[i]["video"]
        assert a.shape == (6, 3, 4, 32, 32) and torch.equal(a, b) and torch.equal(test[i]["video"], b)


def test_cached_frames_are_read_only_and_clips_are_copies(videos: list[Path]) -> None:
    cache = FrameCache()
    frames, idx, n = cache.read_clip(videos[0], lambda n: np.array([[0, 2, 4]]))
    want = read_clip(videos[0], lambda n: np.array([[0, 2, 4]]))
    assert np.array_equal(frames, want[0]) and np.array_equal(idx, want[1]) and n == want[2] == 24
    frames[:] = 0  # the caller's copy, not the entry
    again, _, _ = cache.read_clip(videos[0], lambda n: np.array([0, 2, 4]))
    assert np.array_equal(again, want[0])
    entry = next(iter(cache._entries.values()))
    with pytest.raises(ValueError, match="read-only"):
        entry[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="out of range"):  # index checks as in read_clip
        cache.read_clip(videos[0], lambda n: np.array([n]))


# ------------------------------------------------------------------------------------------------ budget


def test_lru_eviction_within_the_byte_budget(videos: list[Path]) -> None:
    sizes = [FrameCache().read_clip(v, lambda n: np.arange(n))[0].nbytes for v in videos[:3]]
    cache = FrameCache(max_bytes=sizes[0] + sizes[1] + sizes[2] // 2)  # room for two of the three
    first = lambda n: np.zeros(1, np.int64)  # noqa: E731
    for v in (videos[0], videos[1], videos[0], videos[2]):  # A, B, A (hit), C: evicts B, the least recently used
        cache.read_clip(v, first)
    s = cache.stats()
    assert (s.misses, s.hits, s.evictions, s.items) == (3, 1, 1, 2) and s.bytes == sizes[0] + sizes[2] <= s.max_bytes
    cache.read_clip(videos[0], first)
    cache.read_clip(videos[1], first)
    s = cache.stats()
    assert (s.hits, s.misses, s.evictions) == (2, 4, 2)  # A still there; B decoded again (evicting C)
    cache.configure(max_bytes=sizes[1])  # shrinking evicts the least recently used (A), keeps B
    s = cache.stats()
    assert (s.items, s.bytes, s.evictions, s.max_bytes) == (1, sizes[1], 3, sizes[1])
    assert FrameCache(max_bytes=10).put(cache.key(videos[0]), np.zeros((2, 4, 4, 3), np.uint8)) is False


def test_dataset_too_big_for_the_budget_is_read_the_ordinary_way(videos: list[Path]) -> None:
    one = FrameCache().read_clip(videos[0], lambda n: np.arange(n))[0].nbytes
    cache = FrameCache(max_bytes=2 * one)  # 4 videos would not fit: caching them would only thrash
    rows = [(v, 0) for v in videos]
    ds = ManifestDataset(rows, config=TRAIN, cache=cache)
    ref = ManifestDataset(rows, config=uncached(TRAIN))
    assert all(torch.equal(a, b) for a, b in zip(epochs_of(ds, 2), epochs_of(ref, 2), strict=True))
    s = cache.stats()
    assert (s.bypassed, s.misses, s.items) == (8, 0, 0)
    assert FrameCache(max_bytes=0).read_clip(videos[0], lambda n: np.arange(2))[2] == 24  # memory off: still reads


# --------------------------------------------------------------------------------------------------- disk


def _fill(disk_dir: str, paths: list[str]) -> None:
    cache = FrameCache(max_bytes=0, disk_dir=disk_dir)
    for p in paths:
        cache.read_clip(p, lambda n: np.zeros(1, np.int64))
    assert cache.stats().misses + cache.stats().disk_hits == len(paths)


def test_disk_cache_is_reused_by_another_process_and_safe_with_concurrent_writers(
        videos: list[Path], tmp_path: Path) -> None:
    disk = tmp_path / "cache"
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_fill, args=(str(disk), [str(v) for v in videos])) for _ in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    files = sorted(disk.rglob("*"))
    assert len([f for f in files if f.suffix == ".npy"]) == len(videos) and not [f for f in files if ".tmp" in f.name]
    cache = FrameCache(disk_dir=disk)  # this process: everything from disk, nothing decoded
    for v in videos:
        got = cache.read_clip(v, lambda n: np.arange(n))
        assert np.array_equal(got[0], read_clip(v, lambda n: np.arange(n))[0])
    s = cache.stats()
    assert (s.disk_hits, s.misses, s.items) == (len(videos), 0, len(videos))
    cache.read_clip(videos[0], lambda n: np.arange(1))
    assert cache.stats().hits == 1  # then from memory
    cache.clear(disk=True)
    assert not list(disk.rglob("*.npy")) and cache.stats().items == 0


def test_changed_file_is_never_served_stale(videos: list[Path], tmp_path: Path) -> None:
    disk = tmp_path / "cache"
    cache = FrameCache(disk_dir=disk)
    path = videos[0]
    old = cache.read_clip(path, lambda n: np.arange(n))[0]
    st = path.stat()
    write_textured(path, n=24, seed=99)  # same length, other content
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime restored (ctime changes)
    new = cache.read_clip(path, lambda n: np.arange(n))[0]
    assert not np.array_equal(old, new) and np.array_equal(new, read_clip(path, lambda n: np.arange(n))[0])
    assert cache.stats().misses == 2
    later = FrameCache(disk_dir=disk)  # a later run: the new file's entry, not the old one
    assert np.array_equal(later.read_clip(path, lambda n: np.arange(n))[0], new) and later.stats().disk_hits == 1
    path.unlink()
    with pytest.raises(VideoReadError, match="does not exist"):
        cache.read_clip(path, lambda n: np.arange(1))


def test_damaged_file_behaves_as_without_the_cache(tmp_path: Path) -> None:
    """Frame 30 of 40 is damaged: a full decode fails, clips before it decode. Such a file is read the ordinary
    way (the same frames or the same error as without the cache) and its full decode is not retried."""
    good = write_textured(tmp_path / "good.avi", n=40)
    with av.open(str(good)) as container:
        pos, size = [(p.pos, p.size) for p in container.demux(video=0) if p.size][30]
    data = bytearray(good.read_bytes())
    data[pos + 16 : pos + size - 8] = np.random.default_rng(0).bytes(size - 24)  # the packet's payload only
    bad = tmp_path / "damaged.avi"
    bad.write_bytes(bytes(data))
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    for backend in ("auto", "pyav"):
        cache = FrameCache()
        outcomes = []
        for idx in ([0, 1, 2], [30, 35, 39], [3, 4]):
            try:
                want: Any = read_clip(bad, lambda n: np.array(idx), backend)[0]
            except VideoReadError as exc:
                want = exc.reason
            try:
                got: Any = cache.read_clip(bad, lambda n: np.array(idx), backend)[0]
            except VideoReadError as exc:
                got = exc.reason
            assert type(got) is type(want)
            assert np.array_equal(got, want) if isinstance(want, np.ndarray) else got == want
            outcomes.append(isinstance(got, np.ndarray))
        assert outcomes == [True, False, True] and str(bad.absolute()) in {k[0] for k in cache._failed}
        with pytest.raises(VideoReadError, match="zero bytes"):
            cache.read_clip(empty, lambda n: np.arange(1), backend)
        assert cache.stats().items == 0 and cache.stats().bypassed == 4


# ------------------------------------------------------------------------------------ sharing and workers


def test_default_cache_is_shared_by_datasets_and_their_copies(videos: list[Path], fresh_default: FrameCache) -> None:
    rows = [(v, 0) for v in videos]
    a = ManifestDataset(rows, config=TRAIN)
    b = ManifestDataset(rows, config=DataConfig(num_frames=2, stride=3, short_side=40, crop_size=40), seed=5)
    same = a.with_clip_transform(lambda clip, rng: clip.clone(), name="same")
    half = a.subset([0, 1])
    for ds in (a, b, same, half):
        _ = [ds[i] for i in range(len(ds))]
    s = default_cache().stats()
    assert default_cache() is fresh_default and (s.misses, s.hits) == (4, 4 + 4 + 2)
    assert torch.equal(same[1]["video"], a[1]["video"]) and default_cache().stats().misses == 4


class _WithHits(Dataset):
    """Adds the worker's cache hit count to each sample."""

    def __init__(self, inner: ManifestDataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.inner[i], "hits": default_cache().stats().hits}


def test_two_dataloader_workers_each_with_its_own_cache(videos: list[Path], fresh_default: FrameCache) -> None:
    rows = [(v, i % 2) for i, v in enumerate(videos)] * 2  # 8 samples, each file twice
    ds = ManifestDataset(rows, config=TRAIN, seed=1)
    ref = ManifestDataset(rows, config=uncached(TRAIN), seed=1)
    loader = DataLoader(_WithHits(ds), batch_size=2, num_workers=2, persistent_workers=True, timeout=60)
    passes = [list(loader) for _ in range(2)]
    want = torch.stack([ref[i]["video"] for i in range(len(ref))])
    for batches in passes:
        assert torch.equal(torch.cat([b["video"] for b in batches]), want)
    assert int(passes[1][-1]["hits"].max()) > 0  # the persistent workers kept their caches
    assert fresh_default.stats().misses == 0  # the main process decoded nothing: workers have their own caches


def test_pickled_cache_arrives_empty_and_settings_are_checked(videos: list[Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from stia_kit.data import configure_default_cache

    old = set_default_cache(None)
    try:
        monkeypatch.setenv("STIA_FRAME_CACHE_BYTES", "3M")
        monkeypatch.setenv("STIA_FRAME_CACHE_DIR", str(tmp_path / "env"))
        assert (default_cache().max_bytes, default_cache().disk_dir) == (3 << 20, tmp_path / "env")
        assert configure_default_cache(0) is default_cache() and default_cache().stats().max_bytes == 0
    finally:
        set_default_cache(old)

    cache = FrameCache(max_bytes=1 << 20, disk_dir=tmp_path)
    cache.read_clip(videos[0], lambda n: np.arange(1))
    copy = pickle.loads(pickle.dumps(cache))
    assert (copy.max_bytes, copy.disk_dir, len(copy), len(cache)) == (1 << 20, tmp_path, 0, 1)
    assert parse_bytes("512M") == 512 << 20 and parse_bytes("2GiB") == 2 << 30 and parse_bytes(7) == 7
    for bad in ("lots", "-1"):
        with pytest.raises(ValueError, match="byte count"):
            parse_bytes(bad)
    with pytest.raises(ValueError, match="max_bytes"):
        FrameCache(max_bytes=-1)
    with pytest.raises(ValueError, match="frame_cache"):
        DataConfig(frame_cache="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache must be a FrameCache"):
        ManifestDataset([(videos[0], 0)], cache="memory")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ per-frame clip transforms


class _Counted:
    """A deterministic per-frame step (gamma 0.5) that counts the frames it processed."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        assert rng is None  # per-frame steps get no generator (with or without the cache)
        self.frames += clip.shape[-3] * (clip.shape[0] if clip.ndim == 5 else 1)
        return clip.sqrt()


def test_per_frame_step_is_computed_once_per_video_and_equals_the_uncached_step(videos: list[Path]) -> None:
    rows = [(v, i % 2) for i, v in enumerate(videos)]
    for cfg, train in ((TRAIN, True), (TEST, False)):
        step, plain = _Counted(), _Counted()
        cache = FrameCache()
        ds = ManifestDataset(rows, config=cfg, train=train, seed=2, cache=cache)
        ds = ds.with_clip_transform(step, per_frame=True)
        ref = ManifestDataset(rows, config=uncached(cfg), train=train, seed=2)
        ref = ref.with_clip_transform(plain, per_frame=True)
        got, want = epochs_of(ds, 3), epochs_of(ref, 3)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        total = sum(24 + 3 * i for i in range(len(videos)))
        assert step.frames == total and plain.frames == 3 * len(videos) * cfg.num_frames * cfg.test_clips ** (not train)
        half = ds.subset([1, 2])  # copies share the derived entries too
        _ = [half[i] for i in range(len(half))]
        assert step.frames == total
    tiny = FrameCache(max_bytes=cache.stats().bytes // 4)  # too small for the float32 frames: clip by clip
    step = _Counted()
    small = ManifestDataset(rows, config=TRAIN, seed=2, cache=tiny).with_clip_transform(step, per_frame=True)
    ref = ManifestDataset(rows, config=uncached(TRAIN), seed=2).with_clip_transform(_Counted(), per_frame=True)
    assert all(torch.equal(a, b) for a, b in zip(epochs_of(small, 2), epochs_of(ref, 2), strict=True))
    assert step.frames < total + 2 * len(videos) * TRAIN.num_frames  # one full pass at most, then per clip


def test_per_frame_curve_enhancer_matches_enhancing_the_sampled_frames(videos: list[Path]) -> None:
    from stia_kit.enhance import build_enhancer
    from stia_kit.experiments.lowlight import EnhanceClip

    torch.manual_seed(0)
    step = EnhanceClip(build_enhancer("zero_dce", device="cpu"))
    rows = [(v, 0) for v in videos[:2]]
    ds = ManifestDataset(rows, config=TRAIN, seed=4, cache=FrameCache()).with_clip_transform(step, per_frame=True)
    ref = ManifestDataset(rows, config=uncached(TRAIN), seed=4).with_clip_transform(step)
    for a, b in zip(epochs_of(ds, 2), epochs_of(ref, 2), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_cache_resized_keeps_samples_identical_and_skips_the_resize(videos: list[Path]) -> None:
    rows = [(v, i % 2) for i, v in enumerate(videos)]
    fixed = DataConfig(num_frames=4, stride=2, short_side=30, crop_size=28, cache_resized=True)
    multi = DataConfig(num_frames=4, stride=2, short_side=30, crop_size=28, test_clips=2, test_crops=3,
                       cache_resized=True)
    jitter = DataConfig(**{**TRAIN.__dict__, "cache_resized": True})
    for cfg, train, resized in ((fixed, True, True), (multi, False, True), (jitter, True, False)):
        cache = FrameCache()
        ds = ManifestDataset(rows, config=cfg, train=train, seed=6, cache=cache)
        ref = ManifestDataset(rows, config=uncached(cfg), train=train, seed=6)
        assert all(torch.equal(a, b) for a, b in zip(epochs_of(ds, 2), epochs_of(ref, 2), strict=True))
        tags = [k[-1] for k in cache._entries if len(k) == 6]
        assert tags == (["resize:30"] * len(videos) if resized else [])  # scale jitter is random: not cached
        if resized:
            assert all(e.dtype == np.float32 and e.shape[2] == 30 for k, e in cache._entries.items() if len(k) == 6)
    step = _Counted()
    both = ManifestDataset(rows, config=fixed, seed=6, cache=FrameCache()).with_clip_transform(step, per_frame=True)
    ref = ManifestDataset(rows, config=uncached(fixed), seed=6).with_clip_transform(_Counted(), per_frame=True)
    assert all(torch.equal(a, b) for a, b in zip(epochs_of(both, 2), epochs_of(ref, 2), strict=True))
    assert step.frames == sum(24 + 3 * i for i in range(len(videos)))  # step + resize once per video
    plain = ManifestDataset(rows, config=fixed, seed=6, cache=(c := FrameCache())).with_clip_transform(
        lambda clip, rng: clip * 0.5)
    _ = [plain[i] for i in range(len(plain))]
    assert all(len(k) == 5 for k in c._entries)  # an ordinary step runs before the resize: only frames cached


def test_cache_resized_also_caches_a_fixed_non_square_resize(videos: list[Path]) -> None:
    """``resize_hw`` (MSF-Net's 171 x 128) is a fixed per-frame resize too: cached, samples unchanged."""
    rows = [(v, i % 2) for i, v in enumerate(videos)]
    cfg = DataConfig(num_frames=4, stride=2, short_side=30, crop_size=28, resize_hw=(30, 40), cache_resized=True)
    for train in (True, False):
        cache = FrameCache()
        ds = ManifestDataset(rows, config=cfg, train=train, seed=6, cache=cache)
        ref = ManifestDataset(rows, config=uncached(cfg), train=train, seed=6)
        assert all(torch.equal(a, b) for a, b in zip(epochs_of(ds, 2), epochs_of(ref, 2), strict=True))
        tags = [k[-1] for k in cache._entries if len(k) == 6]
        assert tags == ["resize_hw:(30, 40)"] * len(videos)
        assert all(e.shape[2:] == (30, 40) for k, e in cache._entries.items() if len(k) == 6)
