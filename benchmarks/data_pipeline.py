"""Data-pipeline throughput: decode + transform clips/s, decord vs PyAV, 0 and 2 DataLoader workers.

Usage::

    python benchmarks/data_pipeline.py                       # real clips in ../shared/realdata
    python benchmarks/data_pipeline.py --synth /tmp/synth    # + a SynthActions folder in the UCF101 layout

The real-clip set is every video under the realdata folder. decord cannot read the raw MPEG-4 streams of
``ucf101_reencoded/``, so the decord rows use the other clips only (the row says how many); the PyAV and
auto rows use all of them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from stia_kit.data import DataConfig, ManifestDataset, UCF101, VideoDataset, find_videos, probe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REALDATA = REPO.parent / "shared" / "realdata"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA, help="folder of real clips")
    p.add_argument("--synth", type=Path, default=None, help="SynthActions root in the UCF101 layout (optional)")
    p.add_argument("--backends", nargs="+", default=["decord", "pyav", "auto"], choices=["decord", "pyav", "auto"])
    p.add_argument("--workers", nargs="+", type=int, default=[0, 2], help="DataLoader num_workers values")
    p.add_argument("--passes", type=int, default=2, help="passes over each dataset per measurement")
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


def clips_per_second(dataset: Dataset, workers: int, batch_size: int, passes: int) -> tuple[int, float]:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    clips = 0
    start = time.perf_counter()
    for _ in range(passes):
        for batch in loader:
            clips += batch["video"].shape[0]
    return clips, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    config_for = {
        b: DataConfig(
            num_frames=args.num_frames,
            stride=args.stride,
            short_side=args.short_side,
            crop_size=args.crop_size,
            backend=b,
        )
        for b in args.backends
    }
    sets: dict[str, dict[str, Dataset]] = {}
    if args.realdata.is_dir():
        sets["real"] = real_datasets(args.realdata, config_for)
    else:
        print(f"real clips not found at {args.realdata}: skipped")
    if args.synth is None:
        print("no --synth ROOT given: SynthActions part skipped")
    else:
        sets["synth"] = synth_datasets(args.synth, config_for, args.max_videos)

    header = f"{'data':<6} {'backend':<7} {'workers':>7} {'videos':>6} {'clips':>6} {'seconds':>8} {'clips/s':>8}"
    print(f"T={args.num_frames} stride={args.stride} resize={args.short_side} crop={args.crop_size} "
          f"batch={args.batch_size} passes={args.passes}")
    print(header)
    print("-" * len(header))
    for name, by_backend in sets.items():
        for backend, dataset in by_backend.items():
            for workers in args.workers:
                clips, seconds = clips_per_second(dataset, workers, args.batch_size, args.passes)
                print(f"{name:<6} {backend:<7} {workers:>7} {len(dataset):>6} {clips:>6} {seconds:>8.2f} "
                      f"{clips / seconds:>8.1f}")


if __name__ == "__main__":
    main()
