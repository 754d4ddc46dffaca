"""One attention recorder for every attention module of the kit (issue 11).

:class:`AttentionRecorder` is a context manager: inside it, every forward pass of the model records the maps
of each attention module it runs, by a forward hook that calls the module's own ``attention_map`` on the
inputs the module just received (DESIGN.md: attention modules expose their weights through
``attention_map(inputs)``, computed exactly as ``forward`` uses them). ``nn.MultiheadAttention`` is recorded
too: a fused ``scaled_dot_product_attention`` never returns its weights, so the recorder recomputes them for
the recorded pass only (``need_weights=True``, under ``no_grad``, outside the graph). Hooks are removed on
exit, also when the forward raises.

What is recorded (:data:`ATTENTION_SPECS`, one entry per attention class; ``Record.kind`` and shape):

============================================  ==================  ===============================================
class (model)                                  kind                map shape (B = batch of the recorded forward)
============================================  ==================  ===============================================
``AxialAttention3d`` (STIN W / H / T)          ``axial``           ``[B * (other two axes), L, L]``
``ECA3d`` (STIN dense -> sparse)               ``channel``         ``[B, C]``
``SEBlock`` (SE-BN-Inception: T-STAM)          ``channel``         ``[B', C]`` (B' = B * segments)
``SE3d``, ``FrequencyChannelAttention3d``      ``channel``         ``[B, C]``
``SpatioTemporalAttention3d``                  ``spatiotemporal``  ``[B, 1, T, H, W]``
``CBAM3d``, ``FSAM`` (MSF-Net)                 ``dict``            ``{"channel": [B, C], "spatiotemporal": [B, 1, T, H, W]}``
``TDA`` (ST-MANet ``A_t``)                     ``temporal_matrix`` ``[B, T, T]``
``SDA`` (ST-MANet ``A_s``)                     ``spatial_matrix``  ``[B, H*W, H*W]``
``stilt.CoAttention`` (STILT)                  ``dict``            ``{"spatial": [B, N_s], "temporal": [B, N_t], "summary": [B, N_s]}``
``stilt.GuidedAttention`` (one step)           ``segment``         ``[B, N]`` (inside CoAttention: nested)
``tstam.TemporalAttention`` (T-STAM)           ``segment``         ``[B, N]``
``tstam.MultiSpatialAttention`` (T-STAM)       ``segment_spatial`` ``[B, N, l, h, w]``
``tstam.SpatialAttention`` (one of the l)      ``spatial``         ``[B', h, w]`` (nested)
``nn.MultiheadAttention``                      ``sequence``        ``[B, Lq, Lk]`` (``[B, heads, Lq, Lk]`` unaveraged)
============================================  ==================  ===============================================

Containers that hold attention modules but compute none themselves (``SpatioTemporalSelfAttention``,
``CrossDualAttentionInteraction``, ``STILModule``, ...) are listed in :data:`ATTENTION_CONTAINERS`; the test
over every registered model fails when a module that looks like attention is in neither table, so a new
attention module cannot go unrecorded silently.

``nested=False`` (default) records only the outermost attention modules: a ``FSAM``'s dict already holds its
channel and spatio-temporal parts, a ``CoAttention``'s its three steps. Memory is bounded by ``include``
(names or a predicate), ``to_cpu``, ``average_heads``, ``max_items`` (batch items kept) and ``max_mb`` (stop
recording, and say so in :attr:`AttentionRecorder.dropped`, once the records exceed it).
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..models import attention as A
from ..models import backbones2d, stilt, tstam

Shape = tuple[int, ...]
Expected = Callable[[nn.Module, Sequence[Shape]], "Shape | dict[str, Shape]"]


@dataclass(frozen=True)
class AttentionSpec:
    """How one attention class is recorded: ``kind`` (see the module table) and ``expected(module,
    input_shapes)``, the documented map shape computed from the shapes of the tensors the module received."""

    kind: str  # one of KINDS (or "dict" for a dict of them)
    expected: Expected  # documented map shape from the module's input shapes
    source: str = "attention_map"  # "attention_map": call the module's method; "output[i]": take forward's output i


KINDS = ("channel", "spatiotemporal", "temporal_matrix", "spatial_matrix", "axial", "segment", "segment_spatial",
         "spatial", "sequence", "dict")


def _axial(m: nn.Module, s: Sequence[Shape]) -> Shape:
    b, _, t, h, w = s[0]
    size = {"T": t, "H": h, "W": w}
    length = size[m.axis]  # type: ignore[attr-defined]
    return (b * math.prod(size.values()) // length, length, length)


def _fsam(m: nn.Module, s: Sequence[Shape]) -> dict[str, Shape]:
    b, c, t, h, w = s[0]
    out: dict[str, Shape] = {}
    cbam = isinstance(m, A.CBAM3d)  # CBAM always has both parts; FSAM's can be switched off (fam / sam)
    if cbam or m.fam is not None:
        out["channel"] = (b, c)
    if cbam or m.sam is not None:
        out["spatiotemporal"] = (b, 1, t, h, w)
    return out


def _coattention(m: nn.Module, s: Sequence[Shape]) -> dict[str, Shape]:
    return {"spatial": (s[0][0], s[0][1]), "temporal": (s[1][0], s[1][1]), "summary": (s[0][0], s[0][1])}


def _mha(m: nn.Module, s: Sequence[Shape]) -> Shape:
    q, k = s[0], s[1] if len(s) > 1 else s[0]
    if len(q) == 2:  # unbatched [L, E]
        return (q[0], k[0])
    b, lq, lk = (q[0], q[1], k[1]) if m.batch_first else (q[1], q[0], k[0])  # type: ignore[attr-defined]
    return (b, lq, lk)


#: One entry per attention class of the kit (the module docstring's table).
ATTENTION_SPECS: dict[type, AttentionSpec] = {
    A.AxialAttention3d: AttentionSpec("axial", _axial),
    A.ECA3d: AttentionSpec("channel", lambda m, s: s[0][:2]),
    backbones2d.SEBlock: AttentionSpec("channel", lambda m, s: s[0][:2]),
    A.SE3d: AttentionSpec("channel", lambda m, s: s[0][:2]),
    A.FrequencyChannelAttention3d: AttentionSpec("channel", lambda m, s: s[0][:2]),
    A.SpatioTemporalAttention3d: AttentionSpec("spatiotemporal", lambda m, s: (s[0][0], 1, *s[0][2:])),
    A.CBAM3d: AttentionSpec("dict", _fsam),
    A.FSAM: AttentionSpec("dict", _fsam),
    A.TDA: AttentionSpec("temporal_matrix", lambda m, s: (s[0][0], s[0][2], s[0][2])),
    A.SDA: AttentionSpec("spatial_matrix", lambda m, s: (s[0][0], s[0][3] * s[0][4], s[0][3] * s[0][4])),
    stilt.CoAttention: AttentionSpec("dict", _coattention),
    stilt.GuidedAttention: AttentionSpec("segment", lambda m, s: s[0][:2], source="output[1]"),
    tstam.TemporalAttention: AttentionSpec("segment", lambda m, s: s[0][:2]),
    tstam.MultiSpatialAttention: AttentionSpec(
        "segment_spatial", lambda m, s: (s[0][0], s[0][1], len(m.models), *s[0][3:])),  # type: ignore[arg-type]
    tstam.SpatialAttention: AttentionSpec("spatial", lambda m, s: (s[0][0], *s[0][2:])),
    nn.MultiheadAttention: AttentionSpec("sequence", _mha, source="recompute"),
}

#: Classes that look like attention (by name) but only hold attention modules, or are not attention.
ATTENTION_CONTAINERS: tuple[str, ...] = (
    "SpatioTemporalSelfAttention",  # W / H / T AxialAttention3d, recorded one by one
    "CrossDualAttentionInteraction",  # STIN's CDAI: ECA3d + SpatioTemporalSelfAttention inside
    "STILModule",  # STILT: CoAttention inside
    "TDASeed",  # a 3x1x1 convolution seeding the first TDA (no attention)
)

#: Class names that signal an attention module (the coverage test checks every match is in a table above).
ATTENTION_NAME = re.compile(r"(?i:attention|attn|excit)|^SE(?=[A-Z0-9_]|$)|ECA|CBAM|FSAM|^TDA|^SDA")


def spec_for(module: nn.Module) -> AttentionSpec | None:
    """The :class:`AttentionSpec` of ``module``'s class (or of its nearest registered base class)."""
    for cls in type(module).__mro__:
        if cls in ATTENTION_SPECS:
            return ATTENTION_SPECS[cls]
    return None


