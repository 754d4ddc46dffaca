"""SlowFast-R50 (Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019), exactly as
PySlowFast / PyTorchVideo build the ``SLOWFAST_4x16_R50`` model, composed from :mod:`.blocks`.

The network takes one raw clip ``[B, 3, T, H, W]`` and samples both pathways itself
(:class:`PathwaySampler`): the *slow* pathway every ``tau`` frames, the *fast* pathway every ``tau / alpha``
frames, so the fast pathway sees ``alpha`` times more frames with ``beta = 1 / beta_inv`` of the channels.
Paper setting 4x16: ``T = 64``, ``tau = 16``, ``alpha = 8``, ``beta = 1/8`` -> slow 4 frames, fast 32.

Both pathways are 3D ResNet-50s (bottleneck blocks 3, 4, 6, 3; expansion 4) with a ``1x7^2`` (slow) /
``5x7^2`` (fast) stem conv + ``1x3^2`` max-pool. Temporal kernels of the first bottleneck conv: slow 1, 1,
3, 3; fast 3 everywhere. A *lateral connection* (:class:`FuseFastToSlow`, the time-strided convolution of
SlowFast section 3.4: ``5x1x1`` conv, stride ``(alpha, 1, 1)``, ``2 * beta * C`` outputs, BN, ReLU) is
concatenated into the slow pathway after the stem and after res2, res3 and res4. The head averages each
pathway globally, concatenates (2048 + 256 channels), applies dropout 0.5 and a linear layer.

With 400 classes this is 34.48 M parameters (the published count); see ``tests/test_slowfast.py``.

Presets: ``"paper"`` (the default, = the dataclass defaults) is the network above; ``"teaching"`` is width
16, ``beta = 1/4``, ``alpha = 4``, ``tau = 8``, one bottleneck per stage and 32-frame clips (slow 4 frames,
fast 16), the same sizes as STIN's teaching preset, whose "both" Table-3 row it equals.

The same :class:`Pathway`, :class:`PathwaySampler` and :class:`FuseFastToSlow` build STIN's sparse and dense
pathways (:mod:`.stin`): the *slow* pathway is STIN's *sparse* pathway and the *fast* one its *dense* one.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..registry import Preset
from .blocks import Bottleneck, ClassifierHead, Stem, conv_norm_act, res_stage
from .registry import InputSpec, PresetConfig, register_model

#: The teaching sizes shared by SlowFast-R50 and STIN (notebook 01's teaching model).
DUAL_PATHWAY_TEACHING: Mapping[str, Any] = MappingProxyType({
    "width": 16, "beta_inv": 4, "alpha": 4, "tau": 8, "depths": (1, 1, 1, 1), "num_frames": 32,
})


def check_sampling(num_frames: int, tau: int, alpha: int, who: str = "config") -> None:
    """Raise a clear ValueError unless ``T`` frames can be sampled at strides ``tau`` and ``tau / alpha``.

    Needs ``tau % alpha == 0`` (integer fast stride) and ``T % tau == 0`` (whole slow frames; then the fast
    pathway has exactly ``alpha * T / tau`` frames, which the lateral connections rely on).
    """
    if tau < 1 or alpha < 1 or tau % alpha:
        raise ValueError(f"{who}: tau={tau} must be a positive multiple of alpha={alpha} (fast stride tau/alpha)")
    if num_frames < tau or num_frames % tau:
        raise ValueError(
            f"{who}: the clip length T={num_frames} must be a positive multiple of tau={tau} "
            f"(slow pathway T/tau frames, fast pathway alpha*T/tau = {alpha}*T/{tau} frames)"
        )


class PathwaySampler(nn.Module):
    """The "sampling" rows of the SlowFast / STIN Table 1: one raw clip -> (slow/sparse, fast/dense) inputs.

    Shape:
        ``[B, C, T, H, W] -> ([B, C, T / tau, H, W], [B, C, alpha * T / tau, H, W])``.
    """

    def __init__(self, tau: int, alpha: int) -> None:
        super().__init__()
        check_sampling(tau, tau, alpha, who="PathwaySampler")
        self.tau, self.alpha = tau, alpha

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_sampling(x.shape[2], self.tau, self.alpha, who=f"input clip {tuple(x.shape)}")
        return x[:, :, :: self.tau], x[:, :, :: self.tau // self.alpha]  # [B,C,T/tau,H,W], [B,C,aT/tau,H,W]


class Pathway(nn.Module):
    """One 3D ResNet-50 pathway: stem (conv + ``1x3^2`` max-pool) and four bottleneck stages built in a loop.

    ``lateral_in[i]`` extra input channels arrive at stage ``i`` from the lateral connection before it.

    Shape:
        ``[B, 3, T, H, W] -> [B, 4 * width * 8, T, H / 32, W / 32]``; stage ``i`` output
        ``[B, 4 * width * 2^i, T, H / 2^(i+2), W / 2^(i+2)]`` (res2 keeps the stem's ``H / 4``).
    """

    def __init__(
        self,
        width: int,
        *,
        depths: Sequence[int],
        temporal_kernels: Sequence[int],
        stem_temporal_kernel: int,
        lateral_in: Sequence[int] = (0, 0, 0, 0),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.stem = Stem(in_channels, width, kernel=(stem_temporal_kernel, 7, 7), stride=(1, 2, 2), pool=True)
        stages, in_ch, self.stage_channels = [], width, []
        for i, (depth, kt) in enumerate(zip(depths, temporal_kernels)):
            in_ch += lateral_in[i]
            spatial = 1 if i == 0 else 2  # res2 keeps the resolution, res3-res5 halve it
            stages.append(res_stage(Bottleneck, in_ch, width * 2**i, depth, stride=(1, spatial, spatial), temporal_kernel=kt))
            in_ch = width * 2**i * Bottleneck.expansion
            self.stage_channels.append(in_ch)
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_ch


class FuseFastToSlow(nn.Module):
    """SlowFast lateral connection, time-strided convolution: ``5x1x1`` conv stride ``(alpha, 1, 1)`` to
    ``ratio * C_fast`` channels + BN + ReLU, concatenated to the slow features.

    Shape:
        ``([B, C_s, T, H, W], [B, C_f, alpha T, H, W]) -> ([B, C_s + ratio C_f, T, H, W], fast unchanged)``.
    """

    def __init__(self, fast_ch: int, alpha: int, *, kernel: int = 5, ratio: int = 2) -> None:
        super().__init__()
        self.out_channels = ratio * fast_ch
        self.conv = conv_norm_act(fast_ch, self.out_channels, (kernel, 1, 1), stride=(alpha, 1, 1))

    def forward(self, slow: Tensor, fast: Tensor) -> tuple[Tensor, Tensor]:
        return torch.cat([slow, self.conv(fast)], dim=1), fast  # [B, C_s + ratio*C_f, T, H, W]


@dataclass(frozen=True)
class SlowFastConfig(PresetConfig):
    """SlowFast-R50 hyper-parameters (defaults = ``paper()``: SLOWFAST_4x16_R50; ``teaching()``: the sizes
    of :data:`DUAL_PATHWAY_TEACHING`)."""

    TEACHING: ClassVar[Mapping[str, Any]] = DUAL_PATHWAY_TEACHING

    width: int = 64  # slow-pathway stem channels (paper: 64; teaching: 16); stage widths width*2^i, outputs x4
    beta_inv: int = 8  # channel ratio slow/fast: the fast pathway has width/beta_inv channels (paper: 8; teaching: 4)
    alpha: int = 8  # frame-rate ratio fast/slow (paper: 8; teaching: 4)
    tau: int = 16  # temporal stride of the slow pathway on the raw clip (paper: 16; teaching: 8)
    num_frames: int = 64  # raw clip length T the model is built for (paper: 64; teaching: 32); T % tau == 0
    depths: tuple[int, ...] = (3, 4, 6, 3)  # bottleneck blocks per stage (paper: ResNet-50's; teaching: 1,1,1,1)
    slow_temporal_kernels: tuple[int, ...] = (1, 1, 3, 3)  # slow first-conv temporal kernel, res2..res5
    fast_temporal_kernels: tuple[int, ...] = (3, 3, 3, 3)  # fast first-conv temporal kernel, res2..res5
    fusion_kernel: int = 5  # temporal kernel of the fast->slow lateral conv (PySlowFast FUSION_KERNEL_SZ)
    fusion_channel_ratio: int = 2  # lateral conv outputs ratio * C_fast channels
    dropout: float = 0.5  # dropout before the classifier
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        check_sampling(self.num_frames, self.tau, self.alpha, who="SlowFastConfig")
        if len(self.depths) != 4 or len(self.slow_temporal_kernels) != 4 or len(self.fast_temporal_kernels) != 4:
            raise ValueError("SlowFastConfig: depths and temporal kernels need one entry per stage (4)")
        if self.width < 1 or self.beta_inv < 1 or self.width % self.beta_inv:
            raise ValueError(f"SlowFastConfig: width={self.width} must be a positive multiple of beta_inv={self.beta_inv}")
        if any(k % 2 == 0 for k in (*self.slow_temporal_kernels, *self.fast_temporal_kernels, self.fusion_kernel)):
            raise ValueError("SlowFastConfig: temporal kernels must be odd ('same' padding)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SlowFastConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def fast_width(self) -> int:
        return self.width // self.beta_inv


class SlowFast(nn.Module):
    """SlowFast-R50: sampler -> two ResNet-50 pathways with fast->slow laterals -> head.

    Shape:
        ``[B, 3, T, H, W] -> [B, num_classes]``; slow stage ``i``: ``[B, 256 * 2^i * width/64, T/tau, ...]``,
        fast stage ``i``: ``[B, 256 * 2^i * width/64 / beta_inv, alpha T / tau, ...]`` (spatial as :class:`Pathway`).
    """

    def __init__(self, cfg: SlowFastConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.sampler = PathwaySampler(cfg.tau, cfg.alpha)
        self.fast = Pathway(cfg.fast_width, depths=cfg.depths, temporal_kernels=cfg.fast_temporal_kernels,
                            stem_temporal_kernel=5, in_channels=cfg.in_channels)
        fast_out = [cfg.fast_width, *self.fast.stage_channels[:3]]  # fast channels at stem, res2, res3, res4
        self.fuse = nn.ModuleList(
            FuseFastToSlow(c, cfg.alpha, kernel=cfg.fusion_kernel, ratio=cfg.fusion_channel_ratio) for c in fast_out
        )
        self.slow = Pathway(cfg.width, depths=cfg.depths, temporal_kernels=cfg.slow_temporal_kernels,
                            stem_temporal_kernel=1, lateral_in=[f.out_channels for f in self.fuse],
                            in_channels=cfg.in_channels)
        self.head = ClassifierHead(self.slow.out_channels + self.fast.out_channels, num_classes, dropout=cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """``T`` a positive multiple of ``tau`` (built for ``num_frames``), 224^2 published; ``min_size`` 32
        is the total spatial stride."""
        return pathway_input_spec(self.cfg.in_channels, self.cfg.num_frames, self.cfg.tau)

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Final (slow, fast) feature maps."""
        s, f = self.sampler(x)  # [B,3,T/tau,H,W], [B,3,aT/tau,H,W]
        s, f = self.fuse[0](self.slow.stem(s), self.fast.stem(f))  # lateral after the stem
        for i in range(len(self.slow.stages)):
            s, f = self.slow.stages[i](s), self.fast.stages[i](f)
            if i + 1 < len(self.fuse):  # laterals after res2, res3, res4
                s, f = self.fuse[i + 1](s, f)
        return s, f

    def forward(self, x: Tensor) -> Tensor:
        return self.head(*self.forward_features(x))


def pathway_input_spec(in_channels: int, num_frames: int, tau: int) -> InputSpec:
    """Input spec of a two-pathway network sampling at ``tau`` and ``tau / alpha`` (SlowFast, STIN)."""
    return InputSpec(channels=in_channels, num_frames=num_frames, size=224, min_frames=tau, frames_multiple=tau,
                     min_size=32)


@register_model("slowfast_r50")
def slowfast_r50(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> SlowFast:
    """SlowFast-R50 4x16. ``preset="paper"``: the published sizes (34,480,216 parameters at 400 classes);
    ``"teaching"``: :data:`DUAL_PATHWAY_TEACHING`. ``overrides``: any :class:`SlowFastConfig` field."""
    return SlowFast(SlowFastConfig.from_preset(preset, **overrides), num_classes)
