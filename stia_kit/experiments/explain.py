"""The explainability experiment (notebook 07): where do models of three families look, and do the
explanations find the actor?

Trains (or, when its run folder is complete, loads) one small model per family on SynthActions -- the
frame-level 2D baseline R2D-18, the 3D-convolution R3D-18 and MSF-R3D with FSAM attention (paper 003) by
default -- then explains their test clips with the methods of :mod:`stia_kit.explain.attribution`, records
their attention (:mod:`stia_kit.explain.recorder`) and scores both against the actor masks
(:mod:`stia_kit.explain.evaluate`: pointing game, energy in mask, rank accuracy, phase mass, deletion AUC,
chance levels, cascading-randomisation sanity check).

This module holds only the notebook's own fields and steps; data, recipe, run folders and training are the
shared ones of :mod:`stia_kit.experiments.common`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from ..explain.attribution import METHODS, ExplainConfig
from ..explain.evaluate import ExplainEvalConfig, ExplainEvalResult, evaluate_explanations, write_tables
from ..fileio import write_json_atomic
from .common import (DataFields, DataSplits, PresetFields, RecipeFields, RunFields, RunResult, SynthFields,
                     check_model_input, clip_shape, prepare_data, train_and_test)

#: name -> (registry model, model overrides, family shown in the notebook)
ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "r2d_18": ("r2d_18", {}, "2D baseline: ResNet-18 per frame, frames averaged"),
    "r3d_18": ("r3d_18", {}, "3D convolutions: R3D-18"),
    "msf_r3d_fsam": ("msf_r3d", {"attention": "fsam"}, "3D attention: MSF-R3D + FSAM (paper 003)"),
    "st_manet": ("st_manet", {}, "3D attention: ST-MANet (paper 002)"),
    "stin": ("stin", {}, "dual pathway: STIN + CDAI (paper 000)"),
}


@dataclass(frozen=True)
class ExplainParams(RunFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of notebook 07 (papermill). Defaults = the teaching preset; ``preset="paper"`` uses
    R3D-18's published clip geometry (16 x 112^2) for every field left at its default."""

    models: str = "r2d_18,r3d_18,msf_r3d_fsam"  # models to train / load, comma-separated (see ROWS)
    epochs: int = 8  # training epochs per model (teaching: a few minutes each)
    methods: str = "saliency,integrated_gradients,gradcam,occlusion"  # attribution methods of the table
    eval_clips: int = 11  # test clips of the localisation table (round-robin over the classes; 0 = all)
    sanity_clips: int = 1  # clips of the cascading-randomisation sanity check (0 = skip)
    sanity_layers: int = 3  # top parameterised layers randomised (cumulatively)
    ig_steps: int = 16  # Integrated Gradients steps
    occlusion_window: int = 8  # occlusion: window side in pixels (2 frames deep), stride = window (non-overlapping)
    tolerance: int = 2  # pointing game: mask dilation in pixels
    explain_memory_mb: int = 1024  # memory budget of the batched attribution passes (MiB)
    out_dir: str = "runs/explain"  # run folders (one per model), explain_eval_<model>.json / .md

    PAPER: ClassVar[Mapping[str, Any]] = {"num_frames": 16, "stride": 2, "short_side": 128, "crop_size": 112,
                                          "epochs": 45, "occlusion_window": 16}

    def _check(self) -> None:
        self._at_least(0, "eval_clips", "sanity_clips", "sanity_layers", "tolerance")
        self._at_least(1, "ig_steps", "explain_memory_mb", "occlusion_window")
        self.model_list()
        self.method_list()
        if self.resolved() is not self:
            return
        for row in self.model_list():
            model, kwargs = self.model_kwargs(row)
            check_model_input(type(self).__name__, model, kwargs, preset=self.preset, clip=clip_shape(self))

    def model_list(self) -> list[str]:
        names = [m.strip() for m in self.models.split(",") if m.strip()]
        bad = [m for m in names if m not in ROWS]
        if bad or not names:
            raise ValueError(f"ExplainParams.models: unknown {bad or 'empty list'}; choose from {list(ROWS)}")
        return names

    def method_list(self) -> tuple[str, ...]:
        names = tuple(m.strip() for m in self.methods.split(",") if m.strip())
        bad = [m for m in names if m not in METHODS]
        if bad or not names:
            raise ValueError(f"ExplainParams.methods: unknown {bad or 'empty list'}; choose from {list(METHODS)}")
        return names

    def model_kwargs(self, row: str) -> tuple[str, dict[str, Any]]:
        model, over, _ = ROWS[row]
        return model, dict(over)

    def explain_config(self, method: str = "integrated_gradients") -> ExplainConfig:
        """The attribution budgets of these parameters."""
        from ..explain.clips import black_value, run_data_config
        p = self.resolved()
        window = (2, p.occlusion_window, p.occlusion_window)
        return ExplainConfig(method=method, n_steps=p.ig_steps, memory_mb=p.explain_memory_mb, seed=p.seed,
                             window=window, stride=window, black_value=black_value(run_data_config(p)))

    def eval_config(self) -> ExplainEvalConfig:
        """The localisation-table settings of these parameters."""
        return ExplainEvalConfig(methods=self.method_list(), max_clips=self.eval_clips, tolerance=self.tolerance,
                                 sanity_clips=self.sanity_clips, sanity_layers=self.sanity_layers,
                                 seed=self.seed, explain=self.explain_config())


