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

Measured after the Q/K/V projections became Linear layers (commit "Axial attention: Q/K/V as Linear"),
2-core CPU with one other training job running (load ~3.5), torch 2.13, 2 threads, min of runs:

=================  ========  ============  ============  =========  ==============================
model, input       params    fwd+bwd wall  fwd+bwd CPU   peak mem   GFLOPs (sparse/dense/laterals)
=================  ========  ============  ============  =========  ==============================
SlowFast, paper    34.48 M   5.20 s        6.53 s        +1134 MiB  55.28 (43.92 / 10.57 / 0.79)
STIN, paper        34.80 M   7.93 s        8.64 s        +1282 MiB  55.35 (42.90 / 10.57 / 1.89)
SlowFast, teach.   1.09 M    0.06 s        0.11 s        +50 MiB    0.58 (0.28 / 0.27 / 0.04)
STIN, teaching     1.18 M    0.26 s        0.35 s        +52 MiB    0.59 (0.25 / 0.27 / 0.07)
=================  ========  ============  ============  =========  ==============================

(paper = 1 x 3 x 64 x 224^2; teaching = 4 x 3 x 32 x 48^2.) CDAI adds 0.13 % FLOPs and 0.9 % parameters
but +32 % CPU time at the paper's size (it was +58 % with 1x1x1 Conv3d Q/K/V, whose CPU backward is a
per-slice loop: 34k ``copy_`` calls per step, now 17k) and ~3x at the teaching size, where the step is
dominated by per-op overhead of many small ops (axial attention on thousands of short sequences, permutes
to and from the sequence layout, the temporal max-pool of the dense maps). The remaining paper-size
overhead in torch.profiler: ``slow_conv3d`` (0.87 s, 63 calls: 1x1x1 convs are not sent to oneDNN) and
``bmm``/``copy_`` of the attention.
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
