"""Build exercises/01_eca.ipynb: ECA's adaptive kernel size and the 3D ECA module (STIN, paper 000, Eq. (3)-(6)).

Run ``.venv/bin/python exercises/src/build_01_eca.py`` to (re)write the master notebook.
Checked against :func:`stia_kit.models.attention.eca_kernel_size` and :class:`stia_kit.models.attention.ECA3d`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py)

NAME = "01_eca"

INTRO = r"""# Exercise 01: efficient channel attention (ECA) in 3D

STIN (paper 000, section 2.2.2.1 (2)) weights the channels of a clip feature map $I$ (`[B, C, T, H, W]`) with
efficient channel attention. A 3D global average pool gives one number per channel (Eq. (5)),
$y = \mathrm{Avg}(I)$; a 1D convolution with $k$ weights shared by all channels and no bias mixes each channel
with its $k - 1$ neighbours, and a sigmoid turns the result into weights (Eq. (3)). The kernel size adapts to the
channel count (Eq. (4)):

$$k = \psi(C) = \left|\frac{\log_2 C}{\gamma} + \frac{b}{\gamma}\right|_{odd}, \qquad \gamma = 2,\ b = 1,$$

computed as in the ECA-Net reference code: $t = \mathrm{int}(|(\log_2 C + b)/\gamma|)$ (truncated), $k = t$ if
$t$ is odd, else $t + 1$. The output is $\sigma(\mathrm{C1D}_k(\mathrm{Avg}(I))) \cdot I + I$ (Eq. (6)).

You write Eq. (4), then the channel weights, then the whole module. Each answer is checked against the
library's `stia_kit.models.attention.eca_kernel_size` and `ECA3d` with `torch.testing.assert_close`."""

SETUP = """import math

import torch
from torch import nn

from stia_kit.models.attention import ECA3d, eca_kernel_size

_ = torch.manual_seed(0)"""

Q1_PROMPT = r"""**Question 1.** Write `kernel_size(channels, gamma=2, b=1)`, Eq. (4) as described above (an odd `int`)."""

Q1_SOLUTION = '''def kernel_size(channels, gamma=2, b=1):
    """Eq. (4): the odd ECA kernel size for `channels` channels."""
    # BEGIN SOLUTION
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1
    # END SOLUTION'''

Q1_TESTS = ['''assert isinstance(kernel_size(64), int)
assert kernel_size(64) == eca_kernel_size(64) == 3
assert kernel_size(128) == eca_kernel_size(128) == 5''']

Q1_HIDDEN = ['''for _c in (1, 2, 3, 16, 100, 256, 512, 1000, 1024, 2048, 4096):
    assert kernel_size(_c) == eca_kernel_size(_c), _c
for _c, _g, _b in ((256, 1, 1), (64, 3, 2), (2048, 2, 3)):
    assert kernel_size(_c, _g, _b) == eca_kernel_size(_c, _g, _b), (_c, _g, _b)''']

Q2_PROMPT = r"""**Question 2.** Write `channel_weights(x, weight)`: the weights $\sigma(\mathrm{C1D}_k(\mathrm{Avg}(I)))$
of Eq. (3)/(5), shape `[B, C]`. `x` is `[B, C, T, H, W]`; `weight` is the 1D kernel, a tensor of shape
`[1, 1, k]` (as in `nn.Conv1d(1, 1, k, bias=False).weight`); pad with `k // 2` zeros at both ends so the
output keeps `C` entries (`torch.nn.functional.conv1d` helps)."""

Q2_SOLUTION = '''def channel_weights(x, weight):
    """Shape: x [B, C, T, H, W], weight [1, 1, k] -> [B, C]."""
    # BEGIN SOLUTION
    y = x.mean(dim=(2, 3, 4))  # Eq. (5): 3D global average pool, [B, C]
    k = weight.shape[-1]
    y = torch.nn.functional.conv1d(y.unsqueeze(1), weight, padding=k // 2).squeeze(1)  # across channels
    return torch.sigmoid(y)
    # END SOLUTION'''

Q2_TESTS = ['''_ = torch.manual_seed(0)
_lib = ECA3d(16)
_x = torch.randn(2, 16, 3, 4, 4)
_w = channel_weights(_x, _lib.conv.weight.detach())
assert tuple(_w.shape) == (2, 16)
torch.testing.assert_close(_w, _lib.channel_weights(_x).detach(), rtol=1e-5, atol=1e-6)''']

Q2_HIDDEN = ['''_ = torch.manual_seed(1)
for _c in (1, 7, 256):
    _lib = ECA3d(_c)
    _x = torch.randn(3, _c, 2, 3, 5)
    _w = channel_weights(_x, _lib.conv.weight.detach())
    assert tuple(_w.shape) == (3, _c)
    torch.testing.assert_close(_w, _lib.channel_weights(_x).detach(), rtol=1e-5, atol=1e-6)''']

Q3_PROMPT = r"""**Question 3.** Write the module `MyECA3d(channels, gamma=2, b=1)`: an attribute `conv`, an
`nn.Conv1d(1, 1, k, padding=k // 2, bias=False)` with `k` from your `kernel_size`, and `forward(x)` returning
Eq. (6), $\sigma(\mathrm{C1D}_k(\mathrm{Avg}(I))) \cdot I + I$ (`[B, C, T, H, W] -> [B, C, T, H, W]`). The check
copies the library module's weights into yours."""

Q3_SOLUTION = '''class MyECA3d(nn.Module):
    """Shape: [B, C, T, H, W] -> [B, C, T, H, W]."""

    def __init__(self, channels, gamma=2, b=1):
        super().__init__()
        # BEGIN SOLUTION
        k = kernel_size(channels, gamma, b)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        y = x.mean(dim=(2, 3, 4)).unsqueeze(1)  # [B, 1, C]
        w = torch.sigmoid(self.conv(y)).squeeze(1)  # [B, C]
        return w[:, :, None, None, None] * x + x  # Eq. (6)
        # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_lib, _mine = ECA3d(32), MyECA3d(32)
_ = _mine.conv.load_state_dict(_lib.conv.state_dict())
_x = torch.randn(2, 32, 2, 3, 3)
_y = _mine(_x)
assert tuple(_y.shape) == (2, 32, 2, 3, 3)
torch.testing.assert_close(_y, _lib(_x), rtol=1e-5, atol=1e-6)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(2)
for _c in (3, 128, 1024):
    _lib, _mine = ECA3d(_c), MyECA3d(_c)
    assert _mine.conv.weight.shape == _lib.conv.weight.shape, _c
    _ = _mine.conv.load_state_dict(_lib.conv.state_dict())
    _x = torch.rand(1, _c, 3, 2, 4)
    torch.testing.assert_close(_mine(_x), _lib(_x), rtol=1e-5, atol=1e-6)''']

OUTRO = r"""The course notebook `notebooks/01_dual_pathway_cdai.ipynb` places ECA after the axial attention in STIN's
CDAI block and shows its channel weights on SynthActions clips."""


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
