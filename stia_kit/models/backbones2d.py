"""Shared 2D backbones of the two-stream family, with segments folded into the batch.

Two-stream models (STILT, T-STAM, TSN) run one 2D CNN per sampled frame / flow stack. A batch of segments
``[B, C, N, H, W]`` is folded to ``[B*N, C, H, W]`` (:func:`fold_segments`) and fed to ``nn.Conv2d`` layers:
on a CPU this is faster than ``Conv3d`` with a temporal kernel of 1, and it keeps the torchvision / TSN key
layouts, so ImageNet checkpoints load by name.

Backbones (``BACKBONES2D``, built with :func:`build_backbone2d`):

- ``"resnet50"``, ``"resnet34"``: torchvision ResNet layout (``conv1``, ``bn1``, ``layer1..4.{j}.conv1..3 /
  bn1..3 / downsample.0/1``, ``fc``), STILT's backbone (section 4.2, Table 2; section 4.4, Table 6 for ResNet-34).
  Reading (spec): the max-pool is 3x3 stride 2 (Table 2's "7x7" is a typo: the printed output size
  56 x 56 and ResNet itself say 3x3), the stride of a bottleneck sits on its 3x3 convolution (torchvision
  "v1.5"). Feature: global average pool of the last block (paper: "average pooling layer ... 2048").
- ``"vgg19"``: torchvision VGG-19 layout (``features.N``, ``classifier.0/3/6``), STILT Table 6.
- ``"bn_inception"``: BN-Inception (Ioffe & Szegedy 2015) in the TSN key layout, optionally with an SE block
  after each inception module (T-STAM section 2).

Every backbone maps ``[B', C_in, H, W]`` to its last convolutional maps (:meth:`Backbone2d.forward_maps`)
and to the paper's per-frame feature (:meth:`Backbone2d.forward`). ``in_channels != 3`` builds a first
convolution for stacked flow (``2L`` channels, x1, y1, ..., xL, yL); :func:`adapt_first_conv` and the loaders
initialise it from RGB weights with the TSN cross-modality initialisation (:func:`cross_modality_init`).

Input conventions (applied on the data side, documented here): the ResNets and VGG-19 expect torchvision's
RGB in [0, 1] normalised by the ImageNet mean / std; BN-Inception expects BGR in [0, 255] minus
(104, 117, 128), std 1 (TSN convention, ``normalize="bgr255"``). Flow: ``v / 255`` with mean 0.5 and std
0.226 for the torchvision nets, ``v - 128`` for BN-Inception (TSN convention).

Weights come from local files only (:func:`load_torchvision_resnet`, :func:`load_tsn_bninception`); nothing
is downloaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..registry import Registry
from .pretrained import LoadReport

__all__ = [
    "BACKBONES2D", "Backbone2d", "SEBlock", "ResNet2d", "VGG2d", "BNInception2d", "INCEPTION_MODULES",
    "fold_segments", "unfold_segments", "build_backbone2d", "cross_modality_init", "adapt_first_conv",
    "image_classifier", "load_torchvision_resnet", "load_tsn_bninception", "scaled",
]

BACKBONES2D: Registry["Backbone2d"] = Registry("backbone2d")


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1 (the teaching sizes scale every channel count)."""
    return max(1, int(round(channels * width)))


def _check_width(width: float) -> None:
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")


def _check_in_channels(in_channels: int) -> None:
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int (3 for RGB, 2L for a flow stack), got {in_channels!r}")


def fold_segments(x: Tensor) -> tuple[Tensor, int, int]:
    """Fold the segments of ``x`` into the batch for a 2D backbone.

    Shape:
        ``[B, C, N, H, W] -> ([B*N, C, H, W], B, N)``; frame ``n`` of sample ``b`` is row ``b*N + n``.
    """
    if x.dim() != 5:
        raise ValueError(f"fold_segments expects [B, C, N, H, W], got shape {list(x.shape)}")
    b, c, n, h, w = x.shape
    return x.transpose(1, 2).reshape(b * n, c, h, w), b, n  # [B*N, C, H, W]


def unfold_segments(y: Tensor, batch: int, segments: int) -> Tensor:
    """Inverse of the fold for per-frame outputs: ``[B*N, ...] -> [B, N, ...]``."""
    if y.shape[0] != batch * segments:
        raise ValueError(f"expected {batch} x {segments} = {batch * segments} rows, got {y.shape[0]}")
    return y.reshape(batch, segments, *y.shape[1:])  # [B, N, ...]


