"""The ARID before/after-enhancement experiment (notebook 06, ``stia arid-eval``).

The dual-pathway paper (STIN + CDAI, section 2.3.5, Table 5) trains its recogniser on HMDB51, tests it on
11 ARID classes of dark videos, and reports per-class accuracy before and after a curve-estimation
enhancement network (MDIFE-Net; average 60.3 % -> 83.2 %). This module runs the same experiment with the public
member of that family (Zero-DCE / Zero-DCE++) and classical baselines:

1. data: SynthActions clean (UCF101 layout, ``data_root``) and SynthActions-dark (ARID layout,
   ``dark_root``, same seed, so the dark clips are darkened versions of the clean ones and the clean ground
   truth sits under ``dark_root/clean/``); or a real HMDB51/UCF101 root and a real ARID root;
2. a recogniser trained on clean data;
3. curve models trained zero-reference on dark training frames (the four non-reference losses);
4. the recogniser evaluated on the dark test split with each enhancement applied as a transform on the
   decoded frames *before* normalisation (:func:`with_enhancement`);
5. enhancement quality on dark test clips against the clean ground truth (PSNR, SSIM, brightness, flicker);
6. optionally, a recogniser trained on enhanced dark data (the ARID authors' second setting).

Class mapping: ARID has 11 classes, HMDB51 51 (all 11 ARID names exist in HMDB51). As in the paper the
evaluation is restricted to the 11 ARID classes: each ARID class is mapped to one recogniser class (by
case-insensitive name, or ``class_map="Drink:drink,..."``) and the prediction is the arg-max over the
mapped classes only (:class:`ClassSubset`). For SynthActions the names coincide, so the map is the identity.

Everything here is library code; the notebook and the CLI only call it.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..data import VideoDataset, read_frames
from ..data import num_frames as video_num_frames
from ..enhance import (
    CurveEnhancer,
    DarkFrameDataset,
    EnhanceTrainConfig,
    ENHANCERS,
    EnhanceTransform,
    Enhancer,
    ZeroDCE,
    ZeroDCEPP,
    build_enhancer,
    flicker,
    mean_brightness,
    psnr,
    ssim,
    train_curve_model,
)
from ..fileio import write_json_atomic
from ..models import list_models
from ..train import EvalResult, FitResult, evaluate
from ..synth import generate_synth_actions
from .common import (DataFields, DataSplits, PresetFields, RecipeFields, RunFields, SynthFields, check_model_input,
                     clip_shape, open_split, synth_config, synth_workers, train_and_test)
from .dual_pathway import STIN_PAPER
from .quickstart import model_kwargs
from .runs import load_run

logger = logging.getLogger("stia_kit.experiments.lowlight")

#: Every enhancement method the experiment knows, in table order ("none" = the dark input as is).
METHODS: tuple[str, ...] = ("none", *(m for m in ENHANCERS.names() if m != "none"))  # the enhancer registry
CURVE_METHODS: tuple[str, ...] = ("zero_dce", "zero_dce_pp")
CLEAN_ROW = "clean (ground truth)"  # the reference row of the enhancement-quality table

#: The paper's Table 5 (section 2.3.5): ARID accuracy in %, (before, after) enhancement, all 11 classes and
#: the average, quoted for comparison only (HMDB51-trained STIN on 12 outdoor clips per class).
PAPER_TABLE5: dict[str, tuple[float, float]] = {
    "drink": (61.5, 84.3), "jump": (62.3, 86.5), "pick": (45.1, 79.8), "pour": (35.6, 63.6),
    "push": (42.3, 76.9), "run": (87.6, 98.6), "sit": (35.1, 62.1), "stand": (41.9, 75.3),
    "turn": (75.3, 91.2), "walk": (89.6, 99.5), "wave": (87.2, 97.5), "average": (60.3, 83.2),
}


# ---------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class LowLightParams(RunFields, RecipeFields, SynthFields, DataFields, PresetFields):
    """Flat parameters of the ARID experiment (the papermill parameters of notebook 06 and `stia arid-eval`).

    ``dataset`` / ``data_root`` are the recogniser's (clean) training data; ``dark_root`` the ARID-layout
    dark data. ``preset="paper"``: STIN at Table 1's sizes with the paper's recipe (section 2.3) as the
    recogniser, and the official Zero-DCE learning rate.
    """

    data_root: str = "data/synth_clean"  # recogniser training data root, or where SynthActions clean is generated
    out_dir: str = "runs/lowlight"  # run folder (checkpoints, curve weights, results JSON, HTML figures)
    dark_root: str = "data/synth_dark"  # ARID root, or where SynthActions-dark (ARID layout) is generated
    class_map: str = ""  # "AridClass:recogniserClass,..."; "" = match class names case-insensitively
    recogniser_run: str = ""  # run folder from `stia train` / the quickstart to evaluate instead of training ("" = train)
    model: str = "r3d_18"  # recogniser (registry name)
    width: int = 16  # channels of the recogniser's first stage (paper ResNets: 64)
    methods: str = "none,gamma,histeq,clahe,zero_dce,zero_dce_pp"  # comma list of methods evaluated
    gamma: float = 0.4  # gamma-correction exponent (< 1 brightens)
    clahe_clip_limit: float = 2.0  # CLAHE clip limit
    curve_steps: int = 300  # curve-model training steps (each a batch of dark frame crops)
    curve_batch_size: int = 8  # dark frames per curve-model batch
    curve_crop: int = 64  # square crop of the dark training frames
    curve_lr: float = 0.001  # curve-model Adam lr (official 1e-4 over ~100 epochs; higher for a short run)
    temporal_smoothing: float = 0.0  # curve EMA over frames in [0, 1) (0 = independent frames)
    quality_clips: int = 32  # dark test clips scored for PSNR/SSIM/brightness/flicker (0 = all)
    enhanced_train: str = "zero_dce_pp"  # comma list of methods to train a recogniser on enhanced dark data ("" = skip)
    enhanced_init: Literal["clean", "scratch"] = "clean"  # enhanced-data recogniser: fine-tune the clean one, or from scratch

    PAPER: ClassVar[Mapping[str, Any]] = {
        "model": "stin", **{k: v for k, v in STIN_PAPER.items() if k in ("width", "num_frames", "stride", "short_side",
                                                                          "crop_size", "epochs", "batch_size", "optimizer",
                                                                          "lr", "momentum", "weight_decay", "warmup_epochs")},
        "curve_lr": 1e-4}

    def _check(self) -> None:
        if self.dataset == "arid":
            self._fail("dataset", "is the recogniser's training data: 'synth', 'ucf101' or 'hmdb51' (dark_root is the ARID data)")
        self._at_least(1, "width", "curve_steps", "curve_batch_size")
        if self.curve_crop < 16:
            self._fail("curve_crop", "must be >= 16")
        if self.dataset == "synth" and self.curve_crop > self.synth_size:
            self._fail("curve_crop", f"must not exceed synth_size={self.synth_size}")
        for name in ("curve_lr", "gamma", "clahe_clip_limit"):
            if not getattr(self, name) > 0:
                self._fail(name, "must be > 0")
        if not 0.0 <= self.temporal_smoothing < 1.0:
            self._fail("temporal_smoothing", "must be in [0, 1)")
        self._at_least(0, "quality_clips")
        if not self.method_list:
            self._fail("methods", "must name at least one method")
        for name, methods in (("methods", self.method_list), ("enhanced_train", self.enhanced_train_list)):
            bad = [m for m in methods if m not in METHODS]
            if bad:
                self._fail(name, f"names unknown method(s) {bad}; choose from {list(METHODS)}")
        parse_class_map(self.class_map)  # raises on a malformed map
        if self.model not in list_models():
            self._fail("model", f"must be a registered model ({', '.join(list_models())})")
        if self.resolved() is not self:
            return  # the paper preset's resolved copy runs the model check on the sizes actually used
        check_model_input(type(self).__name__, self.model, model_kwargs(self.model, self.width), preset=self.preset,
                          clip=clip_shape(self))

    @property
    def method_list(self) -> list[str]:
        """`methods` as a list, in the order given."""
        return _split_list(self.methods)

    @property
    def enhanced_train_list(self) -> list[str]:
        """`enhanced_train` as a list."""
        return _split_list(self.enhanced_train)

    @property
    def curve_list(self) -> list[str]:
        """The curve models to train: those named in `methods` or `enhanced_train`."""
        wanted = set(self.method_list) | set(self.enhanced_train_list)
        return [m for m in CURVE_METHODS if m in wanted]


def _split_list(text: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    return list(dict.fromkeys(items))


def parse_class_map(text: str) -> dict[str, str]:
    """``"Drink:drink, Pour:pour"`` -> {"Drink": "drink", "Pour": "pour"}; "" -> {}."""
    out: dict[str, str] = {}
    for item in _split_list(text):
        if item.count(":") != 1 or not all(part.strip() for part in item.split(":")):
            raise ValueError(f"LowLightParams.class_map: expected 'AridClass:recogniserClass', got {item!r}")
        src, dst = (part.strip() for part in item.split(":"))
        out[src] = dst
    return out


# ---------------------------------------------------------------------------------------------- data
def prepare_roots(p: LowLightParams, *, progress: bool = True) -> None:
    """Generate SynthActions clean and dark when ``dataset == "synth"`` (a no-op when complete). Same seed, so
    the dark clips are darkened copies of the clean ones (their ground truth under ``dark_root/clean/``)."""
    if p.dataset != "synth":
        return
    generate_synth_actions(p.data_root, synth_config(p), progress=progress, workers=synth_workers())
    generate_synth_actions(p.dark_root, synth_config(p, lowlight=True, layouts=("arid",)), progress=progress,
                           workers=synth_workers())


def clean_datasets(p: LowLightParams) -> DataSplits:
    """The recogniser's training data: (train, test) of ``dataset`` at ``data_root`` (no validation split)."""
    return DataSplits(open_split(p, train=True), None, open_split(p, train=False))


