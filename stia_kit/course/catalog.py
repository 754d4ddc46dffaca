"""The course: the notebook path 00 -> 07 and the exercises, one per key idea (data only, no imports).

``EXERCISES`` names each otter-grader master notebook ``exercises/<name>.ipynb``; ``stia course assign``
builds ``<out>/<name>/student/`` and ``<out>/<name>/autograder/`` from it. ``NOTEBOOKS`` is the course book's
reading order (``stia course build``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXERCISES_DIR = REPO_ROOT / "exercises"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class Exercise:
    name: str       # file stem of exercises/<name>.ipynb and the otter assignment name
    title: str      # one line, shown in the course index
    idea: str       # the key idea the learner writes
    reference: str  # the library object(s) the checks compare the learner's code with
    notebook: str   # the course notebook that teaches the idea


@dataclass(frozen=True)
class CourseNotebook:
    file: str       # notebooks/<file>
    title: str      # one line
    teaches: str    # what a learner takes from it (course index)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("01_eca", "ECA: the adaptive kernel size and the module", "k = |log2(C)/gamma + b/gamma| rounded to odd; "
             "a 1D convolution across pooled channels", "stia_kit.models.attention.eca_kernel_size, ECA3d",
             "01_dual_pathway_cdai.ipynb"),
    Exercise("02_axial_attention", "One axial attention direction", "self-attention along one axis (T, H or W) of a "
             "[B, C, T, H, W] map, the other axes folded into the batch", "stia_kit.models.attention.AxialAttention3d",
             "01_dual_pathway_cdai.ipynb"),
    Exercise("03_lateral_connection", "A lateral connection: time-strided convolution (time-to-channel)",
             "fast pathway features reshaped / strided in time to meet the slow pathway, then concatenated",
             "stia_kit.models.slowfast.FuseFastToSlow", "01_dual_pathway_cdai.ipynb"),
    Exercise("04_le_curve_exposure", "The LE curve and the exposure control loss", "LE(x) = x + a x (1 - x) applied "
             "n times; the exposure loss as the official code computes it, mean (patch mean - E)^2", "stia_kit.enhance.zero_dce.le_curve, apply_curves, "
             "stia_kit.enhance.losses.ExposureControlLoss", "06_lowlight_arid.ipynb"),
    Exercise("05_coattention_step", "One co-attention step (STILT)", "a guided attention step: segment features "
             "weighted by a softmax over the segments, conditioned on the other stream's summary (Eq. (1)-(3))",
             "stia_kit.models.stilt.GuidedAttention", "02_stilt_two_stream.ipynb"),
    Exercise("06_tsn_sampler", "The TSN segment sampler", "K equal segments, one random snippet per segment in "
             "training, the centre snippet in testing", "stia_kit.data.sampling.tsn_indices",
             "03_tstam_attention.ipynb"),
    Exercise("07_fca_dct", "FcaNet's DCT channel filters (MSF-Net)", "2D DCT-II basis images as channel pooling "
             "filters, one frequency per channel group", "stia_kit.models.attention.FrequencyChannelAttention3d",
             "05_msf_fsam.ipynb"),
    Exercise("08_diversity_loss", "ST-MANet's diversity loss", "attention maps of different levels pushed apart "
             "(temporal and spatial diversity losses)", "stia_kit.models.st_manet.temporal_diversity_loss, "
             "spatial_diversity_loss", "04_st_manet.ipynb"),
)

NOTEBOOKS: tuple[CourseNotebook, ...] = (
    CourseNotebook("00_quickstart.ipynb", "Quickstart: a 3D network vs a frame-level network",
                   "clips as [C, T, H, W] tensors, SynthActions' confusable pairs, why motion needs 3D convolutions"),
    CourseNotebook("01_dual_pathway_cdai.ipynb", "STIN: dual pathways and Cross Dual-Attention Interaction",
                   "dense / sparse pathway sampling, ECA, axial attention, lateral connections, the Table-3 ablation"),
    CourseNotebook("02_stilt_two_stream.ipynb", "STILT: two streams and alternating co-attention",
                   "optical flow, two-stream samples, 2D backbones per segment, co-attention, AWF score fusion"),
    CourseNotebook("03_tstam_attention.ipynb", "T-STAM: temporal and multi-spatial attention",
                   "SE-BN-Inception, TSN segments, temporal and multi-spatial attention, RGB / flow fusion"),
    CourseNotebook("04_st_manet.ipynb", "ST-MANet: deep aggregation attention",
                   "3D ResNet-50 stages, TDA / SDA attention matrices, multi-level fusion, diversity losses"),
    CourseNotebook("05_msf_fsam.ipynb", "MSF-Net: multilevel split and frequency attention",
                   "multilevel split convolutions and receptive fields, FcaNet DCT channel attention, FSAM"),
    CourseNotebook("06_lowlight_arid.ipynb", "Night-time recognition: Zero-DCE on ARID",
                   "the LE curve, non-reference losses, enhancement before recognition on dark clips"),
    CourseNotebook("07_attention_and_attribution.ipynb", "Where models look: attention and attribution",
                   "recorded attention maps, Captum attributions, localisation against actor masks, sanity checks"),
)


def exercise(name: str) -> Exercise:
    """The catalogue entry ``name``; a clear error listing the known names otherwise."""
    for ex in EXERCISES:
        if ex.name == name:
            return ex
    raise KeyError(f"unknown exercise {name!r}; known: {', '.join(e.name for e in EXERCISES)}")
