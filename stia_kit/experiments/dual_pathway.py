"""The dual-pathway / CDAI experiment (notebook 01): STIN's Table-3 ablation and its teaching helpers.

Presets (``DualPathwayParams.preset``, the kit's one size convention):

- ``"paper"``: the paper's model and training recipe (section 2.3) -- Table 1 sizes (width 64, beta 1/8, alpha 8,
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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..fileio import write_json_atomic
from ..models import build_model
from ..models.attention import eca_kernel_size
from ..models.slowfast import FuseFastToSlow
from ..models.stin import TABLE3_ROWS, DenseTemporalReduction, STINConfig, table3_configs
from .common import (DataFields, PresetFields, RecipeFields, RunFields, SynthFields, check_model_input, clip_shape,
                     prepare_data, train_and_test)

#: Paper, Table 3 (top-1 %, UCF101 / HMDB51), quoted for comparison only.
PAPER_TABLE3: dict[str, tuple[float, float]] = {
    "dense only": (78.5, 51.7), "sparse only": (90.3, 72.6), "both": (95.8, 77.0), "both + CDAI": (97.6, 78.4),
}

#: The paper's STIN sizes (Table 1) and training recipe (section 2.3): SGD lr 0.01, cosine annealing, momentum
#: 0.9, weight decay 6e-4, dropout 0.5, 150 epochs, batch 8, 64 x 224^2 clips. Shared by notebook 06's preset.
STIN_PAPER: dict[str, Any] = dict(
    width=64, beta_inv=8, alpha=8, tau=16, depths="3,4,6,3", num_frames=64, stride=1, short_side=256,
    crop_size=224, epochs=150, batch_size=8, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=6e-4,
    warmup_epochs=0.0, dropout=0.5,
)


@dataclass(frozen=True)
class DualPathwayParams(RunFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of notebook 01 (papermill). Defaults = the teaching preset; ``preset="paper"`` = Table 1
    and section 2.3 (:data:`STIN_PAPER`) for every field left at its default."""

    data_root: str = "data/synth01"  # dataset root (official layout) or where SynthActions is generated
    num_frames: int = 32  # clip length T fed to the model (paper: 64); multiple of tau
    stride: int = 1  # step between the clip's frames in the video (the model does the pathway sampling)
    short_side: int = 56  # resize the short side to this (paper: 256)
    crop_size: int = 48  # square crop fed to the model (paper: 224)
    cache_resized: bool = True  # also cache the resized frames (32-frame clips: the resize was most of the data time)
    weight_decay: float = 0.0006  # weight decay (paper: 6e-4)
    warmup_epochs: float = 0.0  # linear warm-up epochs (the paper states none)
    epochs: int = 25  # training epochs per Table-3 row (paper: 150; at 12 every row stayed within 8 points of chance)
    out_dir: str = "runs/dual_pathway"  # run folder (one sub-folder per Table-3 row, ablation.json)
    rows: str = "all"  # Table-3 rows to train: "all" or comma-separated names ("both,both + CDAI")
    width: int = 16  # sparse-pathway stem channels (paper: 64)
    beta_inv: int = 4  # dense pathway has width / beta_inv channels (paper: 8)
    alpha: int = 4  # dense / sparse frame-rate ratio (paper: 8)
    tau: int = 8  # sparse-pathway temporal stride on the clip (paper: 16)
    depths: str = "1,1,1,1"  # bottleneck blocks per stage (paper: "3,4,6,3")
    temporal_reduction: Literal["max_pool", "time_to_channel", "interval_sampling", "interval_conv"] = "max_pool"  # CDAI dense->sparse
    fusion: Literal["add", "concat"] = "add"  # CDAI sparse->dense fusion
    directions: Literal["both", "dense_to_sparse", "sparse_to_dense"] = "both"  # CDAI directions
    dropout: float = 0.5  # dropout before the classifier (paper: 0.5)

    PAPER: ClassVar[Mapping[str, Any]] = STIN_PAPER

    def _check(self) -> None:
        self._at_least(1, "width", "beta_inv", "alpha", "tau")
        if not 0 <= self.dropout < 1:
            self._fail("dropout", "must be in [0, 1)")
        self.row_names()  # validates rows
        if self.resolved() is not self:
            return  # the paper preset's resolved copy runs the model checks on the sizes actually used
        try:
            cfg = self.model_config()  # validates the model fields (e.g. num_frames % tau), naming the field
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}: {e}") from e
        check_model_input(type(self).__name__, "stin", stin_kwargs(cfg), preset=self.preset, clip=clip_shape(self))

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
        p = self.resolved()
        try:
            depths = tuple(int(d) for d in p.depths.split(","))
        except ValueError:
            raise ValueError(f"DualPathwayParams.depths must be 4 comma-separated ints, got {p.depths!r}") from None
        make = STINConfig.paper if p.preset == "paper" else STINConfig.teaching
        return make(width=p.width, beta_inv=p.beta_inv, alpha=p.alpha, tau=p.tau, num_frames=p.num_frames,
                    depths=depths, temporal_reduction=p.temporal_reduction, fusion=p.fusion,
                    directions=p.directions, dropout=p.dropout)


