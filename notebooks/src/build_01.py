"""Build notebooks/01_dual_pathway_cdai.ipynb with nbformat (run: python notebooks/src/build_01.py).

The parameters cell is generated from DualPathwayParams (tests/test_notebook_01.py checks it).
The notebook only calls library code (stia_kit.models.*, stia_kit.experiments.dual_pathway) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import dual_pathway as dp


cells = [
    md("""# 01 · Dual pathways and Cross Dual-Attention Interaction (STIN)

We build the dual-pathway spatiotemporal interaction network (STIN) of Tian Wei, *"A human action
recognition method based on spatiotemporal information interaction"*, step by step:

1. how the **sparse** and **dense** pathways sample the same video (Table 1, "sampling"),
2. the **3D efficient channel attention** (ECA, Eq. (3)-(6)) and its adaptive kernel size,
3. the **axial 3D self-attention** (Eq. (1)-(2)), one direction at a time,
4. the **lateral connections** that move dense information into the sparse pathway, side by side,
5. the **Table-3 ablation** (dense only / sparse only / both / both + CDAI) trained on SynthActions,
6. **FLOPs per pathway** (the paper: the dense pathway is about 20 % of the total).

The paper's numbers are quoted for comparison and labelled as such: the runs here are minutes on a CPU
on a synthetic dataset, without Kinetics pretraining, so they cannot reproduce them."""),
    code("""import dataclasses, time
import matplotlib.pyplot as plt  # the kernel's inline backend; figures are shown with display(fig)
from IPython.display import display
import torch

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import dual_pathway as dp
from stia_kit.models.stin import STIN, table3_configs
from stia_kit.models.slowfast import PathwaySampler
from stia_kit.models.attention import AxialAttention3d

