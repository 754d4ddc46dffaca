"""Benchmark SlowFast-R50 and STIN (CDAI) on this machine: forward+backward time, peak memory, FLOPs.

Usage::

    python benchmarks/models.py                 # paper input (64 x 224^2, batch 1) and teaching size
    python benchmarks/models.py --sizes teaching

Every (model, size) runs in a fresh subprocess so the memory numbers do not mix.

- time: seconds of one ``forward + backward`` (``loss = logits.sum()``) after one warm-up iteration, the
  minimum over ``--repeats`` runs, with ``torch.get_num_threads()`` threads; reported as wall-clock time
  *and* as process CPU time (``time.process_time``, summed over threads). On a machine shared with other
  jobs the wall time swings by 2x between runs; the CPU time is the more stable measure of work.
- peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the timed iterations minus its value
  after building the model and the input (so it is the high-water mark of activations, gradients and
  allocator caches of one training step; weights and input are excluded). ``tracemalloc`` cannot see
  torch's C++ allocations, and this does not need the profiler's overhead. Resolution: whole process,
  so it is an upper bound if anything else in the process allocates.
- FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` over one forward (it counts matmul/conv/SDPA
  FLOPs as 2 x multiply-accumulates; papers usually quote MACs = FLOPs / 2), split by top-level
  submodule: the two pathways, the lateral connections (SlowFast fuse convs / CDAI) and the head.

With ``--profile N`` each model also runs one profiled step (torch.profiler) and the N aten ops with the
largest STIN - SlowFast self-CPU-time difference are printed: where the CDAI overhead goes.

Measured 2026-11-22 on the 2-core CPU with nothing else running (load < 1), torch 2.13, 2 threads,
``python benchmarks/models.py --profile 12``, min of 2 runs after a warm-up:

=================  ========  ============  ============  =========  ==============================
model, input       params    fwd+bwd wall  fwd+bwd CPU   peak mem   GFLOPs (sparse/dense/laterals)
=================  ========  ============  ============  =========  ==============================
SlowFast, paper    34.48 M   2.73 s        5.44 s        +1058 MiB  55.28 (43.92 / 10.57 / 0.79)
STIN, paper        34.80 M   3.03 s        5.95 s        +1104 MiB  55.35 (42.90 / 10.57 / 1.89)
SlowFast, teach.   1.09 M    0.13 s        0.26 s        +77 MiB    1.17 (0.56 / 0.53 / 0.07)
STIN, teaching     1.18 M    0.20 s        0.39 s        +88 MiB    1.19 (0.51 / 0.53 / 0.14)
=================  ========  ============  ============  =========  ==============================

(paper = 1 x 3 x 64 x 224^2; teaching = 8 x 3 x 32 x 48^2, the notebook-01 batch.) At the paper's size
CDAI costs +0.13 % FLOPs, +0.9 % parameters, +4 % peak memory and +11 % wall / +9 % CPU time. FLOPs hide
part of it twice over: CDAI's dense->sparse max-pool adds ``beta C`` channels to the sparse stages where
SlowFast's fuse conv adds ``2 beta C`` (the sparse pathway does 1.0 GFLOPs less), while the attention's
cost is memory traffic that FLOP counts barely see -- in the profile the extra time is ``bmm``/``mm``
and ``softmax`` over thousands of short axial sequences, the ``select``/``clone``/``as_strided`` of the
permutes to and from the sequence layout, and the temporal max-pool of the dense maps. At the teaching
size (48^2) the step is dominated by per-op overhead and CDAI costs +54 % wall time.
History: with 1x1x1 Conv3d Q/K/V (whose CPU backward loops over slices) STIN was +58 % at the paper size
on a loaded machine; as Linear layers on the channel-last sequences, +32 % on the same loaded machine;
the quiet-machine numbers above are the ones to quote.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from stia_kit.experiments.dual_pathway import PRESETS, flops_by_part
from stia_kit.models.slowfast import SlowFast, SlowFastConfig
from stia_kit.models.stin import STIN, STINConfig

# teaching size = the model of the notebook-01 teaching config (stia_kit.experiments.dual_pathway)
_T = PRESETS["teaching"]
TEACHING = dict(width=_T.width, beta_inv=_T.beta_inv, tau=_T.tau, alpha=_T.alpha, num_frames=_T.num_frames,
                depths=_T.model_config().depths)
SIZES = {
    "paper": dict(input=(1, 3, 64, 224, 224), overrides={}),
    "teaching": dict(input=(_T.batch_size, 3, _T.num_frames, _T.crop_size, _T.crop_size), overrides=TEACHING),
}
MODELS = ("slowfast_r50", "stin")


def build(model: str, size: str) -> torch.nn.Module:
    ov = SIZES[size]["overrides"]
    if model == "slowfast_r50":
        cfg = SlowFastConfig.paper() if size == "paper" else SlowFastConfig(**ov)
        return SlowFast(cfg, 400)
    cfg = STINConfig.paper() if size == "paper" else STINConfig(**ov)
    return STIN(cfg, 400)


def op_profile(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Self CPU seconds per aten op over one forward+backward (torch.profiler), for ``--profile``."""
    from torch.profiler import ProfilerActivity, profile

    model.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(x).sum().backward()
    return {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages() if e.self_cpu_time_total > 0}