def stin_kwargs(cfg: STINConfig) -> dict[str, Any]:
    """Every field of ``cfg`` as ``build_model("stin", ...)`` overrides."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def _slug(row: str) -> str:
    return row.replace(" + ", "_plus_").replace(" ", "_").lower()


def run_ablation(p: DualPathwayParams, *, progress: bool = True) -> list[dict[str, Any]]:
    """Train the Table-3 rows of ``p`` (same data, seed and recipe) and return one dict per row.

    Each row: ``row``, ``top1`` (measured, %), ``top5``, ``num_params``, ``train_seconds`` (fit + test),
    ``epochs``, ``seed``, ``dataset``, ``input`` (clip shape), and the paper's numbers as
    ``paper_ucf101_top1`` / ``paper_hmdb51_top1``. Also written to ``out_dir/ablation.json``.
    """
    splits = prepare_data(p, progress=progress)
    configs = table3_configs(p.model_config())
    eff = p.resolved()
    rows = []
    for row in p.row_names():
        run = train_and_test(p, _slug(row), "stin", stin_kwargs(configs[row]), splits, resume=False,
                             progress=progress)
        ucf, hmdb = PAPER_TABLE3[row]
        rows.append({"row": row, "top1": round(100 * run.test.top1, 1), "top5": round(100 * run.test.top5, 1),
                     "num_params": run.num_params, "train_seconds": round(run.seconds, 1),
                     "epochs": run.fit.epochs_completed, "seed": p.seed, "dataset": p.dataset,
                     "train_clips": len(splits.train), "test_clips": len(splits.test), "weights": run.weights,
                     "input": list(clip_shape(eff)), "per_class": run.test.per_class,
                     "paper_ucf101_top1": ucf, "paper_hmdb51_top1": hmdb})
    write_json_atomic(Path(p.out_dir) / "ablation.json",
                      {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(eff),
                       "classes": splits.classes, "chance_top1": 100 / len(splits.classes),
                       "test_class_counts": [sum(1 for _, y in splits.test.samples if y == k)
                                             for k in range(len(splits.classes))],
                       "rows": rows})
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
        model = build_model("stin", 400, **stin_kwargs(cfg))
        parts = flops_by_part(model, torch.empty(batch, 3, cfg.num_frames, size, size))
    g = {k: v / 1e9 for k, v in parts.items()}
    if "sparse" in g and "dense" in g:
        g["dense_share_of_pathways"] = g["dense"] / (g["sparse"] + g["dense"])
    return g


def eca_kernel_table(channels: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024, 2048)) -> list[dict[str, Any]]:
    """ECA's adaptive kernel (Eq. (4), ``k = psi(C)``) over C: ``log2(C)/2 + 1/2`` and the nearest odd ``k``."""
    return [{"C": c, "log2(C)/gamma + b/gamma": round(math.log2(c) / 2 + 0.5, 2), "k": eca_kernel_size(c)}
            for c in channels]


def lateral_comparison(dense_ch: int = 8, alpha: int = 8, frames: int = 4, size: int = 56) -> list[dict[str, Any]]:
    """The dense->sparse lateral connections side by side on one ``[1, dense_ch, alpha*frames, size, size]``
    dense map: output shape, parameters and FLOPs (SlowFast's three + the CDAI max-pool default)."""
    x = torch.randn(1, dense_ch, alpha * frames, size, size)
    out = []
    for mode in ("time_to_channel", "interval_sampling", "interval_conv", "max_pool"):
        mod = DenseTemporalReduction(dense_ch, alpha, mode).eval()  # interval sampling: deterministic at eval
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            y = mod(x)
        out.append({"lateral": mode, "input": list(x.shape), "output": list(y.shape),
                    "params": sum(p.numel() for p in mod.parameters()), "flops": counter.get_total_flops()})
    fuse = FuseFastToSlow(dense_ch, alpha)  # the same as interval_conv, as SlowFast builds it
    assert sum(p.numel() for p in fuse.parameters()) == out[2]["params"]
    return out
