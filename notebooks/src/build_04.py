"""Build notebooks/04_st_manet.ipynb with nbformat (run: python notebooks/src/build_04.py).

The parameters cell is generated from STMANetParams (tests/test_notebook_04.py checks it). The notebook only
calls library code (stia_kit.models.*, stia_kit.experiments.st_manet) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import st_manet as sm


cells = [
    md("""# 04 · Attention across stages: ST-MANet

We build the spatio-temporal multi-level attention network of paper 002 (ST-MANet) step by step:

1. the **3D ResNet-50** both 3D-attention papers use (Hara et al.: 7x7x7 stem, 3x3x3 bottlenecks) and its
   stage outputs `Z^2 .. Z^5`;
2. the **temporal deep aggregation** (TDA, eq. 1-3) beside each stage: a `T x T` attention matrix `A_t`
   that also carries information from the previous stage;
3. the **spatial deep aggregation** (SDA, eq. 4-5): an `HW x HW` attention matrix `A_s` with no learned
   parameters;
4. the **multi-level fusion** (eq. 8) and the **diversity constraints** (eq. 6-7) that push the attention of
   different stages apart;
5. the **Table-4 ablation** trained on SynthActions, next to the paper's numbers (quoted), and the cost in
   FLOPs next to the paper's "+24 %";
6. the attention matrices of the trained model across stages.

The paper's numbers are quoted and labelled as such: minutes on a CPU from scratch on synthetic videos
cannot reproduce them."""),
    code("""import dataclasses, time
import matplotlib.pyplot as plt  # the kernel's inline backend; figures are shown with display(fig)
from IPython.display import display
import numpy as np
import torch

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import st_manet as sm
from stia_kit.models import build_model
from stia_kit.models.attention import SDA, TDA
from stia_kit.models.st_manet import STMANetConfig, flops_over_baseline, pairwise_cosine_sum, table4_configs

