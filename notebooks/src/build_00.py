"""Build notebooks/00_quickstart.ipynb with nbformat (run: python notebooks/src/build_00.py).

The parameters cell is generated from :class:`stia_kit.experiments.quickstart.QuickstartParams`, so the
notebook's defaults cannot drift from the library's (tests/test_notebook_00.py checks it).
"""
from __future__ import annotations

from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments.quickstart import QuickstartParams


def notebook_cells() -> list:
    params = parameters_cell(
        QuickstartParams, 'preset = "paper" switches to the paper\'s width (64) and 16 x 112^2 clips (hours on a CPU).')
    cells = [
        md("""# 00 · Quickstart: does a 3D network see what a frame-level network cannot?

This notebook trains two networks on the same clips and compares them:

* **R3D-18** (Tran et al. 2018): 3D convolutions everywhere, so it models motion and temporal order;
* **R2D-18**, a *frame-level* baseline: the same ResNet-18 with every temporal kernel set to 1, i.e. a 2D
  network run on each frame with the frame features averaged at the end.

The default dataset is **SynthActions**, the toolkit's procedural benchmark with ARID's 11 classes. Its
classes come in pairs that no single frame can separate: *walk* vs *run* (speed only), *sit* vs *stand*
(the same frames in opposite order), *drink* vs *pour* and *pick* vs *push* (a small object's motion).
The gap between the two models is the point. With `dataset="ucf101"` and `data_root=...` the same
notebook trains on the real dataset.

Everything below calls `stia_kit`; nothing is re-implemented here."""),
        code("""import dataclasses, json
from pathlib import Path

import numpy as np
import plotly.io as pio
from IPython.display import display, Markdown

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import quickstart as qs
from stia_kit import viz

pio.renderers.default = "plotly_mimetype+notebook"  # figures stay visible in the saved notebook
_names_before = snapshot(globals())"""),
        params,
        code("""P = from_notebook(qs.QuickstartParams, globals(), _names_before).resolved()  # the preset applied
out_dir = Path(P.out_dir)
out_dir.mkdir(parents=True, exist_ok=True)
P"""),
        md("""## 1. Data

For SynthActions the videos are generated first (about a minute on 2 cores; a no-op when the folder is complete) in
the official UCF101 layout, then read by the same `UCF101` loader that reads the real dataset."""),
        code("""splits = qs.prepare_data(P)
train_set, test_set = splits.train, splits.test
classes = splits.classes
print(f"{len(train_set)} training clips, {len(test_set)} test clips, {len(classes)} classes: {classes}")
print("clip tensor [C, T, H, W]:", tuple(train_set[0]["video"].shape))"""),
        md("""One test clip per class (frames evenly spaced over the clip, after the test transform). Look at the
pairs: a single frame of *walk* and *run*, or the set of frames of *sit* and *stand*, look alike."""),
        code("""cfg = train_set.config
first = {}
for i, (_, label) in enumerate(test_set.samples):
    first.setdefault(label, i)
clips = [viz.clip_to_uint8(test_set[first[k]]["video"], cfg.mean, cfg.std) for k in sorted(first)]
fig = viz.frame_strip(clips, [classes[k] for k in sorted(first)], frames=6)
viz.save_html(fig, out_dir / "samples.html")
fig.show()
viz.clip_animation(clips[0], title=f"{classes[sorted(first)[0]]} (press play)").show()"""),
        md("""## 2. Train the 3D model

`stia_kit.train.fit` does the work: AdamW with warm-up + cosine, checkpoints every epoch (atomic, and the
run resumes from `last.pt` if it was interrupted), metrics appended to `metrics.jsonl`."""),
        code("""runs = {}
runs[P.model] = qs.train_model(P.model, P, splits)
r = runs[P.model]
print(f"{P.model}: {r.num_params:,} parameters, test top-1 {r.test.top1:.3f}, {r.seconds:.0f} s")"""),
        md("""## 3. Train the frame-level baseline

Same data, same recipe, same ResNet-18, but no temporal kernels."""),
        code("""if P.baseline:
    runs[P.baseline] = qs.train_model(P.baseline, P, splits)
    r = runs[P.baseline]
    print(f"{P.baseline}: {r.num_params:,} parameters, test top-1 {r.test.top1:.3f}, {r.seconds:.0f} s")"""),
        md("""## 4. Results

Training loss and accuracy per epoch (dotted: the validation split, held out of the training groups when
`val_fraction > 0`; the test split is used only once, at the end), then the test confusion matrices."""),
        code("""fig = viz.training_curves({name: qs.flat_history(r.fit) for name, r in runs.items()},
                          title="Training curves per epoch: cross-entropy loss and top-1 accuracy")
viz.save_html(fig, out_dir / "curves.html")
fig.show()
for name, r in runs.items():
    fig = viz.confusion_figure(r.test.confusion, classes, title=f"{name}: test confusion, row-normalised (fraction of each true class)")
    viz.save_html(fig, out_dir / f"confusion_{name}.html")
    fig.show()"""),
        code("""chance = 1 / len(classes)
rows = ["| class | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]
for k, c in enumerate(classes):
    rows.append(f"| {c} | " + " | ".join(f"{r.test.per_class[k]:.2f}" for r in runs.values()) + " |")
rows.append("| **top-1** | " + " | ".join(f"**{r.test.top1:.3f}**" for r in runs.values()) + " |")
display(Markdown("\\n".join(rows) + f"\\n\\nChance level: {chance:.3f}."))"""),
        md("""## 5. Metrics file

The numbers above are written next to this notebook as JSON (what `stia quickstart` prints the path of)."""),
        code("""metrics_path = qs.write_metrics(out_dir / "metrics.json", P, classes, list(runs.values()))
print("metrics written to", metrics_path.resolve())
print(json.dumps({n: {"top1": round(r.test.top1, 3), "train_seconds": round(r.seconds)} for n, r in runs.items()}))"""),
    ]
    return cells


if __name__ == "__main__":
    write_notebook(notebook_cells(), "00_quickstart.ipynb")