class Backbone2d(nn.Module):
    """Base of every 2D backbone: last conv maps and the pooled per-frame feature.

    Subclasses set ``feature_dim`` (channels of :meth:`forward`'s output), ``map_dim`` (channels of
    :meth:`forward_maps`), ``first_conv`` (attribute path of the first convolution, for
    :func:`adapt_first_conv`) and ``input_convention`` (what the data side must feed), and implement
    :meth:`forward_maps`. When built with ``num_classes`` (only :func:`image_classifier` does) the module also
    holds its published ImageNet classifier and :meth:`forward` returns its logits.

    Shape:
        ``forward_maps``: ``[B', C_in, H, W] -> [B', map_dim, h, w]``;
        ``forward``: ``[B', C_in, H, W] -> [B', feature_dim]`` (``[B', num_classes]`` with a classifier).
    """

    feature_dim: int  # channels of the pooled per-frame feature (the paper's feature)
    map_dim: int  # channels of the last convolutional maps
    first_conv: str  # attribute path of the first convolution ("conv1", "features.0", "conv1_7x7_s2")
    input_convention: str  # "imagenet_rgb" (torchvision) or "bgr255" (TSN BN-Inception)
    num_classes: int | None  # published classifier present (image_classifier) or None (backbone)

    def forward_maps(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def pool(self, maps: Tensor) -> Tensor:
        """Per-frame feature from the last maps; default: global average pool ``[B', C, h, w] -> [B', C]``."""
        return maps.mean(dim=(2, 3))

    def frame_features(self, x: Tensor) -> Tensor:
        """The per-frame feature ``[B', feature_dim]`` (also with a classifier attached)."""
        return self.pool(self.forward_maps(x))

    def classify(self, feature: Tensor) -> Tensor:
        raise RuntimeError(f"{type(self).__name__} was built without a classifier (use image_classifier)")

    def forward(self, x: Tensor) -> Tensor:
        f = self.frame_features(x)
        return f if self.num_classes is None else self.classify(f)

    @property
    def in_channels(self) -> int:
        """Input channels of the first convolution (3 for RGB, ``2L`` for a flow stack)."""
        return self.get_first_conv().in_channels

    def get_first_conv(self) -> nn.Conv2d:
        """The first convolution (the one a flow stream replaces)."""
        return self.get_submodule(self.first_conv)  # type: ignore[return-value]

    def set_first_conv(self, conv: nn.Conv2d) -> None:
        parent, _, name = self.first_conv.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, name, conv)


# --------------------------------------------------------------------------------------------------- ResNet
class BasicBlock2d(nn.Module):
    """ResNet-18/34 block (torchvision names ``conv1, bn1, conv2, bn2, downsample.0/1``).

    Shape:
        ``[B, C_in, H, W] -> [B, planes, H / stride, W / stride]``.
    """

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_ch, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck2d(nn.Module):
    """ResNet-50 bottleneck, expansion 4, stride on the 3x3 convolution (torchvision "v1.5"; reading: spec).

    Shape:
        ``[B, C_in, H, W] -> [B, 4 planes, H / stride, W / stride]``.
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _downsample(in_ch: int, out_ch: int, stride: int) -> nn.Sequential | None:
    """Projection shortcut (1x1 strided conv + BN, torchvision ``downsample.0/1``) when the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


_RESNET_SPECS: dict[str, tuple[type[BasicBlock2d] | type[Bottleneck2d], tuple[int, int, int, int]]] = {
    "resnet34": (BasicBlock2d, (3, 4, 6, 3)),  # He et al. 2016, Table 1
    "resnet50": (Bottleneck2d, (3, 4, 6, 3)),  # He et al. 2016, Table 1; STILT Table 2
}


