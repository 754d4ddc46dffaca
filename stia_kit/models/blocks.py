"""Shared 3D ResNet building blocks: stems, residual blocks, stages and the classification head.

Every 3D ResNet in STIA-Kit (R3D-18, the frame-level R2D-18 baseline, SlowFast-R50 and both pathways of
STIN) is composed from these pieces, so a change here changes all of them the same way.

Two block types, as in the literature:

- :class:`BasicBlock` (ResNet-18/34): two ``kt x 3 x 3`` convolutions. With ``kt = 3`` this is R3D's
  ``Conv3DSimple`` block (Tran et al., "A Closer Look at Spatiotemporal Convolutions", 2018), with
  ``kt = 1`` the block is a 2D block applied frame by frame (R2D).
- :class:`Bottleneck` (ResNet-50/101): ``kt x 1 x 1`` -> ``1 x 3 x 3`` -> ``1 x 1 x 1`` with expansion 4, the
  SlowFast form (Feichtenhofer et al. 2019, Table 1): the temporal kernel sits in the first ``1x1``
  convolution and the spatial stride in the ``3x3`` convolution.

Norm and activation are passed as callables (``norm(channels)``, ``act()``), PyTorchVideo style.

Shape:
    Every module maps ``[B, C_in, T, H, W] -> [B, C_out, T', H', W']``.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

Norm = Callable[[int], nn.Module]
Act = Callable[[], nn.Module]
Triple = tuple[int, int, int]

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
    ) -> None:
        super().__init__()
        kt = temporal_kernel
        self.conv1 = conv_norm_act(in_ch, width, (kt, 3, 3), stride=stride, norm=norm, act=act)
        self.conv2 = conv_norm_act(width, width, (kt, 3, 3), norm=norm, act=None)
        self.downsample = shortcut(in_ch, width, stride, norm)
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.downsample(x))


class Bottleneck(nn.Module):
    """SlowFast bottleneck: ``kt x 1^2`` -> ``1 x 3^2`` (spatial stride) -> ``1 x 1^2`` (x4), residual.

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
    ) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv_a = conv_norm_act(in_ch, width, (temporal_kernel, 1, 1), stride=(stride[0], 1, 1), norm=norm, act=act)
        self.conv_b = conv_norm_act(width, width, (1, 3, 3), stride=(1, stride[1], stride[2]), norm=norm, act=act)
        self.conv_c = conv_norm_act(width, out_ch, (1, 1, 1), norm=norm, act=None)
        if isinstance(self.conv_c[1], nn.BatchNorm3d):  # zero-init the last BN: each block starts as identity
            nn.init.zeros_(self.conv_c[1].weight)           # (PySlowFast ZERO_INIT_FINAL_BN)
        self.downsample = shortcut(in_ch, out_ch, stride, norm)
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv_c(self.conv_b(self.conv_a(x))) + self.downsample(x))


Block = type[BasicBlock] | type[Bottleneck]


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
) -> nn.Sequential:
    """``depth`` blocks; the first carries the stride (and the channel change).

    ``temporal_kernel`` may be one int or one per block (SlowFast alternates kernels in some stages).

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
                  stride=stride if i == 0 else (1, 1, 1), temporal_kernel=kt, norm=norm, act=act)
        )
    return nn.Sequential(*blocks)


class Stem(nn.Module):
    """Stem: one ``kt x k x k`` convolution + norm + act, optionally followed by a ``1 x 3 x 3`` max-pool.

    R3D-18: ``3x7x7`` conv, stride ``(1,2,2)``, no pool. ResNet-50 / SlowFast: ``1x7x7`` (slow) or ``5x7x7``
    (fast) conv stride ``(1,2,2)`` and max-pool ``1x3x3`` stride ``(1,2,2)``.

    Shape:
        ``[B, in_ch, T, H, W] -> [B, out_ch, T / st, H / (ss * p), W / (ss * p)]`` (``p = 2`` with pool).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel: Triple = (3, 7, 7),
        stride: Triple = (1, 2, 2),
        pool: bool = False,
        norm: Norm = DEFAULT_NORM,
        act: Act = DEFAULT_ACT,
    ) -> None:
        super().__init__()
        self.conv = conv_norm_act(in_ch, out_ch, kernel, stride=stride, norm=norm, act=act)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)) if pool else nn.Identity()

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
