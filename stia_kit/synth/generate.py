"""Writing a SynthActions dataset to disk as real videos in the UCF101 / HMDB51 / ARID layouts.

Every clip is rendered from its own Generator seeded with ``(seed, class index in ACTIONS, clip
index)`` and its group's scene from ``(seed, group)``, so the output does not depend on the number
of workers or on which clips were already present. Each file is written atomically; a clip counts as
done when its ``.npz`` (written last) carries the current config key and its videos have
``num_frames`` frames. ``synth_actions.json`` is written at the very end and marks a complete root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..progress import Progress
from .config import ACTIONS, SynthConfig, class_name
from .layouts import clip_relpath, group_and_number, split_files, write_text_atomic
from .render import Scene, darken, frames_digest, render_clip_with_meta
from .video import frame_count, write_video

FORMAT_VERSION = 1
MANIFEST = "synth_actions.json"
CLEAN_DIR = "clean"
_CLIP_TAG, _SCENE_TAG, _DARK_TAG = 0, 1, 2


@dataclass
class SynthSummary:
    """What :func:`generate_synth_actions` did."""

    root: str  # dataset root
    classes: list[str]  # actions generated (label order)
    layouts: list[str]  # layouts written
    num_clips: int  # clips in the dataset
    generated: int  # clips rendered by this call
    skipped: int  # clips found valid on disk and kept
    seconds: float  # wall time of this call
    content_hash: str  # sha256 over every clip's rendered frames (codec independent)


def clip_rng(cfg: SynthConfig, action: str, clip_index: int) -> np.random.Generator:
    """Generator of one clip: seeded from (seed, class index in ACTIONS, clip index)."""
    return np.random.default_rng([cfg.seed, _CLIP_TAG, ACTIONS.index(action), clip_index])


def group_scene(cfg: SynthConfig, group: int) -> Scene:
    """Actor + scene shared by all clips (of every class) of a 1-based group."""
    return Scene.sample(np.random.default_rng([cfg.seed, _SCENE_TAG, group]))


def render_dataset_clip(cfg: SynthConfig, action: str, clip_index: int) -> dict:
    """Render one dataset clip -> dict with frames (as written), clean frames (low light), masks, boxes, meta."""
    group, number = group_and_number(cfg, clip_index)
    clip = render_clip_with_meta(action, clip_rng(cfg, action, clip_index), cfg, scene=group_scene(cfg, group))
    meta = dict(clip.meta, group=group, clip=number, clip_index=clip_index, seed=cfg.seed,
                num_frames=cfg.num_frames, size=cfg.size, fps=cfg.fps, config_key=cfg.content_key(),
                format_version=FORMAT_VERSION)
    frames, clean = clip.frames, None
    if cfg.lowlight:
        dark_rng = np.random.default_rng([cfg.seed, _DARK_TAG, ACTIONS.index(action), clip_index])
        frames, params = darken(clip.frames, dark_rng, return_params=True)
        clean = clip.frames
        meta["darken"] = asdict(params)
        meta["clean_sha256"] = frames_digest(clean)
    meta["frames_sha256"] = frames_digest(frames)
    return {"frames": frames, "clean": clean, "masks": clip.masks, "boxes": clip.boxes, "meta": meta}


def save_masks(path: Path, masks: np.ndarray, boxes: np.ndarray, meta: dict) -> None:
    """Write masks (bit-packed), boxes and metadata JSON to ``path`` (.npz) atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, masks=np.packbits(masks, axis=-1), mask_shape=np.array(masks.shape),
                        boxes=boxes.astype(np.int32), meta=np.array(json.dumps(meta, sort_keys=True)))
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def load_masks(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a clip's ``.npz`` (or pass the video path) -> masks bool [T,H,W], boxes int32 [T,4], meta."""
    path = Path(path).with_suffix(".npz")
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["mask_shape"])
        masks = np.unpackbits(data["masks"], axis=-1, count=shape[-1]).astype(bool).reshape(shape)
        return masks, data["boxes"].astype(np.int32), json.loads(str(data["meta"]))


def _clip_is_valid(root: Path, cfg: SynthConfig, rel: str) -> dict | None:
    """Metadata of a complete, current clip at ``rel``, or None when it must be (re)generated."""
    video = root / rel
    npz = video.with_suffix(".npz")
    if not (video.exists() and npz.exists()):
        return None
    try:
        meta = load_masks(npz)[2]
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("config_key") != cfg.content_key() or frame_count(video) != cfg.num_frames:
        return None
    if cfg.lowlight and frame_count(root / CLEAN_DIR / rel) != cfg.num_frames:
        return None
    return meta


def _produce_clip(job: tuple[str, SynthConfig, str, int]) -> tuple[dict, bool]:
    """Worker: make sure one clip exists in the primary layout -> (meta, generated_now)."""
    root_str, cfg, action, clip_index = job
    root = Path(root_str)
    rel = clip_relpath(cfg.layouts[0], action, cfg, clip_index)
    meta = _clip_is_valid(root, cfg, rel)
    if meta is not None:
        return meta, False
    clip = render_dataset_clip(cfg, action, clip_index)
    write_video(root / rel, clip["frames"], cfg.fps, "mjpeg")
    if clip["clean"] is not None:
        write_video(root / CLEAN_DIR / rel, clip["clean"], cfg.fps, "ffv1")
    save_masks((root / rel).with_suffix(".npz"), clip["masks"], clip["boxes"], clip["meta"])
    return clip["meta"], True


