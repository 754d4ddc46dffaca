"""Benchmark the explanation methods: seconds and peak memory per clip, teaching size and paper-size R3D-18.

Usage::

    python benchmarks/explain.py                        # both sizes, every method (paper size: minutes)
    python benchmarks/explain.py --sizes teaching --methods saliency gradcam

Sizes (R3D-18, 11 classes, one clip, eval mode, random weights seeded 0; the cost of an attribution does not
depend on training):

- ``teaching``: the notebook's R3D-18 (width 16), 8 x 56^2 clips;
- ``paper``: R3D-18 at its published width 64 and clip 16 x 112^2 (Tran et al. 2018).

Time: a second attribution after a first one (teaching size; the first call's time is printed too: it
includes one-time costs such as the memory profile that sizes the batches); at the paper size the single
call (those costs are then a small part). Methods: every one of ``stia_kit.explain.attribution.METHODS`` with ``ExplainConfig`` defaults (IG 16 steps,
SmoothGrad 8 samples, occlusion window 2 x 8 x 8 stride 2 x 4 x 4, ablation tubes 2 x 8 x 8, 1 GiB memory
budget), except at the paper size, where occlusion and feature ablation use 4 x 16 x 16 windows / tubes
(stride 4 x 16 x 16) so a run takes minutes, not an hour (the printed pass count says what was run). Every
(size, method) runs in a fresh subprocess so memory numbers do not mix, after a warm-up forward + backward.
Peak memory: growth of ``ru_maxrss`` over the first attribution, relative to the process after the warm-up. Also printed: the cost
estimate ``estimate_cost`` gave before the run (the number a user sees before a long run). Run it on a quiet
machine.

Measured 2026-12-02 on the 2-core CPU, torch 2.13, 2 threads, nothing else running:

======================  ===================  ==================  ===========  =====================================
size, method            s per clip           first call s        peak mem     estimate printed before the run
======================  ===================  ==================  ===========  =====================================
teaching IG (16 steps)  0.51                 1.53                +88 MiB      32 passes, ~2.9 s (internal batch 16)
teaching saliency       0.14                 0.87                +36 MiB      2 passes, ~0.2 s
teaching smoothgrad     0.29                 1.37                +45 MiB      16 passes, ~1.3 s
teaching gradcam        0.12                 0.87                +46 MiB      2 passes, ~0.1 s
teaching gradcam_time   0.15                 0.97                +89 MiB      2 passes, ~0.1 s
teaching guided_gradcam 0.42                 1.21                +58 MiB      4 passes, ~0.3 s
teaching occlusion      7.93                 8.91                +478 MiB     677 passes, ~49.2 s
teaching feature_abl.   2.55                 3.29                +461 MiB     197 passes, ~14.6 s
paper IG (16 steps)     27.24                (single call)       +517 MiB     32 passes, ~43.5 s (internal batch 2)
paper saliency          2.05                                     +89 MiB      2 passes, ~2.5 s
paper smoothgrad        19.34                                    +976 MiB     16 passes, ~19.5 s
paper gradcam           3.91                                     +150 MiB     2 passes, ~3.0 s
paper gradcam_time      3.07                                     +147 MiB     2 passes, ~3.1 s
paper guided_gradcam    7.70                                     +240 MiB     4 passes, ~7.0 s
paper occlusion 4x16^2  176.16                                   +330 MiB     197 passes, ~325.0 s
paper feature_ablation  169.37                                   +318 MiB     197 passes, ~291.5 s
======================  ===================  ==================  ===========  =====================================

The estimate multiplies a measured single-clip forward + backward by the pass count, so it over-estimates the
batched forward-only methods (occlusion / ablation: about 6x at the teaching size, 2x at the paper size) and is
close for the gradient methods: read it as an upper bound.
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
    cold = time.perf_counter() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = cold
    if size == "teaching":  # a second call, without the first call's one-time costs (profiling, Captum set-up)
        start = time.perf_counter()
        attribute(model, x, target=0, method=method, config=cfg, verbose=False)
        seconds = time.perf_counter() - start
    return {"size": size, "method": method, "clip": list(x.shape), "seconds": seconds, "cold_seconds": cold,
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
            print(f"{size:8s} {method:22s} {r['clip']} {r['params_M']:.2f} M params | {r['seconds']:7.2f} s per clip "
                  f"(first call {r['cold_seconds']:.2f} s) | "
                  f"peak mem +{r['peak_mem_MiB']:5.0f} MiB | estimate: {r['estimate']}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
