"""Measuring explanations: localisation against actor masks, faithfulness curves, sanity checks.

Every measure is our own code (numpy / scipy / torch), tested analytically. Quantus is not used: its
pointing game scores an empty mask as a hit, which would inflate the score of every clip whose actor
leaves the frame.

Conventions (all localisation measures):

* ``saliency``: relevance ``[T, H, W]`` (numpy array or tensor, finite). Only the **positive part**
  counts: negative values are clipped to 0 before pointing, energy and rank, so a signed map (raw
  Integrated Gradients) is read as "evidence for the target" only. Pass ``abs(map)`` to count both signs.
* ``mask``: bool ``[T, H, W]`` actor masks (``stia_kit.synth.load_masks`` or
  ``render_dataset_clip(...)["masks"]``, indexed with the clip's sampled frames and resized to the
  map's resolution, see :func:`resize_mask`).
* Ties are broken at random (``rng``: a ``np.random.Generator`` or an int seed; default seed 0), so a
  constant map does not score by accident: its expected score is the chance level.
* An empty mask gives NaN (undefined), never a hit.

Chance levels: pointing game -> :func:`chance_pointing` (dilated-mask share), energy and rank accuracy ->
:func:`chance_energy` (mask share), phase mass -> ``active.mean()``.

Faithfulness: :func:`deletion_curve` (deletion / insertion of the most relevant positions first).
Sanity check (Adebayo et al. 2018): :func:`sanity_check`, cascading randomisation from the output side
on a deep copy (the model passed in is never modified).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from torch import nn

__all__ = [
    "Curve", "NORM_LAYERS", "SanityStep", "action_phase", "chance_energy", "chance_pointing", "deletion_curve",
    "dilate_mask", "energy_in_mask", "forward_order", "frame_mass", "phase_mass", "pointing_game",
    "relevance_rank_accuracy", "resize_mask", "sanity_check", "spearman",
]

#: a model input: one clip batch or a dict of them (two-stream models)
Inputs = torch.Tensor | Mapping[str, torch.Tensor]
#: explain_fn(model, inputs, target) -> saliency (any shape, numpy or tensor)
ExplainFn = Callable[[nn.Module, Inputs, int], np.ndarray | torch.Tensor]

#: normalisation layers grouped with the parameterised layer that runs just before them (sanity check)
NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


# ----------------------------------------------------------------------------------- input checks
def _as_array(x: object, name: str) -> np.ndarray:
    """numpy view of an array / tensor (detached, on the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _saliency(saliency: object, ndim: int = 3) -> np.ndarray:
    s = _as_array(saliency, "saliency").astype(np.float64)
    if s.ndim != ndim:
        raise ValueError(f"saliency must be [T, H, W] ({ndim} dims), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("saliency contains NaN or inf values")
    return s


def _mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    m = _as_array(mask, "mask")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"mask must be boolean (or 0/1), got dtype {m.dtype} with other values")
        m = m.astype(bool)
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} does not match saliency shape {shape} "
                         "(index the masks with the clip's frames and resize them, see resize_mask)")
    return m


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(0 if rng is None else int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize bool masks ``[T, H, W]`` to ``size = (H', W')``: a pixel is in the mask when at least half of
    its area is (area interpolation, the renderer's own rule).

    Shape: ``[T, H, W] -> [T, H', W']``.
    """
    m = _as_array(mask, "mask").astype(np.float32)
    if m.ndim != 3:
        raise ValueError(f"mask must be [T, H, W], got shape {m.shape}")
    t = torch.from_numpy(m)[:, None]
    if size[0] <= m.shape[1] and size[1] <= m.shape[2]:
        out = F.adaptive_avg_pool2d(t, size)
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return (out[:, 0] >= 0.5).numpy()


# ----------------------------------------------------------------------------------- localisation
def dilate_mask(mask: np.ndarray, tolerance: int) -> np.ndarray:
    """Spatial (per-frame) dilation: pixels within Euclidean distance ``tolerance`` of the mask.

    Shape: ``[T, H, W] -> [T, H, W]`` bool; an empty frame stays empty.
    """
    if not isinstance(tolerance, (int, np.integer)) or isinstance(tolerance, bool) or tolerance < 0:
        raise ValueError(f"tolerance must be an int >= 0 (pixels), got {tolerance!r}")
    m = np.asarray(mask, bool)
    if tolerance == 0:
        return m.copy()
    out = np.zeros_like(m)
    for t, frame in enumerate(m):
        if frame.any():
            out[t] = ndimage.distance_transform_edt(~frame) <= tolerance
    return out


def _argmax_random(values: np.ndarray, rng: np.random.Generator) -> int:
    """Flat index of the maximum, a uniformly random one among exact ties."""
    flat = values.ravel()
    candidates = np.flatnonzero(flat == flat.max())
    return int(candidates[0] if candidates.size == 1 else rng.choice(candidates))


def pointing_game(saliency: np.ndarray, mask: np.ndarray, *, tolerance: int = 1,
                  rng: np.random.Generator | int | None = None, per_frame: bool = False) -> float:
    """Pointing game: is the most relevant position inside the (dilated) actor mask?

    Clip level (default): one argmax over the whole volume, hit (1.0) or miss (0.0); NaN when every frame
    of the mask is empty. ``per_frame=True``: one argmax per frame, frames with an empty mask skipped, the
    mean hit rate over the others (NaN when none is left). The mask is dilated by ``tolerance`` pixels in
    space only (per frame, Euclidean). Ties among argmax positions are broken at random, so a constant map
    hits with probability :func:`chance_pointing`.

    Shape: saliency ``[T, H, W]`` float, mask ``[T, H, W]`` bool.
    """
    s = np.maximum(_saliency(saliency), 0.0)
    m = _mask(mask, s.shape)
    rng = _rng(rng)
    hit_zone = dilate_mask(m, tolerance)
    if not per_frame:
        if not m.any():
            return float("nan")
        return float(hit_zone.ravel()[_argmax_random(s, rng)])
    hits = [float(hit_zone[t].ravel()[_argmax_random(s[t], rng)]) for t in range(s.shape[0]) if m[t].any()]
    return float(np.mean(hits)) if hits else float("nan")


def chance_pointing(mask: np.ndarray, *, tolerance: int = 1, per_frame: bool = False) -> float:
    """Expected pointing-game score of a constant map: the dilated-mask share (per frame: mean over the
    frames with a non-empty mask). NaN where :func:`pointing_game` is NaN.

    Shape: mask ``[T, H, W]`` bool.
    """
    if np.ndim(mask) != 3:
        raise ValueError(f"mask must be [T, H, W], got shape {np.shape(mask)}")
    m = _mask(mask, np.shape(mask))
    zone = dilate_mask(m, tolerance)
    if not per_frame:
        return float(zone.mean()) if m.any() else float("nan")
    shares = [zone[t].mean() for t in range(m.shape[0]) if m[t].any()]
    return float(np.mean(shares)) if shares else float("nan")


def energy_in_mask(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive relevance that falls inside the mask (NaN for an empty mask or a map with no
    positive relevance). A uniform map scores exactly :func:`chance_energy`.

    Shape: saliency ``[T, H, W]`` float, mask ``[T, H, W]`` bool.
    """
    s = np.maximum(_saliency(saliency), 0.0)
    m = _mask(mask, s.shape)
    total = s.sum()
    if not m.any() or total <= 0:
        return float("nan")
    return float(s[m].sum() / total)


def chance_energy(mask: np.ndarray) -> float:
    """Chance level of :func:`energy_in_mask` and :func:`relevance_rank_accuracy`: the mask's area share
    (0.0 for an empty mask, where both measures are NaN).

    Shape: mask ``[T, H, W]`` bool.
    """
    return float(np.asarray(mask, bool).mean())


def relevance_rank_accuracy(saliency: np.ndarray, mask: np.ndarray, *,
                            rng: np.random.Generator | int | None = None) -> float:
    """Fraction of the K most relevant positions that lie inside the mask, K = mask size (NaN if K = 0).

    Ties are ordered at random, so a constant map scores about the mask share; the mask itself as a map
    scores 1.0, its complement 0.0 (when the mask covers at most half of the clip).

    Shape: saliency ``[T, H, W]`` float, mask ``[T, H, W]`` bool.
    """
    s = np.maximum(_saliency(saliency), 0.0).ravel()
    m = _mask(mask, np.shape(saliency)).ravel()
    k = int(m.sum())
    if k == 0:
        return float("nan")
    order = np.lexsort((_rng(rng).random(s.size), -s))  # by relevance (descending), random among ties
    return float(m[order[:k]].mean())


# ----------------------------------------------------------------------------------- time
def frame_mass(saliency: np.ndarray) -> np.ndarray:
    """Share of the positive relevance in each frame (sums to 1; uniform when the map has none).

    Shape: ``[T, H, W] -> [T]``.
    """
    s = np.maximum(_saliency(saliency), 0.0)
    per_frame = s.reshape(s.shape[0], -1).sum(axis=1)
    total = per_frame.sum()
    if total <= 0:
        return np.full(s.shape[0], 1.0 / s.shape[0])
    return per_frame / total


def phase_mass(saliency: np.ndarray, active: np.ndarray) -> float:
    """Share of the relevance in the frames where the action happens (``active``, see :func:`action_phase`);
    chance level = ``active.mean()``. NaN when no frame is active.

    Shape: saliency ``[T, H, W]``, active bool ``[T]``.
    """
    mass = frame_mass(saliency)
    a = _as_array(active, "active").astype(bool)
    if a.shape != mass.shape:
        raise ValueError(f"active must be bool [T] with T = {mass.shape[0]}, got shape {a.shape}")
    return float(mass[a].sum()) if a.any() else float("nan")


def action_phase(meta: Mapping, num_frames: int, indices: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
    """Which sampled frames of a SynthActions clip show the action in motion.

    One-shot actions (``meta["speed"]`` holds ``onset_frac`` / ``duration_frac``) move while
    ``frame / (num_frames - 1)`` lies in ``[onset, onset + duration]`` (``actions.pose_at``); outside it the
    pose is frozen. ``"stand"`` is ``"sit"`` played backwards (``render.render_clip_with_meta``), so its
    window is mirrored: ``[1 - onset - duration, 1 - onset]``. Periodic actions (``"cycles_per_s"``) are
    active in every frame. ``indices``: the clip's sampled frame indices into the ``num_frames`` video
    frames (default: all of them).

    Shape: indices ``[T]`` int -> bool ``[T]``.
    """
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be an int >= 1, got {num_frames!r}")
    idx = np.arange(num_frames) if indices is None else _as_array(indices, "indices").astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        raise ValueError(f"indices must lie in [0, {num_frames}), got {idx.min()}..{idx.max()}")
    speed = meta.get("speed")
    if not isinstance(speed, Mapping):
        raise ValueError("meta['speed'] missing: pass the clip metadata of a SynthActions clip")
    if "cycles_per_s" in speed:
        return np.ones(idx.shape, bool)
    if "onset_frac" not in speed or "duration_frac" not in speed:
        raise ValueError(f"meta['speed'] must hold cycles_per_s or onset_frac + duration_frac, got {dict(speed)}")
    onset, duration = float(speed["onset_frac"]), float(speed["duration_frac"])
    if meta.get("action") == "stand":
        idx = (num_frames - 1) - idx  # the sit frame shown at this stand frame
    pos = idx / max(num_frames - 1, 1)
    return (pos >= onset) & (pos <= onset + duration)


# ----------------------------------------------------------------------------------- deletion / insertion
@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve."""

    fractions: np.ndarray  # [steps + 1] share of the (t, h, w) positions deleted / inserted, 0 .. 1
    scores: np.ndarray  # [steps + 1] softmax probability of the target class at each fraction
    auc: float  # trapezoid area under scores(fractions); deletion: lower is better, insertion: higher
    mode: str = "deletion"  # "deletion" or "insertion"


def _logits(out: object) -> torch.Tensor:
    if isinstance(out, Mapping):
        if "logits" not in out:
            raise ValueError(f"model returned a dict without 'logits' (keys {sorted(out)})")
        out = out["logits"]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError("model must return logits [B, K] or a dict with 'logits'")
    return out


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-frame spatial Gaussian blur of ``[B, C, T, H, W]`` (reflect padding; the kernel is cut to the
    frame size and renormalised on small frames, so a constant clip stays constant)."""
    if sigma <= 0:
        raise ValueError(f"blur_sigma must be > 0, got {sigma}")
    b, c, t, h, w = x.shape
    y = x.permute(0, 2, 1, 3, 4).reshape(b * t * c, 1, h, w)
    for dim, size in ((2, h), (3, w)):
        radius = min(max(1, int(round(3 * sigma))), size - 1)
        if radius == 0:
            continue
        g = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
        g = (g / g.sum()).view(1, 1, -1, 1) if dim == 2 else (g / g.sum()).view(1, 1, 1, -1)
        pad = (0, 0, radius, radius) if dim == 2 else (radius, radius, 0, 0)
        y = F.conv2d(F.pad(y, pad, mode="reflect"), g)
    return y.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


def _baseline(x: torch.Tensor, baseline: str | torch.Tensor, blur_sigma: float) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        try:
            return baseline.to(x).expand_as(x)
        except RuntimeError as err:
            raise ValueError(f"baseline tensor of shape {tuple(baseline.shape)} cannot broadcast to the "
                             f"input {tuple(x.shape)}") from err
    if baseline == "black":
        return torch.zeros_like(x)
    if baseline == "blur":
        return _gaussian_blur(x, blur_sigma)
    raise ValueError(f"baseline must be 'black', 'blur' or a tensor, got {baseline!r}")


def deletion_curve(model: nn.Module, inputs: Inputs, saliency: np.ndarray,
                   target: int, *, key: str | None = None, steps: int = 10, mode: str = "deletion",
                   baseline: str | torch.Tensor = "black", blur_sigma: float = 2.0,
                   batch_size: int | None = None, rng: np.random.Generator | int | None = None) -> Curve:
    """Deletion / insertion curve (Petsiuk et al. 2018) over space-time positions.

    The ``(t, h, w)`` positions are ranked by ``saliency`` (most relevant first, random among ties). At
    fraction f of ``steps + 1`` evenly spaced fractions, deletion replaces the top f of the positions (all
    channels) by the baseline; insertion starts from the baseline and restores the top f from the input.
    The score is the softmax probability of ``target``. All steps run as batched forwards (``batch_size``
    clips per pass; default all at once) under ``torch.no_grad`` with the model in eval mode (its mode is
    restored). ``baseline``: "black" (zeros), "blur" (spatial Gaussian, ``blur_sigma`` px) or a tensor
    broadcastable to the input. For dict inputs ``key`` names the input the saliency belongs to (the others
    are kept unchanged).

    Shape: inputs ``[1, C, T, H, W]`` (or a dict of such tensors), saliency ``[T, H, W]`` of that input.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be None or an int >= 1, got {batch_size!r}")
    if isinstance(inputs, Mapping):
        if key is None and len(inputs) == 1:
            key = next(iter(inputs))
        if key not in inputs:
            raise ValueError(f"key must name one of the inputs {sorted(inputs)}, got {key!r}")
        x = inputs[key]
    else:
        x = inputs
    if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[0] != 1:
        raise ValueError(f"the explained input must be a tensor [1, C, T, H, W], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    s = _saliency(saliency)
    if s.shape != tuple(x.shape[2:]):
        raise ValueError(f"saliency shape {s.shape} does not match the input's [T, H, W] {tuple(x.shape[2:])}")

    n = s.size
    order = np.lexsort((_rng(rng).random(n), -s.ravel()))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    counts = np.round(np.linspace(0.0, 1.0, steps + 1) * n).astype(np.int64)
    chosen = torch.from_numpy(rank[None, :] < counts[:, None]).view(steps + 1, 1, *s.shape).to(x.device)
    with torch.no_grad():
        x = x.detach()
        base = _baseline(x, baseline, blur_sigma)
        batch = torch.where(chosen, base, x) if mode == "deletion" else torch.where(chosen, x, base)
        chunk = batch.shape[0] if batch_size is None else batch_size
        was_training = model.training
        model.eval()
        try:
            probs = []
            for start in range(0, batch.shape[0], chunk):
                part = batch[start:start + chunk]
                if isinstance(inputs, Mapping):
                    feed = {k: (part if k == key else v.detach().expand(part.shape[0], *v.shape[1:]).contiguous())
                            for k, v in inputs.items()}
                else:
                    feed = part
                probs.append(_logits(model(feed)).float().softmax(dim=1)[:, target].cpu())
        finally:
            model.train(was_training)
    fractions = counts / n
    scores = torch.cat(probs).numpy().astype(np.float64)
    return Curve(fractions, scores, float(np.trapezoid(scores, fractions)), mode)


# ----------------------------------------------------------------------------------- sanity check
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flattened arrays of equal size.

    NaN-safe: positions that are non-finite in either array are dropped; NaN when fewer than 2 remain or
    either array is constant there.

    Shape: any, ``a.size == b.size``.
    """
    x, y = _as_array(a, "a").astype(np.float64).ravel(), _as_array(b, "b").astype(np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"spearman needs arrays of equal size, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(x, y).statistic)


@dataclass(frozen=True)
class SanityStep:
    """One step of the cascading randomisation."""

    layer: str  # the layer randomised at this step (on top of all steps before it)
    spearman: float  # Spearman rank correlation between this step's map and the original map
    modules: tuple[str, ...] = ()  # every module re-initialised at this step (a layer and its norm layer)


def _direct_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def forward_order(model: nn.Module, inputs: Inputs) -> list[str]:
    """Names of the modules owning parameters directly, in the order of their first call in one forward
    (eval mode, no grad; the mode is restored). Modules whose ``forward`` never runs are not listed.
    """
    names = {m: n for n, m in model.named_modules() if n and _direct_params(m)}
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda mod, _args: order.append(names[mod])
                                           if names[mod] not in order else None) for m in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return order


def _default_groups(model: nn.Module, inputs: Inputs) -> list[tuple[str, ...]]:
    """Forward-order groups, top first: a normalisation layer joins the layer called before it; a module
    whose forward never runs (e.g. ``nn.MultiheadAttention.out_proj``, used functionally) joins its nearest
    called ancestor."""
    modules = dict(model.named_modules())
    order = forward_order(model, inputs)
    groups: list[list[str]] = []
    for name in order:
        if isinstance(modules[name], NORM_LAYERS) and groups:
            groups[-1].append(name)
        else:
            groups.append([name])
    listed = set(order)
    for name, module in modules.items():
        if not name or name in listed or not _direct_params(module):
            continue
        parts = name.split(".")
        ancestors = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
        owner = next((a for a in ancestors if a in listed), None)
        if owner is not None:
            next(g for g in groups if owner in g).append(name)
    return [tuple(g) for g in reversed(groups)]


def _randomise(module: nn.Module) -> None:
    """Re-initialise every parameter under ``module``: ``reset_parameters()`` of each module that has one
    (and owns parameters), a normal draw (std of the old values, 0.02 if they were constant) otherwise."""
    for sub in module.modules():
        if not _direct_params(sub):
            continue
        if hasattr(sub, "reset_parameters") and not any(_direct_params(c) for c in sub.modules() if c is not sub):
            sub.reset_parameters()
            continue
        with torch.no_grad():
            for p in sub.parameters(recurse=False):
                std = float(p.float().std()) if p.numel() > 1 else 0.0
                p.normal_(0.0, std if std > 0 else 0.02)


def sanity_check(model: nn.Module, inputs: Inputs, target: int,
                 explain_fn: ExplainFn, *, layers: Sequence[str] | None = None, seed: int = 0,
                 absolute: bool = True, max_steps: int | None = None) -> list[SanityStep]:
    """Cascading parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

    A deep copy of ``model`` is explained (``explain_fn(copy, inputs, target) -> saliency``), then its
    layers are re-initialised from the output side down, one more per step (cumulative), and each step's
    map is compared with the original one by :func:`spearman` (of absolute values when ``absolute``). A
    faithful method's similarity drops well below 1; a method that ignores the weights stays near 1.

    ``layers``: module names, top (output side) first; each step re-initialises every parameter under that
    module. Default: the modules owning parameters, in reverse order of their first call in one forward
    (:func:`forward_order`), each normalisation layer (BatchNorm / GroupNorm / LayerNorm / InstanceNorm)
    grouped with the layer called just before it (its conv). ``max_steps``: stop after that many steps
    (the top ones; for CPU budgets). Step ``i`` draws its weights under ``torch.manual_seed(seed + i)``
    inside ``torch.random.fork_rng`` (the caller's RNG state is untouched).

    Returns only the randomised steps (the original map has similarity 1.0 by definition). The model passed
    in is never modified (parameters, buffers, mode).

    Shape: inputs ``[B, C, T, H, W]`` or a dict of tensors; ``explain_fn`` returns any array shape, the same
    for every step.
    """
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be None or an int >= 1, got {max_steps!r}")
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    if layers is None:
        groups = _default_groups(work, inputs)
    else:
        unknown = [name for name in layers if name not in modules or not name]
        if unknown:
            raise ValueError(f"layers: unknown module name(s) {unknown}")
        groups = [(name,) for name in layers]
    if max_steps is not None:
        groups = groups[:max_steps]

    def explain() -> np.ndarray:
        s = _as_array(explain_fn(work, inputs, target), "saliency").astype(np.float64)
        return np.abs(s) if absolute else s

    original = explain()
    devices = sorted({p.device.index or 0 for p in work.parameters() if p.is_cuda})
    steps: list[SanityStep] = []
    for i, group in enumerate(groups):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed + i)
            for name in group:
                _randomise(modules[name])
        current = explain()
        if current.shape != original.shape:
            raise ValueError(f"explain_fn returned shape {current.shape} after randomising {group[0]!r}, "
                             f"{original.shape} before")
        steps.append(SanityStep(group[0], spearman(original, current), group))
    return steps
