"""``stia explain-eval RUN``: how well each explanation method localises the actor, for a run trained on
SynthActions, as one table of method x metric with chance levels and the sanity check (issue 11).

For every test clip (up to ``max_clips``, spread over the classes) the clip goes through the run's own test
pipeline (:mod:`.clips`) and its actor mask (SynthActions' ``.npz``) through the same indices and crop.
Each method explains the clip's true class; the measures of :mod:`.measures` compare the map with the mask:

- pointing game (argmax inside the mask dilated by ``tolerance`` pixels; random tie-break), chance = the
  dilated mask's share of the clip;
- energy in mask (share of positive relevance inside the mask), chance = the mask's share;
- relevance rank accuracy (share of the top-K positions inside the mask, K = mask size), chance = the mask's share;
- phase mass (share of relevance in the frames where the action happens), chance = those frames' share;
- deletion AUC (target probability while the most relevant positions are removed; lower is better), chance =
  the same curve for a random map.

The sanity check (Adebayo et al. 2018, cascading randomisation from the top layer, on ``sanity_clips``
clips) reports the Spearman similarity of each method's map to the original after randomising the
``sanity_layers`` top parameterised layers; a method "passes" when the mean similarity is below
``sanity_threshold`` (0.5, a choice: the paper judges by eye; a map that stays similar once the weights are
random does not explain the trained model).

Attention maps of the model (kinds ``spatiotemporal`` and ``spatial_matrix`` of the recorder) are scored as
extra rows named ``attention:<module>`` (upsampled to the clip; ``spatial_matrix``: the attention each
position receives, averaged over queries, the same for every frame).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..fileio import write_json_atomic, write_text_atomic
from ..synth import load_masks
from . import measures as M
from .attribution import METHODS, ExplainConfig, attribute, model_logits
from .clips import black_value, mask_clip, prepare_clip, run_data_config, run_params
from .recorder import AttentionRecorder

DEFAULT_METHODS = ("saliency", "integrated_gradients", "gradcam", "occlusion")
METRICS = ("pointing", "energy", "rank", "phase", "deletion_auc")


@dataclass(frozen=True)
class ExplainEvalConfig:
    """Settings of :func:`evaluate_explanations` (the ``stia explain-eval`` options)."""

    methods: tuple[str, ...] = DEFAULT_METHODS  # attribution methods (stia_kit.explain.attribution.METHODS)
    attention: bool = True  # also score the model's spatio-temporal attention maps (rows "attention:<module>")
    max_clips: int = 22  # test clips used (round-robin over classes); 0 = all
    tolerance: int = 2  # pointing game: mask dilation in pixels (at the model's input resolution)
    deletion_steps: int = 8  # deletion curve steps (0 = skip the deletion AUC)
    sanity_clips: int = 2  # clips for the cascading-randomisation sanity check (0 = skip it)
    sanity_layers: int = 3  # top parameterised layers randomised, cumulatively
    sanity_threshold: float = 0.5  # pass: mean Spearman similarity after randomisation below this
    checkpoint: str = "best.pt"  # checkpoint of the run (falls back to last.pt when absent)
    data_root: str = ""  # override the run's data_root ("" = as trained)
    seed: int = 0  # tie-breaks and random baselines
    explain: ExplainConfig = field(default_factory=ExplainConfig)  # method budgets (steps, windows, memory)

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"ExplainEvalConfig.methods: unknown {bad or 'empty list'}; choose from {list(METHODS)}")
        for name in ("max_clips", "tolerance", "deletion_steps", "sanity_clips", "sanity_layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"ExplainEvalConfig.{name} must be a non-negative int, got {v!r}")
        if not 0.0 < self.sanity_threshold <= 1.0:
            raise ValueError(f"ExplainEvalConfig.sanity_threshold must be in (0, 1], got {self.sanity_threshold}")


@dataclass
class ExplainEvalResult:
    """The table (``rows[method][metric] = mean``, ``chance[metric]``), sanity similarities, per-clip values."""

    run: str
    model: str
    clips: int
    accuracy: float
    rows: dict[str, dict[str, float]]
    chance: dict[str, float]
    sanity: dict[str, float]
    sanity_passed: dict[str, bool | None]  # None: the similarity is undefined (a constant map)
    seconds: dict[str, float]
    per_clip: list[dict[str, Any]]
    settings: dict[str, Any]

    def markdown(self) -> str:
        """The table as markdown: one row per method, each metric beside its chance level."""
        head = ["method", *[f"{m} (chance)" for m in METRICS], "sanity rho", "s / clip"]
        lines = [f"Localisation of the true class on {self.clips} SynthActions test clips, run `{self.run}` "
                 f"({self.model}, clip accuracy {self.accuracy:.3f}); higher is better except deletion AUC; "
                 f"sanity rho = Spearman similarity after randomising the top "
                 f"{self.settings['sanity_layers']} layers (pass < {self.settings['sanity_threshold']}).", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, row in self.rows.items():
            cells = [method] + [f"{_fmt(row.get(m))} ({_fmt(self.chance.get(m))})" for m in METRICS]
            rho, passed = self.sanity.get(method), self.sanity_passed.get(method)
            verdict = {True: "pass", False: "FAIL", None: "undefined: constant map"}[passed]
            cells.append("n/a" if rho is None else f"{_fmt(rho)} ({verdict})")
            cells.append(f"{self.seconds[method]:.2f}" if method in self.seconds else "n/a")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def pick_clips(samples: Sequence[tuple[Path, int]], max_clips: int) -> list[int]:
    """Indices of up to ``max_clips`` samples taken round-robin over the classes (all when 0)."""
    if max_clips == 0 or max_clips >= len(samples):
        return list(range(len(samples)))
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    order: list[int] = []
    queues = [list(v) for _, v in sorted(by_class.items())]
    while len(order) < max_clips and any(queues):
        for q in queues:
            if q and len(order) < max_clips:
                order.append(q.pop(0))
    return sorted(order)


def attention_saliency(model: nn.Module, x: Tensor) -> dict[str, np.ndarray]:
    """``{"attention:<module>": [T, H, W]}`` for the spatio-temporal attention maps of one clip ``x``
    ``[1, C, T, H, W]``, upsampled (trilinear) to the clip's size (module docstring)."""
    size = tuple(x.shape[2:])
    with AttentionRecorder(model) as rec, torch.no_grad():
        model(x)
    out: dict[str, np.ndarray] = {}
    for label, kind, t in rec.flat():
        if kind == "spatiotemporal":  # [1, t, h, w]
            vol = t[None].float()
        elif kind == "spatial_matrix":  # [HW, HW]: attention received per key position
            hw = t.shape[-1]
            side = int(round(math.sqrt(hw)))
            if side * side != hw:
                continue
            vol = t.mean(0).reshape(1, 1, 1, side, side).float()
        else:
            continue
        if vol.dim() == 4:
            vol = vol[None]
        out[f"attention:{label}"] = F.interpolate(vol, size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
    return out


def evaluate_explanations(run_dir: str | Path, config: ExplainEvalConfig | None = None, *,
                          progress: Callable[[str], None] | None = None) -> ExplainEvalResult:
    """The localisation table of run ``run_dir`` (module docstring). ``progress(text)`` gets one line per clip."""
    from ..experiments.runs import load_run, read_run_info
    cfg = config or ExplainEvalConfig()
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    ckpt = cfg.checkpoint if (run_dir / cfg.checkpoint).is_file() else "last.pt"
    model, info = load_run(run_dir, checkpoint=ckpt)
    if getattr(model, "input_keys", None):
        raise ValueError(f"{run_dir}: {info['model']} takes {model.input_keys} frame folders; explain-eval scores "
                         "clip models trained on SynthActions videos (masks are aligned with video frames)")
    params = run_params(info, **({"data_root": cfg.data_root} if cfg.data_root else {}))
    if getattr(params, "dataset", "synth") != "synth":
        raise ValueError(f"{run_dir}: trained on {params.dataset!r}; explain-eval needs SynthActions (actor masks)")
    from ..experiments.common import open_split
    dcfg = run_data_config(params)
    base = cfg.explain if cfg.explain.black_value else dataclasses.replace(cfg.explain, black_value=black_value(dcfg))
    test = open_split(params, train=False, config=dcfg)
    chosen = pick_clips(test.samples, cfg.max_clips)
    rng = np.random.default_rng(cfg.seed)
    methods: list[str] = list(cfg.methods)
    values: dict[str, dict[str, list[float]]] = {}
    chance: dict[str, list[float]] = {m: [] for m in METRICS}
    seconds: dict[str, list[float]] = {}
    per_clip: list[dict[str, Any]] = []
    correct = 0
    sanity: dict[str, list[float]] = {}
    for n_done, i in enumerate(chosen):
        path, label = test.samples[i]
        item = prepare_clip(path, dcfg)
        masks, _, meta = load_masks(path)
        mask = mask_clip(masks, item.indices, dcfg)
        active = M.action_phase(meta, item.num_video_frames, item.indices)
        x = item.clip[None]
        with torch.no_grad():
            probs = torch.softmax(model_logits(model, x), -1)[0]
        correct += int(probs.argmax()) == label
        maps: dict[str, np.ndarray] = {}
        for method in methods:
            t0 = time.perf_counter()
            att = attribute(model, x, target=label, method=method, config=dataclasses.replace(base, method=method),
                            verbose=False)
            maps[method] = att.maps["video"][0].numpy()
            seconds.setdefault(method, []).append(time.perf_counter() - t0)
        if cfg.attention:
            for name, sal in attention_saliency(model, x).items():
                maps[name] = sal
        chance["pointing"].append(M.chance_pointing(mask, tolerance=cfg.tolerance))
        chance["energy"].append(M.chance_energy(mask))
        chance["rank"].append(M.chance_energy(mask))
        chance["phase"].append(float(active.mean()))
        clip_row: dict[str, Any] = {"path": str(path), "label": int(label), "predicted": int(probs.argmax()),
                                    "target_prob": float(probs[label]), "methods": {}}
        if cfg.deletion_steps:
            random_map = rng.random(mask.shape).astype(np.float32)
            chance["deletion_auc"].append(M.deletion_curve(model, x, random_map, label, steps=cfg.deletion_steps).auc)
        for method, sal in maps.items():
            row = {"pointing": M.pointing_game(sal, mask, tolerance=cfg.tolerance, rng=rng),
                   "energy": M.energy_in_mask(sal, mask),
                   "rank": M.relevance_rank_accuracy(sal, mask, rng=rng),
                   "phase": M.phase_mass(sal, active)}
            if cfg.deletion_steps:
                row["deletion_auc"] = M.deletion_curve(model, x, sal, label, steps=cfg.deletion_steps).auc
            clip_row["methods"][method] = row
            for k, v in row.items():
                values.setdefault(method, {}).setdefault(k, []).append(float(v))
        if n_done < cfg.sanity_clips and cfg.sanity_layers:
            layers = M.forward_order(model, x)[::-1][:cfg.sanity_layers]  # the top parameterised layers
            for method in methods:
                def explain(m: nn.Module, inp: Tensor, target: int, method: str = method) -> np.ndarray:
                    return attribute(m, inp, target=target, method=method,
                                     config=dataclasses.replace(base, method=method), verbose=False
                                     ).maps["video"][0].numpy()
                steps = M.sanity_check(model, x, label, explain, layers=layers, seed=cfg.seed)
                sanity.setdefault(method, []).append(float(steps[-1].spearman))
            clip_row["sanity_layers"] = layers
        per_clip.append(clip_row)
        if progress is not None:
            progress(f"clip {n_done + 1}/{len(chosen)}: {path.name}")
    rows = {m: {k: _nanmean(v) for k, v in ms.items()} for m, ms in values.items()}
    sanity_mean = {m: _nanmean(v) for m, v in sanity.items()}
    settings = {k: v for k, v in dataclasses.asdict(cfg).items()}
    settings["checkpoint"] = ckpt
    return ExplainEvalResult(
        run=str(run_dir), model=str(info["model"]), clips=len(chosen), accuracy=correct / max(len(chosen), 1),
        rows=rows, chance={k: _nanmean(v) for k, v in chance.items() if v},
        sanity=sanity_mean, sanity_passed={m: (bool(v < cfg.sanity_threshold) if math.isfinite(v) else None)
                                       for m, v in sanity_mean.items()},
        seconds={m: float(np.mean(v)) for m, v in seconds.items()}, per_clip=per_clip, settings=settings)


def _nanmean(v: Sequence[float]) -> float:
    a = np.asarray(v, dtype=float)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def write_tables(result: ExplainEvalResult, out_dir: str | Path, *, stem: str = "explain_eval") -> tuple[Path, Path]:
    """Write ``<stem>.json`` (everything) and ``<stem>.md`` (the table) into ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    js = write_json_atomic(out_dir / f"{stem}.json", dataclasses.asdict(result))
    md = write_text_atomic(out_dir / f"{stem}.md", result.markdown())
    return js, md
