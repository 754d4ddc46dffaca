"""Load SlowFast-R50 weights from a *local* PySlowFast or PyTorchVideo checkpoint (no download).

Both key layouts are mapped onto our :class:`~.slowfast.SlowFast` names, and from there onto STIN's shared
backbone parts (STIN's ``sparse`` = SlowFast's ``slow``, ``dense`` = ``fast``; the stem lateral
``laterals.0`` = ``fuse.0`` where STIN has one, i.e. with ``cdai=False`` or ``cdai_stem_lateral=True``;
with ``cdai=False`` also ``laterals.1-3`` = ``fuse.1-3``)::

    PySlowFast (``{"model_state": ...}``)             ours (SlowFast)
    s1.pathway0_stem.conv / .bn                         slow.stem.conv.0 / .1
    s1_fuse.conv_f2s / .bn  (s2_fuse, s3_fuse, s4_fuse)  fuse.0.conv.0 / .1  (fuse.1, fuse.2, fuse.3)
    s{2..5}.pathway{0,1}_res{j}.branch2.a / .a_bn       {slow,fast}.stages.{0..3}.{j}.conv_a.0 / .1  (b, c)
    s{2..5}.pathway{0,1}_res{j}.branch1 / .branch1_bn   {slow,fast}.stages.{0..3}.{j}.downsample.0 / .1
    head.projection                                     head.fc

    PyTorchVideo (``slowfast_r50``)
    blocks.0.multipathway_blocks.{0,1}.conv / .norm      {slow,fast}.stem.conv.0 / .1
    blocks.{0..3}.multipathway_fusion.conv_fast_to_slow / .norm   fuse.{0..3}.conv.0 / .1
    blocks.{1..4}.multipathway_blocks.{0,1}.res_blocks.{j}.branch2.conv_a / .norm_a   ... conv_a.0 / .1
    blocks.{1..4}.multipathway_blocks.{0,1}.res_blocks.{j}.branch1_conv / .branch1_norm  ... downsample.0 / .1
    blocks.6.proj                                       head.fc

Weights whose shapes differ (e.g. STIN's sparse res3 input has ``C + beta C`` channels where SlowFast's
has ``C + 2 beta C``, or a head with another class count) are *not* loaded and are reported.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import torch
from torch import Tensor, nn

Layout = Literal["auto", "pyslowfast", "pytorchvideo"]
_PATHWAY = {"0": "slow", "1": "fast"}
_BN_SUFFIX = r"(weight|bias|running_mean|running_var|num_batches_tracked)"


def _pyslowfast_key(key: str) -> str | None:
    if m := re.fullmatch(r"s1\.pathway([01])_stem\.(conv|bn)\.(\w+)", key):
        return f"{_PATHWAY[m[1]]}.stem.conv.{0 if m[2] == 'conv' else 1}.{m[3]}"
    if m := re.fullmatch(r"s([1-4])_fuse\.(conv_f2s|bn)\.(\w+)", key):
        return f"fuse.{int(m[1]) - 1}.conv.{0 if m[2] == 'conv_f2s' else 1}.{m[3]}"
    if m := re.fullmatch(r"s([2-5])\.pathway([01])_res(\d+)\.branch2\.([abc])(_bn)?\.(\w+)", key):
        return f"{_PATHWAY[m[2]]}.stages.{int(m[1]) - 2}.{m[3]}.conv_{m[4]}.{1 if m[5] else 0}.{m[6]}"
    if m := re.fullmatch(r"s([2-5])\.pathway([01])_res(\d+)\.branch1(_bn)?\.(\w+)", key):
        return f"{_PATHWAY[m[2]]}.stages.{int(m[1]) - 2}.{m[3]}.downsample.{1 if m[4] else 0}.{m[5]}"
    if m := re.fullmatch(r"head\.projection\.(weight|bias)", key):
        return f"head.fc.{m[1]}"
    return None


def _pytorchvideo_key(key: str) -> str | None:
    if m := re.fullmatch(r"blocks\.0\.multipathway_blocks\.([01])\.(conv|norm)\.(\w+)", key):
        return f"{_PATHWAY[m[1]]}.stem.conv.{0 if m[2] == 'conv' else 1}.{m[3]}"
    if m := re.fullmatch(r"blocks\.([0-3])\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(\w+)", key):
        return f"fuse.{m[1]}.conv.{0 if m[2] == 'conv_fast_to_slow' else 1}.{m[3]}"
    if m := re.fullmatch(r"blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)\.branch2\.(conv|norm)_([abc])\.(\w+)", key):
        return f"{_PATHWAY[m[2]]}.stages.{int(m[1]) - 1}.{m[3]}.conv_{m[5]}.{0 if m[4] == 'conv' else 1}.{m[6]}"
    if m := re.fullmatch(r"blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)\.branch1_(conv|norm)\.(\w+)", key):
        return f"{_PATHWAY[m[2]]}.stages.{int(m[1]) - 1}.{m[3]}.downsample.{0 if m[4] == 'conv' else 1}.{m[5]}"
    if m := re.fullmatch(r"blocks\.6\.proj\.(weight|bias)", key):
        return f"head.fc.{m[1]}"
    return None


def _to_stin(key: str, cdai: bool) -> str | None:
    """SlowFast name -> STIN name (None when STIN has no counterpart)."""
    if key.startswith("slow."):
        return "sparse." + key[5:]
    if key.startswith("fast."):
        return "dense." + key[5:]
    if m := re.fullmatch(r"fuse\.(\d)\.(.*)", key):
        return None if cdai and m[1] != "0" else f"laterals.{m[1]}.{m[2]}"
    return key


def detect_layout(state: Mapping[str, Tensor]) -> Literal["pyslowfast", "pytorchvideo"]:
    """Which checkpoint layout ``state`` uses (by its key names)."""
    if any(k.startswith("s1.pathway0_stem") for k in state):
        return "pyslowfast"
    if any(k.startswith("blocks.0.multipathway_blocks") for k in state):
        return "pytorchvideo"
    raise ValueError("not a PySlowFast / PyTorchVideo SlowFast state dict (no stem keys found)")


@dataclass
class LoadReport:
    """What :func:`load_slowfast_weights` did, key by key (our names, except ``unexpected``)."""

    layout: str
    matched: list[str] = field(default_factory=list)  # ours, loaded
    missing: list[str] = field(default_factory=list)  # ours, left at initialisation
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no counterpart in our model
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)  # (ours, ckpt, ours)

    def summary(self) -> str:
        return (f"{self.layout}: {len(self.matched)} matched, {len(self.missing)} missing, "
                f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape-mismatched")


def load_slowfast_weights(model: nn.Module, source: str | Path | Mapping[str, Tensor], *,
                          layout: Layout = "auto") -> LoadReport:
    """Copy a PySlowFast / PyTorchVideo SlowFast-R50 state dict into ``model`` (SlowFast or STIN).

    ``source`` is a local file (read with ``torch.load(..., weights_only=True)``; a PySlowFast
    ``{"model_state": ...}`` wrapper is unpacked) or a state dict. Returns a :class:`LoadReport`.
    """
    from .stin import STIN  # local import: stin imports slowfast, keep this module light

    if isinstance(source, (str, Path)):
        state = torch.load(Path(source), map_location="cpu", weights_only=True)
    else:
        state = source
    for wrapper in ("model_state", "state_dict", "model"):
        if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    layout = detect_layout(state) if layout == "auto" else layout
    to_ours = _pyslowfast_key if layout == "pyslowfast" else _pytorchvideo_key
    is_stin = isinstance(model, STIN)
    own = model.state_dict()
    report, new = LoadReport(layout), {}
    for key, value in state.items():
        ours = to_ours(key)
        if ours is not None and is_stin:
            ours = _to_stin(ours, model.cfg.cdai)
        if ours is None or ours not in own:
            report.unexpected.append(key)
        elif own[ours].shape != value.shape:
            report.mismatched.append((ours, tuple(value.shape), tuple(own[ours].shape)))
        else:
            new[ours] = value
            report.matched.append(ours)
    report.missing = sorted(set(own) - set(new))
    model.load_state_dict(new, strict=False)
    return report
