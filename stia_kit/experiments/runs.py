"""Run folders: what a trained model needs to be rebuilt later, written once, read by every tool.

A run folder (``out_dir/<name>``) holds ``run.json`` (written by :func:`new_run`), the training engine's
``metrics.jsonl`` / ``last.pt`` / ``best.pt``, and whatever the experiment writes next to them. ``run.json``::

    {"model": "r3d_18", "preset": "teaching", "model_kwargs": {"width": 16}, "num_classes": 11,
     "classes": [...], "params": {...the experiment's parameters...}, "params_class": "QuickstartParams"}

:func:`load_run` rebuilds the model from it and loads a checkpoint with ``weights_only=True``; ``stia eval``,
notebook 06 (``recogniser_run``) and the course's graders use it.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..fileio import write_json_atomic
from ..models import build_model
from ..train import load_checkpoint

RUN_FILE = "run.json"


def new_run(run_dir: str | os.PathLike[str], model: str, classes: list[str], *, preset: str,
            model_kwargs: Mapping[str, Any], params: Any = None, seed: int = 0) -> nn.Module:
    """Build registry model ``model`` (after ``torch.manual_seed(seed)``) and record in ``run_dir/run.json``
    what :func:`load_run` needs. ``params`` (a params dataclass) is stored for reference."""
    run_dir = Path(run_dir)
    info = {"model": model, "preset": preset, "model_kwargs": dict(model_kwargs), "num_classes": len(classes),
            "classes": list(classes),
            "params": dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params,
            "params_class": type(params).__name__ if dataclasses.is_dataclass(params) else None}
    write_json_atomic(run_dir / RUN_FILE, info)
    torch.manual_seed(seed)
    return build_model(model, len(classes), preset=preset, **dict(model_kwargs))


def read_run_info(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``run_dir/run.json`` as a dict; a clear error when the folder is not a run folder."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run folder (written by stia train, the "
                                "quickstart or a notebook's experiment)")
    info = json.loads(path.read_text())
    missing = [k for k in ("model", "model_kwargs", "num_classes", "classes") if k not in info]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    return info


def load_run(run_dir: str | os.PathLike[str], *, checkpoint: str = "last.pt") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a run folder (``run.json`` + ``checkpoint``, loaded with weights_only=True).

    Returns ``(model in eval mode, run info)``.
    """
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    ckpt = run_dir / checkpoint
    if not ckpt.is_file():
        have = sorted(p.name for p in run_dir.glob("*.pt"))
        raise FileNotFoundError(f"{ckpt} not found (checkpoints in {run_dir}: {have or 'none'})")
    model = build_model(info["model"], info["num_classes"], preset=info.get("preset", "paper"), **info["model_kwargs"])
    model.load_state_dict(load_checkpoint(ckpt)["model"])
    return model.eval(), info
