"""Build exercises/07_fca_dct.ipynb: FcaNet's DCT channel filters in MSF-Net's FAM (paper 003, section 3.2,
Eq. (5)-(6)).

Run ``.venv/bin/python exercises/src/build_07_fca_dct.py`` to (re)write the master notebook.
Checked against :class:`stia_kit.models.attention.FrequencyChannelAttention3d`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "07_fca_dct"

INTRO = r"""# Exercise 07: FcaNet's DCT channel filters (MSF-Net)

SE-style channel attention squeezes each channel with global average pooling (GAP). FcaNet (Qin et al., ICCV
2021; MSF-Net's reference [13]) observes that GAP is the lowest-frequency coefficient of the 2D discrete cosine
transform (DCT) and uses other frequencies too. MSF-Net's frequency channel attention module FAM (paper 003,
section 3.2) splits the channels into $n$ parts $X^0, \dots, X^{n-1}$, gives part $i$ one 2D frequency
$(u_i, v_i)$, and concatenates the per-part DCT coefficients:

$$\mathrm{Freq} = \mathrm{cat}([\mathrm{Freq}^0, \dots, \mathrm{Freq}^{n-1}]) \quad (5) \qquad
Fc\_att = \mathrm{sigmoid}(fc(\mathrm{Freq})) \quad (6)$$

The coefficient $(u, v)$ of an $h \times w$ map $x$ is $\sum_{i,j} x_{ij}\, B^{u,v}_{ij}$ with the (orthonormal)
DCT-II basis image
$$B^{u,v}_{ij} = \beta_u(i; h)\, \beta_v(j; w), \qquad
\beta_f(p; N) = \frac{c_f}{\sqrt{N}} \cos\!\Big(\frac{\pi f (p + \tfrac12)}{N}\Big), \quad
c_0 = 1,\; c_{f > 0} = \sqrt{2}.$$

For video features `[B, C, T, H, W]` the library applies the 2D filters to every frame and averages over $T$.
You write the basis images, the per-channel filter bank and the pooling; each answer is checked against
`stia_kit.models.attention.FrequencyChannelAttention3d` (its `dct_basis()`, its filter buffer `weight`, its
`frequency_features` and its forward)."""

SETUP = """import math

import torch

from stia_kit.models.attention import FrequencyChannelAttention3d

