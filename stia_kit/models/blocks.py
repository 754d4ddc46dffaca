"""Shared 3D ResNet building blocks: stems, residual blocks, stages and the classification head.

Every 3D ResNet in STIA-Kit (R3D-18, the frame-level R2D-18 baseline, SlowFast-R50 and both pathways of
STIN) is composed from these pieces, so a change here changes all of them the same way.

Two block types, as in the literature:

- :class:`BasicBlock` (ResNet-18/34): two ``kt x 3 x 3`` convolutions. With ``kt = 3`` this is R3D's
  ``Conv3DSimple`` block (Tran et al., "A Closer Look at Spatiotemporal Convolutions", 2018), with
  ``kt = 1`` the block is a 2D block applied frame by frame (R2D).
- :class:`Bottleneck` (ResNet-50/101), expansion 4, in two forms:
  ``form="slowfast"`` (default): ``kt x 1 x 1`` -> ``1 x 3 x 3`` -> ``1 x 1 x 1``, the SlowFast form
  (Feichtenhofer et al. 2019, Table 1): the temporal kernel sits in the first ``1x1`` convolution and the
  spatial stride in the ``3x3`` convolution;
  ``form="hara"``: ``1 x 1 x 1`` -> ``kt x 3 x 3`` (carrying the whole ``(t, s, s)`` stride) -> ``1 x 1 x 1``,
  the 3D ResNet of Hara et al. ("Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?",
  CVPR 2018; ``kt = 3``), the "3D ResNet-50" of ST-MANet and MSF-Net (spec ``3d_attention.md``, "Shared").

The Hara stem is :class:`Stem` with a ``7x7x7`` kernel and a ``3x3x3`` stride-2 max-pool
(``pool_kernel=(3, 3, 3), pool_stride=(2, 2, 2)``). :class:`MultiStageHead` classifies from one stage or from
the concatenation of several globally pooled stages (ST-MANet's multi-level fusion, eq. 8).
:func:`init_resnet_weights` is the optional Kaiming (fan-out) initialisation.

Norm and activation are passed as callables (``norm(channels)``, ``act()``), PyTorchVideo style.

Shape:
    Every module maps ``[B, C_in, T, H, W] -> [B, C_out, T', H', W']``.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Literal, Sequence

import torch
from torch import Tensor, nn

Norm = Callable[[int], nn.Module]
Act = Callable[[], nn.Module]
Triple = tuple[int, int, int]
BottleneckForm = Literal["slowfast", "hara"]
BOTTLENECK_FORMS: tuple[str, ...] = ("slowfast", "hara")

DEFAULT_NORM: Norm = nn.BatchNorm3d
DEFAULT_ACT: Act = partial(nn.ReLU, inplace=True)


def conv_norm_act(
    in_ch: int,
    out_ch: int,
    kernel: Triple,
    *,
    stride: Triple = (1, 1, 1),
    norm: Norm = DEFAULT_NORM,
    act: Act | None = DEFAULT_ACT,
) -> nn.Sequential:
    """``Conv3d`` (no bias, "same" padding) + norm (+ activation when ``act`` is not None)."""
    padding = tuple(k // 2 for k in kernel)
    layers: list[nn.Module] = [nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False), norm(out_ch)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def shortcut(in_ch: int, out_ch: int, stride: Triple, norm: Norm) -> nn.Module:
    """Identity, or ``1x1x1`` strided projection + norm when the shape changes (ResNet option B)."""
    if in_ch == out_ch and stride == (1, 1, 1):
        return nn.Identity()
    return nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), norm(out_ch))


class BasicBlock(nn.Module):
    """Two ``kt x 3 x 3`` convolutions with a residual connection (ResNet-18/34 block).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, width, T / st, H / ss, W / ss]`` for ``stride = (st, ss, ss)``.
    """

    expansion = 1

    def __init__(
        self,
        in_ch: int,
        width: int,
        *,
        stride: Triple = (1, 1, 1),
        temporal_kernel: int = 3,
        norm: Norm = DEFAULT_NORM,
        act: Act = DEFAULT_ACT,
        zero_init_last_bn: bool = False,
    ) -> None:
        super().__init__()
        kt = temporal_kernel
        self.conv1 = conv_norm_act(in_ch, width, (kt, 3, 3), stride=stride, norm=norm, act=act)
        self.conv2 = conv_norm_act(width, width, (kt, 3, 3), norm=norm, act=None)
        if zero_init_last_bn:
            zero_last_bn(self)
        self.downsample = shortcut(in_ch, width, stride, norm)
        self.act = act()

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zeroed by ``zero_init_last_bn``)."""
        return self.conv2[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.downsample(x))


