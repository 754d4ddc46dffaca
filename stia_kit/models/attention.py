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

The 3D attention of the ST-MANet and MSF-Net papers (issue 10) follows, with those papers' equation numbers
and the readings of ``shared/specs/3d_attention.md`` (each labelled "paper" or "reading"):

- :class:`TDA` (+ :class:`TDASeed`) and :class:`SDA`: ST-MANet's temporal / spatial deep aggregation
  (section 3.2-3.3, Eq. (1)-(5)) with explicit ``A_t [B, T, T]`` and ``A_s [B, HW, HW]`` matrices.
- :class:`SE3d`, :class:`CBAM3d`, :class:`FrequencyChannelAttention3d` (FcaNet, MSF-Net Eq. (5)-(6)),
  :class:`SpatioTemporalAttention3d` (MSF-Net Eq. (7)) and :class:`FSAM` (Eq. (8)).

Every one exposes its weights through ``attention_map(inputs)``, computed from the module's own inputs exactly
as ``forward`` uses them (no hooks, no state).
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
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``[B, C]``.
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

    def attention_map(self, x: Tensor) -> Tensor:
        """The channel weights this module applies to ``x`` (:meth:`channel_weights`), ``[B, C]``."""
        return self.channel_weights(x)

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


# ----------------------------------------------------------------------------------------------------------
# 3D attention of the ST-MANet and MSF-Net papers (issue 10; readings from ``shared/specs/3d_attention.md``).
# Equation numbers below are those of the paper each class names: ST-MANet = "spatio-temporal-based multi-level
# aggregation network" (paper 002, section 3.2-3.3, Eq. (1)-(5)); MSF-Net = "multilevel spatiotemporal feature
# fusion network with FSAM" (paper 003, section 3.2, Eq. (5)-(8)).
# ----------------------------------------------------------------------------------------------------------

TDAProj = Literal["reshape", "conv3x1x1"]
PoolKind = Literal["max", "avg"]

#: FcaNet's "top-16" frequency list (Qin et al., "FcaNet", ICCV 2021, reference code ``get_freq_indices('top16')``)
#: as (u, v) on a 7x7 DCT grid. MSF-Net only says "multi-frequency" with n parts; top-16 is FcaNet's default:
#: a choice (reading), not printed in the MSF-Net paper.
FCA_TOP16: tuple[tuple[int, int], ...] = tuple(
    zip((0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2), (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2))
)


def _conv3x1x1(in_channels: int, out_channels: int) -> nn.Conv3d:
    """A ``3x1x1`` temporal convolution, "same" padding in time (ST-MANet's kernel size, section 3.2)."""
    return nn.Conv3d(in_channels, out_channels, (3, 1, 1), padding=(1, 0, 0))


def _time_rows(x: Tensor) -> Tensor:
    """``[B, C, T, H, W] -> [B, T, C*H*W]``: one row per time step (ST-MANet's phi / tau / sigma reshapes)."""
    B, C, T, H, W = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(B, T, C * H * W)  # [B, T, CHW]


def _from_time_rows(r: Tensor, channels: int, size: Sequence[int]) -> Tensor:
    """Inverse of :func:`_time_rows`: ``[B, T, C*H*W] -> [B, C, T, H, W]`` with ``size = (T, H, W)``."""
    T, H, W = size
    return r.reshape(r.shape[0], T, channels, H, W).permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]


