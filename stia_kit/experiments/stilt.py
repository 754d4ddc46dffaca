"""The STILT experiment (notebook 02): paper 001's training schedule and its Tables 4, 5 and 6 on two streams.

Schedule (spec, reading of section 4.2 / Algorithm 1): (1) each stream alone -- the *Spatial* (RGB) and
*Temporal* (flow) rows, and their late average, the *Two-stream* row; (2) STILT with the STIL module trained
end to end from the stage-1 streams (the *+ STIL* row: its two softmax heads are averaged, i.e. late
average, Table 5's first row); (3) the adaptively weighted fusion (AWF, eq. 4-9) fitted on scores computed
with the test-view protocol on the training split (``awf_fit_on="train"``) or on held-out training groups
(``"holdout"``) -- the *+ STIL + AWF* row; Table 5's early fusion is a linear SVM on the concatenated
attended features. Table 6 repeats the pipeline per backbone (``backbones``); the lambda sweep refits AWF.

Presets (``STILTParams.preset``):

- ``"paper"``: ResNet-50 streams, L = 10 (20 flow channels), 224 crops from 256, 3 training segments and
  25 x 10 test views (TSN protocol: the paper states no segments), SGD momentum 0.9, batch 128, weight decay
  5e-4, lr 1e-3 divided by 10 every 10k iterations, stop at 50k (section 4.2; UCF101 / Kinetics, HMDB51: every
  5k). Reading: the engine counts epochs, so the iterations are converted with the training split's size
  (:func:`iteration_schedule`; UCF101 split 1: 9,537 clips, 75 iterations per epoch).
- ``"teaching"`` (the defaults): the same code at the teaching model size on SynthActions frames + flow
  (64 px, 3 segments, L = 5), AdamW lr 1e-3 with cosine (from scratch here: no ImageNet weights), DIS flow
  instead of TV-L1 (measured in ``benchmarks/flow.py``: TV-L1 alone would take most of the time budget).

The paper's numbers are quoted (:data:`PAPER_TABLE4` ...) next to what was measured, labelled as such.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..fileio import write_json_atomic
from ..models.fusion import awf_predict, early_fusion_svm, fit_awf, late_average
from ..models.stilt import PAPER_TABLE4, PAPER_TABLE5, PAPER_TABLE6
from ..train import evaluate
from ..train.device import to_device
from .common import (PresetFields, RecipeFields, RunFields, ScheduleFields, SynthFields, check_model_input,
                     train_and_test)
from .two_stream import (TwoStreamDataFields, input_shapes, open_two_stream,
                         prepare_two_stream_data, with_modality)

#: Paper 001's Tables 4 / 5 / 6 (top-1 %, UCF101 / HMDB51 / Kinetics), quoted for comparison only (defined once,
#: in :mod:`stia_kit.models.stilt`). Table 5's late-average Kinetics value (68.0) differs from Table 4's 68.8.
TABLE5_LABELS: dict[str, str] = {"late_avg": "STIL + late average", "early_svm": "STIL + early fusion (SVM)",
                                 "awf": "STIL + AWF"}
BACKBONES = ("vgg19", "resnet34", "resnet50")

#: Section 4.2 (paper) with the TSN protocol for segments and test views (reading).
STILT_PAPER: dict[str, Any] = dict(
    flow_method="tvl1",
    new_length=10, num_segments=3, test_segments=25, test_crops=10, short_side=256, crop_size=224,
    batch_size=128, optimizer="sgd", lr=0.001, momentum=0.9, weight_decay=5e-4, warmup_epochs=0.0,
    schedule="step", milestones="133,267,400,533", epochs=667,
)


def iteration_schedule(n_train: int, batch_size: int, *, step_every: int, stop_at: int = 50_000) -> tuple[int, tuple[int, ...]]:
    """(epochs, milestones) of "lr x0.1 every ``step_every`` iterations, stop at ``stop_at``" (section 4.2) for
    a training split of ``n_train`` clips: iterations per epoch = ceil(n_train / batch_size). Reading: the
    milestones are rounded to whole epochs. UCF101 split 1 (9,537 clips, batch 128): (667, (133, 267, 400, 533))."""
    per_epoch = math.ceil(n_train / batch_size)
    epochs = round(stop_at / per_epoch)
    milestones = tuple(sorted({round(k * step_every / per_epoch) for k in range(1, stop_at // step_every)}))
    return epochs, tuple(m for m in milestones if 0 < m < epochs)


@dataclass(frozen=True)
class STILTParams(RunFields, ScheduleFields, RecipeFields, SynthFields, TwoStreamDataFields, PresetFields):
    """Flat parameters of notebook 02 (papermill). Defaults = the teaching preset; ``preset="paper"`` = section
    4.2 (:data:`STILT_PAPER`) for every field left at its default."""

    epochs: int = 12  # training epochs of each stream and of the STIL stage (paper: 50k iterations)
    out_dir: str = "runs/stilt"  # run folder (one sub-folder per backbone and stage, stilt.json)
    backbones: str = "resnet50"  # Table 6 backbones to run, comma-separated (vgg19, resnet34, resnet50)
    width: float = 0.0  # backbone channel multiplier (0 = the preset's: teaching 0.25, paper 1.0)
    coattn_init: Literal["attend", "mean"] = "attend"  # co-attention step 1: attend over S (eq. 1-3) or the mean (Algorithm 1)
    rounds: int = 1  # alternations of the co-attention (paper: one 3-step pass)
    dropout: float = 0.5  # dropout before the heads
    awf_lambda: float = 1.0  # AWF lambda of eq. (5) (paper: unspecified)
    awf_lambdas: str = "0,0.1,1,10"  # lambda sweep for the AWF table ("" = none)
    awf_fit_on: Literal["train", "holdout"] = "train"  # AWF scores from the training split (test views) or held-out groups
    svm_c: float = 1.0  # early fusion: linear SVM regularisation C (reading: C = 1)

    PAPER: ClassVar[Mapping[str, Any]] = STILT_PAPER

    def _check(self) -> None:
        self._at_least(1, "rounds")
        self._at_least(0, "width", "awf_lambda")
        if not 0 <= self.dropout < 1:
            self._fail("dropout", "must be in [0, 1)")
        if not self.svm_c > 0:
            self._fail("svm_c", "must be > 0")
        self.backbone_list()
        self.lambda_list()
        if self.awf_fit_on == "holdout" and self.val_fraction <= 0:
            self._fail("awf_fit_on", "'holdout' needs val_fraction > 0 (the held-out training groups)")
        if self.resolved() is not self:
            return  # the paper preset's resolved copy checks the sizes actually used
        for bb in self.backbone_list():
            check_model_input(type(self).__name__, "stilt", self.model_kwargs(bb, streams="both", stil=True),
                              preset=self.preset, clip=input_shapes(self, "both"))

    def backbone_list(self) -> list[str]:
        names = [b.strip() for b in self.backbones.split(",") if b.strip()]
        bad = [b for b in names if b not in BACKBONES]
        if bad or not names:
            raise ValueError(f"STILTParams.backbones: unknown {bad}; choose from {list(BACKBONES)}")
        return names

    def lambda_list(self) -> list[float]:
        try:
            out = [float(x) for x in self.awf_lambdas.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"STILTParams.awf_lambdas must be comma-separated numbers, got {self.awf_lambdas!r}") from None
        if any(v < 0 for v in out):
            raise ValueError(f"STILTParams.awf_lambdas must be >= 0, got {self.awf_lambdas!r}")
        return out

    def model_kwargs(self, backbone: str, *, streams: str, stil: bool) -> dict[str, Any]:
        """``build_model("stilt", ...)`` overrides of one stage."""
        p = self.resolved()
        kw: dict[str, Any] = dict(backbone=backbone, streams=streams, stil=stil, new_length=p.new_length,
                                  coattn_init=p.coattn_init, rounds=p.rounds, dropout=p.dropout)
        if p.width:
            kw["width"] = p.width
        return kw


# ---------------------------------------------------------------------------------------------- steps
def init_from_streams(spatial: nn.Module, temporal: nn.Module) -> dict[str, torch.Tensor]:
    """STILT's stage-2 initialisation: the spatial stream's weights from the RGB-only run and the temporal
    stream's from the flow-only run (same parameter names in every ``streams`` setting)."""
    state = {k: v for k, v in spatial.state_dict().items() if k.startswith("backbones.spatial.")}
    state.update({k: v for k, v in temporal.state_dict().items() if k.startswith("backbones.temporal.")})
    return state


