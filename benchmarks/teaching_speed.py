"""Teaching-run speed: where an epoch's time goes (data / train step / eval), the step's GFLOP/s, and how that
compares with a single Conv3d of the model's own shapes measured in the same run.

Usage::

    python benchmarks/teaching_speed.py                                  # both experiments, 2 epochs each
    python benchmarks/teaching_speed.py --experiment quickstart --epochs 3 --threads 2
    python benchmarks/teaching_speed.py --variants                       # step-time variants, min of --repeats
    python benchmarks/teaching_speed.py --no-cache                       # decode every epoch (frame cache off)
    python benchmarks/teaching_speed.py --cache-resized                  # also cache the resized float frames

Epoch table (one row per model and epoch): ``data`` = seconds the training loop waited for batches (decode +
transforms; epoch 0 fills the frame cache, later epochs read it), ``step`` = forward + backward + optimiser
step, ``eval data`` / ``eval`` = the same for one pass over the test split (forward under inference mode),
``GFLOP/s`` = FLOPs of a training step (``torch.utils.flop_counter``: forward + backward) / mean step time,
``conv peak`` = the fastest forward GFLOP/s of a lone ``nn.Conv3d`` with one of the model's own conv shapes
(batch, channels, kernel, stride, input size, memory format) timed in the same run, ``ratio`` = GFLOP/s /
conv peak (how far the whole step is from the best single conv), ``hits`` = frame-cache hit rate so far.

``--variants`` times one training step and one eval forward (under ``no_grad`` and under ``inference_mode``)
on a random batch of the experiment's clip shape, min of ``--repeats`` runs, variants interleaved so that
load from other processes hits all of them alike: contiguous vs ``channels_last_3d`` memory format, for each
thread count of ``--variant-threads``. ``xN`` = speed-up over the first thread count, contiguous. The OpenMP
wait policy cannot change inside a process: compare ``OMP_WAIT_POLICY=PASSIVE python ...`` with a plain run.

The configurations come from the library (:func:`experiment` below, the only place that knows them): the
experiment parameter classes' defaults (``QuickstartParams``, ``DualPathwayParams``), their data / SynthActions
/ training configs and their models. SynthActions is generated under ``--data-root`` on first use.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.flop_counter import FlopCounterMode

from stia_kit.data import DataConfig, VideoDataset, build_dataset, default_cache
from stia_kit.synth import SynthConfig, generate_synth_actions

EXPERIMENTS = ("quickstart", "dual_pathway")


# --------------------------------------------------------------------------------- the configurations
@dataclass
class Setup:
    """What one experiment trains, as the library defines it."""

    name: str  # experiment name
    data: DataConfig  # clip sampling / transforms (train and test)
    synth: SynthConfig  # the SynthActions set it generates
    layout: str  # loader of the generated set ("ucf101")
    models: dict[str, Callable[[int], nn.Module]]  # label -> builder(num_classes)
    batch_size: int  # clips per batch
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]  # the experiment's optimiser for a model
    channels_last: bool  # the experiment's memory-format default
    extra_models: dict[str, Callable[[int], nn.Module]] = dataclasses.field(default_factory=dict)  # --variants only


def experiment(name: str) -> Setup:
    """The default configuration of experiment ``name``, built from ``stia_kit.experiments``.

    The one function to point at the experiments API when it changes.
    """
    from stia_kit.experiments import common
    from stia_kit.models import build_model
    from stia_kit.models.stin import table3_configs
    from stia_kit.train.optim import build_optimizer

    extra: dict[str, Callable[[int], nn.Module]] = {}  # models of the same family the notebook does not train
    if name == "quickstart":
        from stia_kit.experiments.quickstart import QuickstartParams, model_kwargs

        p: Any = QuickstartParams().resolved()
        models = {m: (lambda n, m=m: build_model(m, n, preset=p.preset, **model_kwargs(m, p.width)))
                  for m in p.model_names()}
    elif name == "dual_pathway":
        from stia_kit.experiments.dual_pathway import DualPathwayParams, stin_kwargs

        p = DualPathwayParams().resolved()
        configs = table3_configs(p.model_config())
        models = {f"stin[{row}]": (lambda n, row=row: build_model("stin", n, preset=p.preset,
                                                                  **stin_kwargs(configs[row])))
                  for row in p.row_names()}
        extra = {"slowfast_r50": lambda n: build_model("slowfast_r50", n, preset=p.preset,
                                                       num_frames=p.num_frames)}
    else:
        raise ValueError(f"unknown experiment {name!r}; expected one of {EXPERIMENTS}")
    train_cfg = common.train_config(p, "/tmp/unused")
    return Setup(name=name, data=common.data_config(p), synth=common.synth_config(p),
                 layout=common.dataset_layout(p.dataset), models=models, batch_size=train_cfg.batch_size,
                 optimizer=lambda model: build_optimizer(model, train_cfg), channels_last=train_cfg.channels_last,
                 extra_models=extra)


# ------------------------------------------------------------------------------------------- helpers
def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", choices=[*EXPERIMENTS, "all"], default="all")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per model (epoch 0 fills the frame cache)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--models", default="", help="comma list of model labels to keep (default: all)")
    ap.add_argument("--data-root", type=Path, default=Path("data/benchmark"), help="SynthActions go under here")
    ap.add_argument("--no-cache", action="store_true", help="DataConfig(frame_cache=False): decode every epoch")
    ap.add_argument("--cache-resized", action="store_true",
                    help="DataConfig(cache_resized=True): also cache the frames after the fixed resize")
    ap.add_argument("--channels-last", choices=["default", "on", "off"], default="default",
                    help="memory format of the epoch runs (default: the experiment's TrainConfig)")
    ap.add_argument("--variants", action="store_true", help="time step variants instead of epochs")
    ap.add_argument("--repeats", type=int, default=5, help="--variants: timed runs per variant (min reported)")
    ap.add_argument("--variant-threads", type=int, nargs="+", default=[torch.get_num_threads()],
                    help="--variants: thread counts to compare (default: torch's)")
    return ap.parse_args()


def to_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last and x.ndim == 5 else x.contiguous()


def logits_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus any ``loss_*`` terms (the training loop's objective)."""
    out = model(x)
    if isinstance(out, dict):
        return F.cross_entropy(out["logits"], y) + sum(v for k, v in out.items() if k.startswith("loss_"))
    return F.cross_entropy(out, y)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = logits_and_loss(model, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs of forward + backward of one batch (no optimiser step, weights unchanged)."""
    with FlopCounterMode(display=False) as counter:
        logits_and_loss(model, x, y).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def conv_peak(model: nn.Module, x: torch.Tensor, channels_last: bool, repeats: int = 3) -> float:
    """Fastest forward GFLOP/s of a lone Conv3d over the model's distinct Conv3d shapes (same run, same format)."""
    shapes: dict[tuple[Any, ...], tuple[nn.Conv3d, torch.Size]] = {}

    def record(mod: nn.Conv3d, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        key = (mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, mod.groups,
               tuple(inp[0].shape))
        shapes.setdefault(key, (mod, inp[0].shape))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Conv3d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    best = 0.0
    for conv, shape in shapes.values():
        lone = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         groups=conv.groups, bias=conv.bias is not None)
        lone = lone.to(memory_format=torch.channels_last_3d) if channels_last else lone
        inp = to_format(torch.randn(shape), channels_last)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            lone(inp)
        flops = counter.get_total_flops()
        with torch.no_grad():
            lone(inp)  # warm-up
            seconds = min(_timed(lambda: lone(inp)) for _ in range(repeats))
        best = max(best, flops / seconds / 1e9)
    return best


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@contextmanager
def stopwatch(acc: list[float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    acc.append(time.perf_counter() - start)


def datasets(setup: Setup, root: Path, cache: bool, cache_resized: bool) -> tuple[VideoDataset, VideoDataset]:
    generate_synth_actions(root, setup.synth, progress=False)
    cfg = dataclasses.replace(setup.data, frame_cache=cache, cache_resized=cache_resized or setup.data.cache_resized)
    return (build_dataset(setup.layout, root, train=True, config=cfg),
            build_dataset(setup.layout, root, train=False, config=cfg))


# -------------------------------------------------------------------------------------------- epochs
def run_epochs(setup: Setup, label: str, train: VideoDataset, test: VideoDataset, epochs: int,
               channels_last: bool) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = setup.models[label](len(train.classes))
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    opt = setup.optimizer(model)
    probe = next(iter(DataLoader(train, batch_size=setup.batch_size)))
    x0, y0 = to_format(probe["video"], channels_last), probe["label"]
    flops = step_flops(model.train(), x0, y0)
    peak = conv_peak(model.eval(), x0, channels_last)
    rows = []
    for epoch in range(epochs):
        train.set_epoch(epoch)
        sampler = RandomSampler(train, generator=torch.Generator().manual_seed(epoch))
        loader = DataLoader(train, batch_size=setup.batch_size, sampler=sampler, drop_last=False)
        data_s: list[float] = []
        step_s: list[float] = []
        model.train()
        it = iter(loader)
        while True:
            with stopwatch(data_s):
                batch = next(it, None)
            if batch is None:
                break
            x, y = to_format(batch["video"], channels_last), batch["label"]
            with stopwatch(step_s):
                train_step(model, opt, x, y)
        eval_data: list[float] = []
        eval_s: list[float] = []
        model.eval()
        it = iter(DataLoader(test, batch_size=setup.batch_size))
        with torch.inference_mode():
            while True:
                with stopwatch(eval_data):
                    batch = next(it, None)
                if batch is None:
                    break
                with stopwatch(eval_s):
                    model(to_format(batch["video"], channels_last))
        gflops = flops / statistics.mean(step_s) / 1e9
        rows.append({"experiment": setup.name, "model": label, "epoch": epoch, "data": sum(data_s),
                     "step": sum(step_s), "eval_data": sum(eval_data), "eval": sum(eval_s),
                     "total": sum(data_s) + sum(step_s) + sum(eval_data) + sum(eval_s),
                     "gflops": gflops, "peak": peak, "ratio": gflops / peak if peak else float("nan"),
                     "hits": default_cache().stats().hit_rate, "steps": len(step_s)})
        print_row(rows[-1])
    return rows


HEADER = (f"{'experiment':<13} {'model':<22} {'ep':>2} {'steps':>5} {'data s':>7} {'step s':>7} {'eval data':>9} "
          f"{'eval s':>7} {'epoch s':>8} {'GFLOP/s':>8} {'conv peak':>9} {'ratio':>6} {'hits':>5}")


def print_row(r: dict[str, Any]) -> None:
    print(f"{r['experiment']:<13} {r['model']:<22} {r['epoch']:>2} {r['steps']:>5} {r['data']:>7.1f} {r['step']:>7.1f} "
          f"{r['eval_data']:>9.1f} {r['eval']:>7.1f} {r['total']:>8.1f} {r['gflops']:>8.1f} {r['peak']:>9.1f} "
          f"{r['ratio']:>6.2f} {r['hits']:>5.2f}", flush=True)


# ------------------------------------------------------------------------------------------ variants
def run_variants(setup: Setup, label: str, num_classes: int, repeats: int, threads: list[int]) -> None:
    """Min-of-``repeats`` train-step and eval-forward times for memory format x thread count, interleaved."""
    cfg = setup.data
    x = torch.randn(setup.batch_size, 3, cfg.num_frames, cfg.crop_size, cfg.crop_size)
    y = torch.randint(0, num_classes, (setup.batch_size,))
    models: dict[str, tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]] = {}
    for fmt in ("contiguous", "channels_last_3d"):
        torch.manual_seed(0)
        model = setup.models[label](num_classes)
        cl = fmt == "channels_last_3d"
        model = model.to(memory_format=torch.channels_last_3d) if cl else model
        models[fmt] = (model, setup.optimizer(model), to_format(x, cl))
    flops = step_flops(models["contiguous"][0].train(), x, y)
    times: dict[tuple[str, int, str], list[float]] = {}
    for rep in range(repeats + 1):  # rep 0 = warm-up
        for n in threads:
            torch.set_num_threads(n)
            for fmt, (model, opt, xf) in models.items():
                model.train()
                t_step = _timed(lambda: train_step(model, opt, xf, y))
                model.eval()
                with torch.no_grad():
                    t_ng = _timed(lambda: model(xf))
                with torch.inference_mode():
                    t_im = _timed(lambda: model(xf))
                if rep:
                    for what, t in (("train step", t_step), ("eval no_grad", t_ng), ("eval inference_mode", t_im)):
                        times.setdefault((what, n, fmt), []).append(t)
    for what in ("train step", "eval no_grad", "eval inference_mode"):
        base = min(times[(what, threads[0], "contiguous")])
        for n in threads:
            for fmt in models:
                values = times[(what, n, fmt)]
                best = min(values)
                rate = f"{flops / best / 1e9:6.1f} GFLOP/s" if what == "train step" else " " * 14
                print(f"{setup.name:<13} {label:<22} {what:<20} {n:>2} thr {fmt:<17} min {1e3 * best:7.1f} ms  "
                      f"median {1e3 * float(np.median(values)):7.1f} ms  {rate}  x{base / best:4.2f}", flush=True)


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    keep = {m.strip() for m in args.models.split(",") if m.strip()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, frame cache "
          f"{'off' if args.no_cache else f'{default_cache().max_bytes / 2**20:.0f} MiB'}")
    all_rows: list[dict[str, Any]] = []
    for name in names:
        setup = experiment(name)
        labels = [m for m in setup.models if not keep or m in keep]
        if args.variants:
            setup.models.update(setup.extra_models)
            for label in labels + [m for m in setup.extra_models if not keep or m in keep]:
                run_variants(setup, label, len(setup.synth.classes), args.repeats, args.variant_threads)
            continue
        train, test = datasets(setup, args.data_root / name, cache=not args.no_cache, cache_resized=args.cache_resized)
        cl = setup.channels_last if args.channels_last == "default" else args.channels_last == "on"
        print(f"\n{name}: {len(train)} train / {len(test)} test clips, clip {tuple(train[0]['video'].shape)}, "
              f"batch {setup.batch_size}, channels_last_3d={cl}")
        print(HEADER)
        for label in labels:
            all_rows += run_epochs(setup, label, train, test, args.epochs, cl)
    if all_rows:
        print("\nsummary (all rows)")
        print(HEADER)
        for r in all_rows:
            print_row(r)
        s = default_cache().stats()
        print(f"frame cache: {s.items} videos, {s.bytes / 2**20:.0f} MiB, hits {s.hits}, misses {s.misses}, "
              f"bypassed {s.bypassed}")


if __name__ == "__main__":
    main()
