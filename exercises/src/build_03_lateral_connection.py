"""Build exercises/03_lateral_connection.ipynb: SlowFast's fast -> slow lateral connection (STIN, paper 000,
section 2.2.2.2): time-to-channel, the time-strided convolution's shape arithmetic, and the module itself.

Run ``.venv/bin/python exercises/src/build_03_lateral_connection.py`` to (re)write the master notebook.
Checked against :class:`stia_kit.models.slowfast.FuseFastToSlow`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "03_lateral_connection"

INTRO = r"""# Exercise 03: a lateral connection, time-strided convolution (time-to-channel)

A dual-pathway network runs a sparse (slow) pathway on $T$ frames and a dense (fast) pathway on $\alpha T$
frames. STIN (paper 000, section 2.2.2.2, "Feature fusion method") writes the sparse input as $[C, T, H, W]$
and the dense one as $[\beta C, \alpha T, H, W]$ ($\alpha$: speed ratio, $\beta$: channel ratio), and lists the
three SlowFast lateral connections that make the dense features fit the sparse ones:

- **time-to-channel**: pack $\alpha$ frames into one, $[\beta C, \alpha T, H, W] \to [\alpha \beta C, T, H, W]$;
- **time-strided sampling**: keep one frame in $\alpha$, $[\beta C, \alpha T, H, W] \to [\beta C, T, H, W]$;
- **time-strided convolution** ("temporal interval convolution"): a 3D convolution with temporal stride
  $\alpha$ that outputs $2 \beta C$ channels.

STIN adopts the convolution, because the first two "may result in the loss of critical action segments"
(same section). The paper prints the kernel as $5 \times 1 \times 2$ and the fused shape as
$[\beta C + \beta C, T, H, W]$; SlowFast's own lateral (and the library) uses a $5 \times 1 \times 1$ kernel
(time $\times$ height $\times$ width), "same" temporal padding $\lfloor 5/2 \rfloor = 2$, no bias, then BatchNorm
and ReLU, and concatenates the $2 \beta C$ new channels to the slow features: $[C + 2\beta C, T, H, W]$.

You write time-to-channel, the shape arithmetic of the strided convolution, and the lateral module. The module
is checked against the library's `stia_kit.models.slowfast.FuseFastToSlow` with `torch.testing.assert_close`
(weights copied across, both in `eval()` mode so BatchNorm uses its running statistics). Tensors are
`[B, C, T, H, W]` throughout."""

SETUP = """import torch
from torch import nn

from stia_kit.models.slowfast import FuseFastToSlow

