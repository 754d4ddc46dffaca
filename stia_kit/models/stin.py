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

Both pathways are 3D ResNet-50s: the very :class:`~.slowfast.Pathway` modules of the SlowFast baseline
(sparse = slow, dense = fast). Interactions: a :class:`CrossDualAttentionInteraction` (CDAI) after each of
res2, res3, res4 and res5 ("Residual Blocks 1-4"; "After four rounds of spatiotemporal interaction, the
spatial and temporal features are fused", section 2.2); the CDAI after res5 feeds the head. Both CDAI
directions read the stage outputs *before* the interaction (they run in parallel).

Presets: ``"paper"`` (the default, = the dataclass defaults) is Table 1 with the readings below;
``"teaching"`` is width 16, ``beta = 1/4``, ``alpha = 4``, ``tau = 8``, one bottleneck per stage, 32-frame
clips (the sizes of SlowFast-R50's teaching preset); every reading below is the paper preset's.

Readings (where the text is ambiguous or contradicts itself; each is a config field, and where the paper
prints something else that variant is one value away):

- **Depths.** Table 1 prints "x 3" for every residual block, which would not be a ResNet-50; we use the
  ResNet-50 the text names ("The 3DResNet architecture is employed as the backbone", Table 1 headers
  "3DResNet50"): ``depths=(3, 4, 6, 3)``. Printed variant: ``depths=(3, 3, 3, 3)``.
- **Dense temporal kernels.** Table 1 prints the dense pathway's first bottleneck conv as ``3 x 1^2`` in
  res2 and res3 and ``1 x 1^2`` in res4 and res5 (3, 3, 1, 1); its sparse column (1, 1, 3, 3) is
  SlowFast's slow pathway. We use SlowFast's fast pathway (3, 3, 3, 3), ``dense_temporal_kernels=
  "slowfast"``: "Both pathways use the same backbone architecture" as SlowFast (section 2.2.1), and the
  paper's "both" row (Table 3: 95.8 / 77.0) is SlowFast's result (Table 4: 95.8 / 77.0). Printed
  variant: ``dense_temporal_kernels="table1"``.
- **Q/K width.** "three 1x1 convolutions to generate the query (Q), key (K), and value (V) matrices, each
  of the same shape I[{T, H}, W, C]" (section 2.2.2.1 (1)): ``qk_reduction=1``, in both presets. CCNet's
  ``C/8`` is ``qk_reduction=8`` (measured on the teaching model, batch 8 x 32 x 48^2 on one CPU thread: the
  same training-step time within noise, 0.43-0.49 s vs 0.43-0.47 s; 12 % fewer parameters).
- **Which lateral is "adopted".** Section 2.2.2.2 (1) (dense -> sparse) reduces the dense features with a
  temporal max-pool (kernel and stride ``[alpha, 1, 1]``), applies channel attention and concatenates:
  "The resulting fused feature map has the shape [beta C + C, T, H, W]". Section 2.2.2.2 (2) (sparse ->
  dense) then lists three "lateral connection strategies" that all reduce the *dense* ``[beta C, alpha T]``
  map to ``T`` frames (time-to-channel, temporal interval sampling, temporal interval convolution:
  SlowFast's section 3.4 options) and says "the temporal interval convolution approach is adopted for
  lateral connection, resulting in a fused feature map with shape [beta C + beta C, T, H, W]" -- a shape
  that matches neither concatenation onto the sparse ``C`` channels. Reading: the dense -> sparse
  direction is what (1) describes, ``temporal_reduction="max_pool"`` (its printed shape matches); the
  three strategies are the other values of ``temporal_reduction``, ``"interval_conv"`` being the variant
  the second passage calls adopted.
- **Interval sampling.** "Temporal Interval Sampling: Randomly samples one frame out of every alpha frames"
  (section 2.2.2.2 (2)): with ``temporal_reduction="interval_sampling"``, ``interval_sampling="random"``
  (default) draws one frame per ``alpha``-frame window and clip in training and takes each window's first
  frame at evaluation (deterministic test scores); ``"first"`` always takes the first (SlowFast's
  time-strided sampling).
- **Interval convolution kernel.** Printed "5 x 1 x 2"; read as SlowFast's ``5 x 1 x 1`` (see
  :class:`DenseTemporalReduction`).
- **Stem lateral.** The paper has no interaction after the stems (Table 1 goes from the pooling row to
  Residual Block 1; four interactions, after Residual Blocks 1-4). With CDAI there is none by default;
  ``cdai_stem_lateral=True`` adds SlowFast's time-strided-conv lateral (:class:`~.slowfast.FuseFastToSlow`)
  there. Without CDAI the "both" row is SlowFast-R50, stem lateral included, as the paper's "both" row is
  SlowFast (it reports the same 95.8 / 77.0 for both).
- **Sparse -> dense fusion.** "the spatial features of the sparse path are fused with the temporal
  features of the original dense path": ``fusion="add"`` keeps Table 1's dense widths; ``"concat"``
  concatenates instead.

Table 3 ablation rows come from one constructor: ``pathways`` in {"dense", "sparse", "both"} and ``cdai``;
:func:`table3_configs` builds the four rows: without CDAI the two pathways are joined by SlowFast's
laterals (after the stem and res2-res4), so the "both" row *is* SlowFast-R50 at the same sizes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import torch
from torch import Tensor, nn

from ..registry import Preset
from .attention import ECA3d, SpatioTemporalSelfAttention
from .blocks import ClassifierHead, conv_norm_act
from .registry import InputSpec, PresetConfig, register_model
from .slowfast import DUAL_PATHWAY_TEACHING, FuseFastToSlow, Pathway, PathwaySampler, check_sampling, pathway_input_spec

Pathways = Literal["dense", "sparse", "both"]
TemporalReduction = Literal["max_pool", "time_to_channel", "interval_sampling", "interval_conv"]
Fusion = Literal["add", "concat"]
Directions = Literal["both", "dense_to_sparse", "sparse_to_dense"]
IntervalSampling = Literal["random", "first"]
DenseKernels = Literal["slowfast", "table1"]

_PATHWAYS = ("dense", "sparse", "both")
_REDUCTIONS = ("max_pool", "time_to_channel", "interval_sampling", "interval_conv")
_FUSIONS = ("add", "concat")
_DIRECTIONS = ("both", "dense_to_sparse", "sparse_to_dense")
_INTERVAL_SAMPLING = ("random", "first")

#: Named dense-pathway temporal kernels (first bottleneck conv of res2..res5): SlowFast's fast pathway
#: (our reading) and what Table 1 prints (see the module docstring).
DENSE_TEMPORAL_KERNELS: dict[str, tuple[int, ...]] = {"slowfast": (3, 3, 3, 3), "table1": (3, 3, 1, 1)}


class DenseTemporalReduction(nn.Module):
    """Bring dense features from ``alpha T`` to ``T`` frames, one of four ways: the max-pool of section
    2.2.2.2 (1) or one of the three "lateral connection strategies" listed in section 2.2.2.2 (2):

    - ``"max_pool"`` (default, what the text describes for this direction): temporal max-pool, kernel and
      stride ``[alpha, 1, 1]``; ``C_d`` channels.
    - ``"time_to_channel"``: fold the ``alpha`` frames of each step into channels; ``alpha * C_d`` channels.
    - ``"interval_sampling"``: one frame of every ``alpha``; ``C_d`` channels. ``sampling="random"`` (the
      paper: "Randomly samples one frame out of every alpha frames") draws the frame per window and clip
      in training mode and takes each window's first frame in eval mode; ``"first"`` always the first.
    - ``"interval_conv"``: temporal interval convolution. The paper prints the kernel as "5x1x2"; we read it
      as SlowFast's ``5x1x1`` kernel with temporal stride ``alpha`` and ``2 * C_d`` outputs (+ BN + ReLU),
      i.e. exactly SlowFast's time-strided-conv lateral (a "x2" spatial kernel would shift features by half
      a pixel and is not what SlowFast, which the paper follows, uses).

    Shape:
        ``[B, C_d, alpha T, H, W] -> [B, out_channels, T, H, W]``.
    """

    def __init__(self, dense_ch: int, alpha: int, mode: TemporalReduction = "max_pool", *, conv_kernel: int = 5,
                 sampling: IntervalSampling = "random") -> None:
        super().__init__()
        if mode not in _REDUCTIONS:
            raise ValueError(f"temporal reduction must be one of {_REDUCTIONS}, got {mode!r}")
        if sampling not in _INTERVAL_SAMPLING:
            raise ValueError(f"interval sampling must be one of {_INTERVAL_SAMPLING}, got {sampling!r}")
        self.mode, self.alpha, self.sampling = mode, alpha, sampling
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
            if self.sampling == "first" or not self.training:
                return x[:, :, :: self.alpha]  # [B, C, T', H, W]
            B, C, T, H, W = x.shape
            t = T // self.alpha
            idx = torch.arange(t, device=x.device) * self.alpha + torch.randint(self.alpha, (B, t), device=x.device)
            return x.gather(2, idx[:, None, :, None, None].expand(B, C, t, H, W))  # [B, C, T', H, W]
        return self.op(x)  # [B, C or 2C, T', H, W]


class DenseToSparse(nn.Module):
    """CDAI dense -> sparse direction (section 2.2.2.2 (1)): temporal reduction, then 3D efficient channel
    attention (Eq. (3)-(6)) on the reduced dense features; the result is concatenated to the sparse features.

    Shape:
        ``[B, C_d, alpha T, H, W] -> [B, out_channels, T, H, W]``.
    """

    def __init__(self, dense_ch: int, alpha: int, mode: TemporalReduction, *, gamma: int = 2, b: int = 1,
                 sampling: IntervalSampling = "random") -> None:
        super().__init__()
        self.reduce = DenseTemporalReduction(dense_ch, alpha, mode, sampling=sampling)
        self.eca = ECA3d(self.reduce.out_channels, gamma=gamma, b=b)
        self.out_channels = self.reduce.out_channels

    def forward(self, dense: Tensor) -> Tensor:
        return self.eca(self.reduce(dense))  # [B, C_out, T, H, W]


class SparseToDense(nn.Module):
    """CDAI sparse -> dense direction (section 2.2.2.2 (2)): ``1x1x1`` conv (+ BN) to the dense channels,
    3D spatiotemporal self-attention on the small sparse map (Eq. (1)-(2), axial W/H/T, applied twice with
    shared parameters), nearest-neighbour temporal upsampling ``x alpha``, fusion with the dense features.

    Fusion (the paper says "fused"; our reading): ``"add"`` (default) sums the upsampled context into the
    dense features, which keeps the dense widths of Table 1; ``"concat"`` concatenates it instead (the
    dense pathway's next stage then gets ``2 C_d`` input channels).

    Shape:
        ``([B, C_s, T, H, W], [B, C_d, alpha T, H, W]) -> [B, C_d (add) or 2 C_d (concat), alpha T, H, W]``.
    """

    def __init__(self, sparse_ch: int, dense_ch: int, alpha: int, *, fusion: Fusion = "add",
                 recurrence: int = 2, qk_reduction: int = 1) -> None:
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
                 qk_reduction: int = 1, eca_gamma: int = 2, eca_b: int = 1,
                 interval_sampling: IntervalSampling = "random") -> None:
        super().__init__()
        self.dense_to_sparse = (DenseToSparse(dense_ch, alpha, temporal_reduction, gamma=eca_gamma, b=eca_b,
                                              sampling=interval_sampling)
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
class STINConfig(PresetConfig):
    """STIN hyper-parameters (defaults = ``paper()``: Table 1 with the readings of the module docstring;
    ``teaching()``: the sizes of :data:`~.slowfast.DUAL_PATHWAY_TEACHING`, the same readings)."""

    TEACHING: ClassVar[Mapping[str, Any]] = DUAL_PATHWAY_TEACHING

    width: int = 64  # sparse-pathway stem channels (paper: 64; teaching: 16); stage outputs 4*width*2^i
    beta_inv: int = 8  # channel ratio sparse/dense: dense has width/beta_inv stem channels (paper: 8; teaching: 4)
    alpha: int = 8  # frame-rate ratio dense/sparse (paper: 8; teaching: 4)
    tau: int = 16  # temporal stride of the sparse pathway on the raw clip (paper: 16; teaching: 8)
    num_frames: int = 64  # raw clip length T the model is built for (paper: 64; teaching: 32); T % tau == 0
    depths: tuple[int, ...] = (3, 4, 6, 3)  # bottleneck blocks per stage (ResNet-50; Table 1 prints 3,3,3,3; teaching: 1,1,1,1)
    sparse_temporal_kernels: tuple[int, ...] = (1, 1, 3, 3)  # sparse first-conv temporal kernel, res2..res5 (Table 1)
    dense_temporal_kernels: tuple[int, ...] | DenseKernels = "slowfast"  # dense first-conv kernels, res2..res5: "slowfast" 3,3,3,3 | "table1" 3,3,1,1 (printed) | a tuple
    pathways: Pathways = "both"  # Table 3: "dense" only, "sparse" only or "both"
    cdai: bool = True  # CDAI after res2..res5 (False: SlowFast laterals; needs pathways="both")
    cdai_stem_lateral: bool = False  # with CDAI, also SlowFast's lateral after the stems (the paper has none)
    temporal_reduction: TemporalReduction = "max_pool"  # CDAI dense->sparse reduction alpha*T -> T (section 2.2.2.2 (1))
    interval_sampling: IntervalSampling = "random"  # temporal_reduction="interval_sampling": "random" in training (paper) | "first"
    fusion: Fusion = "add"  # CDAI sparse->dense fusion with the dense features: "add" | "concat"
    directions: Directions = "both"  # CDAI directions: "both" | "dense_to_sparse" | "sparse_to_dense"
    attention_recurrence: int = 2  # shared axial-attention passes (paper: 2; 3 reach the whole T x H x W map)
    qk_reduction: int = 1  # Q/K channels = C // qk_reduction in the axial attention (paper: 1, Q, K, V of one shape)
    eca_gamma: int = 2  # ECA kernel formula gamma, Eq. (4) (paper: 2)
    eca_b: int = 1  # ECA kernel formula b, Eq. (4) (paper: 1)
    fusion_kernel: int = 5  # temporal kernel of the SlowFast lateral conv (stem; all laterals if cdai=False)
    fusion_channel_ratio: int = 2  # SlowFast lateral conv outputs ratio * C_dense channels
    dropout: float = 0.5  # dropout before the classifier (paper: 0.5)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        check_sampling(self.num_frames, self.tau, self.alpha, who="STINConfig")
        for name, allowed in (("pathways", _PATHWAYS), ("temporal_reduction", _REDUCTIONS),
                              ("fusion", _FUSIONS), ("directions", _DIRECTIONS),
                              ("interval_sampling", _INTERVAL_SAMPLING)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"STINConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if isinstance(self.dense_temporal_kernels, str) and self.dense_temporal_kernels not in DENSE_TEMPORAL_KERNELS:
            raise ValueError(f"STINConfig.dense_temporal_kernels must be one of {list(DENSE_TEMPORAL_KERNELS)} "
                             f"or a tuple of 4 odd ints, got {self.dense_temporal_kernels!r}")
        if self.cdai and self.pathways != "both":
            raise ValueError(f"STINConfig: cdai=True needs pathways='both' (got {self.pathways!r}); "
                             "CDAI connects two pathways")
        if any(len(t) != 4 for t in (self.depths, self.sparse_temporal_kernels, self.dense_kernels)):
            raise ValueError("STINConfig: depths and temporal kernels need one entry per stage (4)")
        if self.width < 1 or self.beta_inv < 1 or self.width % self.beta_inv:
            raise ValueError(f"STINConfig: width={self.width} must be a positive multiple of beta_inv={self.beta_inv}")
        if any(k % 2 == 0 for k in (*self.sparse_temporal_kernels, *self.dense_kernels, self.fusion_kernel)):
            raise ValueError("STINConfig: temporal kernels must be odd ('same' padding)")
        if self.attention_recurrence < 1 or self.qk_reduction < 1:
            raise ValueError("STINConfig: attention_recurrence and qk_reduction must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"STINConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def dense_width(self) -> int:
        return self.width // self.beta_inv

    @property
    def dense_kernels(self) -> tuple[int, ...]:
        """``dense_temporal_kernels`` as a tuple (a name resolved through :data:`DENSE_TEMPORAL_KERNELS`)."""
        k = self.dense_temporal_kernels
        return DENSE_TEMPORAL_KERNELS[k] if isinstance(k, str) else tuple(k)


TABLE3_ROWS = ("dense only", "sparse only", "both", "both + CDAI")  # Table 3, in the paper's order


def table3_configs(base: STINConfig | None = None) -> dict[str, STINConfig]:
    """The four Table-3 ablation rows from one constructor (all other fields from ``base``; default: the
    paper preset)."""
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

    ``laterals[0]`` sits after the stems (a no-op :class:`_NoInteraction` with CDAI unless
    ``cdai_stem_lateral``), ``laterals[i + 1]`` after stage ``i`` (res2..res5).

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
        stem_lateral = both and (not cfg.cdai or cfg.cdai_stem_lateral)  # SlowFast's; with CDAI only on request
        laterals.append(FuseFastToSlow(cfg.dense_width, cfg.alpha, kernel=cfg.fusion_kernel,
                                       ratio=cfg.fusion_channel_ratio) if stem_lateral else _NoInteraction())
        for i in range(4):  # the interaction after stage i (res2..res5)
            if both and cfg.cdai:
                laterals.append(CrossDualAttentionInteraction(
                    sparse_ch[i], dense_ch[i], cfg.alpha, temporal_reduction=cfg.temporal_reduction,
                    fusion=cfg.fusion, directions=cfg.directions, recurrence=cfg.attention_recurrence,
                    qk_reduction=cfg.qk_reduction, eca_gamma=cfg.eca_gamma, eca_b=cfg.eca_b,
                    interval_sampling=cfg.interval_sampling))
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
        self.dense = Pathway(cfg.dense_width, depths=cfg.depths, temporal_kernels=cfg.dense_kernels,
                             stem_temporal_kernel=5, lateral_in=dense_in, in_channels=cfg.in_channels) if use_dense else None
        head_in = 0
        if use_sparse:
            head_in += sparse_ch[3] + getattr(laterals[4], "out_channels", 0)
        if use_dense:
            head_in += dense_ch[3] + getattr(laterals[4], "dense_extra", 0)
        self.head = ClassifierHead(head_in, num_classes, dropout=cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """``T`` a positive multiple of ``tau`` (built for ``num_frames``), 224^2 in Table 1; ``min_size`` 32
        is the total spatial stride."""
        return pathway_input_spec(self.cfg.in_channels, self.cfg.num_frames, self.cfg.tau)

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
def stin(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> STIN:
    """STIN with CDAI. ``preset="paper"``: Table 1 (module docstring); ``"teaching"``: the small sizes.
    ``overrides``: any :class:`STINConfig` field (e.g. ``cdai=False`` for Table 3's "both" row)."""
    return STIN(STINConfig.from_preset(preset, **overrides), num_classes)