class ResNet2d(Backbone2d):
    """ResNet-34 / ResNet-50 in the torchvision layout (STILT Table 2 and Table 6).

    ``conv1`` 7x7 stride 2 -> BN -> ReLU -> 3x3 max-pool stride 2 (reading: Table 2's "7x7" pool is a typo)
    -> ``layer1..4`` (strides 1, 2, 2, 2) -> global average pool (paper: the 2048-d ResNet-50 feature).
    ``width`` scales every channel count (teaching sizes); ``in_channels`` is 3 for RGB, ``2L`` for flow.
    Input: RGB in [0, 1] with ImageNet mean / std (torchvision convention).

    Shape:
        ``forward_maps``: ``[B', C_in, H, W] -> [B', feature_dim, H/32, W/32]`` (7 x 7 at 224);
        ``forward``: ``[B', C_in, H, W] -> [B', feature_dim]`` (2048 for ResNet-50, 512 for ResNet-34).
    """

    first_conv = "conv1"
    input_convention = "imagenet_rgb"

    def __init__(self, depth: Literal["resnet34", "resnet50"] = "resnet50", *, in_channels: int = 3,
                 width: float = 1.0, num_classes: int | None = None) -> None:
        super().__init__()
        if depth not in _RESNET_SPECS:
            raise ValueError(f"depth must be one of {sorted(_RESNET_SPECS)}, got {depth!r}")
        _check_in_channels(in_channels)
        _check_width(width)
        block, layers = _RESNET_SPECS[depth]
        self.depth, self.width, self.num_classes = depth, width, num_classes
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)  # reading: 3x3 (Table 2 prints 7x7, a typo)
        in_ch = stem
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            planes = scaled(planes, width)
            blocks = []
            for j in range(n):
                blocks.append(block(in_ch, planes, stride=(1 if i == 0 else 2) if j == 0 else 1))
                in_ch = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.feature_dim = self.map_dim = in_ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if num_classes is not None:
            self.fc = nn.Linear(in_ch, num_classes)  # torchvision's ImageNet classifier

    def forward_maps(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [B', 64w, H/4, W/4]
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B', feature_dim, H/32, W/32]
        return x

    def classify(self, feature: Tensor) -> Tensor:
        return self.fc(feature)


@BACKBONES2D.register("resnet50")
def _resnet50(*, in_channels: int = 3, width: float = 1.0, num_classes: int | None = None) -> ResNet2d:
    return ResNet2d("resnet50", in_channels=in_channels, width=width, num_classes=num_classes)


@BACKBONES2D.register("resnet34")
def _resnet34(*, in_channels: int = 3, width: float = 1.0, num_classes: int | None = None) -> ResNet2d:
    return ResNet2d("resnet34", in_channels=in_channels, width=width, num_classes=num_classes)


# --------------------------------------------------------------------------------------------------- VGG-19
_VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                     512, 512, 512, 512, "M", 512, 512, 512, 512, "M")  # Simonyan & Zisserman 2015, Table 1 (E)
VGGFeature = Literal["fc7", "pool5"]


class VGG2d(Backbone2d):
    """VGG-19 in the torchvision layout (``features.N``, ``avgpool``, ``classifier.0/3/6``), STILT Table 6
    (section 4.4).

    Reading (STILT only says it swaps ResNet-50 for VGG-19, Table 6): the per-frame feature is **fc7**
    (``feature="fc7"``, 4096-d, after ReLU; fc6 -> ReLU -> dropout -> fc7 -> ReLU), the two-stream VGG
    practice (Simonyan & Zisserman 2014; Feichtenhofer et al. 2016; TSN's VGG baselines) and the layer that
    keeps the ImageNet weights of ``classifier.0/3`` (~120 M of VGG-19's 143.7 M parameters) in use.
    ``feature="pool5"`` is the alternative: global average of the conv5 block, 512-d, no FC layers built.
    ``pool_size`` is the adaptive pool before fc6 (7, torchvision; smaller values shrink fc6 for teaching
    sizes, but then ``classifier.0`` no longer loads from an ImageNet checkpoint).
    Input: RGB in [0, 1] with ImageNet mean / std (torchvision convention).

    Shape:
        ``forward_maps``: ``[B', C_in, H, W] -> [B', 512 w, H/32, W/32]`` (conv5 block after pool5, 7 x 7 at 224);
        ``forward``: ``[B', C_in, H, W] -> [B', feature_dim]`` (4096 w for fc7, 512 w for pool5).
    """

    first_conv = "features.0"
    input_convention = "imagenet_rgb"

    def __init__(self, *, in_channels: int = 3, width: float = 1.0, feature: VGGFeature = "fc7",
                 pool_size: int = 7, dropout: float = 0.5, num_classes: int | None = None) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        if feature not in ("fc7", "pool5"):
            raise ValueError(f"feature must be 'fc7' or 'pool5', got {feature!r}")
        if num_classes is not None and feature != "fc7":
            raise ValueError("a VGG-19 image classifier needs feature='fc7' (its classifier runs through fc7)")
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, got {pool_size!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.width, self.feature, self.num_classes = width, feature, num_classes
        layers: list[nn.Module] = []
        ch = in_channels
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                out = scaled(int(v), width)
                layers += [nn.Conv2d(ch, out, 3, padding=1), nn.ReLU(inplace=True)]
                ch = out
        self.features = nn.Sequential(*layers)
        self.map_dim = ch
        if feature == "fc7":
            hidden = scaled(4096, width)
            self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
            fcs: list[nn.Module] = [nn.Linear(ch * pool_size * pool_size, hidden), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True)]
            if num_classes is not None:
                fcs += [nn.Dropout(dropout), nn.Linear(hidden, num_classes)]  # classifier.5 / .6 (ImageNet)
            self.classifier = nn.Sequential(*fcs)
            self.feature_dim = hidden
        else:
            self.feature_dim = ch
        for m in self.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_maps(self, x: Tensor) -> Tensor:
        return self.features(x)  # [B', 512 w, H/32, W/32]

    def pool(self, maps: Tensor) -> Tensor:
        if self.feature == "pool5":
            return maps.mean(dim=(2, 3))  # [B', 512 w]
        x = self.avgpool(maps).flatten(1)  # [B', 512 w * pool_size^2]
        return self.classifier[:5](x)  # fc6 -> ReLU -> dropout -> fc7 -> ReLU: [B', 4096 w]

    def classify(self, feature: Tensor) -> Tensor:
        return self.classifier[5:](feature)


@BACKBONES2D.register("vgg19")
def _vgg19(*, in_channels: int = 3, width: float = 1.0, feature: VGGFeature = "fc7", pool_size: int = 7,
           dropout: float = 0.5, num_classes: int | None = None) -> VGG2d:
    return VGG2d(in_channels=in_channels, width=width, feature=feature, pool_size=pool_size, dropout=dropout,
                 num_classes=num_classes)


# ----------------------------------------------------------------------------------------------------- SE
class SEBlock(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018; T-STAM section 2): global average pool ("squeeze"),
    FC ``C -> C // r`` + ReLU, FC ``C // r -> C`` + sigmoid ("excitation"), channels rescaled by the weights.
    ``r = 16`` in T-STAM (paper: "reduces channel dimension to 1/16"); the hidden size is at least 1.

    Shape:
        ``[B, C, H, W] -> [B, C, H, W]``; :meth:`channel_weights`: ``[B, C, H, W] -> [B, C]`` in (0, 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(reduction, int) or isinstance(reduction, bool) or reduction < 1:
            raise ValueError(f"se_reduction must be a positive int, got {reduction!r}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)

    def channel_weights(self, x: Tensor) -> Tensor:
        """The excitation weights ``sigmoid(W2 relu(W1 GAP(x)))``, ``[B, C]``, each in (0, 1)."""
        z = x.mean(dim=(2, 3))  # squeeze: [B, C]
        return torch.sigmoid(self.fc2(self.relu(self.fc1(z))))  # excitation: [B, C]

    def attention_map(self, x: Tensor) -> Tensor:
        """The excitation weights this module applies to ``x`` (:meth:`channel_weights`), ``[B, C]``."""
        return self.channel_weights(x)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.channel_weights(x)[:, :, None, None]  # recalibration: [B, C, H, W]


# -------------------------------------------------------------------------------------------- BN-Inception
#: The ten inception modules of BN-Inception (T-STAM's text says 9; the network has 10, spec).
INCEPTION_MODULES: tuple[str, ...] = ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")

# Ioffe & Szegedy 2015, Figure 5, as in the TSN / pretrainedmodels BN-Inception:
# full module: (1x1, 3x3_reduce, 3x3, double_3x3_reduce, double_3x3_1, double_3x3_2, pool, pool_proj);
# reduction module (3c, 4e; 1x1 = pool_proj = 0): strided 3x3 and double 3x3, 3x3/2 max-pool passed through.
_INCEPTION_SPECS: dict[str, tuple[int, int, int, int, int, int, str, int]] = {
    "3a": (64, 64, 64, 64, 96, 96, "avg", 32),
    "3b": (64, 64, 96, 64, 96, 96, "avg", 64),
    "3c": (0, 128, 160, 64, 96, 96, "max_s2", 0),
    "4a": (224, 64, 96, 96, 128, 128, "avg", 128),
    "4b": (192, 96, 128, 96, 128, 128, "avg", 128),
    "4c": (160, 128, 160, 128, 160, 160, "avg", 128),
    "4d": (96, 128, 192, 160, 192, 192, "avg", 128),
    "4e": (0, 128, 192, 192, 256, 256, "max_s2", 0),
    "5a": (352, 192, 320, 160, 224, 224, "avg", 128),
    "5b": (352, 192, 320, 192, 224, 224, "max", 128),
}


def _se_modules(se: bool | Sequence[str]) -> tuple[str, ...]:
    """``se`` -> the module names that get an SE block (``True`` = all ten, ``False`` = none)."""
    if se is True:
        return INCEPTION_MODULES
    if se is False:
        return ()
    if isinstance(se, str):
        raise ValueError(f"se must be a bool or a list of inception module names, got the string {se!r}")
    names = tuple(str(n).removeprefix("inception_") for n in se)
    if bad := [n for n in names if n not in INCEPTION_MODULES]:
        raise ValueError(f"se: unknown inception module(s) {bad}; expected names from {list(INCEPTION_MODULES)}")
    return tuple(n for n in INCEPTION_MODULES if n in names)


class BNInception2d(Backbone2d):
    """BN-Inception (Ioffe & Szegedy 2015) in the TSN key layout, optionally SE-BN-Inception (T-STAM).

    Keys as in tsn-pytorch / pretrainedmodels: ``conv1_7x7_s2(_bn)``, ``conv2_3x3_reduce(_bn)``,
    ``conv2_3x3(_bn)``, ``inception_{m}_{1x1, 3x3_reduce, 3x3, double_3x3_reduce, double_3x3_1,
    double_3x3_2, pool_proj}(_bn)``; the ImageNet classifier is ``fc`` (TSN's name; pretrainedmodels calls it
    ``last_linear``, which :func:`load_tsn_bninception` maps). Convolutions have biases (Caffe origin), max
    pools use ``ceil_mode`` as in the reference. The backbone is kept up to its last convolutional layer
    (paper, T-STAM section 2): :meth:`forward_maps` returns the ``inception_5b`` output (1024 x 7 x 7 at 224),
    :meth:`forward` its global average (1024-d, TSN convention).

    SE (paper, T-STAM section 2): an :class:`SEBlock` after the concatenation of each listed inception module
    (``se=True``: all ten, 646,398 parameters at reduction 16 — reading: the text says "9 inception
    operations", BN-Inception has 10); SE keys ``inception_{m}_se.fc1/fc2``.
    Input: BGR in [0, 255] minus (104, 117, 128), std 1; flow minus 128 (TSN convention, ``bgr255``).

    Shape:
        ``forward_maps``: ``[B', C_in, H, W] -> [B', 1024 w, ~H/32, ~W/32]``;
        ``forward``: ``[B', C_in, H, W] -> [B', feature_dim]`` (1024 at width 1).
    """

    first_conv = "conv1_7x7_s2"
    input_convention = "bgr255"

    def __init__(self, *, in_channels: int = 3, width: float = 1.0, se: bool | Sequence[str] = False,
                 se_reduction: int = 16, num_classes: int | None = None) -> None:
        super().__init__()
        _check_in_channels(in_channels)
        _check_width(width)
        self.width, self.num_classes = width, num_classes
        self.se_modules = _se_modules(se)
        w = lambda c: scaled(c, width)  # noqa: E731
        self._conv_bn("conv1_7x7_s2", in_channels, w(64), 7, stride=2, padding=3)
        self.pool1_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self._conv_bn("conv2_3x3_reduce", w(64), w(64), 1)
        self._conv_bn("conv2_3x3", w(64), w(192), 3, padding=1)
        self.pool2_3x3_s2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        ch = w(192)
        for m in INCEPTION_MODULES:
            c1, r3, c3, rd, d1, d2, pool, pp = _INCEPTION_SPECS[m]
            p = f"inception_{m}"
            s = 2 if pool == "max_s2" else 1
            out = 0
            if c1:
                self._conv_bn(f"{p}_1x1", ch, w(c1), 1)
                out += w(c1)
            self._conv_bn(f"{p}_3x3_reduce", ch, w(r3), 1)
            self._conv_bn(f"{p}_3x3", w(r3), w(c3), 3, stride=s, padding=1)
            self._conv_bn(f"{p}_double_3x3_reduce", ch, w(rd), 1)
            self._conv_bn(f"{p}_double_3x3_1", w(rd), w(d1), 3, padding=1)
            self._conv_bn(f"{p}_double_3x3_2", w(d1), w(d2), 3, stride=s, padding=1)
            out += w(c3) + w(d2)
            if pool == "avg":
                setattr(self, f"{p}_pool", nn.AvgPool2d(3, stride=1, padding=1, ceil_mode=True, count_include_pad=True))
            elif pool == "max":
                setattr(self, f"{p}_pool", nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True))
            else:
                setattr(self, f"{p}_pool", nn.MaxPool2d(3, stride=2, ceil_mode=True))
            if pp:
                self._conv_bn(f"{p}_pool_proj", ch, w(pp), 1)
                out += w(pp)
            else:
                out += ch  # the strided max-pool branch passes its input channels through
            if m in self.se_modules:
                setattr(self, f"{p}_se", SEBlock(out, se_reduction))
            ch = out
        self.feature_dim = self.map_dim = ch
        if num_classes is not None:
            self.fc = nn.Linear(ch, num_classes)  # TSN's name ("last_linear" in pretrainedmodels)

    def _conv_bn(self, name: str, in_ch: int, out_ch: int, k: int, *, stride: int = 1, padding: int = 0) -> None:
        setattr(self, name, nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=padding))
        setattr(self, f"{name}_bn", nn.BatchNorm2d(out_ch))

    def _cbr(self, name: str, x: Tensor) -> Tensor:
        """conv -> BN -> ReLU of layer ``name``."""
        return torch.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))

    def inception(self, m: str, x: Tensor) -> Tensor:
        """Inception module ``m`` (``"3a"`` ... ``"5b"``), with its SE block when it has one.

        Shape:
            ``[B', C_in, H, W] -> [B', C_out, H', W']`` (``H' = ceil(H / 2)`` for 3c and 4e).
        """
        p = f"inception_{m}"
        branches = []
        if hasattr(self, f"{p}_1x1"):
            branches.append(self._cbr(f"{p}_1x1", x))
        branches.append(self._cbr(f"{p}_3x3", self._cbr(f"{p}_3x3_reduce", x)))
        d = self._cbr(f"{p}_double_3x3_reduce", x)
        branches.append(self._cbr(f"{p}_double_3x3_2", self._cbr(f"{p}_double_3x3_1", d)))
        pooled = getattr(self, f"{p}_pool")(x)
        branches.append(self._cbr(f"{p}_pool_proj", pooled) if hasattr(self, f"{p}_pool_proj") else pooled)
        out = torch.cat(branches, dim=1)  # [B', C_out, H', W']
        if m in self.se_modules:
            out = getattr(self, f"{p}_se")(out)  # T-STAM: SE after the concatenation
        return out

    def forward_maps(self, x: Tensor) -> Tensor:
        x = self.pool1_3x3_s2(self._cbr("conv1_7x7_s2", x))  # [B', 64 w, H/4, W/4]
        x = self.pool2_3x3_s2(self._cbr("conv2_3x3", self._cbr("conv2_3x3_reduce", x)))  # [B', 192 w, H/8, W/8]
        for m in INCEPTION_MODULES:
            x = self.inception(m, x)
        return x  # [B', 1024 w, H/32, W/32]

    def classify(self, feature: Tensor) -> Tensor:
        return self.fc(feature)


