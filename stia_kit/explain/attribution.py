"""Captum attributions for video clips and two-stream (dict) inputs, on every registered model.

One call chooses the method::

    att = attribute(model, clip, method="integrated_gradients", baseline="blur")   # clip [B, C, T, H, W]
    att.maps["video"]        # [B, T, H, W] non-negative relevance at input resolution
    att = attribute(stilt, {"rgb": rgb, "flow": flow}, method="guided_gradcam")
    att.maps["rgb"], att.maps["flow"]

Methods (:data:`METHODS`): Integrated Gradients (black / blurred / time-shuffled baselines, Captum's
``internal_batch_size`` sized from a memory budget), Saliency, SmoothGrad (``NoiseTunnel``, noise per
modality), 3D Grad-CAM on a named layer (``LayerGradCam`` + ``LayerAttribution.interpolate(...,
"trilinear")``), per-time-slice Grad-CAM, Guided Grad-CAM run per stream, Occlusion with space-time windows
and FeatureAblation on supervoxel tubes. :func:`modality_ablation` (RGB vs flow) and :func:`pathway_ablation`
(STIN sparse vs dense, SlowFast slow vs fast) report the drop of the target's probability.

Conventions:

- Captum sees the model through :class:`CaptumForward`: a tuple of input tensors (dict inputs in
  ``model.input_keys`` order; a plain tensor is the key ``"video"``) -> logits ``[B, K]`` (dict outputs:
  ``out["logits"]``). The model is put in eval mode for the call and its mode restored after.
- ``raw[key]`` has the input's shape; ``maps[key] = raw[key].abs().sum(channels)``, except Grad-CAM, whose
  map is the ReLU'd CAM upsampled to ``(T, H, W)`` (its ``raw`` is that map spread evenly over the channels,
  so ``maps = sum_c |raw|`` still holds).
- Grad-CAM layers: a 5-D output ``[B, C, t, h, w]`` (3D nets) or a 4-D ``[B*N, C, h, w]`` output of a 2D
  backbone that folds the N segments into the batch (``backbones2d.fold_segments``), unfolded to
  ``[B, C, N, h, w]``. Which inputs a layer's CAM maps onto is decided by autograd, not by names: the CAM is
  drawn on every input key the layer's output depends on (STILT's ``backbones.spatial`` -> ``"rgb"``,
  ``backbones.temporal`` -> ``"flow"``); keys it does not depend on get no map.
- Captum's LayerGradCam averages the gradient over every dimension after the channel one; on a folded 2D
  layer that is per segment (= our ``gradcam_time``), so the folded ``gradcam`` averages over ``(N, h, w)``
  with the same hooks as ``gradcam_time`` instead.
- Guided backprop runs on :func:`guided_safe_copy` (in-place ReLUs made out-of-place, reused ReLU modules
  split per call); functional ``torch.relu`` calls (BN-Inception's ``_cbr``) are not modified by Captum.

Shape:
    inputs ``[B, C, T, H, W]`` or ``{key: [B, C_k, T_k, H, W]}``; ``raw[key]`` same shape;
    ``maps[key]`` ``[B, T_k, H, W]``.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

METHODS: tuple[str, ...] = ("integrated_gradients", "saliency", "smoothgrad", "gradcam", "gradcam_time",
                            "guided_gradcam", "occlusion", "feature_ablation")
BASELINES: tuple[str, ...] = ("black", "blur", "shuffle")
SEGMENTATIONS: tuple[str, ...] = ("grid", "slic")
VIDEO_KEY = "video"  # the key of a plain-tensor input in raw / maps

Inputs = Tensor | Mapping[str, Tensor]
Triple = tuple[int, int, int]
Target = int | Sequence[int] | Tensor | None


# ------------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class ExplainConfig:
    """Settings of :func:`attribute` (CPU-safe defaults). Per-key settings are tuples of ``(key, value)``
    pairs (hashable, frozen); the key of a plain tensor input is ``"video"``."""

    method: str = "integrated_gradients"  # one of METHODS
    baseline: str = "black"  # IG baseline: "black" (black_value / 0) | "blur" (Gaussian, H, W) | "shuffle" (frames)
    black_value: tuple[tuple[str, float | tuple[float, ...]], ...] = ()  # per key: black after normalisation; 0
    sigma: float = 3.0  # blur baseline: Gaussian standard deviation in pixels (over H and W, each frame)
    n_steps: int = 16  # IG: integration steps
    memory_mb: float = 1024.0  # budget sizing IG internal_batch_size, NoiseTunnel / occlusion / ablation batches
    nt_samples: int = 8  # SmoothGrad: noisy samples
    noise_std: float = 0.15  # SmoothGrad: noise std as a fraction of each modality's value range (max - min)
    noise_by_key: tuple[tuple[str, float], ...] = ()  # per-key override of noise_std, e.g. (("flow", 0.05),)
    layer: str | None = None  # Grad-CAM layer (dotted module name); None = default_layer(model)
    layers_by_key: tuple[tuple[str, str], ...] = ()  # guided_gradcam: layer per stream (else default_layers_by_key)
    window: Triple = (2, 8, 8)  # occlusion: sliding window (t, h, w), clipped to the input
    stride: Triple = (2, 4, 4)  # occlusion: strides (t, h, w)
    tube: Triple = (2, 8, 8)  # feature ablation: tube size (t, h, w) (slic: time block, superpixel region size)
    segmentation: str = "grid"  # feature ablation tubes: "grid" (t x h x w blocks) | "slic" (superpixels x time blocks)
    seed: int = 0  # shuffle-baseline permutation and SmoothGrad noise
    announce_seconds: float = 10.0  # print the cost estimate when it exceeds this many seconds (verbose only)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"ExplainConfig.method must be one of {list(METHODS)}, got {self.method!r}")
        if self.baseline not in BASELINES:
            raise ValueError(f"ExplainConfig.baseline must be one of {list(BASELINES)}, got {self.baseline!r}")
        if self.segmentation not in SEGMENTATIONS:
            raise ValueError(f"ExplainConfig.segmentation must be one of {list(SEGMENTATIONS)}, "
                             f"got {self.segmentation!r}")
        for name in ("n_steps", "nt_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"ExplainConfig.{name} must be a positive int, got {v!r}")
        for name in ("sigma", "memory_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExplainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("black_value", "noise_by_key", "layers_by_key"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or any(not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str))
                                               for p in v):
                raise ValueError(f"ExplainConfig.{name} must be a tuple of (key, value) pairs, got {v!r}")
        if not self.noise_std >= 0 or any(not v >= 0 for _, v in self.noise_by_key):
            raise ValueError(f"ExplainConfig.noise_std / noise_by_key must be >= 0, got {self.noise_std}, "
                             f"{self.noise_by_key}")
        if not self.announce_seconds >= 0:
            raise ValueError(f"ExplainConfig.announce_seconds must be >= 0, got {self.announce_seconds!r}")
        for name in ("window", "stride", "tube"):
            v = tuple(getattr(self, name))
            if len(v) != 3 or any(not isinstance(i, int) or i < 1 for i in v):
                raise ValueError(f"ExplainConfig.{name} must be 3 positive ints (t, h, w), got {getattr(self, name)!r}")
        if self.layer is not None and (not isinstance(self.layer, str) or not self.layer):
            raise ValueError(f"ExplainConfig.layer must be a dotted module name or None, got {self.layer!r}")


@dataclass
class Attribution:
    """Result of :func:`attribute`.

    Shape:
        ``raw[key]``: the input's shape ``[B, C, T, H, W]`` (CPU float32); ``maps[key]``: ``[B, T, H, W]``.
    """

    method: str  # the method that produced it
    target: list[int]  # explained class per batch item
    raw: dict[str, Tensor]  # per input key ("video" for a plain tensor): signed attribution, input shape
    maps: dict[str, Tensor]  # per input key: non-negative relevance [B, T, H, W] at input resolution
    seconds: float  # wall time of the attribution
    meta: dict[str, Any] = field(default_factory=dict)  # layer, baseline, n_steps, internal_batch_size, ...


@dataclass(frozen=True)
class CostEstimate:
    """``passes`` forward-equivalents (a gradient = forward + backward = 2) and their estimated seconds."""

    passes: int
    seconds: float
    text: str


# ---------------------------------------------------------------------------------------- model plumbing
class CaptumForward(nn.Module):
    """Captum's view of a kit model: ``forward(*tensors) -> logits [B, K]``.

    Dict-input models get ``dict(zip(keys, tensors))`` (keys = ``model.input_keys``); dict outputs give
    ``out["logits"]``.
    """

    def __init__(self, model: nn.Module, keys: Sequence[str] | None) -> None:
        super().__init__()
        self.model, self.keys = model, tuple(keys) if keys is not None else None

    def forward(self, *xs: Tensor) -> Tensor:
        out = self.model(dict(zip(self.keys, xs)) if self.keys is not None else xs[0])
        return out["logits"] if isinstance(out, Mapping) else out


def _split(model: nn.Module, inputs: Inputs) -> tuple[tuple[str, ...], tuple[Tensor, ...], bool]:
    """``(keys, tensors, is_dict)``; dict inputs in ``model.input_keys`` order (missing keys raise)."""
    if isinstance(inputs, Mapping):
        keys = tuple(getattr(model, "input_keys", None) or inputs.keys())
        if missing := [k for k in keys if k not in inputs]:
            raise KeyError(f"{type(model).__name__} needs input keys {list(keys)}; missing {missing}")
        xs = tuple(inputs[k].detach().float() for k in keys)
        return keys, xs, True
    if inputs.dim() != 5:
        raise ValueError(f"expected a clip batch [B, C, T, H, W], got shape {list(inputs.shape)}")
    return (VIDEO_KEY,), (inputs.detach().float(),), False


def _grad(xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Copies that require gradients (Captum warns when it has to set the flag itself)."""
    return tuple(x.detach().clone().requires_grad_(True) for x in xs)


