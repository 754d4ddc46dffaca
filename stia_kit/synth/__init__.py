"""SynthActions: a procedural, ARID-like action benchmark that needs no download.

Eleven classes (ARID's) performed by a rendered articulated figure, built in confusable pairs so
that single frames cannot solve the task (see :mod:`stia_kit.synth.actions`), written as real videos
in the UCF101 / HMDB51 / ARID layouts (:func:`generate_synth_actions`).
"""

from .actions import Motion
from .config import ACTIONS, LAYOUTS, SynthConfig, class_name
from .generate import SynthSummary, generate_synth_actions, load_masks, render_dataset_clip
from .render import DarkenParams, RenderedClip, Scene, darken, render_clip, render_clip_with_meta

__all__ = [
    "ACTIONS", "LAYOUTS", "DarkenParams", "Motion", "RenderedClip", "Scene", "SynthConfig", "SynthSummary",
    "class_name", "darken", "generate_synth_actions", "load_masks", "render_clip", "render_clip_with_meta",
    "render_dataset_clip",
]
