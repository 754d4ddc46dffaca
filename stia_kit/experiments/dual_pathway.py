"""The dual-pathway / CDAI experiment (notebook 01): STIN's Table-3 ablation and its teaching helpers.

Named configs (:data:`PRESETS`, chosen by ``DualPathwayParams.preset``):

- ``"paper"``: the paper's model and training recipe -- Table 1 sizes (width 64, beta 1/8, alpha 8,
  tau 16, ResNet-50 pathways, 64 x 224^2 clips), SGD lr 0.01 with cosine annealing, momentum 0.9,
  weight decay 6e-4, dropout 0.5, 150 epochs, batch 8. Days on a CPU; for a GPU and a real dataset root.
- ``"teaching"`` (the dataclass defaults): the same code with smaller widths and depths (width 16,
  beta 1/4, alpha 4, tau 8, one block per stage, 32 x 48^2 clips) trained on SynthActions (48 clips per
  class) with the quickstart's measured recipe: AdamW lr 1e-3, batch 8, 25 epochs, cosine. It uses AdamW
  rather than the paper's SGD because these networks start from scratch here; the optimiser is a
  parameter, so the paper's can be chosen too. Measured on SynthActions: 12 clips/class or AdamW lr 3e-3
  left every row at chance (9-11 %); 48 clips/class at lr 1e-3 learned (both + CDAI: 40 % after 12 epochs).

:func:`run_ablation` builds the four Table-3 rows from one constructor (:func:`stia_kit.models.stin.table3_configs`),
trains each with :func:`stia_kit.train.fit` and returns a table with the measured top-1, seed and run time
next to the paper's numbers, which are labelled as such: nothing here reproduces them (no real data, no
Kinetics pretraining, minutes instead of 150 epochs).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..data import DataConfig, VideoDataset, build_dataset
from ..models import build_model
from ..models.attention import eca_kernel_size
from ..models.stin import TABLE3_ROWS, DenseTemporalReduction, STINConfig, table3_configs
from ..models.slowfast import FuseFastToSlow
from ..synth import SynthConfig, generate_synth_actions
from ..train import TrainConfig, evaluate, fit

DatasetName = Literal["synth", "ucf101", "hmdb51", "arid"]

#: Paper, Table 3 (top-1 %, UCF101 / HMDB51), quoted for comparison only.
PAPER_TABLE3: dict[str, tuple[float, float]] = {
    "dense only": (78.5, 51.7), "sparse only": (90.3, 72.6), "both": (95.8, 77.0), "both + CDAI": (97.6, 78.4),
}


@dataclass(frozen=True)
class DualPathwayParams:
    """Flat parameters of notebook 01 (papermill). Defaults = the teaching config."""

    preset: Literal["teaching", "paper"] = "teaching"  # "paper": the paper's sizes and recipe override the fields below
    dataset: DatasetName = "synth"  # synth = SynthActions generated under data_root (UCF101 layout)
    data_root: str = "data/synth01"  # dataset root (official layout) or where SynthActions is generated
    split: int = 1  # official split 1..3
    missing: Literal["raise", "skip"] = "raise"  # files listed in the split but not on disk
    on_error: Literal["raise", "skip"] = "skip"  # unreadable videos: fail, or substitute and report
    rows: str = "all"  # Table-3 rows to train: "all" or comma-separated names ("both,both + CDAI")
    width: int = 16  # sparse-pathway stem channels (paper: 64)
    beta_inv: int = 4  # dense pathway has width / beta_inv channels (paper: 8)
    alpha: int = 4  # dense / sparse frame-rate ratio (paper: 8)
    tau: int = 8  # sparse-pathway temporal stride on the clip (paper: 16)
    depths: str = "1,1,1,1"  # bottleneck blocks per stage (paper: "3,4,6,3")
    temporal_reduction: Literal["max_pool", "time_to_channel", "interval_sampling", "interval_conv"] = "max_pool"  # CDAI dense->sparse
    fusion: Literal["add", "concat"] = "add"  # CDAI sparse->dense fusion
    directions: Literal["both", "dense_to_sparse", "sparse_to_dense"] = "both"  # CDAI directions
    num_frames: int = 32  # clip length T fed to the model (paper: 64); multiple of tau
    stride: int = 1  # step between the clip's frames in the video (the model does the pathway sampling)
    short_side: int = 56  # resize the short side to this (paper: 256)
    crop_size: int = 48  # square crop fed to the model (paper: 224)
    synth_clips_per_class: int = 48  # SynthActions: clips per class (12 was too few to learn from)
    synth_clips_per_group: int = 4  # SynthActions: clips per group (>= 2 groups per class)
    synth_frames: int = 32  # SynthActions: frames per video
    synth_size: int = 64  # SynthActions: frame size
    synth_seed: int = 0  # SynthActions: generation seed
    epochs: int = 25  # training epochs per row (paper: 150)
    batch_size: int = 8  # clips per batch (paper: 8)
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"  # optimiser (paper: sgd)
    lr: float = 0.001  # peak learning rate, cosine annealing (paper: 0.01; AdamW 3e-3 stayed at chance here)
    momentum: float = 0.9  # SGD momentum / Adam beta1 (paper: 0.9)
    weight_decay: float = 0.0006  # weight decay (paper: 6e-4)
    dropout: float = 0.5  # dropout before the classifier (paper: 0.5)
    num_workers: int = 0  # DataLoader workers
    seed: int = 0  # training seed (the same for every row)
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1"
    out_dir: str = "runs/dual_pathway"  # run folder (checkpoints, metrics.jsonl, ablation.json)

    def __post_init__(self) -> None:
        if self.split not in (1, 2, 3):
            raise ValueError(f"DualPathwayParams.split must be 1, 2 or 3, got {self.split}")
        if self.crop_size > self.short_side:
            raise ValueError(f"DualPathwayParams.crop_size ({self.crop_size}) exceeds short_side ({self.short_side})")
        for name in ("width", "beta_inv", "alpha", "tau", "num_frames", "stride", "epochs", "batch_size",
                     "synth_clips_per_class", "synth_clips_per_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"DualPathwayParams.{name} must be >= 1, got {getattr(self, name)}")
        self.row_names()  # validates rows
        self.model_config()  # validates the model fields (e.g. num_frames % tau), naming the field

    def effective(self) -> "DualPathwayParams":
        """The parameters actually used: ``preset="paper"`` applies :data:`PAPER_OVERRIDES`."""
        return dataclasses.replace(self, preset="teaching", **PAPER_OVERRIDES) if self.preset == "paper" else self

    def row_names(self) -> list[str]:
        if self.rows == "all":
            return list(TABLE3_ROWS)
        names = [r.strip() for r in self.rows.split(",") if r.strip()]
        bad = [r for r in names if r not in TABLE3_ROWS]
        if bad or not names:
            raise ValueError(f"DualPathwayParams.rows: unknown row(s) {bad}; choose from {list(TABLE3_ROWS)} or 'all'")
        return names

    def model_config(self) -> STINConfig:
        """The "both + CDAI" STINConfig; the other rows are derived with :func:`table3_configs`."""
        p = self.effective()
        depths = tuple(int(d) for d in p.depths.split(","))
        return STINConfig(width=p.width, beta_inv=p.beta_inv, alpha=p.alpha, tau=p.tau, num_frames=p.num_frames,
                          depths=depths, temporal_reduction=p.temporal_reduction, fusion=p.fusion,
                          directions=p.directions, dropout=p.dropout)


#: The paper's sizes and training recipe (section 3, Table 1): applied by ``preset="paper"``.
PAPER_OVERRIDES: dict[str, Any] = dict(
    width=64, beta_inv=8, alpha=8, tau=16, depths="3,4,6,3", num_frames=64, stride=1, short_side=256,
    crop_size=224, epochs=150, batch_size=8, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=6e-4,
    dropout=0.5,
)

#: Named configs: the teaching config (defaults) and the paper's recipe.
PRESETS: dict[str, DualPathwayParams] = {
    "teaching": DualPathwayParams(),
    "paper": DualPathwayParams(preset="paper").effective(),
}


def data_config(p: DualPathwayParams) -> DataConfig:
    p = p.effective()
    return DataConfig(num_frames=p.num_frames, stride=p.stride, short_side=p.short_side, crop_size=p.crop_size)


def synth_config(p: DualPathwayParams) -> SynthConfig:
    return SynthConfig(clips_per_class=p.synth_clips_per_class, clips_per_group=p.synth_clips_per_group,
                       num_frames=p.synth_frames, size=p.synth_size, seed=p.synth_seed)


def prepare_data(p: DualPathwayParams, *, progress: bool = True) -> tuple[VideoDataset, VideoDataset]:
    """(train, test) datasets; for ``dataset="synth"`` generate SynthActions first (a no-op when present)."""
    name = p.dataset
    if name == "synth":
        generate_synth_actions(p.data_root, synth_config(p), progress=progress, workers=1)
        name = "ucf101"  # SynthActions is written in the UCF101 layout
    common: dict[str, Any] = dict(split=p.split, config=data_config(p), missing=p.missing, on_error=p.on_error,
                                  seed=p.seed)
    return build_dataset(name, p.data_root, train=True, **common), build_dataset(name, p.data_root, train=False, **common)


def train_config(p: DualPathwayParams, run_dir: Path) -> TrainConfig:
    p = p.effective()
    return TrainConfig(epochs=p.epochs, batch_size=p.batch_size, optimizer=p.optimizer, lr=p.lr,
                       momentum=p.momentum, weight_decay=p.weight_decay, schedule="cosine",
                       num_workers=p.num_workers, seed=p.seed, deterministic=True, device=p.device,
                       out_dir=str(run_dir))


def _slug(row: str) -> str:
    return row.replace(" + ", "_plus_").replace(" ", "_").lower()


def run_ablation(p: DualPathwayParams, *, progress: bool = True) -> list[dict[str, Any]]:
    """Train the Table-3 rows of ``p`` (same data, seed and recipe) and return one dict per row.

    Each row: ``row``, ``top1`` (measured, %), ``top5``, ``num_params``, ``train_seconds`` (fit + test),
    ``epochs``, ``seed``, ``dataset``, ``input`` (clip shape), and the paper's numbers as
    ``paper_ucf101_top1`` / ``paper_hmdb51_top1``. Also written to ``out_dir/ablation.json``.
    """
    train_set, test_set = prepare_data(p, progress=progress)
    num_classes = len(train_set.classes)
    configs = table3_configs(p.model_config())
    eff = p.effective()
    rows = []
    for row in p.row_names():
        cfg = configs[row]
        run_dir = Path(p.out_dir) / _slug(row)
        run_dir.mkdir(parents=True, exist_ok=True)
        overrides = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
        torch.manual_seed(p.seed)
        model = build_model("stin", num_classes, **overrides)
        start = time.perf_counter()
        result = fit(model, train_set, test_set, train_config(p, run_dir), resume=False, progress=progress)
        test = evaluate(model, test_set, batch_size=eff.batch_size, num_classes=num_classes,
                        device=next(model.parameters()).device)
        seconds = time.perf_counter() - start
        ucf, hmdb = PAPER_TABLE3[row]
        rows.append({"row": row, "top1": round(100 * test.top1, 1), "top5": round(100 * test.top5, 1),
                     "num_params": sum(x.numel() for x in model.parameters()), "train_seconds": round(seconds, 1),
                     "epochs": result.epochs_completed, "seed": p.seed, "dataset": p.dataset,
                     "train_clips": len(train_set), "test_clips": len(test_set),
                     "input": [3, eff.num_frames, eff.crop_size, eff.crop_size],
                     "paper_ucf101_top1": ucf, "paper_hmdb51_top1": hmdb})
    out = Path(p.out_dir) / "ablation.json"
    out.write_text(json.dumps({"params": dataclasses.asdict(p), "chance_top1": 100 / num_classes, "rows": rows}, indent=2))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: measured columns, then the paper's (labelled "paper")."""
    head = (f"{'Table 3 row':14s} {'measured top-1 %':>16s} {'params':>9s} {'epochs':>6s} {'seed':>4s} {'time s':>7s}"
            f" | {'paper UCF101 %':>14s} {'paper HMDB51 %':>14s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['row']:14s} {r['top1']:16.1f} {r['num_params']:9,d} {r['epochs']:6d} {r['seed']:4d} "
                     f"{r['train_seconds']:7.1f} | {r['paper_ucf101_top1']:14.1f} {r['paper_hmdb51_top1']:14.1f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- teaching helpers
def flops_by_part(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Forward FLOPs (``torch.utils.flop_counter``: 2 x MACs) in total and per top-level part of a
    SlowFast / STIN model: the pathways, the lateral connections and the head."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    root = type(model).__name__
    parts: dict[str, float] = {"total": counts.get("Global", 0)}
    for name in ("slow", "fast", "sparse", "dense", "fuse", "laterals", "head"):
        # containers (Pathway, ModuleList) are never called themselves: sum their outermost called children
        keys = [k for k in counts if k.startswith(f"{root}.{name}.") or k == f"{root}.{name}"]
        top = [k for k in keys if not any(k.startswith(o + ".") for o in keys if o != k)]
        if top:
            parts[name] = sum(counts[k] for k in top)
    return parts


def pathway_flops(cfg: STINConfig, *, batch: int = 1, size: int = 224) -> dict[str, float]:
    """GFLOPs per part of STIN ``cfg`` for one ``[batch, 3, cfg.num_frames, size, size]`` clip, plus the
    dense pathway's share of the two pathways (paper: about 20 %). Counted on the meta device (no compute)."""
    with torch.device("meta"):
        model = build_model("stin", 400, **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
        parts = flops_by_part(model, torch.empty(batch, 3, cfg.num_frames, size, size))
    g = {k: v / 1e9 for k, v in parts.items()}
    if "sparse" in g and "dense" in g:
        g["dense_share_of_pathways"] = g["dense"] / (g["sparse"] + g["dense"])
    return g


def eca_kernel_table(channels: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)) -> list[dict[str, Any]]:
    """ECA's adaptive kernel (eq. 6) over C: ``log2(C)/2 + 1/2`` and the odd ``k``."""
    return [{"C": c, "log2(C)/gamma + b/gamma": round(math.log2(c) / 2 + 0.5, 2), "k": eca_kernel_size(c)}
            for c in channels]


def lateral_comparison(dense_ch: int = 8, alpha: int = 8, frames: int = 4, size: int = 56) -> list[dict[str, Any]]:
    """The dense->sparse lateral connections side by side on one ``[1, dense_ch, alpha*frames, size, size]``
    dense map: output shape, parameters and FLOPs (SlowFast's three + the CDAI max-pool default)."""
    x = torch.randn(1, dense_ch, alpha * frames, size, size)
    out = []
    for mode in ("time_to_channel", "interval_sampling", "interval_conv", "max_pool"):
        mod = DenseTemporalReduction(dense_ch, alpha, mode)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            y = mod(x)
        out.append({"lateral": mode, "input": list(x.shape), "output": list(y.shape),
                    "params": sum(p.numel() for p in mod.parameters()), "flops": counter.get_total_flops()})
    fuse = FuseFastToSlow(dense_ch, alpha)  # the same as interval_conv, as SlowFast builds it
    assert sum(p.numel() for p in fuse.parameters()) == out[2]["params"]
    return out