@torch.no_grad()
def collect_features(model: nn.Module, dataset: Any, *, batch_size: int = 8) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``model.features`` of every sample (view-averaged for multi-view test samples) and the labels."""
    model.eval()
    device = next(model.parameters()).device
    keys = tuple(model.input_keys)
    feats: dict[str, list[np.ndarray]] = {}
    labels: list[int] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        inputs = {k: to_device(batch[k], device) for k in keys}
        first = inputs[keys[0]]
        multi = first.ndim == 6
        if multi:
            b, v = first.shape[:2]
            inputs = {k: t.reshape(b * v, *t.shape[2:]) for k, t in inputs.items()}  # [B*V, C, N, H, W]
        out = model.features(inputs)
        for name, f in out.items():
            f = f.float()
            if multi:
                f = f.view(b, v, -1).mean(dim=1)  # [B, D]: the views' mean
            feats.setdefault(name, []).append(f.cpu().numpy())
        labels.extend(int(y) for y in batch["label"])
    return {k: np.concatenate(v) for k, v in feats.items()}, np.asarray(labels)


def _train_in_test_views(p: STILTParams, train: Any) -> Any:
    """The training clips of ``train`` read with the test protocol (views, no augmentation)."""
    full = open_two_stream(p, train=True, modality="both", test_views=True)
    keep = set(train.samples)
    return full.subset([i for i, s in enumerate(full.samples) if s in keep], name=f"{train.name}[test views]")


def _top1(pred: np.ndarray, y: np.ndarray) -> float:
    return round(100.0 * float((pred == y).mean()), 1)


def _scores(result: Any, head: str) -> np.ndarray:
    return result.test.scores[head].numpy()


def run_stilt(p: STILTParams, *, progress: bool = True) -> dict[str, Any]:
    """The STILT pipeline of ``p`` for every backbone; returns (and writes ``out_dir/stilt.json``) the measured
    rows of Tables 4, 5 and 6, the lambda sweep and the fitted AWF weights, with the paper's numbers quoted."""
    eff = p.resolved()
    splits = prepare_two_stream_data(p, modality="both", progress=progress)
    schedule = p.schedule_overrides()
    if p.preset == "paper" and p.milestones == type(p)().milestones and p.epochs == type(p)().epochs:
        step = 5_000 if p.dataset == "hmdb51" else 10_000
        epochs, milestones = iteration_schedule(len(splits.train), eff.batch_size, step_every=step)
        schedule.update(epochs=epochs, milestones=milestones)
    fit_set = splits.val if p.awf_fit_on == "holdout" else _train_in_test_views(p, splits.train)
    y_test = np.asarray([label for _, label in splits.test.samples])
    out: dict[str, Any] = {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(eff),
                           "classes": splits.classes, "chance_top1": round(100 / len(splits.classes), 1),
                           "train_clips": len(splits.train), "test_clips": len(splits.test), "backbones": {}}
    for bb in p.backbone_list():
        t0 = time.perf_counter()
        runs = {}
        for stage, streams, modality in (("spatial", "rgb", "rgb"), ("temporal", "flow", "flow")):
            runs[stage] = train_and_test(p, f"{bb}/{stage}", "stilt", p.model_kwargs(bb, streams=streams, stil=False),
                                         with_modality(splits, modality), resume=True, progress=progress,
                                         test_scores=True, **schedule)
        runs["stil"] = train_and_test(p, f"{bb}/stil", "stilt", p.model_kwargs(bb, streams="both", stil=True), splits,
                                      init=init_from_streams(runs["spatial"].model, runs["temporal"].model),
                                      init_partial=True, resume=True, progress=progress, test_scores=True, **schedule)
        stil = runs["stil"]
        s_sp, s_tp = _scores(runs["spatial"], "logits"), _scores(runs["temporal"], "logits")
        h_sp, h_tp = _scores(stil, "spatial"), _scores(stil, "temporal")
        # AWF (eq. 4-9) fitted on the fit set's head scores (test-view protocol), applied to the test scores
        fit_eval = evaluate(stil.model, fit_set, batch_size=eff.batch_size, return_scores=True,
                            num_classes=len(splits.classes))
        fit_scores = np.stack([fit_eval.scores["spatial"].numpy(), fit_eval.scores["temporal"].numpy()])
        y_fit = np.asarray(fit_eval.targets)
        test_scores = np.stack([h_sp, h_tp])
        weights = fit_awf(fit_scores, y_fit, lam=p.awf_lambda)
        sweep = [{"lambda": lam, "top1": _top1(awf_predict(test_scores, fit_awf(fit_scores, y_fit, lam=lam)), y_test)}
                 for lam in p.lambda_list()]
        # Table 5 early fusion: linear SVM on the concatenated attended features (reading: one-vs-rest, C = svm_c)
        f_fit, yf = collect_features(stil.model, fit_set, batch_size=eff.batch_size)
        f_test, _ = collect_features(stil.model, splits.test, batch_size=eff.batch_size)
        svm_pred = early_fusion_svm(np.concatenate([f_fit["spatial"], f_fit["temporal"]], axis=1), yf,
                                    np.concatenate([f_test["spatial"], f_test["temporal"]], axis=1), c=p.svm_c)
        table4 = {"Spatial": _top1(s_sp.argmax(1), y_test), "Temporal": _top1(s_tp.argmax(1), y_test),
                  "Two-stream": _top1(late_average(s_sp, s_tp).argmax(1), y_test),
                  "Two-stream + STIL": _top1(late_average(h_sp, h_tp).argmax(1), y_test),
                  "Two-stream + STIL + AWF": _top1(awf_predict(test_scores, weights), y_test)}
        table5 = {"late_avg": table4["Two-stream + STIL"], "early_svm": _top1(svm_pred, y_test),
                  "awf": table4["Two-stream + STIL + AWF"]}
        out["backbones"][bb] = {
            "table4": table4, "table5": table5, "lambda_sweep": sweep, "awf_weights": np.asarray(weights).tolist(),
            "stil_heads_top1": {h: round(100 * v, 1) for h, v in stil.test.head_top1.items()},
            "num_params": {k: r.num_params for k, r in runs.items()},
            "train_seconds": {k: round(r.seconds, 1) for k, r in runs.items()},
            "epochs": {k: r.fit.epochs_completed for k, r in runs.items()},
            "seconds": round(time.perf_counter() - t0, 1), "seed": p.seed, "fit_on": p.awf_fit_on,
            "fit_clips": len(fit_set)}
        out.setdefault("models", {})[bb] = {k: r.model for k, r in runs.items()}
    results = {k: v for k, v in out.items() if k != "models"}
    write_json_atomic(Path(p.out_dir) / "stilt.json", results)
    return out


