"""Plotly figures shared by the notebooks: clips, training curves, confusion matrices.

plotly cannot write PNG here (no Chrome): figures are shown inline in notebooks and saved as HTML with the
JS bundled (:func:`save_html`), so they open offline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor


def clip_to_uint8(clip: Tensor | np.ndarray, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """A clip ``[C, T, H, W]`` float (optionally normalised) -> ``[T, H, W, C]`` uint8 for display."""
    x = clip.detach().cpu().float().numpy() if isinstance(clip, Tensor) else np.asarray(clip, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected a clip [C, T, H, W], got shape {x.shape}")
    if mean is not None and std is not None:
        x = x * np.asarray(std, dtype=np.float32)[:, None, None, None] + np.asarray(mean, dtype=np.float32)[:, None, None, None]
    if x.max() > 1.5:  # already 0..255
        x = x / 255.0
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 3, 0)  # [T, H, W, C]


def frame_strip(clips: Sequence[np.ndarray], titles: Sequence[str], *, frames: int = 6) -> go.Figure:
    """One row per clip (``[T, H, W, 3]`` uint8), ``frames`` evenly spaced frames per row."""
    fig = make_subplots(rows=len(clips), cols=frames, horizontal_spacing=0.005, vertical_spacing=0.02,
                        row_titles=list(titles))
    for r, clip in enumerate(clips, start=1):
        for c, t in enumerate(np.linspace(0, len(clip) - 1, frames).round().astype(int), start=1):
            fig.add_trace(go.Image(z=clip[t]), row=r, col=c)
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    fig.update_layout(height=110 * len(clips) + 40, width=110 * frames + 160, margin=dict(l=5, r=120, t=20, b=5))
    return fig


def clip_animation(clip: np.ndarray, title: str = "") -> go.Figure:
    """A plotly frame animation (play button + slider) of one ``[T, H, W, 3]`` uint8 clip."""
    frames = [go.Frame(data=[go.Image(z=f)], name=str(t)) for t, f in enumerate(clip)]
    fig = go.Figure(data=[go.Image(z=clip[0])], frames=frames)
    steps = [dict(method="animate", label=str(t), args=[[str(t)], dict(mode="immediate", frame=dict(duration=0))])
             for t in range(len(clip))]
    fig.update_layout(
        title=title, width=360, height=400, margin=dict(l=5, r=5, t=40, b=5),
        updatemenus=[dict(type="buttons", showactive=False, buttons=[
            dict(label="play", method="animate", args=[None, dict(frame=dict(duration=80, redraw=True), fromcurrent=True)])])],
        sliders=[dict(steps=steps, currentvalue=dict(prefix="frame "))],
    )
    fig.update_xaxes(visible=False).update_yaxes(visible=False)
    return fig


def training_curves(histories: dict[str, list[dict[str, Any]]], title: str = "") -> go.Figure:
    """Loss and top-1 per epoch for several runs; each history is a list of dicts with ``epoch``, ``split``
    (``"train"``/``"val"``), ``loss`` and ``top1`` (the JSONL lines of :mod:`stia_kit.train`)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (mean per clip)", "top-1 accuracy"))
    for name, history in histories.items():
        for split, dash in (("train", "solid"), ("val", "dot")):
            rows = [h for h in history if h.get("split") == split]
            if not rows:
                continue
            epochs = [h["epoch"] for h in rows]
            fig.add_trace(go.Scatter(x=epochs, y=[h["loss"] for h in rows], name=f"{name} {split}",
                                     line=dict(dash=dash), legendgroup=name), row=1, col=1)
            fig.add_trace(go.Scatter(x=epochs, y=[h["top1"] for h in rows], name=f"{name} {split}",
                                     line=dict(dash=dash), legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title or "Loss and top-1 per epoch (solid: training, dotted: validation)",
                      height=380, width=900)
    return fig


def _confusion_trace(confusion: np.ndarray | Tensor, classes: Sequence[str], name: str = "",
                     showscale: bool = True) -> go.Heatmap:
    cm = np.asarray(confusion.cpu() if isinstance(confusion, Tensor) else confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    prefix = f"{name}<br>" if name else ""
    return go.Heatmap(z=norm, x=list(classes), y=list(classes), colorscale="Blues", zmin=0, zmax=1,
                      showscale=showscale, colorbar=dict(title="fraction<br>of true class"),
                      customdata=cm.astype(int), text=np.round(norm, 2), texttemplate="%{text:.2f}",
                      hovertemplate=prefix + "true %{y}<br>predicted %{x}<br>%{z:.2f} of the true class "
                                    "(%{customdata} clips)<extra></extra>")


def confusion_figure(confusion: np.ndarray | Tensor, classes: Sequence[str], title: str = "") -> go.Figure:
    """Heat map of a confusion matrix (rows = true class, columns = predicted), row-normalised: colour and
    numbers are the fraction of each true class predicted as each class; hovering shows the clip counts."""
    fig = go.Figure(_confusion_trace(confusion, classes))
    fig.update_layout(title=title or "Confusion matrix, row-normalised (fraction of each true class)",
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed", height=520, width=580)
    return fig


def confusion_grid(matrices: dict[str, np.ndarray | Tensor], classes: Sequence[str], title: str = "",
                   subtitles: dict[str, str] | None = None) -> go.Figure:
    """Row-normalised confusion matrices side by side, one panel per entry of ``matrices`` (same encoding as
    :func:`confusion_figure`); ``subtitles`` replace the panel names (e.g. with the top-1)."""
    names = list(matrices)
    subtitles = subtitles or {}
    fig = make_subplots(rows=1, cols=len(names), horizontal_spacing=0.03,
                        subplot_titles=[subtitles.get(n, n) for n in names])
    for i, n in enumerate(names, start=1):
        fig.add_trace(_confusion_trace(matrices[n], classes, n, showscale=i == 1), row=1, col=i)
        fig.update_yaxes(autorange="reversed", showticklabels=i == 1, row=1, col=i)
    fig.update_layout(title=title or "Confusion matrices, row-normalised (fraction of each true class)",
                      height=440, width=max(620, 340 * len(names)), margin=dict(l=60, r=10, t=80, b=60))
    return fig


def save_html(fig: go.Figure, path: str | Path) -> Path:
    """Write ``fig`` as a self-contained HTML file (plotly JS embedded; opens offline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
