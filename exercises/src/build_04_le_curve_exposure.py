"""Build exercises/04_le_curve_exposure.ipynb: Zero-DCE's LE curve, its iteration, and the exposure loss.

Run ``.venv/bin/python exercises/src/build_04_le_curve_exposure.py`` to (re)write the master notebook.
Checked against :func:`stia_kit.enhance.zero_dce.le_curve`, :func:`stia_kit.enhance.zero_dce.apply_curves`
and :class:`stia_kit.enhance.losses.ExposureControlLoss` (Zero-DCE Eq. (1)-(3) and (5)).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "04_le_curve_exposure"

INTRO = r"""# Exercise 04: the light-enhancement (LE) curve and the exposure control loss

Zero-DCE (Guo et al., CVPR 2020; the low-light front end of notebook 06) does not predict an enhanced image
directly: a small network predicts the parameters of a pixel-wise curve, and the curve maps the dark image to
a brighter one. The equation numbers below are the paper's, as cited in the library docstrings of
`stia_kit.enhance.zero_dce` and `stia_kit.enhance.losses`.

- **Eq. (1)**, the quadratic LE curve, for a pixel value $x \in [0, 1]$ and a parameter $\alpha \in [-1, 1]$:
  $$LE(x; \alpha) = x + \alpha\, x\, (1 - x).$$
  It keeps $LE(0) = 0$, $LE(1) = 1$, stays inside $[0, 1]$, is monotone, and $\alpha = 0$ is the identity.
- **Eq. (2)**, applied $n$ times for a stronger adjustment:
  $LE_n(x) = LE_{n-1}(x) + \alpha_n\, LE_{n-1}(x)\,(1 - LE_{n-1}(x))$.
- **Eq. (3)**, pixel-wise: each $\alpha_n$ is replaced by a parameter map $\mathcal{A}_n(x)$ of the image's
  size, one per colour channel. Zero-DCE uses $n = 8$ iterations, i.e. $3 \times 8 = 24$ curve maps, with
  iteration $n$ using channels $[3(n-1), 3n)$; Zero-DCE++ shares one 3-channel map across all iterations.
- **Eq. (5)**, the exposure control loss: average the image over RGB, split it into $M$ non-overlapping
  $16 \times 16$ regions with mean intensities $Y_k$, and pull each towards a well-exposedness level
  $E = 0.6$. **Note:** the paper writes $L_{exp} = \frac{1}{M}\sum_{k=1}^{M} |Y_k - E|$, but the official code
  (and the library, whose docstring says so) uses the **squared** distance
  $$L_{exp} = \frac{1}{M}\sum_{k=1}^{M} (Y_k - E)^2 .$$
  This exercise teaches and tests the squared form.

You write the three pieces in PyTorch; each answer is checked against the library with
`torch.testing.assert_close`."""

SETUP = """import torch
import torch.nn.functional as F

from stia_kit.enhance.losses import ExposureControlLoss
from stia_kit.enhance.zero_dce import apply_curves as lib_apply_curves
from stia_kit.enhance.zero_dce import le_curve as lib_le_curve

