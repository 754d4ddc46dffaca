"""Build exercises/06_tsn_sampler.ipynb: the TSN segment sampler (T-STAM, paper 004, section 1 and 4.2).

Run ``.venv/bin/python exercises/src/build_06_tsn_sampler.py`` to (re)write the master notebook.
Checked against :func:`stia_kit.data.sampling.tsn_indices`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "06_tsn_sampler"

INTRO = r"""# Exercise 06: the TSN segment sampler

T-STAM (paper 004) feeds its two streams with Temporal Segment Network (TSN) sampling: "each video is divided
into $N$ equal intervals, with one frame randomly sampled from each interval" (section 1); at test time frames
are taken by "average sampling" (section 4.2), i.e. at fixed places inside each interval. Sparse sampling
covers the whole video with only $K$ frames, however long the video is.

For a video of $F$ frames and $K$ segments, segment $k$ is the frame range $[b_k, b_{k+1})$ with
$$b_k = \left\lfloor \frac{k F}{K} \right\rfloor, \qquad k = 0, \dots, K,$$
of length $L_k = b_{k+1} - b_k$ (all $\ge 1$ when $F \ge K$). Then

- **training**: one snippet per segment at a random offset, $b_k + \lfloor u_k L_k \rfloor$, $u_k \sim U[0, 1)$;
- **testing**: clip $c$ of $n$ test clips takes offset $\lfloor \frac{c + 1/2}{n} L_k \rfloor$ of every segment
  (one clip: the segment centre, $b_k + \lfloor L_k / 2 \rfloor$).

You write the three pieces with numpy; each answer is checked against the library's own sampler,
`stia_kit.data.sampling.tsn_indices`, which returns int64 arrays `[num_clips, K]`. Throughout you may assume
$F \ge K$ (the library has a separate rule for shorter videos)."""

SETUP = """import numpy as np
import torch

from stia_kit.data.sampling import tsn_indices

