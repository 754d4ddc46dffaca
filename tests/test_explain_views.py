"""Views of explanations: figures per attention kind, frame sliders, shape errors, the self-contained report,
the explorer's cache."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from stia_kit.explain.report import write_report
from stia_kit.explain.views import (Explorer, attention_figure, attention_items, frame_importance, frames_grid,
                                    heatmap_slider, normalise)

T, H, W = 4, 16, 16
RNG = np.random.default_rng(0)
CLIP = RNG.integers(0, 256, (T, H, W, 3), dtype=np.uint8)

#: one batch item per kind -> number of slider frames the figure must have
KINDS = {
    "channel": (RNG.random(8), 0),
    "spatiotemporal": (RNG.random((1, T, 4, 4)), T),
    "temporal_matrix": (RNG.random((T, T)), 0),
    "spatial_matrix": (RNG.random((16, 16)), 0),
    "axial": (RNG.random((5, 4, 4)), 0),
    "segment": (RNG.random(3), 0),
    "segment_spatial": (RNG.random((3, 2, 4, 4)), 3),
    "sequence": (RNG.random((2, 5, 5)), 3),  # head mean + 2 heads
}


def _z(trace: go.BaseTraceType) -> np.ndarray:
    return np.asarray(trace.z, dtype=np.float64)


def test_normalise_per_method_over_the_clip() -> None:
    m = np.arange(2 * 2 * 2, dtype=float).reshape(2, 2, 2) + 3.0
    n = normalise(m)
    assert n.min() == 0 and n.max() == 1 and np.allclose(n.ravel(), np.arange(8) / 7)
    assert (normalise(np.full((2, 3, 3), 5.0)) == 0).all()
    with pytest.raises(ValueError, match="non-finite"):
        normalise(np.array([[[np.nan]]]))


def test_heatmap_slider_one_slider_drives_all_panels() -> None:
    maps = {"saliency": RNG.random((T, H, W)) * 7, "gradcam": RNG.random((T, 4, 4))}
    fig = heatmap_slider(CLIP, maps, title="t", opacity=0.4)
    assert len(fig.layout.sliders) == 1 and len(fig.layout.sliders[0].steps) == T
    assert len(fig.frames) == T and [f.name for f in fig.frames] == [str(t) for t in range(T)]
    types = [tr.type for tr in fig.data]
    assert types == ["image", "image", "heatmap", "image", "heatmap"]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["play", "pause"]
    frame = fig.frames[2]
    assert list(frame.traces) == list(range(5))  # every panel changes with the one slider
    assert np.array_equal(np.asarray(frame.data[0].z), CLIP[2])
    # per-method normalisation over the whole clip: frame 2's heat equals the clip-normalised map at t = 2
    sal = (maps["saliency"] - maps["saliency"].min()) / np.ptp(maps["saliency"])
    assert np.allclose(_z(frame.data[2]), sal[2], atol=1e-6)
    assert max(_z(f.data[2]).max() for f in fig.frames) == pytest.approx(1.0)
    assert fig.data[2].opacity == 0.4 and fig.data[2].zmin == 0 and fig.data[2].zmax == 1
    # the coarse 4x4 Grad-CAM map is stretched over the 16x16 frame
    assert fig.data[4].dx == 4 and fig.data[4].x0 == 1.5


def test_heatmap_slider_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match=r"map 'm'.*T = 4"):
        heatmap_slider(CLIP, {"m": RNG.random((T + 1, H, W))}, title="t")
    with pytest.raises(ValueError, match=r"clip.*\[T, H, W, 3\]"):
        heatmap_slider(CLIP[..., :2], {"m": RNG.random((T, H, W))}, title="t")
    with pytest.raises(ValueError, match="uint8"):
        heatmap_slider(CLIP.astype(np.float32), {}, title="t")


def test_frames_grid_is_static() -> None:
    fig = frames_grid(CLIP, {"a": RNG.random((T, H, W)), "b": RNG.random((T, H, W))}, frames=3, title="g")
    assert not fig.frames and not fig.layout.sliders
    assert sum(tr.type == "image" for tr in fig.data) == 3 * 3 and sum(tr.type == "heatmap" for tr in fig.data) == 2 * 3
    assert np.array_equal(np.asarray(fig.data[0].z), CLIP[0])  # frames 0, 2 (rounded 1.5), 3
    assert np.array_equal(np.asarray([tr for tr in fig.data if tr.type == "image"][-3].z), CLIP[3])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_attention_figure_each_kind(kind: str) -> None:
    array, n_frames = KINDS[kind]
    fig = attention_figure("mod", kind, array)
    assert fig.layout.title.text.startswith("mod: ")
    assert len(fig.frames) == n_frames
    if n_frames:
        assert len(fig.layout.sliders[0].steps) == n_frames
    if kind in ("channel", "segment"):
        assert np.allclose(np.asarray(fig.data[0].y), array)
    elif kind == "axial":
        assert np.allclose(_z(fig.data[0]), array.mean(axis=0), atol=1e-6)
    elif kind in ("temporal_matrix", "spatial_matrix"):
        assert np.allclose(_z(fig.data[0]), array, atol=1e-6)
    elif kind == "sequence":
        assert np.allclose(_z(fig.frames[0].data[0]), array.mean(axis=0), atol=1e-6)
        assert np.allclose(_z(fig.frames[2].data[0]), array[1], atol=1e-6)
    elif kind == "spatiotemporal":
        assert np.allclose(_z(fig.frames[T - 1].data[0]), array[0, T - 1], atol=1e-6)
    else:  # segment_spatial: l = 2 maps side by side, a slider over 3 segments
        assert len(fig.data) == 2 and np.allclose(_z(fig.frames[1].data[1]), array[1, 1], atol=1e-6)


@pytest.mark.parametrize("kind, bad", [("channel", np.ones((2, 3))), ("spatiotemporal", np.ones((2, T, 4, 4))),
                                       ("temporal_matrix", np.ones((3, 4))), ("axial", np.ones((4, 4))),
                                       ("segment_spatial", np.ones((3, 4, 4))), ("sequence", np.ones(5))])
def test_attention_figure_bad_shape_names_kind_and_shape(kind: str, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=re.escape(f"kind {kind!r}") + r".*" + re.escape(str(tuple(bad.shape)))):
        attention_figure("mod", kind, bad)
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        attention_figure("mod", "nope", np.ones(3))


def test_attention_items_flattens_records_and_dicts() -> None:
    class Rec:  # the recorder's Record fields
        def __init__(self, name: str, kind: str, map: object) -> None:
            self.name, self.kind, self.map = name, kind, map

    b = 2
    recs = [Rec("eca", "channel", RNG.random((b, 8))), Rec("ax", "axial", RNG.random((6, 4, 4))),
            Rec("fsam", "dict", {"channel": RNG.random((b, 8)), "spatiotemporal": RNG.random((b, 1, T, 4, 4))}),
            Rec("co", "dict", {"spatial": RNG.random((b, 3)), "temporal": RNG.random((b, 3))})]
    items = attention_items(recs, item=1)
    assert [(n, k, a.shape) for n, k, a in items] == [
        ("eca", "channel", (8,)), ("ax", "axial", (6, 4, 4)), ("fsam/channel", "channel", (8,)),
        ("fsam/spatiotemporal", "spatiotemporal", (1, T, 4, 4)), ("co/spatial", "segment", (3,)),
        ("co/temporal", "segment", (3,))]
    assert np.array_equal(items[0][2], recs[0].map[1])
    for name, kind, a in items:
        attention_figure(name, kind, a)


def test_frame_importance_shades_active_frames() -> None:
    curves = {"ig": np.array([0.1, 0.5, 0.3, 0.1, 0.0, 0.0]), "cam": np.full(6, 1 / 6)}
    active = np.array([False, True, True, False, True, False])
    fig = frame_importance(curves, title="f", active=active)
    shapes = [(s.x0, s.x1) for s in fig.layout.shapes]
    assert shapes == [(0.5, 2.5), (3.5, 4.5)]
    lines = [tr for tr in fig.data if tr.mode == "lines+markers"]
    assert [tr.name for tr in lines] == ["ig", "cam"] and np.allclose(np.asarray(lines[0].y), curves["ig"])
    assert not frame_importance(curves, title="f").layout.shapes
    with pytest.raises(ValueError, match="active"):
        frame_importance(curves, title="f", active=np.ones(5, bool))
    with pytest.raises(ValueError, match="one length"):
        frame_importance({"a": np.ones(3), "b": np.ones(4)}, title="f")


def _external_refs(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html, flags=re.I)


def test_report_is_self_contained(tmp_path: Path) -> None:
    maps = {"saliency": RNG.random((T, H, W)), "occlusion": RNG.random((T, H, W))}
    attention = [(f"m{i}", kind, arr) for i, (kind, (arr, _)) in enumerate(sorted(KINDS.items()))]
    attention.append(SimpleNamespace(name="fsam", kind="dict", call=0,  # a recorder record: batch item 0, split
                                     map={"channel": RNG.random((2, 8)), "spatiotemporal": RNG.random((2, 1, T, 4, 4))}))
    classes = ["sit", "stand", "walk<script>"]
    path = write_report(tmp_path / "sub" / "r.html", title="Report <1>", clip=CLIP, classes=classes,
                        probs=np.array([0.2, 0.7, 0.1]), label="sit", maps=maps, attention=attention,
                        notes=["IG: 64 passes, ~3 s"], meta={"run": "runs/x"})
    html = path.read_text()
    js = get_plotlyjs()
    assert html.count(js) == 1  # the plotly bundle inlined exactly once
    rest = html.replace(js, "")
    assert "Plotly.newPlot" in rest and _external_refs(rest) == []
    assert not re.search(r"<script[^>]+src=", rest) and "<link" not in rest
    assert rest.count('class="plotly-graph-div"') == 2 + len(KINDS) + 2  # clip strip, maps slider, one per map
    assert "Report &lt;1&gt;" in rest and "walk&lt;script&gt;" in rest and "IG: 64 passes, ~3 s" in rest
    assert "predicted <b>stand</b> (probability 0.700); true class <b>sit</b> (wrong)" in rest
    assert re.search(r'<tr class="true"><td>2</td><td>sit \(true\)</td><td>0\.200</td></tr>', rest)
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temporary file
    assert _external_refs('<img src="https://cdn.example/x.js">') and _external_refs("<a href=//x.org/>")
    with pytest.raises(ValueError, match="probs"):
        write_report(tmp_path / "bad.html", title="t", clip=CLIP, classes=classes, probs=np.ones(4), maps={})


def test_explorer_caches_per_selection() -> None:
    calls: list[tuple] = []

    def compute(clip_id, run, method, layer, target):
        calls.append((clip_id, run, method, layer, target))
        rng = np.random.default_rng(len(calls))
        return rng.integers(0, 256, (T + clip_id, 8, 8, 3), dtype=np.uint8), rng.random((T + clip_id, 8, 8))

    ex = Explorer(compute, clips=[0, 1], runs=["r3d"], methods=["saliency", "gradcam"], layers=["layer4"],
                  targets=[("predicted", None), ("sit", 0)])
    box = ex.widget()
    assert calls == [(0, "r3d", "saliency", "layer4", None)]
    assert len(box.children) == 3 and ex.controls["image"].value[:8] == b"\x89PNG\r\n\x1a\n"
    frame = ex.controls["frame"]
    assert frame.max == T - 1
    before = ex.controls["image"].value
    for t in (1, 2, 3, 0, 2):  # moving the frame slider redraws but never recomputes
        frame.value = t
    assert len(calls) == 1 and ex.controls["image"].value != before
    ex.controls["method"].value = "gradcam"
    ex.controls["target"].value = 0
    ex.controls["method"].value = "saliency"
    ex.controls["target"].value = None  # back to the first selection: cached
    ex.controls["clip"].value = 1
    assert frame.max == T  # the slider follows the clip length
    assert calls == [(0, "r3d", "saliency", "layer4", None), (0, "r3d", "gradcam", "layer4", None),
                     (0, "r3d", "gradcam", "layer4", 0), (0, "r3d", "saliency", "layer4", 0),
                     (1, "r3d", "saliency", "layer4", None)]
    fig = ex.static_figure(clip=0)  # the papermill view: cached, a plotly figure with a slider over T frames
    assert len(calls) == 5 and len(fig.frames) == T and "saliency" in fig.layout.title.text
    assert len(ex.cache) == 5
    with pytest.raises(ValueError, match="method"):
        ex.select(method="occlusion")