def table_rows(result: Mapping[str, Any], table: Literal["table4", "table5"]) -> list[dict[str, Any]]:
    """Measured rows of ``table`` (one column per backbone run) next to the paper's (labelled "paper ...")."""
    paper = PAPER_TABLE4 if table == "table4" else PAPER_TABLE5
    rows = []
    for row, (ucf, hmdb, kin) in paper.items():
        r: dict[str, Any] = {"row": TABLE5_LABELS.get(row, row) if table == "table5" else row}
        for bb, res in result["backbones"].items():
            r[f"measured {bb} top-1 %"] = res[table][row]
        r.update({"paper UCF101 %": ucf, "paper HMDB51 %": hmdb, "paper Kinetics %": kin})
        rows.append(r)
    return rows


def table6_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table 6 (STIL + AWF per backbone): measured where the backbone was run, with the paper's numbers."""
    rows = []
    for bb, (ucf, hmdb, kin) in PAPER_TABLE6.items():
        res = result["backbones"].get(bb)
        rows.append({"backbone": bb, "measured top-1 %": res["table4"]["Two-stream + STIL + AWF"] if res else None,
                     "params (STIL stage)": res["num_params"]["stil"] if res else None,
                     "paper UCF101 %": ucf, "paper HMDB51 %": hmdb, "paper Kinetics %": kin})
    return rows