_names_before = snapshot(globals())"""),
    parameters_cell(
        dp.DualPathwayParams,
        'Defaults = the teaching config; preset = "paper" switches to the paper\'s sizes and training recipe '
        "(days on a CPU)."),
    code("""P = from_notebook(dp.DualPathwayParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
cfg = P.model_config()
print(P)
print(cfg)"""),
    md("""## 1 · Two pathways, one video

The model takes one raw clip `[B, 3, T, H, W]` and samples both pathways itself: the sparse pathway takes
every `tau`-th frame, the dense pathway every `tau/alpha`-th frame (paper: `T = 64`, `tau = 16`,
`alpha = 8`: 4 and 32 frames). Below: the frames each pathway sees of one SynthActions test clip."""),
    code("""torch.manual_seed(P.seed)
splits = dp.prepare_data(P, progress=False)
train_set, test_set = splits.train, splits.test
sample = test_set[0]
clip = sample["video"]                       # [C, T, H, W], normalised
print("classes:", train_set.classes)
print("clip", tuple(clip.shape), "label", train_set.classes[sample["label"]],
      "| train clips", len(train_set), "test clips", len(test_set))
sampler = PathwaySampler(cfg.tau, cfg.alpha)
sparse, dense = sampler(clip[None])
idx = torch.arange(clip.shape[1])
print("sparse frames", idx[::cfg.tau].tolist(), "->", tuple(sparse.shape))
print("dense frames ", idx[::cfg.tau // cfg.alpha].tolist(), "->", tuple(dense.shape))

def show(frames):                             # [C, T, H, W] normalised -> list of HxWx3 images
    x = (frames * 0.225 + 0.45).clamp(0, 1)
    return [x[:, t].permute(1, 2, 0).numpy() for t in range(x.shape[1])]

n_dense = dense.shape[2]
fig, axes = plt.subplots(2, n_dense, figsize=(1.2 * n_dense, 2.8))
for t, img in enumerate(show(dense[0])):
    axes[1, t].imshow(img); axes[1, t].set_title(f"{t * (cfg.tau // cfg.alpha)}", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
for s, img in enumerate(show(sparse[0])):
    axes[0, s * cfg.alpha].imshow(img); axes[0, s * cfg.alpha].set_title(f"{s * cfg.tau}", fontsize=7)
axes[0, 0].text(-0.5, 0.5, "sparse", transform=axes[0, 0].transAxes, ha="right")
axes[1, 0].text(-0.5, 0.5, "dense", transform=axes[1, 0].transAxes, ha="right")
fig.suptitle("frames seen by each pathway (numbers = frame index in the clip)")
display(fig); plt.close(fig)"""),
    md("""## 2 · 3D efficient channel attention (Eq. (3)-(6))

Global average pooling over `T, H, W` (Eq. (5)), a 1D convolution across channels with the *adaptive
kernel* of Eq. (4), `k = psi(C) = |log2(C)/gamma + b/gamma|_odd` (the nearest odd number, gamma = 2, b = 1;
Eq. (3) is the channel mapping `C = phi(k)` it inverts), a sigmoid, and `sigma(.) * I + I` (Eq. (6)). The
kernel grows slowly with the channel count:"""),
    code("""table = dp.eca_kernel_table()
print(f"{'C':>6s} {'log2(C)/2 + 1/2':>16s} {'k':>3s}")
for r in table:
    print(f"{r['C']:6d} {r['log2(C)/gamma + b/gamma']:16.2f} {r['k']:3d}")"""),
    md("""## 3 · Axial 3D self-attention, one direction at a time (Eq. (1)-(2))

In the sparse -> dense direction of CDAI the sparse map is projected to the dense channels by a `1x1x1`
conv and attends along **W**, then **H**, then **T** (each with its own `1x1` Q/K/V), summed with the input;
this is applied twice with shared parameters. Each direction turns the map into a batch of short sequences:"""),
    code("""model = STIN(cfg, len(train_set.classes)).eval()
with torch.no_grad():
    s = model.sparse.stages[0](model.laterals[0](model.sparse.stem(sparse), model.dense.stem(dense))[0])
    s2d = model.laterals[1].sparse_to_dense
    proj = s2d.project(s)                      # [1, C_d, T, H, W]
print("sparse res2 output", tuple(s.shape), "-> 1x1x1 projection", tuple(proj.shape))
fig, axes = plt.subplots(1, 3, figsize=(10, 3))
for ax, (axis, attn) in zip(axes, s2d.attention.axial.items()):
    with torch.no_grad():
        seq = attn._to_sequences(proj)         # [N = B x (other two axes), L, C_d]
        seq_q, seq_v = attn.query(seq), attn.value(seq)  # [N, L, C_d / 8], [N, L, C_d]
        amap = attn.attention_map(proj)        # [N, L, L]
        out = attn(proj)
    print(f"axis {axis}: Q/K sequences {tuple(seq_q.shape)}, V {tuple(seq_v.shape)}, "
          f"attention {tuple(amap.shape)}, output {tuple(out.shape)}")
    im = ax.imshow(amap[amap.shape[0] // 2].numpy(), cmap="viridis")
    ax.set_title(f"attention along {axis} (untrained)\\none sequence: query x key")
    fig.colorbar(im, ax=ax, fraction=0.046)
plt.tight_layout(); display(fig); plt.close(fig)
print("two shared passes:", tuple(s2d.attention(proj).shape),
      "| then nearest temporal upsampling x alpha ->", tuple(s2d.attention(proj).repeat_interleave(cfg.alpha, 2).shape))"""),
    md("""## 4 · Lateral connections side by side (dense -> sparse)

SlowFast's three ways to bring `alpha T` dense frames to `T` sparse frames, and the temporal max-pool that
the STIN text describes for CDAI's dense -> sparse direction (the default here). The paper prints the
interval convolution as "5x1x2"; we read it as SlowFast's `5x1x1`, stride `alpha`, `2 beta C` outputs."""),
    code("""for r in dp.lateral_comparison(dense_ch=8, alpha=8, frames=4, size=56):
    print(f"{r['lateral']:18s} {str(r['input']):22s} -> {str(r['output']):22s} params {r['params']:5d} "
          f"MFLOPs {r['flops'] / 1e6:7.1f}")"""),
    md("""## 5 · Table-3 ablation on SynthActions

Four rows from one constructor (`table3_configs`): dense only, sparse only, both (= SlowFast), both + CDAI.
Same data, seed and recipe for every row."""),
    code("""for name, c in table3_configs(cfg).items():
    print(f"{name:12s} pathways={c.pathways:6s} cdai={c.cdai}")
t0 = time.perf_counter()
ablation = dp.run_ablation(P, progress=False)
print(f"ablation wall time {time.perf_counter() - t0:.0f} s, seed {P.seed}, epochs {E.epochs}, "
      f"input 3 x {E.num_frames} x {E.crop_size}^2, {ablation[0]['train_clips']} train / "
      f"{ablation[0]['test_clips']} test clips, chance {100 / len(train_set.classes):.1f} %")
print(dp.format_table(ablation))
print("(paper columns: the paper's Table 3 on UCF101 / HMDB51, quoted, not reproduced)")"""),
    code("""fig, ax = plt.subplots(figsize=(7, 3))
names = [r["row"] for r in ablation]
x = range(len(names))
ax.bar([i - 0.2 for i in x], [r["top1"] for r in ablation], 0.4, label=f"measured, SynthActions (seed {P.seed})")
ax.bar([i + 0.2 for i in x], [r["paper_ucf101_top1"] for r in ablation], 0.4, label="paper, UCF101 (quoted)",
       alpha=0.5)
ax.set_xticks(list(x)); ax.set_xticklabels(names); ax.set_ylabel("top-1 %"); ax.legend(fontsize=8)
plt.tight_layout(); display(fig); plt.close(fig)"""),
    md("""## 6 · FLOPs per pathway

Counted with `torch.utils.flop_counter` on the meta device (no computation), FLOPs = 2 x multiply-adds.
At the paper's size the dense pathway should be about 20 % of the total."""),
    code("""paper_cfg = dp.DualPathwayParams(preset="paper").model_config()
for label, c, size in [("paper 64x224^2, both + CDAI", paper_cfg, 224),
                       ("paper 64x224^2, both (SlowFast)", table3_configs(paper_cfg)["both"], 224),
                       (f"this run {cfg.num_frames}x{E.crop_size}^2, both + CDAI", cfg, E.crop_size)]:
    g = dp.pathway_flops(c, size=size)
    print(f"{label:34s} total {g['total']:7.2f} GFLOPs | sparse {g['sparse']:6.2f} dense {g['dense']:6.2f} "
          f"laterals {g['laterals']:5.2f} | dense share of pathways {100 * g['dense_share_of_pathways']:.1f} %")"""),
]


def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "01_dual_pathway_cdai.ipynb")
