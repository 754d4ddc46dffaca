"""The T-STAM experiment (notebook 03): paper 004's two streams, its section-4.3 ablations and the TSN baseline.

T-STAM (spec: a machine translation whose result tables are missing) trains an RGB and a flow stream
separately -- SE-BN-Inception, temporal attention (eq. 1-3), ``l`` spatial attention models (eq. 4-7),
fusion (eq. 8-9) -- and fuses their class probabilities RGB : flow = 1 : 3 (section 4.3.3). Runs (``runs``):
``tstam_rgb``, ``tstam_flow`` (fused with ``rgb_weight``), ``tsn_rgb`` / ``tsn_se_rgb`` (section 4.3.4: TSN
with and without SE), ``tstam_nose_rgb`` (T-STAM without SE, section 4.3.5), ``tstam_notemporal_rgb`` /
``tstam_nospatial_rgb`` (teaching ablations, not from the paper). Sweeps: ``segments_sweep`` (section
4.3.1, N = 3..6) and ``spatial_sweep`` (section 4.3.2, l = 1..5) on the RGB stream, and the fusion-weight
grid (section 4.3.3) on the two trained streams' test scores.

Presets (``TSTAMParams.preset``):

- ``"paper"``: section 4.2 -- N = 6 segments, l = 4, frames resized to 240 x 320 (short side 240), 224 crops,
  batch 32, SGD momentum 0.9, weight decay 5e-4; RGB 80 epochs with lr steps at 30 and 60, flow lr 0.001 with
  steps at 190 and 300, 340 epochs; 25 test frames x 10 crops. Gaps filled from the public tsn-pytorch
  defaults and labelled "TSN convention": RGB lr 0.001, L = 5 flow fields, dropout 0.8 (RGB) / 0.7 (flow),
  gradient clipping at norm 20, partial BN, BN-Inception's input convention (BGR 0-255 minus (104, 117, 128),
  flow minus 128).
- ``"teaching"`` (the defaults): the teaching model size on SynthActions frames + flow (64 px, N = 3, L = 5,
  DIS flow instead of the papers' TV-L1: far faster on a CPU, ``benchmarks/flow.py``),
  AdamW lr 1e-3 with cosine, from scratch (no ImageNet weights), partial BN off (it needs pretrained BN
  statistics), ImageNet-style unit-scale inputs (there are no weights whose input convention must be met).

The paper's absolute numbers cannot be recovered; only its relative facts are quoted
(:data:`PAPER_FACTS`), next to what was measured here.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np

from ..fileio import write_json_atomic
from ..models.fusion import weighted_fusion
from .common import (PresetFields, RecipeFields, RunFields, ScheduleFields, SynthFields, check_model_input,
                     parse_milestones, train_and_test)
from .two_stream import TwoStreamDataFields, input_shapes, prepare_two_stream_data, with_modality

#: The relative results that survive in paper 004's text (its tables are missing), quoted.
PAPER_FACTS: dict[str, str] = {
    "segments": "4.3.1: accuracy rises with N = 3, 4, 5, 6 segments (HMDB51 split 1, RGB stream); 6 is used",
    "spatial": "4.3.2: accuracy rises up to l = 4 spatial attention models, lower at 5; 4 is used",
    "fusion": "4.3.3: flow alone > RGB alone, any fusion > either stream, best 1/4 RGB + 3/4 flow",
    "se": "4.3.4: TSN + SE beats TSN by 0.2 (UCF101) and 1.3 (HMDB51) points",
    "sota": "4.3.5: T-STAM vs Two-Stream Fusion / TSN: UCF101 +3.2 / +0.8, HMDB51 +6.5 / +2.5 points",
}

#: name -> (model, modality, overrides of the model kwargs)
RUNS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "tstam_rgb": ("tstam", "rgb", {}),
    "tstam_flow": ("tstam", "flow", {}),
    "tstam_nose_rgb": ("tstam", "rgb", {"se": False}),
    "tstam_notemporal_rgb": ("tstam", "rgb", {"temporal": False}),
    "tstam_nospatial_rgb": ("tstam", "rgb", {"spatial": False}),
    "tsn_rgb": ("tsn_bninception", "rgb", {"se": False}),
    "tsn_se_rgb": ("tsn_bninception", "rgb", {"se": True}),
    "tsn_flow": ("tsn_bninception", "flow", {"se": False}),
}

#: Section 4.2 (paper) and the tsn-pytorch defaults it follows (TSN convention), RGB stream; the flow stream's
#: schedule is ``flow_epochs`` / ``flow_milestones``.
TSTAM_PAPER: dict[str, Any] = dict(
    flow_method="tvl1",
    num_segments=6, new_length=5, num_spatial=4, test_segments=25, test_crops=10, short_side=240, crop_size=224,
    batch_size=32, optimizer="sgd", lr=0.001, momentum=0.9, weight_decay=5e-4, warmup_epochs=0.0,
    schedule="step", milestones="30,60", epochs=80, flow_epochs=340, flow_milestones="190,300",
    clip_grad_norm=20.0, rgb_dropout=0.8, flow_dropout=0.7, partial_bn=True, normalize="bgr255",
)


def _int_list(text: str, field: str, lo: int, hi: int) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"TSTAMParams.{field} must be comma-separated ints, got {text!r}") from None
    if any(not lo <= v <= hi for v in out):
        raise ValueError(f"TSTAMParams.{field} values must be in [{lo}, {hi}], got {text!r}")
    return out


@dataclass(frozen=True)
class TSTAMParams(RunFields, ScheduleFields, RecipeFields, SynthFields, TwoStreamDataFields, PresetFields):
    """Flat parameters of notebook 03 (papermill). Defaults = the teaching preset; ``preset="paper"`` = section
    4.2 (:data:`TSTAM_PAPER`) for every field left at its default."""

    crop_size: int = 64  # square crop fed to the model (BN-Inception takes sides 32k-1 .. 32k+6: 32, 64, 96, ... 224)
    epochs: int = 12  # training epochs of each RGB run (paper: 80)
    flow_epochs: int = 0  # training epochs of each flow run (0 = epochs; paper: 340)
    flow_milestones: str = ""  # flow runs' lr steps with schedule="step" ("" = milestones; paper: "190,300")
    out_dir: str = "runs/tstam"  # run folder (one sub-folder per run, tstam.json)
    runs: str = "tstam_rgb,tstam_flow,tsn_rgb,tsn_se_rgb"  # runs to train, comma-separated (see RUNS)
    segments_sweep: str = ""  # section 4.3.1: RGB T-STAM trained at each N (e.g. "3,4,5,6"; "" = none)
    spatial_sweep: str = ""  # section 4.3.2: RGB T-STAM trained at each l (e.g. "1,2,3,4,5"; "" = none)
    num_spatial: int = 4  # l spatial attention models (paper: 4)
    frame_pool: Literal["sum", "mean"] = "sum"  # eq. (7) over frames: sum as printed, or mean (N differs in testing)
    se: bool = True  # SE-BN-Inception in T-STAM (paper: yes)
    width: float = 0.0  # backbone channel multiplier (0 = the preset's: teaching 0.25, paper 1.0)
    rgb_dropout: float = 0.5  # dropout before the FC, RGB stream (TSN convention: 0.8)
    flow_dropout: float = 0.5  # dropout before the FC, flow stream (TSN convention: 0.7)
    partial_bn: bool = False  # freeze all BN but the first (TSN convention with ImageNet weights)
    rgb_weight: float = 0.25  # stream fusion: p = rgb_weight p_rgb + (1 - rgb_weight) p_flow (paper: 1 : 3)
    fusion_on: Literal["probs", "logits"] = "probs"  # fuse class probabilities (reading) or logits

    PAPER: ClassVar[Mapping[str, Any]] = TSTAM_PAPER

    def _check(self) -> None:
        self._at_least(0, "flow_epochs", "width")
        self._at_least(1, "num_spatial")
        for name in ("rgb_dropout", "flow_dropout"):
            if not 0 <= getattr(self, name) < 1:
                self._fail(name, "must be in [0, 1)")
        if not 0 <= self.rgb_weight <= 1:
            self._fail("rgb_weight", "must be in [0, 1]")
        self.run_list()
        _int_list(self.segments_sweep, "segments_sweep", 1, 64)
        _int_list(self.spatial_sweep, "spatial_sweep", 1, 16)
        parse_milestones(self.flow_milestones, f"{type(self).__name__}.flow_milestones")
        if self.resolved() is not self:
            return  # the paper preset's resolved copy checks the sizes actually used
        for name in self.run_list():
            model, modality, _ = RUNS[name]
            check_model_input(type(self).__name__, model, self.model_kwargs(name),
                              preset=self.preset, clip=input_shapes(self, modality))  # type: ignore[arg-type]

    def run_list(self) -> list[str]:
        names = [r.strip() for r in self.runs.split(",") if r.strip()]
        bad = [r for r in names if r not in RUNS]
        if bad:
            raise ValueError(f"TSTAMParams.runs: unknown {bad}; choose from {list(RUNS)}")
        return names

    def model_kwargs(self, run: str, **extra: Any) -> dict[str, Any]:
        """``build_model(...)`` overrides of run ``run`` (see :data:`RUNS`), then ``extra``."""
        p = self.resolved()
        model, modality, over = RUNS[run]
        kw: dict[str, Any] = dict(modality=modality, new_length=p.new_length, partial_bn=p.partial_bn,
                                  dropout=p.rgb_dropout if modality == "rgb" else p.flow_dropout)
        if model == "tstam":
            kw.update(num_segments=p.num_segments, num_spatial=p.num_spatial, frame_pool=p.frame_pool, se=p.se)
        if p.width:
            kw["width"] = p.width
        kw.update(over)
        kw.update(extra)
        return kw

    def schedule_for(self, modality: str) -> dict[str, Any]:
        """TrainConfig overrides of a run of ``modality`` (the flow stream has its own length and steps)."""
        p = self.resolved()
        out = p.schedule_overrides()
        if modality == "flow":
            out["epochs"] = p.flow_epochs or p.epochs
            if p.schedule == "step":
                out["milestones"] = parse_milestones(p.flow_milestones or p.milestones, "flow_milestones")
        return out


def _top1(pred: np.ndarray, y: np.ndarray) -> float:
    return round(100.0 * float((pred == y).mean()), 1)


def fusion_grid(p_rgb: np.ndarray, p_flow: np.ndarray, y: np.ndarray, *, on: str = "probs",
                weights: tuple[float, ...] = (1.0, 0.75, 0.5, 1 / 3, 0.25, 0.2, 0.0)) -> list[dict[str, Any]]:
    """Section 4.3.3: top-1 of ``w p_rgb + (1 - w) p_flow`` for each RGB weight ``w`` (1 = RGB only, 0 = flow only)."""
    rows = []
    # weighted_fusion takes logits: the streams' softmax scores as log-probabilities (softmax(log p) = p, and
    # log p is each stream's logits up to a per-sample constant)
    p_rgb, p_flow = np.log(np.clip(p_rgb, 1e-12, None)), np.log(np.clip(p_flow, 1e-12, None))
    for w in weights:
        fused = np.asarray(weighted_fusion({"rgb": p_rgb, "flow": p_flow}, {"rgb": w, "flow": 1 - w}, on=on))
        label = "RGB only" if w == 1 else "flow only" if w == 0 else f"RGB {w:.2f} : flow {1 - w:.2f}"
        rows.append({"fusion": label, "rgb_weight": round(w, 3), "top1": _top1(fused.argmax(1), y)})
    return rows


def run_tstam(p: TSTAMParams, *, progress: bool = True) -> dict[str, Any]:
    """Train ``p.runs`` and the sweeps on the same data and seed; returns (and writes ``out_dir/tstam.json``)
    one row per run, the fusion-weight grid when both T-STAM streams ran, and the paper's relative facts."""
    eff = p.resolved()
    splits = prepare_two_stream_data(p, modality="both", progress=progress)
    y_test = np.asarray([label for _, label in splits.test.samples])
    jobs: list[tuple[str, str, dict[str, Any], Any]] = []  # (run name, registry model, kwargs, params)
    for name in p.run_list():
        jobs.append((name, RUNS[name][0], p.model_kwargs(name), p))
    for n in _int_list(p.segments_sweep, "segments_sweep", 1, 64):
        q = dataclasses.replace(p, num_segments=n)
        jobs.append((f"segments_{n}", "tstam", q.model_kwargs("tstam_rgb"), q))
    for l in _int_list(p.spatial_sweep, "spatial_sweep", 1, 16):
        jobs.append((f"spatial_{l}", "tstam", p.model_kwargs("tstam_rgb", num_spatial=l), p))
    rows, scores, models = [], {}, {}
    for name, model, kwargs, q in jobs:
        modality = kwargs["modality"]
        data = splits if q is p else prepare_two_stream_data(q, modality="both", progress=False)
        run = train_and_test(q, name, model, kwargs, with_modality(data, modality), resume=True, progress=progress,
                             test_scores=True, **q.schedule_for(modality))
        scores[name] = run.test.scores["logits"].numpy()
        models[name] = run.model
        rows.append({"run": name, "model": model, "modality": modality, "top1": round(100 * run.test.top1, 1),
                     "top5": round(100 * run.test.top5, 1), "num_params": run.num_params,
                     "train_seconds": round(run.seconds, 1), "epochs": run.fit.epochs_completed, "seed": p.seed,
                     "num_segments": q.resolved().num_segments,
                     "num_spatial": kwargs.get("num_spatial"), "se": kwargs.get("se"), "weights": run.weights})
    out: dict[str, Any] = {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(eff),
                           "classes": splits.classes, "chance_top1": round(100 / len(splits.classes), 1),
                           "train_clips": len(splits.train), "test_clips": len(splits.test), "rows": rows,
                           "paper_facts": PAPER_FACTS}
    if "tstam_rgb" in scores and "tstam_flow" in scores:
        out["fusion_grid"] = fusion_grid(scores["tstam_rgb"], scores["tstam_flow"], y_test, on=p.fusion_on,
                                         weights=tuple(sorted({1.0, 0.75, 0.5, 1 / 3, p.rgb_weight, 0.2, 0.0},
                                                              reverse=True)))
        out["two_stream_top1"] = fusion_grid(scores["tstam_rgb"], scores["tstam_flow"], y_test, on=p.fusion_on,
                                             weights=(p.rgb_weight,))[0]["top1"]
    write_json_atomic(Path(p.out_dir) / "tstam.json", out)
    out["models"] = models
    out["scores"] = scores
    return out