@BACKBONES2D.register("bn_inception")
def _bn_inception(*, in_channels: int = 3, width: float = 1.0, se: bool | Sequence[str] = False,
                  se_reduction: int = 16, num_classes: int | None = None) -> BNInception2d:
    return BNInception2d(in_channels=in_channels, width=width, se=se, se_reduction=se_reduction,
                         num_classes=num_classes)


# ------------------------------------------------------------------------------------------ public builders
def build_backbone2d(name: str, *, in_channels: int = 3, width: float = 1.0, se: bool | Sequence[str] = False,
                     se_reduction: int = 16, **kwargs: Any) -> Backbone2d:
    """Build backbone ``name`` (one of ``BACKBONES2D.names()``) without its ImageNet classifier.

    ``in_channels``: 3 for RGB, ``2L`` for a flow stack (a fresh first convolution; initialise it from RGB
    weights with :func:`adapt_first_conv` or let a loader do it). ``width`` scales every channel count
    (teaching sizes, e.g. 0.25). ``se`` / ``se_reduction``: squeeze-and-excitation after the inception
    modules, BN-Inception only (``True`` = all ten, or a list of module names, see ``INCEPTION_MODULES``).
    ``kwargs`` go to the family's builder (e.g. ``feature=`` for VGG-19).
    """
    if "num_classes" in kwargs:
        raise ValueError("build_backbone2d builds backbones without a classifier; use image_classifier(name, num_classes)")
    return _build(name, in_channels=in_channels, width=width, se=se, se_reduction=se_reduction, **kwargs)


