"""The ST-MANet experiment (notebook 04): paper 002's Table-4 ablation, the per-stage classification of Fig. 4
and the diversity-weight grid of Fig. 5, on one recipe.

Rows (``STMANetParams.rows``): the six Table-4 rows (:data:`stia_kit.models.st_manet.TABLE4_ROWS`), built from
one constructor (:func:`~stia_kit.models.st_manet.table4_configs`); ``stages`` adds full-model runs classified
from one stage (Fig. 4); ``lambda_grid`` adds full-model runs at other (lambda_s, lambda_t) (Fig. 5).

Presets (``STMANetParams.preset``):

- ``"paper"``: section 4.1 -- Hara 3D ResNet-50 with Kaiming init, 64 contiguous frames at stride 2 -> 32, a
  random crop of 0.5-1 x the short side (height and width drawn independently) resized to 112, flip; SGD
  momentum 0.9, batch 32, lr 0.01 divided by 10 every 15 epochs, 90 epochs; weight decay is not given
  (reading: 5e-4, labelled); test: every non-overlapping 64-frame window at stride 2, centre crop, softmax
  averaged over the windows (the averaging is inferred).
- ``"teaching"`` (the defaults): width 16, 32 frames at stride 1 (>= 32 so that A_t at stage 5 is not 1 x 1),
  48 px crops from 56, AdamW lr 1e-3 with cosine, SynthActions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

from ..fileio import write_json_atomic
from ..models.st_manet import PAPER_FLOPS_INCREASE_PCT, PAPER_TABLE4, TABLE4_ROWS, STMANetConfig, table4_configs
from .common import (DataFields, PresetFields, RecipeFields, RunFields, ScheduleFields, SynthFields, check_model_input,
                     clip_shape, prepare_data, train_and_test)

#: Section 4.1 (paper) with weight decay chosen (reading).
ST_MANET_PAPER: dict[str, Any] = dict(
    num_frames=32, stride=2, short_side=128, crop_size=112, random_size_crop=True, test_windows=True,
    epochs=90, batch_size=32, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, warmup_epochs=0.0,
    schedule="step", milestones="15,30,45,60,75",
)


def _slug(row: str) -> str:
    return row.replace("+", "plus_").replace(" ", "_").replace("-", "_").lower()


@dataclass(frozen=True)
class STMANetParams(RunFields, ScheduleFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of notebook 04 (papermill). Defaults = the teaching preset; ``preset="paper"`` = section
    4.1 (:data:`ST_MANET_PAPER`) for every field left at its default."""

    data_root: str = "data/synth04"  # dataset root (official layout) or where SynthActions is generated
    num_frames: int = 32  # clip length T (paper: 32 = 64 frames at stride 2; >= 32 keeps A_t^5 larger than 1 x 1)
    stride: int = 1  # step between the clip's frames (paper: 2)
    short_side: int = 56  # resize the short side to this (paper: the crop is drawn from the frame, then 112)
    crop_size: int = 48  # square crop fed to the model (paper: 112)
    random_size_crop: bool = False  # ST-MANet's 0.5-1 x short-side crop, h and w independent, resized (paper preset)
    test_windows: bool = False  # test on every non-overlapping window of the video (paper preset)
    epochs: int = 10  # training epochs per row (paper: 90)
    out_dir: str = "runs/st_manet"  # run folder (one sub-folder per row, st_manet.json)
    rows: str = "3D ResNet-50,ST-MANet"  # Table-4 rows to train, comma-separated, or "all"
    stages: str = ""  # Fig. 4: full model classified from these stages ("2,3,4,5"; "" = none)
    lambda_grid: str = ""  # Fig. 5: "lambda_s:lambda_t" pairs for the full model ("0.1:0.001,0:0"; "" = none)
    width: int = 16  # stem width (paper: 64)
    lambda_s: float = 0.01  # spatial diversity weight (paper: 0.01)
    lambda_t: float = 0.001  # temporal diversity weight (paper: 0.001)
    tda_proj: Literal["reshape", "conv3x1x1", "conv3x1x1_all"] = "conv3x1x1"  # TDA operators (stia_kit.models.st_manet.TDA_PROJ)
    scale_logits: bool = False  # divide attention logits by sqrt(d) (not printed: False = paper)

    PAPER: ClassVar[Mapping[str, Any]] = {**ST_MANET_PAPER, "width": 64}

    def _check(self) -> None:
        self._at_least(1, "width")
        self._at_least(0, "lambda_s", "lambda_t")
        self.row_names()
        self.stage_list()
        self.lambda_pairs()
        if self.resolved() is not self:
            return
        check_model_input(type(self).__name__, "st_manet", self.model_kwargs("ST-MANet"), preset=self.preset,
                          clip=clip_shape(self))

    def row_names(self) -> list[str]:
        if self.rows == "all":
            return list(TABLE4_ROWS)
        names = [r.strip() for r in self.rows.split(",") if r.strip()]
        bad = [r for r in names if r not in TABLE4_ROWS]
        if bad:
            raise ValueError(f"STMANetParams.rows: unknown {bad}; choose from {list(TABLE4_ROWS)} or 'all'")
        return names

    def stage_list(self) -> list[int]:
        try:
            out = [int(s) for s in self.stages.split(",") if s.strip()]
        except ValueError:
            raise ValueError(f"STMANetParams.stages must be comma-separated stages 2..5, got {self.stages!r}") from None
        if any(s not in (2, 3, 4, 5) for s in out):
            raise ValueError(f"STMANetParams.stages must be in 2..5, got {self.stages!r}")
        return out

    def lambda_pairs(self) -> list[tuple[float, float]]:
        out = []
        for item in (x.strip() for x in self.lambda_grid.split(",") if x.strip()):
            try:
                ls, lt = (float(v) for v in item.split(":"))
            except ValueError:
                raise ValueError(f"STMANetParams.lambda_grid items must be 'lambda_s:lambda_t', got {item!r}") from None
            out.append((ls, lt))
        return out

    def model_kwargs(self, row: str, **extra: Any) -> dict[str, Any]:
        """``build_model("st_manet", ...)`` overrides of Table-4 ``row`` (then ``extra``)."""
        p = self.resolved()
        base = STMANetConfig.from_preset(p.preset, width=p.width, lambda_s=p.lambda_s, lambda_t=p.lambda_t,
                                         tda_proj=p.tda_proj, scale_logits=p.scale_logits)
        cfg = dataclasses.replace(table4_configs(base)[row], **extra)
        return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}

    def data_overrides(self) -> dict[str, Any]:
        """ST-MANet's protocol in DataConfig fields (random-size crop, test windows) when switched on."""
        p = self.resolved()
        out: dict[str, Any] = {}
        if p.random_size_crop:
            out["train_crop"] = "random_size"
        if p.test_windows:
            out["test_windows"] = True
        return out