def _position_rows(x: Tensor) -> Tensor:
    """``[B, C, T, H, W] -> [B, H*W, C*T]``: one row per spatial position (ST-MANet's alpha / eta reshapes;
    positions flattened H-major, the paper's ``WH`` order is not specified)."""
    B, C, T, H, W = x.shape
    return x.permute(0, 3, 4, 1, 2).reshape(B, H * W, C * T)  # [B, HW, CT]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class TDASeed(nn.Module):
    """The seed ``Z_TDA^1`` of the first TDA (ST-MANet section 3.2; reading ``tda_seed``).

    Reading: the paper defines ``Z_TDA^{i-1}`` with ``C/2`` channels but never ``Z_TDA^1`` (stage 1 has 64
    channels, stage 2 needs ``C/2 = 128``). STIA-Kit seeds it with a ``3x1x1`` conv 64 -> 128 (the paper's TDA
    kernel size) on the stem+pool output, which already has stage 2's ``(T, H, W)`` in the Hara 3D ResNet-50.
    The alternative reading, no seed (``Z_c^2 = Z^2``), is ``TDA(prev_channels=0)``.

    Shape:
        ``[B, in_channels, T, H, W] -> [B, out_channels, T, H, W]``.
    """

    def __init__(self, in_channels: int = 64, out_channels: int = 128) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("out_channels", out_channels)
        self.conv = _conv3x1x1(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class TDA(nn.Module):
    """Temporal-based deep aggregation (ST-MANet section 3.2, Eq. (1)-(3)), one per stage ``i >= 2``.

    Inputs: the stage output ``Z^i`` ``[B, C, T, H, W]`` and the previous TDA output ``Z_TDA^{i-1}``
    ``[B, C/2, T, H, W]`` (or the :class:`TDASeed`). With ``Z_c = cat[Z^i, Z_TDA^{i-1}]`` (``3C/2`` channels,
    paper):

    - Eq. (1): ``A_t = softmax(phi(Z_c) @ varpi(Z_c))``, ``[T, T]`` per sample, softmax over the last axis, so
      each row sums to 1 over T (paper; products read as matrix products, the text's "element-wise" cannot
      give the printed shapes: reading). ``phi``: ``[T, 3/2 CHW]``, ``varpi``: its transpose.
    - Eq. (2): ``Z_TDA^i = eps(softmax(A_t @ tau(Z_c)))``; tau's printed size ``T x 3/2 CWH`` needs ``Z_c``,
      not ``Z_TDA^{i-1}`` (reading); eps = reshape back, ``3x1x1`` conv ``3C/2 -> out_channels`` (paper's
      kernel; ``out_channels`` = the next stage's ``C/2`` = ``C``), then an adaptive pool (max by default,
      reading) to the next stage's ``(T, H, W)`` (7 -> 4 needs adaptive/ceil pooling: reading);
      ``pool_to=None`` at the last TDA, which has no pooling (paper).
    - Eq. (3): ``Zbar_t^i = Z^i + eps'(softmax(A_t @ sigma(Z^i)))``, sigma: ``[T, CHW]``; eps' cannot pool (it is
      added to ``Z^i``): a separate ``3x1x1`` conv ``C -> C`` (reading).
    - The outer softmax of Eq. (2)/(3) is taken over the attended axis T (reading). No ``1/sqrt(d)`` scaling as
      printed (``scale_logits=False``); with ``d = 3/2 CHW`` (301,056 at stage 2, 32x112^2) the unscaled
      softmax saturates to near one-hot rows; ``scale_logits=True`` divides the logits by ``sqrt(d)``.

    ``proj`` (reading): the paper calls phi / varpi / tau / sigma reshapes yet says "the convolutional kernel
    sizes used here are 3x1x1". ``"conv3x1x1"`` (default): phi and varpi are ``3x1x1`` convs
    ``3C/2 -> 3C/2`` before the reshape; ``"reshape"``: pure reshapes (only the two eps convs learn).
    ``proj_values=True`` also puts ``3x1x1`` convs in tau (``3C/2 -> 3C/2``) and sigma (``C -> C``): the
    full-width conv reading (+171 M parameters over the four stages at paper width, spec). All convs have a
    bias and no BN (not stated: reading). ``prev_channels=0``: no ``Z_TDA^{i-1}`` (``tda_seed="none"``,
    ``Z_c = Z^i``).

    Shape:
        ``forward(z [B, C, T, H, W], prev [B, prev_channels, T, H, W] | None, pool_to=(T', H', W') | None)
        -> (Zbar_t [B, C, T, H, W], Z_TDA [B, out_channels, T', H', W'])`` (``(T, H, W)`` when ``pool_to`` is
        None); internally rows ``[B, T, C*H*W]``.
    """

    def __init__(
        self,
        channels: int,
        *,
        prev_channels: int | None = None,
        out_channels: int | None = None,
        proj: TDAProj = "conv3x1x1",
        proj_values: bool = False,
        pool: PoolKind = "max",
        scale_logits: bool = False,
    ) -> None:
        super().__init__()
        _check_positive("channels", channels)
        if prev_channels is None:
            if channels % 2:
                raise ValueError(f"channels must be even for the default prev_channels = C/2, got {channels}")
            prev_channels = channels // 2
        if isinstance(prev_channels, bool) or not isinstance(prev_channels, int) or prev_channels < 0:
            raise ValueError(f"prev_channels must be an int >= 0 (0 = no previous TDA), got {prev_channels!r}")
        out_channels = channels if out_channels is None else out_channels
        _check_positive("out_channels", out_channels)
        if proj not in ("reshape", "conv3x1x1"):
            raise ValueError(f"proj must be 'reshape' or 'conv3x1x1', got {proj!r}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.channels, self.prev_channels, self.out_channels = channels, prev_channels, out_channels
        self.proj, self.proj_values, self.pool, self.scale_logits = proj, proj_values, pool, scale_logits
        cc = channels + prev_channels  # channels of Z_c (3C/2 with the default prev_channels)
        self.concat_channels = cc
        conv = proj == "conv3x1x1"
        self.phi: nn.Module = _conv3x1x1(cc, cc) if conv else nn.Identity()  # Eq. (1) phi (before the reshape)
        self.varpi: nn.Module = _conv3x1x1(cc, cc) if conv else nn.Identity()  # Eq. (1) varpi
        self.tau: nn.Module = _conv3x1x1(cc, cc) if proj_values else nn.Identity()  # Eq. (2) tau, value = Z_c
        self.sigma: nn.Module = _conv3x1x1(channels, channels) if proj_values else nn.Identity()  # Eq. (3) sigma
        self.eps_tda = _conv3x1x1(cc, out_channels)  # Eq. (2) eps: conv 3C/2 -> C (pooling applied in forward)
        self.eps_main = _conv3x1x1(channels, channels)  # Eq. (3) eps': conv C -> C, no pooling (reading)

    def _concat(self, z: Tensor, prev: Tensor | None) -> Tensor:
        """``Z_c = cat[Z^i, Z_TDA^{i-1}]`` along channels (``Z^i`` alone when ``prev_channels == 0``)."""
        if z.dim() != 5 or z.shape[1] != self.channels:
            raise ValueError(f"TDA expects Z^i of shape [B, {self.channels}, T, H, W], got {tuple(z.shape)}")
        if self.prev_channels == 0:
            if prev is not None:
                raise ValueError("TDA was built with prev_channels=0 (no seed) but received Z_TDA^{i-1}")
            return z
        if prev is None:
            raise ValueError(f"TDA needs Z_TDA^(i-1) with {self.prev_channels} channels (or the TDASeed output)")
        want = (z.shape[0], self.prev_channels, *z.shape[2:])
        if tuple(prev.shape) != want:
            raise ValueError(f"TDA expects Z_TDA^(i-1) of shape {want} (Z^i's T, H, W), got {tuple(prev.shape)}")
        return torch.cat([z, prev], dim=1)  # [B, 3C/2, T, H, W]

    def _attention(self, zc: Tensor) -> Tensor:
        q = _time_rows(self.phi(zc))  # phi(Z_c): [B, T, D], D = 3/2 CHW
        k = _time_rows(self.varpi(zc)).transpose(1, 2)  # varpi(Z_c): [B, D, T]
        logits = q @ k  # [B, T, T]
        if self.scale_logits:
            logits = logits / math.sqrt(q.shape[-1])
        return torch.softmax(logits, dim=-1)  # Eq. (1), rows sum to 1 over T

    def attention_map(self, z: Tensor, prev: Tensor | None = None) -> Tensor:
        """The temporal attention matrix ``A_t`` of Eq. (1), ``[B, T, T]`` (rows: query time, softmax over the
        key time), computed from the module's own inputs exactly as :meth:`forward` uses it."""
        return self._attention(self._concat(z, prev))

    def forward(
        self, z: Tensor, prev: Tensor | None = None, *, pool_to: tuple[int, int, int] | None = None,
        return_attention: bool = False,
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
        """``(Zbar_t^i, Z_TDA^i)``; with ``return_attention`` also ``A_t`` (the matrix this pass used, so a
        caller needing it, e.g. for the diversity loss, does not recompute Eq. (1))."""
        zc = self._concat(z, prev)  # [B, 3C/2, T, H, W]
        a = self._attention(zc)  # [B, T, T]
        size = z.shape[2:]
        agg = torch.softmax(a @ _time_rows(self.tau(zc)), dim=1)  # Eq. (2): outer softmax over T, [B, T, 3/2 CHW]
        z_tda = self.eps_tda(_from_time_rows(agg, self.concat_channels, size))  # [B, C_out, T, H, W]
        if pool_to is not None:
            pool_fn = F.adaptive_max_pool3d if self.pool == "max" else F.adaptive_avg_pool3d
            z_tda = pool_fn(z_tda, tuple(pool_to))  # [B, C_out, T', H', W'], the next stage's size
        main = torch.softmax(a @ _time_rows(self.sigma(z)), dim=1)  # Eq. (3): outer softmax over T, [B, T, CHW]
        zbar_t = z + self.eps_main(_from_time_rows(main, self.channels, size))  # Eq. (3), [B, C, T, H, W]
        return (zbar_t, z_tda, a) if return_attention else (zbar_t, z_tda)


class SDA(nn.Module):
    """Spatial-based deep aggregation (ST-MANet section 3.3, Eq. (4)-(5)); no learned parameters.

    - Eq. (4): ``A_s = softmax(alpha(Z) @ beta(Z))``, ``[HW, HW]`` per sample, softmax over the last axis (each
      row sums to 1); alpha: ``[HW, CT]``; beta printed "(T x WH)", read ``CT x WH`` (= alpha transposed) so that
      the product exists (reading).
    - Eq. (5): ``Zbar_s = pi(softmax(A_s @ eta(Z)))``, eta: ``[HW, CT]``, pi the reshape back to ``[C, T, H, W]``;
      the outer softmax is over the positions ``HW`` (reading).
    - alpha, beta, eta, pi are reshapes (paper): SDA has no parameters. No ``1/sqrt(d)`` scaling as printed
      (``scale_logits=False``; ``d = CT``).
    - Cost: ``A_s`` is quadratic in ``HW``; at stage 2 of a 32x112^2 ResNet-50 it is 784 x 784 (spec: 5.04 GMACs).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``[B, H*W, H*W]``, positions H-major.
    """

    def __init__(self, *, scale_logits: bool = False) -> None:
        super().__init__()
        self.scale_logits = scale_logits

    def _attention(self, rows: Tensor) -> Tensor:
        logits = rows @ rows.transpose(1, 2)  # alpha(Z) @ beta(Z): [B, HW, HW]
        if self.scale_logits:
            logits = logits / math.sqrt(rows.shape[-1])
        return torch.softmax(logits, dim=-1)  # Eq. (4)

    def attention_map(self, z: Tensor) -> Tensor:
        """The spatial attention matrix ``A_s`` of Eq. (4), ``[B, H*W, H*W]`` (H-major positions; rows sum to 1),
        computed exactly as :meth:`forward` uses it."""
        return self._attention(_position_rows(z))

    def forward(self, z: Tensor, *, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``Zbar_s^i``; with ``return_attention`` also the ``A_s`` this pass used."""
        B, C, T, H, W = z.shape
        rows = _position_rows(z)  # alpha(Z) = eta(Z): [B, HW, CT]
        a = self._attention(rows)  # Eq. (4): [B, HW, HW]
        out = torch.softmax(a @ rows, dim=1)  # Eq. (5): outer softmax over HW, [B, HW, CT]
        out = out.reshape(B, H, W, C, T).permute(0, 3, 4, 1, 2)  # pi: [B, C, T, H, W]
        return (out, a) if return_attention else out


def _hidden_channels(channels: int, reduction: int) -> int:
    _check_positive("channels", channels)
    _check_positive("reduction", reduction)
    if channels // reduction < 1:
        raise ValueError(f"reduction must be <= channels ({channels}), got {reduction}")
    return channels // reduction


class SE3d(nn.Module):
    """Squeeze-and-excitation over ``T, H, W`` (Hu et al., "SENet", CVPR 2018; MSF-Net Table 3's "SE").

    ``w = sigmoid(W2 relu(W1 GAP(x)))`` with ``W1: C -> C/r``, ``W2: C/r -> C`` (with biases, as SENet);
    output ``w * x``. At 256 + 512 channels, r = 16: 41,776 parameters (MSF-Net Table 3: 21.88 M on MSF-R3D).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``[B, C]``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def attention_map(self, x: Tensor) -> Tensor:
        """The sigmoid channel weights ``w``, ``[B, C]``, exactly as :meth:`forward` applies them."""
        return torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # squeeze: GAP over T, H, W -> [B, C]

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_map(x)[:, :, None, None, None]


class SpatioTemporalAttention3d(nn.Module):
    """Spatiotemporal attention module, SAM (MSF-Net section 3.2, Eq. (7)).

    ``ST_att = sigmoid(f^{7x7x7}(cat[MaxPool_c(F), AvgPool_c(F)]))``: max and mean over the channel axis (paper,
    in that order), a ``Conv3d(2, 1, kernel, padding=kernel // 2)`` and a sigmoid; output ``F * ST_att``.
    ``bn=False`` (default): no BN, as Eq. (7) prints (the conv then has a bias); ``bn=True``: CBAM's
    conv (no bias) + BN (switch, used by :class:`CBAM3d`).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``[B, 1, T, H, W]``.
    """

    def __init__(self, kernel: int = 7, *, bn: bool = False) -> None:
        super().__init__()
        _check_positive("kernel", kernel)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), got {kernel}")
        self.conv = nn.Conv3d(2, 1, kernel, padding=kernel // 2, bias=not bn)
        self.bn: nn.Module = nn.BatchNorm3d(1) if bn else nn.Identity()

    def attention_map(self, x: Tensor) -> Tensor:
        """``ST_att`` of Eq. (7), ``[B, 1, T, H, W]``, exactly as :meth:`forward` applies it."""
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)  # [B, 2, T, H, W]
        return torch.sigmoid(self.bn(self.conv(pooled)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_map(x)


class CBAM3d(nn.Module):
    """CBAM lifted to 3D (Woo et al., "CBAM", ECCV 2018; MSF-Net Table 3's "CBAM"): channel then
    spatiotemporal attention, applied sequentially.

    Channel: ``w_c = sigmoid(MLP(AvgPool(x)) + MLP(MaxPool(x)))`` over ``T, H, W``, one shared MLP ``C -> C/r ->
    C`` (with biases, as CBAM's code); then :class:`SpatioTemporalAttention3d` with ``bn=True`` (CBAM's spatial
    conv + BN, ``kernel^3`` here) on ``w_c * x``. At 256 + 512 channels, r = 16: 43,152 parameters (Table 3:
    21.88 M on MSF-R3D, as SE and FSAM).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``{"channel": [B, C],
        "spatiotemporal": [B, 1, T, H, W]}``.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = SpatioTemporalAttention3d(kernel, bn=True)

    def channel_weights(self, x: Tensor) -> Tensor:
        """``w_c``, ``[B, C]``."""
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3, 4))) + self.mlp(x.amax(dim=(2, 3, 4))))

    def attention_map(self, x: Tensor) -> dict[str, Tensor]:
        """``{"channel": w_c [B, C], "spatiotemporal": [B, 1, T, H, W]}``; the second computed on ``w_c * x``,
        exactly as :meth:`forward` applies them (``forward(x) = x * channel * spatiotemporal``)."""
        wc = self.channel_weights(x)
        return {"channel": wc, "spatiotemporal": self.spatial.attention_map(x * wc[:, :, None, None, None])}

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.channel_weights(x)[:, :, None, None, None]
        return self.spatial(x)


def _dct_1d(pos: Tensor, freq: int, size: int) -> Tensor:
    """Orthonormal DCT-II basis ``cos(pi f (p + 1/2) / N) / sqrt(N)``, times ``sqrt(2)`` for ``f > 0`` (FcaNet)."""
    v = torch.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
    return v if freq == 0 else v * math.sqrt(2.0)


class FrequencyChannelAttention3d(nn.Module):
    """Frequency channel attention, FAM (FcaNet, Qin et al. ICCV 2021, as MSF-Net section 3.2, Eq. (5)-(6)).

    The channels are split into ``n = len(frequencies)`` equal parts (paper: ``n`` parts ``X^i``); part ``i`` is
    summarised by the 2D DCT coefficient ``(u_i, v_i)`` of each frame, averaged over T (2D per frame then mean
    over T: reading, the paper's FAM is 2D); ``Freq = cat[Freq^0, ..., Freq^{n-1}]`` (Eq. (5));
    ``Fc_att = sigmoid(fc(Freq))`` (Eq. (6)) with fc = ``Linear(C, C/r, no bias) - ReLU - Linear(C/r, C, no
    bias)`` (FcaNet's; a single C x C fc gives 22.16 M on MSF-R3D, ruled out by the spec); output
    ``Fc_att * x``.

    Frequencies: FcaNet's top-16 list (:data:`FCA_TOP16`, default: a choice) on a ``grid x grid`` (7x7) grid,
    scaled by ``dct_size // grid`` as in FcaNet (14x14 DCT at 256 channels, 7x7 at 512 for 112 inputs of
    MSF-R3D). Frames of another size are adaptive-average-pooled to the DCT size first (FcaNet). The DCT
    filters are a non-persistent buffer ``weight`` ``[C, dct_h, dct_w]`` (rebuilt from the arguments, not in
    the state dict). ``frequencies=((0, 0),)``: the DCT coefficient is ``sqrt(dct_h dct_w)`` x GAP, i.e. SE's
    squeeze up to a constant (FcaNet's observation).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``[B, C]``; ``dct_basis``: ``[n, dct_h, dct_w]``.
    """

    def __init__(
        self,
        channels: int,
        dct_size: int | tuple[int, int],
        *,
        reduction: int = 16,
        frequencies: Sequence[tuple[int, int]] = FCA_TOP16,
        grid: int = 7,
    ) -> None:
        super().__init__()
        hidden = _hidden_channels(channels, reduction)
        dct_h, dct_w = (dct_size, dct_size) if isinstance(dct_size, int) else tuple(dct_size)
        _check_positive("grid", grid)
        for name, v in (("dct_size (height)", dct_h), ("dct_size (width)", dct_w)):
            _check_positive(name, v)
            if v < grid:
                raise ValueError(
                    f"{name} must be >= grid ({grid}) so the {grid}x{grid} frequencies stay distinct, got {v}"
                )
        freqs = [tuple(f) for f in frequencies]
        if not freqs:
            raise ValueError("frequencies must list at least one (u, v) pair")
        for f in freqs:
            if len(f) != 2 or not all(isinstance(c, int) and 0 <= c < grid for c in f):
                raise ValueError(f"frequencies must be (u, v) pairs of ints in [0, {grid}), got {f!r}")
        if len(set(freqs)) != len(freqs):
            raise ValueError(f"frequencies must be distinct, got {freqs}")
        if channels % len(freqs):
            raise ValueError(f"channels ({channels}) must be divisible by len(frequencies) ({len(freqs)})")
        self.channels, self.dct_h, self.dct_w, self.grid = channels, dct_h, dct_w, grid
        self.frequencies: tuple[tuple[int, int], ...] = tuple(freqs)  # type: ignore[assignment]
        basis = self._build_basis()  # [n, dct_h, dct_w]
        part = channels // len(freqs)  # channels per frequency part (Eq. (5): C = C_in / n)
        self.register_buffer("weight", basis.repeat_interleave(part, dim=0), persistent=False)  # [C, dct_h, dct_w]
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False), nn.ReLU(inplace=True), nn.Linear(hidden, channels, bias=False)
        )

    def _build_basis(self) -> Tensor:
        sh, sw = self.dct_h // self.grid, self.dct_w // self.grid  # FcaNet: frequencies scaled to the DCT size
        ph = torch.arange(self.dct_h, dtype=torch.float64)
        pw = torch.arange(self.dct_w, dtype=torch.float64)
        filters = [
            _dct_1d(ph, u * sh, self.dct_h)[:, None] * _dct_1d(pw, v * sw, self.dct_w)[None, :]  # [dct_h, dct_w]
            for u, v in self.frequencies
        ]
        return torch.stack(filters).float()  # [n, dct_h, dct_w]

    def dct_basis(self) -> Tensor:
        """The ``n`` 2D DCT basis images ``[n, dct_h, dct_w]``, in the order of ``frequencies`` (orthonormal)."""
        return self._build_basis().to(self.weight.device)

    def frequency_features(self, x: Tensor) -> Tensor:
        """``Freq`` of Eq. (5), ``[B, C]``: per channel its part's DCT coefficient per frame, mean over T."""
        if x.dim() != 5 or x.shape[1] != self.channels:
            raise ValueError(f"expected [B, {self.channels}, T, H, W], got {tuple(x.shape)}")
        if x.shape[-2:] != (self.dct_h, self.dct_w):
            x = F.adaptive_avg_pool3d(x, (x.shape[2], self.dct_h, self.dct_w))  # [B, C, T, dct_h, dct_w]
        return (x * self.weight[:, None]).sum(dim=(3, 4)).mean(dim=2)  # 2D DCT per frame, mean over T: [B, C]

    def attention_map(self, x: Tensor) -> Tensor:
        """``Fc_att`` of Eq. (6), ``[B, C]``, exactly as :meth:`forward` applies it."""
        return torch.sigmoid(self.fc(self.frequency_features(x)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_map(x)[:, :, None, None, None]


class FSAM(nn.Module):
    """Frequency channel and spatiotemporal attention (MSF-Net section 3.2, Eq. (8), Fig. 6).

    ``Refined = F * Fc_att * ST_att``, applied sequentially (paper): :class:`FrequencyChannelAttention3d` (FAM)
    first, then :class:`SpatioTemporalAttention3d` (SAM, ``bn=False`` as Eq. (7) prints; ``sam_bn`` switch) on
    the channel-weighted map. At 256 (DCT 14) + 512 (DCT 7) channels: 42,334 parameters, MSF-R3D + FSAM =
    21.877 M (paper Table 3/5: 21.88 M). ``fam`` / ``sam`` switch either part off (not from the paper: an
    ablation switch).

    Shape:
        ``[B, C, T, H, W] -> [B, C, T, H, W]``; ``attention_map``: ``{"channel": [B, C], "spatiotemporal":
        [B, 1, T, H, W]}`` (only the parts switched on).
    """

    def __init__(
        self,
        channels: int,
        dct_size: int | tuple[int, int],
        *,
        reduction: int = 16,
        kernel: int = 7,
        frequencies: Sequence[tuple[int, int]] = FCA_TOP16,
        sam_bn: bool = False,
        fam: bool = True,
        sam: bool = True,
    ) -> None:
        super().__init__()
        if not (fam or sam):
            raise ValueError("FSAM needs fam or sam switched on (both are False)")
        self.fam = (
            FrequencyChannelAttention3d(channels, dct_size, reduction=reduction, frequencies=frequencies)
            if fam
            else None
        )
        self.sam = SpatioTemporalAttention3d(kernel, bn=sam_bn) if sam else None

    def attention_map(self, x: Tensor) -> dict[str, Tensor]:
        """``{"channel": Fc_att [B, C], "spatiotemporal": ST_att [B, 1, T, H, W]}`` (Eq. (6), (7)); ST_att is
        computed on ``F * Fc_att``, so ``forward(x) == x * channel[..., None, None, None] * spatiotemporal``."""
        out: dict[str, Tensor] = {}
        if self.fam is not None:
            out["channel"] = self.fam.attention_map(x)
            x = x * out["channel"][:, :, None, None, None]
        if self.sam is not None:
            out["spatiotemporal"] = self.sam.attention_map(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        if self.fam is not None:
            x = self.fam(x)  # F * Fc_att
        if self.sam is not None:
            x = self.sam(x)  # (F * Fc_att) * ST_att, Eq. (8)
        return x
