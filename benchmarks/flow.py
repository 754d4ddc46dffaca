"""Optical flow extraction speed: TV-L1 / Farneback / DIS frames/s, 2-worker speed-up, SynthActions set time.

Usage::

    python benchmarks/flow.py                    # per-method rows + the 2-vs-1 worker speed-up
    python benchmarks/flow.py --synth-default    # + extracting the whole default SynthActions set
    python benchmarks/flow.py --tiny             # a seconds-long smoke run (tiny sizes; numbers meaningless)

Rows:

- ``flow``: flow fields/s of the method alone on consecutive grey frames (one OpenCV object reused, one
  OpenCV thread unless ``--threads``), at 320x240 (the first ``--frames`` frames of a real UCF101 clip from
  ``../shared/realdata``) and at SynthActions size (64x64, a rendered SynthActions clip).
- ``extract``: frames/s of :func:`stia_kit.data.flow.extract_video` on the same clip (strict decode +
  flow + JPEG writing of img_* / flow_x_* / flow_y_*, the completion marker), one OpenCV thread.
- speed-up: :func:`extract_tree` with ``--workers`` processes vs 1 on a small SynthActions tree
  (``--tree-clips`` clips per class, every class); the pool start-up (spawning the workers) is timed
  separately on a 2-video tree and included in the end-to-end figure.
- ``--synth-default``: the SynthActions set of ``stia_kit.experiments.common.SynthFields`` defaults
  (11 classes x 48 clips x 32 frames at 64 px), generated in a temporary folder (generation timed apart),
  then extracted with ``--method`` and ``--workers``.

Run it on a quiet machine: other processes on the cores change every number.

Measured 2026-12-02 on the 2-core CPU with nothing else running (``--method tvl1 --tree-clips 2``, then
``--methods dis --method dis --tree-clips 4 --synth-default``), frames/s with one OpenCV thread:

=======  =======  ======  =========  ======
row      size     TV-L1   Farneback  DIS
=======  =======  ======  =========  ======
flow     320x240  0.9     39.2       72.6
extract  320x240  0.9     46.2       65.9
flow     64x64    9.7     902.1      1591.0
extract  64x64    9.7     439.6      558.0
=======  =======  ======  =========  ======

- 2 workers vs 1, TV-L1, 22 SynthActions videos x 32 frames at 64 px: 81.1 s vs 46.2 s = 1.76x, the pool
  start-up (~3.8 s: each spawned worker imports torch through ``stia_kit``) included; 1.91x without it.
- DIS on 44 such videos: 4.3 s with 1 worker vs 6.6 s with 2 (0.65x): at 64 px DIS is cheaper than the
  pool start-up; use ``workers=1`` for small DIS jobs.
- The default SynthActions set (528 videos x 32 frames, 64 px): generated in 21.5 s, DIS flow + RGB with 2
  workers in 26.6 s (615 fields/s), 0 failed. With TV-L1 the same set is 16,368 fields at ~9.7 fields/s per
  worker: about 14 minutes with 2 workers (estimated from the rates above, not run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO.parent / "shared" / "realdata" / "ucf101" / "UCF-101" / "CricketBowling" / "v_CricketBowling_g01_c05.avi"
METHODS = ("tvl1", "farneback", "dis")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="real 320x240 clip for the 320x240 rows")
    p.add_argument("--frames", type=int, default=60, help="frames of each clip used by the per-method rows")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads for the per-method 'flow' rows")
    p.add_argument("--method", choices=METHODS, default="tvl1", help="method of the tree / SynthActions runs")
    p.add_argument("--workers", type=int, default=2, help="processes of the parallel tree run")
    p.add_argument("--tree-clips", type=int, default=4, help="clips per class of the speed-up tree (11 classes)")
    p.add_argument("--tree-frames", type=int, default=32, help="frames per clip of the speed-up tree")
    p.add_argument("--synth-default", action="store_true", help="also time the whole default SynthActions set")
    p.add_argument("--tiny", action="store_true", help="smoke run: tiny sizes everywhere")
    p.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return p.parse_args()


def decoded(path: Path, frames: int) -> list[Any]:
    from stia_kit.data.flow import iter_video_frames

    return list(iter_video_frames(path, max_frames=frames))


def time_flow(method: str, frames: list[Any], threads: int) -> float:
    """Flow fields/s of the method alone over consecutive frames."""
    import cv2

    from stia_kit.data.flow import FlowConfig, make_flow_estimator

    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    old = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        est = make_flow_estimator(FlowConfig(method=method))  # type: ignore[arg-type]
        est(grey[0], grey[1])  # warm-up (allocations)
        start = time.perf_counter()
        for a, b in zip(grey[:-1], grey[1:]):
            est(a, b)
        return (len(grey) - 1) / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(old)


def time_extract(method: str, video: Path, frames: int, work: Path) -> float:
    """Frames/s of extract_video (decode + flow + JPEGs + marker), one OpenCV thread."""
    import cv2

    from stia_kit.data.flow import FlowConfig, extract_video

    old = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        start = time.perf_counter()
        r = extract_video(video, work / f"{method}_{video.stem}", FlowConfig(method=method, max_frames=frames),  # type: ignore[arg-type]
                          force=True)
        return r.n_frames / (time.perf_counter() - start)
    finally:
        cv2.setNumThreads(old)


def synth_root(work: Path, name: str, **cfg: Any) -> tuple[Path, float]:
    from stia_kit.synth import SynthConfig, generate_synth_actions

    root = work / name
    start = time.perf_counter()
    generate_synth_actions(root, SynthConfig(**cfg), progress=False, workers=2)
    return root, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    from stia_kit.data.flow import FlowConfig, extract_tree

    if args.tiny:
        args.frames, args.tree_clips, args.tree_frames = 6, 2, 8
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "flow": {}, "extract": {}}
    with tempfile.TemporaryDirectory(prefix="stia_flow_bench_") as tmp:
        work = Path(tmp)
        small, _ = synth_root(work, "one_clip", classes=("drink", "jump"), clips_per_class=2, clips_per_group=1,
                              num_frames=max(args.frames, 4), size=64)
        clips: dict[str, Path | None] = {"320x240": args.clip if args.clip.is_file() else None,
                                         "64x64": sorted((small / "UCF-101").rglob("*.avi"))[0]}
        print(f"{'row':8s} {'size':8s} " + " ".join(f"{m:>10s}" for m in args.methods) + "   (frames/s)")
        for size, clip in clips.items():
            if clip is None:
                print(f"{'flow':8s} {size:8s} skipped: {args.clip} not found (../shared/realdata)")
                continue
            frames = decoded(clip, args.frames)
            shape = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
            flow = {m: time_flow(m, frames, args.threads) for m in args.methods}
            ext = {m: time_extract(m, clip, args.frames, work / "extract") for m in args.methods}
            results["flow"][shape], results["extract"][shape] = flow, ext
            print(f"{'flow':8s} {shape:8s} " + " ".join(f"{flow[m]:10.1f}" for m in args.methods)
                  + f"   ({len(frames) - 1} fields, {args.threads} OpenCV thread(s), {clip.name})")
            print(f"{'extract':8s} {shape:8s} " + " ".join(f"{ext[m]:10.1f}" for m in args.methods)
                  + "   (decode + flow + JPEGs, 1 thread)")

        cfg = FlowConfig(method=args.method)
        start_root, _ = synth_root(work, "startup", classes=("drink", "jump"), clips_per_class=2, clips_per_group=1,
                                   num_frames=4, size=64)
        t0 = time.perf_counter()
        extract_tree(start_root / "UCF-101", work / "startup_1", cfg, workers=1, progress=False, limit=2)
        t1 = time.perf_counter()
        extract_tree(start_root / "UCF-101", work / "startup_2", cfg, workers=2, progress=False, limit=2)
        t2 = time.perf_counter()
        startup = (t2 - t1) - (t1 - t0) / 2  # 2 videos in parallel take half the serial time + the start-up
        few = {"classes": ("drink", "jump")} if args.tiny else {}  # tiny: 2 of the 11 classes
        tree, _ = synth_root(work, "tree", clips_per_class=args.tree_clips, clips_per_group=1,
                             num_frames=args.tree_frames, size=64, **few)
        one = extract_tree(tree / "UCF-101", work / "tree_1", cfg, workers=1, progress=False)
        many = extract_tree(tree / "UCF-101", work / "tree_n", cfg, workers=args.workers, progress=False)
        speedup = one.seconds / many.seconds
        results["speedup"] = {"method": args.method, "videos": one.total, "fields": one.fields,
                              "seconds_1": one.seconds, f"seconds_{args.workers}": many.seconds,
                              "speedup": speedup, "pool_startup_s": startup}
        print(f"\n{args.method} on a SynthActions tree ({one.total} videos x {args.tree_frames} frames, 64x64): "
              f"1 worker {one.seconds:.1f} s, {many.workers} workers {many.seconds:.1f} s -> speed-up {speedup:.2f}x "
              f"(pool start-up ~{startup:.1f} s included; aim >= 1.8x with 2 workers)")

        if args.synth_default:
            from stia_kit.experiments.common import SynthFields

            d = SynthFields()
            sizes = dict(clips_per_class=d.synth_clips_per_class, clips_per_group=d.synth_clips_per_group,
                         num_frames=d.synth_frames, size=d.synth_size, seed=d.synth_seed)
            if args.tiny:
                sizes.update(clips_per_class=2, clips_per_group=1, num_frames=8, **few)
            root, gen_s = synth_root(work, "synth_default", **sizes)
            s = extract_tree(root / "UCF-101", work / "synth_default_flow", cfg, workers=args.workers, progress=True)
            results["synth_default"] = {"sizes": sizes, "generate_s": gen_s, "extract_s": s.seconds,
                                        "videos": s.total, "fields": s.fields, "workers": s.workers,
                                        "method": args.method}
            print(f"\nSynthActions {'TINY stand-in for the ' if args.tiny else ''}default set ({s.total} videos, {sizes['num_frames']} frames, {sizes['size']} px): "
                  f"generated in {gen_s:.1f} s; {args.method} flow + RGB with {s.workers} workers in {s.seconds:.1f} s "
                  f"({s.fields / s.seconds:.1f} fields/s), {len(s.failed)} failed")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
