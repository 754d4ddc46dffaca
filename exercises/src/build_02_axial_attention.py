"""Build exercises/02_axial_attention.ipynb: self-attention along one axis of a video map (STIN, paper 000, Eq. (1)).

Run ``.venv/bin/python exercises/src/build_02_axial_attention.py`` to (re)write the master notebook.
Checked against :class:`stia_kit.models.attention.AxialAttention3d`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "02_axial_attention"

INTRO = r"""# Exercise 02: one axial attention direction

STIN (paper 000, section 2.2.2.1 (1)) refines a clip feature map $I$ (`[B, C, T, H, W]`) with a 3D
spatiotemporal self-attention built from three *axial* attentions, along the width, the height and the time
axis. For the width direction "the input feature tensor is first reshaped to $I[\{T, H\}, W, C]$, followed by
three $1\times1\times1$ convolutions to generate the query ($Q$), key ($K$), and value ($V$) matrices", and the
weights are "the dot product of $Q$ and the transpose of $K$, normalized using the Softmax function" (Eq. (1)):

$$\mathrm{Attn}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V .$$

Every line of positions along the attended axis is one sequence of length $L$: the other two axes are folded
into the batch, so the weights are $L \times L$ per line instead of $THW \times THW$ for the whole map. Eq. (2)
then sums the three directions with the input (the residual); that sum is not part of this exercise.

A $1\times1\times1$ convolution acts on the channels of each position alone, so on channel-last sequences it is
an `nn.Linear(C, d)`; the library uses `Linear` layers named `query`, `key`, `value` ($d = C$ /
`qk_reduction` for Q and K, $C$ for V). You write the folding, the attention weights and the whole module;
each answer is checked against `stia_kit.models.attention.AxialAttention3d` with `torch.testing.assert_close`."""

SETUP = """import math

import torch
from torch import nn

from stia_kit.models.attention import AxialAttention3d

_ = torch.manual_seed(0)
AXIS_DIM = {"T": 2, "H": 3, "W": 4}  # where each axis sits in [B, C, T, H, W]"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `fold(x, axis)`: `[B, C, T, H, W] -> [N, L, C]` with `L` the length of `axis`
(`"T"`, `"H"` or `"W"`) and `N = B *` (the other two lengths). Order: move the axes to `B`, the two other axes
in their `T, H, W` order, the attended axis, then `C` (`permute`), and merge the first three (`reshape`). Then
write `unfold(seq, shape, axis)`, its inverse: `[N, L, C]` back to `shape = (B, C, T, H, W)`."""

Q1_SOLUTION = '''def fold(x, axis):
    """Every line along `axis` becomes one sequence.

    Shape:
        x [B, C, T, H, W] -> [B * X * Y, L, C], X, Y the other two axes in T, H, W order, L the length of `axis`.
    """
    # BEGIN SOLUTION
    d = AXIS_DIM[axis]
    others = [i for i in (2, 3, 4) if i != d]
    t = x.permute(0, *others, d, 1)  # [B, X, Y, L, C]
    return t.reshape(-1, t.shape[-2], t.shape[-1])
    # END SOLUTION


def unfold(seq, shape, axis):
    """Inverse of `fold`.

    Shape:
        seq [B * X * Y, L, C] -> `shape` = [B, C, T, H, W].
    """
    # BEGIN SOLUTION
    d = AXIS_DIM[axis]
    others = [i for i in (2, 3, 4) if i != d]
    B, C = shape[0], shape[1]
    t = seq.reshape(B, shape[others[0]], shape[others[1]], shape[d], C)  # [B, X, Y, L, C]
    perm = (0, *others, d, 1)
    inv = [perm.index(i) for i in range(5)]
    return t.permute(*inv)
    # END SOLUTION'''

Q1_TESTS = ['''_x = torch.randn(2, 3, 4, 5, 6)
_s = fold(_x, "W")
assert tuple(_s.shape) == (2 * 4 * 5, 6, 3)
torch.testing.assert_close(_s[0, :, 1], _x[0, 1, 0, 0, :])  # the first W-line of channel 1
torch.testing.assert_close(_s, AxialAttention3d(3, "W")._to_sequences(_x))
torch.testing.assert_close(unfold(_s, _x.shape, "W"), _x)''']

Q1_HIDDEN = ['''_ = torch.manual_seed(1)
for _shape in ((2, 3, 4, 5, 6), (1, 1, 1, 2, 3), (3, 2, 5, 1, 4)):
    _x = torch.randn(*_shape)
    for _axis in ("T", "H", "W"):
        _lib = AxialAttention3d(_shape[1], _axis)
        _s = fold(_x, _axis)
        assert tuple(_s.shape) == tuple(_lib._to_sequences(_x).shape), (_shape, _axis)
        torch.testing.assert_close(_s, _lib._to_sequences(_x))
        _back = unfold(_s, _x.shape, _axis)
        assert tuple(_back.shape) == _shape
        torch.testing.assert_close(_back, _x)
        torch.testing.assert_close(unfold(2 * _s, _x.shape, _axis), _lib._from_sequences(2 * _s, _x.shape))''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `attention_weights(x, query, key, axis)`: the weights of Eq. (1),
$\mathrm{softmax}(Q K^\top / \sqrt{d})$, shape `[N, L, L]` (softmax over the last axis, so each row sums to 1).
`query` and `key` are `nn.Linear(C, d)` layers applied to the folded sequences; $d$ is their output size."""

