"""Build exercises/05_coattention_step.ipynb: one co-attention step of STILT (paper 001, section 3.2, Eq. (1)-(3)).

Run ``.venv/bin/python exercises/src/build_05_coattention_step.py`` to (re)write the master notebook.
Checked against :class:`stia_kit.models.stilt.GuidedAttention` and :class:`~stia_kit.models.stilt.CoAttention`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

SRC = Path(__file__).resolve().parent
sys.path.insert(0, str(SRC))
from _otter import config, question, write  # noqa: E402  (exercises/src/_otter.py, the shared helper)

NAME = "05_coattention_step"

INTRO = r"""# Exercise 05: one co-attention step (STILT)

STILT (paper 001, section 3.2) lets its two streams guide each other. An attention operation
$O = \mathcal{A}(K; g)$ takes a set of per-segment feature vectors $K = [k_1, \dots, k_N]$ and a guidance
vector $g$ from the *other* stream:

$$H = \tanh(W_k K + (W_g g)\,\mathbf{1}^T) \quad (1) \qquad
a^k = \mathrm{softmax}(w_{hk}^T H) \quad (2) \qquad
O = \sum_i a^k_i\, k_i \quad (3)$$

The guidance is added to every segment ($\mathbf{1}^T$ broadcasts it over the $N$ segments), the softmax runs
over the segments, and the output is a convex combination of the segment features. The alternating
co-attention chains three such steps (section 3.2):

1. $K = S$, $g = 0$: summarise the spatial features into $\hat{x}$;
2. $K = T$, $g = \hat{x}$: attend to the temporal features, guided by the spatial summary, giving $\hat{t}$;
3. $K = S$, $g = \hat{t}$: attend to the spatial features again, guided by $\hat{t}$, giving $\hat{s}$.

You write Eq. (2)-(3), then the whole operation as an `nn.Module`, then the three steps. Each answer is checked
against the library's own modules, `stia_kit.models.stilt.GuidedAttention` and `CoAttention`, with
`torch.testing.assert_close`. Tensors: `K` is `[B, N, E]` (batch, segments, features), `g` is `[B, E]`."""

SETUP = """import torch
from torch import nn

from stia_kit.models.stilt import CoAttention, GuidedAttention

