"""Shared attention modules: ECA3d (STIN Eq. (3)-(6)) and the axial 3D self-attention (Eq. (1)-(2))."""
import math

import pytest
import torch

from stia_kit.models.attention import AxialAttention3d, ECA3d, SpatioTemporalSelfAttention, eca_kernel_size


@pytest.mark.parametrize("channels, k", [(8, 3), (32, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7)])
def test_eca_kernel_is_the_adaptive_odd_formula(channels, k):
    t = int(abs(math.log2(channels) / 2 + 1 / 2))  # |log2(C)/gamma + b/gamma|, gamma=2, b=1
    assert eca_kernel_size(channels) == (t if t % 2 else t + 1) == k


def test_eca_kernel_is_the_nearest_odd_number_ties_up():
    """|t|_odd of Eq. (4): the odd number nearest to t = log2(C)/2 + 1/2; a tie (t even) goes up."""
    for c in range(1, 5000):
        t = math.log2(c) / 2 + 0.5
        odd = sorted(range(1, 16, 2), key=lambda k: (abs(k - t), -k))  # nearest first, larger first on ties
        assert eca_kernel_size(c) == odd[0], c
    assert [eca_kernel_size(c) for c in (64, 128, 256, 1024, 2048)] == [3, 5, 5, 5, 7]  # t = 3.5, 4, 4.5, 5.5, 6


def test_eca_output_is_sigma_times_input_plus_input():
    torch.manual_seed(0)
    eca = ECA3d(16)
    x = torch.randn(2, 16, 3, 4, 5)
    y = x.mean(dim=(2, 3, 4))
    w = torch.sigmoid(torch.nn.functional.conv1d(y[:, None], eca.conv.weight, padding=eca.kernel_size // 2))[:, 0]
    torch.testing.assert_close(eca(x), w[..., None, None, None] * x + x)


@pytest.mark.parametrize("axis, dim", [("W", 4), ("H", 3), ("T", 2)])
def test_axial_attention_matches_explicit_softmax_along_its_axis(axis, dim):
    torch.manual_seed(0)
    attn = AxialAttention3d(16, axis, qk_reduction=4)
    x = torch.randn(2, 16, 3, 4, 5)
    xc = x.movedim(1, -1)  # channel-last [B, T, H, W, C]: the projections are per-position (1x1x1)
    q, k, v = (proj(xc).movedim(-1, 1) for proj in (attn.query, attn.key, attn.value))  # [B, c, T, H, W]
    # move the attended axis last-but-one: [..., L, c]
    q, k, v = (t.movedim(1, -1).movedim(dim - 1, -2) for t in (q, k, v))
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(attn.qk_dim), dim=-1)
    expected = (a @ v).movedim(-2, dim - 1).movedim(-1, 1)
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)
    amap = attn.attention_map(x)
    assert amap.shape == (x.numel() // 16 // x.shape[dim], x.shape[dim], x.shape[dim])
    torch.testing.assert_close(amap.sum(-1), torch.ones(amap.shape[:-1]))


def test_qk_default_is_the_papers_same_shape_and_reduction_is_a_switch():
    """Q, K, V "each of the same shape" (section 2.2.2.1 (1)) by default; qk_reduction=8 is CCNet's C/8."""
    full, reduced = AxialAttention3d(32, "T"), AxialAttention3d(32, "T", qk_reduction=8)
    assert full.qk_dim == full.query.out_features == full.key.out_features == full.value.out_features == 32
    assert reduced.qk_dim == reduced.query.out_features == 4 and reduced.value.out_features == 32
    x = torch.randn(2, 32, 4, 3, 3)
    assert full(x).shape == reduced(x).shape == x.shape
    assert SpatioTemporalSelfAttention(32).axial["W"].qk_dim == 32
    with pytest.raises(ValueError, match="qk_reduction must be >= 1"):
        AxialAttention3d(32, "W", qk_reduction=0)


def _reach(recurrence: int) -> list[bool]:
    """Does output (0,0,0) depend on the input at positions differing from it in 1, 2 and 3 axes?"""
    torch.manual_seed(0)
    sa = SpatioTemporalSelfAttention(8, recurrence=recurrence, qk_reduction=2)
    x = torch.randn(1, 8, 3, 4, 4, requires_grad=True)
    sa(x)[0, :, 0, 0, 0].sum().backward()
    g = x.grad.abs().sum(1)[0]  # [T, H, W]
    return [bool(g[0, 0, 3] > 0), bool(g[0, 3, 3] > 0), bool(g[2, 3, 3] > 0)]


def test_receptive_field_of_the_shared_passes():
    # One pass: own W row, H column and T tube. Two passes (the paper's setting): every position that
    # differs in at most two coordinates -- the whole H x W plane, like CCNet in 2D. In 3D a position that
    # differs in T, H *and* W needs a third pass; the paper's "whole map after two" holds per plane only.
    assert _reach(1) == [True, False, False]
    assert _reach(2) == [True, True, False]
    assert _reach(3) == [True, True, True]
    n = lambda r: sum(p.numel() for p in SpatioTemporalSelfAttention(8, recurrence=r).parameters())
    assert n(1) == n(2) == n(3)  # passes share their parameters