Q2_SOLUTION = '''def attention_weights(x, query, key, axis):
    """Shape: x [B, C, T, H, W] -> [N, L, L], N = B * (other two axes), L the length of `axis`."""
    # BEGIN SOLUTION
    seq = fold(x, axis)  # [N, L, C]
    q, k = query(seq), key(seq)  # [N, L, d]
    return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
    # END SOLUTION'''

Q2_TESTS = ['''_ = torch.manual_seed(0)
_lib = AxialAttention3d(4, "H")
_x = torch.randn(2, 4, 3, 5, 2)
with torch.no_grad():
    _a = attention_weights(_x, _lib.query, _lib.key, "H")
    _ref = _lib.attention_map(_x)
assert tuple(_a.shape) == (2 * 3 * 2, 5, 5)
torch.testing.assert_close(_a.sum(-1), torch.ones(12, 5))
torch.testing.assert_close(_a, _ref, rtol=1e-5, atol=1e-6)''']

Q2_HIDDEN = ['''_ = torch.manual_seed(2)
for _axis, _c, _r, _shape in (("T", 8, 1, (1, 8, 6, 2, 3)), ("W", 8, 4, (2, 8, 2, 3, 7)), ("H", 1, 1, (3, 1, 2, 4, 1)),
                              ("T", 6, 2, (2, 6, 1, 2, 2))):
    _lib = AxialAttention3d(_c, _axis, qk_reduction=_r)
    _x = 3 * torch.randn(*_shape)
    with torch.no_grad():
        _a = attention_weights(_x, _lib.query, _lib.key, _axis)
        _ref = _lib.attention_map(_x)
    assert tuple(_a.shape) == tuple(_ref.shape), (_axis, _r)
    torch.testing.assert_close(_a, _ref, rtol=1e-5, atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write the module `MyAxialAttention3d(channels, axis, qk_reduction=1)`: attributes
`query`, `key` (`nn.Linear(C, d)` with `d = max(C // qk_reduction, 1)`) and `value` (`nn.Linear(C, C)`), and
`forward(x)`: fold, project, Eq. (1) $\mathrm{softmax}(Q K^\top / \sqrt{d})\, V$, unfold
(`[B, C, T, H, W] -> [B, C, T, H, W]`, no residual). The check copies the library module's weights into yours
(`load_state_dict`, so the attribute names and sizes must match)."""

Q3_SOLUTION = '''class MyAxialAttention3d(nn.Module):
    """Eq. (1) along one axis. Shape: [B, C, T, H, W] -> [B, C, T, H, W]."""

    def __init__(self, channels, axis, qk_reduction=1):
        super().__init__()
        self.axis = axis
        # BEGIN SOLUTION
        d = max(channels // qk_reduction, 1)
        self.query = nn.Linear(channels, d)
        self.key = nn.Linear(channels, d)
        self.value = nn.Linear(channels, channels)
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION
        a = attention_weights(x, self.query, self.key, self.axis)  # [N, L, L]
        out = a @ self.value(fold(x, self.axis))  # [N, L, C]
        return unfold(out, x.shape, self.axis)
        # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_lib, _mine = AxialAttention3d(4, "W"), MyAxialAttention3d(4, "W")
_ = _mine.load_state_dict(_lib.state_dict())
_x = torch.randn(2, 4, 2, 3, 5)
with torch.no_grad():
    _y, _ref = _mine(_x), _lib(_x)
assert tuple(_y.shape) == (2, 4, 2, 3, 5)
torch.testing.assert_close(_y, _ref, rtol=1e-5, atol=1e-5)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(3)
for _axis, _c, _r, _shape in (("T", 8, 1, (1, 8, 6, 2, 3)), ("H", 8, 4, (2, 8, 2, 5, 3)), ("W", 3, 8, (1, 3, 2, 2, 4)),
                              ("T", 2, 1, (2, 2, 1, 3, 3))):
    _lib, _mine = AxialAttention3d(_c, _axis, qk_reduction=_r), MyAxialAttention3d(_c, _axis, qk_reduction=_r)
    _ = _mine.load_state_dict(_lib.state_dict())
    _x = torch.randn(*_shape)
    with torch.no_grad():
        _y, _ref = _mine(_x), _lib(_x)
    assert tuple(_y.shape) == _shape, (_axis, _r)
    torch.testing.assert_close(_y, _ref, rtol=1e-5, atol=1e-5)''',
              '''_ = torch.manual_seed(4)
_mine = MyAxialAttention3d(4, "T")
_x = torch.randn(1, 4, 3, 2, 2)
_y = _mine(_x)
_y.sum().backward()  # trainable: gradients reach all three projections
assert all(_p.grad is not None and _p.grad.abs().sum() > 0 for _p in (_mine.query.weight, _mine.value.weight))
with torch.no_grad():  # a line sees only itself: changing one T-line leaves the other lines' outputs unchanged
    _x2 = _x.clone()
    _x2[0, :, :, 0, 0] += 1.0
    _d = (_mine(_x2) - _mine(_x)).abs().sum(dim=(0, 1, 2))  # [H, W]
assert _d[0, 0] > 0 and float(_d.sum() - _d[0, 0]) < 1e-6''']

OUTRO = r"""## What you built

`AxialAttention3d` is your module (it calls `torch.nn.functional.scaled_dot_product_attention` in `forward`,
so CUDA users get fused kernels, and keeps the explicit weights in `attention_map`). STIN's
`SpatioTemporalSelfAttention` sums the `W`, `H` and `T` directions with the input (Eq. (2)) and applies that
twice with shared weights ("after two rounds of feature selection and filtering", section 2.2.2.1 (1)); the
course notebook `notebooks/01_dual_pathway_cdai.ipynb` shows the maps on SynthActions clips."""


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
