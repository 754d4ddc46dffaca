"""Build exercises/08_diversity_loss.ipynb: ST-MANet's diversity losses (paper 002, section 3.4, Eq. (6)-(7)).

Run ``.venv/bin/python exercises/src/build_08_diversity_loss.py`` to (re)write the master notebook.
Checked against :func:`stia_kit.models.st_manet.pairwise_cosine_sum`, :func:`~.temporal_diversity_loss`,
:func:`~.downsample_spatial_attention` and :func:`~.spatial_diversity_loss`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "08_diversity_loss"

INTRO = r"""# Exercise 08: ST-MANet's diversity losses

ST-MANet (paper 002) computes a temporal attention matrix $A_t^i$ (`[T_i, T_i]`) and a spatial one $A_s^i$
(`[H_i W_i, H_i W_i]`) at each residual stage $i = 2, \dots, 5$ of a 3D ResNet-50. Its multi-level fusion loss
(section 3.4) pushes the attention of different depths apart, so that each stage looks at different times and
places. The matrices first get a common size by downsampling the shallower ones, $\bar{A}^i = S^i(A^i)$
(Eq. (6)), and then

$$L_t = \sum_{(i, j) \in \delta} f(\bar{A}_t^i, \bar{A}_t^j), \qquad
L_s = \sum_{(i, j) \in \delta} f(\bar{A}_s^i, \bar{A}_s^j) \quad (7)$$

with $\delta = \{(i, j) : 2 \le i, j \le 5,\ i \ne j\}$ (ordered pairs: 12 for four stages) and $f$ the cosine
similarity. Readings of the library (the paper gives no more detail): $f$ is the cosine of the flattened
matrices per sample, averaged over the batch; $S^i$ is adaptive average pooling to the smallest matrix among
them, for $A_t$ pooling the $T \times T$ matrix, for $A_s$ pooling *both* positions of each pair (the matrix seen
as `[H, W, H, W]`: every entry of $\bar{A}_s$ averages the attention between two neighbourhoods).

You write $f$ summed over the pairs, then $L_t$, then the spatial downsampling $S^i$; each answer is checked
against the library's own functions in `stia_kit.models.st_manet`. Batches of matrices are `[B, n, n]`."""

SETUP = """import torch
import torch.nn.functional as F

from stia_kit.models.st_manet import (downsample_spatial_attention, pairwise_cosine_sum, spatial_diversity_loss,
                                      temporal_diversity_loss)

_ = torch.manual_seed(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `my_pairwise_cosine_sum(mats)`: for a list of equally shaped `[B, n, n]` matrices,
the sum over all ordered pairs $(i, j)$, $i \ne j$, of the batch mean of the per-sample cosine similarity of the
flattened matrices, as a 0-dimensional tensor (0 when there are fewer than two matrices)."""

Q1_SOLUTION = '''def my_pairwise_cosine_sum(mats):
    """sum over ordered pairs i != j of mean_b cos(flat(A^i_b), flat(A^j_b)).

    Shape:
        k x [B, n, n] -> [] (a scalar tensor).
    """
    # BEGIN SOLUTION
    total = torch.zeros(())
    for i, a in enumerate(mats):
        for j, b in enumerate(mats):
            if i != j:
                total = total + F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1).mean()
    return total
    # END SOLUTION'''

Q1_TESTS = ['''_ = torch.manual_seed(0)
_mats = [torch.softmax(torch.randn(2, 4, 4), dim=-1) for _ in range(4)]
_loss = my_pairwise_cosine_sum(_mats)
assert isinstance(_loss, torch.Tensor) and _loss.dim() == 0
torch.testing.assert_close(_loss, pairwise_cosine_sum(_mats), rtol=1e-5, atol=1e-6)''']

