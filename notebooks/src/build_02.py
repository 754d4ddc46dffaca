"""Build notebooks/02_stilt_two_stream.ipynb with nbformat (run: python notebooks/src/build_02.py).

The parameters cell is generated from STILTParams (tests/test_notebook_02.py checks it). The notebook only
calls library code (stia_kit.data.flow / frames, stia_kit.models.*, stia_kit.experiments.stilt) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import stilt as st


cells = [
    md("""# 02 · Two streams that talk to each other: STILT

We build the two-stream network of paper 001 (*spatial-temporal interaction learning two-stream network*,
STILT) step by step:

1. **optical flow**: TV-L1 flow extracted once and stored as JPEG in the TSN layout, shown as colour;
2. a **two-stream sample**: TSN segments, an RGB frame and an `L`-field flow stack per segment;
3. the **2D backbone** run on every segment (segments folded into the batch);
4. the **alternating co-attention** of the STIL module (eq. 1-3): spatial and temporal features attend
   to each other over the segments;
5. the **adaptively weighted fusion** (AWF, eq. 4-9): one weight pair per class, found by linear
   programming, with a worked two-class example;
6. **Tables 4 and 5** trained on SynthActions frames + flow, next to the paper's numbers (quoted), and
   **Table 6** (backbones) by parameter;
7. the trained model's **co-attention weights over segments** and its **AWF weights per class**.

The paper's numbers are quoted and labelled as such: the runs here take minutes on a CPU, on synthetic
videos, without ImageNet weights, so they cannot reproduce them."""),
    code("""import dataclasses, time
import matplotlib.pyplot as plt  # the kernel's inline backend; figures are shown with display(fig)
from IPython.display import display
import numpy as np
import torch

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import stilt as st
from stia_kit.experiments import two_stream as ts
from stia_kit.data.flow import flow_to_rgb, flow_wheel
from stia_kit.data.frames import flow_channel_order
from stia_kit.data.transforms import RandomHorizontalFlipFlow
from stia_kit.models import build_model
from stia_kit.models.backbones2d import build_backbone2d, fold_segments, image_classifier
from stia_kit.models.fusion import awf_coefficients, awf_fuse, awf_predict, fit_awf, late_average
from stia_kit.models.stilt import CoAttention

