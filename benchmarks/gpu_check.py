"""CUDA readiness check: every registered model on one GPU, mixed precision, channels_last_3d, a short ``fit``.

Usage::

    python benchmarks/gpu_check.py                 # about 1-3 min on one GPU; exits 1 if any check fails
    python benchmarks/gpu_check.py --device cuda:1

On a machine without CUDA it prints that no CUDA device was found and exits 0. ``--device cpu`` runs every
check with the CPU standing in for the GPU (a dry run of the script itself: the comparisons are then CPU vs
CPU, autocast and GradScaler run on the CPU).

For every model of ``stia_kit.models.list_models()`` at ``preset="teaching"`` (input from its declared
``input_spec``, batch ``--batch``):

- ``fp32 |d|``: eval-mode logits on CPU and on CUDA from the same weights and input, TF32 off; the largest
  absolute difference relative to the largest CPU logit must be <= ``--tolerance``;
- ``bf16``: forward + backward + SGD step under ``torch.autocast(dtype=bfloat16)`` with model and input in
  ``channels_last_3d``: finite loss, every parameter that takes part gets a finite gradient, the conv
  weights are still ``channels_last_3d`` after the step; milliseconds per step (median of 3, after a warm-up);
- ``fp16+scaler``: the same under ``float16`` autocast with ``torch.amp.GradScaler``: finite loss, and
  how many of the 4 steps (1 warm-up + 3 timed) the scaler skipped for inf/nan gradients (the first ones
  may legitimately be skipped while the scale calibrates down from 65536; all skipped is a failure).

Then a 2-epoch :func:`stia_kit.train.fit` on CUDA (``amp="auto"``, ``channels_last=True``, 2 DataLoader
workers, pinned memory) of the teaching R3D-18 on a tiny SynthActions set generated in a temporary folder,
followed by :func:`stia_kit.train.evaluate`: both epochs complete with finite losses.

One table is printed at the end, one row per check.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Row = dict[str, Any]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="CUDA device (default: cuda; 'cpu' = dry run of the script)")
    ap.add_argument("--batch", type=int, default=4, help="clips per batch of the model checks")
    ap.add_argument("--size", type=int, default=112,
                    help="frame size of the model checks (raised to a model's minimum)")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="fp32 CPU-vs-CUDA max |d| / max |logit|")
    ap.add_argument("--models", default="", help="comma list of registered names (default: all)")
    ap.add_argument("--skip-fit", action="store_true", help="skip the 2-epoch fit")
    return ap.parse_args()


# ------------------------------------------------------------------------------------------- helpers
def channels_last(x: Any) -> Any:
    """5-D float tensors (also inside a dict) -> ``channels_last_3d``."""
    if isinstance(x, dict):
        return {k: channels_last(v) for k, v in x.items()}
    return x.contiguous(memory_format=torch.channels_last_3d) if x.ndim == 5 else x


def to(x: Any, device: torch.device | str) -> Any:
    return {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)


def logits_of(out: Any) -> Tensor:
    return out["logits"] if isinstance(out, dict) else out


def objective(out: Any, y: Tensor) -> Tensor:
    """Cross-entropy of ``logits`` (and of every head in ``stream_logits``) plus the ``loss_*`` terms."""
    loss = F.cross_entropy(logits_of(out).float(), y)
    if isinstance(out, dict):
        for head in (out.get("stream_logits") or {}).values():
            loss = loss + F.cross_entropy(head.float(), y)
        for key, value in out.items():
            if key.startswith("loss_"):
                loss = loss + value.float()
    return loss


def conv_weights_channels_last(model: nn.Module) -> bool:
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv3d)]
    return all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in convs)


def grads_ok(model: nn.Module) -> tuple[bool, str]:
    """(all participating gradients finite, "k/n params with a gradient")."""
    params = [p for p in model.parameters() if p.requires_grad]
    with_grad = [p for p in params if p.grad is not None]
    finite = all(torch.isfinite(p.grad).all().item() for p in with_grad)
    return finite and len(with_grad) > 0, f"{len(with_grad)}/{len(params)}"


def device_ms(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> float:
    """Median milliseconds of ``fn`` (synchronised on CUDA), after one warm-up call."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


# ------------------------------------------------------------------------------------------- checks
def check_fp32(name: str, model: nn.Module, x: Any, device: torch.device, tolerance: float) -> Row:
    model.eval()
    with torch.no_grad():
        cpu = logits_of(model(x)).float()
        gpu_model = copy.deepcopy(model).to(device)
        gpu = logits_of(gpu_model(to(x, device))).float().cpu()
    rel = (gpu - cpu).abs().max().item() / max(cpu.abs().max().item(), 1e-12)
    ok = bool(torch.isfinite(gpu).all()) and rel <= tolerance
    return {"model": name, "check": "fp32 cpu vs cuda", "ok": ok, "value": f"max|d|/max|logit| = {rel:.1e}",
            "ms": ""}


