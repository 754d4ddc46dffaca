"""3D ResNets (R3D) and the frame-level R2D baseline, composed from :mod:`stia_kit.models.blocks`.

R3D-18 follows Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition"
(CVPR 2018), exactly as torchvision's ``r3d_18`` builds it: a ``3x7x7`` stem with stride ``(1,2,2)`` and no
max-pool, four stages of two ``3x3x3`` basic blocks with 64/128/256/512 channels, stages 2-4 downsampling
time and space by 2, global average pooling and a linear layer (33,371,472 parameters for 400 classes).

R2D-18 is the same network with every temporal kernel and stride set to 1: a 2D ResNet-18 applied to each
frame, with the frames averaged at the end (the paper's "R2D on frames", fR2D). Time is only pooled, never
modelled, so it cannot tell a clip from its reverse: SynthActions' sit/stand pair defeats it by design.

Sizes: ``width`` scales all channels. ``preset="paper"`` (the default of both builders) is width 64, the
published networks; ``preset="teaching"`` is width 16 (1/16 of the parameters), trained on small inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from torch import Tensor, nn

from ..registry import Preset
from .blocks import BasicBlock, Bottleneck, ClassifierHead, Stem, res_stage
from .registry import InputSpec, PresetConfig, register_model


@dataclass(frozen=True)
class ResNet3DConfig(PresetConfig):
    """Hyper-parameters of a single-pathway 3D ResNet (defaults = ``paper()``: R3D-18, width 64;
    ``teaching()``: width 16)."""

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 16}

    depths: tuple[int, ...] = (2, 2, 2, 2)  # blocks per stage (ResNet-18: 2,2,2,2; ResNet-50: 3,4,6,3)
    bottleneck: bool = False  # Bottleneck (x4 expansion) blocks instead of basic blocks
    width: int = 64  # channels of the first stage (paper: 64; teaching: 16); later stages double
    stem_kernel: tuple[int, int, int] = (3, 7, 7)  # stem conv kernel (t, h, w)
    stem_pool: bool = False  # 1x3x3 max-pool after the stem (ResNet-50 style)
    temporal_kernels: tuple[int, ...] = (3, 3, 3, 3)  # temporal kernel of each stage's convs
    temporal_strides: tuple[int, ...] = (1, 2, 2, 2)  # temporal stride of each stage
    spatial_strides: tuple[int, ...] = (1, 2, 2, 2)  # spatial stride of each stage
    dropout: float = 0.0  # dropout before the classifier
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        n = len(self.depths)
        for name in ("temporal_kernels", "temporal_strides", "spatial_strides"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ResNet3DConfig.{name} needs one entry per stage ({n}), got {getattr(self, name)}")
        if self.width < 1 or any(d < 1 for d in self.depths):
            raise ValueError(f"ResNet3DConfig: width and depths must be positive, got {self.width}, {self.depths}")
        if any(k % 2 == 0 for k in (*self.temporal_kernels, *self.stem_kernel)):
            raise ValueError("ResNet3DConfig: kernels must be odd so 'same' padding keeps shapes")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ResNet3DConfig.dropout must be in [0, 1), got {self.dropout}")


class ResNet3D(nn.Module):
    """Stem -> stages -> global average pool -> linear.

    Shape:
        ``[B, 3, T, H, W] -> [B, num_classes]``; stage ``i`` output is
        ``[B, width * 2^i * expansion, T / prod(st), H / (2 * prod(ss)), W / (2 * prod(ss))]``.
    """

    def __init__(self, cfg: ResNet3DConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        block = Bottleneck if cfg.bottleneck else BasicBlock
        self.stem = Stem(cfg.in_channels, cfg.width, kernel=cfg.stem_kernel, pool=cfg.stem_pool)
        stages, in_ch = [], cfg.width
        for i, depth in enumerate(cfg.depths):
            width = cfg.width * 2**i
            stride = (cfg.temporal_strides[i], cfg.spatial_strides[i], cfg.spatial_strides[i])
            stages.append(res_stage(block, in_ch, width, depth, stride=stride, temporal_kernel=cfg.temporal_kernels[i]))
            in_ch = width * block.expansion
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes, dropout=cfg.dropout)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Outputs of every stage (for attention maps and attribution)."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    @property
    def input_spec(self) -> InputSpec:
        """Any ``T`` and ``H, W`` work; published geometry 16 x 112^2. ``min_size`` is the total spatial
        stride (smaller frames reach the last stage as 1 x 1)."""
        stride = 2  # the stem's
        for s in self.cfg.spatial_strides:
            stride *= s
        return InputSpec(channels=self.cfg.in_channels, num_frames=16, size=112, min_size=stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x)[-1])


#: R2D-18: R3D-18 with every temporal kernel and stride 1 (a 2D ResNet-18 on each frame).
R2D_FIELDS: dict[str, Any] = dict(stem_kernel=(1, 7, 7), temporal_kernels=(1, 1, 1, 1), temporal_strides=(1, 1, 1, 1))


@register_model("r3d_18")
def r3d_18(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> ResNet3D:
    """R3D-18 (Tran et al. 2018). ``preset="paper"``: width 64, 33,371,472 parameters at 400 classes
    (= torchvision's ``r3d_18``); ``"teaching"``: width 16. ``overrides``: any :class:`ResNet3DConfig` field."""
    return ResNet3D(ResNet3DConfig.from_preset(preset, **overrides), num_classes)


@register_model("r2d_18")
def r2d_18(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> ResNet3D:
    """Frame-level baseline: ResNet-18 on each frame (all temporal kernels/strides 1), frames averaged.
    ``preset="paper"``: width 64, 11,689,512 parameters at 1000 classes (= the 2D ResNet-18);
    ``"teaching"``: width 16. ``overrides``: any :class:`ResNet3DConfig` field."""
    return ResNet3D(ResNet3DConfig.from_preset(preset, **{**R2D_FIELDS, **overrides}), num_classes)
