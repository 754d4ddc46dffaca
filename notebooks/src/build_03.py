"""Build notebooks/03_tstam_attention.ipynb with nbformat (run: python notebooks/src/build_03.py).

The parameters cell is generated from TSTAMParams (tests/test_notebook_03.py checks it). The notebook only
calls library code (stia_kit.data.flow / frames, stia_kit.models.*, stia_kit.experiments.tstam) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import tstam as tm


cells = [
    md("""# 03 · Where and when to look: T-STAM

We build the two-stream temporal and spatial attention model of paper 004 (T-STAM) step by step:

1. **optical flow** of a SynthActions clip and of a real clip (TV-L1, TSN layout; notebook 02 explains it);
2. the **SE-BN-Inception** backbone: BN-Inception with a squeeze-and-excitation block after every
   inception module;
3. the **temporal attention** (eq. 1-3): one weight per sampled frame;
4. the **multi-spatial attention** (eq. 4-7): `l` maps per frame, each picking motion-salient positions;
5. the **fusion** (eq. 8-9) and the whole stream;
6. the **section-4.3 experiments** on SynthActions frames + flow: RGB and flow streams, their 1 : 3 fusion
   and the fusion-weight grid, TSN with and without SE (segments and `l` sweeps by parameter);
7. the trained model's **attention over frames and positions** on a test video.

The paper is a machine translation whose result tables are missing: only its *relative* findings are
quoted (labelled as such), next to what was measured here in minutes on a CPU, without ImageNet weights."""),
    code("""import dataclasses, time
import matplotlib.pyplot as plt  # the kernel's inline backend; figures are shown with display(fig)
from IPython.display import display
import numpy as np
import torch

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import tstam as tm
from stia_kit.experiments import two_stream as ts
from stia_kit.data.flow import flow_to_rgb
from stia_kit.data.sampling import tsn_stack_indices
from stia_kit.models import build_model
from stia_kit.models.backbones2d import SEBlock, build_backbone2d, fold_segments
from stia_kit.models.tstam import FeatureMapping, MultiSpatialAttention, TemporalAttention

