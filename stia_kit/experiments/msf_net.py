"""The MSF-Net experiment (notebook 05): paper 003's Tables 1-3 and 5 as named runs on one recipe.

Runs (``MSFParams.rows``, names in :data:`ROWS`): the baselines ``r3d_18``, ``c3d``, ``r3d_50``; MSF-R3D at the
paper's placement (b) and S = 4 (``msf_r3d``), the other placements ``msf_r3d_a`` / ``_c`` / ``_d`` (Table 1),
``msf_r3d_s3`` .. ``_s6`` (Table 2), the attention comparison ``msf_r3d_se`` / ``_cbam`` / ``_fsam`` (Table 3;
NST is omitted: the paper gives no placement or size for it), and ``msf_c3d`` / ``msf_c3d_fsam`` (Table 5).
Every row trains with the same data, seed and recipe and is printed next to the paper's numbers (quoted).

Presets (``MSFParams.preset``):

- ``"paper"``: section 4.2 -- 8 frames TSN-style ("at random intervals": one random frame per segment; test:
  segment centres, reading), frames resized to 171 x 128 (width x height), random 112 crop, flip and contrast
  (factor in [0.8, 1.2], reading), Adam lr 1e-4 divided by 10 every 10 epochs, from scratch; 30 epochs and
  batch 16 are not given (reading). The C3D family needs 16 frames (pool5 would see T = 1 with 8).
- ``"teaching"`` (the defaults): the same protocol on SynthActions at 64 px (short side 64, 56 crops),
  teaching widths (16), 8 TSN frames (16 for the C3D family), Adam lr 1e-3 with cosine.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

from ..fileio import write_json_atomic
from .common import (DataFields, PresetFields, RecipeFields, RunFields, ScheduleFields, SynthFields, check_model_input,
                     clip_shape, prepare_data, train_and_test)

#: name -> (registry model, model overrides, paper row label, paper (params M, GMACs or None, UCF101 top-1 %))
ROWS: dict[str, tuple[str, dict[str, Any], str, tuple[float, float | None, float]]] = {
    "r3d_18": ("r3d_18", {}, "Table 5: R3D", (33.18, 19.3, 45.6)),
    "c3d": ("c3d", {}, "Table 5: C3D", (78.41, 38.5, 44.9)),
    "r3d_50": ("r3d_50", {}, "Table 5: 3D ResNet-50", (47.02, 10.1, 45.52)),
    "msf_r3d": ("msf_r3d", {}, "Table 5: MSF-R3D (Table 1 b, Table 2 S = 4)", (21.84, 15.1, 49.5)),
    "msf_r3d_a": ("msf_r3d", {"msl_position": "a"}, "Table 1 (a)", (26.66, None, 48.0)),
    "msf_r3d_c": ("msf_r3d", {"msl_position": "c"}, "Table 1 (c)", (16.09, None, 47.1)),
    "msf_r3d_d": ("msf_r3d", {"msl_position": "d"}, "Table 1 (d) (closest reading, count not reproduced)", (15.53, None, 45.2)),
    "msf_r3d_s3": ("msf_r3d", {"scale": 3}, "Table 2: S = 3", (21.18, None, 46.0)),
    "msf_r3d_s5": ("msf_r3d", {"scale": 5}, "Table 2: S = 5", (21.80, None, 48.0)),
    "msf_r3d_s6": ("msf_r3d", {"scale": 6}, "Table 2: S = 6", (21.50, None, 47.6)),
    "msf_r3d_se": ("msf_r3d", {"attention": "se"}, "Table 3: SE", (21.88, None, 50.1)),
    "msf_r3d_cbam": ("msf_r3d", {"attention": "cbam"}, "Table 3: CBAM", (21.88, None, 45.5)),
    "msf_r3d_fsam": ("msf_r3d", {"attention": "fsam"}, "Table 3 / 5: MSF-R3D + FSAM", (21.88, 15.1, 52.8)),
    "msf_c3d": ("msf_c3d", {}, "Table 5: MSF-C3D", (69.20, 32.9, 52.1)),
    "msf_c3d_fsam": ("msf_c3d", {"attention": "fsam"}, "Table 5: MSF-C3D + FSAM", (69.25, 32.9, 53.8)),
}
C3D_FAMILY = ("c3d", "msf_c3d")

#: Section 4.2 (paper) with the gaps filled (reading, see the module docstring).
MSF_PAPER: dict[str, Any] = dict(
    num_frames=8, short_side=128, crop_size=112, resize_width=171, epochs=30, batch_size=16, optimizer="adam",
    lr=1e-4, weight_decay=0.0, warmup_epochs=0.0, schedule="step", milestones="10,20",
)


@dataclass(frozen=True)
class MSFParams(RunFields, ScheduleFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of notebook 05 (papermill). Defaults = the teaching preset; ``preset="paper"`` = section
    4.2 (:data:`MSF_PAPER`) for every field left at its default."""

    data_root: str = "data/synth05"  # dataset root (official layout) or where SynthActions is generated
    num_frames: int = 8  # TSN segments = frames per clip (paper: 8; the C3D family uses c3d_frames)
    c3d_frames: int = 16  # frames per clip of the C3D family (pool5 needs T >= 16)
    resize_width: int = 0  # paper: frames resized to resize_width x short_side (171 x 128); 0 = keep the aspect
    contrast: float = 0.2  # contrast augmentation: factor in [1 - contrast, 1 + contrast] (reading: 0.2)
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"  # optimiser (paper: Adam)
    epochs: int = 10  # training epochs per row (paper: not given; reading 30)
    weight_decay: float = 0.0  # weight decay (paper: none stated)
    out_dir: str = "runs/msf_net"  # run folder (one sub-folder per row, msf_net.json)
    rows: str = "r3d_18,msf_r3d,msf_r3d_fsam"  # rows to train, comma-separated (see ROWS)
    width: int = 0  # first-stage width (0 = the preset's: teaching 16, paper 64)

    PAPER: ClassVar[Mapping[str, Any]] = MSF_PAPER

    def _check(self) -> None:
        self._at_least(0, "resize_width", "width")
        self._at_least(1, "c3d_frames")
        if not 0 <= self.contrast < 1:
            self._fail("contrast", "must be in [0, 1)")
        self.row_list()
        if self.resolved() is not self:
            return
        for row in self.row_list():
            model, kwargs = self.model_kwargs(row)
            check_model_input(type(self).__name__, model, kwargs, preset=self.preset, clip=self.clip_for(row))

    def row_list(self) -> list[str]:
        names = [r.strip() for r in self.rows.split(",") if r.strip()]
        bad = [r for r in names if r not in ROWS]
        if bad or not names:
            raise ValueError(f"MSFParams.rows: unknown {bad}; choose from {list(ROWS)}")
        return names

    def model_kwargs(self, row: str) -> tuple[str, dict[str, Any]]:
        p = self.resolved()
        model, over, _, _ = ROWS[row]
        kw = dict(over)
        if p.width:
            kw["width"] = p.width
        return model, kw

    def clip_for(self, row: str) -> tuple[int, int, int, int]:
        c, t, h, w = clip_shape(self)
        return (c, self.resolved().c3d_frames if ROWS[row][0] in C3D_FAMILY else t, h, w)

    def data_overrides(self) -> dict[str, Any]:
        """The MSF-Net protocol's DataConfig fields (TSN frames, non-square resize, contrast)."""
        p = self.resolved()
        out: dict[str, Any] = {"sampling": "tsn"}
        if p.resize_width:
            out["resize_hw"] = (p.short_side, p.resize_width)
        if p.contrast:
            out["contrast"] = (1 - p.contrast, 1 + p.contrast)
        return out