def model_logits(model: nn.Module, inputs: Inputs) -> Tensor:
    """``model(inputs)`` as logits ``[B, K]`` (a dict output's ``"logits"``)."""
    out = model(inputs)
    return out["logits"] if isinstance(out, Mapping) else out


class _EvalMode:
    """Context: the model in eval mode, its previous mode (per module) restored on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: Any) -> None:
        for m, mode in self.modes:
            m.training = mode


def _targets(model: nn.Module, inputs: Inputs, target: Target, batch: int) -> list[int]:
    """Explained class per batch item: the predicted class when ``target`` is None."""
    if target is None:
        with torch.no_grad():
            return [int(i) for i in model_logits(model, inputs).argmax(dim=1)]
    if isinstance(target, Tensor):
        target = target.flatten().tolist()
    if isinstance(target, int):
        return [int(target)] * batch
    target = [int(t) for t in target]
    if len(target) != batch:
        raise ValueError(f"target has {len(target)} entries for a batch of {batch}")
    return target


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _probe_input(model: nn.Module, batch: int = 2) -> Inputs:
    """A tiny valid input from ``model.input_spec``: ``batch`` clips of at least 2 frames at the minimum
    size (at least 16), so folded segments (``B*N``) are distinguishable from the batch."""
    from ..models.registry import InputSpec

    spec = model.input_spec
    gen = torch.Generator().manual_seed(0)
    device = _device(model)

    def one(s: InputSpec) -> Tensor:
        shape = s.example_shape(frames=2, size=max(16, s.min_size))
        return torch.randn(batch, *shape, generator=gen).to(device)

    if isinstance(spec, InputSpec):
        return one(spec)
    return {k: one(s) for k, s in spec.items()}


@dataclass
class _Call:
    name: str
    shape: tuple[int, ...]
    out: Tensor | None  # detached output (tiny probe only)


def _record_calls(model: nn.Module, inputs: Inputs, *, keep: bool = True) -> list[_Call]:
    """Every submodule call of one no-grad forward, in hook order (children before their parent)."""
    calls: list[_Call] = []

    def hook(name: str) -> Callable[..., None]:
        def fn(_m: nn.Module, _i: Any, out: Any) -> None:
            if torch.is_tensor(out):
                calls.append(_Call(name, tuple(out.shape), out.detach().clone() if keep else None))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad(), _EvalMode(model):
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return calls


def _candidates(calls: list[_Call], batch: int, frames: Mapping[str, int]) -> list[tuple[int, _Call, str]]:
    """Calls whose output is a spatio-temporal map: ``(index, call, kind)``, kind ``"5d"`` for
    ``[B, C, t, h, w]`` (t never above the input's T) or ``"folded"`` for ``[B*N, C, h, w]``."""
    t_max = max(frames.values())
    folded = {batch * n for n in frames.values() if n >= 2}
    out = []
    for i, c in enumerate(calls):
        if len(c.shape) == 5 and c.shape[0] == batch and c.shape[2] <= t_max:
            out.append((i, c, "5d"))
        elif len(c.shape) == 4 and c.shape[0] in folded:
            out.append((i, c, "folded"))
    return out


def _pick(cands: list[tuple[int, _Call, str]]) -> str:
    """The last candidate's resolution and kind; among those, most channels, then shallowest name, then latest."""
    if not cands:
        raise ValueError("no module outputs a spatio-temporal map [B, C, t, h, w] (or folded [B*N, C, h, w])")
    _, last, kind = cands[-1]
    same = [(i, c) for i, c, k in cands if k == kind and c.shape[2:] == last.shape[2:]]
    best = max(same, key=lambda ic: (-ic[1].name.count("."), ic[0]))
    return best[1].name


def _hint(model: nn.Module) -> str | None:
    """Layers the generic rule cannot find: a 3D ResNet ``backbone`` (ST-MANet: its attention modules sit
    after the last stage) -> its last stage; a BN-Inception backbone (TSN, T-STAM: the concatenated
    ``inception_5b`` map is no module's output) -> ``inception_5b_se`` when SE is on, else
    ``inception_5b_pool`` (the ``inception_5a`` output max-pooled 3x3 stride 1, all channels, final resolution)."""
    from ..models.backbones2d import BNInception2d
    from ..models.r3d import ResNet3D

    bb = getattr(model, "backbone", None)
    if isinstance(bb, ResNet3D):
        return f"backbone.stages.{len(bb.stages) - 1}"
    if isinstance(bb, BNInception2d):
        return "backbone.inception_5b_se" if hasattr(bb, "inception_5b_se") else "backbone.inception_5b_pool"
    return None


def _frames(inputs: Inputs) -> dict[str, int]:
    if isinstance(inputs, Mapping):
        return {k: int(v.shape[2]) for k, v in inputs.items()}
    return {VIDEO_KEY: int(inputs.shape[2])}


def default_layer(model: nn.Module) -> str:
    """Dotted name of the last spatio-temporal feature layer of ``model`` (the default Grad-CAM layer).

    A tiny forward (from ``model.input_spec``, two clips of >= 2 frames) records every module output; the
    candidates are 5-D ``[B, C, t, h, w]`` maps and 4-D ``[B*N, C, h, w]`` maps of 2D backbones folding the
    segments; among the candidates at the last candidate's resolution the one with most channels wins
    (then the shallowest module, e.g. a whole stage rather than its last ReLU; then the latest). ST-MANet and the
    BN-Inception models (TSN, T-STAM) use a fixed layer instead (``_hint``).
    """
    if (hint := _hint(model)) is not None:
        return hint
    probe = _probe_input(model)
    return _pick(_candidates(_record_calls(model, probe, keep=False), 2, _frames(probe)))


def default_layers_by_key(model: nn.Module) -> dict[str, str]:
    """One Grad-CAM layer per input key (Guided Grad-CAM per stream): the :func:`default_layer` rule among
    the layers whose output depends on that key only (found by perturbing one key of a tiny probe).
    A plain-tensor model gets ``{"video": default_layer(model)}``."""
    probe = _probe_input(model)
    if not isinstance(probe, Mapping):
        return {VIDEO_KEY: default_layer(model)}
    if (hint := _hint(model)) is not None and len(probe) == 1:
        return {next(iter(probe)): hint}
    base = _record_calls(model, probe)
    cands = _candidates(base, 2, _frames(probe))
    depends: dict[str, set[int]] = {}
    for k in probe:
        other = dict(probe)
        other[k] = probe[k] + 1.0 + torch.randn_like(probe[k])
        calls = _record_calls(model, other)
        depends[k] = {i for i, c in enumerate(calls) if i < len(base) and c.out is not None and base[i].out is not None
                      and c.out.shape == base[i].out.shape and not torch.allclose(c.out, base[i].out)}
    out = {}
    for k in probe:
        own = [c for c in cands if c[0] in depends[k] and all(c[0] not in depends[o] for o in probe if o != k)]
        out[k] = _pick(own or [c for c in cands if c[0] in depends[k]])
    return out


def _module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as e:
        raise ValueError(f"{type(model).__name__} has no module {name!r} (see model.named_modules())") from e


# --------------------------------------------------------------------------------------- memory and cost
@dataclass(frozen=True)
class _Profile:
    sample_bytes: int  # activation bytes of one sample's forward (unique module outputs)
    fb_seconds: float  # forward + backward of the whole batch


def _profile(model: nn.Module, inputs: Inputs) -> _Profile:
    """Bytes of every (unique) module output in one forward of the first sample, and the time of that
    sample's forward + backward, scaled to the batch."""
    keys, xs, is_dict = _split(model, inputs)
    one = tuple(x[:1].clone().requires_grad_(True) for x in xs)
    seen: dict[tuple[int, int], int] = {}

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if torch.is_tensor(t):
                seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    fwd = CaptumForward(model, keys if is_dict else None)
    try:
        with _EvalMode(model):
            t0 = time.perf_counter()
            fwd(*one).sum().backward()
            dt = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    inp = sum(x[:1].numel() * 4 for x in xs)
    return _Profile(sample_bytes=sum(seen.values()) + inp, fb_seconds=dt * xs[0].shape[0])


def _budget_rows(cfg: ExplainConfig, sample_bytes: int, *, backward: bool) -> int:
    """How many samples fit in ``cfg.memory_mb`` (activations x2 when a backward keeps them)."""
    per = sample_bytes * (2 if backward else 1)
    return max(1, int(cfg.memory_mb * 2**20 // max(per, 1)))


def _windows(shape: Sequence[int], window: Sequence[int], stride: Sequence[int]) -> int:
    """Number of Captum occlusion windows over ``(T, H, W)`` (window clipped to the input)."""
    n = 1
    for d, w, s in zip(shape, window, stride):
        w = min(w, d)
        n *= (d - w + s - 1) // s + 1 if d > w else 1
    return n


def _blocks(shape: Sequence[int], tube: Sequence[int]) -> int:
    return math.prod(-(-d // min(t, d)) for d, t in zip(shape, tube))


def _passes(model: nn.Module, inputs: Inputs, cfg: ExplainConfig) -> int:
    _, xs, _ = _split(model, inputs)
    m = cfg.method
    if m == "integrated_gradients":
        return 2 * cfg.n_steps
    if m == "smoothgrad":
        return 2 * cfg.nt_samples
    if m in ("saliency", "gradcam", "gradcam_time"):
        return 2
    if m == "guided_gradcam":
        return 2 + 2 * len(xs)
    if m == "occlusion":
        return 1 + sum(_windows(x.shape[2:], cfg.window, cfg.stride) for x in xs)
    return 1 + sum(_blocks(x.shape[2:], cfg.tube) for x in xs)  # feature_ablation (grid count; slic similar)


def _ibs(cfg: ExplainConfig, prof: _Profile, batch: int) -> int:
    """IG ``internal_batch_size``: the rows (steps x examples) the budget holds, at least the batch, at most
    all ``n_steps * batch`` rows."""
    return int(min(cfg.n_steps * batch, max(batch, _budget_rows(cfg, prof.sample_bytes, backward=True))))


def _per_eval(cfg: ExplainConfig, prof: _Profile, batch: int, limit: int) -> int:
    """Perturbations per forward (occlusion / ablation / NoiseTunnel batches) the budget holds."""
    return int(max(1, min(limit, _budget_rows(cfg, prof.sample_bytes, backward=False) // batch)))


def estimate_cost(model: nn.Module, inputs: Inputs, method: str, config: ExplainConfig | None = None) -> CostEstimate:
    """Passes and seconds ``method`` will take on ``inputs``: one timed forward + backward (of the first
    sample, scaled to the batch) times the passes (a gradient counts 2, a forward 1).

    The text reads e.g. ``"integrated_gradients: 32 passes, ~3.2 s (internal batch 8)"``.
    """
    cfg = replace(config or ExplainConfig(), method=method)
    prof = _profile(model, inputs)
    return _estimate(model, inputs, cfg, prof)


def _estimate(model: nn.Module, inputs: Inputs, cfg: ExplainConfig, prof: _Profile) -> CostEstimate:
    passes = _passes(model, inputs, cfg)
    seconds = passes * prof.fb_seconds / 2
    batch = _split(model, inputs)[1][0].shape[0]
    extra = ""
    if cfg.method == "integrated_gradients":
        extra = f" (internal batch {_ibs(cfg, prof, batch)})"
    elif cfg.method in ("occlusion", "feature_ablation"):
        extra = f" ({_per_eval(cfg, prof, batch, passes)} perturbations per eval)"
    return CostEstimate(passes, seconds, f"{cfg.method}: {passes} passes, ~{seconds:.1f} s{extra}")


# ------------------------------------------------------------------------------------------- baselines
def _lookup(pairs: tuple[tuple[str, Any], ...], key: str, default: Any) -> Any:
    return dict(pairs).get(key, default)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur over H and W of every frame (replicate padding).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``.
    """
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    b, c, t, h, w = x.shape
    y = x.reshape(b * c * t, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(b, c, t, h, w)


def time_permutation(frames: int, seed: int) -> Tensor:
    """A seeded permutation of ``range(frames)``, never the identity when ``frames > 1`` (rolled by one
    if the draw is the identity)."""
    perm = torch.randperm(frames, generator=torch.Generator().manual_seed(seed))
    if frames > 1 and torch.equal(perm, torch.arange(frames)):
        perm = torch.roll(perm, 1)
    return perm


def make_baselines(keys: Sequence[str], xs: Sequence[Tensor], cfg: ExplainConfig) -> tuple[Tensor, ...]:
    """IG baselines per input: ``black`` = ``black_value`` of the key (scalar or per channel; 0 default),
    ``blur`` = :func:`gaussian_blur` with ``sigma``, ``shuffle`` = frames permuted in time by one seeded
    permutation shared by every key (keys must then have the same T).

    Shape:
        each ``[B, C, T, H, W]`` like its input.
    """
    if cfg.baseline == "black":
        out = []
        for k, x in zip(keys, xs):
            v = torch.as_tensor(_lookup(cfg.black_value, k, 0.0), dtype=x.dtype).flatten()
            if v.numel() not in (1, x.shape[1]):
                raise ValueError(f"ExplainConfig.black_value[{k!r}] needs 1 or {x.shape[1]} values, got {v.numel()}")
            out.append(torch.zeros_like(x) + v.to(x.device).view(1, -1, 1, 1, 1))
        return tuple(out)
    if cfg.baseline == "blur":
        return tuple(gaussian_blur(x, cfg.sigma) for x in xs)
    ts = {int(x.shape[2]) for x in xs}
    if len(ts) != 1:
        raise ValueError(f"shuffle baseline: every input needs the same T to share one permutation, got {sorted(ts)}")
    perm = time_permutation(ts.pop(), cfg.seed)
    return tuple(x[:, :, perm.to(x.device)] for x in xs)


# ------------------------------------------------------------------------------------- ReLU safety copy
class SplitReLU(nn.Module):
    """Stand-in for one ReLU module called ``n`` times per forward: call ``i`` goes to its own
    ``nn.ReLU`` copy ``relus[i]`` (so hooks of guided backprop / DeepLift see one call per module).
    The counter is reset by a forward-pre-hook on the root module (:func:`guided_safe_copy`)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.relus = nn.ModuleList(nn.ReLU(inplace=False) for _ in range(calls))
        self.count = 0
        self.owner = ""

    def forward(self, x: Tensor) -> Tensor:
        if self.count >= len(self.relus):
            raise RuntimeError(f"ReLU module {self.owner!r} was called {self.count + 1} times in one forward; it was "
                               f"split for {len(self.relus)} calls (call counts vary between forwards)")
        y = self.relus[self.count](x)
        self.count += 1
        return y


def guided_safe_copy(model: nn.Module, inputs: Inputs | None = None) -> nn.Module:
    """A deep copy of ``model`` safe for guided backprop / DeepLift: every ``nn.ReLU`` out-of-place, and
    every ReLU module called more than once in one forward replaced by a :class:`SplitReLU` with one ReLU
    per call (the forward code is unchanged: the module attribute is swapped). The original is untouched.

    Call counts come from one forward on ``inputs`` (default: a tiny probe from ``model.input_spec``);
    a ReLU whose call count differs on a second forward cannot be split and raises a ValueError naming it.
    """
    safe = copy.deepcopy(model)
    probe = inputs if inputs is not None else _probe_input(safe)

    functional = [0]

    def counts() -> dict[str, int]:
        n: dict[str, int] = {}
        hs = [m.register_forward_pre_hook(lambda mod, i, name=name: n.__setitem__(name, n.get(name, 0) + 1))
              for name, m in safe.named_modules() if isinstance(m, nn.ReLU)]
        try:
            with torch.no_grad(), _EvalMode(safe), _ReluCounter() as rc:
                safe(probe)
        finally:
            for h in hs:
                h.remove()
        functional[0] = rc.calls - sum(n.values())  # nn.ReLU.forward calls F.relu once
        return n

    for m in safe.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    first, second = counts(), counts()
    if unstable := sorted(n for n in first if first[n] != second.get(n)):
        raise ValueError(f"ReLU modules {unstable} are called a varying number of times per forward; they cannot be "
                         "split without changing the forward code (give each call its own nn.ReLU)")
    splits: list[SplitReLU] = []
    for name, n in first.items():
        if n > 1:
            parent, _, attr = name.rpartition(".")
            split = SplitReLU(n)
            split.owner = name
            holder = safe.get_submodule(parent) if parent else safe
            if isinstance(holder, (nn.Sequential, nn.ModuleList)):
                holder[int(attr)] = split
            else:
                setattr(holder, attr, split)
            splits.append(split)
    if splits:
        def reset(_m: nn.Module, _i: Any) -> None:
            for s in splits:
                s.count = 0
        safe.register_forward_pre_hook(reset)
    safe.split_relus = [s.owner for s in splits]  # type: ignore[attr-defined]
    safe.functional_relus = functional[0]  # type: ignore[attr-defined]
    if functional[0] > 0:
        warnings.warn(f"{type(model).__name__}: {functional[0]} functional ReLU call(s) (torch.relu / F.relu) per "
                      "forward; guided backprop and DeepLift only modify nn.ReLU modules, so those pass plain "
                      "gradients",
                      stacklevel=2)
    return safe


class _ReluCounter(torch.overrides.TorchFunctionMode):
    """Counts ``torch.relu`` / ``F.relu`` (and in-place variants) calls, module or functional."""

    FUNCS = {torch.relu, torch.relu_, F.relu, F.relu_, torch.Tensor.relu, torch.Tensor.relu_}

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in self.FUNCS:
            self.calls += 1
        return func(*args, **(kwargs or {}))


# -------------------------------------------------------------------------------------------- Grad-CAM
def _capture(model: nn.Module, keys: tuple[str, ...], xs: tuple[Tensor, ...], is_dict: bool, layer: str,
             targets: list[int]) -> tuple[Tensor, Tensor, list[str], bool]:
    """Activation ``A`` and gradient ``G`` of the target logits at ``layer`` (one forward + backward), both
    ``[B, C, t, h, w]`` (folded 2D maps unfolded), the input keys ``A`` depends on, and whether it was folded."""
    mod = _module(model, layer)
    store: dict[str, Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if "a" not in store:  # first call (a module reused inside one forward: its first output)
            if not torch.is_tensor(out):
                raise ValueError(f"layer {layer!r} returns {type(out).__name__}, not a tensor; pick another layer")
            store["a"] = out

    xs = tuple(x.clone().requires_grad_(True) for x in xs)
    h = mod.register_forward_hook(hook)
    try:
        logits = CaptumForward(model, keys if is_dict else None)(*xs)
    finally:
        h.remove()
    a = store["a"]
    deps = torch.autograd.grad(a.sum(), xs, retain_graph=True, allow_unused=True)
    owners = [k for k, g in zip(keys, deps) if g is not None]
    (grad,) = torch.autograd.grad(logits.gather(1, torch.tensor(targets, device=logits.device)[:, None]).sum(), a)
    A, G = a.detach(), grad.detach()
    B, folded = xs[0].shape[0], A.dim() == 4
    if folded:  # folded 2D backbone: [B*N, C, h, w] -> [B, C, N, h, w]
        if A.shape[0] % B:
            raise ValueError(f"layer {layer!r} output {list(A.shape)} is neither [B, C, t, h, w] nor [B*N, C, h, w]")
        n = A.shape[0] // B
        A, G = (t.reshape(B, n, *t.shape[1:]).transpose(1, 2) for t in (A, G))
    elif A.dim() != 5:
        raise ValueError(f"Grad-CAM needs a spatio-temporal layer output, {layer!r} gives {list(A.shape)}")
    return A, G, owners, folded


def layer_cam(A: Tensor, G: Tensor, *, per_time: bool) -> Tensor:
    """Grad-CAM ``ReLU(sum_c alpha_c A_c)`` with ``alpha_c = mean_{t,h,w} G_c`` (``per_time=False``), or
    ``alpha_{c,t} = mean_{h,w} G_{c,t}`` per time slice (``per_time=True``).

    Shape:
        ``A, G [B, C, t, h, w] -> [B, 1, t, h, w]``.
    """
    alpha = G.mean(dim=(3, 4), keepdim=True) if per_time else G.mean(dim=(2, 3, 4), keepdim=True)
    return torch.relu((alpha * A).sum(dim=1, keepdim=True))


def _upsample(cam: Tensor, x: Tensor) -> Tensor:
    """``[B, 1, t, h, w]`` CAM -> ``[B, T, H, W]`` at the input's resolution (trilinear)."""
    from captum.attr import LayerAttribution

    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "trilinear")[:, 0]


def _gradcam(model: nn.Module, keys: tuple[str, ...], xs: tuple[Tensor, ...], is_dict: bool, layer: str,
             targets: list[int], per_time: bool) -> tuple[dict[str, Tensor], list[str]]:
    """Upsampled CAM ``[B, T, H, W]`` per input key the layer depends on."""
    A, G, owners, folded = _capture(model, keys, xs, is_dict, layer, targets)
    if not owners:
        raise ValueError(f"layer {layer!r} does not depend on any input")
    if per_time or folded:
        cam = layer_cam(A, G, per_time=per_time)
    else:  # a 5-D layer: Captum's LayerGradCam (alpha over t, h, w)
        from captum.attr import LayerGradCam

        lgc = LayerGradCam(CaptumForward(model, keys if is_dict else None), _module(model, layer))
        cam = lgc.attribute(tuple(xs), target=targets, relu_attributions=True).detach()
    return {k: _upsample(cam, xs[keys.index(k)]).clamp_min(0) for k in owners}, owners


# ------------------------------------------------------------------------------------ feature ablation
def tube_mask(x: Tensor, tube: Triple, segmentation: str = "grid", *, offset: int = 0) -> Tensor:
    """Supervoxel ids, the same over channels: ``grid`` = ``t x h x w`` blocks; ``slic`` = superpixels of
    each sample's temporal-mean frame (``cv2.ximgproc.createSuperpixelSLIC``, region size ``tube[1]``)
    x time blocks of ``tube[0]``. Ids are consecutive from ``offset``.

    Shape:
        ``x [B, C, T, H, W] -> [1, 1, T, H, W]`` (grid) or ``[B, 1, T, H, W]`` (slic), int64.
    """
    B, _, T, H, W = x.shape
    tt = torch.arange(T) // min(tube[0], T)
    if segmentation == "grid":
        hh, ww = torch.arange(H) // min(tube[1], H), torch.arange(W) // min(tube[2], W)
        nh, nw = int(hh.max()) + 1, int(ww.max()) + 1
        ids = (tt[:, None, None] * nh + hh[None, :, None]) * nw + ww[None, None, :]
        return (ids + offset)[None, None]
    import cv2

    masks = []
    for b in range(B):
        frame = x[b].mean(dim=(0, 1)).detach().cpu().numpy()  # temporal and channel mean [H, W]
        lo, hi = float(frame.min()), float(frame.max())
        img = np.ascontiguousarray(((frame - lo) / (hi - lo + 1e-12) * 255).astype(np.uint8))
        slic = cv2.ximgproc.createSuperpixelSLIC(img, algorithm=cv2.ximgproc.SLICO, region_size=max(2, tube[1]))
        slic.iterate(10)
        sp = torch.from_numpy(slic.getLabels().astype(np.int64))  # [H, W]
        _, sp = torch.unique(sp, return_inverse=True)
        n = int(sp.max()) + 1
        masks.append(tt[:, None, None] * n + sp[None])
    mask = torch.stack(masks)[:, None]  # [B, 1, T, H, W]
    _, mask = torch.unique(mask, return_inverse=True)  # consecutive ids
    return mask + offset


# ---------------------------------------------------------------------------------------------- attribute
def attribute(model: nn.Module, inputs: Inputs, target: Target = None, method: str = "integrated_gradients", *,
              config: ExplainConfig | None = None, verbose: bool = True, **overrides: Any) -> Attribution:
    """Attribute ``model``'s ``target`` logit on ``inputs`` with ``method`` (one of :data:`METHODS`).

    ``target``: None = the predicted class, an int, or one class per batch item. ``config`` /
    ``overrides``: :class:`ExplainConfig` fields (``overrides`` win; ``method`` replaces ``config.method``).
    With ``verbose`` the cost estimate is printed first when it exceeds ``announce_seconds``.

    Shape:
        ``inputs [B, C, T, H, W]`` or ``{key: [B, C_k, T_k, H, W]}`` -> ``raw[key]`` (input shape),
        ``maps[key] [B, T_k, H, W]``.
    """
    from captum import attr as ca

    cfg = replace(config or ExplainConfig(), method=method, **overrides)
    keys, xs, is_dict = _split(model, inputs)
    B = xs[0].shape[0]
    meta: dict[str, Any] = {"method": cfg.method}
    with _EvalMode(model):
        targets = _targets(model, dict(zip(keys, xs)) if is_dict else xs[0], target, B)
        prof = _profile(model, inputs) if (verbose or cfg.method in ("integrated_gradients", "smoothgrad", "occlusion",
                                                                      "feature_ablation")) else None
        if verbose and prof is not None:
            est = _estimate(model, inputs, cfg, prof)
            meta["estimate"] = est.text
            if est.seconds > cfg.announce_seconds:
                print(est.text, flush=True)
        fwd = CaptumForward(model, keys if is_dict else None)
        t0 = time.perf_counter()
        raw: dict[str, Tensor] = {}
        maps: dict[str, Tensor] = {}
        m = cfg.method
        if m == "integrated_gradients":
            ibs = _ibs(cfg, prof, B)
            base = make_baselines(keys, xs, cfg)
            ig = ca.IntegratedGradients(fwd)
            out, delta = ig.attribute(xs, baselines=base, target=targets, n_steps=cfg.n_steps,
                                      internal_batch_size=ibs, return_convergence_delta=True)
            raw = dict(zip(keys, out))
            meta.update(baseline=cfg.baseline, n_steps=cfg.n_steps, internal_batch_size=ibs,
                        convergence_delta=delta.detach().cpu())
        elif m == "saliency":
            raw = dict(zip(keys, ca.Saliency(fwd).attribute(_grad(xs), target=targets, abs=True)))
        elif m == "smoothgrad":
            stdevs = tuple(float(_lookup(cfg.noise_by_key, k, cfg.noise_std) * (x.max() - x.min()).clamp_min(1e-12))
                           for k, x in zip(keys, xs))
            nt_batch = _per_eval(cfg, prof, B, cfg.nt_samples) if prof is not None else cfg.nt_samples
            nt = ca.NoiseTunnel(ca.Saliency(fwd))
            with torch.random.fork_rng(devices=[xs[0].device] if xs[0].is_cuda else []):
                torch.manual_seed(cfg.seed)
                out = nt.attribute(_grad(xs), nt_type="smoothgrad", nt_samples=cfg.nt_samples,
                                   nt_samples_batch_size=nt_batch, stdevs=stdevs, target=targets, abs=True)
            raw = dict(zip(keys, out))
            meta.update(stdevs=dict(zip(keys, stdevs)), nt_samples=cfg.nt_samples, nt_samples_batch_size=nt_batch)
        elif m in ("gradcam", "gradcam_time"):
            layer = cfg.layer or default_layer(model)
            maps, owners = _gradcam(model, keys, xs, is_dict, layer, targets, per_time=m == "gradcam_time")
            raw = {k: maps[k][:, None].expand_as(xs[keys.index(k)]) / xs[keys.index(k)].shape[1] for k in owners}
            meta.update(layer=layer, keys=owners)
        elif m == "guided_gradcam":
            layers = dict(cfg.layers_by_key)
            if cfg.layer is not None and not is_dict:
                layers[VIDEO_KEY] = cfg.layer
            if not all(k in layers for k in keys):
                layers = {**default_layers_by_key(model), **layers}
            safe = guided_safe_copy(model, dict(zip(keys, xs)) if is_dict else xs[0]).eval()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                gb = ca.GuidedBackprop(CaptumForward(safe, keys if is_dict else None)).attribute(_grad(xs),
                                                                                                 target=targets)
            for i, k in enumerate(keys):
                cams, _ = _gradcam(model, keys, xs, is_dict, layers[k], targets, per_time=False)
                if k not in cams:
                    raise ValueError(f"guided_gradcam: layer {layers[k]!r} does not depend on input {k!r}; set "
                                     f"layers_by_key=(({k!r}, <a layer of that stream>),)")
                raw[k] = gb[i] * cams[k][:, None]
            meta.update(layers_by_key={k: layers[k] for k in keys}, split_relus=list(safe.split_relus))
        elif m == "occlusion":
            windows = tuple((x.shape[1], *(min(w, d) for w, d in zip(cfg.window, x.shape[2:]))) for x in xs)
            strides = tuple((x.shape[1], *cfg.stride) for x in xs)
            n = sum(_windows(x.shape[2:], cfg.window, cfg.stride) for x in xs)
            ppe = _per_eval(cfg, prof, B, n)
            out = ca.Occlusion(fwd).attribute(xs, sliding_window_shapes=windows, strides=strides,
                                              baselines=tuple(0.0 for _ in xs), target=targets,
                                              perturbations_per_eval=ppe)
            raw = dict(zip(keys, out))
            meta.update(window=cfg.window, stride=cfg.stride, perturbations_per_eval=ppe, windows=n)
        else:  # feature_ablation
            masks, offset = [], 0
            for x in xs:
                mk = tube_mask(x, cfg.tube, cfg.segmentation, offset=offset).to(x.device)
                masks.append(mk)
                offset = int(mk.max()) + 1
            ppe = _per_eval(cfg, prof, B, offset)
            out = ca.FeatureAblation(fwd).attribute(xs, baselines=tuple(0.0 for _ in xs), target=targets,
                                                    feature_mask=tuple(masks), perturbations_per_eval=ppe)
            raw = dict(zip(keys, out))
            meta.update(tube=cfg.tube, segmentation=cfg.segmentation, features=offset, perturbations_per_eval=ppe,
                        feature_mask={k: mk for k, mk in zip(keys, masks)})
        seconds = time.perf_counter() - t0
    raw = {k: v.detach().float().cpu().contiguous() for k, v in raw.items()}
    if not maps:
        maps = {k: v.abs().sum(dim=1) for k, v in raw.items()}
    maps = {k: v.detach().float().cpu() for k, v in maps.items()}
    return Attribution(method=m, target=targets, raw=raw, maps=maps, seconds=seconds, meta=meta)


# --------------------------------------------------------------------------------------------- ablations
def _probs(model: nn.Module, inputs: Inputs, targets: list[int]) -> Tensor:
    with torch.no_grad():
        p = torch.softmax(model_logits(model, inputs), dim=1)
    return p.gather(1, torch.tensor(targets, device=p.device)[:, None])[:, 0]


def modality_ablation(model: nn.Module, inputs: Mapping[str, Tensor], target: Target = None) -> dict[str, float]:
    """Drop of the target's softmax probability (mean over the batch) when each whole modality is replaced
    by zeros: ``{key: p(target | inputs) - p(target | inputs with key zeroed)}``."""
    if not isinstance(inputs, Mapping):
        raise TypeError("modality_ablation takes a dict of modalities {key: [B, C, T, H, W]}")
    keys, xs, _ = _split(model, inputs)
    full = dict(zip(keys, xs))
    with _EvalMode(model):
        targets = _targets(model, full, target, xs[0].shape[0])
        p = _probs(model, full, targets)
        return {k: float((p - _probs(model, {**full, k: torch.zeros_like(full[k])}, targets)).mean()) for k in keys}


def model_pathways(model: nn.Module) -> dict[str, int]:
    """``{pathway: index of its feature in head(*features)}`` for STIN (pathways in use, sparse first) and
    SlowFast; a ValueError for models without pathways."""
    from ..models.slowfast import SlowFast
    from ..models.stin import STIN

    if isinstance(model, SlowFast):
        return {"slow": 0, "fast": 1}
    if isinstance(model, STIN):
        used = [p for p in ("sparse", "dense") if getattr(model, p) is not None]
        return {p: i for i, p in enumerate(used)}
    raise ValueError(f"{type(model).__name__} has no known pathways (STIN, SlowFast); pass pathways={{name: index}} "
                     "for a head called with one feature map per pathway")


def pathway_ablation(model: nn.Module, x: Tensor, target: Target = None, *, head: str = "head",
                     pathways: Mapping[str, int] | None = None) -> dict[str, float]:
    """Drop of the target's softmax probability (mean over the batch) when pathway ``i``'s feature map,
    argument ``i`` of ``model.<head>(*features)``, is zeroed by a forward-pre-hook on the head."""
    pathways = dict(pathways) if pathways is not None else model_pathways(model)
    mod = _module(model, head)
    with _EvalMode(model):
        targets = _targets(model, x, target, x.shape[0])
        p = _probs(model, x, targets)
        out = {}
        for name, i in pathways.items():
            def pre(_m: nn.Module, args: tuple[Any, ...], i: int = i) -> tuple[Any, ...]:
                if i >= len(args):
                    raise ValueError(f"pathway index {i} but {head!r} was called with {len(args)} feature(s)")
                return tuple(torch.zeros_like(a) if j == i else a for j, a in enumerate(args))

            h = mod.register_forward_pre_hook(pre)
            try:
                out[name] = float((p - _probs(model, x, targets)).mean())
            finally:
                h.remove()
        return out


__all__ = ["METHODS", "BASELINES", "Attribution", "CaptumForward", "CostEstimate", "ExplainConfig", "SplitReLU",
           "attribute", "default_layer", "default_layers_by_key", "estimate_cost", "gaussian_blur", "guided_safe_copy",
           "layer_cam", "make_baselines", "model_pathways", "modality_ablation", "pathway_ablation", "time_permutation",
           "tube_mask"]
