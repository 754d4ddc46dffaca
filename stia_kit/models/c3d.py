"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015).

Eight ``3x3x3`` convolutions (64, 128, 256, 256, 512, 512, 512, 512 channels), five max-pools (the first
``1x2x2`` so early temporal information survives, the rest ``2x2x2``), two 4096-unit fully connected layers
with dropout 0.5 and a classifier; input ``16 x 112 x 112``. At 101 classes this has 78,409,573 parameters
(the figure widely reported for C3D on UCF101; 27.66 M in the convolutions, 50.34 M in fc6/fc7).

Choice: pool5 is followed by an adaptive average pool to ``1 x 4 x 4`` (the paper's pool5 output at
16x112^2, where it is the identity), so reduced teaching inputs (e.g. 8 x 64^2) keep the same fc6 shape.

Shape:
    ``[B, 3, T, H, W] -> [B, num_classes]``.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .registry import register_model

# Table 1 of the paper (conv channels per group, each group followed by a pool)
C3D_GROUPS: tuple[tuple[int, ...], ...] = ((64,), (128,), (256, 256), (512, 512), (512, 512))


@dataclass(frozen=True)
class C3DConfig:
    """C3D hyper-parameters (defaults: quarter width, small fc)."""

    width_mult: float = 0.25  # scales every conv's channels (1.0 = paper)
    fc_dim: int = 512  # units of fc6 and fc7 (paper: 4096)
    dropout: float = 0.5  # dropout after fc6 and fc7 (paper: 0.5)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.fc_dim < 1:
            raise ValueError(f"C3DConfig: width_mult and fc_dim must be positive, got {self.width_mult}, {self.fc_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"C3DConfig.dropout must be in [0, 1), got {self.dropout}")


class C3D(nn.Module):
    """The C3D network; ``features`` are the conv groups, ``classifier`` fc6-fc8."""

    def __init__(self, cfg: C3DConfig, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = cfg.in_channels
        for g, group in enumerate(C3D_GROUPS):
            for ch in group:
                out_ch = max(1, round(ch * cfg.width_mult))
                layers += [nn.Conv3d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = out_ch
            pool = (1, 2, 2) if g == 0 else (2, 2, 2)
            layers.append(nn.MaxPool3d(pool, pool, padding=(0, 1, 1) if g == len(C3D_GROUPS) - 1 else 0))
        layers.append(nn.AdaptiveAvgPool3d((1, 4, 4)))  # identity at 16x112^2 (see module docstring)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),  # [B, C * 1 * 4 * 4]
            nn.Linear(in_ch * 16, cfg.fc_dim), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),  # fc6
            nn.Linear(cfg.fc_dim, cfg.fc_dim), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),  # fc7
            nn.Linear(cfg.fc_dim, num_classes),  # fc8
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[2] < 16 or min(x.shape[3:]) < 32:
            raise ValueError(f"C3D expects [B, C, T>=16, H>=32, W>=32] (four 2x temporal pools), got {list(x.shape)}")
        return self.classifier(self.features(x))


@register_model("c3d")
def c3d(*, num_classes: int, width_mult: float = 0.25, fc_dim: int = 512, dropout: float = 0.5) -> C3D:
    """C3D; ``width_mult=1.0, fc_dim=4096`` is the paper's network."""
    return C3D(C3DConfig(width_mult=width_mult, fc_dim=fc_dim, dropout=dropout), num_classes)