_ = torch.manual_seed(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `time_to_channel(fast, alpha)`: `[B, C, alpha*T, H, W] -> [B, alpha*C, T, H, W]`,
where output channel `c * alpha + j` at time `t` holds input channel `c` at frame `alpha * t + j`
(`j = 0 .. alpha - 1`). Raise a `ValueError` when the frame count is not a multiple of `alpha`. One `reshape`,
one `permute` and one more `reshape` do it."""

Q1_SOLUTION = '''def time_to_channel(fast, alpha):
    """Pack each group of `alpha` consecutive frames into the channel axis.

    Shape:
        [B, C, alpha*T, H, W] -> [B, alpha*C, T, H, W].
    """
    # BEGIN SOLUTION
    b, c, f, h, w = fast.shape
    if f % alpha:
        raise ValueError(f"time_to_channel: {f} frames is not a multiple of alpha={alpha}")
    t = f // alpha
    x = fast.reshape(b, c, t, alpha, h, w).permute(0, 1, 3, 2, 4, 5)  # [B, C, alpha, T, H, W]
    return x.reshape(b, c * alpha, t, h, w)
    # END SOLUTION'''

Q1_TESTS = ['''_x = torch.arange(2 * 3 * 8 * 2 * 2, dtype=torch.float32).reshape(2, 3, 8, 2, 2)
_y = time_to_channel(_x, 4)
assert isinstance(_y, torch.Tensor) and tuple(_y.shape) == (2, 12, 2, 2, 2)
torch.testing.assert_close(_y[1, 1 * 4 + 3, 1], _x[1, 1, 4 * 1 + 3])''']

Q1_HIDDEN = ['''_ = torch.manual_seed(1)
for _B, _C, _T, _H, _W, _a in [(1, 2, 3, 1, 1, 2), (2, 4, 2, 3, 5, 8), (3, 1, 5, 2, 2, 1), (1, 5, 1, 4, 3, 3)]:
    _x = torch.randn(_B, _C, _a * _T, _H, _W)
    _y = time_to_channel(_x, _a)
    assert tuple(_y.shape) == (_B, _a * _C, _T, _H, _W)
    for _c in range(_C):
        for _j in range(_a):
            for _t in range(_T):
                torch.testing.assert_close(_y[:, _c * _a + _j, _t], _x[:, _c, _a * _t + _j], rtol=0, atol=0)''',
             '''try:
    time_to_channel(torch.zeros(1, 2, 7, 2, 2), 2)
except ValueError:
    _raised = True
else:
    _raised = False
assert _raised''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `fused_shape(slow_shape, fast_shape, alpha, kernel=5, ratio=2)`: the shape (a tuple
of 5 ints) of the slow features after the lateral connection. The temporal convolution (kernel $k$, padding
$\lfloor k/2 \rfloor$, stride $\alpha$) turns $F$ fast frames into
$$T_{out} = \left\lfloor \frac{F + 2 \lfloor k/2 \rfloor - k}{\alpha} \right\rfloor + 1$$
frames and `ratio * C_fast` channels; height and width are unchanged (kernel 1, stride 1). Concatenation along
channels needs the same `B, T, H, W` on both sides: raise a `ValueError` when $T_{out}$ (or `B`, `H`, `W`)
does not match the slow features."""

Q2_SOLUTION = '''def fused_shape(slow_shape, fast_shape, alpha, kernel=5, ratio=2):
    """Shape of cat([slow, conv(fast)], dim=1) for the time-strided lateral convolution.

    Shape:
        slow [B, C_s, T, H, W], fast [B, C_f, F, H, W] -> (B, C_s + ratio * C_f, T, H, W).
    """
    # BEGIN SOLUTION
    b, c_s, t, h, w = slow_shape
    b_f, c_f, f, h_f, w_f = fast_shape
    t_out = (f + 2 * (kernel // 2) - kernel) // alpha + 1
    if (b_f, t_out, h_f, w_f) != (b, t, h, w):
        raise ValueError(f"fused_shape: lateral output (B, T, H, W) = {(b_f, t_out, h_f, w_f)} "
                         f"does not match the slow features {(b, t, h, w)}")
    return (b, c_s + ratio * c_f, t, h, w)
    # END SOLUTION'''

Q2_TESTS = ['''_s = fused_shape((2, 16, 4, 7, 7), (2, 2, 32, 7, 7), alpha=8)
assert isinstance(_s, tuple) and len(_s) == 5
assert _s == (2, 20, 4, 7, 7)
_lib = FuseFastToSlow(2, 8).eval()
assert _s == tuple(_lib(torch.randn(2, 16, 4, 7, 7), torch.randn(2, 2, 32, 7, 7))[0].shape)''']

Q2_HIDDEN = ['''_ = torch.manual_seed(2)
for _slow, _fast, _a, _k, _r in [((1, 8, 2, 3, 3), (1, 4, 8, 3, 3), 4, 5, 2), ((2, 3, 5, 2, 4), (2, 1, 10, 2, 4), 2, 3, 1),
                                 ((1, 6, 3, 1, 2), (1, 2, 3, 1, 2), 1, 5, 3), ((1, 4, 2, 2, 2), (1, 3, 15, 2, 2), 8, 7, 2)]:
    _s = fused_shape(_slow, _fast, _a, kernel=_k, ratio=_r)
    _lib = FuseFastToSlow(_fast[1], _a, kernel=_k, ratio=_r).eval()
    assert _s == tuple(_lib(torch.randn(*_slow), torch.randn(*_fast))[0].shape), (_slow, _fast, _a, _k, _r)''',
             '''for _slow, _fast, _a in [((1, 8, 4, 3, 3), (1, 2, 8, 3, 3), 4), ((1, 8, 2, 3, 3), (1, 2, 8, 3, 2), 4),
                         ((2, 8, 2, 3, 3), (1, 2, 8, 3, 3), 4)]:
    try:
        fused_shape(_slow, _fast, _a)
    except ValueError:
        _raised = True
    else:
        _raised = False
    assert _raised, (_slow, _fast, _a)''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write the module `MyFuseFastToSlow(fast_ch, alpha, kernel=5, ratio=2)`: an attribute
`conv`, an `nn.Sequential` of `nn.Conv3d(fast_ch, ratio * fast_ch, (kernel, 1, 1), stride=(alpha, 1, 1),
padding=(kernel // 2, 0, 0), bias=False)`, `nn.BatchNorm3d(ratio * fast_ch)` and `nn.ReLU()` (in that order, so
that the library module's `state_dict` loads into yours), an attribute `out_channels = ratio * fast_ch`, and
`forward(slow, fast)` returning the pair `(torch.cat([slow, conv(fast)], dim=1), fast)`: the fast pathway goes
on unchanged."""

Q3_SOLUTION = '''class MyFuseFastToSlow(nn.Module):
    """Fast -> slow lateral: time-strided conv + BN + ReLU, concatenated to the slow features.

    Shape:
        ([B, C_s, T, H, W], [B, C_f, alpha*T, H, W]) -> ([B, C_s + ratio*C_f, T, H, W], fast unchanged).
    """

    def __init__(self, fast_ch, alpha, kernel=5, ratio=2):
        super().__init__()
        # BEGIN SOLUTION
        self.out_channels = ratio * fast_ch
        self.conv = nn.Sequential(
            nn.Conv3d(fast_ch, self.out_channels, (kernel, 1, 1), stride=(alpha, 1, 1),
                      padding=(kernel // 2, 0, 0), bias=False),
            nn.BatchNorm3d(self.out_channels),
            nn.ReLU(),
        )
        # END SOLUTION

    def forward(self, slow, fast):
        # BEGIN SOLUTION
        return torch.cat([slow, self.conv(fast)], dim=1), fast
        # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_lib, _mine = FuseFastToSlow(2, 4).eval(), MyFuseFastToSlow(2, 4).eval()
_ = _mine.load_state_dict(_lib.state_dict())
assert _mine.out_channels == _lib.out_channels == 4
_slow, _fast = torch.randn(1, 8, 2, 3, 3), torch.randn(1, 2, 8, 3, 3)
_out, _f = _mine(_slow, _fast)
assert tuple(_out.shape) == (1, 12, 2, 3, 3) and _f is _fast
torch.testing.assert_close(_out, _lib(_slow, _fast)[0], rtol=1e-5, atol=1e-6)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(3)
for _cf, _a, _k, _r, _cs, _T in [(4, 8, 5, 2, 16, 2), (3, 2, 3, 1, 5, 3), (1, 1, 5, 3, 2, 4), (2, 4, 7, 2, 8, 1)]:
    _lib = FuseFastToSlow(_cf, _a, kernel=_k, ratio=_r)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine parameters
        _bn = _lib.conv[1]
        _ = _bn.running_mean.normal_()
        _ = _bn.running_var.uniform_(0.5, 2.0)
        _ = _bn.weight.normal_()
        _ = _bn.bias.normal_()
    _ = _lib.eval()
    _mine = MyFuseFastToSlow(_cf, _a, kernel=_k, ratio=_r).eval()
    _ = _mine.load_state_dict(_lib.state_dict())
    _slow, _fast = torch.randn(2, _cs, _T, 3, 2), torch.randn(2, _cf, _a * _T, 3, 2)
    _out, _f = _mine(_slow, _fast)
    _ref, _ = _lib(_slow, _fast)
    assert tuple(_out.shape) == (2, _cs + _r * _cf, _T, 3, 2)
    torch.testing.assert_close(_out, _ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(_out[:, :_cs], _slow, rtol=0, atol=0)
    assert _out[:, _cs:].min() >= 0''']

OUTRO = r"""## What you built

`FuseFastToSlow` is your module; `stia_kit.models.slowfast.SlowFast` puts one after the stem and after res2,
res3 and res4, so the slow pathway's next stage takes `C + 2 beta C` input channels (its `lateral_in`). STIN's
own fusion (section 2.2.2.2 (1)) replaces the strided convolution from dense to sparse by a temporal max pool
with kernel and stride $[\alpha, 1, 1]$ followed by channel attention; the course notebook
`notebooks/01_dual_pathway_cdai.ipynb` builds both and compares them."""


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
