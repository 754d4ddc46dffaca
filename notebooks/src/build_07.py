"""Build notebooks/07_attention_and_attribution.ipynb with nbformat (run: python notebooks/src/build_07.py).

The parameters cell is generated from ExplainParams (tests/test_notebook_07.py checks it). The notebook only
calls library code (stia_kit.explain.*, stia_kit.experiments.explain) and plots.
"""
from nbbuild import code, md, parameters_cell, write_notebook
from stia_kit.experiments import explain as ex


cells = [
    md("""# 07 · Where do the models look? Attention maps, attributions and how to measure them

Models of three families trained on SynthActions -- the frame-level 2D baseline **R2D-18**, the 3D-convolution
**R3D-18** and **MSF-R3D + FSAM** (3D convolutions with frequency and spatio-temporal attention, paper 003) --
explained on the same clips:

1. SynthActions' **actor masks**: every clip comes with the pixels of the actor (and the object it holds), so
   an explanation can be *scored*, not only looked at;
2. train (or load) the three models;
3. **attention maps** recorded from the attention modules of a forward pass (`AttentionRecorder`);
4. **attributions** (Captum): saliency, Integrated Gradients, 3D Grad-CAM, occlusion, side by side;
5. the 2D baseline and a 3D model on the **sit / stand pair** (the same motion played forwards and backwards):
   which frames carry the evidence?
6. the **localisation table** (pointing game, energy in mask, rank accuracy, phase mass, deletion AUC, each
   beside its chance level) and the **sanity check** (cascading randomisation, Adebayo et al. 2018);
7. an interactive explorer and a self-contained HTML report (`stia explain`).

Everything below is measured in this run; no number is copied from a paper."""),
    code("""import dataclasses
from pathlib import Path
import numpy as np
import plotly.io as pio
import torch
from IPython.display import Markdown, display

from stia_kit.params import from_notebook, snapshot
from stia_kit.experiments import explain as ex
from stia_kit.explain import measures as M
from stia_kit.explain.attribution import attribute, default_layer
from stia_kit.explain.clips import mask_clip, prepare_clip, run_data_config
from stia_kit.explain.recorder import AttentionRecorder
from stia_kit.explain.views import Explorer, attention_figure, frame_importance, frames_grid, heatmap_slider
from stia_kit.explain.pipeline import explain_video
from stia_kit.synth import load_masks
from stia_kit.viz import save_html

pio.renderers.default = "plotly_mimetype+notebook"  # figures stay visible in the saved notebook
_names_before = snapshot(globals())"""),
    parameters_cell(
        ex.ExplainParams,
        'Defaults = the teaching config (minutes on 2 CPU cores); preset = "paper" switches to R3D-18\'s published '
        "clip geometry (16 x 112^2)."),
    code("""P = from_notebook(ex.ExplainParams, globals(), _names_before)  # raises on unknown names / wrong types
E = P.resolved()  # the preset applied
out_dir = Path(P.out_dir)
out_dir.mkdir(parents=True, exist_ok=True)
print(P)"""),
    md("""## 1 · SynthActions clips and their actor masks

The generator writes, beside every video, the actor mask of every frame (`.npz`). `mask_clip` sends it
through the same frame indices, resize and centre crop as the clip the model sees, so a map and a mask are
compared pixel for pixel. The frames in which the action actually happens are known too (`action_phase`:
SynthActions' one-shot actions start and stop inside the clip; *stand* is *sit* played backwards)."""),
    code("""splits = ex.prepare_data(P, progress=True)
classes = splits.classes
dcfg = run_data_config(P)
i_sit, i_stand = ex.pair_clips(splits, "Sit", "Stand")
clips, masks, active = {}, {}, {}
for name, i in (("Sit", i_sit), ("Stand", i_stand)):
    path, label = splits.test.samples[i]
    clips[name] = prepare_clip(path, dcfg)
    all_masks, _, meta = load_masks(path)
    masks[name] = mask_clip(all_masks, clips[name].indices, dcfg)
    active[name] = M.action_phase(meta, clips[name].num_video_frames, clips[name].indices)
    print(f"{name}: {path.name}, clip {tuple(clips[name].clip.shape)}, frames {clips[name].indices.tolist()}, "
          f"actor = {100 * masks[name].mean():.1f} % of the pixels, action in frames {np.flatnonzero(active[name]).tolist()}")
fig = frames_grid(clips["Sit"].frames, {"actor mask": masks["Sit"].astype(np.float32)}, frames=6,
                  title="A sit clip (top) and its actor mask overlaid (bottom)")
save_html(fig, out_dir / "mask.html")
fig.show()"""),
    md("""## 2 · Train (or load) one model per family

Same data, seed and recipe for every model. A finished run folder is loaded instead of retrained (rerunning
the notebook is cheap)."""),
    code("""runs = ex.train_models(P, splits, progress=True)
print(f"{'model':14s} {'family':52s} {'test top-1 %':>12s} {'params':>11s} {'seconds':>8s}")
for row, run in runs.items():
    print(f"{row:14s} {ex.ROWS[row][2]:52s} {100 * run.test.top1:12.1f} {run.num_params:11,d} {run.seconds:8.1f}")
print(f"chance: {100 / len(classes):.1f} %")"""),
    md("""## 3 · Attention maps, recorded

`AttentionRecorder` hooks every attention module of a model and, for the recorded pass, asks each module for
its own map (`attention_map` on the inputs it received). FSAM gives a channel weight per channel and a
spatio-temporal weight per position; below, the spatio-temporal weights of the last FSAM, upsampled to the
clip, next to the clip."""),
    code("""attn_row = next((r for r in runs if ex.ROWS[r][0] in ("msf_r3d", "st_manet", "stin")), None)
attention_maps = {}
if attn_row is None:
    print("no attention model in P.models: nothing to record")
else:
    net = runs[attn_row].model.eval()
    x = clips["Sit"].clip[None]
    with AttentionRecorder(net) as rec, torch.no_grad():
        net(x)
    for label, kind, t in rec.flat():
        print(f"{attn_row}: {label:28s} {kind:16s} {tuple(t.shape)}")
    flat = rec.flat()
    for label, kind, t in flat[-2:]:
        fig = attention_figure(label, kind, t.numpy(), title=f"{attn_row}: {label} ({kind}) on the sit clip")
        fig.show()
    from stia_kit.explain.evaluate import attention_saliency
    attention_maps = attention_saliency(net, x)
    if attention_maps:
        name, vol = list(attention_maps.items())[-1]
        fig = heatmap_slider(clips["Sit"].frames, {name: vol}, title=f"{attn_row}: {name} upsampled to the clip (sit)")
        save_html(fig, out_dir / "attention.html")
        fig.show()"""),
    md("""## 4 · Attributions, side by side

Each method explains the true class of the clip: **saliency** (|gradient|), **Integrated Gradients** (black
frames as the baseline, `ig_steps` steps), **3D Grad-CAM** on the last spatio-temporal layer (upsampled trilinearly),
**occlusion** (non-overlapping windows of 2 frames x `occlusion_window`^2 pixels set to the mean colour, i.e. zero after normalisation).
One frame slider drives all panels; maps are normalised per method over
the whole clip, so frames are comparable within a method."""),
    code("""methods = P.method_list()
explained = {}  # (clip, model, method) -> map [T, H, W]
for row, run in runs.items():
    net = run.model.eval()
    print(f"{row}: Grad-CAM layer {default_layer(net)!r}")
    for name, item in clips.items():
        for method in methods:
            att = attribute(net, item.clip[None], target=classes.index(name), method=method,
                            config=P.explain_config(method), verbose=False)
            explained[name, row, method] = att.maps["video"][0].numpy()
for row in runs:
    fig = heatmap_slider(clips["Sit"].frames, {m: explained["Sit", row, m] for m in methods},
                         title=f"{row}: attributions of 'sit' on a sit clip")
    save_html(fig, out_dir / f"attributions_{row}.html")
    fig.show()"""),
    md("""## 5 · The sit / stand pair: which frames carry the evidence?

A single frame of *sit* and of *stand* can be identical: only the order of the frames tells them apart. Per
frame, the share of each model's Integrated-Gradients relevance, with the frames in which the action happens
shaded; the phase mass is the share of relevance inside those frames (chance = their share of the clip)."""),
    code("""ig = "integrated_gradients" if "integrated_gradients" in methods else methods[0]
for name in ("Sit", "Stand"):
    curves = {row: M.frame_mass(explained[name, row, ig]) for row in runs}
    fig = frame_importance(curves, title=f"{ig}: relevance per frame, {name} clip (shaded: the action happens)",
                           active=active[name])
    fig.show()
    summary = ex.phase_summary(curves, active[name])
    preds = {row: classes[ex.predict(run.model, clips[name].clip)] for row, run in runs.items()}
    print(f"{name}: phase mass " + ", ".join(f"{k} {v:.2f}" for k, v in summary.items())
          + " | predicted: " + ", ".join(f"{k} -> {v}" for k, v in preds.items()))"""),
    md("""What to look for in the numbers above (they are this run's; rerun with another `seed` to see how much they
move): the 2D baseline scores every frame on its own and averages, so nothing it computes depends on the order
of the frames -- on *sit* vs *stand* it can only use poses, which occur in both. A 3D model can use the
change between frames. Is its relevance more concentrated in the frames where the action happens (phase mass
above the chance level) than the baseline's? Does its prediction of the pair differ? One pair of clips is an
anecdote: the table below averages over clips of every class."""),
    md("""## 6 · The localisation table and the sanity check

For `eval_clips` test clips (spread over the classes), every method's map of the true class is scored
against the actor mask. Each metric is printed beside its chance level (what a random or uniform map
scores); deletion AUC is lower-is-better (the target probability while the most relevant positions are
removed; chance = a random map). The sanity check randomises the model's top `sanity_layers` layers and
reports how similar (Spearman) the map stays: an explanation of the *trained* model should change."""),
    code("""results = ex.localisation_tables(P, runs)
display(Markdown(ex.format_table(results)))
print("written:", sorted(str(p) for p in out_dir.glob("explain_eval_*")))"""),
    code("""for row, res in results.items():
    better = {m: [k for k in ("pointing", "energy", "rank", "phase") if res.rows[m].get(k, np.nan) > res.chance.get(k, np.inf)]
              for m in res.rows}
    print(f"{row} (test top-1 {100 * runs[row].test.top1:.1f} %):")
    for m, ks in better.items():
        sanity = res.sanity.get(m)
        verdict = "n/a" if sanity is None else f"{sanity:.2f} ({'pass' if res.sanity_passed[m] else 'FAIL'})"
        print(f"  {m:34s} above chance on {ks if ks else 'none'}; sanity similarity {verdict}")"""),
    md("""## 7 · Explore, and write a report

The explorer caches every map it computes, so moving between clips, models, methods and frames only
recomputes a selection it has never seen (it needs a live kernel; under papermill the static figure below is
what renders). `stia explain VIDEO --run RUN --out report.html` writes the same views for any clip into one
self-contained HTML file (no internet needed to open it)."""),
    code("""def compute(clip_name, row, method, layer, target):
    key = (clip_name, row, method)
    if key not in explained:
        att = attribute(runs[row].model.eval(), clips[clip_name].clip[None], target=classes.index(clip_name),
                        method=method, config=P.explain_config(method), verbose=False)
        explained[key] = att.maps["video"][0].numpy()
    return clips[clip_name].frames, explained[key]

explorer = Explorer(compute, clips=list(clips), runs=list(runs), methods=list(methods))
display(explorer.widget())
explorer.static_figure(run=list(runs)[-1], clip="Stand").show()"""),
    code("""row = list(runs)[-1]
report, exp = explain_video(runs[row].run_dir, splits.test.samples[i_stand][0], out_dir / "report_stand.html",
                            methods=methods[:3], verbose=False)
print(f"{report} ({report.stat().st_size / 1e6:.1f} MB): {row} predicts {exp.classes[int(exp.probs.argmax())]} "
      f"({exp.probs.max():.2f}); true class {exp.classes[exp.label]}")"""),
]



def notebook_cells() -> list:
    """The notebook's cells (what tests/test_notebooks_built.py compares with the committed notebook)."""
    return list(cells)


if __name__ == "__main__":
    write_notebook(notebook_cells(), "07_attention_and_attribution.ipynb")
