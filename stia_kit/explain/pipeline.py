"""``stia explain VIDEO --run RUN``: one clip, one trained run, every chosen method and every attention module
in one self-contained HTML report (the CLI and notebook 07 call :func:`explain_video`)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from . import measures as M
from .attribution import ExplainConfig, attribute, estimate_cost, model_logits
from .clips import ExplainClip, black_value, mask_clip, prepare_clip, run_data_config, run_params
from .recorder import AttentionRecorder


@dataclass
class VideoExplanation:
    """Everything the report shows for one clip.

    Shape:
        ``maps[method]`` float ``[T, h, w]`` (at the model's input resolution); ``item.frames`` uint8
        ``[T, h, w, 3]``; ``mask`` bool ``[T, h, w]`` when the video has SynthActions masks, else None.
    """

    item: ExplainClip
    classes: list[str]
    probs: np.ndarray
    label: int | None
    target: int
    maps: dict[str, np.ndarray]
    attention: list[tuple[str, str, np.ndarray]]
    mask: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    localisation: dict[str, dict[str, float]] = field(default_factory=dict)


def _label_of(video: Path, classes: Sequence[str]) -> int | None:
    """The class folder of ``video`` when it is one of ``classes`` (UCF101 / SynthActions layout)."""
    return list(classes).index(video.parent.name) if video.parent.name in classes else None


def explain_loaded(model: nn.Module, info: dict[str, Any], video: str | Path, *,
                   methods: Sequence[str] = ("saliency", "gradcam", "integrated_gradients"),
                   config: ExplainConfig | None = None, target: int | None = None,
                   data_root: str = "", verbose: bool = True) -> VideoExplanation:
    """Explain ``video`` with the already loaded run model (``info`` = its run.json)."""
    video = Path(video)
    if getattr(model, "input_keys", None):
        raise ValueError(f"{info['model']} takes frame folders {model.input_keys}; stia explain takes clip models "
                         "(use stia_kit.explain.attribute on a TwoStreamDataset sample for two-stream runs)")
    params = run_params(info, **({"data_root": data_root} if data_root else {}))
    dcfg = run_data_config(params)
    item = prepare_clip(video, dcfg)
    x = item.clip[None]
    classes = list(info["classes"])
    with torch.no_grad():
        probs = torch.softmax(model_logits(model, x), -1)[0].numpy()
    label = _label_of(video, classes)
    tgt = int(probs.argmax()) if target is None else int(target)
    base = config or ExplainConfig()
    if not base.black_value:  # IG's black baseline: black pixels of this run's normalisation
        base = dataclasses.replace(base, black_value=black_value(dcfg))
    notes = [f"run model {info['model']} (preset {info.get('preset')}, {info.get('model_kwargs')}); clip "
             f"{tuple(item.clip.shape)} from frames {item.indices.tolist()} of {item.num_video_frames}; explained "
             f"class: {classes[tgt]} ({'predicted' if target is None else 'requested'})"]
    maps: dict[str, np.ndarray] = {}
    for method in methods:
        cfg = dataclasses.replace(base, method=method)
        t0 = time.perf_counter()
        att = attribute(model, x, target=tgt, method=method, config=cfg, verbose=verbose)
        seconds = time.perf_counter() - t0
        maps[method] = att.maps["video"][0].numpy()
        estimate = att.meta.get("estimate") or estimate_cost(model, x, method, cfg).text  # verbose runs made one
        notes.append(f"{method}: {seconds:.2f} s (estimate was: {estimate}); {att.meta}")
    with AttentionRecorder(model) as rec, torch.no_grad():
        model(x)
    attention = [(label_, kind, t.numpy()) for label_, kind, t in rec.flat()]
    mask = None
    localisation: dict[str, dict[str, float]] = {}
    npz = video.with_suffix(".npz")
    if npz.is_file():
        from ..synth import load_masks
        masks, _, meta = load_masks(npz)
        mask = mask_clip(masks, item.indices, dcfg)
        active = M.action_phase(meta, item.num_video_frames, item.indices)
        for method, sal in maps.items():
            localisation[method] = {"pointing": M.pointing_game(sal, mask, tolerance=2),
                                    "energy": M.energy_in_mask(sal, mask), "energy_chance": M.chance_energy(mask),
                                    "phase": M.phase_mass(sal, active), "phase_chance": float(active.mean())}
    return VideoExplanation(item, classes, probs, label, tgt, maps, attention, mask, notes, localisation)


def explain_video(run_dir: str | Path, video: str | Path, out: str | Path, *,
                  methods: Sequence[str] = ("saliency", "gradcam", "integrated_gradients"),
                  config: ExplainConfig | None = None, target: int | None = None, checkpoint: str = "best.pt",
                  data_root: str = "", verbose: bool = True) -> tuple[Path, VideoExplanation]:
    """Load run ``run_dir``, explain ``video`` and write the HTML report ``out``; returns (path, explanation)."""
    from ..experiments.runs import load_run
    from .report import write_report
    run_dir = Path(run_dir)
    ckpt = checkpoint if (run_dir / checkpoint).is_file() else "last.pt"
    model, info = load_run(run_dir, checkpoint=ckpt)
    exp = explain_loaded(model, info, video, methods=methods, config=config, target=target, data_root=data_root,
                         verbose=verbose)
    notes = [f"run {run_dir} ({ckpt})", *exp.notes]
    for method, row in exp.localisation.items():
        notes.append(f"{method} vs the actor mask: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    path = write_report(out, title=f"{Path(video).name}: {info['model']} explained", clip=exp.item.frames,
                        classes=exp.classes, probs=exp.probs, label=exp.label, maps=exp.maps,
                        attention=exp.attention, notes=notes)
    return path, exp
