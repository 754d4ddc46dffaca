"""One self-contained HTML report of an explanation: the clip, the prediction, maps and attention.

The plotly JS bundle is inlined ONCE in ``<head>``; every figure is a ``<div>`` written with
``include_plotlyjs=False``. No CDN, no external URL is referenced (MathJax off, the plotly logo hidden), so
the file opens offline. Written atomically (:func:`stia_kit.fileio.write_text_atomic`).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from stia_kit.explain.views import attention_figure, attention_items, frames_grid, heatmap_slider, to_numpy
from stia_kit.fileio import write_text_atomic

#: plotly config of every figure in a report (no logo link)
PLOT_CONFIG = {"displaylogo": False, "responsive": False}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 3px 10px; }
tr.true td { font-weight: bold; background: #eef6ee; } .figure { margin: 0.8em 0; } .muted { color: #666; }
"""


def _figure_div(fig: go.Figure, index: int) -> str:
    return ('<div class="figure">'
            + fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=f"stia-fig-{index}",
                          config=PLOT_CONFIG, auto_play=False)
            + "</div>")


def _as_clip(clip: Any) -> np.ndarray:
    """``[T, H, W, 3]`` uint8 as is; a float ``[C, T, H, W]`` clip through :func:`stia_kit.viz.clip_to_uint8`."""
    a = to_numpy(clip)
    if a.dtype == np.uint8 and a.ndim == 4 and a.shape[-1] == 3:
        return a
    from stia_kit.viz import clip_to_uint8

    return clip_to_uint8(a)


def _topk_table(classes: Sequence[str], probs: np.ndarray, label: int | None, k: int) -> str:
    order = np.argsort(-probs, kind="stable")[:k]
    rows = []
    for rank, c in enumerate(order, start=1):
        mark = " (true)" if label is not None and c == label else ""
        cls = ' class="true"' if mark else ""
        rows.append(f"<tr{cls}><td>{rank}</td><td>{html.escape(str(classes[c]))}{mark}</td><td>{probs[c]:.3f}</td></tr>")
    return "<table><tr><th>rank</th><th>class</th><th>probability</th></tr>" + "".join(rows) + "</table>"


def write_report(path: str | Path, *, title: str, clip: Any, classes: Sequence[str], probs: Any,
                 label: int | str | None = None, maps: Mapping[str, Any], attention: Sequence[Any] = (),
                 notes: Sequence[str] = (), meta: Mapping[str, Any] | None = None, top_k: int = 5) -> Path:
    """Write one self-contained HTML report and return its path.

    Sections: title and ``meta`` (a key/value table: run, model, ...), the clip (a frame strip), the
    prediction and top-``k`` table (the true class marked when ``label`` is given, as an index or a class
    name), the maps of each method (:func:`~stia_kit.explain.views.heatmap_slider`, one frame slider), one
    figure per attention record (``(name, kind, array)`` triples of one batch item, or recorder records,
    whose batch item 0 is shown, flattened by :func:`~stia_kit.explain.views.attention_items`), and ``notes``
    (plain strings, escaped).

    Shape:
        clip ``[T, H, W, 3]`` uint8 (or float ``[C, T, H, W]``); probs ``[K]`` with ``K = len(classes)``;
        each map ``[T, H, W]``.
    """
    clip = _as_clip(clip)
    probs = to_numpy(probs).astype(np.float64).reshape(-1)
    if probs.shape[0] != len(classes):
        raise ValueError(f"probs: expected [K] with K = len(classes) = {len(classes)}, got shape {probs.shape}")
    if isinstance(label, str):
        if label not in classes:
            raise ValueError(f"label: {label!r} is not one of the classes")
        label = list(classes).index(label)
    if label is not None and not 0 <= int(label) < len(classes):
        raise ValueError(f"label: index {label} out of range for {len(classes)} classes")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    items = [t for a in attention for t in ([a] if isinstance(a, tuple) else attention_items([a]))]  # records: item 0

    figures: list[tuple[str, go.Figure]] = [
        ("clip", frames_grid(clip, {}, frames=min(8, len(clip)), title=f"Input clip: {min(8, len(clip))} of {len(clip)} frames"))]
    if maps:
        figures.append(("maps", heatmap_slider(clip, maps, title="Relevance of each method over the frames "
                                                                 "(each normalised to 0-1 over the clip)")))
    figures += [("attention", attention_figure(name, kind, arr)) for name, kind, arr in items]
    divs = {sec: [] for sec in ("clip", "maps", "attention")}
    for i, (sec, fig) in enumerate(figures):
        divs[sec].append(_figure_div(fig, i))

    pred = int(np.argmax(probs))
    truth = "" if label is None else (f"; true class <b>{html.escape(str(classes[int(label)]))}</b> "
                                      f"({'correct' if int(label) == pred else 'wrong'})")
    meta_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in (meta or {}).items())
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<table>{meta_rows}</table>" if meta_rows else "",
        "<h2>Clip</h2>", *divs["clip"],
        "<h2>Prediction</h2>",
        f"<p>predicted <b>{html.escape(str(classes[pred]))}</b> (probability {probs[pred]:.3f}){truth}</p>",
        _topk_table(classes, probs, None if label is None else int(label), min(top_k, len(classes))),
        "<h2>Attributions</h2>", *(divs["maps"] or ['<p class="muted">no attribution maps</p>']),
        "<h2>Attention</h2>", *(divs["attention"] or ['<p class="muted">no attention module recorded</p>']),
    ]
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>"]
    page = ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n"
            f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n'
            f'<body data-figures="{len(figures)}">\n' + "\n".join(p for p in parts if p) + "\n</body>\n</html>\n")
    return write_text_atomic(path, page)