_names_before = snapshot(globals())"""),
    parameters_cell(
        tm.TSTAMParams,
        'Defaults = the teaching config; preset = "paper" switches to the paper\'s sizes and training recipe '
        "(section 4.2 + TSN convention; days on a GPU)."),
    code("""P = from_notebook(tm.TSTAMParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
print(P)"""),
    md("""## 1 · Frames and optical flow

T-STAM uses TSN's sparse sampling (`N` segments; the paper: 6) and TV-L1 flow quantised to `[0, 255]`
(the stack length `L` is not given; TSN convention: 5 fields = 10 channels)."""),
    code("""t0 = time.perf_counter()
splits = ts.prepare_two_stream_data(P, modality="both", progress=False)
print(f"data ready in {time.perf_counter() - t0:.0f} s | classes {splits.classes} | "
      f"train {len(splits.train)} test {len(splits.test)} videos")
folder = splits.test.samples[0][0]
rows = [("SynthActions " + folder.name, *ts.read_frame_folder(folder, bound=E.flow_bound, max_frames=5))]
real = ts.real_clip("CricketBowling")
if real is not None:
    rows.append(("UCF101 " + real.name + " (real)", *ts.flow_demo(real, frames=5, method=E.flow_method, bound=E.flow_bound)))
else:
    print("../shared/realdata is absent: the real clip is not shown")
fig, axes = plt.subplots(2 * len(rows), 4, figsize=(7, 3.6 * len(rows)))
for r, (title, frames, fl) in enumerate(rows):
    scale = max(1.0, float(np.percentile(np.linalg.norm(fl, axis=-1), 99)))
    for t in range(4):
        axes[2 * r, t].imshow(frames[t])
        axes[2 * r, t].set_title(f"{title}\\nframe {t + 1}" if t == 0 else f"frame {t + 1}", fontsize=7, loc="left")
        axes[2 * r + 1, t].imshow(flow_to_rgb(fl[t], max_magnitude=scale)); axes[2 * r + 1, t].set_title(f"flow {t + 1} -> {t + 2}", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"RGB frames and {E.flow_method} flow (hue = direction, saturation = speed)")
plt.tight_layout(); display(fig); plt.close(fig)
sample = splits.train[0]
print("training sample:", {k: tuple(v.shape) for k, v in sample.items() if torch.is_tensor(v)})"""),
    md("""## 2 · SE-BN-Inception

BN-Inception (TSN's backbone) kept up to its last convolution, with a squeeze-and-excitation block
(reduction 16) after each inception module: global average pool, `C -> C/16 -> C`, sigmoid, channel-wise
rescaling. The paper says nine modules; BN-Inception has ten (3a, 3b, 3c, 4a-4e, 5a, 5b): reading, all ten."""),
    code("""se = SEBlock(256, reduction=16)
m = torch.randn(2, 256, 7, 7)
with torch.no_grad():
    print("SE block", tuple(m.shape), "->", tuple(se(m).shape), f"| {sum(p.numel() for p in se.parameters()):,} parameters")
with torch.device("meta"):
    plain, with_se = build_backbone2d("bn_inception"), build_backbone2d("bn_inception", se=True)
n_plain, n_se = (sum(p.numel() for p in b.parameters()) for b in (plain, with_se))
print(f"BN-Inception (to the last conv): {n_plain:,} parameters; with SE on all 10 modules: {n_se:,} (+{n_se - n_plain:,})")
width = E.width or (0.25 if P.preset == "teaching" else 1.0)
net = build_backbone2d("bn_inception", se=P.se, width=width).eval()
flat, b, n = fold_segments(sample["rgb"][None])                # [B*N, 3, H, W]
with torch.no_grad():
    maps = net.forward_maps(flat)
print("RGB segments", tuple(sample["rgb"][None].shape), "-> folded", tuple(flat.shape), "-> last conv maps", tuple(maps.shape))"""),
    md("""## 3 · Temporal attention (eq. 1-3)

Every frame's map is mapped by a shared `1x1` convolution to 256 channels (eq. 1), a frame is scored from its
pooled mapped feature and the scores are normalised with a softmax over the `N` frames (eq. 2); the temporal
feature is the weighted sum `f_t = sum_i alpha_i x^_i` (eq. 3). Reading (the printed equations drop the
position index): the mapping is applied at every position, frames scored from their global average."""),
    code("""maps_bn = maps.view(b, n, *maps.shape[1:])                    # [B, N, C, h, w]
mapping, ta = FeatureMapping(maps.shape[1], 256).eval(), TemporalAttention(256).eval()
with torch.no_grad():
    mapped = mapping(maps_bn)                                  # eq. 1 at every position
    alpha = ta.attention_map(mapped)
print("maps", tuple(maps_bn.shape), "-> mapped", tuple(mapped.shape), "-> alpha over frames", tuple(alpha.shape),
      "sums to", alpha.sum(-1).tolist())"""),
    md("""## 4 · Multi-spatial attention (eq. 4-7)

Each of the `l` spatial attention models is `BN(conv5x5(tanh(BN(conv1x1 C -> C/2))))` with one output map,
normalised by a softmax over the `h x w` positions of each frame (eq. 4-6); its feature sums the mapped
features over positions and frames (eq. 7). Reading: eq. 7 sums over frames (`frame_pool="sum"`), so the
feature grows with the number of frames, and testing uses more frames (25) than training (6): the
`frame_pool="mean"` switch removes that mismatch."""),
    code("""msa = MultiSpatialAttention(maps.shape[1], P.num_spatial, frame_pool=P.frame_pool).eval()
with torch.no_grad():
    amaps = msa.attention_map(maps_bn)
print("maps", tuple(maps_bn.shape), f"-> {P.num_spatial} spatial maps per frame", tuple(amaps.shape),
      "| each sums to 1 over positions:", bool(torch.allclose(amaps.sum((-2, -1)), torch.ones(amaps.shape[:3]), atol=1e-5)))"""),
    md("""## 5 · Fusion (eq. 8-9) and the stream network

`F_j = f_t + f_sj` for every spatial model `j`, `F = concat(F_1, ..., F_l)` (`l x 256`), dropout, a fully
connected layer, softmax. Each stream (RGB, flow) is trained on its own; at test time their class
probabilities are fused RGB : flow = 1 : 3 (section 4.3.3)."""),
    code("""model = build_model("tstam", len(splits.classes), preset=P.preset, **P.model_kwargs("tstam_rgb")).eval()
batch = {"rgb": sample["rgb"][None]}
with torch.no_grad():
    logits = model(batch)
    att = model.attention_maps(batch)
print("input", tuple(batch["rgb"].shape), "-> logits", tuple(logits.shape),
      "| attention", {k: tuple(v.shape) for k, v in att.items()})
with torch.device("meta"):
    for name, kw in [("T-STAM RGB (paper)", {}), ("T-STAM flow (paper)", {"modality": "flow"})]:
        print(f"{name}: {sum(p.numel() for p in build_model('tstam', 101, **kw).parameters()):,} parameters at 101 classes")"""),
    md("""## 6 · Section 4.3 on SynthActions

Each run trains one stream with the same data, seed and recipe. The paper's result tables are missing;
its relative findings are quoted below the measured table."""),
    code("""t0 = time.perf_counter()
result = tm.run_tstam(P, progress=False)
print(f"wall time {time.perf_counter() - t0:.0f} s, seed {P.seed}, {result['train_clips']} train / "
      f"{result['test_clips']} test videos, chance {result['chance_top1']} %")
print(f"{'run':22s} {'top-1 %':>7s} {'params':>10s} {'epochs':>6s} {'N':>3s} {'l':>4s} {'SE':>5s} {'time s':>7s}")
for r in result["rows"]:
    print(f"{r['run']:22s} {r['top1']:7.1f} {r['num_params']:10,d} {r['epochs']:6d} {r['num_segments']:3d} "
          f"{str(r['num_spatial']):>4s} {str(r['se']):>5s} {r['train_seconds']:7.1f}")
if "fusion_grid" in result:
    print(f"\\ntwo streams fused RGB {P.rgb_weight:.2f} : flow {1 - P.rgb_weight:.2f} -> {result['two_stream_top1']} % top-1")
    print("fusion-weight grid (section 4.3.3):", {g["fusion"]: g["top1"] for g in result["fusion_grid"]})
print("\\nThe paper's relative findings (quoted, not reproduced):")
for k, v in result["paper_facts"].items():
    print(f"  {v}")"""),
    code("""if "fusion_grid" in result:
    grid = result["fusion_grid"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([g["rgb_weight"] for g in grid], [g["top1"] for g in grid], "o-")
    ax.axvline(0.25, color="grey", ls=":", label="paper's choice 1 : 3 (quoted)")
    ax.set_xlabel("RGB weight (flow weight = 1 - RGB weight)"); ax.set_ylabel("top-1 %")
    ax.set_title("Stream fusion weight vs measured top-1 (SynthActions test split)"); ax.legend(fontsize=8)
    plt.tight_layout(); display(fig); plt.close(fig)"""),
    md("""## 7 · What the trained RGB stream looks at

The temporal weights over the test video's sampled frames, and the first spatial attention map of each frame
over the frame itself. At the teaching size the last feature maps are only 2 x 2 (64^2 input, BN-Inception
reduces by 32), so each map holds 4 weights; the bilinear upsampling only smooths them for display. At the
paper's 224^2 the maps are 7 x 7."""),
    code("""name = "tstam_rgb" if "tstam_rgb" in result["models"] else next(iter(result["models"]))
trained = result["models"][name].eval()
key = trained.input_keys[0]
clip = splits.test.with_modality(key)[0][key]
clip = clip[0] if clip.ndim == 5 else clip                     # first view when testing with crops
with torch.no_grad():
    att = trained.attention_maps({key: clip[None]})
alpha, spatial = att["temporal"][0], att["spatial"][0]         # [N], [N, l, h, w]
frames, _ = ts.read_frame_folder(splits.test.samples[0][0], bound=E.flow_bound)
n = spatial.shape[0]
_, pick = tsn_stack_indices(len(frames) - 1, n, E.new_length, train=False)  # the test segments' RGB frames
pick = pick[0]
fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6))
for i, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(frames[pick[i]])
    ax.imshow(torch.nn.functional.interpolate(spatial[i, :1][None], size=frames.shape[1:3], mode="bilinear")[0, 0],
              alpha=0.5, cmap="jet")
    ax.set_title(f"segment {i + 1}: alpha {alpha[i]:.2f}", fontsize=8); ax.axis("off")
fig.suptitle(f"{name}: temporal weight per segment and spatial map 1 over the frame (one test video)")
plt.tight_layout(); display(fig); plt.close(fig)"""),
]


def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "03_tstam_attention.ipynb")