_ = torch.manual_seed(0)
rng = np.random.default_rng(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `segment_bounds(num_frames, num_segments)`: the $K + 1$ bounds $b_0 = 0, \dots,
b_K = F$ as an int64 numpy array. Integer arithmetic gives them exactly."""

Q1_SOLUTION = '''def segment_bounds(num_frames, num_segments):
    """b_k = floor(k F / K), k = 0..K: segment k is the frame range [b_k, b_{k+1}).

    Shape:
        returns int64 [num_segments + 1].
    """
    # BEGIN SOLUTION
    return (np.arange(num_segments + 1, dtype=np.int64) * num_frames) // num_segments
    # END SOLUTION'''

Q1_TESTS = ['''_b = segment_bounds(30, 3)
assert isinstance(_b, np.ndarray) and _b.dtype == np.int64 and _b.shape == (4,)
np.testing.assert_array_equal(_b, [0, 10, 20, 30])
np.testing.assert_array_equal(_b[:-1] + (_b[1:] - _b[:-1]) // 2, tsn_indices(30, 3, train=False)[0])''']

Q1_HIDDEN = ['''for _F, _K in [(10, 3), (25, 4), (8, 8), (17, 5), (100, 7), (1, 1), (64, 16)]:
    _b = segment_bounds(_F, _K)
    assert _b.dtype == np.int64 and _b.shape == (_K + 1,) and _b[0] == 0 and _b[-1] == _F
    assert np.all(_b[1:] - _b[:-1] >= 1)
    np.testing.assert_array_equal(_b[:-1] + (_b[1:] - _b[:-1]) // 2, tsn_indices(_F, _K, train=False)[0])''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write `tsn_test_indices(num_frames, num_segments, num_clips=1)`: the test-time indices,
int64 `[num_clips, K]`, row `c` taking offset $\lfloor \frac{c + 1/2}{n} L_k \rfloor$ inside every segment $k$."""

Q2_SOLUTION = '''def tsn_test_indices(num_frames, num_segments, num_clips=1):
    """Test-mode TSN sampling: clip c takes offset floor((c + 1/2) / num_clips * L_k) of each segment.

    Shape:
        returns int64 [num_clips, num_segments].
    """
    # BEGIN SOLUTION
    b = segment_bounds(num_frames, num_segments)
    lengths = b[1:] - b[:-1]  # [K]
    c = np.arange(num_clips, dtype=np.int64)[:, None]  # [n, 1]
    return (b[None, :-1] + ((2 * c + 1) * lengths[None, :]) // (2 * num_clips)).astype(np.int64)
    # END SOLUTION'''

Q2_TESTS = ['''_idx = tsn_test_indices(30, 3)
assert isinstance(_idx, np.ndarray) and _idx.dtype == np.int64 and _idx.shape == (1, 3)
np.testing.assert_array_equal(_idx, [[5, 15, 25]])
np.testing.assert_array_equal(tsn_test_indices(30, 3, num_clips=2), tsn_indices(30, 3, train=False, num_clips=2))''']

Q2_HIDDEN = ['''for _F, _K, _n in [(10, 3, 1), (25, 4, 3), (8, 8, 2), (17, 5, 4), (100, 7, 10), (1, 1, 3), (64, 16, 5)]:
    _idx = tsn_test_indices(_F, _K, num_clips=_n)
    assert _idx.dtype == np.int64 and _idx.shape == (_n, _K)
    np.testing.assert_array_equal(_idx, tsn_indices(_F, _K, train=False, num_clips=_n))''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write `tsn_train_indices(num_frames, num_segments, rng)`: the training indices, int64
`[1, K]`. Draw the offsets with **one** call `u = rng.random(num_segments)` (one uniform number per segment, in
segment order) and take $b_k + \lfloor u_k L_k \rfloor$, so that the same seeded generator gives the library's
indices exactly."""

Q3_SOLUTION = '''def tsn_train_indices(num_frames, num_segments, rng):
    """Training-mode TSN sampling: one random frame inside each segment.

    Shape:
        returns int64 [1, num_segments].
    """
    # BEGIN SOLUTION
    b = segment_bounds(num_frames, num_segments)
    lengths = b[1:] - b[:-1]
    u = rng.random(num_segments)  # one uniform in [0, 1) per segment
    offsets = np.minimum(np.floor(u * lengths).astype(np.int64), lengths - 1)  # float guard: u * L < L
    return (b[:-1] + offsets)[None, :]
    # END SOLUTION'''

Q3_TESTS = ['''_idx = tsn_train_indices(30, 3, np.random.default_rng(0))
assert isinstance(_idx, np.ndarray) and _idx.dtype == np.int64 and _idx.shape == (1, 3)
np.testing.assert_array_equal(_idx, tsn_indices(30, 3, train=True, rng=np.random.default_rng(0)))''']

Q3_HIDDEN = ['''for _seed, (_F, _K) in enumerate([(10, 3), (25, 4), (8, 8), (17, 5), (100, 7), (1, 1), (64, 16)]):
    _idx = tsn_train_indices(_F, _K, np.random.default_rng(_seed + 1))
    assert _idx.dtype == np.int64 and _idx.shape == (1, _K)
    np.testing.assert_array_equal(_idx, tsn_indices(_F, _K, train=True, rng=np.random.default_rng(_seed + 1)))''',
             '''_g = np.random.default_rng(7)
_draws = np.concatenate([tsn_train_indices(12, 3, _g) for _ in range(200)])
assert _draws.shape == (200, 3)
for _k in range(3):
    assert set(_draws[:, _k].tolist()) == set(range(4 * _k, 4 * _k + 4))''']

OUTRO = r"""## What you built

`tsn_indices(F, K, train=..., rng=..., num_clips=...)` is your three functions in one (plus the short-video
rule of its module docstring). T-STAM's datasets call it for every sample; notebook 03 samples $K$ segments
of RGB frames and flow stacks with it and studies the number of segments (paper section 4.3.1)."""


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
