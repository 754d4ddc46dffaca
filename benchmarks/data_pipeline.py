"""Data-pipeline throughput: decode + transform clips/s, decord vs PyAV, 0 and 2 DataLoader workers, with the
decoded-frame cache off and on.

Usage::

    python benchmarks/data_pipeline.py                       # real clips in ../shared/realdata
    python benchmarks/data_pipeline.py --synth /tmp/synth    # + a SynthActions folder in the UCF101 layout

The real-clip set is every video under the realdata folder. decord cannot read the raw MPEG-4 streams of
``ucf101_reencoded/``, so the decord rows use the other clips only (the row says how many); the PyAV and
auto rows use all of them.

Columns: ``cache`` = the frame cache (``stia_kit.data.cache``; a fresh process-wide cache per row, so pass 1
decodes); ``pass 1`` = clips/s of the first pass, ``later`` = clips/s of the remaining passes (what epochs
after the first see; with workers, each worker fills its own cache, and non-persistent workers start empty
every pass, so use ``--persistent`` to see what ``stia_kit.train.fit`` sees).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from stia_kit.data import (DataConfig, FrameCache, ManifestDataset, UCF101, VideoDataset, find_videos, probe,
                           set_default_cache)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REALDATA = REPO.parent / "shared" / "realdata"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA, help="folder of real clips")
    p.add_argument("--synth", type=Path, default=None, help="SynthActions root in the UCF101 layout (optional)")
    p.add_argument("--backends", nargs="+", default=["decord", "pyav", "auto"], choices=["decord", "pyav", "auto"])
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2], help="DataLoader num_workers values")
    p.add_argument("--passes", type=int, default=3, help="passes over each dataset per measurement")
    p.add_argument("--cache", nargs="+", default=["off", "on"], choices=["off", "on"], help="frame cache settings")
    p.add_argument("--persistent", action="store_true", help="persistent DataLoader workers (as fit uses)")
    p.add_argument("--max-videos", type=int, default=64, help="videos used from --synth")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--num-frames", type=int, default=8, help="T")
    p.add_argument("--stride", type=int, default=2, help="s")
    p.add_argument("--short-side", type=int, default=128)
    p.add_argument("--crop-size", type=int, default=112)
    return p.parse_args()


def real_datasets(root: Path, config_for: dict[str, DataConfig]) -> dict[str, Dataset]:
    videos = find_videos(root)
    if not videos:
        raise SystemExit(f"no videos under {root}")
    decodable_by_decord = [v for v in videos if not probe(v).is_raw_stream]
    out: dict[str, Dataset] = {}
    for backend, cfg in config_for.items():
        chosen = decodable_by_decord if backend == "decord" else videos
        out[backend] = ManifestDataset([(v, 0) for v in chosen], config=cfg, train=True)
    return out


def synth_datasets(root: Path, config_for: dict[str, DataConfig], max_videos: int) -> dict[str, Dataset]:
    out: dict[str, Dataset] = {}
    for backend, cfg in config_for.items():
        ds: VideoDataset = UCF101(root, split=1, train=True, config=cfg, missing="skip")
        out[backend] = Subset(ds, range(min(max_videos, len(ds))))
    return out


def pass_rates(dataset: Dataset, workers: int, batch_size: int, passes: int, persistent: bool) -> list[float]:
    """clips/s of each pass over ``dataset``."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False,
                        persistent_workers=persistent and workers > 0)
    rates = []
    for _ in range(passes):
        clips = 0
        start = time.perf_counter()
        for batch in loader:
            clips += batch["video"].shape[0]
        rates.append(clips / (time.perf_counter() - start))
    return rates


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    header = (f"{'data':<6} {'backend':<7} {'cache':<5} {'workers':>7} {'videos':>6} {'pass 1':>8} {'later':>8}"
              "  (clips/s)")
    print(f"T={args.num_frames} stride={args.stride} resize={args.short_side} crop={args.crop_size} "
          f"batch={args.batch_size} passes={args.passes} persistent_workers={args.persistent}")
    print(header)
    print("-" * len(header))
    for cache in args.cache:
        config_for = {
            b: DataConfig(
                num_frames=args.num_frames,
                stride=args.stride,
                short_side=args.short_side,
                crop_size=args.crop_size,
                backend=b,
                frame_cache=cache == "on",
            )
            for b in args.backends
        }
        sets: dict[str, dict[str, Dataset]] = {}
        if args.realdata.is_dir():
            sets["real"] = real_datasets(args.realdata, config_for)
        elif cache == args.cache[0]:
            print(f"real clips not found at {args.realdata}: skipped")
        if args.synth is not None:
            sets["synth"] = synth_datasets(args.synth, config_for, args.max_videos)
        elif cache == args.cache[0]:
            print("no --synth ROOT given: SynthActions part skipped")
        for name, by_backend in sets.items():
            for backend, dataset in by_backend.items():
                for workers in args.workers:
                    set_default_cache(FrameCache())  # cold for every row
                    rates = pass_rates(dataset, workers, args.batch_size, args.passes, args.persistent)
                    later = sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else float("nan")
                    print(f"{name:<6} {backend:<7} {cache:<5} {workers:>7} {len(dataset):>6} {rates[0]:>8.1f} "
                          f"{later:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
