"""T-STAM: two-stream spatio-temporal attention on SE-BN-Inception (Shi, Li, Liu, Dai, "T-STAM: An End-to-End
Action Recognition Model Based on Two-Stream Spatio-Temporal Attention Mechanism", Application Research of
Computers 38(3), 2020; paper 004, a machine translation whose result tables are missing).

One stream (RGB or flow) per model; the streams are trained separately and fused at score level
(:func:`fuse_streams`, RGB : flow = 1 : 3, section 4.3.3). Each stream (section 1, Figure 1):

1. SE-BN-Inception (section 2), kept up to its last convolutional layer: ``X in R^{N x C x h x w}`` for the
   ``N`` sparsely sampled segments (TSN sampling, ``N = 6``, section 4.3.1);
2. :class:`FeatureMapping`, Eq. (1), ``x^_i = w1 x_i + b1``, shared over frames;
3. :class:`TemporalAttention` (section 3.1, Eq. (2)-(3)): one weight per frame, ``f_t in R^256``;
4. :class:`MultiSpatialAttention` (section 3.2, Eq. (4)-(7)): ``l = 4`` :class:`SpatialAttention` models,
   each a softmax over the ``h x w`` positions of every frame, ``f_sj in R^256``;
5. fusion (section 3.3, Eq. (8)-(9)): ``F_j = f_t + f_sj``, ``F = concat(F_1, ..., F_l) in R^{l x 256}``;
6. dropout, FC, softmax (the classification module).

Readings (spec ``two_stream.md``; each labelled where it is implemented):

- **Dimensions of Eq. (1)-(7)** (reading). Eq. (7) read literally, ``f_sj = sum_i sum_k alpha^i_jk x^_i``,
  is degenerate: ``x^_i`` has no position index and ``alpha`` sums to 1 over positions, so ``f_sj`` would
  not depend on the attention. The reading that keeps every dimension consistent: Eq. (1) is a 1x1
  convolution ``C -> 256`` applied at every position (the "1x1 conv to 256" the text names), so
  ``X^ in R^{N x 256 x h x w}``; Eq. (2) scores frame ``i`` from ``GAP(x^_i)`` with a 1x1 conv ``256 -> 1``
  and a softmax over the ``N`` frames; Eq. (3) ``f_t = sum_i alpha_i GAP(x^_i)``; the spatial model is
  ``BN(conv5x5(tanh(BN(conv1x1 C -> C/2))))`` with one output channel and padding 2 (Eq. (4)-(5), "BN after
  each convolutional layer"), Eq. (6) a softmax over the ``h x w`` positions of each frame, and Eq. (7)
  ``f_sj = sum_i sum_k alpha^i_jk x^_{i,k}`` (``x^_{i,k}``: the mapped feature of frame ``i`` at position
  ``k``). With ``l = 4``: ``F in R^{1024}``.
- **Conv biases** (reading): Eq. (4) prints biases ``b1, b2``; both convolutions are followed by BN, whose
  shift takes their place (a bias before BN is cancelled by its mean), so the convolutions have none.
- **Sum over frames** (paper, with a switch): Eq. (7) sums over frames, so ``f_sj`` grows with ``N``: 6
  segments in training, 25 frames in testing (section 4.2). ``frame_pool="sum"`` (printed) or ``"mean"``
  (divides by ``N``; test-time ``N`` then does not change the scale of ``f_sj``).
- **SE** (reading): "9 inception operations" (section 2), but BN-Inception has 10 (3a, 3b, 3c, 4a-4e,
  5a, 5b); ``se=True`` puts SE (reduction 16, paper) after all 10; a tuple of names chooses.
- **Gaps filled from tsn-pytorch** (TSN convention; :mod:`.tsn`): ``new_length = 5`` flow fields per
  segment (T-STAM never gives L), dropout 0.8 (RGB) / 0.7 (flow) before the FC, partial BN, 224 crops.
- **Ablations not in the paper** (teaching, labelled so): ``temporal=False`` drops ``f_t`` (``F_j =
  f_sj``); ``spatial=False`` drops the spatial models (``F = f_t``, 256-d); both off: ``F = mean_i
  GAP(x^_i)`` (plain feature averaging over frames).

Every ablation of section 4.3 is a field: ``num_segments`` (3-6, 4.3.1), ``num_spatial`` (l = 1-5, 4.3.2),
stream weights (:data:`STREAM_WEIGHT_ROWS`, 4.3.3), ``se`` on/off (4.3.4; TSN with and without SE is
:mod:`.tsn`). No parameter count is printed in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import torch
from torch import Tensor, nn

from ..registry import Preset
from .backbones2d import build_backbone2d, fold_segments
from .fusion import FuseOn, ScoreT, weighted_fusion
from .registry import InputSpec, PresetConfig, register_model
from .tsn import StreamFields, freeze_bn_except_first, stream_input, stream_input_spec

FramePool = Literal["sum", "mean"]
FRAME_POOLS: tuple[str, ...] = ("sum", "mean")

#: Stream fusion weights of the paper, as ratios (section 4.3.3: "1/4 RGB stream and 3/4 optical flow stream",
#: "a 1:3 fusion ratio"); :func:`~.fusion.weighted_fusion` divides by their sum.
STREAM_WEIGHTS: Mapping[str, float] = {"rgb": 1.0, "flow": 3.0}
#: The rows of the section 4.3.3 fusion-weight ablation (RGB only, flow only, a grid through 1 : 3), as ratios.
STREAM_WEIGHT_ROWS: Mapping[str, Mapping[str, float]] = {
    "rgb only": {"rgb": 1.0, "flow": 0.0},
    "3:1": {"rgb": 3.0, "flow": 1.0},
    "1:1": {"rgb": 1.0, "flow": 1.0},
    "1:2": {"rgb": 1.0, "flow": 2.0},
    "1:3": {"rgb": 1.0, "flow": 3.0},
    "1:4": {"rgb": 1.0, "flow": 4.0},
    "flow only": {"rgb": 0.0, "flow": 1.0},
}


def spatial_pool(alpha: Tensor, mapped: Tensor, frame_pool: FramePool = "sum") -> Tensor:
    """Eq. (7) under the dimension-consistent reading: ``f_sj = sum_i sum_k alpha^i_jk x^_{i,k}`` (``"sum"``,
    as printed) or the same divided by ``N`` (``"mean"``).

    Shape:
        ``alpha [B, N, l, h, w]`` (each frame's map sums to 1 over ``h, w``), ``mapped [B, N, d, h, w]``
        -> ``[B, l, d]``.
    """
    if frame_pool not in FRAME_POOLS:
        raise ValueError(f"frame_pool must be one of {list(FRAME_POOLS)}, got {frame_pool!r}")
    f = torch.einsum("bnlhw,bndhw->bld", alpha, mapped)  # Eq. (7): sum over positions k and frames i
    return f / alpha.shape[1] if frame_pool == "mean" else f


class FeatureMapping(nn.Module):
    """Eq. (1), ``x^_i = w1 x_i + b1`` with parameters shared over frames (paper), read as a 1x1 convolution
    ``C -> d`` applied at every position (reading: the "1x1 conv to 256" of section 3.1; keeping the
    positions is what lets Eq. (7) weight them). Its output feeds both the temporal (Eq. (3)) and the
    spatial (Eq. (7)) features.

    Shape:
        ``maps [B, N, C, h, w] -> mapped [B, N, d, h, w]``.
    """

    def __init__(self, in_channels: int, dim: int = 256) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, dim, 1)  # w1, b1 (shared by all frames and positions)

    def forward(self, maps: Tensor) -> Tensor:
        B, N, C, h, w = maps.shape
        return self.conv(maps.reshape(B * N, C, h, w)).reshape(B, N, -1, h, w)  # [B, N, d, h, w]


class TemporalAttention(nn.Module):
    """CNN-based temporal attention (paper section 3.1, Eq. (2)-(3)) on the mapped features of Eq. (1).

    Reading (spec): a frame is scored from the global average pool of its mapped maps, ``GAP(x^_i) in
    R^d``, by a 1x1 convolution ``d -> 1`` (on a 1x1 map: a linear layer); Eq. (2) softmax over the ``N``
    frames; Eq. (3) ``f_t = sum_i alpha_i GAP(x^_i)``.

    Shape:
        ``mapped [B, N, d, h, w] -> f_t [B, d]``; :meth:`attention_map`: ``-> alpha [B, N]``.
    """

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)  # Eq. (2) "conv": 1x1 conv d -> 1 on GAP(x^_i)

    def _weights(self, pooled: Tensor) -> Tensor:
        return torch.softmax(self.score(pooled).squeeze(-1), dim=1)  # Eq. (2): softmax over frames, [B, N]

    def attention_map(self, mapped: Tensor) -> Tensor:
        """The frame weights ``alpha`` of Eq. (2), ``[B, N]``, summing to 1 over the ``N`` frames.
        ``mapped``: the Eq. (1) maps ``[B, N, d, h, w]`` (what :meth:`forward` takes)."""
        return self._weights(mapped.mean(dim=(3, 4)))  # GAP(x^_i): [B, N, d]

    def forward(self, mapped: Tensor) -> Tensor:
        pooled = mapped.mean(dim=(3, 4))  # GAP(x^_i): [B, N, d]
        alpha = self._weights(pooled)  # [B, N]
        return (alpha.unsqueeze(-1) * pooled).sum(dim=1)  # Eq. (3): f_t = sum_i alpha_i x^_i, [B, d]


class SpatialAttention(nn.Module):
    """One spatial attention model (paper section 3.2, Eq. (4)-(6)).

    ``s_ij = BN(conv5x5(tanh(BN(conv1x1(X)))))``: a 1x1 conv ``C -> C/2`` (paper: "to reduce dimension to
    C/2"), BN, tanh, a 5x5 conv stride 1 (paper) with padding 2 and one output channel (reading), BN (paper:
    "BN is added after each convolutional layer"); Eq. (6): softmax over the ``h x w`` positions of each
    frame. No conv biases (reading: the following BN's shift replaces ``b1``, ``b2``).

    Shape:
        ``[B', C, h, w] -> [B', h, w]`` (:meth:`logits` and :meth:`attention_map`); each map of
        :meth:`attention_map` sums to 1 over ``h, w``.
    """

    def __init__(self, in_channels: int, *, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = max(in_channels // 2, 1)
        self.reduce = nn.Conv2d(in_channels, hidden, 1, bias=False)  # Eq. (4) w1: 1x1, C -> C/2
        self.bn1 = nn.BatchNorm2d(hidden)  # Eq. (5), after the first conv
        self.conv = nn.Conv2d(hidden, 1, kernel_size, padding=kernel_size // 2, bias=False)  # Eq. (4) w2: 5x5, stride 1
        self.bn2 = nn.BatchNorm2d(1)  # Eq. (5), after the second conv

    def logits(self, x: Tensor) -> Tensor:
        """The scores ``s_ij`` of Eq. (4)-(5), ``[B', h, w]``."""
        return self.bn2(self.conv(torch.tanh(self.bn1(self.reduce(x))))).squeeze(1)  # [B', h, w]

    def attention_map(self, x: Tensor) -> Tensor:
        """``alpha^i_jk`` of Eq. (6): a softmax over the ``h x w`` positions of each frame, ``[B', h, w]``."""
        s = self.logits(x)
        return torch.softmax(s.flatten(1), dim=1).reshape(s.shape)  # Eq. (6)

    def forward(self, x: Tensor) -> Tensor:
        return self.attention_map(x)


class MultiSpatialAttention(nn.Module):
    """``l`` spatial attention models (paper section 3.2, Eq. (4)-(7)); ``f_sj`` pools the mapped
    features of Eq. (1) with the ``j``-th model's maps (:func:`spatial_pool`, ``frame_pool`` "sum" as
    printed or "mean").

    Shape:
        ``maps [B, N, C, h, w], mapped [B, N, d, h, w] -> [B, l, d]``; :meth:`attention_map`:
        ``maps -> [B, N, l, h, w]`` (the spec's ``[N, l, H, W]`` per sample).
    """

    def __init__(self, in_channels: int, num_spatial: int = 4, *, frame_pool: FramePool = "sum",
                 kernel_size: int = 5) -> None:
        super().__init__()
        if num_spatial < 1:
            raise ValueError(f"num_spatial must be >= 1, got {num_spatial}")
        if frame_pool not in FRAME_POOLS:
            raise ValueError(f"frame_pool must be one of {list(FRAME_POOLS)}, got {frame_pool!r}")
        self.frame_pool = frame_pool
        self.models = nn.ModuleList(SpatialAttention(in_channels, kernel_size=kernel_size) for _ in range(num_spatial))

    def attention_map(self, maps: Tensor) -> Tensor:
        """The ``l`` spatial maps of every frame, ``[B, N, l, h, w]`` (each ``h x w`` map sums to 1).
        ``maps``: the backbone maps ``[B, N, C, h, w]``."""
        B, N, C, h, w = maps.shape
        x = maps.reshape(B * N, C, h, w)  # [B*N, C, h, w]
        # m(x) is m.attention_map(x); calling the module lets forward hooks (the attention recorder) see it
        alpha = torch.stack([m(x) for m in self.models], dim=1)  # [B*N, l, h, w]
        return alpha.reshape(B, N, -1, h, w)  # [B, N, l, h, w]

    def forward(self, maps: Tensor, mapped: Tensor) -> Tensor:
        return spatial_pool(self.attention_map(maps), mapped, self.frame_pool)  # Eq. (7): [B, l, d]


@dataclass(frozen=True)
class TSTAMConfig(StreamFields, PresetConfig):
    """T-STAM hyper-parameters of one stream. Defaults = ``paper()``: SE-BN-Inception, ``N = 6``, ``l = 4``,
    256-d attention features, TSN-convention gaps (module docstring). ``teaching()``: width 0.25, 64^2 crops
    (2 x 2 maps; BN-Inception cannot take 56, see :func:`~.tsn.bn_inception_grid`), ``N = 3``, no partial BN
    (a backbone trained from scratch has no ImageNet statistics to keep), dropout 0.5.
    """

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 0.25, "crop_size": 64, "num_segments": 3,
                                             "partial_bn": False, "dropout": 0.5}

    se: bool | tuple[str, ...] = True  # SE-BN-Inception (paper section 2): True = all 10 modules | False | names
    num_segments: int = 6  # N segments in training (paper section 4.3.1: 3-6 tried, 6 used)
    num_spatial: int = 4  # l spatial attention models (paper section 4.3.2: 1-5 tried, 4 used)
    attn_dim: int = 256  # channels of the Eq. (1) mapping x^ (paper: "transforms the feature dimension to 256")
    frame_pool: FramePool = "sum"  # Eq. (7) over frames: "sum" (printed) | "mean" (test-N independent)
    temporal: bool = True  # temporal attention f_t (False: F_j = f_sj; teaching ablation, not from the paper)
    spatial: bool = True  # multi-spatial attention (False: F = f_t; teaching ablation, not from the paper)

    def __post_init__(self) -> None:
        self._check_stream("TSTAMConfig")
        for name in ("num_segments", "num_spatial", "attn_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"TSTAMConfig.{name} must be a positive int, got {v!r}")
        if self.frame_pool not in FRAME_POOLS:
            raise ValueError(f"TSTAMConfig.frame_pool must be one of {list(FRAME_POOLS)}, got {self.frame_pool!r}")
        for name in ("temporal", "spatial"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TSTAMConfig.{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def feature_dim(self) -> int:
        """Length of ``F`` (Eq. (9)): ``l * attn_dim`` with spatial attention, else ``attn_dim``."""
        return self.num_spatial * self.attn_dim if self.spatial else self.attn_dim


class TSTAM(nn.Module):
    """One T-STAM stream: SE-BN-Inception maps -> Eq. (1) mapping -> temporal and multi-spatial attention
    -> fusion (Eq. (8)-(9)) -> dropout -> FC (module docstring).

    :meth:`attention_maps` returns the temporal weights and spatial maps of a batch (the modules'
    ``attention_map`` methods).

    Shape:
        ``{modality: [B, C, N, H, W]}`` (or the tensor itself) -> ``[B, num_classes]``; backbone maps
        ``[B, N, C', h, w]`` (``C' = 1024``, ``h = w = 7`` at 224), ``X^ [B, N, 256, h, w]``, ``f_t [B, 256]``,
        ``f_s [B, l, 256]``, ``F [B, l * 256]``.
    """

    def __init__(self, cfg: TSTAMConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_keys: tuple[str, ...] = (cfg.modality,)
        self.backbone = build_backbone2d("bn_inception", in_channels=cfg.in_channels, width=cfg.width, se=cfg.se,
                                         se_reduction=cfg.se_reduction)
        c = self.backbone.map_dim
        self.mapping = FeatureMapping(c, cfg.attn_dim)  # Eq. (1), shared by the temporal and spatial branches
        self.temporal = TemporalAttention(cfg.attn_dim) if cfg.temporal else None
        self.spatial = MultiSpatialAttention(c, cfg.num_spatial, frame_pool=cfg.frame_pool) if cfg.spatial else None
        self.dropout = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(cfg.feature_dim, num_classes)  # the classification module (section 1)
        self.train()  # applies partial BN from the start (the optimizer then sees the frozen flags)

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        return stream_input_spec(self.cfg, self.cfg.num_segments)

    def train(self, mode: bool = True) -> "TSTAM":
        super().train(mode)
        if self.cfg.partial_bn:  # TSN convention, on the backbone (the attention BNs are new layers)
            freeze_bn_except_first(self.backbone)
        return self

    def feature_maps(self, inputs: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Backbone maps ``X [B, N, C', h, w]`` and their Eq. (1) mapping ``X^ [B, N, attn_dim, h, w]``."""
        x = stream_input(inputs, self.cfg.modality, self.cfg.in_channels, "TSTAM")
        frames, B, N = fold_segments(x)  # [B*N, C, H, W]
        maps = self.backbone.forward_maps(frames)  # [B*N, C', h, w]
        maps = maps.reshape(B, N, *maps.shape[1:])  # [B, N, C', h, w]
        return maps, self.mapping(maps)  # Eq. (1): X^ [B, N, d, h, w]

    def features(self, inputs: Tensor | Mapping[str, Tensor]) -> Tensor:
        """The spatio-temporal feature ``F`` of Eq. (9), ``[B, feature_dim]``."""
        maps, mapped = self.feature_maps(inputs)
        B = maps.shape[0]
        if self.spatial is None:
            if self.temporal is None:  # teaching ablation: plain average of GAP(x^_i) over frames
                return mapped.mean(dim=(1, 3, 4))  # [B, d]
            return self.temporal(mapped)  # F = f_t (teaching ablation), [B, d]
        f_s = self.spatial(maps, mapped)  # Eq. (7): [B, l, d]
        if self.temporal is not None:
            f_s = f_s + self.temporal(mapped).unsqueeze(1)  # Eq. (8): F_j = f_t + f_sj, [B, l, d]
        return f_s.reshape(B, -1)  # Eq. (9): F = concat(F_1..F_l), [B, l*d]

    def forward(self, inputs: Tensor | Mapping[str, Tensor]) -> Tensor:
        return self.fc(self.dropout(self.features(inputs)))  # [B, num_classes]

    def attention_maps(self, inputs: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"temporal": alpha [B, N], "spatial": [B, N, l, h, w]}`` for a batch (a key is absent when its
        attention is switched off). Gradients flow; wrap in ``torch.no_grad()`` to only record them."""
        maps, mapped = self.feature_maps(inputs)
        out: dict[str, Tensor] = {}
        if self.temporal is not None:
            out["temporal"] = self.temporal.attention_map(mapped)
        if self.spatial is not None:
            out["spatial"] = self.spatial.attention_map(maps)
        return out


def fuse_streams(scores: Mapping[str, ScoreT], weights: Mapping[str, float] = STREAM_WEIGHTS, *,
                 on: FuseOn = "probs") -> ScoreT:
    """T-STAM's score-level two-stream fusion (paper section 4.3.3): ``(1 p_rgb + 3 p_flow) / 4`` of the
    streams' softmax probabilities (``on="probs"``; reading: the paper fuses the "outputs" of the
    FC + softmax classification modules) or the same weighted sum of logits (``on="logits"``, a switch).

    ``scores``: each stream's *logits* ``{"rgb": [M, classes], "flow": [M, classes]}`` (numpy or torch);
    ``weights``: ratios, e.g. a row of :data:`STREAM_WEIGHT_ROWS`. :func:`~.fusion.weighted_fusion` does it.

    Shape:
        ``{stream: [M, classes]} -> [M, classes]``.
    """
    return weighted_fusion(scores, weights, on=on)


@register_model("tstam")
def tstam(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> TSTAM:
    """One T-STAM stream (``modality="rgb"`` or ``"flow"``). ``preset="paper"``: SE-BN-Inception, N = 6,
    l = 4 (module docstring); ``"teaching"``: the small sizes. ``overrides``: any :class:`TSTAMConfig` field."""
    return TSTAM(TSTAMConfig.from_preset(preset, **overrides), num_classes)


__all__ = ["FRAME_POOLS", "FeatureMapping", "FramePool", "MultiSpatialAttention", "STREAM_WEIGHTS", "STREAM_WEIGHT_ROWS",
           "SpatialAttention", "TSTAM", "TSTAMConfig", "TemporalAttention", "fuse_streams", "spatial_pool", "tstam"]