def dark_dataset(p: LowLightParams, *, train: bool) -> VideoDataset:
    """The dark data in the ARID layout (SynthActions-dark or real ARID) through the ARID loader."""
    return open_split(p, train=train, dataset="arid", root=p.dark_root)


def class_mapping(dark_classes: list[str], recogniser_classes: list[str], class_map: str = "") -> list[int]:
    """For each dark (ARID) class, the index of the recogniser class it is scored as.

    Explicit entries of `class_map` win; the other classes are matched by case-insensitive name. Raises
    a ValueError naming every dark class that has no counterpart (pass them in `class_map`).
    """
    explicit = parse_class_map(class_map)
    unknown = sorted(set(explicit) - set(dark_classes))
    if unknown:
        raise ValueError(f"class_map names dark classes {unknown} that are not in the dark dataset {dark_classes}")
    by_name = {c.lower(): i for i, c in enumerate(recogniser_classes)}
    indices, unmapped = [], []
    for c in dark_classes:
        target = explicit.get(c, c)
        if target.lower() in by_name:
            indices.append(by_name[target.lower()])
        else:
            unmapped.append(f"{c} -> {target}")
    if unmapped:
        raise ValueError(f"class_map: no recogniser class for {unmapped}; recogniser classes: {recogniser_classes}. "
                         "Give them as class_map='AridClass:recogniserClass,...'")
    if len(set(indices)) != len(indices):
        raise ValueError(f"class_map maps two dark classes to the same recogniser class: {indices}")
    return indices


