"""Views of explanations: heat maps over frames, attention maps, per-frame importance, an ipywidgets explorer.

Every figure is plain plotly (offline: :func:`stia_kit.viz.save_html` or :mod:`stia_kit.explain.report`
embed the JS), titles say what is plotted. Interactive pieces use plotly's own frames + sliders, so they
work in a saved HTML file without a kernel; :class:`Explorer` is the one ipywidgets view (a kernel is needed
to recompute; :meth:`Explorer.static_figure` is what renders under papermill).

Conventions: a clip is ``[T, H, W, 3]`` uint8 (:func:`stia_kit.viz.clip_to_uint8`), a map ``[T, H, W]``
float (any non-negative relevance; each method is normalised to [0, 1] over the whole clip, so frames of one
method are comparable, methods are not compared by absolute value).
"""
from __future__ import annotations

import io
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: attention record kinds (stia_kit.explain.recorder) -> shape of ONE batch item, for error messages
KIND_SHAPES: dict[str, str] = {
    "channel": "[C]",
    "spatiotemporal": "[1, T, H, W]",
    "temporal_matrix": "[T, T]",
    "spatial_matrix": "[H*W, H*W]",
    "axial": "[N, L, L]",
    "segment": "[N]",
    "segment_spatial": "[N, l, h, w]",
    "sequence": "[Lq, Lk] or [heads, Lq, Lk]",
}
_KIND_NDIM: dict[str, tuple[int, ...]] = {
    "channel": (1,), "spatiotemporal": (4,), "temporal_matrix": (2,), "spatial_matrix": (2,), "axial": (3,),
    "segment": (1,), "segment_spatial": (4,), "sequence": (2, 3),
}
#: kinds whose recorded map has no batch dimension (STIN's axial maps fold batch and the other axes into N)
UNBATCHED_KINDS = frozenset({"axial"})
_HEAT = "Inferno"
#: overlay colours: transparent at 0 (the frame shows through where nothing is relevant), inferno-like above
OVERLAY = [[0.0, "rgba(0,0,4,0)"], [0.2, "rgba(87,16,110,0.45)"], [0.45, "rgba(188,55,84,0.8)"],
           [0.7, "rgba(249,142,9,1)"], [1.0, "rgba(252,255,164,1)"]]
_PANEL = 220  # pixels per image panel


def to_numpy(array: Any) -> np.ndarray:
    """A numpy copy of ``array`` (torch tensors are detached and moved to the CPU first)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().float().numpy()
    return np.asarray(array)


def normalise(m: np.ndarray) -> np.ndarray:
    """``m`` scaled to [0, 1] over all its entries (a constant map -> zeros); non-finite values raise."""
    m = to_numpy(m).astype(np.float64)
    if not np.isfinite(m).all():
        raise ValueError("map contains non-finite values")
    lo, hi = float(m.min()), float(m.max())
    return np.zeros_like(m) if hi - lo <= 0 else (m - lo) / (hi - lo)


def _check_clip(clip: Any) -> np.ndarray:
    clip = to_numpy(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"clip: expected uint8 [T, H, W, 3], got shape {clip.shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"clip: expected dtype uint8 (stia_kit.viz.clip_to_uint8), got {clip.dtype}")
    return clip


def _check_maps(clip: np.ndarray, maps: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, m in maps.items():
        m = to_numpy(m)
        if m.ndim != 3 or m.shape[0] != clip.shape[0]:
            raise ValueError(f"map {name!r}: expected [T, H, W] with T = {clip.shape[0]} (the clip's), "
                             f"got shape {m.shape}")
        out[name] = normalise(m)
    return out


def _heat(m: np.ndarray, clip_hw: tuple[int, int], opacity: float, showscale: bool) -> go.Heatmap:
    """One ``[h, w]`` map as a heatmap over an image of ``clip_hw`` pixels (stretched when h, w differ)."""
    h, w = m.shape
    dy, dx = clip_hw[0] / h, clip_hw[1] / w
    return go.Heatmap(z=m.astype(np.float32), x0=(dx - 1) / 2, dx=dx, y0=(dy - 1) / 2, dy=dy, zmin=0, zmax=1,
                      colorscale=OVERLAY, opacity=opacity, showscale=showscale,
                      colorbar=dict(title="relevance<br>(0-1 per method)", len=0.8),
                      hovertemplate="x %{x:.0f}, y %{y:.0f}: %{z:.2f}<extra></extra>")


def _slider(labels: Sequence[str], prefix: str, *, play: bool) -> dict[str, Any]:
    """layout kwargs: a slider over the figure's frames (named by ``labels``), optionally play/pause."""
    steps = [dict(method="animate", label=lab,
                  args=[[lab], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for lab in labels]
    layout: dict[str, Any] = dict(sliders=[dict(steps=steps, active=0, currentvalue=dict(prefix=prefix), pad=dict(t=30))])
    if play:
        layout["updatemenus"] = [dict(type="buttons", showactive=False, direction="left", x=0, y=0, xanchor="right",
                                      yanchor="top", pad=dict(t=30, r=10), buttons=[
            dict(label="play", method="animate",
                 args=[None, dict(frame=dict(duration=150, redraw=True), fromcurrent=True, transition=dict(duration=0))]),
            dict(label="pause", method="animate",
                 args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))])])]
    return layout