def run_ablation(p: STMANetParams, *, progress: bool = True) -> list[dict[str, Any]]:
    """Train the rows, stage runs and lambda runs of ``p`` (same data, seed, recipe); one dict per run with the
    measured top-1, the diversity terms of the test set, parameters, time, and the paper's number (quoted).
    Also written to ``out_dir/st_manet.json``."""
    eff = p.resolved()
    splits = prepare_data(p, progress=progress)
    jobs: list[tuple[str, str, dict[str, Any]]] = [(row, _slug(row), p.model_kwargs(row)) for row in p.row_names()]
    jobs += [(f"ST-MANet, classified from stage {s}", f"stage_{s}", p.model_kwargs("ST-MANet", classify_from=s))
             for s in p.stage_list()]
    jobs += [(f"ST-MANet, lambda_s {ls:g}, lambda_t {lt:g}", f"lambda_{ls:g}_{lt:g}",
              p.model_kwargs("ST-MANet", lambda_s=ls, lambda_t=lt)) for ls, lt in p.lambda_pairs()]
    rows = []
    for label, folder, kwargs in jobs:
        run = train_and_test(p, folder, "st_manet", kwargs, splits, resume=True, progress=progress,
                             **p.schedule_overrides())
        paper = PAPER_TABLE4.get(label)
        rows.append({"row": label, "top1": round(100 * run.test.top1, 1), "top5": round(100 * run.test.top5, 1),
                     "num_params": run.num_params, "train_seconds": round(run.seconds, 1),
                     "epochs": run.fit.epochs_completed, "seed": p.seed, "terms": run.test.terms,
                     "paper_ucf101_top1": round(100 * paper, 2) if paper is not None else None,
                     "model": run.model})
    write_json_atomic(Path(p.out_dir) / "st_manet.json",
                      {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(eff), "classes": splits.classes,
                       "chance_top1": round(100 / len(splits.classes), 1), "train_clips": len(splits.train),
                       "test_clips": len(splits.test), "paper_flops_increase_pct": PAPER_FLOPS_INCREASE_PCT,
                       "rows": [{k: v for k, v in r.items() if k != "model"} for r in rows]})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Plain-text table: measured columns, then the paper's UCF-101 accuracy (quoted)."""
    head = f"{'run':44s} {'measured top-1 %':>16s} {'params':>10s} {'epochs':>6s} {'time s':>7s} | {'paper UCF-101 %':>15s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        paper = f"{r['paper_ucf101_top1']:15.2f}" if r["paper_ucf101_top1"] is not None else f"{'-':>15s}"
        lines.append(f"{r['row']:44s} {r['top1']:16.1f} {r['num_params']:10,d} {r['epochs']:6d} "
                     f"{r['train_seconds']:7.1f} | {paper}")
    return "\n".join(lines)
