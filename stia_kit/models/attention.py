"""Shared attention modules, named after the papers' terms, reusable by any model family.

Equation and section numbers below are those of the STIN paper (Tian Wei, "A human action recognition method
based on spatiotemporal information interaction", section 2.2.2.1).

- :class:`ECA3d`: 3D *efficient channel attention* (Wang et al., "ECA-Net", CVPR 2020, lifted to video as
  in the STIN paper, Eq. (3)-(6)): global average pooling over ``T, H, W`` (Eq. (5)), a 1D convolution
  across the channel axis with the *adaptive odd kernel* ``k = psi(C) = |log2(C)/gamma + b/gamma|_odd``
  (Eq. (4), the inverse of the assumed channel mapping ``C = phi(k) = 2^(gamma k - b)``, Eq. (3);
  gamma = 2, b = 1), a sigmoid, and the residual re-weighting ``sigma(.) * I + I`` (Eq. (6)).
- :class:`AxialAttention3d`: scaled dot-product self-attention along one axis (``W``, ``H`` or ``T``) of a
  ``[B, C, T, H, W]`` map, with ``1x1x1`` Q/K/V projections (Eq. (1)).
- :class:`SpatioTemporalSelfAttention`: the three axial attentions summed with the input (Eq. (2)), applied
  ``recurrence`` times with *shared* parameters (criss-cross style, Huang et al., "CCNet", ICCV 2019). In 2D
  two passes connect every pair of positions; with three axes two passes connect every pair that differs in
  at most two of ``T, H, W`` (e.g. the whole ``H x W`` plane), and a third pass is needed for pairs that
  differ in all three (``tests/test_attention.py`` checks this). STIN uses two passes, as the paper says
  ("after two rounds of feature selection and filtering", section 2.2.2.1 (1)).

Attention uses :func:`torch.nn.functional.scaled_dot_product_attention`, so CUDA users get fused kernels.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Axis = Literal["W", "H", "T"]
_AXIS_DIM = {"T": 2, "H": 3, "W": 4}  # position of each axis in [B, C, T, H, W]


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """Adaptive kernel size of ECA, Eq. (4): ``k = psi(C) = |log2(C)/gamma + b/gamma|_odd``.

    The paper defines ``|t|_odd`` as "the nearest odd number". Computed as in the ECA-Net reference code:
    ``t' = int(|(log2(C) + b) / gamma|)`` (``t`` truncated), ``k = t'`` if ``t'`` is odd else ``t' + 1``.
    That is exactly the odd number nearest to ``t``, a tie (``t`` an even integer, equally near two odd
    numbers) going to the larger one: e.g. ``t = 3.5 -> 3`` (C = 64), ``t = 4 -> 5`` (C = 128),
    ``t = 4.5 -> 5`` (C = 256), ``t = 5.5 -> 5`` (C = 1024), ``t = 6 -> 7`` (C = 2048).
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA3d(nn.Module):
    """3D efficient channel attention (STIN section 2.2.2.1 (2), Eq. (3)-(6)).

    ``y = Avg(I)``, the 3D global average pool over ``T, H, W`` (Eq. (5)); ``w = sigmoid(C1D_k(y))``, a 1D
    convolution across channels with ``k`` weights shared by all channels (no bias) and ``k`` from Eq. (4);
    output ``w * I + I`` (Eq. (6), ``sigma(C1D_k(Avg(I))) * I + I``).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``.
    """

    def __init__(self, channels: int, *, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.kernel_size = eca_kernel_size(channels, gamma, b)
        self.conv = nn.Conv1d(1, 1, self.kernel_size, padding=self.kernel_size // 2, bias=False)

    def channel_weights(self, x: Tensor) -> Tensor:
        """The sigmoid channel weights ``sigma(Conv1D_k(GAP(I)))``, shape ``[B, C]``."""
        y = x.mean(dim=(2, 3, 4))  # Eq. (5): 3D global average pooling, [B, C]
        y = self.conv(y.unsqueeze(1)).squeeze(1)  # C1D_k, k from Eq. (4): local cross-channel interaction, [B, C]
        return torch.sigmoid(y)

    def forward(self, x: Tensor) -> Tensor:
        w = self.channel_weights(x)[:, :, None, None, None]  # [B, C, 1, 1, 1]
        return w * x + x  # Eq. (6): sigma(.) * I + I


class AxialAttention3d(nn.Module):
    """Self-attention along one axis of a ``[B, C, T, H, W]`` map (STIN section 2.2.2.1 (1), Eq. (1)).

    ``Q, K, V`` are ``1x1x1`` projections; every line of positions along ``axis`` is one attention
    sequence: ``softmax(Q K^T / sqrt(d)) V`` with ``d`` the Q/K channels. Returns only the attention output
    (the caller adds the residual, Eq. (2)).

    ``qk_reduction``: Q and K have ``C // qk_reduction`` channels, V has ``C``. The default 1 is the paper's
    ("three 1x1 convolutions to generate the query (Q), key (K), and value (V) matrices, each of the same
    shape I[{T, H}, W, C]"); CCNet, which the recurrent axial scheme follows, uses 8.

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; internally ``[B * (other two axes), L, d]`` with ``L`` the
        length of ``axis``.
    """

    def __init__(self, channels: int, axis: Axis, *, qk_reduction: int = 1) -> None:
        super().__init__()
        if axis not in _AXIS_DIM:
            raise ValueError(f"axis must be one of {list(_AXIS_DIM)}, got {axis!r}")
        if qk_reduction < 1:
            raise ValueError(f"qk_reduction must be >= 1, got {qk_reduction}")
        self.axis = axis
        self.qk_dim = max(channels // qk_reduction, 1)
        # 1x1x1 projections, applied as Linear layers on the channel-last sequences: the same maps as
        # 1x1x1 Conv3d, but PyTorch's CPU Conv3d backward loops over slices for 1x1x1 kernels (measured:
        # it made STIN's training step ~50 % slower than SlowFast's; as Linear the overhead disappears).
        self.query = nn.Linear(channels, self.qk_dim)
        self.key = nn.Linear(channels, self.qk_dim)
        self.value = nn.Linear(channels, channels)

    def _to_sequences(self, t: Tensor) -> Tensor:
        """``[B, c, T, H, W] -> [B * (other axes), L, c]`` with the attended axis as the sequence."""
        d = _AXIS_DIM[self.axis]
        others = [i for i in (2, 3, 4) if i != d]
        t = t.permute(0, *others, d, 1)  # [B, X, Y, L, c]
        return t.reshape(-1, t.shape[-2], t.shape[-1])  # [B*X*Y, L, c]

    def _from_sequences(self, t: Tensor, shape: torch.Size) -> Tensor:
        """Inverse of :meth:`_to_sequences` back to ``shape`` ``= [B, C, T, H, W]``."""
        d = _AXIS_DIM[self.axis]
        others = [i for i in (2, 3, 4) if i != d]
        B, C = shape[0], shape[1]
        t = t.reshape(B, shape[others[0]], shape[others[1]], shape[d], C)  # [B, X, Y, L, C]
        inv = [0] * 5  # permutation that undoes (0, *others, d, 1)
        for pos, src in enumerate((0, *others, d, 1)):
            inv[src] = pos
        return t.permute(*inv)  # [B, C, T, H, W]

    def attention_map(self, x: Tensor) -> Tensor:
        """Explicit ``softmax(Q K^T / sqrt(d))`` of shape ``[B * (other axes), L, L]`` (for teaching/plots)."""
        seq = self._to_sequences(x)  # [N, L, C]
        q, k = self.query(seq), self.key(seq)  # [N, L, d]
        return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.qk_dim), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        seq = self._to_sequences(x)  # [N, L, C]
        q, k, v = self.query(seq), self.key(seq), self.value(seq)  # [N, L, d], [N, L, d], [N, L, C]
        out = F.scaled_dot_product_attention(q, k, v)  # Eq. (1): softmax(QK^T/sqrt(d)) V, [N, L, C]
        return self._from_sequences(out, x.shape)  # [B, C, T, H, W]


class SpatioTemporalSelfAttention(nn.Module):
    """3D spatiotemporal self-attention: axial attentions along ``W, H, T`` summed with the input,
    applied ``recurrence`` times with shared parameters (criss-cross style).

    One pass: ``x <- x + A_W(x) + A_H(x) + A_T(x)`` (Eq. (2) with the three directions' outputs "added to
    the original input features"). A position sees its own row, column and tube after one pass, every
    position differing in at most two coordinates after two passes, the whole ``T x H x W`` map after three
    (the CCNet argument needs one pass per axis in 3D). ``qk_reduction`` as in :class:`AxialAttention3d`.

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``.
    """

    def __init__(
        self, channels: int, *, axes: Sequence[Axis] = ("W", "H", "T"), recurrence: int = 2, qk_reduction: int = 1
    ) -> None:
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence}")
        self.recurrence = recurrence
        self.axial = nn.ModuleDict({a: AxialAttention3d(channels, a, qk_reduction=qk_reduction) for a in axes})

    def forward(self, x: Tensor) -> Tensor:
        for _ in range(self.recurrence):  # shared parameters across passes
            x = x + sum(attn(x) for attn in self.axial.values())  # Eq. (2): attention + I
        return x