def heatmap_slider(clip: Any, maps: Mapping[str, Any], *, title: str, opacity: float = 0.5) -> go.Figure:
    """The clip and one panel per method (its map over the frame), ONE frame slider driving every panel.

    Also :func:`methods_side_by_side`. Each map is normalised to [0, 1] over the whole clip.

    Shape:
        clip ``[T, H, W, 3]`` uint8; each map ``[T, h, w]`` (``h, w`` usually ``H, W``; a coarser map is
        stretched over the frame). The figure has ``T`` frames and a slider of ``T`` steps.
    """
    clip = _check_clip(clip)
    maps = _check_maps(clip, maps)
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    names = list(maps)
    hw = clip.shape[1:3]
    fig = make_subplots(rows=1, cols=1 + len(names), horizontal_spacing=0.02,
                        subplot_titles=["clip"] + [f"{n} (overlay)" for n in names])

    def panel_traces(t: int) -> list[go.BaseTraceType]:
        traces: list[go.BaseTraceType] = [go.Image(z=clip[t], hoverinfo="skip")]
        for i, n in enumerate(names):
            traces += [go.Image(z=clip[t], hoverinfo="skip"), _heat(maps[n][t], hw, opacity, showscale=i == 0)]
        return traces

    cols = [1] + [c for i in range(len(names)) for c in (i + 2, i + 2)]
    for trace, col in zip(panel_traces(0), cols):
        fig.add_trace(trace, row=1, col=col)
    labels = [str(t) for t in range(len(clip))]
    fig.frames = [go.Frame(data=panel_traces(t), name=labels[t], traces=list(range(len(cols))))
                  for t in range(len(clip))]
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(title=title, height=_PANEL + 170, width=max(420, (_PANEL + 10) * (1 + len(names)) + 120),
                      margin=dict(l=10, r=10, t=70, b=10), **_slider(labels, "frame ", play=True))
    return fig


def methods_side_by_side(clip: Any, maps: Mapping[str, Any], *, title: str, opacity: float = 0.5) -> go.Figure:
    """Several methods' maps on the same clip, one frame slider (the same figure as :func:`heatmap_slider`)."""
    return heatmap_slider(clip, maps, title=title, opacity=opacity)


