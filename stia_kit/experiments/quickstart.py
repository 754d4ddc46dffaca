"""The quickstart experiment (notebook 00, ``stia train`` / ``stia eval`` / ``stia quickstart``).

Train a 3D model (R3D-18) and a frame-level 2D baseline (R2D-18: the same ResNet-18 with every temporal
kernel 1, frames averaged) on the same data and compare them. On SynthActions the gap is the point: its
classes come in pairs that a single frame cannot separate (walk/run, sit/stand, ...).

This module holds only the quickstart's own fields and steps; data, recipe, run folders and the
train-and-test step are the shared ones of :mod:`stia_kit.experiments.common`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from ..fileio import write_json_atomic
from ..models import list_models
from .common import (DataFields, DataSplits, PresetFields, RecipeFields, RunFields, RunResult, SynthFields,
                     check_model_input, clip_shape, flat_history, prepare_data, train_and_test)
from .runs import load_run

__all__ = ["QuickstartParams", "model_kwargs", "prepare_data", "train_model", "run_quickstart", "write_metrics",
           "load_run", "flat_history", "RunResult"]


@dataclass(frozen=True)
class QuickstartParams(RunFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of the quickstart (the papermill parameters of notebook 00 and the CLI options)."""

    model: str = "r3d_18"  # the 3D model (registry name)
    baseline: str = "r2d_18"  # frame-level 2D baseline trained alongside ("" = none)
    width: int = 16  # channels of the first ResNet stage (paper: 64)
    out_dir: str = "runs/quickstart"  # run folder (checkpoints, metrics.jsonl, metrics.json)

    #: preset="paper": R3D-18's published width and clip geometry (Tran et al. 2018: 16 x 112^2 clips).
    PAPER: ClassVar[Mapping[str, Any]] = {"width": 64, "num_frames": 16, "stride": 2, "short_side": 128,
                                          "crop_size": 112}

    def _check(self) -> None:
        self._at_least(1, "width")
        for field in ("model", "baseline"):
            name = getattr(self, field)
            if field == "baseline" and not name:
                continue
            if name not in list_models():
                self._fail(field, f"must be a registered model ({', '.join(list_models())})")
        if self.resolved() is not self:
            return  # the paper preset's resolved copy runs the model check on the sizes actually used
        for name in self.model_names():
            check_model_input(type(self).__name__, name, model_kwargs(name, self.width), preset=self.preset,
                              clip=clip_shape(self))

    def model_names(self) -> list[str]:
        """The models this run trains, in order."""
        return [self.model] + ([self.baseline] if self.baseline else [])


def model_kwargs(name: str, width: int) -> dict[str, Any]:
    """The width keyword of the model family (ResNets and SlowFast/STIN take ``width``, C3D ``width_mult``)."""
    return {"width_mult": width / 64} if name == "c3d" else {"width": width}


def train_model(name: str, p: QuickstartParams, splits: DataSplits, *, progress: bool = True) -> RunResult:
    """Train registry model ``name`` into ``out_dir/name`` (resuming an interrupted run) and test it."""
    return train_and_test(p, name, name, model_kwargs(name, p.resolved().width), splits, progress=progress)


def write_metrics(path: str | os.PathLike[str], p: QuickstartParams, classes: list[str],
                  runs: list[RunResult]) -> Path:
    """Write the quickstart's metrics JSON (atomically) and return its path."""
    payload = {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(p.resolved()), "classes": classes,
               "chance_top1": 1.0 / len(classes), "models": {r.name: r.summary() for r in runs}}
    return write_json_atomic(path, payload)


def run_quickstart(p: QuickstartParams, *, progress: bool = True) -> tuple[list[RunResult], Path]:
    """Prepare data, train ``p.model`` and ``p.baseline``, write ``out_dir/metrics.json``."""
    splits = prepare_data(p, progress=progress)
    runs = [train_model(n, p, splits, progress=progress) for n in p.model_names()]
    return runs, write_metrics(Path(p.out_dir) / "metrics.json", p, splits.classes, runs)
