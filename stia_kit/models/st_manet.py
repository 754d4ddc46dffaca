"""ST-MANet: spatio-temporal multi-level aggregation on the Hara 3D ResNet-50 (Y. Wang, "Spatio-Temporal-based
Multi-level Aggregation Network for Physical Action Recognition", ComSIS 2024; paper 002).

The network (paper section 3, Fig. 1), readings from the spec ``3d_attention.md`` (each labelled):

1. Baseline (section 3.1): the Hara 3D ResNet-50 (:func:`~.r3d.r3d_50`; the paper gives no kernels, the spec
   identifies the network from MSF-Net's Table 5: 47.02 M parameters at 400 classes). Stage numbering as in
   the paper: stage 1 = stem + max-pool, stages 2-5 = the four residual stages.
2. TDA beside each stage ``i >= 2`` (section 3.2, Eq. (1)-(3); :class:`~.attention.TDA`): temporal attention
   ``A_t^i [T, T]`` over the concatenation ``Z_c^i = [Z^i; Z_TDA^{i-1}]``; Eq. (3) gives ``Zbar_t^i`` for the
   main branch, Eq. (2) ``Z_TDA^i`` for the next TDA. ``Z_TDA^1`` is undefined in the paper (reading:
   a seed ``3x1x1`` conv ``64 -> 128`` on the stem + pool output, ``tda_seed="conv3x1x1"``; ``"none"``: the
   stage-2 TDA sees ``Z_c^2 = Z^2``). The last TDA does not pool (paper) and its ``Z_TDA^5`` is added into
   ``Zbar^5`` (reading, ``fuse_last_tda``).
3. SDA on each stage ``i >= 2`` (section 3.3, Eq. (4)-(5); :class:`~.attention.SDA`): spatial attention
   ``A_s^i [HW, HW]``, no learned parameters.
4. Stage outputs fed forward (section 3.4): ``Zbar^i = Z^i (+) Zbar_t^i (+) Zbar_s^i`` is what stage ``i + 1``
   receives. Reading: ``(+)`` is a sum (so ``Z^i`` enters twice, Eq. (3) already adds it); a choice.
5. Multi-level fusion (Eq. (8)): GAP of each ``Zbar^i``, ``i = 2..5``, concatenated (256 + 512 + 1024 + 2048 =
   3840 at paper width), one linear layer (:class:`~.blocks.MultiStageHead`).
6. Diversity constraints (Eq. (6)-(7), :func:`diversity_loss`): every attention matrix downsampled to the
   stage-5 size ``S^i`` (reading: ``A_t`` by adaptive average pooling of the ``T x T`` matrix, ``A_s`` by
   pooling both position pairs of ``[H, W, H, W]``; ``div_pool_s="naive"`` pools the ``HW x HW`` matrix as
   an image, which mixes non-adjacent rows), ``f`` = cosine per sample on the flattened matrices, batch
   mean, summed over the 12 ordered pairs ``(i, j), i != j`` of ``delta``. Eq. (9): ``L = L_ce + lambda_1 L_s
   + lambda_2 L_t`` (paper: ``lambda_1 = 0.01`` spatial, ``lambda_2 = 0.001`` temporal, section 4.5). The
   model returns ``lambda_s * L_s`` and ``lambda_t * L_t`` already weighted as ``"loss_div_spatial"`` /
   ``"loss_div_temporal"``; the training loop adds every ``loss_*`` term (DESIGN.md "Models").

Table 4's rows (check marks lost in the text; rows from the enumerated experiments of section 4.3):
:func:`table4_configs`. Reading: the diversity losses are on only where MF is on (row 6: the constraints are
defined "for different depths" of the fused features, section 3.4); rows 2-4 train with cross-entropy only.
Fig. 4's per-stage classification: ``classify_from in {2, 3, 4, 5}`` on the full model (separate runs).

Cost: :func:`flops_over_baseline` counts the full model against the 3D ResNet-50 with
``torch.utils.flop_counter`` on the meta device. The paper's "about +24 %" (section 4.5) is reproduced by no
reading (SDA alone is +26.7 % at 32 x 112^2): the measured figure is printed beside it, not tuned to it.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..registry import Preset
from .attention import SDA, TDA, TDASeed
from .blocks import MultiStageHead, init_resnet_weights
from .r3d import R3D50_FIELDS, ResNet3D, ResNet3DConfig
from .registry import InputSpec, PresetConfig, register_model

ClassifyFrom = Literal[2, 3, 4, 5, "fusion"]
CLASSIFY_FROM: tuple[int | str, ...] = (2, 3, 4, 5, "fusion")
STAGES: tuple[int, ...] = (2, 3, 4, 5)  # the paper's residual stages (stage 1 = stem + max-pool)
TDASeedKind = Literal["conv3x1x1", "none"]
TDA_SEEDS: tuple[str, ...] = ("conv3x1x1", "none")
Pool = Literal["max", "avg"]
POOLS: tuple[str, ...] = ("max", "avg")
DivPoolS = Literal["positions", "naive"]
DIV_POOLS_S: tuple[str, ...] = ("positions", "naive")
TDAProjKind = Literal["reshape", "conv3x1x1", "conv3x1x1_all"]
#: ``tda_proj`` -> (``TDA(proj=...)``, ``TDA(proj_values=...)``): the readings of "the kernel sizes used here
#: are 3x1x1" (section 3.2) for the Eq. (1)-(3) operators that the paper also calls reshapes (spec).
TDA_PROJ: Mapping[str, tuple[str, bool]] = {
    "reshape": ("reshape", False),  # phi, varpi, tau, sigma all reshapes; only the two eps convs learn
    "conv3x1x1": ("conv3x1x1", False),  # default (reading): 3x1x1 convs for phi / varpi, tau / sigma reshapes
    "conv3x1x1_all": ("conv3x1x1", True),  # full-width reading: 3x1x1 convs for phi, varpi, tau and sigma
}

#: Table 4 of the paper (UCF-101 accuracy, quoted): row -> accuracy.
PAPER_TABLE4: Mapping[str, float] = {
    "3D ResNet-50": 0.8317,
    "+TDA": 0.8945,
    "+SDA": 0.9012,
    "+TDA+SDA": 0.9278,
    "+MF": 0.8416,
    "ST-MANet": 0.9605,
}
#: The switches of each Table-4 row (section 4.3's enumerated experiments (1)-(5), and the full model).
TABLE4_ROWS: Mapping[str, Mapping[str, bool]] = {
    "3D ResNet-50": {"tda": False, "sda": False, "multilevel_fusion": False},
    "+TDA": {"tda": True, "sda": False, "multilevel_fusion": False},
    "+SDA": {"tda": False, "sda": True, "multilevel_fusion": False},
    "+TDA+SDA": {"tda": True, "sda": True, "multilevel_fusion": False},
    "+MF": {"tda": False, "sda": False, "multilevel_fusion": True},
    "ST-MANet": {"tda": True, "sda": True, "multilevel_fusion": True},
}
#: Section 4.5: "an approximate 24% increase in floating-point operations" over the 3D ResNet-50 (quoted).
PAPER_FLOPS_INCREASE_PCT = 24.0


# ------------------------------------------------------------------------------------ diversity constraints
def downsample_temporal_attention(a_t: Tensor, size: int) -> Tensor:
    """``S^i`` of Eq. (6) for a temporal attention matrix (reading): adaptive average pooling of the
    ``T x T`` matrix to ``size x size``.

    Shape:
        ``[B, T, T] -> [B, size, size]``.
    """
    return F.adaptive_avg_pool2d(a_t.unsqueeze(1), (size, size)).squeeze(1)  # [B, size, size]


def downsample_spatial_attention(a_s: Tensor, hw: tuple[int, int], to: tuple[int, int],
                                 mode: DivPoolS = "positions") -> Tensor:
    """``S^i`` of Eq. (6) for a spatial attention matrix ``A_s [HW, HW]`` over the positions of an
    ``hw = (H, W)`` map, to the positions of a ``to = (h, w)`` map.

    ``"positions"`` (reading): ``A_s`` reshaped to ``[H, W, H, W]`` and both position pairs pooled
    spatially (adaptive average), so each pooled entry averages the attention between two neighbourhoods.
    ``"naive"``: the ``HW x HW`` matrix pooled as an image to ``hw' x hw'`` (adjacent rows of the matrix are
    not adjacent positions: it mixes unrelated positions; kept as a switch).

    Shape:
        ``[B, H*W, H*W] -> [B, h*w, h*w]``.
    """
    if mode not in DIV_POOLS_S:
        raise ValueError(f"div_pool_s must be one of {list(DIV_POOLS_S)}, got {mode!r}")
    B, n, m = a_s.shape
    H, W = hw
    h, w = to
    if n != H * W or m != H * W:
        raise ValueError(f"A_s has shape {list(a_s.shape)}, expected [B, {H * W}, {H * W}] for a {H}x{W} map")
    if mode == "naive":
        return F.adaptive_avg_pool2d(a_s.unsqueeze(1), (h * w, h * w)).squeeze(1)  # [B, hw, hw]
    x = a_s.reshape(B * H * W, 1, H, W)  # query position (H, W) folded into the batch; key position as a map
    x = F.adaptive_avg_pool2d(x, (h, w))  # [B*H*W, 1, h, w]: key positions pooled
    x = x.reshape(B, H, W, h * w).permute(0, 3, 1, 2).reshape(B * h * w, 1, H, W)  # query positions as a map
    x = F.adaptive_avg_pool2d(x, (h, w))  # [B*h*w, 1, h, w]: query positions pooled
    return x.reshape(B, h * w, h * w).transpose(1, 2)  # [B, h*w (query), h*w (key)]


def pairwise_cosine_sum(mats: Sequence[Tensor]) -> Tensor:
    """Eq. (7) after Eq. (6): ``sum_{(i, j) in delta} f(A^i, A^j)`` over the ordered pairs ``i != j`` of the
    (already downsampled, equally shaped) matrices; ``f`` = cosine similarity per sample on the flattened
    matrices, averaged over the batch (reading). Fewer than two matrices: no pair, 0.

    Shape:
        ``k x [B, n, n] -> []`` (a scalar).
    """
    if len(mats) < 2:
        return mats[0].new_zeros(()) if mats else torch.zeros(())
    flat = [m.flatten(1) for m in mats]  # [B, n*n] each
    total = flat[0].new_zeros(())
    for i, j in itertools.permutations(range(len(flat)), 2):  # delta: the ordered pairs (12 for stages 2-5)
        total = total + F.cosine_similarity(flat[i], flat[j], dim=1).mean()
    return total


def temporal_diversity_loss(maps: Mapping[int, Tensor]) -> Tensor:
    """``L_t`` (Eq. (6)-(7)): each ``A_t^i [B, T_i, T_i]`` pooled to the smallest ``T`` among them (the
    stage-5 size when stage 5 is included), then :func:`pairwise_cosine_sum`.

    Shape:
        ``{stage: [B, T_i, T_i]} -> []``.
    """
    if not maps:
        return torch.zeros(())
    t = min(a.shape[-1] for a in maps.values())
    return pairwise_cosine_sum([downsample_temporal_attention(a, t) for a in maps.values()])


def spatial_diversity_loss(maps: Mapping[int, Tensor], sizes: Mapping[int, tuple[int, int]],
                           mode: DivPoolS = "positions") -> Tensor:
    """``L_s`` (Eq. (6)-(7)): each ``A_s^i [B, H_i W_i, H_i W_i]`` (over an ``sizes[i] = (H_i, W_i)`` map)
    pooled to the smallest map among them (stage 5's when included; :func:`downsample_spatial_attention`),
    then :func:`pairwise_cosine_sum`.

    Shape:
        ``{stage: [B, H_i W_i, H_i W_i]} -> []``.
    """
    if not maps:
        return torch.zeros(())
    to = min((sizes[i] for i in maps), key=lambda s: s[0] * s[1])
    return pairwise_cosine_sum([downsample_spatial_attention(a, sizes[i], to, mode) for i, a in maps.items()])


# ------------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class STMANetConfig(PresetConfig):
    """Hyper-parameters of ST-MANet (defaults = ``paper()``: 3D ResNet-50 at width 64 with TDA, SDA, MF and the
    diversity losses at the paper's lambdas; ``teaching()``: width 16, one bottleneck per stage and a 3x7x7
    stem, the same readings: 0.89 GMACs per 32 x 56^2 clip (paper preset: 59.1 GMACs at 32 x 112^2); the 3D
    convolutions' backward dominates on a CPU, so a batch of 8 such clips still takes seconds on 2 cores).

    Every Table-4 row is a combination of ``tda`` / ``sda`` / ``multilevel_fusion`` (:func:`table4_configs`);
    Fig. 4's per-stage runs set ``classify_from``; Fig. 5's grid sets ``lambda_s`` / ``lambda_t``.
    """

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 16, "depths": (1, 1, 1, 1), "stem_kernel": (3, 7, 7)}

    tda: bool = True  # TDA beside stages 2-5 (section 3.2, Eq. (1)-(3))
    sda: bool = True  # SDA on stages 2-5 (section 3.3, Eq. (4)-(5))
    multilevel_fusion: bool = True  # MF: Eq. (8) head on stages 2-5, and the Eq. (6)-(7) losses (reading: row 6)
    lambda_s: float = 0.01  # lambda_1 of Eq. (9), spatial diversity weight (paper, section 4.5)
    lambda_t: float = 0.001  # lambda_2 of Eq. (9), temporal diversity weight (paper, section 4.5)
    classify_from: ClassifyFrom | None = None  # None: "fusion" with MF, else stage 5; 2-5: that stage only (Fig. 4)
    tda_proj: TDAProjKind = "conv3x1x1"  # Eq. (1)-(3) operators: reshapes / 3x1x1 phi,varpi / all 4 convs (TDA_PROJ)
    tda_seed: TDASeedKind = "conv3x1x1"  # Z_TDA^1 (undefined, reading): 3x1x1 conv 64 -> 128 on stage 1, or "none"
    pool: Pool = "max"  # the pooling layer of eps in Eq. (2) (reading: adaptive max; "avg")
    scale_logits: bool = False  # divide the attention logits by sqrt(d) (not printed: False = paper)
    fuse_last_tda: bool = True  # add Z_TDA^5 (Eq. (2) at the last stage, unpooled) into Zbar^5 (reading)
    div_stages_t: tuple[int, ...] = STAGES  # stages in L_t (reading switch: drop 5 when A_t^5 is 1 x 1)
    div_stages_s: tuple[int, ...] = STAGES  # stages in L_s (paper: 2-5)
    div_pool_s: DivPoolS = "positions"  # S^i of A_s: pool both position pairs (reading) or "naive" matrix pooling
    width: int = 64  # channels of the stem (paper: 64, the 3D ResNet-50; teaching: 16); stage i: width*2^(i-2)*4
    depths: tuple[int, ...] = (3, 4, 6, 3)  # bottlenecks per stage 2-5 (paper: ResNet-50, section 3.1)
    stem_kernel: tuple[int, int, int] = (7, 7, 7)  # stage-1 conv kernel (t, h, w) (Hara 3D ResNet-50: 7x7x7)
    dropout: float = 0.0  # dropout before the classifier (not given: none)
    init: Literal["kaiming", "default"] = "kaiming"  # weight init (paper section 4.1: Kaiming; fan-out normal)
    zero_init_last_bn: bool = False  # zero the last BN of every bottleneck (not in the paper: off)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in ("tda", "sda", "multilevel_fusion", "scale_logits", "fuse_last_tda", "zero_init_last_bn"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"{name}.{f} must be a bool, got {getattr(self, f)!r}")
        for f in ("lambda_s", "lambda_t"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0.0 or v == float("inf"):
                raise ValueError(f"{name}.{f} must be a finite number >= 0, got {v!r}")
        if self.classify_from is not None and self.classify_from not in CLASSIFY_FROM:
            raise ValueError(f"{name}.classify_from must be one of {list(CLASSIFY_FROM)} or None, "
                             f"got {self.classify_from!r}")
        if self.classify_from == "fusion" and not self.multilevel_fusion:
            raise ValueError(f"{name}.classify_from='fusion' needs multilevel_fusion=True (Eq. (8) is the fusion)")
        if self.tda_proj not in TDA_PROJ:
            raise ValueError(f"{name}.tda_proj must be one of {list(TDA_PROJ)}, got {self.tda_proj!r}")
        if self.tda_seed not in TDA_SEEDS:
            raise ValueError(f"{name}.tda_seed must be one of {list(TDA_SEEDS)}, got {self.tda_seed!r}")
        if self.pool not in POOLS:
            raise ValueError(f"{name}.pool must be one of {list(POOLS)}, got {self.pool!r}")
        if self.div_pool_s not in DIV_POOLS_S:
            raise ValueError(f"{name}.div_pool_s must be one of {list(DIV_POOLS_S)}, got {self.div_pool_s!r}")
        for f in ("div_stages_t", "div_stages_s"):
            v = getattr(self, f)
            if not isinstance(v, tuple) or not v or len(set(v)) != len(v) or not set(v) <= set(STAGES):
                raise ValueError(f"{name}.{f} must be a non-empty tuple of distinct stages from {list(STAGES)}, got {v!r}")
        if self.init not in ("kaiming", "default"):
            raise ValueError(f"{name}.init must be 'kaiming' or 'default', got {self.init!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 2 or self.width % 2:
            raise ValueError(f"{name}.width must be an even int >= 2 (the seed conv maps width -> 2*width), "
                             f"got {self.width!r}")
        if len(self.depths) != len(STAGES) or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ValueError(f"{name}.depths must be 4 positive ints (stages 2-5), got {self.depths!r}")
        if len(self.stem_kernel) != 3 or any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in self.stem_kernel):
            raise ValueError(f"{name}.stem_kernel must be 3 odd positive ints (t, h, w), got {self.stem_kernel!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name}.dropout must be in [0, 1), got {self.dropout!r}")
        if self.in_channels < 1:
            raise ValueError(f"{name}.in_channels must be >= 1, got {self.in_channels!r}")

    @property
    def head_stages(self) -> tuple[int, ...]:
        """The stages the classifier reads: 2-5 (Eq. (8)) with MF unless ``classify_from`` is a stage, else 5."""
        if isinstance(self.classify_from, int):
            return (self.classify_from,)
        return STAGES if self.multilevel_fusion else (5,)

    @property
    def diversity(self) -> bool:
        """Whether the Eq. (6)-(7) losses are computed (reading: only with MF, Table 4 row 6)."""
        return self.multilevel_fusion


def table4_configs(base: STMANetConfig | None = None) -> dict[str, STMANetConfig]:
    """The six rows of Table 4 from one constructor: ``base`` (default: the paper config) with each row's
    ``tda`` / ``sda`` / ``multilevel_fusion`` (:data:`TABLE4_ROWS`; rows (1)-(5) of section 4.3 and the full
    model). ``classify_from`` is reset to ``None`` (the row decides: fusion with MF, stage 5 without)."""
    base = STMANetConfig() if base is None else base
    return {row: replace(base, classify_from=None, **switches) for row, switches in TABLE4_ROWS.items()}


# -------------------------------------------------------------------------------------------------- model
def backbone_config(cfg: STMANetConfig) -> ResNet3DConfig:
    """The 3D ResNet-50 under ``cfg`` (:data:`~.r3d.R3D50_FIELDS` with ``cfg``'s width, depths, dropout,
    init, last-BN switch and input channels): Table 4's row 1 is this network exactly."""
    return ResNet3DConfig(**{**R3D50_FIELDS, "width": cfg.width, "depths": tuple(cfg.depths),
                             "stem_kernel": tuple(cfg.stem_kernel), "dropout": cfg.dropout,
                             "init": cfg.init, "zero_init_last_bn": cfg.zero_init_last_bn,
                             "in_channels": cfg.in_channels})


class STMANet(nn.Module):
    """ST-MANet (paper 002, Fig. 1): a 3D ResNet-50 whose residual stages 2-5 are each followed by TDA and
    SDA, ``Zbar^i = Z^i + Zbar_t^i + Zbar_s^i`` fed forward, a classifier on the fused stages (Eq. (8)) or on
    one stage, and the diversity losses (Eq. (6)-(7)) as weighted ``loss_*`` terms. See the module docstring
    for the readings.

    ``forward`` returns ``{"logits": [B, num_classes]}`` plus, with MF (reading: row 6),
    ``"loss_div_spatial" = lambda_s * L_s`` (when SDA is on) and ``"loss_div_temporal" = lambda_t * L_t`` (when
    TDA is on). :meth:`attention_maps` returns every ``A_t^i`` / ``A_s^i`` for a clip. The losses use the
    matrices the modules' forwards computed (``return_attention=True``), so nothing is computed twice;
    :func:`count_flops` counts the logits path only.

    Shape:
        ``[B, 3, T, H, W] -> logits [B, num_classes]``; stage outputs (:meth:`forward_features`) as the 3D
        ResNet-50's: at ``32 x 112^2`` and width 64, ``256 x 16 x 28^2``, ``512 x 8 x 14^2``, ``1024 x 4 x 7^2``,
        ``2048 x 2 x 4^2``; ``A_t^i [B, T_i, T_i]`` (16, 8, 4, 2), ``A_s^i [B, H_i W_i, H_i W_i]`` (784, 196, 49, 16).
    """

    def __init__(self, cfg: STMANetConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet3D(backbone_config(cfg), num_classes)
        self.backbone.head = nn.Identity()  # the backbone's own stage-5 classifier is replaced by self.head
        chans = self.backbone.stage_channels  # [C^2, C^3, C^4, C^5]
        self.seed: TDASeed | None = None
        self.tdas: nn.ModuleList | None = None
        if cfg.tda:
            proj, proj_values = TDA_PROJ[cfg.tda_proj]
            if cfg.tda_seed == "conv3x1x1":  # reading: Z_TDA^1 = 3x1x1 conv (64 -> 128) of stage 1
                self.seed = TDASeed(self.backbone.stem_channels, chans[0] // 2)
            self.tdas = nn.ModuleList(
                TDA(c, prev_channels=0 if (k == 0 and self.seed is None) else c // 2,
                    out_channels=chans[k + 1] // 2 if k + 1 < len(chans) else c,
                    proj=proj, proj_values=proj_values, pool=cfg.pool, scale_logits=cfg.scale_logits)  # type: ignore[arg-type]
                for k, c in enumerate(chans))
            if cfg.init == "kaiming":  # section 4.1 (paper): Kaiming init for the added convs too
                init_resnet_weights(self.tdas)
                if self.seed is not None:
                    init_resnet_weights(self.seed)
        self.sda: SDA | None = SDA(scale_logits=cfg.scale_logits) if cfg.sda else None
        self.head: MultiStageHead = self.backbone.stage_head(cfg.head_stages, num_classes, dropout=cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """Any ``T`` and ``H, W >= 32`` (the total spatial stride); published geometry 32 x 112^2 (section
        4.1). With ``T < 32`` the stage-5 ``A_t`` is 1 x 1 and every cosine with it is 1 (see ``div_stages_t``)."""
        spec = self.backbone.input_spec
        return InputSpec(channels=spec.channels, num_frames=32, size=112, min_size=spec.min_size)

    def _next_size(self, k: int, size: Sequence[int]) -> tuple[int, int, int]:
        """``(T, H, W)`` of residual stage ``k + 1``'s output from stage ``k``'s (0-based): its first block's
        3x3x3 conv (padding 1) and 1x1x1 shortcut with stride ``s`` give ``ceil(n / s)``."""
        bc = self.backbone.cfg
        st, ss = bc.temporal_strides[k + 1], bc.spatial_strides[k + 1]
        T, H, W = size
        return (-(-T // st), -(-H // ss), -(-W // ss))

    def _run(self, x: Tensor, *, maps: bool) -> tuple[list[Tensor], dict[int, Tensor], dict[int, Tensor],
                                                      dict[int, tuple[int, int]]]:
        """Stage outputs ``Zbar^2..5`` and, with ``maps``, ``{stage: A_t}``, ``{stage: A_s}``, ``{stage: (H, W)}``."""
        cfg, n_stages = self.cfg, len(self.backbone.stages)
        a_t: dict[int, Tensor] = {}
        a_s: dict[int, Tensor] = {}
        sizes: dict[int, tuple[int, int]] = {}
        prev: list[Tensor | None] = [None]  # Z_TDA^{i-1}, carried between the callbacks

        def after_stage(number: int, z: Tensor, previous: Sequence[Tensor]) -> Tensor:
            k = number - 2  # 0-based residual stage
            out = z  # Zbar^i = Z^i (+) Zbar_t^i (+) Zbar_s^i; (+) read as a sum
            sizes[number] = (z.shape[3], z.shape[4])
            if self.tdas is not None:
                tda = self.tdas[k]
                z_prev = prev[0] if k > 0 else (self.seed(previous[0]) if self.seed is not None else None)
                last = k == n_stages - 1
                zbar_t, z_tda, a = tda(z, z_prev, pool_to=None if last else self._next_size(k, z.shape[2:]),
                                       return_attention=True)  # Eq. (1)-(3)
                if maps:
                    a_t[number] = a  # Eq. (1), [B, T, T]: the matrix this pass used
                out = out + zbar_t
                if last and cfg.fuse_last_tda:  # reading: the unpooled last Z_TDA joins the main branch
                    out = out + z_tda
                prev[0] = z_tda
            if self.sda is not None:
                zbar_s, a = self.sda(z, return_attention=True)  # Eq. (4)-(5)
                out = out + zbar_s
                if maps:
                    a_s[number] = a  # Eq. (4), [B, HW, HW]
            return out

        feats = self.backbone.forward_stages(x, after_stage=after_stage)
        return feats, a_t, a_s, sizes

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The stage outputs ``Zbar^2, ..., Zbar^5`` (what each next stage and the classifier receive).

        Shape:
            ``[B, 3, T, H, W] -> [[B, C^i, T_i, H_i, W_i] for i = 2..5]``.
        """
        return self._run(x, maps=False)[0]

    def classify(self, feats: Sequence[Tensor]) -> Tensor:
        """Eq. (8) (or one stage): the head on the selected ``Zbar^i``. Shape: ``-> [B, num_classes]``."""
        return self.head(*self.backbone.select_stages(feats, self.cfg.head_stages))

    def attention_maps(self, x: Tensor) -> dict[str, dict[int, Tensor]]:
        """Every attention matrix of a forward pass on ``x``: ``{"temporal": {stage: A_t^i [B, T_i, T_i]},
        "spatial": {stage: A_s^i [B, H_i W_i, H_i W_i]}}`` for stages 2-5 (an empty dict for a module that is
        off). Each is computed from the module's own inputs as the forward uses it."""
        _, a_t, a_s, _ = self._run(x, maps=True)
        return {"temporal": a_t, "spatial": a_s}

    def diversity_losses(self, a_t: Mapping[int, Tensor], a_s: Mapping[int, Tensor],
                         sizes: Mapping[int, tuple[int, int]]) -> dict[str, Tensor]:
        """The weighted Eq. (7) terms from the attention matrices of one pass: ``loss_div_temporal = lambda_t *
        L_t`` over ``div_stages_t`` (when TDA is on), ``loss_div_spatial = lambda_s * L_s`` over
        ``div_stages_s`` (when SDA is on); empty without MF (reading: Table 4 row 6 only)."""
        cfg, out = self.cfg, {}
        if not cfg.diversity:
            return out
        if self.tdas is not None:
            out["loss_div_temporal"] = cfg.lambda_t * temporal_diversity_loss({i: a_t[i] for i in cfg.div_stages_t})
        if self.sda is not None:
            out["loss_div_spatial"] = cfg.lambda_s * spatial_diversity_loss(
                {i: a_s[i] for i in cfg.div_stages_s}, sizes, cfg.div_pool_s)
        return out

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        need_maps = self.cfg.diversity and (self.tdas is not None or self.sda is not None)
        feats, a_t, a_s, sizes = self._run(x, maps=need_maps)
        return {"logits": self.classify(feats), **self.diversity_losses(a_t, a_s, sizes)}


@register_model("st_manet")
def st_manet(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> STMANet:
    """ST-MANet (paper 002). ``preset="paper"``: the Hara 3D ResNet-50 (width 64) with TDA, SDA, multi-level
    fusion and the diversity losses (lambda_s = 0.01, lambda_t = 0.001), clips 32 x 112^2; ``"teaching"``:
    width 16. ``overrides``: any :class:`STMANetConfig` field (Table 4 rows: :func:`table4_configs`)."""
    return STMANet(STMANetConfig.from_preset(preset, **overrides), num_classes)


# -------------------------------------------------------------------------------------------------- FLOPs
def count_flops(model: nn.Module, clip: tuple[int, ...]) -> int:
    """Forward FLOPs (``torch.utils.flop_counter``: 2 per multiply-accumulate of every conv / matmul) of
    ``model`` (an :class:`STMANet`: its logits path, without the training-only diversity losses) on one clip
    ``[C, T, H, W]``, on the model's device (use the meta device: no memory, no compute)."""
    device = next(model.parameters()).device
    x = torch.empty(1, *clip, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        if isinstance(model, STMANet):
            model.classify(model.forward_features(x))
        else:
            model(x)
    return int(counter.get_total_flops())


def flops_over_baseline(cfg: STMANetConfig | None = None, frames: int = 32, size: int = 112,
                        num_classes: int = 101) -> dict[str, float]:
    """FLOPs and parameters of ST-MANet under ``cfg`` (default: the paper config) against its baseline, the 3D
    ResNet-50 of Table 4 row 1 at the same width, on one ``frames x size^2`` clip (meta device).

    Returns ``gmacs`` / ``baseline_gmacs`` (the papers' "GFLOPs" are multiply-accumulates: FLOPs / 2),
    ``increase_pct`` (measured), ``paper_increase_pct`` (24, section 4.5, quoted; no reading reproduces it:
    reported, not tuned), ``params_m`` / ``baseline_params_m`` (millions).
    """
    cfg = STMANetConfig() if cfg is None else cfg
    base = replace(cfg, tda=False, sda=False, multilevel_fusion=False, classify_from=None)
    clip = (cfg.in_channels, frames, size, size)
    with torch.device("meta"):
        model, baseline = STMANet(cfg, num_classes).eval(), STMANet(base, num_classes).eval()
    f, f0 = count_flops(model, clip), count_flops(baseline, clip)
    p, p0 = (sum(q.numel() for q in m.parameters()) for m in (model, baseline))
    return {"gmacs": f / 2e9, "baseline_gmacs": f0 / 2e9, "increase_pct": 100.0 * (f - f0) / f0,
            "paper_increase_pct": PAPER_FLOPS_INCREASE_PCT, "params_m": p / 1e6, "baseline_params_m": p0 / 1e6}
