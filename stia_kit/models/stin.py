"""STIN: the dual-pathway spatiotemporal interaction network with Cross Dual-Attention Interaction (CDAI).

Source: Tian Wei, "A human action recognition method based on spatiotemporal information interaction".
Reported (paper, not reproduced here): UCF101 97.6 %, HMDB51 78.4 %.

Architecture (paper Table 1, section 2.2), at ``STINConfig.paper()``:

==========  ===========================  ===================================
stage       sparse pathway               dense pathway
==========  ===========================  ===================================
sampling    stride tau=16: 4 x 224^2     stride tau/alpha=2: 32 x 224^2
stem        1x7^2, 64, stride 1,2^2      5x7^2, 8, stride 1,2^2
pool        1x3^2 max, stride 1,2^2      1x3^2 max, stride 1,2^2
res2        4 x 56^2, 256 ch             32 x 56^2, 32 ch
res3        4 x 28^2, 512 ch             32 x 28^2, 64 ch
res4        4 x 14^2, 1024 ch            32 x 14^2, 128 ch
res5        4 x 7^2, 2048 ch             32 x 7^2, 256 ch
head        GAP both, concat, dropout 0.5, FC
==========  ===========================  ===================================

Both pathways are 3D ResNet-50s with bottleneck blocks **3, 4, 6, 3** (Table 1 prints "x 3" for every
stage, which would not be a ResNet-50; we follow the ResNet-50 the text names). They are the very
:class:`~.slowfast.Pathway` modules of the SlowFast baseline (sparse = slow, dense = fast).

Interactions between the pathways (our reading, every choice a config switch):

- After the stem: SlowFast's time-strided-conv lateral (:class:`~.slowfast.FuseFastToSlow`) whenever both
  pathways exist. The paper places CDAI after the residual stages only.
- After each of res2, res3, res4 and res5: a :class:`CrossDualAttentionInteraction` when ``cdai=True``,
  otherwise SlowFast's lateral after res2-res4 (so the "both" row of Table 3 *is* SlowFast-R50,
  matching the paper, which reports the same 95.8 / 77.0 for both). CDAI after res5 feeds the head.
- Both CDAI directions read the stage outputs *before* the interaction (they run in parallel).

Table 3 ablation rows come from one constructor: ``pathways`` in {"dense", "sparse", "both"} and ``cdai``;
:func:`table3_configs` builds the four rows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .attention import ECA3d, SpatioTemporalSelfAttention
from .blocks import ClassifierHead, conv_norm_act
from .registry import register_model
from .slowfast import FuseFastToSlow, Pathway, PathwaySampler, check_sampling

Pathways = Literal["dense", "sparse", "both"]
TemporalReduction = Literal["max_pool", "time_to_channel", "interval_sampling", "interval_conv"]
Fusion = Literal["add", "concat"]
Directions = Literal["both", "dense_to_sparse", "sparse_to_dense"]

_PATHWAYS = ("dense", "sparse", "both")
_REDUCTIONS = ("max_pool", "time_to_channel", "interval_sampling", "interval_conv")
_FUSIONS = ("add", "concat")
_DIRECTIONS = ("both", "dense_to_sparse", "sparse_to_dense")


class DenseTemporalReduction(nn.Module):
    """Bring dense features from ``alpha T`` to ``T`` frames (section 2.2.2.2 (1)), one of four ways:

    - ``"max_pool"`` (default, what the text describes for this direction): temporal max-pool, kernel and
      stride ``[alpha, 1, 1]``; ``C_d`` channels.
    - ``"time_to_channel"``: fold the ``alpha`` frames of each step into channels; ``alpha * C_d`` channels.
    - ``"interval_sampling"``: keep every ``alpha``-th frame; ``C_d`` channels.
    - ``"interval_conv"``: temporal interval convolution. The paper prints the kernel as "5x1x2"; we read it
      as SlowFast's ``5x1x1`` kernel with temporal stride ``alpha`` and ``2 * C_d`` outputs (+ BN + ReLU),
      i.e. exactly SlowFast's time-strided-conv lateral (a "x2" spatial kernel would shift features by half
      a pixel and is not what SlowFast, which the paper follows, uses).

    Shape:
        ``[B, C_d, alpha T, H, W] -> [B, out_channels, T, H, W]``.
    """

    def __init__(self, dense_ch: int, alpha: int, mode: TemporalReduction = "max_pool", *, conv_kernel: int = 5) -> None:
        super().__init__()
        if mode not in _REDUCTIONS:
            raise ValueError(f"temporal reduction must be one of {_REDUCTIONS}, got {mode!r}")
        self.mode, self.alpha = mode, alpha
        self.op: nn.Module = nn.Identity()
        if mode == "max_pool":
            self.op = nn.MaxPool3d((alpha, 1, 1), stride=(alpha, 1, 1))
            self.out_channels = dense_ch
        elif mode == "time_to_channel":
            self.out_channels = alpha * dense_ch
        elif mode == "interval_sampling":
            self.out_channels = dense_ch
        else:
            self.op = conv_norm_act(dense_ch, 2 * dense_ch, (conv_kernel, 1, 1), stride=(alpha, 1, 1))
            self.out_channels = 2 * dense_ch

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "time_to_channel":
            B, C, T, H, W = x.shape
            x = x.reshape(B, C, T // self.alpha, self.alpha, H, W)  # [B, C, T', alpha, H, W]
            return x.transpose(2, 3).reshape(B, C * self.alpha, T // self.alpha, H, W)  # [B, alpha*C, T', H, W]
        if self.mode == "interval_sampling":
            return x[:, :, :: self.alpha]  # [B, C, T', H, W]
        return self.op(x)  # [B, C or 2C, T', H, W]


class DenseToSparse(nn.Module):
    """CDAI dense -> sparse direction (section 2.2.2.2 (1)): temporal reduction, then 3D efficient channel
    attention (eq. 3-6) on the reduced dense features; the result is concatenated to the sparse features.

    Shape:
        ``[B, C_d, alpha T, H, W] -> [B, out_channels, T, H, W]``.
    """

    def __init__(self, dense_ch: int, alpha: int, mode: TemporalReduction, *, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.reduce = DenseTemporalReduction(dense_ch, alpha, mode)
        self.eca = ECA3d(self.reduce.out_channels, gamma=gamma, b=b)
        self.out_channels = self.reduce.out_channels

    def forward(self, dense: Tensor) -> Tensor:
        return self.eca(self.reduce(dense))  # [B, C_out, T, H, W]


class SparseToDense(nn.Module):
    """CDAI sparse -> dense direction (section 2.2.2.2 (2)): ``1x1x1`` conv (+ BN) to the dense channels,
    3D spatiotemporal self-attention on the small sparse map (eq. 1-2, axial W/H/T, applied twice with
    shared parameters), nearest-neighbour temporal upsampling ``x alpha``, fusion with the dense features.

    Fusion (the paper says "fused"; our reading): ``"add"`` (default) sums the upsampled context into the
    dense features, which keeps the dense widths of Table 1; ``"concat"`` concatenates it instead (the
    dense pathway's next stage then gets ``2 C_d`` input channels).

    Shape:
        ``([B, C_s, T, H, W], [B, C_d, alpha T, H, W]) -> [B, C_d (add) or 2 C_d (concat), alpha T, H, W]``.
    """

    def __init__(self, sparse_ch: int, dense_ch: int, alpha: int, *, fusion: Fusion = "add",
                 recurrence: int = 2, qk_reduction: int = 8) -> None:
        super().__init__()
        if fusion not in _FUSIONS:
            raise ValueError(f"fusion must be one of {_FUSIONS}, got {fusion!r}")
        self.alpha, self.fusion = alpha, fusion
        self.project = conv_norm_act(sparse_ch, dense_ch, (1, 1, 1), act=None)
        self.attention = SpatioTemporalSelfAttention(dense_ch, recurrence=recurrence, qk_reduction=qk_reduction)
        self.out_channels = dense_ch * (2 if fusion == "concat" else 1)

    def forward(self, sparse: Tensor, dense: Tensor) -> Tensor:
        ctx = self.attention(self.project(sparse))  # Eq. (1)-(2): [B, C_d, T, H, W]
        ctx = ctx.repeat_interleave(self.alpha, dim=2)  # nearest temporal upsampling: [B, C_d, alpha T, H, W]
        return dense + ctx if self.fusion == "add" else torch.cat([dense, ctx], dim=1)


class CrossDualAttentionInteraction(nn.Module):
    """CDAI: both directions of interaction between the sparse and dense pathways after one stage.

    ``directions`` keeps both (default) or one of them (the other pathway then passes unchanged).

    Shape:
        ``([B, C_s, T, H, W], [B, C_d, alpha T, H, W])
        -> ([B, C_s + sparse_extra, T, H, W], [B, dense_out, alpha T, H, W])``.
    """

    def __init__(self, sparse_ch: int, dense_ch: int, alpha: int, *, temporal_reduction: TemporalReduction = "max_pool",
                 fusion: Fusion = "add", directions: Directions = "both", recurrence: int = 2,
                 qk_reduction: int = 8, eca_gamma: int = 2, eca_b: int = 1) -> None:
        super().__init__()
        self.dense_to_sparse = (DenseToSparse(dense_ch, alpha, temporal_reduction, gamma=eca_gamma, b=eca_b)
                                if directions in ("both", "dense_to_sparse") else None)
        self.sparse_to_dense = (SparseToDense(sparse_ch, dense_ch, alpha, fusion=fusion, recurrence=recurrence,
                                              qk_reduction=qk_reduction)
                                if directions in ("both", "sparse_to_dense") else None)
        self.out_channels = self.dense_to_sparse.out_channels if self.dense_to_sparse else 0  # added to sparse
        self.dense_extra = self.sparse_to_dense.out_channels - dense_ch if self.sparse_to_dense else 0

    def forward(self, sparse: Tensor, dense: Tensor) -> tuple[Tensor, Tensor]:
        s, d = sparse, dense  # both directions read the pre-interaction features
        if self.dense_to_sparse is not None:
            s = torch.cat([sparse, self.dense_to_sparse(dense)], dim=1)  # [B, C_s + C_out, T, H, W]
        if self.sparse_to_dense is not None:
            d = self.sparse_to_dense(sparse, dense)  # [B, C_d or 2C_d, alpha T, H, W]
        return s, d


@dataclass(frozen=True)
class STINConfig:
    """STIN hyper-parameters (defaults: small working model; ``paper()`` gives Table 1's sizes)."""

    width: int = 16  # sparse-pathway stem channels (paper: 64); stage outputs 4*width*2^i
    beta_inv: int = 8  # channel ratio sparse/dense: dense has width/beta_inv stem channels (paper: 8)
    alpha: int = 8  # frame-rate ratio dense/sparse (paper: 8)
    tau: int = 16  # temporal stride of the sparse pathway on the raw clip (paper: 16)
    num_frames: int = 32  # raw clip length T the model is built for (paper: 64); T % tau == 0
    depths: tuple[int, ...] = (3, 4, 6, 3)  # bottleneck blocks per stage (ResNet-50; Table 1 prints x3)
    sparse_temporal_kernels: tuple[int, ...] = (1, 1, 3, 3)  # sparse first-conv temporal kernel, res2..res5
    dense_temporal_kernels: tuple[int, ...] = (3, 3, 3, 3)  # dense first-conv temporal kernel, res2..res5
    pathways: Pathways = "both"  # Table 3: "dense" only, "sparse" only or "both"
    cdai: bool = True  # CDAI after res2..res5 (False: SlowFast laterals; needs pathways="both")
    temporal_reduction: TemporalReduction = "max_pool"  # CDAI dense->sparse reduction alpha*T -> T
    fusion: Fusion = "add"  # CDAI sparse->dense fusion with the dense features: "add" | "concat"
    directions: Directions = "both"  # CDAI directions: "both" | "dense_to_sparse" | "sparse_to_dense"
    attention_recurrence: int = 2  # shared axial-attention passes (paper: 2; 3 reach the whole T x H x W map)
    qk_reduction: int = 8  # Q/K channels = C // qk_reduction in the axial attention
    eca_gamma: int = 2  # ECA kernel formula gamma (eq. 6)
    eca_b: int = 1  # ECA kernel formula b (eq. 6)
    fusion_kernel: int = 5  # temporal kernel of the SlowFast lateral conv (stem; all laterals if cdai=False)
    fusion_channel_ratio: int = 2  # SlowFast lateral conv outputs ratio * C_dense channels
    dropout: float = 0.5  # dropout before the classifier (paper: 0.5)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        check_sampling(self.num_frames, self.tau, self.alpha, who="STINConfig")
        for name, allowed in (("pathways", _PATHWAYS), ("temporal_reduction", _REDUCTIONS),
                              ("fusion", _FUSIONS), ("directions", _DIRECTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"STINConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.cdai and self.pathways != "both":
            raise ValueError(f"STINConfig: cdai=True needs pathways='both' (got {self.pathways!r}); "
                             "CDAI connects two pathways")
        if any(len(t) != 4 for t in (self.depths, self.sparse_temporal_kernels, self.dense_temporal_kernels)):
            raise ValueError("STINConfig: depths and temporal kernels need one entry per stage (4)")
        if self.width < 1 or self.beta_inv < 1 or self.width % self.beta_inv:
            raise ValueError(f"STINConfig: width={self.width} must be a positive multiple of beta_inv={self.beta_inv}")
        if any(k % 2 == 0 for k in (*self.sparse_temporal_kernels, *self.dense_temporal_kernels, self.fusion_kernel)):
            raise ValueError("STINConfig: temporal kernels must be odd ('same' padding)")
        if self.attention_recurrence < 1 or self.qk_reduction < 1:
            raise ValueError("STINConfig: attention_recurrence and qk_reduction must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"STINConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def paper(cls, **overrides: Any) -> "STINConfig":
        """Table 1 sizes: width 64, 64-frame clips (tau 16, alpha 8, beta 1/8), ResNet-50 pathways."""
        return dataclasses.replace(cls(width=64, num_frames=64), **overrides)

    @property
    def dense_width(self) -> int:
        return self.width // self.beta_inv


TABLE3_ROWS = ("dense only", "sparse only", "both", "both + CDAI")  # Table 3, in the paper's order


def table3_configs(base: STINConfig | None = None) -> dict[str, STINConfig]:
    """The four Table-3 ablation rows from one constructor (all other fields from ``base``)."""
    base = base or STINConfig()
    return {
        "dense only": dataclasses.replace(base, pathways="dense", cdai=False),
        "sparse only": dataclasses.replace(base, pathways="sparse", cdai=False),
        "both": dataclasses.replace(base, pathways="both", cdai=False),
        "both + CDAI": dataclasses.replace(base, pathways="both", cdai=True),
    }


class _NoInteraction(nn.Module):
    """Placeholder lateral: ``(sparse, dense) -> (sparse, dense)``."""

    out_channels = 0
    dense_extra = 0

    def forward(self, sparse: Tensor, dense: Tensor) -> tuple[Tensor, Tensor]:
        return sparse, dense


class STIN(nn.Module):
    """Spatiotemporal interaction network: sampler -> sparse and dense ResNet-50 pathways with the
    interactions described in the module docstring -> GAP, concat, dropout, FC.

    ``laterals[0]`` sits after the stems, ``laterals[i + 1]`` after stage ``i`` (res2..res5).

    Shape:
        ``[B, 3, T, H, W] -> [B, num_classes]``; stage shapes as in Table 1 (module docstring).
    """

    def __init__(self, cfg: STINConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        use_sparse, use_dense, both = cfg.pathways != "dense", cfg.pathways != "sparse", cfg.pathways == "both"
        self.sampler = PathwaySampler(cfg.tau, cfg.alpha)
        sparse_ch = [4 * cfg.width * 2**i for i in range(4)]  # Table 1 sparse stage outputs
        dense_ch = [4 * cfg.dense_width * 2**i for i in range(4)]  # Table 1 dense stage outputs
        laterals: list[nn.Module] = []
        laterals.append(FuseFastToSlow(cfg.dense_width, cfg.alpha, kernel=cfg.fusion_kernel,
                                       ratio=cfg.fusion_channel_ratio) if both else _NoInteraction())
        for i in range(4):  # the interaction after stage i (res2..res5)
            if both and cfg.cdai:
                laterals.append(CrossDualAttentionInteraction(
                    sparse_ch[i], dense_ch[i], cfg.alpha, temporal_reduction=cfg.temporal_reduction,
                    fusion=cfg.fusion, directions=cfg.directions, recurrence=cfg.attention_recurrence,
                    qk_reduction=cfg.qk_reduction, eca_gamma=cfg.eca_gamma, eca_b=cfg.eca_b))
            elif both and i < 3:  # SlowFast laterals after res2..res4
                laterals.append(FuseFastToSlow(dense_ch[i], cfg.alpha, kernel=cfg.fusion_kernel,
                                               ratio=cfg.fusion_channel_ratio))
            else:
                laterals.append(_NoInteraction())
        self.laterals = nn.ModuleList(laterals)
        sparse_in = [getattr(m, "out_channels", 0) for m in laterals[:4]]
        dense_in = [getattr(m, "dense_extra", 0) for m in laterals[:4]]
        self.sparse = Pathway(cfg.width, depths=cfg.depths, temporal_kernels=cfg.sparse_temporal_kernels,
                              stem_temporal_kernel=1, lateral_in=sparse_in, in_channels=cfg.in_channels) if use_sparse else None
        self.dense = Pathway(cfg.dense_width, depths=cfg.depths, temporal_kernels=cfg.dense_temporal_kernels,
                             stem_temporal_kernel=5, lateral_in=dense_in, in_channels=cfg.in_channels) if use_dense else None
        head_in = 0
        if use_sparse:
            head_in += sparse_ch[3] + getattr(laterals[4], "out_channels", 0)
        if use_dense:
            head_in += dense_ch[3] + getattr(laterals[4], "dense_extra", 0)
        self.head = ClassifierHead(head_in, num_classes, dropout=cfg.dropout)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Final feature maps of the pathways in use (sparse first)."""
        s, d = self.sampler(x)  # [B,3,T/tau,H,W], [B,3,alpha*T/tau,H,W]
        s = self.sparse.stem(s) if self.sparse is not None else None
        d = self.dense.stem(d) if self.dense is not None else None
        s, d = self.laterals[0](s, d)
        for i in range(4):
            s = self.sparse.stages[i](s) if self.sparse is not None else None
            d = self.dense.stages[i](d) if self.dense is not None else None
            s, d = self.laterals[i + 1](s, d)
        return [f for f in (s, d) if f is not None]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(*self.forward_features(x))


@register_model("stin")
def stin(*, num_classes: int, paper: bool = False, **overrides: Any) -> STIN:
    """STIN with CDAI; ``paper=True`` gives Table 1's sizes. Any :class:`STINConfig` field can be overridden."""
    cfg = STINConfig.paper(**overrides) if paper else STINConfig(**overrides)
    return STIN(cfg, num_classes)
