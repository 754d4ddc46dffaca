"""Zero-DCE and Zero-DCE++: low-light enhancement by image-specific curve estimation.

Zero-DCE (Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement", CVPR 2020)
predicts, for every pixel and colour channel, the parameters of a quadratic light-enhancement (LE) curve and
applies it iteratively. Zero-DCE++ (Li, Guo & Loy, "Learning to Enhance Low-Light Image via Zero-Reference
Deep Curve Estimation", TPAMI 2021) makes the estimator depthwise-separable, shares one curve map across all
iterations and estimates it on a downscaled copy of the input.

Read top to bottom:
  1. the LE curve (Eq. 1-3) as plain functions,
  2. Zero-DCE: config + DCE-Net (7 conv layers, symmetric skip concatenations, 24 tanh maps) -> 79,416 params,
  3. Zero-DCE++: config + depthwise-separable DCE-Net (3 tanh maps, downscaled estimation) -> 10,561 params,
  4. loading the official PyTorch checkpoints (sign convention, ``module.`` prefixes).

Sign convention: the paper writes LE(x) = x + a x (1 - x) (used here); the official code computes
x + r (x^2 - x) = x - r x (1 - x), i.e. r = -a. `convert_official_state_dict` negates the last layer, which
(tanh being odd) turns an official checkpoint into an exactly equivalent one for this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------------------
# 1. The light-enhancement curve
# --------------------------------------------------------------------------------------------------------


def le_curve(x: Tensor, a: Tensor | float) -> Tensor:
    """One quadratic light-enhancement curve step, LE(x; a) = x + a x (1 - x).  # Eq. (1)

    For x in [0, 1] and a in [-1, 1] the output stays in [0, 1], LE(0) = 0, LE(1) = 1, and the curve is
    monotonically increasing in x (dLE/dx = 1 + a (1 - 2x) >= 0). a = 0 is the identity.

    Shape:
        x: any shape; a: broadcastable to x (a pixel-wise map A(x) gives Eq. (3)). Output: shape of x.
    """
    return x + a * x * (1.0 - x)


def apply_curves(x: Tensor, curves: Tensor, iterations: int = 8) -> Tensor:
    """Apply the LE curve `iterations` times with pixel-wise parameter maps.  # Eq. (2)/(3)

    LE_n(x) = LE_{n-1}(x) + A_n(x) LE_{n-1}(x) (1 - LE_{n-1}(x)), n = 1..iterations.

    `curves` holds either one map per iteration (Zero-DCE: 3 * iterations channels, iteration n uses channels
    [3(n-1), 3n)) or a single 3-channel map shared by all iterations (Zero-DCE++).

    Shape:
        x: [N, 3, H, W] in [0, 1]; curves: [N, 3 * iterations, H, W] or [N, 3, H, W]. Output: [N, 3, H, W].
    """
    if curves.shape[-2:] != x.shape[-2:] or curves.shape[0] != x.shape[0]:
        raise ValueError(f"curves shape {tuple(curves.shape)} does not match x shape {tuple(x.shape)}")
    c = x.shape[1]
    if curves.shape[1] == c:
        maps = [curves] * iterations
    elif curves.shape[1] == c * iterations:
        maps = list(torch.split(curves, c, dim=1))
    else:
        raise ValueError(
            f"curves has {curves.shape[1]} channels; expected {c} (shared) or {c * iterations} "
            f"(= 3 x iterations={iterations})"
        )
    for a in maps:
        x = le_curve(x, a)
    return x


def _check_images(x: Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------------------
# 2. Zero-DCE
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeroDCEConfig:
    """DCE-Net hyper-parameters; the defaults are the paper's (and give 79,416 parameters)."""

    channels: int = 32  # feature maps per hidden conv layer (paper: 32)
    iterations: int = 8  # curve iterations n in Eq. (2); conv7 outputs 3 * iterations maps (paper: 8)

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")

    @classmethod
    def paper(cls, **overrides: Any) -> "ZeroDCEConfig":
        """The paper's DCE-Net (= the defaults), with ``overrides``. There is no separate teaching size: the
        paper's 79,416-parameter network already trains in minutes on a CPU."""
        return cls(**{"channels": 32, "iterations": 8, **overrides})


