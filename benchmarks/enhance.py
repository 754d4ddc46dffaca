"""Throughput of the enhancement methods on this machine's CPU.

Measures end-to-end frames/s on uint8 RGB frames [T, H, W, 3] (the `Enhancer` interface, so curve models
include the uint8 <-> float conversion) at 320x240 (ARID's resolution) and reports it per megapixel too.
Curve models are randomly initialised: the speed does not depend on the weights.

    python benchmarks/enhance.py [--threads 2] [--seconds 2] [--paper-res]

`--paper-res` also times Zero-DCE++ (scale factor 12) at 1200x900, the setting of the paper's CPU figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from stia_kit.enhance import PAPER_SCALE_FACTOR, build_enhancer

PAPER_REFERENCE = "Zero-DCE++ paper (Li et al., TPAMI 2021): about 11 FPS on a CPU at 1200x900 (their hardware)"

METHODS: list[tuple[str, str, dict]] = [
    ("zero_dce", "zero_dce", {}),
    ("zero_dce_pp (scale 1)", "zero_dce_pp", {"scale_factor": 1}),
    (f"zero_dce_pp (scale {PAPER_SCALE_FACTOR})", "zero_dce_pp", {"scale_factor": PAPER_SCALE_FACTOR}),
    ("gamma", "gamma", {"gamma": 0.4}),
    ("histeq", "histeq", {}),
    ("clahe", "clahe", {}),
]


def time_method(enhancer, frames: np.ndarray, seconds: float) -> float:
    """Frames per second: one warm-up call, then repeated calls until `seconds` have passed."""
    enhancer(frames[:2])
    done, start = 0, time.perf_counter()
    while True:
        enhancer(frames)
        done += len(frames)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--frames", type=int, default=16, help="frames per call (one clip)")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timing per method")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    p.add_argument("--paper-res", action="store_true", help="also time zero_dce_pp (scale 12) at 1200x900")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (args.frames, args.height, args.width, 3), dtype=np.uint8)
    mp = args.width * args.height / 1e6
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{args.threads}, load average {load:.1f}; frames {args.width}x{args.height} ({mp:.4f} MP)")
    print(f"{'method':<24}{'frames/s':>10}{'MP/s':>10}{'ms/MP':>10}")
    for label, name, kw in METHODS:
        extra = {"device": "cpu"} if name.startswith("zero_dce") else {}
        fps = time_method(build_enhancer(name, **kw, **extra), frames, args.seconds)  # type: ignore[arg-type]
        print(f"{label:<24}{fps:>10.1f}{fps * mp:>10.2f}{1000 / (fps * mp):>10.1f}")
    if args.paper_res:
        big = rng.integers(0, 60, (4, 900, 1200, 3), dtype=np.uint8)
        enh = build_enhancer("zero_dce_pp", scale_factor=PAPER_SCALE_FACTOR, device="cpu", chunk_size=4)
        fps = time_method(enh, big, args.seconds)
        print(f"{'zero_dce_pp @1200x900':<24}{fps:>10.1f}{fps * 1.08:>10.2f}{1000 / (fps * 1.08):>10.1f}")
    print(f"reference: {PAPER_REFERENCE}")


if __name__ == "__main__":
    main()