_ = torch.manual_seed(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `le_curve(x, a)`, Eq. (1): one curve step. `a` is a float or a tensor that
broadcasts against `x` (a pixel-wise map gives Eq. (3)); return a tensor of the shape of `x`."""

Q1_SOLUTION = '''def le_curve(x, a):
    """Eq. (1): LE(x; a) = x + a x (1 - x).

    Shape:
        x: any shape; a: float or broadcastable to x. Returns the shape of x.
    """
    # BEGIN SOLUTION
    return x + a * x * (1.0 - x)
    # END SOLUTION'''

Q1_TESTS = ['''_x = torch.tensor([0.0, 0.25, 0.5, 1.0])
_y = le_curve(_x, 0.5)
assert isinstance(_y, torch.Tensor) and _y.shape == _x.shape
torch.testing.assert_close(_y, torch.tensor([0.0, 0.34375, 0.625, 1.0]))
torch.testing.assert_close(le_curve(_x, 0.5), lib_le_curve(_x, 0.5))''']

Q1_HIDDEN = ['''_g = torch.Generator().manual_seed(1)
_x = torch.rand(2, 3, 5, 4, generator=_g)
_a = torch.rand(2, 3, 5, 4, generator=_g) * 2 - 1
_y = le_curve(_x, _a)
assert isinstance(_y, torch.Tensor) and _y.shape == _x.shape
torch.testing.assert_close(_y, lib_le_curve(_x, _a))
torch.testing.assert_close(le_curve(_x, 0.0), _x)
torch.testing.assert_close(le_curve(_x, -1.0), lib_le_curve(_x, -1.0))
_a_ch = torch.tensor([-0.5, 0.2, 0.9]).view(1, 3, 1, 1)
torch.testing.assert_close(le_curve(_x, _a_ch), lib_le_curve(_x, _a_ch))
_e = le_curve(torch.tensor([0.0, 1.0]), torch.tensor([0.7, -0.3]))
torch.testing.assert_close(_e, torch.tensor([0.0, 1.0]))''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `apply_curves(x, curves, iterations=8)`, Eq. (2)/(3): apply `le_curve`
`iterations` times with pixel-wise maps. `x` is `[N, 3, H, W]`; `curves` is either `[N, 3 * iterations, H, W]`
(Zero-DCE: iteration $n$ uses channels $[3(n-1), 3n)$) or `[N, 3, H, W]` (Zero-DCE++: the same map in every
iteration). Return the enhanced `[N, 3, H, W]`. (You may use your `le_curve` from question 1; `torch.split`
helps.)"""

Q2_SOLUTION = '''def apply_curves(x, curves, iterations=8):
    """Eq. (2)/(3): LE_n = LE_{n-1} + A_n LE_{n-1} (1 - LE_{n-1}), n = 1..iterations.

    Shape:
        x: [N, 3, H, W]; curves: [N, 3 * iterations, H, W] or [N, 3, H, W]. Returns [N, 3, H, W].
    """
    # BEGIN SOLUTION
    c = x.shape[1]
    if curves.shape[1] == c:
        maps = [curves] * iterations
    else:
        maps = torch.split(curves, c, dim=1)
    out = x
    for a in maps:
        out = out + a * out * (1.0 - out)
    return out
    # END SOLUTION'''

Q2_TESTS = ['''_g = torch.Generator().manual_seed(2)
_x = torch.rand(1, 3, 4, 4, generator=_g)
_A = torch.rand(1, 24, 4, 4, generator=_g) * 2 - 1
_y = apply_curves(_x, _A)
assert isinstance(_y, torch.Tensor) and _y.shape == (1, 3, 4, 4)
torch.testing.assert_close(_y, lib_apply_curves(_x, _A, 8))''']

Q2_HIDDEN = ['''_g = torch.Generator().manual_seed(3)
for _n, _it, _h, _w in [(2, 8, 5, 3), (1, 1, 2, 2), (3, 4, 6, 7)]:
    _x = torch.rand(_n, 3, _h, _w, generator=_g)
    _A = torch.rand(_n, 3 * _it, _h, _w, generator=_g) * 2 - 1
    _y = apply_curves(_x, _A, _it)
    assert isinstance(_y, torch.Tensor) and _y.shape == (_n, 3, _h, _w)
    torch.testing.assert_close(_y, lib_apply_curves(_x, _A, _it))
    assert float(_y.min()) >= 0.0 and float(_y.max()) <= 1.0
_x = torch.rand(2, 3, 4, 5, generator=_g)
_A = torch.rand(2, 3 * 8, 4, 5, generator=_g) * 2 - 1
_A[:, 3:6] = 0.0
_y = apply_curves(_x, _A, 8)
torch.testing.assert_close(_y, lib_apply_curves(_x, _A, 8))
_keep = torch.cat([_A[:, :3], _A[:, 6:]], dim=1)
torch.testing.assert_close(_y, lib_apply_curves(_x, _keep, 7))''',
             '''_g = torch.Generator().manual_seed(4)
_x = torch.rand(2, 3, 4, 4, generator=_g)
_A = torch.rand(2, 3, 4, 4, generator=_g) * 2 - 1
for _it in (1, 3, 8):
    _y = apply_curves(_x, _A, _it)
    assert isinstance(_y, torch.Tensor) and _y.shape == (2, 3, 4, 4)
    torch.testing.assert_close(_y, lib_apply_curves(_x, _A, _it))
torch.testing.assert_close(apply_curves(_x, _A, 2), lib_le_curve(lib_le_curve(_x, _A), _A))''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write `exposure_loss(enhanced, patch_size=16, well_exposed=0.6)`, Eq. (5) in the
library's (official-code) squared form: $Y$ is the `patch_size` $\times$ `patch_size` average of the RGB mean
over non-overlapping regions (regions that do not fit at the right / bottom edge are dropped, as
`F.avg_pool2d` does), and the loss is the mean of $(Y_k - E)^2$ over all regions and images. Return a scalar
tensor."""

Q3_SOLUTION = '''def exposure_loss(enhanced, patch_size=16, well_exposed=0.6):
    """Eq. (5), squared as in the official code: mean over regions k of (Y_k - E)^2.

    Shape:
        enhanced: [N, 3, H, W]. Returns a scalar tensor.
    """
    # BEGIN SOLUTION
    y = F.avg_pool2d(enhanced.mean(dim=1, keepdim=True), patch_size)  # [N, 1, H // p, W // p]
    return ((y - well_exposed) ** 2).mean()
    # END SOLUTION'''

Q3_TESTS = ['''_img = torch.full((1, 3, 16, 16), 0.2)
_l = exposure_loss(_img)
assert isinstance(_l, torch.Tensor) and _l.dim() == 0
torch.testing.assert_close(_l, torch.tensor(0.16))
_g = torch.Generator().manual_seed(5)
_img = torch.rand(2, 3, 32, 32, generator=_g)
torch.testing.assert_close(exposure_loss(_img), ExposureControlLoss()(_img))''']

Q3_HIDDEN = ['''_g = torch.Generator().manual_seed(6)
for _shape, _p, _e in [((1, 3, 8, 8), 4, 0.6), ((2, 3, 12, 20), 4, 0.5), ((3, 3, 20, 36), 16, 0.6),
                       ((1, 3, 5, 7), 1, 0.3), ((2, 3, 9, 9), 3, 1.0)]:
    _img = torch.rand(*_shape, generator=_g)
    _l = exposure_loss(_img, patch_size=_p, well_exposed=_e)
    assert isinstance(_l, torch.Tensor) and _l.dim() == 0
    torch.testing.assert_close(_l, ExposureControlLoss(patch_size=_p, well_exposed=_e)(_img))
torch.testing.assert_close(exposure_loss(torch.full((2, 3, 32, 16), 0.6)), torch.tensor(0.0))''',
             '''_img = torch.zeros(1, 3, 8, 8)
_img[:, :, :4, :4] = 0.6
_img[:, :, :4, 4:] = 1.0
_img[:, 0, 4:, :] = 0.9
_l = exposure_loss(_img, patch_size=4)
torch.testing.assert_close(_l, torch.tensor((0.0 + 0.16 + 0.09 + 0.09) / 4))
torch.testing.assert_close(_l, ExposureControlLoss(patch_size=4)(_img))''']

OUTRO = r"""## What you built

`stia_kit.enhance.zero_dce.le_curve` and `apply_curves` are your first two answers (the library also checks
the shapes and raises a clear error on a wrong channel count), and `ExposureControlLoss` is your third. Zero-DCE
trains its curve estimator with no paired data at all: the exposure loss together with the spatial-consistency
(Eq. (4)), colour-constancy (Eq. (6)) and illumination-smoothness (Eq. (7)) losses in
`stia_kit.enhance.losses`. Notebook 06 enhances dark ARID clips with these curves before action recognition."""


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