def attention_modules(model: nn.Module, *, nested: bool = False) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every recordable attention module below ``model`` (the root itself excluded: a
    model-level ``attention_map`` such as ``STILT.attention_map`` is a convenience over its modules).
    ``nested=False`` drops modules inside another recordable one."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if module is model or spec_for(module) is None:
            continue
        if not nested and any(name.startswith(f"{outer}.") for outer, _ in found):
            continue
        found.append((name, module))
    return found


@dataclass
class Record:
    """One recorded attention map: module ``name``, ``kind`` (module table), ``map`` (tensor, or a dict of
    tensors for kind ``"dict"``), ``call`` (0 for the module's first call in the recorded passes, 1 for the
    next: STIN's axial modules run once per recurrence) and the shapes of the tensors the module received."""

    name: str
    kind: str
    map: Tensor | dict[str, Tensor]
    call: int
    input_shapes: list[Shape] = field(default_factory=list)

    def shapes(self) -> Shape | dict[str, Shape]:
        """Shape of :attr:`map` (a dict of shapes for kind ``"dict"``)."""
        if isinstance(self.map, dict):
            return {k: tuple(v.shape) for k, v in self.map.items()}
        return tuple(self.map.shape)

    def nbytes(self) -> int:
        maps = self.map.values() if isinstance(self.map, dict) else [self.map]
        return sum(t.numel() * t.element_size() for t in maps)


