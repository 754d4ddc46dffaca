"""Build notebooks/06_lowlight_arid.ipynb with nbformat (run: python notebooks/src/build_06.py).

The parameters cell is generated from :class:`stia_kit.experiments.lowlight.LowLightParams`, so the
notebook's defaults cannot drift from the library's (tests/test_notebook_06.py checks it).
"""
from __future__ import annotations

from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments.lowlight import LowLightParams


def notebook_cells() -> list:
    params = parameters_cell(
        LowLightParams, "Real data: dataset='hmdb51', data_root=<HMDB51 root>, dark_root=<ARID root>.",
        'preset = "paper": STIN at Table 1 sizes with the paper\'s recipe as the recogniser (days on a CPU).')
    cells = [
        md("""# 06 · Action recognition in the dark: curve-estimation enhancement before/after (ARID)

The dual-pathway paper (section 2.3.5, Table 5) takes a recogniser trained on HMDB51, tests it on 11 classes
of **ARID** (dark videos) and reports per-class accuracy before and after enhancing the frames with a
curve-estimation network ("MDIFE-Net", not public): **average 60.3 % -> 83.2 %** (paper).

Here we run the same experiment with the public, documented member of that family, **Zero-DCE** and
**Zero-DCE++**, next to classical baselines (gamma, histogram equalisation, CLAHE):

1. SynthActions clean (UCF101 layout) and SynthActions-dark (ARID layout, same seed: every dark clip is a
   darkened, noisy, colour-cast copy of a clean clip whose clean frames are kept as ground truth);
2. the light-enhancement (LE) curve, interactively;
3. the curve networks trained on dark frames with their four non-reference losses (no ground truth used);
4. before/after frames and video, and enhancement quality against the ground truth;
5. a recogniser trained on clean clips, evaluated on the dark test clips under each enhancement
   (enhancement applied to the decoded frames, before normalisation): the table in the shape of Table 5;
6. a recogniser trained on *enhanced dark* clips (the ARID authors' second setting).

With `dataset="hmdb51"`, `data_root=...`, `dark_root=<ARID>` the same cells run on the real data;
ARID's 11 classes are scored against the matching HMDB51 classes (arg-max over those 11 only)."""),
        code("""import dataclasses, json, math
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots
from IPython.display import display, Markdown

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import lowlight as ll
from stia_kit.data import read_frames, num_frames as video_num_frames
from stia_kit.enhance import le_curve
from stia_kit import viz

pio.renderers.default = "plotly_mimetype+notebook"  # figures stay visible in the saved notebook
_names_before = snapshot(globals())"""),
        params,
        code("""P = from_notebook(ll.LowLightParams, globals(), _names_before).resolved()  # the preset applied
out_dir = Path(P.out_dir)
out_dir.mkdir(parents=True, exist_ok=True)
P"""),
        md("""## 1. Data

SynthActions is generated twice with the same seed (a no-op when the folders are complete): clean in the
UCF101 layout for training the recogniser, dark in the ARID layout (read by the ARID loader, like the real
dataset). The curve networks are trained on frames of the dark *training* split only."""),
        code("""ll.prepare_roots(P)
clean = ll.clean_datasets(P)
train_set, test_set = clean.train, clean.test
dark_train, dark_test = ll.dark_dataset(P, train=True), ll.dark_dataset(P, train=False)
classes = list(dark_test.classes)
mapping = ll.class_mapping(classes, list(train_set.classes), P.class_map)
print(f"clean: {len(train_set)} train / {len(test_set)} test clips; dark: {len(dark_train)} train / {len(dark_test)} test")
print("dark classes -> recogniser classes:", {c: train_set.classes[i] for c, i in zip(classes, mapping)})

def read_all(path):
    return read_frames(path, list(range(video_num_frames(path))))

# one dark test clip per class (first in the list) and its clean ground truth when there is one
first = {}
for path, label in dark_test.samples:
    first.setdefault(label, path)
demo_paths = [first[k] for k in sorted(first)]
demo_dark = [read_all(p) for p in demo_paths]
demo_clean = [read_all(c) if (c := ll.clean_counterpart(P, p)) is not None else None for p in demo_paths]
rows = [demo_dark[0]] + ([demo_clean[0]] if demo_clean[0] is not None else [])
fig = viz.frame_strip(rows, ["dark", "clean"][: len(rows)], frames=6)
fig.update_layout(title=f"{classes[0]}: a dark test clip and its clean ground truth")
fig.show()"""),
        md("""## 2. The light-enhancement curve

Zero-DCE brightens with a quadratic curve applied per pixel and channel,

$$LE(x; a) = x + a\\,x\\,(1 - x), \\qquad a \\in [-1, 1],$$

which keeps $[0, 1]$ in $[0, 1]$, fixes 0 and 1, and is monotonic. Applied $n$ times,
$LE_n(x) = LE(LE_{n-1}(x); a_n)$, it can bend much further (Zero-DCE: 8 iterations). The network only
predicts the maps $a_n$ (one per pixel, channel and iteration). Below: the curve family for a few $a$ and
$n$ (static), then an explorer with sliders for $a$ and the number of iterations (the curve and a dark
frame update live; with a global $a$ instead of the network's pixel-wise maps)."""),
        code("""import torch
x = torch.linspace(0, 1, 101)
fig = make_subplots(rows=1, cols=2, subplot_titles=("one iteration, several a", "a = 0.6, n iterations"))
for a in (-0.5, 0.0, 0.3, 0.6, 1.0):
    fig.add_trace(go.Scatter(x=x, y=le_curve(x, a), name=f"a={a}"), row=1, col=1)
for n in (1, 2, 4, 8):
    y = x.clone()
    for _ in range(n):
        y = le_curve(y, 0.6)
    fig.add_trace(go.Scatter(x=x, y=y, name=f"n={n}", line=dict(dash="dot")), row=1, col=2)
fig.update_xaxes(title_text="input intensity").update_yaxes(title_text="output")
fig.update_layout(height=330, width=820)
fig.show()"""),
        code("""import ipywidgets as widgets
import matplotlib.pyplot as plt

demo_frame = demo_dark[0][len(demo_dark[0]) // 2]

def le_explorer(a=0.8, iterations=8):
    \"\"\"The LE curve applied `iterations` times with a global a, and the dark frame it produces.\"\"\"
    xs = torch.linspace(0, 1, 101)
    img = torch.from_numpy(demo_frame).float() / 255
    ys = xs.clone()
    for _ in range(iterations):
        ys, img = le_curve(ys, a), le_curve(img, a)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    axes[0].plot(xs, xs, ":", color="grey"); axes[0].plot(xs, ys)
    axes[0].set(xlabel="input", ylabel="output", title=f"LE^{iterations}, a = {a:.2f}", aspect="equal")
    axes[1].imshow(demo_frame); axes[1].set_title("dark frame")
    axes[2].imshow(img.clamp(0, 1).numpy()); axes[2].set_title("after the curve")
    for ax in axes[1:]:
        ax.axis("off")
    plt.tight_layout()
    plt.show()

explorer = widgets.interactive(le_explorer, a=widgets.FloatSlider(value=0.8, min=-1.0, max=1.0, step=0.05),
                               iterations=widgets.IntSlider(value=8, min=1, max=16))
display(explorer)  # live in Jupyter (move the sliders)
print("static default view (for saved / papermill runs; the explorer above is the live one):")
le_explorer()"""),
        md("""## 3. Training the curve networks on dark frames

No ground truth and no labels: the objective is the sum of four non-reference losses (Zero-DCE, Eq. 8):
*spatial consistency* (keep neighbouring-region contrast of the input), *exposure control* (16x16 patches
towards the well-exposedness level E = 0.6), *colour constancy* (grey-world between channel means) and
*illumination smoothness* (total variation of the curve maps), weighted 1 / 10 / 5 / 200 (Zero-DCE++: TV 1600).
Adam, weight decay 1e-4, gradient clipping 0.1 as in the official code; the learning rate is
`curve_lr` (the official 1e-4 is meant for ~100 epochs over thousands of images; this is a short run)."""),
        code("""frames = ll.curve_train_frames(P, dark_train)
curves = ll.train_curves(P, frames)
loss_names = {"spa": "spatial consistency", "exp": "exposure control", "col": "colour constancy",
              "tv": "illumination smoothness (TV)", "total": "total", "brightness": "mean output brightness"}
fig = make_subplots(rows=2, cols=3, subplot_titles=list(loss_names.values()))
def smooth(v, k=10):
    v = np.asarray(v, dtype=float)
    return np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v
for name, run in curves.items():
    for i, key in enumerate(loss_names):
        fig.add_trace(go.Scatter(y=smooth(run.history[key]), name=name, legendgroup=name, showlegend=i == 0,
                                 line=dict(color="#1f77b4" if name == "zero_dce" else "#d62728")),
                      row=i // 3 + 1, col=i % 3 + 1)
    print(f"{name}: {sum(p.numel() for p in run.model.parameters()):,} parameters, {P.curve_steps} steps in {run.seconds:.0f} s, "
          f"final weighted losses " + ", ".join(f"{k} {run.history[k][-1]:.4f}" for k in ("spa", "exp", "col", "tv")))
fig.update_xaxes(title_text="step").update_layout(height=520, width=960, title="curve-network training (moving average of 10 steps)")
viz.save_html(fig, out_dir / "curve_losses.html")
fig.show()"""),
        md("""## 4. Before / after

The dark input, each enhancement and the clean ground truth, for a few test clips (frames evenly spaced),
then a short video: dark | Zero-DCE++ | clean side by side (press play)."""),
        code("""enhancers = ll.build_enhancers(P, curves)
shown = [m for m in enhancers if m != "none"]
for k in range(min(2, len(demo_dark))):
    rows = [demo_dark[k]] + [enhancers[m](demo_dark[k]) for m in shown]
    titles = ["dark"] + shown
    if demo_clean[k] is not None:
        rows.append(demo_clean[k]); titles.append("clean")
    fig = viz.frame_strip(rows, titles, frames=6)
    fig.update_layout(title=f"{classes[k]}: before / after")
    viz.save_html(fig, out_dir / f"before_after_{classes[k]}.html")
    fig.show()

video_method = "zero_dce_pp" if "zero_dce_pp" in enhancers else shown[-1]
parts = [demo_dark[0], enhancers[video_method](demo_dark[0])] + ([demo_clean[0]] if demo_clean[0] is not None else [])
side_by_side = np.concatenate(parts, axis=2)
anim = viz.clip_animation(side_by_side, title=f"dark | {video_method}" + (" | clean" if len(parts) == 3 else ""))
anim.update_layout(width=200 * len(parts) + 60, height=320)
viz.save_html(anim, out_dir / "before_after_video.html")
anim.show()"""),
        md("""### Enhancement quality on the dark test clips

PSNR and SSIM against the clean ground truth (SynthActions-dark only; real ARID has none), mean brightness,
and flicker (mean absolute second difference of the per-frame mean intensity; the clean row is the
flicker of the content itself). frames/s is the throughput of this run at the clip resolution, on this
(shared) CPU."""),
        code("""quality = ll.enhancement_quality(P, dark_test, enhancers)
display(Markdown(ll.quality_markdown(quality)))"""),
        md("""## 5. The recogniser: trained on clean, tested on dark

R3D-18 (small width by default) trained on the clean clips. Its accuracy on the clean test split is the
ceiling; then the same model on the dark test split, with each enhancement inserted as the first transform
after decoding."""),
        code("""recogniser, clean_test = ll.get_recogniser(P, clean)  # trained here, or loaded from P.recogniser_run
origin = (f"loaded from {recogniser.run_dir}" if recogniser.fit is None
          else f"{recogniser.fit.epochs_completed} epochs in {recogniser.seconds:.0f} s")
print(f"{recogniser.name}: {origin}; "
      f"clean test top-1 {100 * clean_test.top1:.1f} % (chance {100 / len(train_set.classes):.1f} %)")
dark = ll.evaluate_methods(P, recogniser, dark_test, enhancers)
table = ll.per_class_table(dark, classes)"""),
        md("""### The table in the shape of the paper's Table 5

Per-class accuracy (%) on the dark test clips, columns = enhancement method, last row = mean of the class
accuracies. The last two columns are **the paper's Table 5** (HMDB51-trained STIN -> 12 real outdoor ARID
clips per class, MDIFE-Net), quoted, not measured here; they are a different recogniser, dataset and
enhancer, so compare the *direction and size of the change*, not the values."""),
        code("""display(Markdown(ll.table_markdown(table, paper=True)))
print("clip-level top-1 (%):", {m: round(v, 1) for m, v in table["top1"].items()})"""),
        code("""fig = ll.confusion_grid(dark, classes, "Trained on clean, tested on dark")
viz.save_html(fig, out_dir / "confusion_dark.html")
fig.show()"""),
        md("""## 6. Trained on enhanced dark data

The second setting: a recogniser trained on the dark training clips enhanced with each method of
`enhanced_train`, tested on the dark test clips enhanced the same way. By default
(`enhanced_init="clean"`) it starts from the clean-data recogniser above: trained from scratch on the
degraded frames, the same teaching recipe stayed near chance whether or not the frames were enhanced."""),
        code("""enhanced = ll.run_enhanced_training(P, dark_train, dark_test, curves, recogniser) if P.enhanced_train_list else {}
if enhanced:
    display(Markdown(ll.table_markdown(ll.per_class_table(enhanced, classes))))
    fig = ll.confusion_grid(enhanced, classes, "Trained and tested on enhanced dark data")
    fig.show()
else:
    print("enhanced_train is empty: skipped")"""),
        md("""## 7. Results file

Everything above as JSON (what `stia arid-eval` writes too) and the confusion figures as HTML."""),
        code("""result = ll.LowLightResult(P, classes, clean_test, recogniser, curves, dark, quality, enhanced)
files = [ll.write_results(result), *ll.write_figures(result)]
print("written:", *[str(f) for f in files], sep="\\n  ")
print(json.dumps({"clean_top1": round(100 * clean_test.top1, 1),
                  "dark_average": {m: round(v, 1) for m, v in zip(table["columns"], table["rows"]["average"])}}))"""),
    ]
    return cells


if __name__ == "__main__":
    write_notebook(notebook_cells(), "06_lowlight_arid.ipynb")