def run_rows(p: MSFParams, *, progress: bool = True) -> list[dict[str, Any]]:
    """Train every row of ``p`` (same data, seed, recipe); one dict per row with the measured top-1, the
    parameter count, the time, the paper's numbers (quoted) and the trained ``model`` (in memory). Also written
    to ``out_dir/msf_net.json`` (without the models)."""
    eff = p.resolved()
    splits = prepare_data(p, progress=progress)
    c3d_splits = None
    rows = []
    for row in p.row_list():
        model, kwargs = p.model_kwargs(row)
        data = splits
        if model in C3D_FAMILY:
            if c3d_splits is None:
                c3d_splits = prepare_data(dataclasses.replace(p, num_frames=eff.c3d_frames), progress=False)
            data = c3d_splits
        run = train_and_test(p, row, model, kwargs, data, resume=True, progress=progress, **p.schedule_overrides())
        _, _, label, (params_m, gmacs, top1) = ROWS[row]
        rows.append({"row": row, "paper_row": label, "top1": round(100 * run.test.top1, 1),
                     "num_params": run.num_params, "train_seconds": round(run.seconds, 1),
                     "epochs": run.fit.epochs_completed, "seed": p.seed, "frames": p.clip_for(row)[1],
                     "paper_params_M": params_m, "paper_gflops": gmacs, "paper_ucf101_top1": top1,
                     "model": run.model})
    write_json_atomic(Path(p.out_dir) / "msf_net.json",
                      {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(eff), "classes": splits.classes,
                       "chance_top1": round(100 / len(splits.classes), 1), "train_clips": len(splits.train),
                       "test_clips": len(splits.test), "rows": [{k: v for k, v in r.items() if k != "model"} for r in rows]})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: measured columns, then the paper's (labelled "paper", quoted)."""
    head = (f"{'row':14s} {'measured top-1 %':>16s} {'params':>11s} {'time s':>7s} | {'paper row':46s} "
            f"{'paper M':>7s} {'paper UCF101 %':>14s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['row']:14s} {r['top1']:16.1f} {r['num_params']:11,d} {r['train_seconds']:7.1f} | "
                     f"{r['paper_row']:46s} {r['paper_params_M']:7.2f} {r['paper_ucf101_top1']:14.1f}")
    return "\n".join(lines)