class ClassSubset(nn.Module):
    """A recogniser restricted to some of its classes: logits of ``indices`` only, in that order.

    This is how a 51-class HMDB51 recogniser is scored on the 11 ARID classes (arg-max over the mapped
    classes). With ``indices = range(num_classes)`` it is the identity.

    Shape:
        forward: [B, C, T, H, W] -> [B, len(indices)].
    """

    def __init__(self, model: nn.Module, indices: list[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("indices", torch.as_tensor(indices, dtype=torch.long), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        logits = out["logits"] if isinstance(out, dict) else out
        return logits.index_select(1, self.indices.to(logits.device))


# ---------------------------------------------------------------------------------------------- enhancement as a transform
class EnhanceClip:
    """A clip transform (``(clip, rng) -> clip``) that enhances float clips in [0, 1] before normalisation.

    Wraps :class:`stia_kit.enhance.EnhanceTransform`; accepts a clip [C, T, H, W] or the test-mode stack
    of temporal clips [K, C, T, H, W] (each enhanced as its own clip).
    """

    def __init__(self, enhancer: Enhancer) -> None:
        self.transform = EnhanceTransform(enhancer)

    def __call__(self, clip: Tensor, rng: np.random.Generator | None = None) -> Tensor:
        if clip.ndim == 5:
            return torch.stack([self.transform(c) for c in clip])
        return self.transform(clip)

    def __repr__(self) -> str:
        return f"EnhanceClip({type(self.transform.enhancer).__name__})"


def with_enhancement(dataset: VideoDataset, enhancer: Enhancer | None, label: str = "", *,
                     cache_frames: bool = False) -> VideoDataset:
    """A copy of `dataset` whose clips are enhanced right after decoding, before resize/crop/normalise.

    ``cache_frames`` (for a dataset read every epoch): enhance every frame of a video once and keep the
    result in the frame cache (``with_clip_transform(per_frame=True)``); only for enhancers that treat each
    frame alone (no temporal smoothing), so the cached frames are the ones the step would produce.

    Uses ``VideoDataset.with_clip_transform``: ``EnhanceClip`` runs before the steps of the dataset's
    ``DataConfig`` (``train_transform()`` / ``test_transform()``). The decoded frames
    are uint8 and ``to_tensor_clip`` only divides by 255, so this equals enhancing the uint8 frames
    (classical methods are applied exactly on them). ``enhancer=None`` returns `dataset` itself.

    Shape: samples as the original dataset's (DESIGN.md).
    """
    if enhancer is None:
        return dataset
    if not isinstance(dataset, VideoDataset):
        raise TypeError(f"with_enhancement needs a VideoDataset, got {type(dataset).__name__}")
    per_frame = cache_frames and not getattr(enhancer, "temporal_smoothing", 0.0)
    return dataset.with_clip_transform(EnhanceClip(enhancer), name=f"{dataset.name}+{label or type(enhancer).__name__}",
                                       per_frame=per_frame)


# ---------------------------------------------------------------------------------------------- curve models
@dataclass
class CurveRun:
    """One trained curve model with its per-step loss history (see `train_curve_model`)."""

    name: str
    model: nn.Module
    history: dict[str, list[float]]
    seconds: float
    path: Path


def curve_train_frames(p: LowLightParams, dark_train: VideoDataset, samples_per_epoch: int = 512) -> DarkFrameDataset:
    """Random dark frame crops from the *training* split of the dark data only (test clips stay unseen)."""
    ds = DarkFrameDataset(p.dark_root, crop_size=p.curve_crop, samples_per_epoch=samples_per_epoch, seed=p.seed)
    ds.videos = [path for path, _ in dark_train.samples]
    return ds


def train_curves(p: LowLightParams, frames: DarkFrameDataset, *, names: list[str] | None = None,
                 progress: bool = True) -> dict[str, CurveRun]:
    """Train each curve model of ``p.curve_list`` (or `names`) zero-reference through the training engine;
    weights -> ``out_dir/curves/<name>.pt``.

    Resumable: ``out_dir/curves/<name>/`` is the engine's run folder (``last.pt``, ``metrics.jsonl``), saved
    about every fifth of the steps and continued when present.
    """
    runs: dict[str, CurveRun] = {}
    for name in names if names is not None else p.curve_list:
        torch.manual_seed(p.seed)
        model = ZeroDCE() if name == "zero_dce" else ZeroDCEPP()
        folder = Path(p.out_dir) / "curves"
        every = max(d for d in range(1, p.curve_steps + 1) if p.curve_steps % d == 0 and d <= max(1, p.curve_steps // 5))
        cfg = EnhanceTrainConfig(steps=p.curve_steps, batch_size=p.curve_batch_size, lr=p.curve_lr, seed=p.seed,
                                 device=p.device, num_workers=p.num_workers, log_every=10 if progress else 0,
                                 out_dir=str(folder / name), checkpoint_every=every)
        start = time.perf_counter()
        history = train_curve_model(model, frames, cfg, progress=progress)
        weights = folder / f"{name}.pt"
        torch.save(model.state_dict(), weights)
        runs[name] = CurveRun(name, model.eval(), history, time.perf_counter() - start, weights)
    return runs


def build_enhancers(p: LowLightParams, curves: dict[str, CurveRun], methods: list[str] | None = None
                    ) -> dict[str, Enhancer | None]:
    """method -> enhancer (None for "none"); curve methods use the trained models in `curves`."""
    out: dict[str, Enhancer | None] = {}
    for m in methods if methods is not None else p.method_list:
        if m == "none":
            out[m] = None
        elif m in CURVE_METHODS:
            if m not in curves:
                raise ValueError(f"method {m!r} needs a trained curve model; train_curves gave {sorted(curves)}")
            out[m] = CurveEnhancer(curves[m].model, temporal_smoothing=p.temporal_smoothing)
        elif m == "gamma":
            out[m] = build_enhancer("gamma", gamma=p.gamma)
        elif m == "clahe":
            out[m] = build_enhancer("clahe", clip_limit=p.clahe_clip_limit)
        else:
            out[m] = build_enhancer(m)  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------------------------------------- recognition
@dataclass
class RecogniserRun:
    """A trained recogniser (restricted to the dark classes) and its fit history."""

    name: str
    model: nn.Module
    fit: FitResult | None  # None when loaded from an existing run folder (`recogniser_run`)
    seconds: float
    classes: list[str]
    run_dir: Path


def train_recogniser(p: LowLightParams, name: str, train_set: VideoDataset, test_set: VideoDataset,
                     *, init: nn.Module | None = None, progress: bool = True) -> tuple[RecogniserRun, EvalResult]:
    """Train ``p.model`` on `train_set` into ``out_dir/<name>`` (resumes an interrupted run) and test it on
    `test_set` (the shared :func:`~stia_kit.experiments.common.train_and_test` step); ``init``: start from
    that model's weights (same architecture and classes) instead of a random initialisation."""
    p = p.resolved()
    state = None if init is None else {k: v.detach().cpu().clone() for k, v in init.state_dict().items()}
    run = train_and_test(p, name, p.model, model_kwargs(p.model, p.width), DataSplits(train_set, None, test_set),
                         init=state, progress=progress)
    assert run.model is not None
    return RecogniserRun(name, run.model.eval(), run.fit, run.seconds, list(train_set.classes), run.run_dir), run.test


def get_recogniser(p: LowLightParams, splits: DataSplits, *, progress: bool = True) -> tuple[RecogniserRun, EvalResult]:
    """The recogniser of the experiment and its score on the clean test split: loaded from
    ``p.recogniser_run`` when given, else trained on the clean training split."""
    if not p.recogniser_run:
        return train_recogniser(p, "clean", splits.train, splits.test, progress=progress)
    model, info = load_run(p.recogniser_run)
    run = RecogniserRun(info["model"], model, None, 0.0, list(info["classes"]), Path(p.recogniser_run))
    test = evaluate(model, splits.test, batch_size=p.batch_size, num_classes=len(run.classes),
                    class_names=run.classes, num_workers=p.num_workers, progress=progress)
    return run, test


def evaluate_methods(p: LowLightParams, recogniser: RecogniserRun, dark_test: VideoDataset,
                     enhancers: dict[str, Enhancer | None], *, progress: bool = False) -> dict[str, EvalResult]:
    """Top-1 / per-class / confusion of `recogniser` on the dark test set under each enhancement.

    The recogniser is scored on the dark classes only (:func:`class_mapping` + :class:`ClassSubset`).
    """
    indices = class_mapping(list(dark_test.classes), recogniser.classes, p.class_map)
    model = ClassSubset(recogniser.model, indices)
    device = next(recogniser.model.parameters()).device
    results = {}
    for method, enhancer in enhancers.items():
        data = with_enhancement(dark_test, enhancer, method)
        results[method] = evaluate(model, data, batch_size=p.batch_size, num_classes=len(dark_test.classes),
                                   class_names=list(dark_test.classes), device=device, num_workers=p.num_workers,
                                   progress=progress)
    return results


def per_class_table(results: dict[str, EvalResult], classes: list[str]) -> dict[str, Any]:
    """Table 5 shape: rows = classes (+ "average"), columns = methods; accuracy in %.

    "average" is the mean of the per-class accuracies (classes without test clips skipped), as the paper's
    table averages its rows; ``top1`` (clip-level accuracy) is returned alongside.
    """
    columns = list(results)
    rows: dict[str, list[float]] = {}
    for k, c in enumerate(classes):
        rows[c] = [100.0 * results[m].per_class[k] for m in columns]
    rows["average"] = [100.0 * float(np.nanmean(results[m].per_class)) for m in columns]
    return {"columns": columns, "rows": rows, "top1": {m: 100.0 * results[m].top1 for m in columns}}


def table_markdown(table: dict[str, Any], *, paper: bool = False, paper_after: str = "") -> str:
    """A markdown rendering of :func:`per_class_table`; with `paper`, the paper's Table 5 numbers as two
    extra columns labelled as the paper's (quoted, not measured here; '' for a class the paper does not list)."""
    cols = list(table["columns"])
    header = ["class", *cols] + (["paper: before", "paper: after"] if paper else [])
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for name, values in table["rows"].items():
        cells = [f"{v:.1f}" if not math.isnan(v) else "–" for v in values]
        if name == "average":
            name, cells = "**average**", [f"**{c}**" for c in cells]
        if paper:
            ref = PAPER_TABLE5.get(name.strip("*").lower())
            cells += [f"{ref[0]:.1f}", f"{ref[1]:.1f}"] if ref else ["", ""]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- enhancement quality
def clean_counterpart(p: LowLightParams, dark_path: Path) -> Path | None:
    """The clean ground truth of a SynthActions-dark clip (``dark_root/clean/<same relpath>``), or None."""
    try:
        rel = Path(dark_path).resolve().relative_to(Path(p.dark_root).resolve())
    except ValueError:
        return None
    clean = Path(p.dark_root) / "clean" / rel
    return clean if clean.is_file() else None


def _read_all(path: Path) -> np.ndarray:
    return read_frames(path, list(range(video_num_frames(path))))


def enhancement_quality(p: LowLightParams, dark_test: VideoDataset, enhancers: dict[str, Enhancer | None]
                        ) -> dict[str, dict[str, float]]:
    """Per method, averaged over dark test clips at full resolution: PSNR and SSIM against the clean ground
    truth (nan when there is none, e.g. real ARID), mean brightness, flicker; plus frames/s of the method.

    ``quality_clips`` > 0 scores that many clips, evenly spaced over the test list.
    """
    paths = [path for path, _ in dark_test.samples]
    if p.quality_clips and p.quality_clips < len(paths):
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, p.quality_clips).round().astype(int)]
    keys = ("psnr", "ssim", "brightness", "flicker")
    scores: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in [*enhancers, CLEAN_ROW]}
    frames_done, seconds = 0, {m: 0.0 for m in enhancers}
    for path in paths:
        dark = _read_all(path)
        clean_path = clean_counterpart(p, path)
        clean = _read_all(clean_path) if clean_path is not None else None
        frames_done += len(dark)
        outputs: dict[str, np.ndarray] = {}
        for m, enh in enhancers.items():
            start = time.perf_counter()
            outputs[m] = dark if enh is None else enh(dark)
            seconds[m] += time.perf_counter() - start
        if clean is not None:
            outputs[CLEAN_ROW] = clean
        for m, out in outputs.items():
            s = scores[m]
            s["brightness"].append(mean_brightness(out))
            s["flicker"].append(flicker(out) if len(out) >= 3 else math.nan)
            if clean is not None and clean.shape == out.shape:
                s["psnr"].append(psnr(out, clean))
                s["ssim"].append(ssim(out, clean))
    table: dict[str, dict[str, float]] = {}
    for m, s in scores.items():
        if not s["brightness"]:
            continue  # no ground truth at all: no clean row
        row = {k: float(np.mean(v)) if v else math.nan for k, v in s.items()}
        row["fps"] = frames_done / seconds[m] if seconds.get(m) else math.nan
        row["clips"] = float(len(s["brightness"]))
        table[m] = row
    return table


def quality_markdown(quality: dict[str, dict[str, float]]) -> str:
    """Markdown table of :func:`enhancement_quality`."""
    lines = ["| method | PSNR (dB) | SSIM | brightness | flicker (x1e-3) | frames/s |", "|---|---|---|---|---|---|"]
    for m, r in quality.items():
        fps = "" if math.isnan(r["fps"]) or math.isinf(r["fps"]) else f"{r['fps']:.0f}"
        lines.append(f"| {m} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['brightness']:.3f} | "
                     f"{1000 * r['flicker']:.2f} | {fps} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the whole experiment
@dataclass
class LowLightResult:
    """Everything :func:`run_lowlight` measured."""

    params: LowLightParams
    classes: list[str]  # the dark (ARID) classes, table row order
    clean_test: EvalResult  # recogniser on its own (clean) test split
    recogniser: RecogniserRun
    curves: dict[str, CurveRun]
    dark: dict[str, EvalResult]  # method -> recogniser trained on clean, evaluated on enhanced dark test
    quality: dict[str, dict[str, float]]  # method -> PSNR/SSIM/brightness/flicker/fps
    enhanced_train: dict[str, EvalResult] = field(default_factory=dict)  # method -> trained+tested on enhanced dark
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    files: list[Path] = field(default_factory=list)  # results JSON and HTML figures written by run_lowlight

    def table(self) -> dict[str, Any]:
        return per_class_table(self.dark, self.classes)

    def enhanced_train_table(self) -> dict[str, Any]:
        return per_class_table(self.enhanced_train, self.classes) if self.enhanced_train else {}

    def summary(self) -> dict[str, Any]:
        """JSON-friendly dict (infinite/nan numbers become strings / null when dumped with `write_results`)."""
        def ev(r: EvalResult) -> dict[str, Any]:
            return {"top1": r.top1, "per_class": r.per_class, "confusion": r.confusion.tolist(),
                    "num_samples": r.num_samples, "quarantined": r.quarantined}

        return {
            "params": dataclasses.asdict(self.params), "classes": self.classes,
            "clean_test": ev(self.clean_test), "dark": {m: ev(r) for m, r in self.dark.items()},
            "table": self.table(), "quality": self.quality,
            "enhanced_train": {m: ev(r) for m, r in self.enhanced_train.items()},
            "enhanced_train_table": self.enhanced_train_table(),
            "curves": {n: {"final_losses": {k: v[-1] for k, v in c.history.items() if v},
                           "seconds": c.seconds, "weights": str(c.path)} for n, c in self.curves.items()},
            "recogniser": {"model": self.params.model, "seconds": self.recogniser.seconds,
                           "epochs": self.recogniser.fit.epochs_completed if self.recogniser.fit else None, "run_dir": str(self.recogniser.run_dir)},
            "paper_table5": {k: list(v) for k, v in PAPER_TABLE5.items()},
            "seconds": self.seconds,
        }


def write_results(result: LowLightResult, path: str | Path | None = None) -> Path:
    """Write ``result.summary()`` as JSON (atomically; nan -> null, inf -> "inf"); default out_dir/lowlight.json."""
    return write_json_atomic(Path(path) if path is not None else Path(result.params.out_dir) / "lowlight.json",
                             result.summary())


def confusion_grid(results: dict[str, EvalResult], classes: list[str], title: str = "") -> Any:
    """Row-normalised confusion matrices side by side (plotly, :func:`stia_kit.viz.confusion_grid`), one
    panel per method, titled with its top-1."""
    from ..viz import confusion_grid as grid

    return grid({m: r.confusion for m, r in results.items()}, classes,
                f"{title}: confusion matrices, row-normalised (fraction of each true class)" if title else "",
                {m: f"{m}: {100 * r.top1:.1f} %" for m, r in results.items()})


def write_figures(result: LowLightResult, out_dir: str | Path | None = None) -> list[Path]:
    """Confusion grids as self-contained HTML files under out_dir; returns their paths."""
    from ..viz import save_html

    out = Path(out_dir) if out_dir is not None else Path(result.params.out_dir)
    paths = [save_html(confusion_grid(result.dark, result.classes, "Trained on clean, tested on dark"),
                       out / "confusion_dark.html")]
    if result.enhanced_train:
        paths.append(save_html(confusion_grid(result.enhanced_train, result.classes,
                                              "Trained and tested on enhanced dark data"),
                               out / "confusion_enhanced_train.html"))
    return paths


def run_enhanced_training(p: LowLightParams, dark_train: VideoDataset, dark_test: VideoDataset,
                          curves: dict[str, CurveRun], recogniser: RecogniserRun | None = None, *,
                          progress: bool = True) -> dict[str, EvalResult]:
    """The second setting: a recogniser trained on dark training clips enhanced with each method of
    ``p.enhanced_train`` and tested on the dark test clips enhanced the same way (the same enhancer object
    at training and at test time).

    ``p.enhanced_init="clean"`` (default) fine-tunes the clean-data ``recogniser`` when it was trained here
    (same architecture) on the dark classes in the same order (SynthActions); otherwise, and with
    ``"scratch"``, the recogniser starts from random weights. Measured
    on SynthActions-dark at the teaching sizes (8-epoch runs, seed 0): from scratch, 6.8 % test top-1 on
    Zero-DCE++-enhanced and on un-enhanced dark clips alike (chance 9.1 %), i.e. from-scratch training does
    not get off the ground on the degraded frames within a teaching budget, at training or test time alike;
    fine-tuning the clean recogniser on the same enhanced clips reached 50.0 %.
    """
    init = None
    if (p.enhanced_init == "clean" and recogniser is not None and recogniser.fit is not None  # trained here, from p
            and recogniser.classes == list(dark_train.classes)):
        init = recogniser.model
    if p.enhanced_init == "clean" and init is None:
        logger.warning("enhanced_init='clean' but the recogniser was not trained here on the dark classes "
                       "(loaded from recogniser_run, or other classes): the enhanced-data recogniser trains "
                       "from scratch")
    results = {}
    for method, enh in build_enhancers(p, curves, p.enhanced_train_list).items():
        folder = f"dark_{method}_finetuned" if init is not None else f"dark_{method}"  # never resume the other setting
        _, results[method] = train_recogniser(p, folder,
                                              with_enhancement(dark_train, enh, method, cache_frames=True),
                                              with_enhancement(dark_test, enh, method), init=init,
                                              progress=progress)
    return results


def run_lowlight(p: LowLightParams, *, progress: bool = True) -> LowLightResult:
    """The whole experiment (see the module docstring); writes out_dir/lowlight.json and HTML figures."""
    seconds: dict[str, float] = {}

    def stage(name: str, start: float) -> None:
        seconds[name] = round(time.perf_counter() - start, 1)

    t = time.perf_counter()
    prepare_roots(p, progress=progress)
    clean = clean_datasets(p)
    dark_train, dark_test = dark_dataset(p, train=True), dark_dataset(p, train=False)
    class_mapping(list(dark_test.classes), clean.classes, p.class_map)  # fail before training
    stage("data", t)

    t = time.perf_counter()
    recogniser, clean_test = get_recogniser(p, clean, progress=progress)
    stage("recogniser", t)

    t = time.perf_counter()
    curves = train_curves(p, curve_train_frames(p, dark_train), progress=progress)
    stage("curves", t)

    t = time.perf_counter()
    enhancers = build_enhancers(p, curves)
    dark = evaluate_methods(p, recogniser, dark_test, enhancers, progress=progress)
    stage("dark_eval", t)

    t = time.perf_counter()
    quality = enhancement_quality(p, dark_test, enhancers)
    stage("quality", t)

    t = time.perf_counter()
    enhanced = run_enhanced_training(p, dark_train, dark_test, curves, recogniser, progress=progress)
    stage("enhanced_train", t)

    result = LowLightResult(p, list(dark_test.classes), clean_test, recogniser, curves, dark, quality, enhanced, seconds)
    result.files = [write_results(result), *write_figures(result)]
    return result