def _build(name: str, *, in_channels: int, width: float, se: bool | Sequence[str], se_reduction: int,
           **kwargs: Any) -> Backbone2d:
    builder = BACKBONES2D.get(name)  # KeyError listing the known names
    if name == "bn_inception":
        kwargs.update(se=se, se_reduction=se_reduction)
    elif se is not False and se != ():
        raise ValueError(f"se is only available for 'bn_inception' (T-STAM's SE-BN-Inception), not {name!r}")
    return builder(in_channels=in_channels, width=width, **kwargs)


def image_classifier(name: str, num_classes: int = 1000, **kwargs: Any) -> Backbone2d:
    """Backbone ``name`` with its published ImageNet classifier (ResNet ``fc``, VGG ``classifier.6``,
    BN-Inception ``fc``), in the published key layout; ``forward`` returns logits ``[B', num_classes]``.

    At 1000 classes the parameter counts are torchvision's (ResNet-50 25,557,032; ResNet-34 21,797,672;
    VGG-19 143,667,240). BN-Inception: 11,295,240, the count of the tsn-pytorch / pretrainedmodels
    ``BNInception(num_classes=1000)`` (no printed figure; our keys and shapes equal that reference's).
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    kwargs.setdefault("in_channels", 3)
    kwargs.setdefault("width", 1.0)
    kwargs.setdefault("se", False)
    kwargs.setdefault("se_reduction", 16)
    return _build(name, num_classes=num_classes, **kwargs)


def cross_modality_init(rgb_weight: Tensor, in_channels: int) -> Tensor:
    """TSN convention (Wang et al. 2016, section 3.2 "cross modality pre-training"; not stated in STILT):
    average an RGB first-layer kernel over its 3 input channels and repeat the mean ``in_channels`` times.

    Shape:
        ``[C_out, 3, k, k] -> [C_out, in_channels, k, k]``.
    """
    if rgb_weight.dim() != 4:
        raise ValueError(f"rgb_weight must be a conv kernel [C_out, C_in, k, k], got shape {list(rgb_weight.shape)}")
    _check_in_channels(in_channels)
    mean = rgb_weight.mean(dim=1, keepdim=True)  # [C_out, 1, k, k]
    return mean.expand(-1, in_channels, -1, -1).contiguous()  # [C_out, in_channels, k, k]


def adapt_first_conv(backbone: Backbone2d, in_channels: int) -> Backbone2d:
    """Replace ``backbone``'s first convolution by one with ``in_channels`` inputs whose kernel is
    :func:`cross_modality_init` of the current one (bias kept). Modifies and returns ``backbone``."""
    _check_in_channels(in_channels)
    old = backbone.get_first_conv()
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding,
                    dilation=old.dilation, groups=old.groups, bias=old.bias is not None,
                    device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(cross_modality_init(old.weight, in_channels))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    backbone.set_first_conv(new)
    return backbone


# ------------------------------------------------------------------------------------------------- loaders
def _read_state(source: str | Path | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state dict from a local file (``torch.load(weights_only=True)``) or a mapping; the usual
    ``state_dict`` / ``model`` wrappers and a DataParallel ``module.`` prefix are removed."""
    state: Any = torch.load(Path(source), map_location="cpu", weights_only=True) if isinstance(source, (str, Path)) else source
    for wrapper in ("state_dict", "model_state", "model"):
        if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise ValueError(f"expected a state dict (a mapping of names to tensors), got {type(state).__name__}")
    return {k.removeprefix("module.").removeprefix("base_model."): v for k, v in state.items()}