_ = torch.manual_seed(0)"""

# ------------------------------------------------------------------------------------------------ q1
Q1_PROMPT = r"""**Question 1.** Write `attention_pool(k, scores)`: given the scores $w_{hk}^T H$ (one number per
segment, `[B, N]`), return the weights $a$ of Eq. (2) (a softmax over the segments) and the attended vector $O$ of
Eq. (3) (`[B, E]`), as the tuple `(O, a)`."""

Q1_SOLUTION = '''def attention_pool(k, scores):
    """Eq. (2)-(3): a = softmax(scores) over the N segments, O = sum_i a_i k_i.

    Shape:
        k [B, N, E], scores [B, N] -> (O [B, E], a [B, N]).
    """
    # BEGIN SOLUTION
    a = torch.softmax(scores, dim=1)  # Eq. (2), over the segments
    return (a.unsqueeze(-1) * k).sum(dim=1), a  # Eq. (3)
    # END SOLUTION'''

Q1_TESTS = ['''_ = torch.manual_seed(0)
_lib = GuidedAttention(6, 5, guided=False)
_k = torch.randn(2, 4, 6)
_scores = _lib.w_hk(torch.tanh(_lib.w_k(_k))).squeeze(-1)
_o, _a = attention_pool(_k, _scores)
_o_ref, _a_ref = _lib(_k)
assert tuple(_o.shape) == (2, 6) and tuple(_a.shape) == (2, 4)
torch.testing.assert_close(_a, _a_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_o, _o_ref, rtol=1e-5, atol=1e-6)''']

Q1_HIDDEN = ['''_ = torch.manual_seed(1)
_lib = GuidedAttention(3, 8, guided=True)
_k, _g = torch.randn(3, 7, 3), torch.randn(3, 3)
_scores = _lib.w_hk(torch.tanh(_lib.w_k(_k) + _lib.w_g(_g).unsqueeze(1))).squeeze(-1)
_o, _a = attention_pool(_k, _scores)
_o_ref, _a_ref = _lib(_k, _g)
torch.testing.assert_close(_a, _a_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_o, _o_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_a.sum(dim=1), torch.ones(3), rtol=1e-5, atol=1e-6)''',
             '''_ = torch.manual_seed(2)
_k = torch.randn(2, 1, 5)
_o, _a = attention_pool(_k, torch.randn(2, 1))
torch.testing.assert_close(_a, torch.ones(2, 1), rtol=1e-6, atol=1e-6)
torch.testing.assert_close(_o, _k[:, 0], rtol=1e-6, atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q2
Q2_PROMPT = r"""**Question 2.** Write the attention operation $\mathcal{A}(K; g)$ of Eq. (1)-(3) as a module.
Use the library's parameter names so that its weights load into yours: `self.w_k = nn.Linear(dim, hidden_dim)`
($W_k$), `self.w_g = nn.Linear(dim, hidden_dim)` ($W_g$) only when `guided` is true (`None` otherwise: step 1
has no guidance), and `self.w_hk = nn.Linear(hidden_dim, 1)` ($w_{hk}$). `forward(k, g=None)` returns
`(O, a)` like `attention_pool` (you may call it)."""

Q2_SOLUTION = '''class MyGuidedAttention(nn.Module):
    """A(K; g) of Eq. (1)-(3).

    Shape:
        k [B, N, E], g [B, E] or None -> (O [B, E], a [B, N]).
    """

    def __init__(self, dim, hidden_dim, guided):
        super().__init__()
        # BEGIN SOLUTION
        self.w_k = nn.Linear(dim, hidden_dim)
        self.w_g = nn.Linear(dim, hidden_dim) if guided else None
        self.w_hk = nn.Linear(hidden_dim, 1)
        # END SOLUTION

    def forward(self, k, g=None):
        # BEGIN SOLUTION
        h = self.w_k(k)  # W_k K: [B, N, hidden]
        if self.w_g is not None:
            h = h + self.w_g(g).unsqueeze(1)  # + (W_g g) 1^T: the guidance added to every segment
        a = torch.softmax(self.w_hk(torch.tanh(h)).squeeze(-1), dim=1)  # Eq. (1)-(2): [B, N]
        return torch.einsum("bn,bne->be", a, k), a  # Eq. (3)
        # END SOLUTION'''

Q2_TESTS = ['''_ = torch.manual_seed(0)
_lib = GuidedAttention(6, 5, guided=True)
_mine = MyGuidedAttention(6, 5, guided=True)
_ = _mine.load_state_dict(_lib.state_dict())
_k, _g = torch.randn(2, 4, 6), torch.randn(2, 6)
_o, _a = _mine(_k, _g)
_o_ref, _a_ref = _lib(_k, _g)
assert tuple(_o.shape) == (2, 6) and tuple(_a.shape) == (2, 4)
torch.testing.assert_close(_a, _a_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_o, _o_ref, rtol=1e-5, atol=1e-6)''']

Q2_HIDDEN = ['''_ = torch.manual_seed(3)
_lib = GuidedAttention(4, 9, guided=False)
_mine = MyGuidedAttention(4, 9, guided=False)
_ = _mine.load_state_dict(_lib.state_dict())
_k = torch.randn(3, 5, 4)
_o, _a = _mine(_k)
_o_ref, _a_ref = _lib(_k)
torch.testing.assert_close(_a, _a_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_o, _o_ref, rtol=1e-5, atol=1e-6)''',
             '''_ = torch.manual_seed(4)
_lib = GuidedAttention(5, 3, guided=True)
_mine = MyGuidedAttention(5, 3, guided=True)
_ = _lib.load_state_dict(_mine.state_dict())
_k, _g = torch.randn(1, 8, 5), 3.0 * torch.randn(1, 5)
_o, _a = _mine(_k, _g)
_o_ref, _a_ref = _lib(_k, _g)
torch.testing.assert_close(_a, _a_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_o, _o_ref, rtol=1e-5, atol=1e-6)
_o2, _a2 = _mine(_k, -_g)
_o2_ref, _a2_ref = _lib(_k, -_g)
torch.testing.assert_close(_a2, _a2_ref, rtol=1e-5, atol=1e-6)''']

# ------------------------------------------------------------------------------------------------ q3
Q3_PROMPT = r"""**Question 3.** Write `alternating_co_attention(step1, step2, step3, s, t)`: the three steps of
section 3.2 on embedded spatial features `s` `[B, N_s, E]` and temporal features `t` `[B, N_t, E]`, with three attention
modules `step1` (unguided), `step2` and `step3` (guided), each called as `module(K, g)` (step 1: `module(K)`)
and returning `(O, a)`. Return the attended features `(s_hat, t_hat)`. The check hands you the library's own
`CoAttention` steps and compares with its forward."""

Q3_SOLUTION = '''def alternating_co_attention(step1, step2, step3, s, t):
    """Steps 1-3 of the alternating co-attention (one round).

    Shape:
        s [B, N_s, E], t [B, N_t, E] -> (s_hat [B, E], t_hat [B, E]).
    """
    # BEGIN SOLUTION
    x_hat, _ = step1(s)  # step 1: K = S, g = 0
    t_hat, _ = step2(t, x_hat)  # step 2: K = T, g = x_hat
    s_hat, _ = step3(s, t_hat)  # step 3: K = S, g = t_hat
    return s_hat, t_hat
    # END SOLUTION'''

Q3_TESTS = ['''_ = torch.manual_seed(0)
_lib = CoAttention(10, embed_dim=6, hidden_dim=5)
_S, _T = torch.randn(2, 3, 10), torch.randn(2, 3, 10)
_s_hat, _t_hat = alternating_co_attention(_lib.step1, _lib.step2, _lib.step3, _lib.embed_s(_S), _lib.embed_t(_T))
_s_ref, _t_ref = _lib(_S, _T)
assert tuple(_s_hat.shape) == (2, 6) and tuple(_t_hat.shape) == (2, 6)
torch.testing.assert_close(_t_hat, _t_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_s_hat, _s_ref, rtol=1e-5, atol=1e-6)''']

Q3_HIDDEN = ['''_ = torch.manual_seed(5)
_lib = CoAttention(7, embed_dim=4, hidden_dim=6)
_S, _T = torch.randn(3, 5, 7), torch.randn(3, 2, 7)
_s_hat, _t_hat = alternating_co_attention(_lib.step1, _lib.step2, _lib.step3, _lib.embed_s(_S), _lib.embed_t(_T))
_s_ref, _t_ref = _lib(_S, _T)
torch.testing.assert_close(_t_hat, _t_ref, rtol=1e-5, atol=1e-6)
torch.testing.assert_close(_s_hat, _s_ref, rtol=1e-5, atol=1e-6)''']

OUTRO = r"""## What you built

`GuidedAttention` is exactly your `MyGuidedAttention`; `CoAttention` embeds each stream with a `Linear` shared
over segments and then runs your three steps (`rounds > 1` repeats steps 2-3 with shared weights;
`init="mean"` replaces step 1 by Algorithm 1's uniform start $a^s = 1/k$). Notebook 02 trains the full STILT
network and shows the learned segment weights with `CoAttention.attention_map`."""


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