_names_before = snapshot(globals())"""),
    parameters_cell(
        st.STILTParams,
        'Defaults = the teaching config; preset = "paper" switches to the paper\'s sizes and training recipe '
        "(section 4.2; days on a GPU)."),
    code("""P = from_notebook(st.STILTParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
print(P)"""),
    md("""## 1 · Optical flow, extracted once

Both papers compute TV-L1 flow between consecutive frames, clip it to `+-bound` pixels (the TSN /
dense_flow convention, `bound = 20`) and map it linearly to `[0, 255]`, stored as grey JPEGs next to the
RGB frames: `<Class>/<video>/img_00001.jpg, flow_x_00001.jpg, flow_y_00001.jpg` (a video of `n` frames has
`n - 1` fields). Extraction decodes each video once, so both modalities share frame indices; it is
resumable (a finished video is skipped, a half-written one redone). The colour key shows direction as
hue and speed as saturation (white = no motion). SynthActions shakes its camera a little (`camera_jitter`),
so its whole frame moves; on the real clip the background is still and only the player moves.
The teaching default is DIS flow (`flow_method`): TV-L1, the papers' method, is about 60x slower on a CPU
(`benchmarks/flow.py`); the paper preset uses TV-L1."""),
    code("""t0 = time.perf_counter()
splits = ts.prepare_two_stream_data(P, modality="both", progress=False)
summary = ts.extract_flow(P, progress=False)  # already done: every video is skipped
print(f"data ready in {time.perf_counter() - t0:.0f} s"); print(summary.format())
print("classes:", splits.classes, "| train", len(splits.train), "test", len(splits.test), "videos")
folder = splits.test.samples[0][0]
rgb, flow = ts.read_frame_folder(folder, bound=E.flow_bound, max_frames=6)
real = ts.real_clip("CricketShot")
rows = [("SynthActions " + folder.name, rgb, flow)]
if real is not None:
    r_rgb, r_flow = ts.flow_demo(real, frames=6, method=E.flow_method, bound=E.flow_bound)
    rows.append(("UCF101 " + real.name + " (real)", r_rgb, r_flow))
else:
    print("../shared/realdata is absent: the real clip is not shown")
fig, axes = plt.subplots(2 * len(rows), 6, figsize=(9, 3.3 * len(rows)))
for r, (title, frames, fl) in enumerate(rows):
    scale = max(1.0, float(np.percentile(np.linalg.norm(fl, axis=-1), 99)))
    for t in range(6):
        axes[2 * r, t].imshow(frames[t])
        axes[2 * r, t].set_title(f"{title}\\nframe {t + 1}" if t == 0 else f"frame {t + 1}", fontsize=7, loc="left")
        if t < 5:
            axes[2 * r + 1, t].imshow(flow_to_rgb(fl[t], max_magnitude=scale))
            axes[2 * r + 1, t].set_title(f"flow {t + 1} -> {t + 2}", fontsize=7)
    axes[2 * r + 1, 5].imshow(flow_wheel(64)); axes[2 * r + 1, 5].set_title("colour key", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"RGB frames and {E.flow_method} optical flow (hue = direction, saturation = speed)")
plt.tight_layout(); display(fig); plt.close(fig)"""),
    md("""## 2 · A two-stream sample: segments, frames and flow stacks

TSN sampling (the paper states no segment count; reading: the TSN protocol, 3 segments in training):
the video is cut into `num_segments` equal parts; each part gives a flow stack of `L` consecutive fields
(`2L` channels `x1, y1, ..., xL, yL`) and the RGB frame at the stack's centre. Both modalities get the same
crop and flip; a horizontal flip also inverts the flow's x component (`255 - x`)."""),
    code("""sample = splits.train[0]
print({k: (tuple(v.shape) if torch.is_tensor(v) else v) for k, v in sample.items()})
test_sample = splits.test[0]
print("test sample:", {k: tuple(v.shape) for k, v in test_sample.items() if torch.is_tensor(v)},
      f"({E.test_segments} test segments x {E.test_crops} crop(s))")
print("flow channels:", ", ".join(flow_channel_order(E.new_length)))
# the flip on one stored flow field (x, y channels, values / 255): mirrored, and its x motion inverted
field = torch.from_numpy(np.stack([flow[0, ..., 0], flow[0, ..., 1]]) / (2 * E.flow_bound) + 0.5)[:, None]  # [2, 1, H, W]
flipped = RandomHorizontalFlipFlow(p=1.0, x_channels=[0])(field, np.random.default_rng(0))
print(f"mean flow x / 255 before the flip {field[0].mean():.3f}, after {flipped[0].mean():.3f} "
      f"(128 / 255 = 0.502 is no motion); flow y unchanged in mean: {field[1].mean():.3f} -> {flipped[1].mean():.3f}")"""),
    md("""## 3 · The backbone, one segment at a time

Each stream is a 2D ResNet-50 (Table 2; torchvision layout, 3x3 max-pool) applied to every segment: the
segments are folded into the batch (`[B, C, N, H, W] -> [B*N, C, H, W]`, a 2D convolution is much cheaper
than a 3D one with temporal kernel 1), and the average-pooled 2048-d feature of every segment is kept. The
temporal stream's first convolution takes `2L = 20` channels (cross-modality initialisation: the RGB
filters averaged over their 3 inputs and repeated; TSN convention)."""),
    code("""x = sample["flow"][None]                                     # [B, 2L, N, H, W]
flat, b, n = fold_segments(x)                                  # [B*N, 2L, H, W]
width = E.width or (0.25 if P.preset == "teaching" else 1.0)
net = build_backbone2d("resnet50", in_channels=x.shape[1], width=width).eval()
with torch.no_grad():
    maps, feats = net.forward_maps(flat), net(flat)
print("flow batch", tuple(x.shape), "-> folded", tuple(flat.shape), "-> maps", tuple(maps.shape),
      "-> pooled", tuple(feats.shape), "-> per segment", tuple(feats.view(b, n, -1).shape))
with torch.device("meta"):
    for name in ("resnet50", "resnet34", "vgg19"):
        print(f"{name:9s} image classifier at 1000 classes: {sum(p.numel() for p in image_classifier(name).parameters()):,} params")"""),
    md("""## 4 · Alternating co-attention (eq. 1-3)

`A(K; g)`: (1) `H = tanh(W_k K + (W_g g) 1^T)`, (2) `a = softmax(w_hk^T H)` over the segments, (3)
`O = sum_i a_i k_i`. Three steps: the spatial features attend on their own (`g = 0`), the temporal features
attend guided by the attended spatial vector, then the spatial features again guided by the attended
temporal vector. Reading (the paper's Table 3 says 2048 -> 512, eq. 3 keeps the dimension): a per-stream
linear embedding 2048 -> 512 shared over segments, attention hidden size 512, own parameters per step."""),
    code("""co = CoAttention(2048, embed_dim=512, hidden_dim=512).eval()
S, T = torch.randn(2, 5, 2048), torch.randn(2, 5, 2048)   # [B, N segments, D]
with torch.no_grad():
    s_hat, t_hat = co(S, T)
    w = co.attention_map(S, T)
print("S, T", tuple(S.shape), "-> attended s^, t^", tuple(s_hat.shape), tuple(t_hat.shape))
print("weights over segments:", {k: tuple(v.shape) for k, v in w.items()},
      "| sums", {k: v.sum(-1).round(decimals=4).tolist() for k, v in w.items()})
parts = {"embeddings 2048 -> 512 (x2)": [co.embed_s, co.embed_t], "step 1 (W_k, w_hk)": [co.step1],
         "steps 2 + 3 (W_k, W_g, w_hk)": [co.step2, co.step3]}
for part, mods in parts.items():
    print(f"  {part:30s} {sum(p.numel() for m in mods for p in m.parameters()):>10,d} parameters")
same = torch.randn(1, 1, 2048).expand(1, 5, 2048)
with torch.no_grad():
    print("identical segments -> the attended embedding equals their embedding:",
          torch.allclose(co(same, same)[0], co.embed_s(same[:, 0]), atol=1e-5))"""),
    md("""## 5 · STILT: two streams, the STIL module and two softmax heads

Each stream's attended feature goes through `FC 512 -> 1024, ReLU` and its own classifier, and each head is
trained by its own cross-entropy (the training loop's `stream_logits` contract). The model's `logits` are
the late average of the two heads' probabilities."""),
    code("""model = build_model("stilt", len(splits.classes), preset=P.preset, **P.model_kwargs(P.backbone_list()[-1], streams="both", stil=True)).eval()
batch = {k: v[None] for k, v in sample.items() if k in model.input_keys}
with torch.no_grad():
    out = model(batch)
print("inputs", {k: tuple(v.shape) for k, v in batch.items()})
print("logits", tuple(out["logits"].shape), "| heads", {k: tuple(v.shape) for k, v in out["stream_logits"].items()})
print(f"this model: {sum(p.numel() for p in model.parameters()):,} parameters")
with torch.device("meta"):
    paper = build_model("stilt", 101)
print(f"paper size (ResNet-50 streams, L = 10, UCF101's 101 classes): {sum(p.numel() for p in paper.parameters()):,} parameters")"""),
    md("""## 6 · Adaptively weighted fusion (eq. 4-9), worked by hand

For class `y` the weights `W_y = [w_y1, w_y2]` maximise `P_y - lambda M_y` (eq. 5): `P_y` is class `y`'s
score mass on class-`y` training samples, `M_y` its mass on the other classes' samples (eq. 6-8). The paper
gives no constraint, so the linear program as printed is unbounded; reading: `w_y1 + w_y2 = 1, w >= 0`.
Then the optimum is a vertex: each class takes the stream with the larger `c_n(y) = a_n(y) - lambda b_n(y)`
(a tie gives 0.5 / 0.5 = late average).

Two classes, two training samples: the spatial stream is surer of the class-0 sample, the temporal stream
of the class-1 sample. (With two classes and `lambda = 1` both classes always prefer the same stream, since
`b_n(0) = 1 - a_n(1)` per sample; hence `lambda = 0.5` here. With two classes one-hot weights also decide
like the late average; a difference needs three classes, the second example.)"""),
    code("""scores = np.array([  # [streams, samples, classes]: softmax scores of the training samples
    [[0.9, 0.1], [0.4, 0.6]],     # spatial stream on x0 (class 0), x1 (class 1)
    [[0.6, 0.4], [0.1, 0.9]]])    # temporal stream
labels = np.array([0, 1])
for lam in (0.5, 1.0):
    c = awf_coefficients(scores, labels, lam=lam)         # [classes, streams]
    w_lp = fit_awf(scores, labels, lam=lam, solver="linprog")
    w_cf = fit_awf(scores, labels, lam=lam, solver="closed_form")
    print(f"lambda {lam}: c_n(y) rows = classes, columns = (spatial, temporal):", c.round(2).tolist(),
          "-> W (linprog)", w_lp.tolist(), "| closed form equal:", bool(np.allclose(w_lp, w_cf)))
# three classes, W = [spatial, temporal, spatial]: a test sample on which the streams disagree
w3 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
test = np.array([[[0.6, 0.05, 0.35]], [[0.05, 0.5, 0.45]]])  # [streams, 1 sample, 3 classes]
print("three classes: late average", late_average(test[0], test[1]).round(3).tolist(), "-> class",
      late_average(test[0], test[1]).argmax(1).tolist(), "| AWF (eq. 9)", awf_fuse(test, w3).tolist(), "-> class",
      awf_predict(test, w3).tolist())"""),
    md("""## 7 · Tables 4 and 5 on SynthActions

Schedule (reading of section 4.2): (1) each stream alone (the *Spatial* / *Temporal* rows; their late
average is *Two-stream*), (2) STILT end to end from those streams (*+ STIL*), (3) AWF fitted on scores of the
training split under the test protocol (*+ STIL + AWF*); Table 5's early fusion is a linear SVM (C = 1) on
the concatenated attended features. Same data, seed and recipe for every stage."""),
    code("""t0 = time.perf_counter()
result = st.run_stilt(P, progress=False)
print(f"wall time {time.perf_counter() - t0:.0f} s, seed {P.seed}, {E.epochs} epochs per stage, "
      f"{result['train_clips']} train / {result['test_clips']} test videos, chance {result['chance_top1']} %")
def show_rows(rows):
    keys = list(rows[0])
    print(" | ".join(f"{k:>22s}" if i else f"{k:26s}" for i, k in enumerate(keys)))
    for r in rows:
        print(" | ".join(f"{str(r[k]):>22s}" if i else f"{str(r[k]):26s}" for i, k in enumerate(keys)))
print("\\nTable 4 (measured on SynthActions | paper columns quoted, not reproduced)")
show_rows(st.table_rows(result, "table4"))
print("\\nTable 5 (fusion after STIL)")
show_rows(st.table_rows(result, "table5"))
for bb, res in result["backbones"].items():
    print(f"\\n{bb}: stage seconds {res['train_seconds']}, epochs {res['epochs']}, params {res['num_params']}")"""),
    code("""rows4 = st.table_rows(result, "table4")
bb = P.backbone_list()[-1]
fig, ax = plt.subplots(figsize=(8, 3.2))
x = np.arange(len(rows4))
ax.bar(x - 0.2, [r[f"measured {bb} top-1 %"] for r in rows4], 0.4, label=f"measured, SynthActions ({bb}, seed {P.seed})")
ax.bar(x + 0.2, [r["paper UCF101 %"] for r in rows4], 0.4, alpha=0.5, label="paper, UCF101 (quoted)")
ax.axhline(result["chance_top1"], color="grey", ls=":", label="chance")
ax.set_xticks(x); ax.set_xticklabels([r["row"].replace("Two-stream", "2S") for r in rows4], fontsize=8)
ax.set_ylabel("top-1 %"); ax.set_title("Table 4 rows: measured top-1 vs the paper's (quoted)"); ax.legend(fontsize=7)
plt.tight_layout(); display(fig); plt.close(fig)"""),
    md("""## 8 · Inside the trained model: co-attention over segments, AWF per class

The co-attention weights say which segments each stream relied on for a test video; the AWF table says
which stream each class trusts (rows sum to 1), and the lambda sweep how much the penalty on other
classes' samples matters."""),
    code("""trained = result["models"][bb]["stil"].eval()
test_one = {k: v[None] for k, v in splits.test[0].items() if k in trained.input_keys}
with torch.no_grad():
    weights = trained.attention_map(test_one)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
for ax, (name, w) in zip(axes, weights.items()):
    ax.bar(np.arange(1, w.shape[-1] + 1), w[0].numpy())
    ax.set_xlabel("segment"); ax.set_ylabel("weight"); ax.set_title(f"{name} co-attention weights, one test video")
plt.tight_layout(); display(fig); plt.close(fig)
res = result["backbones"][bb]
print(f"AWF weights per class (lambda = {P.awf_lambda}, fitted on {res['fit_clips']} {res['fit_on']} clips)")
print(f"{'class':12s} {'w spatial':>9s} {'w temporal':>10s}")
for name, (ws, wt) in zip(result["classes"], res["awf_weights"]):
    print(f"{name:12s} {ws:9.2f} {wt:10.2f}")
print("\\nlambda sweep (STIL + AWF top-1 %):", {r["lambda"]: r["top1"] for r in res["lambda_sweep"]})
print("\\nTable 6 (STIL + AWF per backbone; measured where run, `backbones` parameter):")
show_rows(st.table6_rows(result))"""),
]


def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "02_stilt_two_stream.ipynb")