def run_one(model_name: str, size: str, repeats: int, profile_ops: bool = False) -> dict:
    torch.manual_seed(0)
    model = build(model_name, size).train()
    x = torch.randn(*SIZES[size]["input"])
    flops = flops_by_part(model, x)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu = [], []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        t, c = time.perf_counter(), time.process_time()
        model(x).sum().backward()
        if i:  # the first iteration is a warm-up
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ops = op_profile(model, x) if profile_ops else {}
    return {
        "model": model_name, "size": size, "input": list(x.shape), "threads": torch.get_num_threads(),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "fwd_bwd_s": min(times), "fwd_bwd_all_s": times, "fwd_bwd_cpu_s": min(cpu), "fwd_bwd_all_cpu_s": cpu,
        "peak_mem_MiB": (rss1 - rss0) / 1024, "gflops": {k: v / 1e9 for k, v in flops.items()},
        "op_self_cpu_s": ops,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also profile one step per model and print the N ops with the largest STIN - SlowFast "
                         "self-CPU-time difference (where the CDAI overhead goes)")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.repeats, args.profile > 0)))
        return
    rows = []
    for size in args.sizes:
        for model in args.models:
            out = subprocess.run([sys.executable, __file__, "--one", model, size, "--repeats", str(args.repeats),
                                  "--profile", str(args.profile)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in r["gflops"].items() if k != "total")
            print(f"{r['model']:13s} {size:8s} input {r['input']} params {r['params_M']:.2f} M | fwd+bwd "
                  f"{r['fwd_bwd_s']:.2f} s wall (runs {', '.join(f'{t:.2f}' for t in r['fwd_bwd_all_s'])}), "
                  f"{r['fwd_bwd_cpu_s']:.2f} s CPU (runs {', '.join(f'{t:.2f}' for t in r['fwd_bwd_all_cpu_s'])}) | peak mem "
                  f"+{r['peak_mem_MiB']:.0f} MiB | GFLOPs {r['gflops']['total']:.2f} ({parts})", flush=True)
        if args.profile and {"slowfast_r50", "stin"} <= {r["model"] for r in rows if r["size"] == size}:
            sf, st = (next(r["op_self_cpu_s"] for r in rows if r["size"] == size and r["model"] == m)
                      for m in ("slowfast_r50", "stin"))
            diff = sorted(((st.get(k, 0.0) - sf.get(k, 0.0), k) for k in set(sf) | set(st)), reverse=True)
            total = sum(st.values()) - sum(sf.values())
            print(f"  profiled self CPU time, STIN - SlowFast at {size}: {total:+.3f} s; largest differences:")
            for d, k in diff[:args.profile]:
                print(f"    {k:40s} {d:+.3f} s  (SlowFast {sf.get(k, 0.0):.3f} s, STIN {st.get(k, 0.0):.3f} s)")
    for r in rows:
        r.pop("op_self_cpu_s")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
