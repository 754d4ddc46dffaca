"""The four non-reference losses of Zero-DCE (Guo et al., CVPR 2020, Sec. 3.3) and their weighted total.

Each loss follows the official PyTorch code (``Myloss.py``), which differs from the printed equations in
small, documented ways (noted per loss). Equation numbers refer to the CVPR 2020 paper.

All losses take images in [0, 1]. Shapes: images [N, 3, H, W]; curve maps [N, K, H, W].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------------------
# Spatial consistency, Eq. (4)
# --------------------------------------------------------------------------------------------------------


class SpatialConsistencyLoss(nn.Module):
    """L_spa: keep the differences between neighbouring regions of the enhanced image like the input's.  # Eq. (4)

    Paper: L_spa = 1/K sum_i sum_{j in Omega(i)} (|Y_i - Y_j| - |I_i - I_j|)^2 over 4x4 regions i and their
    4 neighbours Omega(i) (left, right, up, down), Y/I = region mean intensity of enhanced/input.
    Official code (used here): intensity = mean over RGB, 4x4 average pooling, *signed* neighbour differences
    D = Y_i - Y_j taken with 3x3 difference kernels and zero padding (so on the border the "neighbour" is 0),
    squared difference of the enhanced and input differences, summed over the 4 directions, then the mean
    over the pooled map and batch. Identical images (or input == enhanced) give 0.

    Shape:
        enhanced, original: [N, 3, H, W] -> scalar.
    """

    def __init__(self, patch_size: int = 4) -> None:
        super().__init__()
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        self.patch_size = patch_size
        k = torch.zeros(4, 1, 3, 3)
        k[:, 0, 1, 1] = 1.0
        k[0, 0, 1, 0] = -1.0  # left
        k[1, 0, 1, 2] = -1.0  # right
        k[2, 0, 0, 1] = -1.0  # up
        k[3, 0, 2, 1] = -1.0  # down
        self.register_buffer("kernels", k, persistent=False)

    def forward(self, enhanced: Tensor, original: Tensor) -> Tensor:
        if enhanced.shape != original.shape:
            raise ValueError(f"enhanced {tuple(enhanced.shape)} and original {tuple(original.shape)} differ")
        y = F.avg_pool2d(enhanced.mean(1, keepdim=True), self.patch_size)
        i = F.avg_pool2d(original.mean(1, keepdim=True), self.patch_size)
        k = self.kernels.to(y.dtype)
        d_y = F.conv2d(y, k, padding=1)  # [N, 4, h, w]: Y_i - Y_j for the 4 neighbours
        d_i = F.conv2d(i, k, padding=1)
        return (d_y - d_i).pow(2).sum(1).mean()


# --------------------------------------------------------------------------------------------------------
# Exposure control, Eq. (5)
# --------------------------------------------------------------------------------------------------------


class ExposureControlLoss(nn.Module):
    """L_exp: distance of local average intensity from a well-exposedness level E.  # Eq. (5)

    Paper: L_exp = 1/M sum_k |Y_k - E| over M non-overlapping 16x16 regions, E = 0.6.
    Official code (used here): Y = 16x16 average pool of the mean over RGB, *squared* distance:
    L_exp = mean((Y_k - E)^2). A constant image of value E gives 0; a constant c gives (c - E)^2.

    Shape:
        enhanced: [N, 3, H, W] -> scalar.
    """

    def __init__(self, patch_size: int = 16, well_exposed: float = 0.6) -> None:
        super().__init__()
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        if not 0.0 <= well_exposed <= 1.0:
            raise ValueError(f"well_exposed must be in [0, 1], got {well_exposed}")
        self.patch_size = patch_size
        self.well_exposed = well_exposed

    def forward(self, enhanced: Tensor) -> Tensor:
        y = F.avg_pool2d(enhanced.mean(1, keepdim=True), self.patch_size)
        return (y - self.well_exposed).pow(2).mean()


# --------------------------------------------------------------------------------------------------------
# Colour constancy, Eq. (6)
# --------------------------------------------------------------------------------------------------------


class ColorConstancyLoss(nn.Module):
    """L_col: grey-world colour constancy between the mean of each pair of channels.  # Eq. (6)

    Paper: L_col = sum_{(p,q) in {(R,G),(R,B),(G,B)}} (J^p - J^q)^2, J^p = mean of channel p.
    Official code (used here): D_pq = (J^p - J^q)^2 and L_col = sqrt(D_rg^2 + D_rb^2 + D_gb^2) per image,
    then the mean over the batch. E.g. channel means (0.2, 0.4, 0.6): D = (0.04, 0.16, 0.04) and
    L_col = sqrt(0.0288) = 0.16971 (the paper's form would give 0.24).
    The square root is taken of max(., 1e-30) so that a perfectly grey image (0 inside the root) has a zero
    instead of a NaN gradient; the value changes by at most 1e-15.

    Shape:
        enhanced: [N, 3, H, W] -> scalar.
    """

    def forward(self, enhanced: Tensor) -> Tensor:
        if enhanced.ndim != 4 or enhanced.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] RGB images, got {tuple(enhanced.shape)}")
        r, g, b = enhanced.mean((2, 3)).unbind(1)
        d_rg, d_rb, d_gb = (r - g).pow(2), (r - b).pow(2), (g - b).pow(2)
        return (d_rg.pow(2) + d_rb.pow(2) + d_gb.pow(2)).clamp_min(1e-30).sqrt().mean()


# --------------------------------------------------------------------------------------------------------
# Illumination smoothness, Eq. (7)
# --------------------------------------------------------------------------------------------------------


class IlluminationSmoothnessLoss(nn.Module):
    """L_tvA: total variation of the curve parameter maps, keeping neighbouring pixels' curves alike.  # Eq. (7)

    Paper: L_tvA = 1/N sum_n sum_c (|grad_x A_n^c| + |grad_y A_n^c|)^2.
    Official code (``L_TV``, used here): with squared forward differences summed over batch, channels and
    positions, L_tvA = 2 * (sum dh^2 / ((H-1) W) + sum dw^2 / (H (W-1))) / N. The counts are per channel,
    so the value grows with the number of curve maps (24 for Zero-DCE, 3 for Zero-DCE++), as in the original.
    A constant map gives 0.

    Shape:
        curves: [N, K, H, W] with H, W >= 2 -> scalar.
    """

    def forward(self, curves: Tensor) -> Tensor:
        n, _, h, w = curves.shape
        if h < 2 or w < 2:
            raise ValueError(f"curve maps need H, W >= 2 for total variation, got {tuple(curves.shape)}")
        h_tv = (curves[:, :, 1:, :] - curves[:, :, :-1, :]).pow(2).sum()
        w_tv = (curves[:, :, :, 1:] - curves[:, :, :, :-1]).pow(2).sum()
        return 2.0 * (h_tv / ((h - 1) * w) + w_tv / (h * (w - 1))) / n


# --------------------------------------------------------------------------------------------------------
# Total loss, Eq. (8)
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZeroDCELossConfig:
    """Weights of the total loss. Defaults are Zero-DCE's published/official values; Zero-DCE++ uses
    w_tv = 1600 (``ZeroDCELossConfig.zero_dce_pp()``)."""

    w_tv: float = 200.0  # illumination smoothness weight W_tvA (Zero-DCE 200, Zero-DCE++ 1600)
    w_spa: float = 1.0  # spatial consistency weight
    w_col: float = 5.0  # colour constancy weight W_col
    w_exp: float = 10.0  # exposure control weight
    well_exposed: float = 0.6  # exposure level E of L_exp
    exp_patch: int = 16  # region size of L_exp
    spa_patch: int = 4  # region size of L_spa

    def __post_init__(self) -> None:
        for name in ("w_tv", "w_spa", "w_col", "w_exp"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.well_exposed <= 1.0:
            raise ValueError(f"well_exposed must be in [0, 1], got {self.well_exposed}")
        if self.exp_patch < 1 or self.spa_patch < 1:
            raise ValueError(f"exp_patch and spa_patch must be >= 1, got {self.exp_patch}, {self.spa_patch}")

    @classmethod
    def zero_dce(cls) -> "ZeroDCELossConfig":
        return cls(w_tv=200.0)

    @classmethod
    def zero_dce_pp(cls) -> "ZeroDCELossConfig":
        return cls(w_tv=1600.0)


class ZeroDCELoss(nn.Module):
    """L_total = W_spa L_spa + W_exp L_exp + W_col L_col + W_tvA L_tvA.  # Eq. (8)

    Returns the total and the *weighted* components (keys "spa", "exp", "col", "tv", "total"), as the
    official training scripts log them.

    Shape:
        original, enhanced: [N, 3, H, W]; curves: [N, K, H, W] -> dict of scalars.
    """

    def __init__(self, cfg: ZeroDCELossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ZeroDCELossConfig()
        self.spa = SpatialConsistencyLoss(cfg.spa_patch)
        self.exp = ExposureControlLoss(cfg.exp_patch, cfg.well_exposed)
        self.col = ColorConstancyLoss()
        self.tv = IlluminationSmoothnessLoss()

    def forward(self, original: Tensor, enhanced: Tensor, curves: Tensor) -> dict[str, Tensor]:
        c = self.cfg
        parts = {
            "spa": c.w_spa * self.spa(enhanced, original),
            "exp": c.w_exp * self.exp(enhanced),
            "col": c.w_col * self.col(enhanced),
            "tv": c.w_tv * self.tv(curves),
        }
        parts["total"] = parts["spa"] + parts["exp"] + parts["col"] + parts["tv"]
        return parts