def _positional(fn: Callable[..., Any]) -> tuple[int, set[str]]:
    """Number of positional parameters and the names of all parameters of a bound method."""
    params = inspect.signature(fn).parameters.values()
    n = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    return n, {p.name for p in params}


class AttentionRecorder:
    """Record the maps of every attention module of ``model`` during the forward passes run inside ``with``.

    Args:
        model: any ``nn.Module`` (every registered model).
        include: module names to record (exact names or name prefixes), a regular expression
            string matched against names, or a predicate ``(name, module) -> bool``; None = all.
        to_cpu: move each map to the CPU as it is recorded (bounded device memory).
        average_heads: ``nn.MultiheadAttention`` maps averaged over heads (``[B, Lq, Lk]``) or per head.
        nested: also record attention modules inside another recorded one.
        max_items: keep only the first ``max_items`` batch items of each map (None = all; not applied to
            ``axial`` maps, whose first axis folds the batch with two spatial axes).
        max_mb: stop recording once the stored maps exceed this many MiB (None = no limit); skipped module
            calls are listed in :attr:`dropped`.

    Example::

        with AttentionRecorder(model) as rec:
            logits = model(clip)
        for r in rec.records:
            print(r.name, r.kind, r.shapes())

    Shape:
        ``Record.map`` shapes as in the module table; ``rec.by_name()`` -> ``{name: [Record, ...]}``.
    """

    def __init__(self, model: nn.Module, *, include: str | Iterable[str] | Callable[[str, nn.Module], bool] | None = None,
                 to_cpu: bool = True, average_heads: bool = True, nested: bool = False,
                 max_items: int | None = None, max_mb: float | None = None) -> None:
        if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
            raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
        if max_mb is not None and not max_mb > 0:
            raise ValueError(f"max_mb must be positive or None, got {max_mb!r}")
        self.model = model
        self.to_cpu, self.average_heads, self.max_items = to_cpu, average_heads, max_items
        self.max_bytes = None if max_mb is None else int(max_mb * 2**20)
        self.records: list[Record] = []
        self.dropped: list[str] = []
        self._handles: list[Any] = []
        self._calls: dict[str, int] = {}
        self._busy = False
        self._bytes = 0
        self.modules = [(n, m) for n, m in attention_modules(model, nested=nested) if self._wanted(include, n, m)]
        if include is not None and not self.modules:
            names = [n for n, _ in attention_modules(model, nested=True)]
            raise ValueError(f"include={include!r} matches no attention module of {type(model).__name__} "
                             f"(its attention modules: {names or 'none'})")

    @staticmethod
    def _wanted(include: Any, name: str, module: nn.Module) -> bool:
        if include is None:
            return True
        if callable(include):
            return bool(include(name, module))
        if isinstance(include, str):
            return re.search(include, name) is not None
        return any(name == p or name.startswith(f"{p}.") for p in include)

    # -------------------------------------------------------------------------------------- context manager
    def __enter__(self) -> "AttentionRecorder":
        self.records, self.dropped, self._calls, self._bytes = [], [], {}, 0
        try:
            for name, module in self.modules:
                self._handles.append(module.register_forward_hook(self._hook(name), with_kwargs=True))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (called on exit, also when the forward raised)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -------------------------------------------------------------------------------------------- recording
    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            if self._busy:  # the recompute of an nn.MultiheadAttention calls its forward again
                return
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            if self.max_bytes is not None and self._bytes >= self.max_bytes:
                self.dropped.append(f"{name}#{call}")
                return
            spec = spec_for(module)
            assert spec is not None
            self._busy = True
            try:
                with torch.no_grad():
                    value = self._compute(module, spec, args, kwargs, output)
            finally:
                self._busy = False
            value = self._store(value, spec.kind)
            shapes = [tuple(a.shape) for a in args if isinstance(a, Tensor)]
            shapes += [tuple(v.shape) for k, v in kwargs.items() if isinstance(v, Tensor) and k in ("key", "value")]
            rec = Record(name, spec.kind, value, call, shapes)
            self._bytes += rec.nbytes()
            self.records.append(rec)
        return hook

    def _compute(self, module: nn.Module, spec: AttentionSpec, args: tuple[Any, ...], kwargs: dict[str, Any],
                 output: Any) -> Tensor | dict[str, Tensor]:
        if spec.source.startswith("output["):
            return output[int(spec.source[7:-1])].detach()
        if spec.source == "recompute":  # nn.MultiheadAttention: the weights of this very call
            kw = {k: v for k, v in kwargs.items() if k not in ("need_weights", "average_attn_weights")}
            _, weights = module(*args, **kw, need_weights=True, average_attn_weights=self.average_heads)
            return weights.detach()
        fn = module.attention_map  # type: ignore[attr-defined]
        n, names = _positional(fn)
        value = fn(*args[:n], **{k: v for k, v in kwargs.items() if k in names})
        if isinstance(value, dict):
            return {k: v.detach() for k, v in value.items()}
        return value.detach()

    def _store(self, value: Tensor | dict[str, Tensor], kind: str) -> Tensor | dict[str, Tensor]:
        def one(t: Tensor) -> Tensor:
            if self.max_items is not None and kind != "axial":
                t = t[: self.max_items]
            return t.to("cpu", copy=True) if self.to_cpu else t.clone()
        return {k: one(v) for k, v in value.items()} if isinstance(value, dict) else one(value)

    # ------------------------------------------------------------------------------------------------ access
    def by_name(self) -> dict[str, list[Record]]:
        """Records grouped by module name, in call order."""
        out: dict[str, list[Record]] = {}
        for r in self.records:
            out.setdefault(r.name, []).append(r)
        return out

    def flat(self, *, item: int = 0) -> list[tuple[str, str, Tensor]]:
        """``(label, kind, map of batch item `item`)`` triples, dict maps split into one triple per key
        (label ``"name:key"``, kind of the part) and repeated calls labelled ``"name#call"``: the form the
        views and the HTML report take. Axial maps keep their folded first axis."""
        multi = {n for n, rs in self.by_name().items() if len(rs) > 1}
        out: list[tuple[str, str, Tensor]] = []
        for r in self.records:
            label = f"{r.name}#{r.call}" if r.name in multi else r.name
            parts = r.map.items() if isinstance(r.map, dict) else [("", r.map)]
            for key, t in parts:
                kind = _part_kind(key) if key else r.kind
                out.append((f"{label}:{key}" if key else label, kind, t if kind == "axial" else t[item]))
        return out


def _part_kind(key: str) -> str:
    """Kind of one entry of a dict-valued map (FSAM / CBAM / STILT's co-attention)."""
    return {"channel": "channel", "spatiotemporal": "spatiotemporal"}.get(key, "segment")


def record_attention(model: nn.Module, inputs: Tensor | Mapping[str, Tensor], **options: Any) -> list[Record]:
    """Run ``model(inputs)`` once in eval mode without gradients and return its attention :class:`Record` s
    (``options`` as :class:`AttentionRecorder`). The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with AttentionRecorder(model, **options) as rec, torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
    return rec.records
