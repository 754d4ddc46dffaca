"""Benchmark the 3D attention family: forward+backward time, peak memory per clip and GMACs vs the papers.

Usage::

    python benchmarks/attention3d_models.py                     # paper and teaching sizes, every model
    python benchmarks/attention3d_models.py --sizes teaching

Models (registry name and overrides) and clips:

- ``r3d_50`` (Hara 3D ResNet-50), ``st_manet`` with ``tda_proj="reshape"`` and with the default
  ``"conv3x1x1"`` (the two TDA readings of the spec): paper 32 x 112^2 (ST-MANet's clip), teaching 32 x 48^2;
- ``msf_r3d``, ``msf_r3d`` + FSAM: paper 8 x 112^2, teaching 8 x 56^2; ``msf_c3d``: paper 16 x 112^2,
  teaching 16 x 56^2 (the C3D family needs 16 frames).

Paper sizes run one clip (batch 1); teaching sizes the notebooks' batch of 8 (times and memory also per clip).
Every (model, size) runs in a fresh subprocess so the memory numbers do not mix. Time: minimum over
``--repeats`` of ``forward + backward`` (loss = logits.sum() + every ``loss_*`` term) after a warm-up.
Peak memory: growth of ``ru_maxrss`` over the timed steps. GMACs: ``torch.utils.flop_counter`` / 2 on the meta
device for one clip (the papers' "GFLOPs" are multiply-accumulates), beside the published figure where there is
one. Run it on a quiet machine.

Measured 2026-12-02 on the 2-core CPU with nothing else running, torch 2.13, 2 threads, 101 classes:

=======================  =========  =====================  ======================  ============  ==========
model                    params     GMACs / clip           fwd+bwd per clip        peak mem      clip
=======================  =========  =====================  ======================  ============  ==========
r3d_50, paper            46.41 M    20.14 (published 20.14) 1.80 s                 +694 MiB      32x112^2
st_manet reshape, paper  88.40 M    37.85 (+88 %)          3.37 s                  +1050 MiB     32x112^2
st_manet conv, paper     163.61 M   59.08 (+193 %)         6.43 s                  +1409 MiB     32x112^2
msf_r3d, paper           21.84 M    14.05 (published 15.1) 2.49 s                  +459 MiB      8x112^2
msf_r3d + FSAM, paper    21.88 M    14.05 (published 15.1) 2.46 s                  +464 MiB      8x112^2
msf_c3d, paper           68.93 M    28.36 (published 32.9) 2.31 s                  +637 MiB      16x112^2
r3d_50, teaching         2.96 M     0.46                   0.066 s (batch 8)       +24 MiB       32x48^2
st_manet reshape, teach. 3.61 M     0.38                   0.068 s                 +30 MiB       32x48^2
st_manet conv, teaching  8.32 M     0.63                   0.093 s                 +37 MiB       32x48^2
msf_r3d, teaching        1.38 M     0.26                   0.046 s                 +15 MiB       8x56^2
msf_r3d + FSAM, teach.   1.39 M     0.26                   0.046 s                 +17 MiB       8x56^2
msf_c3d, teaching        2.50 M     0.49                   0.050 s                 +27 MiB       16x56^2
=======================  =========  =====================  ======================  ============  ==========

(percentages: over the 3D ResNet-50 at the same clip; the paper says about +24 %, which no reading reproduces.
The teaching ST-MANet has one bottleneck per stage, the teaching r3d_50 the full 3-4-6-3 depths.)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from stia_kit.models import build_model

#: name -> (registry model, overrides, (T, paper size), (T, teaching size), published GFLOPs (= GMACs) or None)
MODELS: dict[str, tuple[str, dict, tuple[int, int], tuple[int, int], float | None]] = {
    "r3d_50": ("r3d_50", {}, (32, 112), (32, 48), 20.14),  # MSF-Net Table 5 prints 10.1 at 16 frames; x2 at 32
    "st_manet_reshape": ("st_manet", {"tda_proj": "reshape"}, (32, 112), (32, 48), None),
    "st_manet_conv": ("st_manet", {"tda_proj": "conv3x1x1"}, (32, 112), (32, 48), None),
    "msf_r3d": ("msf_r3d", {}, (8, 112), (8, 56), 15.1),
    "msf_r3d_fsam": ("msf_r3d", {"attention": "fsam"}, (8, 112), (8, 56), 15.1),
    "msf_c3d": ("msf_c3d", {}, (16, 112), (16, 56), 32.9),
}
SIZES = {"paper": 1, "teaching": 8}  # batch


def _logits_and_losses(out) -> torch.Tensor:
    if torch.is_tensor(out):
        return out.sum()
    return out["logits"].sum() + sum(v for k, v in out.items() if k.startswith("loss_"))


def run_one(name: str, size: str, repeats: int) -> dict:
    torch.manual_seed(0)
    model_name, over, paper_clip, teach_clip, published = MODELS[name]
    t, side = paper_clip if size == "paper" else teach_clip
    batch = SIZES[size]
    with torch.device("meta"):
        meta = build_model(model_name, 101, preset=size, **over).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            meta(torch.empty(1, 3, t, side, side))
    gmacs = counter.get_total_flops() / 2e9
    model = build_model(model_name, 101, preset=size, **over).train()
    x = torch.randn(batch, 3, t, side, side)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        _logits_and_losses(model(x)).backward()
        if i:
            times.append(time.perf_counter() - start)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": name, "size": size, "input": list(x.shape), "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "gmacs_per_clip": gmacs, "published_gflops": published if size == "paper" else None,
            "fwd_bwd_s": min(times), "per_clip_s": min(times) / batch, "peak_mem_MiB": (rss1 - rss0) / 1024,
            "peak_mem_per_clip_MiB": (rss1 - rss0) / 1024 / batch, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.repeats)))
        return
    rows = []
    for size in args.sizes:
        for name in args.models:
            out = subprocess.run([sys.executable, __file__, "--one", name, size, "--repeats", str(args.repeats)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(r)
            pub = f" (published {r['published_gflops']})" if r["published_gflops"] else ""
            print(f"{name:17s} {size:8s} {r['input']} params {r['params_M']:.2f} M | {r['gmacs_per_clip']:.2f} GMACs/clip{pub} | "
                  f"fwd+bwd {r['fwd_bwd_s']:.2f} s ({r['per_clip_s']:.3f} s per clip) | peak mem +{r['peak_mem_MiB']:.0f} MiB "
                  f"(+{r['peak_mem_per_clip_MiB']:.0f} MiB per clip)", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
