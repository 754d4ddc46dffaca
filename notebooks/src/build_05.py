"""Build notebooks/05_msf_fsam.ipynb with nbformat (run: python notebooks/src/build_05.py).

The parameters cell is generated from MSFParams (tests/test_notebook_05.py checks it). The notebook only calls
library code (stia_kit.models.*, stia_kit.experiments.msf_net) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import msf_net as mn


cells = [
    md("""# 05 · Multilevel split convolutions and frequency attention: MSF-Net

We build the multilevel split fusion network of paper 003 (MSF-Net) step by step:

1. the **multilevel split** (MSL): a 3x3x3 convolution replaced by `S` channel groups, each convolving its
   group plus part of the previous group's output, so later groups see larger receptive fields;
2. the **MSF basic block** (`Output = X + Y + Input`, paths A and B) on R3D-18, and where the MSL goes
   (Table 1's four placements);
3. the **parameter counts and GMACs of Tables 1-5** computed live on the meta device, next to the printed
   figures (matches and documented gaps);
4. **FSAM**: FcaNet's frequency channel attention (2D DCT basis images) then a spatiotemporal attention,
   and their weights on a clip;
5. the **ablations trained on SynthActions** next to the paper's numbers (quoted), and FSAM's weights after
   training.

The paper's numbers are quoted and labelled as such: minutes on a CPU on synthetic videos cannot reproduce
them."""),
    code("""import dataclasses, time
import matplotlib.pyplot as plt  # the kernel's inline backend; figures are shown with display(fig)
from IPython.display import display
import numpy as np
import torch

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import msf_net as mn
from stia_kit.models import build_model
from stia_kit.models.attention import FSAM, FrequencyChannelAttention3d
from stia_kit.models.msf_net import MSFBlock, MSL, count_table, msl_split, receptive_fields

_names_before = snapshot(globals())"""),
    parameters_cell(
        mn.MSFParams,
        'Defaults = the teaching config; preset = "paper" switches to the paper\'s sizes and training recipe '
        "(section 4.2; hours on a GPU)."),
    code("""P = from_notebook(mn.MSFParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
print(P)"""),
    md("""## 1 · The multilevel split (MSL)

The block's input `X` (after its first convolution) is split into `S` channel groups. `x_1` passes unchanged;
group 2 is convolved (3x3x3, BN, ReLU); each later group is concatenated with half of the previous branch's
output before its convolution, so the receptive field grows branch by branch. Reading (spec): each branch
keeps its width (channel-conserving), so the concatenated output `Y` has exactly `C` channels and
`X + Y + Input` is defined; eq. 3 read literally makes `Y` narrower than `X`."""),
    code("""print("channel groups of 64 channels:", {s: msl_split(64, s) for s in (3, 4, 5, 6)})
msl = MSL(64, scale=4).eval()
x = torch.randn(1, 64, 8, 28, 28)
with torch.no_grad():
    y = msl(x)
print("MSL(64, S=4):", tuple(x.shape), "->", tuple(y.shape), f"| {sum(p.numel() for p in msl.parameters()):,} parameters "
      f"(one 3x3x3 conv 64 -> 64: {64 * 64 * 27:,})")
print("receptive field per branch (corrected eq. 1, RF_i = RF_(i-1) + (k - 1) prod s):")
for r in receptive_fields(4):
    print("  ", r)"""),
    md("""## 2 · The MSF block, paths A and B

Path A downsamples with the block's strided first convolution; path B replaces R3D's strided 1x1x1
shortcut by a max-pool (then a 1x1x1 convolution + BN for the channel change). The four placements of
Table 1 put the MSL at (a) the first conv, (b) the second conv (the paper's choice), (c) every 3x3x3 conv
but the stem and the strided ones, (d) a factorised first conv."""),
    code("""for pos in ("a", "b", "c", "d"):
    block = MSFBlock(64, 128, stride=(2, 2, 2), scale=4, position=pos).eval()
    with torch.no_grad():
        out = block(x)
    print(f"placement ({pos}), downsampling block: {tuple(x.shape)} -> {tuple(out.shape)}, "
          f"{sum(p.numel() for p in block.parameters()):,} parameters")"""),
    md("""## 3 · Tables 1-5: parameters and GMACs, counted live

Every published row rebuilt on the meta device (no memory, no compute) at 101 classes; the papers' "GFLOPs"
are multiply-accumulates (C3D's 38.5 is 38.55 GMACs), so GMACs are compared with them. `match` = within
0.02 M parameters (and 0.05 GMACs where printed); every `gap` carries its explanation."""),
    code("""table = count_table()
print(f"{'table':8s} {'row':26s} {'ours M':>8s} {'paper M':>8s} {'ours GMACs':>10s} {'paper':>6s} {'status':>7s}  note")
for r in table:
    ours = f"{r['params'] / 1e6:8.3f}" if r["params"] is not None else f"{'-':>8s}"
    g = f"{r['gmacs']:10.2f}" if r.get("gmacs") is not None else f"{'-':>10s}"
    pg = f"{r['published_gflops']:6.1f}" if r.get("published_gflops") is not None else f"{'-':>6s}"
    print(f"{r['table']:8s} {r['row']:26s} {ours} {r['published_params_M']:8.2f} {g} {pg} {r['status']:>7s}  {r['note'][:70]}")"""),
    md("""## 4 · FSAM: frequency channel attention, then spatiotemporal attention

FcaNet (eq. 5-6) splits the channels into 16 parts and summarises each part by one 2D DCT frequency
(FcaNet's top-16 list, a choice) per frame, averaged over time, instead of global average pooling (the
`(0, 0)` frequency); a two-layer MLP turns the 16-frequency summary into channel weights. The spatiotemporal
attention (eq. 7) pools the channels by max and mean, convolves with 7x7x7 and applies a sigmoid. FSAM
applies both in sequence (eq. 8)."""),
    code("""fca = FrequencyChannelAttention3d(256, 14)
basis = fca.dct_basis()
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for ax, img, uv in zip(axes.flat, basis, fca.frequencies):
    ax.imshow(img.numpy(), cmap="gray"); ax.set_title(str(uv), fontsize=7); ax.axis("off")
fig.suptitle("The 16 DCT basis images FcaNet uses (14 x 14, (u, v) frequencies)")
plt.tight_layout(); display(fig); plt.close(fig)
splits = mn.prepare_data(P, progress=False)
clip = splits.test[0]["video"]
net = build_model("msf_r3d", len(splits.classes), preset=P.preset, attention="fsam").eval()
with torch.no_grad():
    feats = net.forward_features(clip[None])
    att = net.attention[-1].attention_map(net.stages[-1](feats[-2]))  # the FSAM after layer4, on layer4's output
print("clip", tuple(clip.shape), "| stage outputs", [tuple(f.shape) for f in feats])
print("FSAM after the last stage (untrained):", {k: tuple(v.shape) for k, v in att.items()})"""),
    md("""## 5 · The ablations on SynthActions

Every row with the same data, seed and recipe (`rows` chooses; see `ROWS` for Tables 1-3 and 5). The C3D
family takes 16 frames (its pool5 needs `T >= 16`); the R3D family 8."""),
    code("""t0 = time.perf_counter()
rows = mn.run_rows(P, progress=False)
print(f"wall time {time.perf_counter() - t0:.0f} s, seed {P.seed}, {E.epochs} epochs per row, {E.num_frames} TSN frames "
      f"x {E.crop_size}^2, {len(splits.train)} train / {len(splits.test)} test clips, chance {100 / len(splits.classes):.1f} %")
print(mn.format_rows(rows))
print("(paper columns: the paper's parameter count and UCF101 split-1 accuracy, quoted, not reproduced)")
fig, ax = plt.subplots(figsize=(7, 3))
xs = np.arange(len(rows))
ax.bar(xs - 0.2, [r["top1"] for r in rows], 0.4, label=f"measured, SynthActions (seed {P.seed})")
ax.bar(xs + 0.2, [r["paper_ucf101_top1"] for r in rows], 0.4, alpha=0.5, label="paper, UCF101 (quoted)")
ax.set_xticks(xs); ax.set_xticklabels([r["row"] for r in rows], fontsize=8)
ax.set_ylabel("top-1 %"); ax.set_title("MSF-Net rows: measured top-1 vs the paper's (quoted)"); ax.legend(fontsize=7)
plt.tight_layout(); display(fig); plt.close(fig)"""),
    code("""trained = next((r["model"] for r in rows if r["row"].endswith("fsam")), None)
if trained is None:
    print("no FSAM row was trained (rows parameter)")
else:
    with torch.no_grad():
        feats = trained.eval().forward_features(clip[None])
        att = trained.attention[-1].attention_map(trained.stages[-1](feats[-2]))
    st = att["spatiotemporal"][0, 0]                           # [T, H, W]
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    axes[0].bar(np.arange(att["channel"].shape[1]), att["channel"][0].numpy(), width=1.0)
    axes[0].set_xlabel("channel"); axes[0].set_ylabel("weight"); axes[0].set_title("trained FAM channel weights (last stage)")
    im = axes[1].imshow(st.mean(0).numpy(), cmap="viridis"); fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title(f"trained SAM weights, mean over its {st.shape[0]} frames"); axes[1].axis("off")
    plt.tight_layout(); display(fig); plt.close(fig)"""),
]


def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "05_msf_fsam.ipynb")
