"""3D ResNets (R3D) and the frame-level R2D baseline, composed from :mod:`stia_kit.models.blocks`.

R3D-18 follows Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition"
(CVPR 2018), exactly as torchvision's ``r3d_18`` builds it: a ``3x7x7`` stem with stride ``(1,2,2)`` and no
max-pool, four stages of two ``3x3x3`` basic blocks with 64/128/256/512 channels, stages 2-4 downsampling
time and space by 2, global average pooling and a linear layer (33,371,472 parameters for 400 classes).

R2D-18 is the same network with every temporal kernel and stride set to 1: a 2D ResNet-18 applied to each
frame, with the frames averaged at the end (the paper's "R2D on frames", fR2D). Time is only pooled, never
modelled, so it cannot tell a clip from its reverse: SynthActions' sit/stand pair defeats it by design.

R3D-50 (``r3d_50``) is the 3D ResNet-50 of Hara et al., "Can Spatiotemporal 3D CNNs Retrace the History of
2D CNNs and ImageNet?" (CVPR 2018), the "3D ResNet-50" of ST-MANet (paper 002) and MSF-Net (paper 003, Table 5:
"10.1 GFLOPs, 47.02 M"): a ``7x7x7`` stem with stride ``(1,2,2)``, a ``3x3x3`` max-pool with stride 2 (time
too), bottlenecks ``1x1x1 / 3x3x3 (carrying the stride) / 1x1x1`` (3, 4, 6, 3 blocks), projection shortcuts,
stages 3-5 halving T, H and W; 47,018,576 parameters at 400 classes, 46.41 M at 101, 10.07 GMACs at 16x112^2
(the papers' "GFLOPs" are multiply-accumulates). Kaiming (fan-out) initialisation as in Hara's code; ST-MANet
4.1 (paper) says "Kaiming initialization". Spec ``3d_attention.md``, "Shared: the 3D ResNet-50".

Per-stage modules (ST-MANet's TDA / SDA beside stages 2-5) run through :meth:`ResNet3D.forward_stages`: a
callback may replace each stage's output before the next stage consumes it, and
:meth:`ResNet3D.stage_head` builds a classifier on one stage or on the concatenation of several
(:class:`~stia_kit.models.blocks.MultiStageHead`), so no ResNet code is copied. Stages are numbered as the
papers number them: the stem (conv + pool) is stage 1, the residual stages are 2, 3, 4, 5.

Sizes: ``width`` scales all channels. ``preset="paper"`` (the default of every builder) is width 64, the
published networks; ``preset="teaching"`` is width 16 (1/16 of the parameters), trained on small inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

from torch import Tensor, nn

from ..registry import Preset
from .blocks import (BOTTLENECK_FORMS, BasicBlock, Bottleneck, BottleneckForm, ClassifierHead, MultiStageHead, Stem,
                     init_resnet_weights, res_stage)
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
    stem_pool: bool = False  # max-pool after the stem conv (ResNet-50 style)
    stem_pool_kernel: tuple[int, int, int] = (1, 3, 3)  # stem max-pool kernel (Hara: 3,3,3), padding kernel // 2
    stem_pool_stride: tuple[int, int, int] = (1, 2, 2)  # stem max-pool stride (Hara: 2,2,2)
    block_form: BottleneckForm = "slowfast"  # bottleneck form: "slowfast" (kt x1x1 first) or "hara" (3x3x3 middle)
    temporal_kernels: tuple[int, ...] = (3, 3, 3, 3)  # temporal kernel of each stage's convs
    temporal_strides: tuple[int, ...] = (1, 2, 2, 2)  # temporal stride of each stage
    spatial_strides: tuple[int, ...] = (1, 2, 2, 2)  # spatial stride of each stage
    dropout: float = 0.0  # dropout before the classifier
    in_channels: int = 3  # input channels (RGB)
    init: Literal["default", "kaiming"] = "default"  # "kaiming": conv fan-out normal, BN 1/0 (Hara; ST-MANet 4.1)
    zero_init_last_bn: bool | None = None  # zero each block's last BN; None = the block's default (SlowFast: on)

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
        if self.block_form not in BOTTLENECK_FORMS:
            raise ValueError(f"ResNet3DConfig.block_form must be one of {list(BOTTLENECK_FORMS)}, got {self.block_form!r}")
        if self.block_form != "slowfast" and not self.bottleneck:
            raise ValueError(f"ResNet3DConfig.block_form={self.block_form!r} needs bottleneck=True (basic blocks have one form)")
        for name in ("stem_pool_kernel", "stem_pool_stride"):
            value = getattr(self, name)
            if len(value) != 3 or any(v < 1 for v in value):
                raise ValueError(f"ResNet3DConfig.{name} must be 3 positive ints (t, h, w), got {value}")
        if any(k % 2 == 0 for k in self.stem_pool_kernel):
            raise ValueError(f"ResNet3DConfig.stem_pool_kernel must be odd, got {self.stem_pool_kernel}")
        if self.init not in ("default", "kaiming"):
            raise ValueError(f"ResNet3DConfig.init must be 'default' or 'kaiming', got {self.init!r}")
        if self.zero_init_last_bn not in (None, True, False):
            raise ValueError(f"ResNet3DConfig.zero_init_last_bn must be None, True or False, got {self.zero_init_last_bn!r}")


#: ``after_stage(number, z, previous) -> z'``: called after residual stage ``number`` (2, 3, ...) with its
#: output ``z`` and the outputs of stages 1 .. number-1 (``previous[0]`` = stem + pool, ``previous[-1]`` =
#: this stage's input, each as replaced); the returned tensor is the stage's output (fed to the next stage).
AfterStage = Callable[[int, Tensor, Sequence[Tensor]], Tensor]


class ResNet3D(nn.Module):
    """Stem -> stages -> global average pool -> linear.

    Stages are numbered as in the papers (ST-MANet Fig. 1): stage 1 = stem (+ pool), stages 2 .. 1 + n = the
    residual stages (``stage_numbers``, ``stage_channels``). :meth:`forward_stages` runs them with an
    optional per-stage callback; :meth:`stage_head` makes a classifier on chosen stages.

    Shape:
        ``[B, 3, T, H, W] -> [B, num_classes]``; residual stage ``i`` (0-based) outputs
        ``[B, width * 2^i * expansion, T / (pt * prod(st)), H / (2 * ps * prod(ss)), W / (...)]`` (``pt, ps``:
        the stem pool's strides, 1 without pool; divisions round up). Hara R3D-50 at ``32 x 112^2``: stem + pool
        ``64 x 16 x 28^2``, then ``256 x 16 x 28^2``, ``512 x 8 x 14^2``, ``1024 x 4 x 7^2``, ``2048 x 2 x 4^2``.
    """

    def __init__(self, cfg: ResNet3DConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        block = Bottleneck if cfg.bottleneck else BasicBlock
        self.stem = Stem(cfg.in_channels, cfg.width, kernel=cfg.stem_kernel, pool=cfg.stem_pool,
                         pool_kernel=cfg.stem_pool_kernel, pool_stride=cfg.stem_pool_stride)
        block_kwargs: dict[str, Any] = {"form": cfg.block_form} if cfg.bottleneck else {}
        if cfg.zero_init_last_bn is not None:
            block_kwargs["zero_init_last_bn"] = cfg.zero_init_last_bn
        stages, in_ch = [], cfg.width
        self.stem_channels: int = cfg.width  # output channels of stage 1 (stem + pool)
        self.stage_channels: list[int] = []  # output channels of each residual stage (stages 2, 3, ...)
        for i, depth in enumerate(cfg.depths):
            width = cfg.width * 2**i
            stride = (cfg.temporal_strides[i], cfg.spatial_strides[i], cfg.spatial_strides[i])
            stages.append(res_stage(block, in_ch, width, depth, stride=stride, temporal_kernel=cfg.temporal_kernels[i],
                                    **block_kwargs))
            in_ch = width * block.expansion
            self.stage_channels.append(in_ch)
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(in_ch, num_classes, dropout=cfg.dropout)
        if cfg.init == "kaiming":
            # zero_init_last_bn=None keeps each block's own choice, so re-apply it after BN weights are reset
            init_resnet_weights(self, zero_init_last_bn=bool(cfg.zero_init_last_bn if cfg.zero_init_last_bn is not None
                                                              else cfg.bottleneck and cfg.block_form == "slowfast"))

    @property
    def stage_numbers(self) -> tuple[int, ...]:
        """Paper numbers of the residual stages: ``(2, 3, 4, 5)`` for four stages (the stem is stage 1)."""
        return tuple(range(2, 2 + len(self.stages)))

    def forward_stages(self, x: Tensor, *, after_stage: AfterStage | None = None) -> list[Tensor]:
        """Outputs of the residual stages (stages 2, 3, ...), each possibly replaced by ``after_stage``.

        Stem + pool (stage 1), then for each residual stage ``n``: ``z = stage(input)``; with a callback
        ``z = after_stage(n, z, previous)`` where ``previous`` holds the outputs of stages ``1 .. n-1``
        (``previous[0]`` = stem, ``previous[-1]`` = this stage's input, all as replaced); ``z`` then feeds
        stage ``n + 1`` and is returned. ST-MANet (eq. 1-5) returns ``Zbar^n = Z^n (+) Zbar_t^n (+) Zbar_s^n``
        from its callback; modules of the callback belong to the wrapping model (its own ``nn.Module``s), so
        they are trained and saved with it. The callback is not called for the stem.

        Shape:
            ``[B, C, T, H, W]`` -> list of ``[B, stage_channels[i], T_i, H_i, W_i]`` (one per residual stage).
        """
        z = self.stem(x)
        previous: list[Tensor] = [z]
        for number, stage in zip(self.stage_numbers, self.stages):
            z = stage(z)
            if after_stage is not None:
                z = after_stage(number, z, tuple(previous))
                if not isinstance(z, Tensor):
                    raise TypeError(f"after_stage must return a Tensor for stage {number}, got {type(z).__name__}")
            previous.append(z)
        return previous[1:]

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Outputs of every residual stage (for attention maps and attribution): ``forward_stages(x)``."""
        return self.forward_stages(x)

    def stage_head(self, stages: Sequence[int], num_classes: int, *, dropout: float = 0.0) -> MultiStageHead:
        """A new classifier on the residual stages numbered ``stages`` (paper numbers, e.g. ``(5,)`` or
        ``(2, 3, 4, 5)``: GAP each, concatenate, dropout, linear; 3840 inputs for stages 2-5 of R3D-50).
        Feed it ``self.select_stages(outputs, stages)``."""
        return MultiStageHead([self.stage_channels[i] for i in self._stage_indices(stages)], num_classes, dropout=dropout)

    def select_stages(self, outputs: Sequence[Tensor], stages: Sequence[int]) -> list[Tensor]:
        """The entries of ``forward_stages`` outputs for the paper stage numbers ``stages``."""
        if len(outputs) != len(self.stages):
            raise ValueError(f"expected the {len(self.stages)} residual stage outputs of forward_stages, got {len(outputs)}")
        return [outputs[i] for i in self._stage_indices(stages)]

    def _stage_indices(self, stages: Sequence[int]) -> list[int]:
        if not stages or any(s not in self.stage_numbers for s in stages):
            raise ValueError(f"stages must be a non-empty selection of {list(self.stage_numbers)} "
                             f"(the stem is stage 1 and has no head), got {list(stages)}")
        return [s - 2 for s in stages]

    @property
    def input_spec(self) -> InputSpec:
        """Any ``T`` and ``H, W`` work; published geometry 16 x 112^2. ``min_size`` is the total spatial
        stride, stem pool included (smaller frames reach the last stage as 1 x 1)."""
        stride = 2  # the stem's
        if self.cfg.stem_pool:
            stride *= self.cfg.stem_pool_stride[1]
        for s in self.cfg.spatial_strides:
            stride *= s
        return InputSpec(channels=self.cfg.in_channels, num_frames=16, size=112, min_size=stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x)[-1])


#: R2D-18: R3D-18 with every temporal kernel and stride 1 (a 2D ResNet-18 on each frame).
R2D_FIELDS: dict[str, Any] = dict(stem_kernel=(1, 7, 7), temporal_kernels=(1, 1, 1, 1), temporal_strides=(1, 1, 1, 1))


#: Hara et al.'s 3D ResNet-50 (spec "Shared"): 7x7x7 stem stride (1,2,2), 3x3x3 max-pool stride 2, bottlenecks
#: 1x1x1 / 3x3x3 (stride) / 1x1x1, projection shortcuts; Kaiming fan-out init, BN weights 1 (Hara's code).
R3D50_FIELDS: dict[str, Any] = dict(
    depths=(3, 4, 6, 3), bottleneck=True, block_form="hara", stem_kernel=(7, 7, 7), stem_pool=True,
    stem_pool_kernel=(3, 3, 3), stem_pool_stride=(2, 2, 2), temporal_kernels=(3, 3, 3, 3),
    temporal_strides=(1, 2, 2, 2), spatial_strides=(1, 2, 2, 2), init="kaiming", zero_init_last_bn=False,
)


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


@register_model("r3d_50")
def r3d_50(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> ResNet3D:
    """Hara et al.'s 3D ResNet-50 (the "3D ResNet-50" of ST-MANet and MSF-Net). ``preset="paper"``: width 64,
    47,018,576 parameters at 400 classes (MSF-Net Table 5: 47.02 M), 46.41 M at 101, 10.07 GMACs at 16x112^2
    (Table 5 "10.1 GFLOPs" are multiply-accumulates); ``"teaching"``: width 16. Kaiming init
    (``init="default"`` for PyTorch's), no zero-initialised last BN (``zero_init_last_bn=True`` to switch).
    ``overrides``: any :class:`ResNet3DConfig` field."""
    return ResNet3D(ResNet3DConfig.from_preset(preset, **{**R3D50_FIELDS, **overrides}), num_classes)