def check_amp(name: str, model: nn.Module, x: Any, y: Tensor, device: torch.device, dtype: torch.dtype) -> Row:
    model = copy.deepcopy(model).to(device).to(memory_format=torch.channels_last_3d).train()
    xg, yg = channels_last(to(x, device)), y.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    losses: list[float] = []
    skipped = 0

    def step() -> None:
        nonlocal skipped
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype):
            loss = objective(model(xg), yg)
        losses.append(loss.item())
        if scaler is None:
            loss.backward()
            opt.step()
            return
        scaler.scale(loss).backward()
        before = scaler.get_scale()
        scaler.step(opt)
        scaler.update()
        skipped += int(scaler.get_scale() < before)  # the scale drops exactly when the step was skipped

    ms = device_ms(step, device)
    finite_grads, counted = grads_ok(model) if scaler is None else (True, "")
    layout = conv_weights_channels_last(model)
    finite_loss = all(torch.isfinite(torch.tensor(losses)))
    label = "bf16 autocast" if scaler is None else "fp16 + GradScaler"
    ok = finite_loss and finite_grads and layout and (scaler is None or skipped < len(losses))
    value = f"loss {losses[-1]:.3f}, channels_last_3d kept={layout}"
    if scaler is None:
        value += f", grads {counted} finite={finite_grads}"
    else:
        value += f", skipped {skipped}/{len(losses)} steps"
    return {"model": name, "check": f"{label} fwd+bwd", "ok": ok, "value": value, "ms": f"{ms:.1f}"}


def check_fit(device: torch.device, workdir: Path) -> list[Row]:
    from stia_kit.data import DataConfig, build_dataset
    from stia_kit.models import build_model
    from stia_kit.synth import SynthConfig, generate_synth_actions
    from stia_kit.train import TrainConfig, evaluate, fit

    root = workdir / "synth"
    generate_synth_actions(root, SynthConfig(clips_per_class=8, num_frames=8, size=32), progress=False)
    data = DataConfig(num_frames=4, stride=2, short_side=32, crop_size=28)
    train = build_dataset("ucf101", root, train=True, config=data)
    test = build_dataset("ucf101", root, train=False, config=data)
    torch.manual_seed(0)
    model = build_model("r3d_18", len(train.classes), preset="teaching", width=8)
    cfg = TrainConfig(epochs=2, batch_size=8, optimizer="adamw", lr=1e-3, device=str(device), amp="auto",
                      channels_last=True, num_workers=2, out_dir=str(workdir / "run"))
    start = time.perf_counter()
    result = fit(model, train, test, cfg, progress=False)
    seconds = time.perf_counter() - start
    losses = [e["train"]["loss"] for e in result.history]
    on_device = next(model.parameters()).device.type == device.type
    ok = result.finished and len(losses) == 2 and all(torch.isfinite(torch.tensor(losses))) and on_device
    rows = [{"model": "r3d_18 (width 8)", "check": "fit 2 epochs (amp auto, channels_last, 2 workers)", "ok": ok,
             "value": f"train loss {losses[0]:.3f} -> {losses[-1]:.3f}, {len(train)} clips",
             "ms": f"{1e3 * seconds:.0f}"}]
    res = evaluate(model, test, batch_size=8, device=device, amp="auto", channels_last=True)
    rows.append({"model": "r3d_18 (width 8)", "check": f"evaluate on {device.type}", "ok": bool(0.0 <= res.top1 <= 1.0),
                 "value": f"top1 {res.top1:.3f} on {len(test)} clips (2 epochs: not meant to be good)", "ms": ""})
    return rows


def error_row(name: str, check: str, exc: BaseException) -> Row:
    traceback.print_exc()
    return {"model": name, "check": check, "ok": False, "value": f"{type(exc).__name__}: {str(exc)[:120]}", "ms": ""}


def print_table(rows: list[Row]) -> None:
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in ("model", "check", "ms")}
    print(f"\n{'model':<{widths['model']}}  {'check':<{widths['check']}}  {'ok':<4}  {'ms':>{widths['ms']}}  result")
    for r in rows:
        print(f"{r['model']:<{widths['model']}}  {r['check']:<{widths['check']}}  {'ok' if r['ok'] else 'FAIL':<4}  "
              f"{r['ms']:>{widths['ms']}}  {r['value']}")


def main() -> int:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device found (torch {torch.__version__}, torch.cuda.is_available() is False); "
              "nothing checked.")
        return 0
    from stia_kit.models import build_model, example_input, list_models

    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 comparison compares fp32, not TF32
    torch.backends.cudnn.allow_tf32 = False
    if device.type == "cuda":
        print(f"gpu_check: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"cuDNN {torch.backends.cudnn.version()}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    else:
        print(f"gpu_check: DRY RUN on {device} (no GPU involved; CPU vs CPU comparisons), torch {torch.__version__}")
    names = [n.strip() for n in args.models.split(",") if n.strip()] or list_models()
    rows: list[Row] = []
    start = time.perf_counter()
    for name in names:
        try:
            torch.manual_seed(0)
            model = build_model(name, 11, preset="teaching")
            x = example_input(model.input_spec, batch=args.batch, size=args.size)
            y = torch.randint(0, 11, (args.batch,))
        except Exception as exc:  # noqa: BLE001 - a check reports and goes on
            rows.append(error_row(name, "build", exc))
            continue
        for check, run in (("fp32 cpu vs cuda", lambda: check_fp32(name, model, x, device, args.tolerance)),
                           ("bf16 autocast fwd+bwd", lambda: check_amp(name, model, x, y, device, torch.bfloat16)),
                           ("fp16 + GradScaler fwd+bwd", lambda: check_amp(name, model, x, y, device, torch.float16))):
            try:
                rows.append(run())
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row(name, check, exc))
        print(f"  {name}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    if not args.skip_fit:
        with tempfile.TemporaryDirectory(prefix="stia_gpu_check_") as tmp:
            try:
                rows += check_fit(device, Path(tmp))
            except Exception as exc:  # noqa: BLE001
                rows.append(error_row("r3d_18 (width 8)", "fit 2 epochs", exc))
    print_table(rows)
    failed = [r for r in rows if not r["ok"]]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