def frames_grid(clip: Any, maps: Mapping[str, Any], *, frames: int = 6, title: str, opacity: float = 0.5) -> go.Figure:
    """A static grid (no slider; for printing and papermill): one row for the clip, one per method, ``frames``
    evenly spaced frames per row, each map normalised over the whole clip.

    Shape:
        clip ``[T, H, W, 3]`` uint8; each map ``[T, h, w]``.
    """
    clip = _check_clip(clip)
    maps = _check_maps(clip, maps)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    idx = np.unique(np.linspace(0, len(clip) - 1, min(frames, len(clip))).round().astype(int))
    rows = ["clip"] + list(maps)
    fig = make_subplots(rows=len(rows), cols=len(idx), horizontal_spacing=0.005, vertical_spacing=0.02,
                        row_titles=rows, column_titles=[f"frame {t}" for t in idx])
    for c, t in enumerate(idx, start=1):
        fig.add_trace(go.Image(z=clip[t], hoverinfo="skip"), row=1, col=c)
        for r, name in enumerate(maps, start=2):
            fig.add_trace(go.Image(z=clip[t], hoverinfo="skip"), row=r, col=c)
            fig.add_trace(_heat(maps[name][t], clip.shape[1:3], opacity, showscale=(r, c) == (2, 1)), row=r, col=c)
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(title=title, height=120 * len(rows) + 90, width=120 * len(idx) + 200,
                      margin=dict(l=5, r=120, t=80, b=5))
    return fig


def _check_kind(name: str, kind: str, a: np.ndarray) -> None:
    if kind not in _KIND_NDIM:
        raise ValueError(f"attention {name!r}: unknown kind {kind!r}; expected one of {sorted(_KIND_NDIM)}")
    bad = a.ndim not in _KIND_NDIM[kind] or a.size == 0
    if kind == "spatiotemporal" and a.ndim == 4:
        bad = bad or a.shape[0] != 1
    if kind in ("temporal_matrix", "spatial_matrix") and a.ndim == 2:
        bad = bad or a.shape[0] != a.shape[1]
    if kind == "axial" and a.ndim == 3:
        bad = bad or a.shape[1] != a.shape[2]
    if bad:
        raise ValueError(f"attention {name!r}: kind {kind!r} expects one batch item of shape {KIND_SHAPES[kind]}, "
                         f"got shape {tuple(a.shape)}")


def _matrix(z: np.ndarray, *, showscale: bool = True, zmax: float | None = None) -> go.Heatmap:
    return go.Heatmap(z=z.astype(np.float32), colorscale="Viridis", zmin=0, zmax=zmax, showscale=showscale,
                      colorbar=dict(title="weight"), hovertemplate="query %{y}, key %{x}: %{z:.3f}<extra></extra>")


