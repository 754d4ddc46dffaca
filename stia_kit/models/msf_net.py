"""MSF-Net (Yan et al., "MSF-Net: A Multilevel Spatiotemporal Feature Fusion Network Combines Attention for
Action Recognition", CSSE 2023; paper 003): multilevel split convolutions (MSL) inside R3D-18 / C3D, plus
FSAM attention. The readings follow ``shared/specs/3d_attention.md`` (MSF-Net section); each is labelled
"paper" (stated in 003) or "reading" (the spec's choice where 003 is silent or contradicts itself).

- :class:`MSL`, the multilevel-split spatiotemporal feature layer (section 3.1, Eq. (2)-(4)). Reading
  (channel-conserving): the input ``X`` (C channels) is split with ``torch.chunk`` into ``S`` groups
  (:func:`msl_split`; an even split only where ``torch.chunk`` gives fewer groups, never at paper widths); ``x_1``
  passes whole (paper); branch ``n = 2..S`` convolves ``cat[x_n, carry_n]`` with a ``3x3x3`` conv mapping
  ``w + carry_n -> w + carry_n`` channels, BN + ReLU; it keeps ``ceil(half)`` (``y_n1``) for the output and
  carries ``floor(half)`` (``y_n2``) into branch ``n + 1``; branch 2 gets no carry, the last branch goes wholly
  to the output, so ``Y = cat[x_1, y_21, ..., y_(S-1)1, y_S]`` has exactly C channels (the prose of 3.1; Eq.
  (4)'s printed indices ``y_22, y_32, ...`` clash with it, and which half is called "1" is only a relabelling
  of a learnt conv's output channels). Eq. (3) read literally (branch outputs ``w``) gives 19.41 M and a ``Y``
  narrower than ``X``, which breaks ``X + Y + Input``: not offered.
- :class:`MSFBlock`, the MSF module (section 3.1, Fig. 2): ``Output = X + Y + Input`` (paper) with
  ``X = first(input)``, ``Y = second(X)``; a final ReLU after the sum (reading, as R3D's block). Path A: the
  first conv carries the ``(2, 2, 2)`` stride (paper); path B (downsampling blocks only): ``MaxPool3d(3, 2,
  1)`` + ``1x1x1`` conv + BN (reading: max pooling cannot double channels; the projection is the cheapest
  fix, zero padding gives 21.66 M); ``shortcut="conv"`` is R3D's strided ``1x1x1`` conv (not from the paper).
- The four MSL placements of Table 1 / Fig. 8 (``msl_position``): (b) MSL replaces the second conv (paper,
  the model of Tables 2-5); (a) MSL replaces the first conv, in downsampling blocks a ``1x1x1`` stride-2 conv
  ``C -> 2C`` + BN + ReLU then ``MSL(2C)`` (reading); (c) every ``3x3x3`` conv except the stem and the three
  strided ones is an MSL (reading); (d) "the first convolutional kernel ... divided into Parts ... cascaded
  patterns of temporal and spatial convolution" is under-specified: the closest reading taken here splits
  the first conv into a ``3x1x1`` temporal conv (``C_in -> C``, temporal stride) and a ``1x3x3`` spatial conv
  (``C -> C``, spatial stride), each + BN + ReLU, with the MSL second (reading; 15.52 M against the printed
  15.53 M, see :func:`count_table`).
- Attention (Table 3) after layer3 and layer4 (section 3.3: "intermediate and final network output layers",
  ``attention_at``): ``"se"`` (SE3d, r = 16), ``"cbam"`` (CBAM3d), ``"fsam"`` (FcaNet channel attention then
  the Eq.-7 spatiotemporal attention, sequential, Eq. (8)); ``"fam"`` / ``"sam"`` use one half of FSAM (not
  from the paper: ablation switches). NST (Li et al. 2021, Table 3: 21.85 M) is omitted: paper 003 does not
  describe it. The FcaNet DCT size of each place is the feature size at the published ``112^2`` input
  (FcaNet's ``c2wh`` rule: 14 after layer3, 7 after layer4); other sizes are adaptively pooled (FSAM's rule).
- MSF-C3D (section 4.4): C3D with the cascaded pairs conv3a/b, conv4a/b, conv5a/b as MSF modules
  (``conv_a`` -> ``X``, ``MSL`` -> ``Y``, ``X + Y + Input``), ``1x1x1`` projections (with bias, as C3D's
  convs) where the residual width changes (reading; ``projections=False`` drops ``Input`` there: 68.77 M).
  FSAM after the conv3 and conv5 modules (reading: C3D's "intermediate" 256-channel and final places; the
  FAM fc adds 0.042 M, paper 69.25 - 69.20 = 0.05 M to its printed precision).

Parameter counts (101 classes) and GMACs (both papers' "GFLOPs" are multiply-accumulates) beside the
published figures: :func:`count_table`. Receptive fields inside the MSL (corrected Eq. (1)):
:func:`receptive_fields`.

Shape:
    MSF-R3D ``[B, 3, T, H, W] -> [B, num_classes]`` (published ``8 x 112^2``); MSF-C3D needs ``T >= 16``
    (published ``16 x 112^2``; at 8 frames pool5 would get ``T = 1``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..registry import Preset
from .blocks import DEFAULT_ACT, DEFAULT_NORM, Act, ClassifierHead, Norm, Stem, Triple, conv_norm_act, shortcut
from .c3d import c3d_classifier, c3d_pool
from .registry import InputSpec, MODELS, PresetConfig, register_model

MSLPosition = Literal["a", "b", "c", "d"]
AttentionKind = Literal["none", "se", "cbam", "fsam", "fam", "sam"]
ShortcutKind = Literal["maxpool", "conv"]
ATTENTIONS: tuple[str, ...] = ("none", "se", "cbam", "fsam", "fam", "sam")
PAPER_INPUT_SIZE = 112  # H = W of the published inputs (section 4.2); sizes the FcaNet DCT filters


# ------------------------------------------------------------------------------------------ the MSL
def msl_split(channels: int, scale: int) -> list[int]:
    """Group sizes of the MSL's channel split of ``channels`` into ``scale`` groups.

    Reading: ``torch.chunk(X, S, dim=1)`` (chunks of ``ceil(C / S)``, e.g. 64, 3 -> 22, 22, 20), which the
    published counts of Table 2 need. Where ``torch.chunk`` gives fewer than ``S`` groups (e.g. 16 channels,
    S = 5: chunks of 4 make only 4) the nearly even ``torch.tensor_split`` sizes are used (4, 3, 3, 3, 3;
    never at the paper's widths), so teaching widths take every S."""
    if scale < 2:
        raise ValueError(f"MSL scale S must be >= 2, got {scale}")
    if channels < scale:
        raise ValueError(f"MSL: {channels} channels cannot be split into S = {scale} groups")
    size = -(-channels // scale)  # torch.chunk's chunk size: ceil(C / S)
    sizes = [min(size, channels - i * size) for i in range(scale)]
    if min(sizes) < 1:  # torch.chunk would return fewer than S chunks: torch.tensor_split's sizes
        sizes = [channels // scale + (1 if i < channels % scale else 0) for i in range(scale)]
    return sizes


class MSL(nn.Module):
    """Multilevel-split spatiotemporal feature layer (section 3.1, Eq. (2)-(4)), channel-conserving reading.

    ``x_1`` passes (paper); branch ``n >= 2`` applies ``3x3x3`` conv + BN + ReLU to ``cat[x_n, y_(n-1)2]``
    (paper: Eq. (2); reading: width ``w + carry`` in and out, no carry into branch 2), keeps the first
    ``ceil(half)`` channels ``y_n1`` for ``Y`` and carries the rest ``y_n2`` (reading); the last branch goes
    wholly to ``Y`` (paper: Eq. (4)). ``branch_widths`` lists each conv's width.

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``.
    """

    def __init__(self, channels: int, scale: int = 4, *, norm: Norm = DEFAULT_NORM, act: Act = DEFAULT_ACT) -> None:
        super().__init__()
        self.channels, self.scale = channels, scale
        self.sizes = msl_split(channels, scale)  # torch.chunk group sizes (reading)
        self.keep: list[int] = []  # channels of branch n's output that go to Y (y_n1)
        self.branch_widths: list[int] = []  # conv width of branch n (in = out)
        branches, carry = [], 0
        for n in range(1, scale):
            width = self.sizes[n] + carry
            branches.append(conv_norm_act(width, width, (3, 3, 3), norm=norm, act=act))
            self.branch_widths.append(width)
            last = n == scale - 1
            self.keep.append(width if last else -(-width // 2))  # ceil(half) to Y; the last branch wholly
            carry = width - self.keep[-1]  # floor(half) into branch n + 1
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        xs = torch.split(x, self.sizes, dim=1)  # x_1 .. x_S (torch.chunk's groups, see msl_split)
        outs, carry = [xs[0]], None  # y_1 = x_1 (Eq. (2), i = 1)
        for n, branch in enumerate(self.branches, start=1):
            y = branch(xs[n] if carry is None else torch.cat([xs[n], carry], dim=1))  # Eq. (2): f(cat[x_n, y_(n-1)2])
            outs.append(y[:, : self.keep[n - 1]])  # y_n1 (the whole y_S for the last branch)
            carry = y[:, self.keep[n - 1]:]  # y_n2: [B, floor(half), T, H, W]
        return torch.cat(outs, dim=1)  # Eq. (4): Y = cat[x_1, y_21, ..., y_S], [B, C, T, H, W]


def receptive_field(kernels: Sequence[int], strides: Sequence[int] | None = None) -> int:
    """Receptive field after a chain of convs, Eq. (1) with its product index corrected (reading):
    ``RF_i = RF_(i-1) + (k_i - 1) * prod_(t<i) s_t``, ``RF_0 = 1``. (Eq. (1) as printed multiplies the
    strides up to ``S_(i-2)`` from ``t = 0``, i.e. indexes ``S_(-1)``.)"""
    strides = list(strides) if strides is not None else [1] * len(kernels)
    if len(strides) != len(kernels):
        raise ValueError(f"receptive_field: {len(kernels)} kernels but {len(strides)} strides")
    rf, jump = 1, 1
    for k, s in zip(kernels, strides):
        rf += (k - 1) * jump  # Eq. (1), corrected
        jump *= s
    return rf


def receptive_fields(scale: int = 4) -> list[dict[str, int]]:
    """Receptive field (per axis, T H W alike) of each convolved MSL branch ``n = 2..S`` (corrected Eq. (1)):
    branch ``n`` sees ``n - 1`` cascaded ``3x3x3`` convs (its carry went through all earlier ones): 3, 5, 7
    for S = 4, and 5, 7, 9 counting the MSF module's first conv (section 4.3: "larger than 9x9x9" for S > 4).
    ``x_1`` (not listed) passes with field 1 (3 after the first conv)."""
    msl_split(scale, scale)  # validates S >= 2
    return [{"branch": n, "convs": n - 1, "rf_msl": receptive_field([3] * (n - 1)),
             "rf_with_first_conv": receptive_field([3] * n)} for n in range(2, scale + 1)]


# ------------------------------------------------------------------------------------ attention
def make_attention(kind: str, channels: int, dct_size: int) -> nn.Module:
    """The Table-3 attention ``kind`` for ``channels`` (from :mod:`stia_kit.models.attention`; ``dct_size``:
    FcaNet's rule, the feature's size at the published input, its ``c2wh`` table being the stage sizes at 224^2):
    ``"none"`` identity, ``"se"`` SE3d(r = 16), ``"cbam"`` CBAM3d, ``"fsam"`` FSAM, ``"fam"`` / ``"sam"``
    one half of FSAM (not from the paper)."""
    from . import attention as att

    if kind == "none":
        return nn.Identity()
    if kind == "se":
        return att.SE3d(channels, reduction=16)
    if kind == "cbam":
        return att.CBAM3d(channels, reduction=16, kernel=7)
    if kind == "fsam":
        return att.FSAM(channels, dct_size)
    if kind == "fam":
        return att.FSAM(channels, dct_size, sam=False)
    if kind == "sam":
        return att.FSAM(channels, dct_size, fam=False)
    raise ValueError(f"attention must be one of {list(ATTENTIONS)}, got {kind!r}")


# ------------------------------------------------------------------------------------ MSF block
class MSFBlock(nn.Module):
    """MSF module (section 3.1, Fig. 2): ``Output = ReLU(X + Y + Input)``, ``X = first(input)``,
    ``Y = second(X)``; ``position`` chooses where the MSL sits (Table 1, see the module docstring).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, width, T / st, H / ss, W / ss]`` for ``stride = (st, ss, ss)``.
    """

    def __init__(self, in_ch: int, width: int, *, stride: Triple = (1, 1, 1), scale: int = 4,
                 position: MSLPosition = "b", shortcut_kind: ShortcutKind = "maxpool",
                 norm: Norm = DEFAULT_NORM, act: Act = DEFAULT_ACT) -> None:
        super().__init__()
        down = stride != (1, 1, 1) or in_ch != width
        if position == "b" or (position == "c" and down):  # strided 3x3x3 conv (path A) then MSL
            self.first: nn.Module = conv_norm_act(in_ch, width, (3, 3, 3), stride=stride, norm=norm, act=act)
            self.second: nn.Module = MSL(width, scale, norm=norm, act=act)
        elif position == "c":  # both convs -> MSL (reading)
            self.first, self.second = MSL(width, scale, norm=norm, act=act), MSL(width, scale, norm=norm, act=act)
        elif position == "a":  # MSL first; downsampling: 1x1x1 strided C -> 2C first (reading)
            msl = MSL(width, scale, norm=norm, act=act)
            self.first = nn.Sequential(conv_norm_act(in_ch, width, (1, 1, 1), stride=stride, norm=norm, act=act),
                                       msl) if down else msl
            self.second = conv_norm_act(width, width, (3, 3, 3), norm=norm, act=None)
        elif position == "d":  # first conv as a temporal then spatial cascade (closest reading), MSL second
            self.first = nn.Sequential(
                conv_norm_act(in_ch, width, (3, 1, 1), stride=(stride[0], 1, 1), norm=norm, act=act),
                conv_norm_act(width, width, (1, 3, 3), stride=(1, stride[1], stride[2]), norm=norm, act=act))
            self.second = MSL(width, scale, norm=norm, act=act)
        else:
            raise ValueError(f"msl_position must be one of ['a', 'b', 'c', 'd'], got {position!r}")
        if not down:
            self.downsample: nn.Module = nn.Identity()
        elif shortcut_kind == "maxpool":  # path B (paper: max pooling; reading: + 1x1x1 conv + BN)
            self.downsample = nn.Sequential(nn.MaxPool3d(3, stride=stride, padding=1),
                                            nn.Conv3d(in_ch, width, 1, bias=False), norm(width))
        elif shortcut_kind == "conv":  # R3D's strided 1x1x1 projection (not from the paper)
            self.downsample = shortcut(in_ch, width, stride, norm)
        else:
            raise ValueError(f"shortcut must be one of ['maxpool', 'conv'], got {shortcut_kind!r}")
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        x_ = self.first(x)  # X: [B, width, T', H', W']
        return self.act(x_ + self.second(x_) + self.downsample(x))  # Output = X + Y + Input (section 3.1)


# ------------------------------------------------------------------------------------ configs
def _check_common(cls: str, scale: int, attention: str, attention_at: tuple[int, ...], n_stages: int,
                  width: int, msl_width: int) -> None:
    if not 3 <= scale <= 6:
        raise ValueError(f"{cls}.scale must be in 3..6 (Table 2), got {scale}")
    if attention not in ATTENTIONS:
        raise ValueError(f"{cls}.attention must be one of {list(ATTENTIONS)}, got {attention!r}")
    if any(not 1 <= s <= n_stages for s in attention_at) or len(set(attention_at)) != len(attention_at):
        raise ValueError(f"{cls}.attention_at must be distinct stage numbers in 1..{n_stages}, got {attention_at}")
    if width < 1:
        raise ValueError(f"{cls}.width must be positive, got {width}")
    if msl_width < scale:
        raise ValueError(f"{cls}.width: the narrowest MSL ({msl_width} channels) cannot be split into S = {scale} groups")


@dataclass(frozen=True)
class MSFConfig(PresetConfig):
    """MSF-R3D (R3D-18 layout, Fig. 7). Defaults = ``paper()``: width 64, MSL second (b), S = 4, no attention
    (MSF-R3D of Tables 1-2, 21,835,125 parameters at 101 classes); ``teaching()``: width 16."""

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 16}

    width: int = 64  # channels of layer1 (paper: 64; teaching: 16); layers 2-4 double
    scale: int = 4  # MSL groups S (paper: 4; Table 2: 3..6)
    msl_position: MSLPosition = "b"  # Table 1 placement (paper: b)
    attention: AttentionKind = "none"  # Table 3: none | se | cbam | fsam (paper's +FSAM); fam | sam: not from the paper
    attention_at: tuple[int, ...] = (3, 4)  # stages followed by the attention (paper: layer3 and layer4)
    shortcut: ShortcutKind = "maxpool"  # path B of downsampling blocks: maxpool (paper) | conv (R3D's, not from the paper)
    depths: tuple[int, ...] = (2, 2, 2, 2)  # MSF blocks per stage (paper: R3D-18's)
    dropout: float = 0.0  # dropout before the classifier (paper: none stated)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        if self.msl_position not in ("a", "b", "c", "d"):
            raise ValueError(f"MSFConfig.msl_position must be one of ['a', 'b', 'c', 'd'], got {self.msl_position!r}")
        if self.shortcut not in ("maxpool", "conv"):
            raise ValueError(f"MSFConfig.shortcut must be 'maxpool' or 'conv', got {self.shortcut!r}")
        if len(self.depths) != 4 or any(d < 1 for d in self.depths):
            raise ValueError(f"MSFConfig.depths must be 4 positive block counts, got {self.depths}")
        _check_common("MSFConfig", self.scale, self.attention, self.attention_at, 4, self.width, self.width)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MSFConfig.dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class MSFC3DConfig(PresetConfig):
    """MSF-C3D (section 4.4). Defaults = ``paper()``: C3D's widths, S = 4, projections, no attention
    (68.93 M at 101 classes; paper 69.20 M); ``teaching()``: width 16 (a quarter), 512-unit fc6/fc7."""

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 16, "fc_dim": 512}

    width: int = 64  # channels of conv1a (paper: 64; teaching: 16); C3D's groups are 1, 2, 4, 8, 8 x width
    scale: int = 4  # MSL groups S (paper: 4)
    attention: AttentionKind = "none"  # none | se | cbam | fsam (paper's +FSAM); fam | sam: not from the paper
    attention_at: tuple[int, ...] = (3, 5)  # conv groups followed by the attention (reading: conv3, conv5)
    projections: bool = True  # 1x1x1 projections where the residual width changes (reading; False: no Input term there)
    fc_dim: int = 4096  # units of fc6 and fc7 (paper: C3D's 4096; teaching: 512)
    dropout: float = 0.5  # dropout after fc6 and fc7 (C3D's 0.5)
    in_channels: int = 3  # input channels (RGB)

    def __post_init__(self) -> None:
        _check_common("MSFC3DConfig", self.scale, self.attention, self.attention_at, 5, self.width, 4 * self.width)
        if self.fc_dim < 1:
            raise ValueError(f"MSFC3DConfig.fc_dim must be positive, got {self.fc_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MSFC3DConfig.dropout must be in [0, 1), got {self.dropout}")


# ------------------------------------------------------------------------------------ MSF-R3D
class MSFR3D(nn.Module):
    """MSF-R3D (section 3.3, Fig. 7): R3D-18's ``3x7x7`` stem (stride ``(1, 2, 2)``), four stages of two
    :class:`MSFBlock` (64/128/256/512 channels, stages 2-4 stride ``(2, 2, 2)``), attention after
    ``attention_at``, global average pool, linear.

    Shape:
        ``[B, 3, T, H, W] -> [B, num_classes]``; stage ``i`` (1-based) output
        ``[B, width * 2^(i-1), T / 2^(i-1), H / 2^i, W / 2^i]`` (rounded up).
    """

    def __init__(self, cfg: MSFConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = Stem(cfg.in_channels, cfg.width, kernel=(3, 7, 7), stride=(1, 2, 2))
        stages, attn, in_ch = [], [], cfg.width
        for i, depth in enumerate(cfg.depths):
            width, s = cfg.width * 2**i, 1 if i == 0 else 2
            blocks = [MSFBlock(in_ch if j == 0 else width, width, stride=(s, s, s) if j == 0 else (1, 1, 1),
                               scale=cfg.scale, position=cfg.msl_position, shortcut_kind=cfg.shortcut)
                      for j in range(depth)]
            stages.append(nn.Sequential(*blocks))
            dct = PAPER_INPUT_SIZE // 2 ** (i + 1)  # FcaNet's c2wh rule: stage size at 112^2 (56, 28, 14, 7)
            attn.append(make_attention(cfg.attention if i + 1 in cfg.attention_at else "none", width, dct))
            in_ch = width
        self.stages, self.attention = nn.ModuleList(stages), nn.ModuleList(attn)
        self.head = ClassifierHead(in_ch, num_classes, dropout=cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """Any ``T`` and ``H, W >= 16`` (total spatial stride); published ``8 x 112^2`` (section 4.2)."""
        return InputSpec(channels=self.cfg.in_channels, num_frames=8, size=PAPER_INPUT_SIZE, min_size=16)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Outputs of every stage, after its attention (for attention maps and shapes)."""
        x = self.stem(x)
        feats = []
        for stage, att in zip(self.stages, self.attention):
            x = att(stage(x))
            feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x)[-1])


# ------------------------------------------------------------------------------------ MSF-C3D
C3D_WIDTHS: tuple[tuple[int, ...], ...] = ((1,), (2,), (4, 4), (8, 8), (8, 8))  # C3D's groups / 64 (Table 1 of C3D)


class MSFC3DGroup(nn.Module):
    """A C3D conv pair as an MSF module: ``X = ReLU(conv_a(input))``, ``Y = MSL(X)``,
    ``Output = ReLU(X + Y + Input)`` (``Input`` through a ``1x1x1`` projection with bias where the width
    changes; without ``projections`` the ``Input`` term is dropped there).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, width, T, H, W]``.
    """

    def __init__(self, in_ch: int, width: int, *, scale: int, projections: bool) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.Conv3d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True))
        self.msl = MSL(width, scale)
        self.proj: nn.Module | None = (nn.Identity() if in_ch == width else
                                       nn.Conv3d(in_ch, width, 1) if projections else None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x_ = self.conv_a(x)  # X
        out = x_ + self.msl(x_)  # X + Y
        return self.act(out if self.proj is None else out + self.proj(x))  # + Input


class MSFC3D(nn.Module):
    """MSF-C3D: C3D (``stia_kit.models.c3d``) with conv3, conv4 and conv5 as :class:`MSFC3DGroup`, attention
    after ``attention_at`` (before that group's pool), the same pools, adaptive ``1 x 4 x 4`` pool and fc6-fc8.

    Shape:
        ``[B, 3, T >= 16, H >= 32, W >= 32] -> [B, num_classes]``.
    """

    def __init__(self, cfg: MSFC3DConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        in_ch, size = cfg.in_channels, PAPER_INPUT_SIZE
        for g, group in enumerate(C3D_WIDTHS):
            width = group[0] * cfg.width
            if len(group) == 1:
                layers += [nn.Conv3d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True)]
            else:
                layers.append(MSFC3DGroup(in_ch, width, scale=cfg.scale, projections=cfg.projections))
            in_ch = width
            kind = cfg.attention if g + 1 in cfg.attention_at else "none"
            if kind != "none":
                layers.append(make_attention(kind, width, size))  # DCT size: the group's size at 112^2
            layers.append(c3d_pool(g, len(C3D_WIDTHS)))
            size //= 2
        layers.append(nn.AdaptiveAvgPool3d((1, 4, 4)))  # identity at 16x112^2 (as stia_kit.models.c3d)
        self.features = nn.Sequential(*layers)
        self.classifier = c3d_classifier(in_ch, cfg.fc_dim, num_classes, cfg.dropout)

    @property
    def input_spec(self) -> InputSpec:
        """``T >= 16`` and ``H, W >= 32`` (C3D's pools); published ``16 x 112^2``."""
        return InputSpec(channels=self.cfg.in_channels, num_frames=16, size=PAPER_INPUT_SIZE, min_frames=16, min_size=32)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[2] < 16 or min(x.shape[3:]) < 32:
            raise ValueError(f"MSF-C3D expects [B, C, T>=16, H>=32, W>=32] (four 2x temporal pools), got {list(x.shape)}")
        return self.classifier(self.features(x))


@register_model("msf_r3d")
def msf_r3d(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> MSFR3D:
    """MSF-R3D (paper 003). ``preset="paper"``: width 64, (b), S = 4: 21,835,125 parameters at 101 classes
    (paper 21.84 M); ``attention="fsam"`` is MSF-R3D+FSAM (21.877 M, paper 21.88 M); ``"teaching"``: width 16.
    ``overrides``: any :class:`MSFConfig` field."""
    return MSFR3D(MSFConfig.from_preset(preset, **overrides), num_classes)


@register_model("msf_c3d")
def msf_c3d(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> MSFC3D:
    """MSF-C3D (paper 003, section 4.4). ``preset="paper"``: 68.93 M at 101 classes (paper 69.20 M: a
    documented gap); ``attention="fsam"``: +FSAM; ``"teaching"``: width 16, fc 512. ``overrides``: any
    :class:`MSFC3DConfig` field."""
    return MSFC3D(MSFC3DConfig.from_preset(preset, **overrides), num_classes)


# ------------------------------------------------------------------------------------ count table
_R3D_GAP = ("R3D-18 (torchvision layout) at 101 classes is 33,218,085: the paper's 33.18 M is 0.04 M below any "
            "standard R3D-18, and its '-34.2 %' parameters is computed against its own figure; GMACs at 8x112^2 "
            "20.35 against the printed 19.3")
_MSF_GMACS = "GMACs at 8x112^2 are 14.05 against the printed 15.1 (no reading tried reproduces it)"
_C3D_GAP = ("MSF-C3D: conv3b/4b/5b -> MSL with 1x1x1 projections gives 68.93 M (68.77 M without); the paper's "
            "69.20 M is not reproduced by any reading tried; GMACs at 16x112^2 28.36 against the printed 32.9")
_K400 = "Table 4 (Kinetics-400) prints the same figure as the 101-class model; at 400 classes the head is larger"

#: The published rows of Tables 1-5 (paper 003): (table, row, model, overrides, classes, frames, published M
#: params, published GFLOPs (= GMACs) or None, note). Frames: 8 for the R3D family, 16 for the C3D family.
PUBLISHED_ROWS: tuple[tuple[str, str, str, dict[str, Any], int, int, float | None, float | None, str], ...] = (
    ("Table 1", "(a) MSL first", "msf_r3d", {"msl_position": "a"}, 101, 8, 26.66, None,
     "reading: downsampling blocks 1x1x1 stride-2 C -> 2C + MSL(2C) (spec: 26.656 M)"),
    ("Table 1", "(b) MSL second", "msf_r3d", {}, 101, 8, 21.82, None,
     "paper's model; Table 1 prints 21.82 M, Tables 2-5 21.84 M for the same network"),
    ("Table 1", "(c) all but strided", "msf_r3d", {"msl_position": "c"}, 101, 8, 16.09, None,
     "reading: every 3x3x3 conv except the stem and the three strided ones -> MSL (spec: 16.077 M)"),
    ("Table 1", "(d) first conv in parts", "msf_r3d", {"msl_position": "d"}, 101, 8, 15.53, None,
     "under-specified in the paper; closest reading: first conv as 3x1x1 (C_in -> C) then 1x3x3 (C -> C), MSL second"),
    ("Table 2", "S = 3", "msf_r3d", {"scale": 3}, 101, 8, 21.18, None, "channel-conserving MSL, torch.chunk groups"),
    ("Table 2", "S = 4", "msf_r3d", {"scale": 4}, 101, 8, 21.84, None, "channel-conserving MSL, torch.chunk groups"),
    ("Table 2", "S = 5", "msf_r3d", {"scale": 5}, 101, 8, 21.80, None, "channel-conserving MSL, torch.chunk groups"),
    ("Table 2", "S = 6", "msf_r3d", {"scale": 6}, 101, 8, 21.50, None, "channel-conserving MSL, torch.chunk groups"),
    ("Table 3", "SE", "msf_r3d", {"attention": "se"}, 101, 8, 21.88, None, "SE3d (r = 16) after layer3 and layer4"),
    ("Table 3", "CBAM", "msf_r3d", {"attention": "cbam"}, 101, 8, 21.88, None, "CBAM3d (r = 16, 7x7x7) after layer3 and layer4"),
    ("Table 3", "NST", "", {}, 101, 8, 21.85, None, "omitted: paper 003 does not describe NST (Li et al. 2021)"),
    ("Table 3", "FSAM", "msf_r3d", {"attention": "fsam"}, 101, 8, 21.88, None,
     "FcaNet top-16 FAM (fc C -> C/16 -> C, no bias) then Eq.-7 SAM (no BN) after layer3 and layer4"),
    ("Table 4", "C3D (Kinetics-400)", "c3d", {}, 400, 16, 78.41, 38.5, _K400),
    ("Table 4", "MSF-R3D (Kinetics-400)", "msf_r3d", {}, 400, 8, 21.84, 15.1, _K400 + "; " + _MSF_GMACS),
    ("Table 4", "MSF-R3D+FSAM (Kinetics-400)", "msf_r3d", {"attention": "fsam"}, 400, 8, 21.88, 15.1,
     _K400 + "; " + _MSF_GMACS),
    ("Table 5", "C3D", "c3d", {}, 101, 16, 78.41, 38.5, "78,409,573 (the widely reported C3D figure); 38.55 GMACs"),
    ("Table 5", "R3D", "r3d_18", {}, 101, 8, 33.18, 19.3, _R3D_GAP),
    ("Table 5", "3D ResNet-50", "r3d_50", {}, 400, 16, 47.02, 10.1,
     "Hara et al.'s 3D ResNet-50, counted at 400 classes (46.41 M at 101) and 16x112^2, as the figure printed"),
    ("Table 5", "MSF-R3D", "msf_r3d", {}, 101, 8, 21.84, 15.1, _MSF_GMACS),
    ("Table 5", "MSF-R3D+FSAM", "msf_r3d", {"attention": "fsam"}, 101, 8, 21.88, 15.1, _MSF_GMACS),
    ("Table 5", "MSF-C3D", "msf_c3d", {}, 101, 16, 69.20, 32.9, _C3D_GAP),
    ("Table 5", "MSF-C3D+FSAM", "msf_c3d", {"attention": "fsam"}, 101, 16, 69.25, 32.9,
     _C3D_GAP + "; FSAM after conv3 (256) and conv5 (512): +0.042 M (paper +0.05 M)"),
)

PARAMS_TOLERANCE_M = 0.02  # |ours - published| in M counted as a match (published to 2 decimals)
GMACS_TOLERANCE = 0.05  # |ours - published| in GMACs counted as a match (published to 1 decimal)


def model_cost(name: str, num_classes: int, frames: int, size: int = PAPER_INPUT_SIZE,
               **overrides: Any) -> tuple[int, float]:
    """(parameters, forward GMACs for one ``[1, 3, frames, size, size]`` clip) of registered model ``name`` at
    the paper preset, counted on the meta device (``torch.utils.flop_counter`` FLOPs / 2)."""
    with torch.device("meta"):
        model = MODELS.build(name, num_classes=num_classes, preset="paper", **overrides).eval()
        params = sum(p.numel() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, frames, size, size))
    return params, counter.get_total_flops() / 2e9


def count_table(*, gmacs: bool = True) -> list[dict[str, Any]]:
    """Parameters (and GMACs, unless ``gmacs=False``) of every published row of Tables 1-5 (paper 003)
    beside the printed figures, with the spec's explanation of each gap. Both papers' "GFLOPs" are
    multiply-accumulates (C3D's 38.5 = 38.55 GMACs), so GMACs are compared with them.

    Each row: ``table``, ``row``, ``model``, ``overrides``, ``classes``, ``frames``, ``params`` (ours, or None
    when omitted / not registered), ``published_params_M``, ``delta_M``, ``gmacs``, ``published_gflops``,
    ``status`` (``"match"``: within 0.02 M and, where printed, 0.05 GMACs; ``"gap"``; ``"omitted"``) and
    ``note``."""
    rows = []
    for table, row, name, overrides, classes, frames, pub_m, pub_g, note in PUBLISHED_ROWS:
        out: dict[str, Any] = {"table": table, "row": row, "model": name, "overrides": dict(overrides),
                               "classes": classes, "frames": frames, "params": None, "published_params_M": pub_m,
                               "delta_M": None, "gmacs": None, "published_gflops": pub_g, "status": "omitted",
                               "note": note}
        if name and name in MODELS:
            if gmacs:
                params, g = model_cost(name, classes, frames, **overrides)
                out["gmacs"] = round(g, 2)
            else:
                with torch.device("meta"):
                    m = MODELS.build(name, num_classes=classes, preset="paper", **overrides)
                params = sum(p.numel() for p in m.parameters())
            delta = params / 1e6 - pub_m
            ok = abs(delta) <= PARAMS_TOLERANCE_M + 1e-9
            if gmacs and pub_g is not None:
                ok = ok and abs(out["gmacs"] - pub_g) <= GMACS_TOLERANCE
            out.update(params=params, delta_M=round(delta, 3), status="match" if ok else "gap")
        elif name:
            out["note"] = f"{name} is not registered; " + note
        rows.append(out)
    return rows