def _link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` atomically (copy when linking is impossible)."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _manifest_matches(root: Path, cfg: SynthConfig) -> dict | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("content_key") != cfg.content_key():
        raise ValueError(f"{root} already holds SynthActions made with a different config "
                         f"({manifest.get('config')}); use another root or delete it first")
    if manifest.get("config") != cfg.to_dict() or manifest.get("format_version") != FORMAT_VERSION:
        return None
    if all((root / rel).exists() for rel in manifest.get("files", [])):
        return manifest
    return None


def _versions() -> dict[str, str]:
    import av
    import cv2
    return {"format": str(FORMAT_VERSION), "numpy": np.__version__, "opencv": cv2.__version__,
            "av": av.__version__, "python": sys.version.split()[0]}


def _iterate(jobs: list, workers: int):
    if workers > 1:
        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap(_produce_clip, jobs, chunksize=4)
    else:
        pool, results = None, map(_produce_clip, jobs)
    try:
        yield from results
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def generate_synth_actions(root: str | Path, cfg: SynthConfig = SynthConfig(), *, progress: bool = True,
                           workers: int = 1) -> SynthSummary:
    """Render and write SynthActions under ``root`` in every layout of ``cfg.layouts``.

    Videos (MJPEG .avi) and ``<stem>.npz`` (masks, boxes, metadata) go into the first layout and are
    hard-linked into the others; split files follow the official formats; with ``cfg.lowlight`` the
    layout videos are the dark clips and the clean ones are under ``root/clean/<same path>``.
    Calling again with the same config is a no-op on a complete root and resumes an incomplete one.
    ``workers > 1`` renders in a spawn-based process pool with identical output.
    ``progress``: one updating line while rendering and a summary line at the end (:mod:`stia_kit.progress`).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    start = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with _root_lock(root):  # parallel runs (stia sweep --workers N) sharing a data_root render it once
        return _generate_locked(root, cfg, progress, workers, start)


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``root/.synth.lock`` (POSIX; a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: one process at a time is the user's responsibility
        yield
        return
    with open(root / ".synth.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second generator waits here, then finds the manifest complete
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _generate_locked(root: Path, cfg: SynthConfig, progress: bool, workers: int, start: float) -> SynthSummary:
    """The body of :func:`generate_synth_actions`, run while holding the root's lock."""
    jobs = [(str(root), cfg, a, c) for a in cfg.classes for c in range(cfg.clips_per_class)]
    manifest = _manifest_matches(root, cfg)
    if manifest is not None:
        return SynthSummary(str(root), list(cfg.classes), list(cfg.layouts), len(jobs), 0, len(jobs),
                            time.perf_counter() - start, manifest["content_hash"])

    metas, generated = {}, 0
    with Progress(len(jobs), "SynthActions", unit="clip", enabled=progress) as bar:  # one updating line
        for meta, made in _iterate(jobs, workers):
            metas[(meta["action"], meta["clip_index"])] = meta
            generated += int(made)
            bar.update(1, status=f"{meta['action']} #{meta['clip_index']}")
        bar.close(f"SynthActions: {len(jobs)} clips ({generated} rendered, {len(jobs) - generated} already on disk) "
                  f"in {bar.elapsed:.1f} s -> {root}")

    files: list[str] = []
    for action, c in sorted(metas, key=lambda k: (ACTIONS.index(k[0]), k[1])):
        primary = clip_relpath(cfg.layouts[0], action, cfg, c)
        for layout in cfg.layouts:
            rel = clip_relpath(layout, action, cfg, c)
            for suffix in (".avi", ".npz"):
                rel_s = str(Path(rel).with_suffix(suffix))
                if layout != cfg.layouts[0]:
                    _link(root / Path(primary).with_suffix(suffix), root / rel_s)
                files.append(rel_s)
            if cfg.lowlight:
                if layout != cfg.layouts[0]:
                    _link(root / CLEAN_DIR / primary, root / CLEAN_DIR / rel)
                files.append(f"{CLEAN_DIR}/{rel}")
    for layout in cfg.layouts:
        for rel, text in split_files(layout, cfg).items():
            write_text_atomic(root / rel, text)
            files.append(rel)

    digest = hashlib.sha256()
    for key in sorted(metas, key=lambda k: (ACTIONS.index(k[0]), k[1])):
        meta = metas[key]
        digest.update(f"{key[0]}/{key[1]}:{meta['frames_sha256']}:{meta.get('clean_sha256', '')}\n".encode())
    manifest = {
        "name": "SynthActions", "format_version": FORMAT_VERSION, "config": cfg.to_dict(),
        "content_key": cfg.content_key(), "classes": list(cfg.classes),
        "class_names": [class_name(a) for a in cfg.classes],
        "counts": {"clips": len(jobs), "per_class": cfg.clips_per_class, "groups": cfg.num_groups,
                   "frames_per_clip": cfg.num_frames},
        "codec": {"video": "mjpeg (yuvj444p, q=2) in .avi", "clean": "ffv1 (bgr0, lossless) in .avi"},
        "versions": _versions(), "content_hash": digest.hexdigest(), "files": files,
    }
    write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=1))
    return SynthSummary(str(root), list(cfg.classes), list(cfg.layouts), len(jobs), generated,
                        len(jobs) - generated, time.perf_counter() - start, manifest["content_hash"])