_names_before = snapshot(globals())"""),
    parameters_cell(
        sm.STMANetParams,
        'Defaults = the teaching config; preset = "paper" switches to the paper\'s sizes and training recipe '
        "(section 4.1; days on a GPU)."),
    code("""P = from_notebook(sm.STMANetParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
print(P)"""),
    md("""## 1 · The 3D ResNet-50 and its stages

Stage 1 is the stem (7x7x7 convolution, stride (1, 2, 2), then a 3x3x3 max-pool, stride 2); stages 2-5 are
bottleneck stages whose middle 3x3x3 convolution carries the stride. `forward_stages` returns `Z^2 .. Z^5`
and lets a wrapper replace each stage output before the next stage (ST-MANet does)."""),
    code("""splits = sm.prepare_data(P, progress=False)
clip = splits.test[0]["video"]                                 # [C, T, H, W]
print("classes:", splits.classes, "| train", len(splits.train), "test", len(splits.test), "| clip", tuple(clip.shape))
backbone = build_model("r3d_50", len(splits.classes), preset=P.preset, width=E.width).eval()
with torch.no_grad():
    stages = backbone.forward_stages(clip[None])
for i, z in zip(backbone.stage_numbers, stages):
    print(f"Z^{i}: {tuple(z.shape)}")
with torch.device("meta"):
    paper = build_model("r3d_50", 400)
print(f"paper 3D ResNet-50 at 400 classes: {sum(p.numel() for p in paper.parameters()):,} parameters (MSF-Net Table 5: 47.02 M)")"""),
    md("""## 2 · Temporal deep aggregation (eq. 1-3)

Beside stage `i`, TDA concatenates the stage output `Z^i` with the previous TDA output (`Z_c`, `3C/2`
channels), forms `A_t = softmax(...)` over the `T` frames of the stage (a `T x T` matrix per clip) and
returns the attended map added to the stage output, plus its own output for the next stage (pooled to that
stage's size). Readings (spec): matrix products where the text says "element-wise"; 3x1x1 convolutions for
`phi` and `varpi`; a seed convolution provides the undefined `Z_TDA^1`; no `1/sqrt(d)` scaling, as printed
(`scale_logits` switches it on: the logits are sums over `d = C H W` values, so the softmax saturates)."""),
    code("""z2, z3 = stages[0], stages[1]
tda = TDA(z2.shape[1], prev_channels=z2.shape[1] // 2).eval()
prev = torch.randn(1, z2.shape[1] // 2, *z2.shape[2:])         # stands in for Z_TDA^1 (the seed conv's output)
with torch.no_grad():
    zbar_t, z_next = tda(z2, prev, pool_to=tuple(z3.shape[2:]))
    a_t = tda.attention_map(z2, prev)
print("Z^2", tuple(z2.shape), "+ Z_TDA^1", tuple(prev.shape), "-> Zbar_t^2", tuple(zbar_t.shape),
      "| Z_TDA^2 for stage 3", tuple(z_next.shape), "| A_t", tuple(a_t.shape), "rows sum to",
      a_t.sum(-1)[0, :3].round(decimals=4).tolist())"""),
    md("""## 3 · Spatial deep aggregation (eq. 4-5)

SDA has no learned parameters: the stage map reshaped to `CT x HW` gives `A_s = softmax(...)` over the
`HW` positions (an `HW x HW` matrix). At 112^2 crops stage 2 has 28 x 28 = 784 positions, so `A_s^2` is
784 x 784 and SDA costs more than TDA."""),
    code("""sda = SDA()
with torch.no_grad():
    a_s = sda.attention_map(z2)
    zbar_s = sda(z2)
print("Z^2", tuple(z2.shape), "-> A_s", tuple(a_s.shape), "-> Zbar_s^2", tuple(zbar_s.shape),
      f"| parameters: {sum(p.numel() for p in sda.parameters())}")"""),
    md("""## 4 · The whole model, its losses and its cost

`Zbar^i = Z^i + Zbar_t^i + Zbar_s^i` feeds stage `i + 1` (reading: the circled plus is a sum); the
multi-level fusion head pools `Zbar^2 .. Zbar^5` and classifies their concatenation (eq. 8). The diversity
constraints (eq. 6-7) compare the attention matrices of every ordered pair of stages (cosine similarity
after pooling them to stage 5's size) and are returned already weighted (`lambda_s = 0.01`,
`lambda_t = 0.001`) as `loss_*` terms that the training loop adds to the cross-entropy."""),
    code("""model = build_model("st_manet", len(splits.classes), preset=P.preset, **P.model_kwargs("ST-MANet")).eval()
with torch.no_grad():
    out = model(clip[None])
    maps = model.attention_maps(clip[None])
print({k: (tuple(v.shape) if v.ndim else round(float(v), 5)) for k, v in out.items()})
print("A_t per stage:", {i: tuple(a.shape) for i, a in maps["temporal"].items()})
print("A_s per stage:", {i: tuple(a.shape) for i, a in maps["spatial"].items()})
for proj in ("reshape", "conv3x1x1", "conv3x1x1_all"):
    f = flops_over_baseline(STMANetConfig(tda_proj=proj), frames=32, size=112)
    print(f"paper size, 32 x 112^2, tda_proj={proj:13s}: {f['gmacs']:7.2f} GMACs vs 3D ResNet-50 {f['baseline_gmacs']:.2f} "
          f"-> +{f['increase_pct']:.1f} % (paper: about +{f['paper_increase_pct']:.0f} %, quoted; no reading reproduces it), "
          f"{f['params_m']:.2f} M params")"""),
    md("""The logits of `A_t` are dot products over `d = 3/2 C H W` values and are not scaled (as printed), so
the softmax saturates: nearly every row puts all its weight on one frame. Dividing by `sqrt(d)`
(`scale_logits=True`, not in the paper) keeps the rows soft. Mean of each row's largest weight, untrained:"""),
    code("""for scale in (False, True):
    m = build_model("st_manet", len(splits.classes), preset=P.preset,
                    **P.model_kwargs("ST-MANet", scale_logits=scale)).eval()
    with torch.no_grad():
        a = m.attention_maps(clip[None])
    print(f"scale_logits={scale!s:5s}: A_t row max per stage",
          {i: round(float(v.max(-1).values.mean()), 3) for i, v in a["temporal"].items()},
          "| A_s row max", {i: round(float(v.max(-1).values.mean()), 3) for i, v in a["spatial"].items()})"""),
    md("""## 5 · Table 4 on SynthActions

Same data, seed and recipe for every row (`rows`, `stages`, `lambda_grid` choose more)."""),
    code("""before = {i: a[0].clone() for i, a in maps["temporal"].items()}   # the untrained A_t of one clip
t0 = time.perf_counter()
rows = sm.run_ablation(P, progress=False)
print(f"wall time {time.perf_counter() - t0:.0f} s, seed {P.seed}, {E.epochs} epochs per row, clips "
      f"3 x {E.num_frames} x {E.crop_size}^2, {len(splits.train)} train / {len(splits.test)} test, "
      f"chance {100 / len(splits.classes):.1f} %")
print(sm.format_rows(rows))
print("(paper column: Table 4 on UCF-101, quoted, not reproduced)")
fig, ax = plt.subplots(figsize=(7, 3))
x = np.arange(len(rows))
ax.bar(x - 0.2, [r["top1"] for r in rows], 0.4, label=f"measured, SynthActions (seed {P.seed})")
ax.bar(x + 0.2, [r["paper_ucf101_top1"] or 0 for r in rows], 0.4, alpha=0.5, label="paper, UCF-101 (quoted)")
ax.set_xticks(x); ax.set_xticklabels([r["row"] for r in rows], fontsize=7, rotation=15)
ax.set_ylabel("top-1 %"); ax.set_title("Table-4 rows: measured top-1 vs the paper's (quoted)"); ax.legend(fontsize=7)
plt.tight_layout(); display(fig); plt.close(fig)"""),
    md("""## 6 · What the diversity constraint does to the attention across stages

The temporal attention matrices `A_t^2 .. A_t^5` of one test clip, before training and after training the
full model (with the diversity losses), and the summed cosine similarity between stages that `L_t` penalises
(lower = more diverse)."""),
    code("""full = next((r["model"] for r in rows if r["row"] == "ST-MANet"), None)
if full is None:
    print("the full model was not among the rows trained (rows parameter): nothing to compare")
else:
    with torch.no_grad():
        after = {i: a[0] for i, a in full.eval().attention_maps(clip[None])["temporal"].items()}
    fig, axes = plt.subplots(2, len(after), figsize=(2.4 * len(after), 5))
    for r, (name, mats) in enumerate((("before training", before), ("after training", after))):
        for c, (i, a) in enumerate(mats.items()):
            axes[r, c].imshow(a.numpy(), cmap="viridis", vmin=0)
            axes[r, c].set_title(f"A_t^{i} {name}", fontsize=8)
            axes[r, c].set_xlabel("key frame", fontsize=7); axes[r, c].set_ylabel("query frame", fontsize=7)
    fig.suptitle("Temporal attention matrices per stage (one test clip)")
    plt.tight_layout(); display(fig); plt.close(fig)
    pool = lambda m: {i: torch.nn.functional.adaptive_avg_pool2d(a[None, None], min(a.shape[-1] for a in m.values()))[0, 0][None]
                      for i, a in m.items()}
    print("sum over ordered stage pairs of cos(A_t^i, A_t^j) (pooled to stage 5): before "
          f"{float(pairwise_cosine_sum(list(pool(before).values()))):.3f}, after {float(pairwise_cosine_sum(list(pool(after).values()))):.3f}")
    print("test-set diversity terms of the trained full model:", {k: round(v, 5) for k, v in
          next(r for r in rows if r["row"] == "ST-MANet")["terms"].items()})"""),
]


def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "04_st_manet.ipynb")