class Bottleneck(nn.Module):
    """Bottleneck (x4 expansion) with a residual connection, SlowFast or Hara form.

    ``form="slowfast"``: ``kt x 1^2`` (temporal stride) -> ``1 x 3^2`` (spatial stride) -> ``1 x 1^2``.
    ``form="hara"``: ``1^3`` -> ``kt x 3^2`` (the whole ``(st, ss, ss)`` stride; Hara et al. use ``kt = 3``)
    -> ``1^3``. Both use the projection shortcut (``1^3`` strided conv + norm) where the shape changes
    (ResNet option B; Hara's ``shortcut_type="B"`` for ResNet-50).

    ``zero_init_last_bn`` zeroes the weight of the last norm, so each block starts as the identity
    (PySlowFast ``ZERO_INIT_FINAL_BN``); ``None`` = the form's own default: on for ``"slowfast"`` (PySlowFast),
    off for ``"hara"`` (Hara et al.'s code keeps BN weight 1).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, 4 * width, T / st, H / ss, W / ss]`` for ``stride = (st, ss, ss)``.
    """

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        width: int,
        *,
        stride: Triple = (1, 1, 1),
        temporal_kernel: int = 1,
        norm: Norm = DEFAULT_NORM,
        act: Act = DEFAULT_ACT,
        form: BottleneckForm = "slowfast",
        zero_init_last_bn: bool | None = None,
    ) -> None:
        super().__init__()
        if form not in BOTTLENECK_FORMS:
            raise ValueError(f"Bottleneck form must be one of {list(BOTTLENECK_FORMS)}, got {form!r}")
        self.form = form
        out_ch = width * self.expansion
        kt = temporal_kernel
        if form == "slowfast":
            self.conv_a = conv_norm_act(in_ch, width, (kt, 1, 1), stride=(stride[0], 1, 1), norm=norm, act=act)
            self.conv_b = conv_norm_act(width, width, (1, 3, 3), stride=(1, stride[1], stride[2]), norm=norm, act=act)
        else:  # Hara et al. 2018: 1x1x1 -> kt x 3 x 3 with the (t, s, s) stride -> 1x1x1
            self.conv_a = conv_norm_act(in_ch, width, (1, 1, 1), norm=norm, act=act)
            self.conv_b = conv_norm_act(width, width, (kt, 3, 3), stride=stride, norm=norm, act=act)
        self.conv_c = conv_norm_act(width, out_ch, (1, 1, 1), norm=norm, act=None)
        if zero_init_last_bn if zero_init_last_bn is not None else form == "slowfast":
            zero_last_bn(self)  # each block starts as identity (PySlowFast ZERO_INIT_FINAL_BN)
        self.downsample = shortcut(in_ch, out_ch, stride, norm)
        self.act = act()

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zeroed by ``zero_init_last_bn``)."""
        return self.conv_c[1]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv_c(self.conv_b(self.conv_a(x))) + self.downsample(x))


Block = type[BasicBlock] | type[Bottleneck]


def zero_last_bn(block: nn.Module) -> None:
    """Zero the weight of ``block.last_norm`` (the norm closing its residual branch) when it is a BatchNorm,
    so the block starts as the identity (Goyal et al. 2017; PySlowFast ``ZERO_INIT_FINAL_BN``)."""
    bn = block.last_norm
    if isinstance(bn, nn.modules.batchnorm._BatchNorm):
        nn.init.zeros_(bn.weight)


def init_resnet_weights(module: nn.Module, *, zero_init_last_bn: bool = False) -> None:
    """Kaiming initialisation as in Hara et al.'s 3D ResNets (and torchvision's ResNets): every ``Conv3d``
    weight ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` (conv biases zeroed), every BatchNorm
    weight 1 and bias 0; linear layers keep PyTorch's default. With ``zero_init_last_bn`` the last BN of
    every residual block is then zeroed (:func:`zero_last_bn`). ST-MANet section 4.1 (paper): "initialized
    using the Kaiming initialization strategy"; fan-out normal is the reading (Hara's code)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_last_bn:
        for m in module.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                zero_last_bn(m)


def res_stage(
    block: Block,
    in_ch: int,
    width: int,
    depth: int,
    *,
    stride: Triple = (1, 1, 1),
    temporal_kernel: int | Sequence[int] = 3,
    norm: Norm = DEFAULT_NORM,
    act: Act = DEFAULT_ACT,
    **block_kwargs: Any,
) -> nn.Sequential:
    """``depth`` blocks; the first carries the stride (and the channel change).

    ``temporal_kernel`` may be one int or one per block (SlowFast alternates kernels in some stages).
    ``block_kwargs`` go to every block (e.g. ``form="hara"``, ``zero_init_last_bn=...``).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, width * block.expansion, T / st, H / ss, W / ss]``.
    """
    kernels = [temporal_kernel] * depth if isinstance(temporal_kernel, int) else list(temporal_kernel)
    if len(kernels) != depth:
        raise ValueError(f"temporal_kernel has {len(kernels)} entries, expected one per block ({depth})")
    blocks = []
    for i, kt in enumerate(kernels):
        blocks.append(
            block(in_ch if i == 0 else width * block.expansion, width,
                  stride=stride if i == 0 else (1, 1, 1), temporal_kernel=kt, norm=norm, act=act, **block_kwargs)
        )
    return nn.Sequential(*blocks)


class Stem(nn.Module):
    """Stem: one ``kt x k x k`` convolution + norm + act, optionally followed by a max-pool (default
    ``1 x 3 x 3`` stride ``(1, 2, 2)``; padding ``kernel // 2``).

    R3D-18: ``3x7x7`` conv, stride ``(1,2,2)``, no pool. ResNet-50 / SlowFast: ``1x7x7`` (slow) or ``5x7x7``
    (fast) conv stride ``(1,2,2)`` and max-pool ``1x3x3`` stride ``(1,2,2)``. Hara 3D ResNet-50: ``7x7x7`` conv
    stride ``(1,2,2)`` and max-pool ``3x3x3`` stride 2 padding 1 (``pool_kernel=(3,3,3), pool_stride=(2,2,2)``).

    Shape:
        ``[B, in_ch, T, H, W] -> [B, out_ch, T / (st * pt), H / (ss * ps), W / (ss * ps)]`` (``pt, ps, ps`` =
        ``pool_stride`` with pool, 1 without; divisions round up).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel: Triple = (3, 7, 7),
        stride: Triple = (1, 2, 2),
        pool: bool = False,
        pool_kernel: Triple = (1, 3, 3),
        pool_stride: Triple = (1, 2, 2),
        norm: Norm = DEFAULT_NORM,
        act: Act = DEFAULT_ACT,
    ) -> None:
        super().__init__()
        if any(k % 2 == 0 for k in pool_kernel):
            raise ValueError(f"Stem pool_kernel must be odd (padding kernel // 2), got {pool_kernel}")
        self.conv = conv_norm_act(in_ch, out_ch, kernel, stride=stride, norm=norm, act=act)
        padding = tuple(k // 2 for k in pool_kernel)
        self.pool = nn.MaxPool3d(pool_kernel, stride=pool_stride, padding=padding) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv(x))


class ClassifierHead(nn.Module):
    """Global average pool over ``T, H, W`` (of each input), concatenate, dropout, linear.

    Shape:
        ``[B, C_i, T_i, H_i, W_i]`` for each input ``i`` -> ``[B, num_classes]``.
    """

    def __init__(self, in_ch: int, num_classes: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, *features: Tensor) -> Tensor:
        pooled = torch.cat([f.mean(dim=(2, 3, 4)) for f in features], dim=1)  # [B, sum C_i]
        return self.fc(self.dropout(pooled))


class MultiStageHead(ClassifierHead):
    """Classifier on one stage or on several: global average pool each selected stage output over
    ``T, H, W``, concatenate, dropout, linear. ST-MANet's multi-level fusion (eq. 8, paper) on stages 2-5 of
    the 3D ResNet-50 is ``MultiStageHead((256, 512, 1024, 2048), n)`` (3840 inputs); one stage is
    ``MultiStageHead((2048,), n)`` (= :class:`ClassifierHead`).

    The inputs are checked against ``channels`` (count and order), so a head built for some stages cannot be
    fed others silently. Call as ``head(z2, z3, z4, z5)`` or ``head([z2, z3, z4, z5])``.

    Shape:
        ``[B, channels[i], T_i, H_i, W_i]`` for each ``i`` -> ``[B, num_classes]``.
    """

    def __init__(self, channels: Sequence[int], num_classes: int, *, dropout: float = 0.0) -> None:
        channels = tuple(int(c) for c in channels)
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"MultiStageHead channels must be a non-empty list of positive ints, got {channels}")
        super().__init__(sum(channels), num_classes, dropout=dropout)
        self.channels = channels  # expected channels of each input, in order

    def forward(self, *features: Tensor | Sequence[Tensor]) -> Tensor:  # type: ignore[override]
        feats: tuple[Tensor, ...] = (
            tuple(features[0]) if len(features) == 1 and isinstance(features[0], (list, tuple)) else features  # type: ignore[arg-type]
        )
        got = tuple(f.shape[1] for f in feats)
        if got != self.channels:
            raise ValueError(f"MultiStageHead expects inputs with channels {list(self.channels)}, got {list(got)}")
        return super().forward(*feats)