def _squeeze_leading(value: Tensor, shape: torch.Size) -> Tensor | None:
    """``value`` without leading singleton dims when that gives ``shape`` (Caffe ``[1, C]`` BN vectors)."""
    while value.dim() > len(shape) and value.shape[0] == 1:
        value = value[0]
    return value if value.shape == shape else None


def _load_by_name(model: Backbone2d, state: Mapping[str, Tensor], layout: str, *, strict: bool,
                  rename: Callable[[str], str | None] | None = None) -> LoadReport:
    """Copy every checkpoint tensor whose (renamed) key and shape match ``model``; a 3-input first conv into
    a ``C_in != 3`` first conv goes through :func:`cross_modality_init` (reported in ``matched`` with a
    ``" (cross-modality init)"`` suffix). BatchNorm ``num_batches_tracked`` counters (absent from old and
    Caffe-converted files, unused in training with a fixed momentum) are not reported missing."""
    own = model.state_dict()
    first_w = f"{model.first_conv}.weight"
    report, new = LoadReport(layout), {}
    for key, value in state.items():
        ours = rename(key) if rename is not None else key
        if ours is None or ours not in own:
            report.unexpected.append(key)
            continue
        target = own[ours]
        if (ours == first_w and value.dim() == 4 and value.shape[1] == 3 and target.shape[1] != 3
                and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]):
            new[ours] = cross_modality_init(value, target.shape[1])
            report.matched.append(f"{ours} (cross-modality init)")
        elif target.shape != value.shape and (squeezed := _squeeze_leading(value, target.shape)) is not None:
            new[ours] = squeezed
            report.matched.append(ours)
        elif target.shape != value.shape:
            report.mismatched.append((ours, tuple(value.shape), tuple(target.shape)))
        else:
            new[ours] = value
            report.matched.append(ours)
    report.missing = sorted(k for k in set(own) - set(new) if not k.endswith("num_batches_tracked"))
    if strict and (report.missing or report.unexpected or report.mismatched):
        raise RuntimeError(f"strict load failed: {report.summary()}; missing {report.missing[:5]}, "
                           f"unexpected {report.unexpected[:5]}, mismatched {report.mismatched[:5]}")
    model.load_state_dict(new, strict=False)
    return report