_ = torch.manual_seed(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `dct_filter(u, v, h, w)`: the basis image $B^{u,v}$ as a float32 tensor `[h, w]`
(row index $i$ goes with $u$, column index $j$ with $v$)."""

Q1_SOLUTION = '''def dct_filter(u, v, h, w):
    """The orthonormal 2D DCT-II basis image B^{u,v} of an h x w map.

    Shape:
        returns float32 [h, w].
    """
    # BEGIN SOLUTION
    def beta(f, n):
        p = torch.arange(n, dtype=torch.float64)
        b = torch.cos(math.pi * f * (p + 0.5) / n) / math.sqrt(n)
        return b * math.sqrt(2.0) if f > 0 else b

    return (beta(u, h)[:, None] * beta(v, w)[None, :]).float()
    # END SOLUTION'''

Q1_TESTS = ['''_freqs = ((0, 0), (0, 1), (2, 3), (6, 6))
_lib = FrequencyChannelAttention3d(4, 7, reduction=2, frequencies=_freqs)
_basis = _lib.dct_basis()
for _i, (_u, _v) in enumerate(_freqs):
    _f = dct_filter(_u, _v, 7, 7)
    assert isinstance(_f, torch.Tensor) and _f.dtype == torch.float32 and tuple(_f.shape) == (7, 7)
    torch.testing.assert_close(_f, _basis[_i], rtol=1e-5, atol=1e-6)''']

Q1_HIDDEN = ['''_freqs = ((0, 0), (1, 0), (3, 6), (6, 2), (5, 5), (4, 1))
_lib = FrequencyChannelAttention3d(6, (8, 7), reduction=3, frequencies=_freqs)
_basis = _lib.dct_basis()
for _i, (_u, _v) in enumerate(_freqs):
    _f = dct_filter(_u, _v, 8, 7)
    assert tuple(_f.shape) == (8, 7)
    torch.testing.assert_close(_f, _basis[_i], rtol=1e-5, atol=1e-6)''',
             '''_all = torch.stack([dct_filter(_u, _v, 5, 5).flatten() for _u in range(5) for _v in range(5)])
torch.testing.assert_close(_all @ _all.T, torch.eye(25), rtol=1e-5, atol=1e-5)
torch.testing.assert_close(dct_filter(0, 0, 4, 9), torch.full((4, 9), 1.0 / 6.0), rtol=1e-6, atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `channel_filters(frequencies, channels, h, w, grid=7)`: the filter bank
`[C, h, w]`, one basis image per channel. The channels are split into `n = len(frequencies)` equal consecutive
parts (raise a `ValueError` when `n` does not divide `channels`); every channel of part $i$ gets frequency
`frequencies[i]`. The frequencies are given on FcaNet's `grid x grid` (7x7) grid and scaled to the filter size
as FcaNet does: $(u \cdot (h\,//\,\mathrm{grid}),\ v \cdot (w\,//\,\mathrm{grid}))$ (a 14x14 filter uses
$(2u, 2v)$). Use your `dct_filter`."""

Q2_SOLUTION = '''def channel_filters(frequencies, channels, h, w, grid=7):
    """One DCT basis image per channel, frequency i for the i-th of n equal channel parts.

    Shape:
        returns float32 [channels, h, w].
    """
    # BEGIN SOLUTION
    n = len(frequencies)
    if n == 0 or channels % n:
        raise ValueError(f"channels ({channels}) must be divisible by len(frequencies) ({n})")
    sh, sw = h // grid, w // grid
    basis = torch.stack([dct_filter(u * sh, v * sw, h, w) for u, v in frequencies])  # [n, h, w]
    return basis.repeat_interleave(channels // n, dim=0)  # [C, h, w]
    # END SOLUTION'''

Q2_TESTS = ['''_freqs = ((0, 0), (0, 1), (2, 3), (6, 6))
_lib = FrequencyChannelAttention3d(8, 7, reduction=2, frequencies=_freqs)
_w = channel_filters(_freqs, 8, 7, 7)
assert isinstance(_w, torch.Tensor) and tuple(_w.shape) == (8, 7, 7)
torch.testing.assert_close(_w, _lib.weight, rtol=1e-5, atol=1e-6)''']

Q2_HIDDEN = ['''_freqs = ((0, 0), (1, 0), (3, 6))
_lib = FrequencyChannelAttention3d(12, 14, reduction=4, frequencies=_freqs)
_w = channel_filters(_freqs, 12, 14, 14)
assert tuple(_w.shape) == (12, 14, 14)
torch.testing.assert_close(_w, _lib.weight, rtol=1e-5, atol=1e-6)''',
             '''_lib = FrequencyChannelAttention3d(16, (14, 7), reduction=4)
_w = channel_filters(_lib.frequencies, 16, 14, 7)
torch.testing.assert_close(_w, _lib.weight, rtol=1e-5, atol=1e-6)
try:
    _ = channel_filters(((0, 0), (1, 1), (2, 2)), 8, 7, 7)
    _raised = False
except ValueError:
    _raised = True
assert _raised''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write `frequency_features(x, filters)`: $\mathrm{Freq}$ of Eq. (5) for video features
`x` `[B, C, T, H, W]` (with `H, W` equal to the filter size) and a filter bank `[C, H, W]`: for every channel,
its filter's DCT coefficient of each frame, averaged over the `T` frames, `[B, C]`. The check then builds the
whole FAM from it, `x * sigmoid(fc(Freq))` (Eq. (6)), with the library's `fc`, and compares with its forward."""

Q3_SOLUTION = '''def frequency_features(x, filters):
    """Freq of Eq. (5): per channel, the DCT coefficient of its filter in each frame, mean over T.

    Shape:
        x [B, C, T, H, W], filters [C, H, W] -> [B, C].
    """
    # BEGIN SOLUTION
    return torch.einsum("bcthw,chw->bct", x, filters).mean(dim=2)
    # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_lib = FrequencyChannelAttention3d(8, 7, reduction=2, frequencies=((0, 0), (0, 1), (2, 3), (6, 6)))
_x = torch.randn(2, 8, 3, 7, 7)
_freq = frequency_features(_x, _lib.weight)
assert isinstance(_freq, torch.Tensor) and tuple(_freq.shape) == (2, 8)
torch.testing.assert_close(_freq, _lib.frequency_features(_x), rtol=1e-5, atol=1e-5)
_out = _x * torch.sigmoid(_lib.fc(_freq))[:, :, None, None, None]
torch.testing.assert_close(_out, _lib(_x), rtol=1e-5, atol=1e-5)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(1)
_lib = FrequencyChannelAttention3d(16, (14, 7), reduction=4)
_x = torch.randn(3, 16, 1, 14, 7)
_freq = frequency_features(_x, _lib.weight)
torch.testing.assert_close(_freq, _lib.frequency_features(_x), rtol=1e-5, atol=1e-5)
torch.testing.assert_close(_x * torch.sigmoid(_lib.fc(_freq))[:, :, None, None, None], _lib(_x), rtol=1e-5,
                           atol=1e-5)''',
             '''_ = torch.manual_seed(2)
_x = torch.randn(2, 4, 5, 7, 7)
_gap = _x.mean(dim=(2, 3, 4))
_lib = FrequencyChannelAttention3d(4, 7, reduction=2, frequencies=((0, 0),))
torch.testing.assert_close(frequency_features(_x, _lib.weight), 7.0 * _gap, rtol=1e-5, atol=1e-5)''']

OUTRO = r"""## What you built

`FrequencyChannelAttention3d(channels, dct_size)` builds your filter bank once (FcaNet's top-16 frequencies by
default, `FCA_TOP16`) as a non-trainable buffer, average-pools frames of another size to the DCT size, and
applies your pooling and Eq. (6). With the single frequency $(0, 0)$ it is SE's squeeze up to the constant
$\sqrt{HW}$, as your last check showed. Notebook 05 places it in MSF-Net's FSAM."""


def build() -> list:
    cells = config(NAME)
    cells += [nbf.v4.new_markdown_cell(INTRO), nbf.v4.new_code_cell(SETUP)]
    cells += question("q1", 1, Q1_PROMPT, Q1_SOLUTION, Q1_TESTS, Q1_HIDDEN)
    cells += question("q2", 1, Q2_PROMPT, Q2_SOLUTION, Q2_TESTS, Q2_HIDDEN)
    cells += question("q3", 1, Q3_PROMPT, Q3_SOLUTION, Q3_TESTS, Q3_HIDDEN)
    cells += [nbf.v4.new_markdown_cell(OUTRO)]
    return cells


if __name__ == "__main__":
    write(build(), SRC.parent / f"{NAME}.ipynb")