class ZeroDCE(nn.Module):
    """DCE-Net: 7 plain 3x3 conv layers (stride 1, padding 1) with ReLU and symmetric skip concatenations.

    conv1-conv4 go straight down, then conv5 <- cat[x3, x4], conv6 <- cat[x2, x5], conv7 <- cat[x1, x6];
    conv7 emits 3 * iterations maps through tanh: the curve parameters A_n of Eq. (3), one per iteration
    and colour channel. Layer names follow the official code (e_conv1 .. e_conv7).

    Shape:
        forward: x [N, 3, H, W] in [0, 1] -> (enhanced [N, 3, H, W], curve_maps [N, 3 * iterations, H, W]).
    """

    def __init__(self, cfg: ZeroDCEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ZeroDCEConfig()
        f = cfg.channels
        self.e_conv1 = nn.Conv2d(3, f, 3, 1, 1, bias=True)
        self.e_conv2 = nn.Conv2d(f, f, 3, 1, 1, bias=True)
        self.e_conv3 = nn.Conv2d(f, f, 3, 1, 1, bias=True)
        self.e_conv4 = nn.Conv2d(f, f, 3, 1, 1, bias=True)
        self.e_conv5 = nn.Conv2d(2 * f, f, 3, 1, 1, bias=True)
        self.e_conv6 = nn.Conv2d(2 * f, f, 3, 1, 1, bias=True)
        self.e_conv7 = nn.Conv2d(2 * f, 3 * cfg.iterations, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def estimate_curves(self, x: Tensor) -> Tensor:
        """Curve parameter maps A_1..A_n in [-1, 1].

        Shape:
            x: [N, 3, H, W] -> [N, 3 * iterations, H, W].
        """
        _check_images(x)
        x1 = self.relu(self.e_conv1(x))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))

    def apply_curves(self, x: Tensor, curves: Tensor) -> Tensor:
        """Enhance `x` with given curve maps (used by temporal smoothing in `stia_kit.enhance.video`).

        Shape:
            x: [N, 3, H, W]; curves: [N, 3 * iterations, H, W] -> [N, 3, H, W].
        """
        return apply_curves(x, curves, self.cfg.iterations)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Shape: x [N, 3, H, W] -> (enhanced [N, 3, H, W], curve_maps [N, 3 * iterations, H, W])."""
        curves = self.estimate_curves(x)
        return self.apply_curves(x, curves), curves


# --------------------------------------------------------------------------------------------------------
# 3. Zero-DCE++
# --------------------------------------------------------------------------------------------------------

PAPER_SCALE_FACTOR = 12  # Zero-DCE++ inference default: curves estimated on a 12x downscaled input


@dataclass(frozen=True)
class ZeroDCEPPConfig:
    """Zero-DCE++ hyper-parameters; the defaults give 10,561 parameters.

    `scale_factor` 1 is what the official code trains with; the paper runs inference with 12
    (``ZeroDCEPPConfig.paper()``), which makes the estimator ~144x cheaper at high resolution.
    """

    channels: int = 32  # feature maps per hidden depthwise-separable layer (paper: 32)
    iterations: int = 8  # how many times the single shared curve map is applied, Eq. (2) (paper: 8)
    scale_factor: float = 1.0  # curves estimated on the input downscaled by this factor (>= 1)

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not self.scale_factor >= 1.0:
            raise ValueError(f"scale_factor must be >= 1 (a downscale factor), got {self.scale_factor}")

    @classmethod
    def paper(cls, **overrides: Any) -> "ZeroDCEPPConfig":
        """The paper's inference setting (curves estimated at 1/12 scale), with ``overrides``."""
        return cls(**{"channels": 32, "iterations": 8, "scale_factor": PAPER_SCALE_FACTOR, **overrides})


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 conv (groups = in_ch) followed by a pointwise 1x1 conv, both with bias.

    Named `CSDN_Tem` in the official code; the sub-module names (depth_conv, point_conv) match it.

    Shape:
        [N, in_ch, H, W] -> [N, out_ch, H, W].
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(in_ch, in_ch, kernel_size=3, stride=1, padding=1, groups=in_ch, bias=True)
        self.point_conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=1, padding=0, groups=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.point_conv(self.depth_conv(x))