def attention_figure(name: str, kind: str, array: Any, *, title: str | None = None) -> go.Figure:
    """One batch item of a recorded attention map (kinds of :mod:`stia_kit.explain.recorder`).

    "channel" and "segment": bar charts; "temporal_matrix", "spatial_matrix", "axial" (mean over N) and
    "sequence" (heads: a slider over the head mean and each head): matrix heat maps, rows = queries;
    "spatiotemporal": a heat map with a time slider; "segment_spatial": the ``l`` maps side by side with a
    slider over segments.

    Shape:
        ``array`` as in :data:`KIND_SHAPES` (the recorder's shape without the batch dimension, except "axial",
        whose ``[N, L, L]`` is taken whole). A mismatch raises ``ValueError`` naming kind and shape.
    """
    a = to_numpy(array).astype(np.float64)
    _check_kind(name, kind, a)
    if not np.isfinite(a).all():
        raise ValueError(f"attention {name!r}: map contains non-finite values")
    shape = "x".join(map(str, a.shape))
    fig: go.Figure
    if kind in ("channel", "segment"):
        unit = "channel" if kind == "channel" else "segment"
        fig = go.Figure(go.Bar(x=np.arange(len(a)), y=a, hovertemplate=unit + " %{x}: %{y:.3f}<extra></extra>"))
        fig.update_layout(xaxis_title=unit, yaxis_title="weight", height=340, width=max(420, min(1000, 12 * len(a) + 200)))
        default = f"{name}: {unit} weights ({len(a)} {unit}s)"
    elif kind in ("temporal_matrix", "spatial_matrix", "axial") or (kind == "sequence" and a.ndim == 2):
        z = a.mean(axis=0) if kind == "axial" else a
        fig = go.Figure(_matrix(z))
        axis = {"temporal_matrix": "time step", "spatial_matrix": "position (h*W + w)", "axial": "position along the axis",
                "sequence": "token"}[kind]
        fig.update_layout(xaxis_title=f"key {axis}", yaxis_title=f"query {axis}", yaxis_autorange="reversed",
                          height=460, width=520)
        default = (f"{name}: axial attention, mean over N = {a.shape[0]} lines ({a.shape[1]}x{a.shape[2]})" if kind == "axial"
                   else f"{name}: {kind.replace('_', ' ')} (query x key, {shape})")
    elif kind == "sequence":  # [heads, Lq, Lk]: slider over the head mean and each head
        zs = [a.mean(axis=0)] + list(a)
        labels = ["mean"] + [f"head {h}" for h in range(a.shape[0])]
        zmax = float(a.max())
        fig = go.Figure(_matrix(zs[0], zmax=zmax))
        fig.frames = [go.Frame(data=[_matrix(z, zmax=zmax)], name=lab, traces=[0]) for z, lab in zip(zs, labels)]
        fig.update_layout(xaxis_title="key token", yaxis_title="query token", yaxis_autorange="reversed",
                          height=520, width=520, **_slider(labels, "", play=False))
        default = f"{name}: attention weights per head ({a.shape[0]} heads, {a.shape[1]}x{a.shape[2]})"
    elif kind == "spatiotemporal":
        z = a[0]
        zmax = float(z.max())
        labels = [str(t) for t in range(z.shape[0])]
        heat = lambda m: go.Heatmap(z=m.astype(np.float32), colorscale=_HEAT, zmin=0, zmax=zmax,  # noqa: E731
                                    colorbar=dict(title="weight"), hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>")
        fig = go.Figure(heat(z[0]))
        fig.frames = [go.Frame(data=[heat(z[t])], name=labels[t], traces=[0]) for t in range(z.shape[0])]
        fig.update_layout(yaxis_autorange="reversed", yaxis_scaleanchor="x", height=480, width=460,
                          **_slider(labels, "time step ", play=True))
        default = f"{name}: spatio-temporal weights over {z.shape[0]} time steps ({z.shape[1]}x{z.shape[2]})"
    else:  # segment_spatial [N, l, h, w]
        n, l = a.shape[:2]
        zmax = float(a.max())
        fig = make_subplots(rows=1, cols=l, subplot_titles=[f"map {j}" for j in range(l)], horizontal_spacing=0.03)

        def maps_at(s: int) -> list[go.Heatmap]:
            return [go.Heatmap(z=a[s, j].astype(np.float32), colorscale=_HEAT, zmin=0, zmax=zmax, showscale=j == 0,
                               colorbar=dict(title="weight"), hovertemplate="x %{x}, y %{y}: %{z:.3f}<extra></extra>")
                    for j in range(l)]

        for j, tr in enumerate(maps_at(0), start=1):
            fig.add_trace(tr, row=1, col=j)
        labels = [str(s) for s in range(n)]
        fig.frames = [go.Frame(data=maps_at(s), name=labels[s], traces=list(range(l))) for s in range(n)]
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(height=360, width=max(420, 230 * l + 120), **_slider(labels, "segment ", play=False))
        default = f"{name}: {l} spatial attention maps per segment ({n} segments, {a.shape[2]}x{a.shape[3]})"
    fig.update_layout(title=title or default, margin=dict(l=60, r=20, t=70, b=50))
    return fig


def attention_items(records: Sequence[Any], *, item: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """Recorder records -> ``(name, kind, array)`` triples of batch item ``item`` for :func:`attention_figure`.

    Dict-valued maps (kind "dict") become one triple per key, named ``name/key``; their kind is the key for
    "channel" / "spatiotemporal" and "segment" for STILT's ``[B, N]`` co-attention. ``records`` holds objects
    with ``name``, ``kind`` and ``map`` (``stia_kit.explain.recorder.Record``) or ready triples.
    """
    out: list[tuple[str, str, np.ndarray]] = []

    def add(name: str, kind: str, m: Any) -> None:
        m = to_numpy(m)
        out.append((name, kind, m if kind in UNBATCHED_KINDS else m[item]))

    for r in records:
        name, kind, m = (r.name, r.kind, r.map) if hasattr(r, "kind") else r
        if kind == "dict" or isinstance(m, Mapping):
            for key, v in m.items():
                sub = key if key in _KIND_NDIM else ("segment" if to_numpy(v).ndim == 2 else "sequence")
                add(f"{name}/{key}", sub, v)
        else:
            add(name, kind, m)
    return out


def frame_importance(curves: Mapping[str, Any], *, title: str, active: Any = None) -> go.Figure:
    """Per-frame importance of each method (lines), the action's active frames shaded when ``active`` is given.

    Shape:
        each curve ``[T]`` (e.g. :func:`stia_kit.explain.measures.frame_mass`); ``active`` bool ``[T]``.
    """
    if not curves:
        raise ValueError("curves: at least one method needed")
    arrays = {k: to_numpy(v).astype(np.float64) for k, v in curves.items()}
    lengths = {k: v.shape for k, v in arrays.items()}
    if any(v.ndim != 1 for v in arrays.values()) or len({v.shape for v in arrays.values()}) != 1:
        raise ValueError(f"curves: expected 1-D arrays of one length [T], got shapes {lengths}")
    t_len = next(iter(arrays.values())).shape[0]
    fig = go.Figure()
    if active is not None:
        act = to_numpy(active).astype(bool)
        if act.shape != (t_len,):
            raise ValueError(f"active: expected bool [T] with T = {t_len}, got shape {act.shape}")
        edges = np.diff(np.concatenate([[0], act.astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            fig.add_vrect(x0=s - 0.5, x1=e - 0.5, fillcolor="orange", opacity=0.2, line_width=0, layer="below")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color="orange", opacity=0.4,
                                 symbol="square", size=12), name="action active"))
    for name, v in arrays.items():
        fig.add_trace(go.Scatter(x=np.arange(t_len), y=v, mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title="frame", yaxis_title="importance", height=360, width=720,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig


Key = tuple[Hashable, Hashable, Hashable, Hashable, Hashable]


def _values(options: Sequence[Any]) -> list[Any]:
    """Option values of a Dropdown option list (plain values or ``(label, value)`` pairs)."""
    return [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in options]


class Explorer:
    """An ipywidgets explorer: clip x run x method x layer x target dropdowns and a frame slider.

    ``compute(clip_id, run, method, layer, target) -> (clip uint8 [T, H, W, 3], map [T, H, W])`` is called
    once per distinct selection (results cached in :attr:`cache`), so moving the frame slider or coming back to
    a selection never recomputes. :meth:`widget` needs a kernel; :meth:`static_figure` (a plotly figure of
    the current selection) renders without one, e.g. under papermill. Options are lists of values or
    ``(label, value)`` pairs (e.g. ``[("predicted", None), ("sit", 3)]`` for targets); the first is selected.
    """

    FIELDS = ("clip", "run", "method", "layer", "target")

    def __init__(self, compute: Callable[..., tuple[Any, Any]], *, clips: Sequence[Any], runs: Sequence[Any],
                 methods: Sequence[Any], layers: Sequence[Any] = (None,), targets: Sequence[Any] = (None,),
                 opacity: float = 0.5) -> None:
        self.compute = compute
        self.options = dict(clip=list(clips), run=list(runs), method=list(methods), layer=list(layers),
                            target=list(targets))
        for field, opts in self.options.items():
            if not opts:
                raise ValueError(f"{field}s: at least one option needed")
        self.opacity = opacity
        self.selection: dict[str, Any] = {f: _values(o)[0] for f, o in self.options.items()}
        self.frame = 0
        self.cache: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
        self.controls: dict[str, Any] = {}  # the widgets of the last .widget() (dropdowns by field, "frame", "image")

    @property
    def key(self) -> Key:
        """The current selection as the cache key ``(clip, run, method, layer, target)``."""
        return tuple(self.selection[f] for f in self.FIELDS)  # type: ignore[return-value]

    def select(self, **selection: Any) -> tuple[np.ndarray, np.ndarray]:
        """Change some of clip / run / method / layer / target and return the (cached) ``(clip, map)``."""
        for field, value in selection.items():
            if field not in self.options:
                raise ValueError(f"unknown field {field!r}; expected one of {self.FIELDS}")
            if value not in _values(self.options[field]):
                raise ValueError(f"{field}: {value!r} is not one of the options {_values(self.options[field])}")
            self.selection[field] = value
        return self.current()

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """``(clip uint8 [T, H, W, 3], map [T, H, W] normalised to [0, 1])`` of the selection (computed once)."""
        key = self.key
        if key not in self.cache:
            clip, m = self.compute(*key)
            clip = _check_clip(clip)
            self.cache[key] = (clip, _check_maps(clip, {"map": m})["map"])
        return self.cache[key]

    def _title(self) -> str:
        s = self.selection
        layer = f", layer {s['layer']}" if s["layer"] is not None else ""
        target = "predicted class" if s["target"] is None else f"class {s['target']}"
        return f"{s['method']} for {target} on clip {s['clip']} (run {s['run']}{layer})"

    def static_figure(self, **selection: Any) -> go.Figure:
        """A plotly figure (frame slider, no kernel needed) of the current selection, updated by ``selection``."""
        clip, m = self.select(**selection)
        return heatmap_slider(clip, {str(self.selection["method"]): m}, title=self._title(), opacity=self.opacity)

    def render_png(self) -> bytes:
        """The current frame (clip | overlay) as PNG bytes, drawn with matplotlib (no pyplot state)."""
        from matplotlib.figure import Figure

        clip, m = self.current()
        t = min(self.frame, len(clip) - 1)
        fig = Figure(figsize=(6.4, 3.4), dpi=80)
        for i, overlay in enumerate((False, True)):
            ax = fig.add_subplot(1, 2, i + 1)
            ax.imshow(clip[t])
            if overlay:
                h, w = clip.shape[1:3]
                ax.imshow(m[t], cmap="inferno", vmin=0, vmax=1, alpha=self.opacity, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                          interpolation="nearest")
            ax.set_title(f"{self.selection['method']} (overlay)" if overlay else f"frame {t}", fontsize=9)
            ax.axis("off")
        fig.suptitle(self._title(), fontsize=9)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def widget(self) -> Any:
        """The ipywidgets box: five dropdowns, a frame slider and the rendered frame (an ``ipywidgets.Image``)."""
        import ipywidgets as w

        drops = {f: w.Dropdown(options=self.options[f], value=self.selection[f], description=f)
                 for f in self.FIELDS}
        clip, _ = self.current()
        slider = w.IntSlider(value=self.frame, min=0, max=len(clip) - 1, description="frame", continuous_update=True)
        image = w.Image(value=self.render_png(), format="png")

        def on_select(change: dict[str, Any]) -> None:
            self.selection.update({f: d.value for f, d in drops.items()})
            clip, _ = self.current()
            slider.max = len(clip) - 1
            self.frame = min(self.frame, slider.max)
            image.value = self.render_png()

        def on_frame(change: dict[str, Any]) -> None:
            self.frame = int(change["new"])
            image.value = self.render_png()

        for d in drops.values():
            d.observe(on_select, names="value")
        slider.observe(on_frame, names="value")
        self.controls = dict(drops, frame=slider, image=image)
        return w.VBox([w.HBox(list(drops.values())[:3]), w.HBox(list(drops.values())[3:] + [slider]), image])
