"""Benchmark the explanation methods: seconds and peak memory per clip, teaching size and paper-size R3D-18.

Usage::

    python benchmarks/explain.py                        # both sizes, every method (paper size: minutes)
    python benchmarks/explain.py --sizes teaching --methods saliency gradcam

Sizes (R3D-18, 11 classes, one clip, eval mode, random weights seeded 0; the cost of an attribution does not
depend on training):

- ``teaching``: the notebook's R3D-18 (width 16), 8 x 56^2 clips;
- ``paper``: R3D-18 at its published width 64 and clip 16 x 112^2 (Tran et al. 2018).

Methods: every one of ``stia_kit.explain.attribution.METHODS`` with ``ExplainConfig`` defaults (IG 16 steps,
SmoothGrad 8 samples, occlusion window 2 x 8 x 8 stride 2 x 4 x 4, ablation tubes 2 x 8 x 8, 1 GiB memory
budget), except at the paper size, where occlusion and feature ablation use 4 x 16 x 16 windows / tubes
(stride 4 x 16 x 16) so a run takes minutes, not an hour (the printed pass count says what was run). Every
(size, method) runs in a fresh subprocess so memory numbers do not mix. Time: one attribution after a warm-up
forward + backward (an attribution is itself tens to hundreds of passes). Peak memory: growth of
``ru_maxrss`` over the attribution, relative to the process after the warm-up. Also printed: the cost
estimate ``estimate_cost`` gave before the run (the number a user sees before a long run). Run it on a quiet
machine.

Measured 2026-12-02 on the 2-core CPU, torch 2.13, 2 threads, nothing else running:

(see the closing note of issue 11; filled in below after the run)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from stia_kit.explain.attribution import METHODS, ExplainConfig, attribute, estimate_cost
from stia_kit.models import build_model

#: size -> (model overrides, (T, side), occlusion / ablation window override or None)
SIZES: dict[str, tuple[dict, tuple[int, int], tuple[int, int, int] | None]] = {
    "teaching": ({"width": 16}, (8, 56), None),
    "paper": ({}, (16, 112), (4, 16, 16)),
}


def run_one(size: str, method: str) -> dict:
    torch.manual_seed(0)
    over, (t, side), window = SIZES[size]
    model = build_model("r3d_18", 11, preset="teaching" if size == "teaching" else "paper", **over).eval()
    x = torch.randn(1, 3, t, side, side)
    cfg = ExplainConfig(method=method)
    if window is not None:
        cfg = ExplainConfig(method=method, window=window, stride=window, tube=window)
    xx = x.clone().requires_grad_(True)
    model(xx).sum().backward()  # warm-up
    model.zero_grad(set_to_none=True)
    est = estimate_cost(model, x, method, cfg)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    att = attribute(model, x, target=0, method=method, config=cfg, verbose=False)
    seconds = time.perf_counter() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"size": size, "method": method, "clip": list(x.shape), "seconds": seconds,
            "peak_mem_MiB": (rss1 - rss0) / 1024, "estimate": est.text, "estimate_s": est.seconds,
            "passes": est.passes, "meta": {k: v for k, v in att.meta.items() if isinstance(v, (int, float, str))},
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--one", nargs=2, metavar=("SIZE", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    rows = []
    for size in args.sizes:
        for method in args.methods:
            out = subprocess.run([sys.executable, __file__, "--one", size, method], capture_output=True, text=True)
            if out.returncode:
                print(f"{size:8s} {method:22s} FAILED: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{size:8s} {method:22s} {r['clip']} {r['params_M']:.2f} M params | {r['seconds']:7.2f} s per clip | "
                  f"peak mem +{r['peak_mem_MiB']:5.0f} MiB | estimate: {r['estimate']}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