class ZeroDCEPP(nn.Module):
    """Zero-DCE++: the DCE-Net skip structure with depthwise-separable layers and one shared curve map.

    The estimator runs on the input downscaled by `scale_factor` (bilinear); its 3 tanh maps are upsampled
    (bilinear, align_corners=True as the official ``nn.UpsamplingBilinear2d``) back to the input size and
    applied `iterations` times. Unlike the official code, which upsamples by the same factor and so needs
    H, W divisible by it, we upsample to the exact input size, so any resolution works.

    Shape:
        forward: x [N, 3, H, W] in [0, 1] -> (enhanced [N, 3, H, W], curve_maps [N, 3, H, W]).
    """

    def __init__(self, cfg: ZeroDCEPPConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ZeroDCEPPConfig()
        f = cfg.channels
        self.e_conv1 = DepthwiseSeparableConv(3, f)
        self.e_conv2 = DepthwiseSeparableConv(f, f)
        self.e_conv3 = DepthwiseSeparableConv(f, f)
        self.e_conv4 = DepthwiseSeparableConv(f, f)
        self.e_conv5 = DepthwiseSeparableConv(2 * f, f)
        self.e_conv6 = DepthwiseSeparableConv(2 * f, f)
        self.e_conv7 = DepthwiseSeparableConv(2 * f, 3)
        self.relu = nn.ReLU(inplace=True)

    def estimate_curves(self, x: Tensor) -> Tensor:
        """The shared curve map A in [-1, 1], at full input resolution.

        Shape:
            x: [N, 3, H, W] -> [N, 3, H, W].
        """
        _check_images(x)
        h, w = x.shape[-2:]
        s = self.cfg.scale_factor
        if s == 1:
            x_down = x
        else:
            size = (max(1, int(h / s)), max(1, int(w / s)))
            x_down = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x1 = self.relu(self.e_conv1(x_down))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        a = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if a.shape[-2:] != (h, w):
            a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=True)
        return a

    def apply_curves(self, x: Tensor, curves: Tensor) -> Tensor:
        """Enhance `x` with a given shared curve map.

        Shape:
            x: [N, 3, H, W]; curves: [N, 3, H, W] -> [N, 3, H, W].
        """
        return apply_curves(x, curves, self.cfg.iterations)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Shape: x [N, 3, H, W] -> (enhanced [N, 3, H, W], curve_maps [N, 3, H, W])."""
        curves = self.estimate_curves(x)
        return self.apply_curves(x, curves), curves


CurveModel = ZeroDCE | ZeroDCEPP

# --------------------------------------------------------------------------------------------------------
# 4. Checkpoints
# --------------------------------------------------------------------------------------------------------


def convert_official_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Turn a state dict from the official Zero-DCE / Zero-DCE++ repositories into one for these modules.

    Strips DataParallel ``module.`` prefixes and negates the last layer's output (weight and bias of
    ``e_conv7`` for Zero-DCE, of ``e_conv7.point_conv`` for Zero-DCE++): the official code applies
    x - r x (1 - x), and tanh(-z) = -tanh(z), so the converted model computes exactly the same images.
    """
    out: dict[str, Tensor] = {}
    for k, v in state_dict.items():
        k = k.removeprefix("module.")
        if k in ("e_conv7.weight", "e_conv7.bias", "e_conv7.point_conv.weight", "e_conv7.point_conv.bias"):
            v = -v
        out[k] = v
    return out


def load_curve_weights(model: nn.Module, path: str, official: bool = False) -> nn.Module:
    """Load weights saved with ``torch.save(model.state_dict())`` (or a training checkpoint dict with a
    ``"model"`` entry) safely: ``torch.load(..., weights_only=True)``. `official=True` converts a checkpoint
    of the official code with `convert_official_state_dict`."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj["model"] if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) else obj
    if official:
        state = convert_official_state_dict(state)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    return model