Q1_HIDDEN = ['''_ = torch.manual_seed(1)
_mats = [torch.randn(3, 5, 5) for _ in range(3)]
torch.testing.assert_close(my_pairwise_cosine_sum(_mats), pairwise_cosine_sum(_mats), rtol=1e-5, atol=1e-6)
_same = [torch.rand(2, 3, 3)] * 4
torch.testing.assert_close(my_pairwise_cosine_sum(_same), torch.tensor(12.0), rtol=1e-5, atol=1e-5)
torch.testing.assert_close(my_pairwise_cosine_sum(_mats[:1]), torch.tensor(0.0), rtol=0, atol=1e-7)''',
             '''_a = torch.zeros(1, 2, 2)
_a[0, 0, 0] = 1.0
_b = torch.zeros(1, 2, 2)
_b[0, 1, 1] = 1.0
torch.testing.assert_close(my_pairwise_cosine_sum([_a, _b]), torch.tensor(0.0), rtol=0, atol=1e-7)
torch.testing.assert_close(my_pairwise_cosine_sum([_a, -_a]), torch.tensor(-2.0), rtol=1e-6, atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `my_temporal_diversity_loss(maps)`: $L_t$ for a dict `{stage: A_t [B, T_i, T_i]}`:
pool every matrix to the smallest `T` among them with `F.adaptive_avg_pool2d` (it pools the last two
dimensions of a `[N, C, H, W]` tensor), then sum the cosines over the ordered pairs (your `my_pairwise_cosine_sum`
or the library's `pairwise_cosine_sum`)."""

Q2_SOLUTION = '''def my_temporal_diversity_loss(maps):
    """L_t of Eq. (6)-(7).

    Shape:
        {stage: [B, T_i, T_i]} -> [].
    """
    # BEGIN SOLUTION
    t = min(a.shape[-1] for a in maps.values())
    pooled = [F.adaptive_avg_pool2d(a.unsqueeze(1), (t, t)).squeeze(1) for a in maps.values()]
    return my_pairwise_cosine_sum(pooled)
    # END SOLUTION'''

Q2_TESTS = ['''_ = torch.manual_seed(0)
_maps = {2: torch.softmax(torch.randn(2, 8, 8), -1), 3: torch.softmax(torch.randn(2, 4, 4), -1),
         4: torch.softmax(torch.randn(2, 2, 2), -1)}
_loss = my_temporal_diversity_loss(_maps)
assert isinstance(_loss, torch.Tensor) and _loss.dim() == 0
torch.testing.assert_close(_loss, temporal_diversity_loss(_maps), rtol=1e-5, atol=1e-6)''']

Q2_HIDDEN = ['''_ = torch.manual_seed(1)
_maps = {2: torch.softmax(torch.randn(3, 16, 16), -1), 3: torch.softmax(torch.randn(3, 8, 8), -1),
         4: torch.softmax(torch.randn(3, 6, 6), -1), 5: torch.softmax(torch.randn(3, 3, 3), -1)}
torch.testing.assert_close(my_temporal_diversity_loss(_maps), temporal_diversity_loss(_maps), rtol=1e-5,
                           atol=1e-6)''',
             '''_ = torch.manual_seed(2)
_maps = {2: torch.softmax(torch.randn(1, 5, 5), -1), 3: torch.softmax(torch.randn(1, 5, 5), -1)}
torch.testing.assert_close(my_temporal_diversity_loss(_maps), temporal_diversity_loss(_maps), rtol=1e-5,
                           atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write `my_downsample_spatial(a_s, hw, to)`: $S^i$ for a spatial attention matrix
`a_s` `[B, H*W, H*W]` over the positions of an `hw = (H, W)` map, to the positions of a `to = (h, w)` map,
`[B, h*w, h*w]`. Row index = query position, column index = key position, both in row-major order
(`y * W + x`). Pool the key positions (as an `H x W` map per query) and the query positions (as an `H x W` map
per pooled key) with `F.adaptive_avg_pool2d`. The check also assembles $L_s$ from it and compares with
`spatial_diversity_loss`."""

Q3_SOLUTION = '''def my_downsample_spatial(a_s, hw, to):
    """S^i for A_s: both positions of every (query, key) pair pooled to the smaller map.

    Shape:
        [B, H*W, H*W] -> [B, h*w, h*w].
    """
    # BEGIN SOLUTION
    B = a_s.shape[0]
    H, W = hw
    h, w = to
    x = a_s.reshape(B, H * W, H, W)  # [B, query, key_y, key_x]
    x = F.adaptive_avg_pool2d(x, (h, w))  # keys pooled: [B, query, h, w]
    x = x.reshape(B, H, W, h * w).permute(0, 3, 1, 2)  # [B, key', query_y, query_x]
    x = F.adaptive_avg_pool2d(x, (h, w))  # queries pooled: [B, key', h, w]
    return x.reshape(B, h * w, h * w).transpose(1, 2)  # [B, query', key']
    # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_a = torch.softmax(torch.randn(2, 16, 16), -1)
_d = my_downsample_spatial(_a, (4, 4), (2, 2))
assert isinstance(_d, torch.Tensor) and tuple(_d.shape) == (2, 4, 4)
torch.testing.assert_close(_d, downsample_spatial_attention(_a, (4, 4), (2, 2)), rtol=1e-5, atol=1e-6)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(1)
_a = torch.randn(3, 42, 42)
torch.testing.assert_close(my_downsample_spatial(_a, (6, 7), (3, 2)),
                           downsample_spatial_attention(_a, (6, 7), (3, 2)), rtol=1e-5, atol=1e-6)
torch.testing.assert_close(my_downsample_spatial(_a, (6, 7), (6, 7)), _a, rtol=1e-6, atol=1e-6)''',
             '''_ = torch.manual_seed(2)
_sizes = {2: (8, 8), 3: (4, 4), 4: (2, 2), 5: (2, 2)}
_maps = {_i: torch.softmax(torch.randn(2, _h * _w, _h * _w), -1) for _i, (_h, _w) in _sizes.items()}
_mine = pairwise_cosine_sum([my_downsample_spatial(_m, _sizes[_i], (2, 2)) for _i, _m in _maps.items()])
torch.testing.assert_close(_mine, spatial_diversity_loss(_maps, _sizes), rtol=1e-5, atol=1e-6)''']

OUTRO = r"""## What you built

`temporal_diversity_loss` and `spatial_diversity_loss` are your functions (the library's spatial pooling
folds the query positions into the batch instead; `mode="naive"` pools the `HW x HW` matrix as an image, which
mixes positions that are not neighbours). `STMANet` returns $\lambda_1 L_s$ and $\lambda_2 L_t$ (Eq. (9),
$\lambda_1 = 0.01$, $\lambda_2 = 0.001$) as `loss_div_spatial` / `loss_div_temporal`; notebook 04 trains with
them and looks at the stage-wise attention maps."""


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
