"""Image / video quality metrics for enhancement: PSNR, SSIM, mean brightness and temporal flicker.

Inputs may be numpy arrays or torch tensors. uint8 data is read as [0, 255] (data_range 255) and float data
as [0, 1] (data_range 1) unless `data_range` is given. Computations run in float64.

Layout conventions (DESIGN.md): numpy frames are channel-last ([T, H, W, C] or [H, W, C]); torch clips are
channel-first ([C, T, H, W], [B, C, T, H, W]) and torch images [N, C, H, W] / [C, H, W].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Array = np.ndarray | Tensor


def _as_float64(x: Array) -> tuple[Tensor, float]:
    """float64 tensor and its default data range (255 for uint8, 1 otherwise)."""
    t = torch.from_numpy(np.asarray(x)) if isinstance(x, np.ndarray) else x.detach().cpu()
    default_range = 255.0 if t.dtype == torch.uint8 else 1.0
    return t.to(torch.float64), default_range


def psnr(a: Array, b: Array, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio 10 log10(R^2 / MSE) in dB over all elements; inf for identical inputs.

    E.g. two uint8 images differing by a constant 10 everywhere: 10 log10(255^2 / 100) = 28.13 dB.

    Shape:
        a, b: any identical shape -> float.
    """
    ta, ra = _as_float64(a)
    tb, _ = _as_float64(b)
    if ta.shape != tb.shape:
        raise ValueError(f"a {tuple(ta.shape)} and b {tuple(tb.shape)} must have the same shape")
    r = data_range or ra
    mse = (ta - tb).pow(2).mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(r * r / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: Array, b: Array, data_range: float | None = None, channel_last: bool | None = None) -> float:
    """Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
    K2 = 0.03, computed on each colour channel separately and averaged (as scikit-image's ``channel_axis``
    mode and most enhancement papers do), over "valid" window positions only (no padding).

    1.0 for identical images. `channel_last` defaults to True for numpy and False for torch input; 2-D input
    is a single grey image. Leading dimensions (frames, batch) are averaged over.

    Shape:
        a, b: [H, W], [..., H, W, C] (channel_last) or [..., C, H, W]; H, W >= 11 -> float.
    """
    ta, ra = _as_float64(a)
    tb, _ = _as_float64(b)
    if ta.shape != tb.shape:
        raise ValueError(f"a {tuple(ta.shape)} and b {tuple(tb.shape)} must have the same shape")
    if channel_last is None:
        channel_last = isinstance(a, np.ndarray)
    if ta.ndim == 2:
        ta, tb = ta[None, None], tb[None, None]
    else:
        if channel_last:
            ta, tb = ta.movedim(-1, -3), tb.movedim(-1, -3)
        ta, tb = ta.reshape(-1, 1, *ta.shape[-2:]), tb.reshape(-1, 1, *tb.shape[-2:])
    if min(ta.shape[-2:]) < 11:
        raise ValueError(f"ssim needs H, W >= 11 (window size), got {tuple(ta.shape[-2:])}")
    r = data_range or ra
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    w = _gaussian_window()[None, None]
    mu_a, mu_b = F.conv2d(ta, w), F.conv2d(tb, w)
    s_aa = F.conv2d(ta * ta, w) - mu_a**2
    s_bb = F.conv2d(tb * tb, w) - mu_b**2
    s_ab = F.conv2d(ta * tb, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2)
    return (num / den).mean().item()


def mean_brightness(x: Array) -> float:
    """Mean intensity over all elements, in [0, 1] (uint8 divided by 255).

    Shape:
        x: any shape -> float.
    """
    t, r = _as_float64(x)
    return (t.mean() / r).item()


def frame_means(clip: Array, time_axis: int | None = None) -> Tensor:
    """Mean intensity of each frame in [0, 1].

    `time_axis` defaults to the DESIGN.md layouts: 0 for numpy frames [T, H, W, C], 1 for a torch clip
    [C, T, H, W], 2 for a torch batch [B, C, T, H, W] (frames averaged over the batch too).

    Shape:
        clip -> [T].
    """
    t, r = _as_float64(clip)
    if time_axis is None:
        if isinstance(clip, np.ndarray):
            time_axis = 0
        elif t.ndim in (4, 5):
            time_axis = t.ndim - 3
        else:
            raise ValueError(f"cannot infer time_axis for a tensor of shape {tuple(t.shape)}; pass time_axis")
    t = t.movedim(time_axis, 0)
    return t.reshape(t.shape[0], -1).mean(1) / r


def flicker(clip: Array, time_axis: int | None = None) -> float:
    """Temporal flicker: mean absolute change of the frame-to-frame change of mean intensity.

    With m_t the mean intensity of frame t (in [0, 1]) and d_t = m_t - m_{t-1}:

        flicker = 1/(T-2) sum_{t=2}^{T-1} |d_t - d_{t-1}|      (mean |second difference| of m_t)

    Why the second difference: a steady brightness change (a fade, a camera's slow exposure drift, an actor
    walking into the light) has constant d_t and scores 0, while frame-to-frame jitter, the artefact that
    per-frame enhancement introduces when its curves fluctuate, scores high (alternating +-e gives 4e).
    A static clip scores 0. Needs T >= 3.

    Shape:
        clip: see `frame_means` -> float.
    """
    m = frame_means(clip, time_axis)
    if m.numel() < 3:
        raise ValueError(f"flicker needs at least 3 frames, got {m.numel()}")
    d = m[1:] - m[:-1]
    return (d[1:] - d[:-1]).abs().mean().item()
