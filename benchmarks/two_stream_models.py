"""Benchmark the two-stream models (STILT, T-STAM, TSN): forward+backward time and peak memory per sample.

Usage::

    python benchmarks/two_stream_models.py                       # paper and teaching sizes, every model
    python benchmarks/two_stream_models.py --sizes teaching --models stilt tstam_rgb

Sizes (each model built by name through the registry, ``preset`` = the size):

- ``paper``: batch 1 at 224^2. STILT: ResNet-50 streams, 3 segments (TSN convention), RGB ``[1, 3, 3, 224, 224]``
  + flow ``[1, 20, 3, 224, 224]`` (L = 10). T-STAM: SE-BN-Inception, 6 segments, ``[1, 3, 6, 224, 224]`` (RGB)
  or ``[1, 10, 6, 224, 224]`` (flow, L = 5). TSN: BN-Inception, 3 segments.
- ``teaching``: the notebook batches (8 samples) at the teaching presets: STILT 56^2, 3 segments, L = 5;
  T-STAM / TSN 64^2 (BN-Inception's valid sizes), 3 segments, L = 5.

Every (model, size) runs in a fresh subprocess so the memory numbers do not mix. Time: the minimum over
``--repeats`` of one ``forward + backward`` (``loss = sum of every head's logits``) after a warm-up, wall
and process-CPU seconds, divided by the batch for the per-sample figure. Peak memory: the growth of
``ru_maxrss`` over the timed steps (activations, gradients, allocator caches; weights and input excluded),
per batch and per sample. Run it on a quiet machine.

Measured 2026-12-02 on the 2-core CPU with nothing else running, torch 2.13, 2 threads, min of 2 runs after a
warm-up (``python benchmarks/two_stream_models.py``):

==================  =======  ====================  =================  ============  ===============
model, size         params   input                 fwd+bwd / sample   CPU / batch   peak mem / sample
==================  =======  ====================  =================  ============  ===============
STILT, paper        51.74 M  RGB 3x3 + flow 20x3   2.25 s             4.45 s        +730 MiB
T-STAM RGB, paper   13.44 M  3 x 6 segments        1.20 s             2.39 s        +453 MiB
T-STAM flow, paper  13.46 M  10 x 6 segments       1.40 s             2.75 s        +460 MiB
TSN RGB, paper      10.37 M  3 x 3 segments        0.60 s             1.20 s        +239 MiB
STILT, teaching     3.30 M   8 x (3 + 10) x 3 x 56  0.030 s            0.48 s        +16 MiB
T-STAM RGB, teach.  1.00 M   8 x 3 x 3 x 64^2      0.021 s            0.34 s        +9 MiB
T-STAM flow, teach. 1.01 M   8 x 10 x 3 x 64^2     0.017 s            0.27 s        +10 MiB
TSN RGB, teaching   0.68 M   8 x 3 x 3 x 64^2      0.012 s            0.19 s        +8 MiB
==================  =======  ====================  =================  ============  ===============

(paper: batch 1 at 224^2, 101 classes; teaching: the notebooks' batch of 8.) STILT at the paper size is two
ResNet-50 streams over 3 segments, about 6 ResNet-50 training passes per sample; T-STAM's 6 segments of
SE-BN-Inception cost about twice TSN's 3.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from stia_kit.models import build_model

#: name -> (registry model, overrides, {key: (C, N) at paper size}, {key: (C, N) at teaching size})
MODELS: dict[str, tuple[str, dict, dict[str, tuple[int, int]], dict[str, tuple[int, int]]]] = {
    "stilt": ("stilt", {}, {"rgb": (3, 3), "flow": (20, 3)}, {"rgb": (3, 3), "flow": (10, 3)}),
    "tstam_rgb": ("tstam", {"modality": "rgb"}, {"rgb": (3, 6)}, {"rgb": (3, 3)}),
    "tstam_flow": ("tstam", {"modality": "flow"}, {"flow": (10, 6)}, {"flow": (10, 3)}),
    "tsn_rgb": ("tsn_bninception", {"modality": "rgb"}, {"rgb": (3, 3)}, {"rgb": (3, 3)}),
}
SIZES = {"paper": dict(batch=1, size={"stilt": 224}, default=224),
         "teaching": dict(batch=8, size={"stilt": 56}, default=64)}


def run_one(name: str, size: str, repeats: int) -> dict:
    torch.manual_seed(0)
    model_name, over, paper_in, teach_in = MODELS[name]
    cfg = SIZES[size]
    batch, side = cfg["batch"], cfg["size"].get(name, cfg["default"])
    model = build_model(model_name, 101, preset=size, **over).train()
    shapes = paper_in if size == "paper" else teach_in
    x = {k: torch.randn(batch, c, n, side, side) for k, (c, n) in shapes.items()}

    def step() -> None:
        out = model(x)
        heads = [out] if torch.is_tensor(out) else [out["logits"], *out.get("stream_logits", {}).values()]
        sum(h.sum() for h in heads).backward()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu = [], []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t, c = time.perf_counter(), time.process_time()
        step()
        if i:  # the first iteration is a warm-up
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": name, "size": size, "inputs": {k: list(v.shape) for k, v in x.items()}, "batch": batch,
            "threads": torch.get_num_threads(), "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "fwd_bwd_s": min(times), "fwd_bwd_all_s": times, "fwd_bwd_cpu_s": min(cpu),
            "per_sample_s": min(times) / batch, "peak_mem_MiB": (rss1 - rss0) / 1024,
            "peak_mem_per_sample_MiB": (rss1 - rss0) / 1024 / batch}


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
            print(f"{name:10s} {size:8s} {r['inputs']} params {r['params_M']:.2f} M | fwd+bwd {r['fwd_bwd_s']:.2f} s "
                  f"wall / batch of {r['batch']} ({r['per_sample_s']:.3f} s per sample; CPU {r['fwd_bwd_cpu_s']:.2f} s) | "
                  f"peak mem +{r['peak_mem_MiB']:.0f} MiB (+{r['peak_mem_per_sample_MiB']:.0f} MiB per sample)",
                  flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