def train_models(p: ExplainParams, splits: DataSplits, *, progress: bool = True) -> dict[str, RunResult]:
    """Train (or load: a finished run folder resumes with nothing left to do) every model of ``p``."""
    out = {}
    for row in p.model_list():
        model, kwargs = p.model_kwargs(row)
        out[row] = train_and_test(p, row, model, kwargs, splits, resume=True, progress=progress)
    return out


def localisation_tables(p: ExplainParams, runs: Mapping[str, RunResult], *,
                        progress: Any = None) -> dict[str, ExplainEvalResult]:
    """The method x metric table of every run (``explain_eval_<row>.json`` / ``.md`` in ``out_dir``) and a
    summary ``explain_summary.json``."""
    results: dict[str, ExplainEvalResult] = {}
    for row, run in runs.items():
        res = evaluate_explanations(run.run_dir, p.eval_config(), progress=progress)
        write_tables(res, p.out_dir, stem=f"explain_eval_{row}")
        results[row] = res
    write_json_atomic(Path(p.out_dir) / "explain_summary.json",
                      {"params": dataclasses.asdict(p), "resolved": dataclasses.asdict(p.resolved()),
                       "models": {row: {"rows": r.rows, "chance": r.chance, "sanity": r.sanity,
                                        "sanity_passed": r.sanity_passed, "clips": r.clips, "accuracy": r.accuracy,
                                        "seconds": r.seconds, "test_top1": runs[row].test.top1}
                                  for row, r in results.items()}})
    return results


def pair_clips(splits: DataSplits, first: str = "Sit", second: str = "Stand") -> tuple[int, int]:
    """Test-set indices of one ``first`` and one ``second`` clip of the same actor group when there is one
    (SynthActions' sit / stand are the same motion played in opposite directions)."""
    from .common import group_of
    classes = splits.test.classes
    if first not in classes or second not in classes:
        raise ValueError(f"classes {first!r} / {second!r} not in the test split ({classes})")
    a, b = classes.index(first), classes.index(second)
    firsts = [(i, group_of(p)) for i, (p, y) in enumerate(splits.test.samples) if y == a]
    seconds = {group_of(p): i for i, (p, y) in enumerate(splits.test.samples) if y == b}
    for i, g in firsts:
        if g in seconds:
            return i, seconds[g]
    if not firsts or not seconds:
        raise ValueError(f"the test split has no {first!r} or no {second!r} clip")
    return firsts[0][0], next(iter(seconds.values()))


def format_table(results: Mapping[str, ExplainEvalResult]) -> str:
    """One markdown table per model (each with its chance levels and sanity check)."""
    return "\n".join(f"### {row}\n\n{res.markdown()}" for row, res in results.items())


def predict(model: Any, clip: Any) -> int:
    """The class index ``model`` predicts for one clip ``[C, T, H, W]`` (eval mode, no gradients)."""
    import torch
    from ..explain.attribution import model_logits
    model.eval()
    with torch.no_grad():
        return int(model_logits(model, clip[None])[0].argmax())


def phase_summary(curves: Mapping[str, np.ndarray], active: np.ndarray) -> dict[str, float]:
    """Share of each per-frame importance curve inside the action's active frames (chance = their share)."""
    out = {name: float(np.asarray(c)[active].sum() / max(float(np.asarray(c).sum()), 1e-12)) for name, c in curves.items()}
    out["chance"] = float(np.mean(active))
    return out