def load_torchvision_resnet(model: Backbone2d, source: str | Path | Mapping[str, Tensor], *,
                            strict: bool = False) -> LoadReport:
    """Load a torchvision ResNet (or VGG) ImageNet checkpoint from a local file or a state dict.

    Keys are matched by name (the layouts are identical) and shape. A 3-channel ``conv1`` loaded into a
    flow network (``in_channels = 2L``) is converted with :func:`cross_modality_init` (TSN convention) and
    reported as ``"conv1.weight (cross-modality init)"`` in ``matched``; a backbone built without a classifier
    reports the checkpoint's ``fc.*`` as unexpected. ``strict=True`` raises unless every key matched.
    """
    return _load_by_name(model, _read_state(source), "torchvision", strict=strict)


def _tsn_key(key: str) -> str:
    """TSN / pretrainedmodels BN-Inception key -> ours (only the classifier name differs)."""
    return "fc." + key.removeprefix("last_linear.") if key.startswith("last_linear.") else key


def load_tsn_bninception(model: Backbone2d, source: str | Path | Mapping[str, Tensor], *,
                         strict: bool = False) -> LoadReport:
    """Load a TSN / pretrainedmodels BN-Inception checkpoint (local file or state dict) into ``model``.

    Keys are matched by name (pretrainedmodels' ``last_linear`` is our ``fc``; a TSN-trained model's
    ``module.`` / ``base_model.`` prefixes are removed) and shape; the Caffe-converted TSN file stores BN
    vectors as ``[1, C]`` (tsn-pytorch squeezes dim 0 on load), and so does this loader. A 3-channel
    ``conv1_7x7_s2`` loaded into a flow network gets :func:`cross_modality_init` (TSN convention, reported
    in ``matched``). SE weights are absent from ImageNet BN-Inception files: they are reported missing and
    stay at their initialisation. ``strict=True`` raises unless every key matched.
    """
    return _load_by_name(model, _read_state(source), "tsn_bninception", strict=strict, rename=_tsn_key)
