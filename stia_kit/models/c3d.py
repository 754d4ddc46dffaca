"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015).

Eight ``3x3x3`` convolutions (64, 128, 256, 256, 512, 512, 512, 512 channels), five max-pools (the first
``1x2x2`` so early temporal information survives, the rest ``2x2x2``), two 4096-unit fully connected layers
with dropout 0.5 and a classifier; input ``16 x 112 x 112``. At 101 classes this has 78,409,573 parameters
(the figure widely reported for C3D on UCF101; 27.66 M in the convolutions, 50.34 M in fc6/fc7).

Choice: pool5 is followed by an adaptive average pool to ``1 x 4 x 4`` (the paper's pool5 output at
16x112^2, where it is the identity), so reduced teaching inputs (e.g. 16 x 64^2) keep the same fc6 shape.

Presets: ``"paper"`` (the default) is the network above; ``"teaching"`` has a quarter of the conv channels
(``width_mult=0.25``) and 512-unit fc6/fc7.

Shape:
    ``[B, 3, T, H, W] -> [B, num_classes]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from torch import Tensor, nn

from ..registry import Preset
from .registry import InputSpec, PresetConfig, register_model

# Table 1 of the paper (conv channels per group, each group followed by a pool)
C3D_GROUPS: tuple[tuple[int, ...], ...] = ((64,), (128,), (256, 256), (512, 512), (512, 512))


@dataclass(frozen=True)
class C3DConfig(PresetConfig):
    """C3D hyper-parameters (defaults = ``paper()``: Table 1 of Tran et al.; ``teaching()``: quarter width,
    512-unit fc)."""

    TEACHING: ClassVar[Mapping[str, Any]] = {"width_mult": 0.25, "fc_dim": 512}

    width_mult: float = 1.0  # scales every conv's channels (paper: 1.0; teaching: 0.25)
    fc_dim: int = 4096  # units of fc6 and fc7 (paper: 4096; teaching: 512)
    dropout: float = 0.5  # dropout after fc6 and fc7 (paper: 0.5)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.fc_dim < 1:
            raise ValueError(f"C3DConfig: width_mult and fc_dim must be positive, got {self.width_mult}, {self.fc_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"C3DConfig.dropout must be in [0, 1), got {self.dropout}")


def c3d_pool(group: int, groups: int) -> nn.MaxPool3d:
    """C3D's pool after conv group ``group`` (0-based) of ``groups``: 1x2x2 after the first (keep early time),
    2x2x2 after the others, the last padded (0, 1, 1) so 7x7 maps pool to 4x4."""
    pool = (1, 2, 2) if group == 0 else (2, 2, 2)
    return nn.MaxPool3d(pool, pool, padding=(0, 1, 1) if group == groups - 1 else 0)


def c3d_classifier(in_ch: int, fc_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    """C3D's head on the ``[B, in_ch, 1, 4, 4]`` pool5 map: fc6, fc7 (ReLU + dropout) and fc8.

    Shape:
        ``[B, in_ch, 1, 4, 4] -> [B, num_classes]``.
    """
    return nn.Sequential(
        nn.Flatten(),  # [B, C * 1 * 4 * 4]
        nn.Linear(in_ch * 16, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),  # fc6
        nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),  # fc7
        nn.Linear(fc_dim, num_classes),  # fc8
    )


class C3D(nn.Module):
    """The C3D network; ``features`` are the conv groups, ``classifier`` fc6-fc8."""

    def __init__(self, cfg: C3DConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        in_ch = cfg.in_channels
        for g, group in enumerate(C3D_GROUPS):
            for ch in group:
                out_ch = max(1, round(ch * cfg.width_mult))
                layers += [nn.Conv3d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = out_ch
            layers.append(c3d_pool(g, len(C3D_GROUPS)))
        layers.append(nn.AdaptiveAvgPool3d((1, 4, 4)))  # identity at 16x112^2 (see module docstring)
        self.features = nn.Sequential(*layers)
        self.classifier = c3d_classifier(in_ch, cfg.fc_dim, num_classes, cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """``T >= 16`` and ``H, W >= 32`` (four 2x temporal pools, five spatial); published 16 x 112^2."""
        return InputSpec(channels=self.cfg.in_channels, num_frames=16, size=112, min_frames=16, min_size=32)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[2] < 16 or min(x.shape[3:]) < 32:
            raise ValueError(f"C3D expects [B, C, T>=16, H>=32, W>=32] (four 2x temporal pools), got {list(x.shape)}")
        return self.classifier(self.features(x))


@register_model("c3d")
def c3d(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> C3D:
    """C3D. ``preset="paper"``: 78,409,573 parameters at 101 classes; ``"teaching"``: ``width_mult=0.25``,
    ``fc_dim=512``. ``overrides``: any :class:`C3DConfig` field."""
    return C3D(C3DConfig.from_preset(preset, **overrides), num_classes)
