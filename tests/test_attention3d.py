"""The ST-MANet / MSF-Net attention modules of ``models/attention.py`` (issue 10): TDA (Eq. (1)-(3)), SDA
(Eq. (4)-(5)), SE3d, CBAM3d, FcaNet frequency channel attention (MSF-Net Eq. (5)-(6)), the Eq.-(7)
spatiotemporal attention and FSAM (Eq. (8)). Hand checks recompute every output from ``attention_map``."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stia_kit.models.attention import (
    CBAM3d,
    FCA_TOP16,
    FSAM,
    SDA,
    SE3d,
    TDA,
    FrequencyChannelAttention3d,
    SpatioTemporalAttention3d,
    TDASeed,
)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def time_rows(x: torch.Tensor) -> torch.Tensor:
    """Independent ``[B, C, T, H, W] -> [B, T, C*H*W]`` (einsum-free, via movedim)."""
    return x.movedim(2, 1).flatten(2)


# ---------------------------------------------------------------- TDA (ST-MANet Eq. (1)-(3))
@pytest.mark.parametrize("proj", ["reshape", "conv3x1x1"])
@pytest.mark.parametrize("scale_logits", [False, True])
def test_tda_attention_rows_sum_to_one_and_match_the_printed_products(proj, scale_logits):
    torch.manual_seed(0)
    tda = TDA(8, proj=proj, scale_logits=scale_logits)
    z, prev = torch.randn(2, 8, 5, 3, 2), torch.randn(2, 4, 5, 3, 2)
    a = tda.attention_map(z, prev)
    assert a.shape == (2, 5, 5)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 5))  # softmax over T, Eq. (1)
    zc = torch.cat([z, prev], 1)  # Z_c: 3C/2 = 12 channels
    q, k = (time_rows(zc), time_rows(zc)) if proj == "reshape" else (time_rows(tda.phi(zc)), time_rows(tda.varpi(zc)))
    logits = torch.einsum("btd,bsd->bts", q, k)  # phi(Z_c) @ varpi(Z_c): matrix product, [B, T, T]
    if scale_logits:
        logits = logits / math.sqrt(12 * 3 * 2)
    torch.testing.assert_close(a, torch.softmax(logits, -1))


@pytest.mark.parametrize("proj, proj_values", [("reshape", False), ("conv3x1x1", False), ("conv3x1x1", True)])
def test_tda_forward_is_recomputed_from_its_attention_map(proj, proj_values):
    torch.manual_seed(1)
    tda = TDA(8, proj=proj, proj_values=proj_values, scale_logits=True)
    z, prev = torch.randn(2, 8, 4, 3, 3), torch.randn(2, 4, 4, 3, 3)
    zbar, z_tda = tda(z, prev, pool_to=(2, 2, 2))
    a = tda.attention_map(z, prev)
    zc = torch.cat([z, prev], 1)
    v2 = tda.tau(zc) if proj_values else zc  # Eq. (2): value is Z_c (reading)
    agg = torch.softmax(a @ time_rows(v2), dim=1).reshape(2, 4, 12, 3, 3).movedim(1, 2)  # outer softmax over T
    want_tda = F.adaptive_max_pool3d(tda.eps_tda(agg), (2, 2, 2))  # eps: conv 3C/2 -> C, then max pool
    v3 = tda.sigma(z) if proj_values else z
    main = torch.softmax(a @ time_rows(v3), dim=1).reshape(2, 4, 8, 3, 3).movedim(1, 2)
    torch.testing.assert_close(z_tda, want_tda)
    torch.testing.assert_close(zbar, z + tda.eps_main(main))  # Eq. (3)
    assert zbar.shape == z.shape and z_tda.shape == (2, 8, 2, 2, 2)


def test_tda_last_stage_does_not_pool_and_avg_pool_switch():
    torch.manual_seed(2)
    z, prev = torch.randn(1, 8, 4, 4, 4), torch.randn(1, 4, 4, 4, 4)
    tda = TDA(8, out_channels=6)
    zbar, z_tda = tda(z, prev)  # pool_to=None: the final TDA keeps Z^5's size (paper)
    assert zbar.shape == (1, 8, 4, 4, 4) and z_tda.shape == (1, 6, 4, 4, 4)
    avg = TDA(8, pool="avg")
    avg.load_state_dict(TDA(8).state_dict())
    _, unpooled = avg(z, prev)
    _, pooled = avg(z, prev, pool_to=(2, 2, 2))
    torch.testing.assert_close(pooled, F.adaptive_avg_pool3d(unpooled, (2, 2, 2)))
    _, odd = TDA(8)(torch.randn(1, 8, 4, 7, 7), torch.randn(1, 4, 4, 7, 7), pool_to=(2, 4, 4))  # 7 -> 4: adaptive
    assert odd.shape == (1, 8, 2, 4, 4)


def test_tda_without_seed_and_input_checks():
    torch.manual_seed(3)
    z = torch.randn(1, 8, 3, 2, 2)
    tda = TDA(8, prev_channels=0)  # tda_seed="none": Z_c^2 = Z^2
    assert tda.concat_channels == 8 and tda.attention_map(z).shape == (1, 3, 3)
    with pytest.raises(ValueError, match="prev_channels=0"):
        tda(z, torch.randn(1, 4, 3, 2, 2))
    with pytest.raises(ValueError, match="Z_TDA"):
        TDA(8)(z)
    with pytest.raises(ValueError, match="shape"):
        TDA(8)(z, torch.randn(1, 4, 3, 4, 4))  # wrong T, H, W: the previous TDA must pool to Z^i's size
    with pytest.raises(ValueError, match="proj"):
        TDA(8, proj="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pool"):
        TDA(8, pool="min")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels must be even"):
        TDA(7)


def test_tda_seed_shape_and_backward():
    seed = TDASeed(4, 8)
    x = torch.randn(2, 4, 4, 3, 3, requires_grad=True)
    prev = seed(x)
    assert prev.shape == (2, 8, 4, 3, 3)
    zbar, z_tda = TDA(16, scale_logits=True)(torch.randn(2, 16, 4, 3, 3), prev, pool_to=(2, 2, 2))
    (zbar.sum() + z_tda.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_tda_parameter_costs_at_paper_width_match_the_spec():
    """Spec: eps-only convs +41.8 M, the full-width conv reading (phi, varpi, tau, sigma, eps) +171 M over the
    four stages (C = 256..2048) with the 64 -> 128 seed; the default (phi/varpi convs) lies between."""
    with torch.device("meta"):
        seed = n_params(TDASeed())
        assert seed == 3 * 64 * 128 + 128
        costs = {
            key: sum(n_params(TDA(c, proj=p, proj_values=v)) for c in (256, 512, 1024, 2048)) + seed
            for key, (p, v) in {"eps": ("reshape", False), "default": ("conv3x1x1", False),
                                "full": ("conv3x1x1", True)}.items()
        }
    assert abs(costs["eps"] / 1e6 - 41.8) < 0.05
    assert abs(costs["full"] / 1e6 - 171.3) < 0.1
    c = 256  # exact count of one default TDA: phi, varpi 3C/2 -> 3C/2; eps 3C/2 -> C; eps' C -> C (3x1x1, bias)
    assert n_params(TDA(c)) == 2 * (3 * 384 * 384 + 384) + (3 * 384 * 256 + 256) + (3 * 256 * 256 + 256)
    assert costs["eps"] < costs["default"] < costs["full"]


# ---------------------------------------------------------------- SDA (ST-MANet Eq. (4)-(5))
@pytest.mark.parametrize("scale_logits", [False, True])
def test_sda_attention_rows_sum_to_one_and_forward_recomputes(scale_logits):
    torch.manual_seed(4)
    sda = SDA(scale_logits=scale_logits)
    assert n_params(sda) == 0  # alpha, beta, eta, pi are reshapes (paper)
    z = torch.randn(2, 3, 4, 3, 2)
    a = sda.attention_map(z)
    assert a.shape == (2, 6, 6)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 6))
    logits = torch.einsum("bcthw,bctyx->bhwyx", z, z).reshape(2, 6, 6)  # alpha (HW x CT) @ beta (CT x WH)
    if scale_logits:
        logits = logits / math.sqrt(3 * 4)
    torch.testing.assert_close(a, torch.softmax(logits, -1))
    eta = z.permute(0, 3, 4, 1, 2).reshape(2, 6, 12)  # [B, HW, CT]
    out = torch.softmax(a @ eta, dim=1).reshape(2, 3, 2, 3, 4).permute(0, 3, 4, 1, 2)  # outer softmax over HW, pi
    torch.testing.assert_close(sda(z), out)
    assert sda(z).shape == z.shape


# ---------------------------------------------------------------- SE / CBAM / SAM / FcaNet / FSAM
def test_se3d_recomputes_from_attention_map_and_checks_reduction():
    torch.manual_seed(5)
    se = SE3d(32)
    x = torch.randn(2, 32, 2, 3, 3)
    w = se.attention_map(x)
    assert w.shape == (2, 32) and ((w > 0) & (w < 1)).all()
    torch.testing.assert_close(se(x), x * w[:, :, None, None, None])
    with pytest.raises(ValueError, match="reduction"):
        SE3d(8, reduction=16)


@pytest.mark.parametrize("bn", [False, True])
def test_spatiotemporal_attention_is_eq7(bn):
    torch.manual_seed(6)
    sam = SpatioTemporalAttention3d(3, bn=bn).eval()
    x = torch.randn(2, 5, 3, 4, 4)
    m = sam.attention_map(x)
    assert m.shape == (2, 1, 3, 4, 4)
    pooled = torch.cat([x.max(1, keepdim=True).values, x.mean(1, keepdim=True)], 1)  # cat[MaxPool, AvgPool]
    want = sam.conv(pooled) if not bn else sam.bn(F.conv3d(pooled, sam.conv.weight, padding=1))
    torch.testing.assert_close(m, torch.sigmoid(want))
    torch.testing.assert_close(sam(x), x * m)
    assert (sam.conv.bias is None) == bn  # Eq. (7) prints no BN: the conv then has a bias
    with pytest.raises(ValueError, match="kernel"):
        SpatioTemporalAttention3d(4)


def test_cbam3d_is_channel_then_spatiotemporal():
    torch.manual_seed(7)
    cbam = CBAM3d(32, kernel=3).eval()
    x = torch.randn(2, 32, 2, 4, 4)
    maps = cbam.attention_map(x)
    assert maps["channel"].shape == (2, 32) and maps["spatiotemporal"].shape == (2, 1, 2, 4, 4)
    mlp = cbam.mlp
    wc = torch.sigmoid(mlp(x.mean((2, 3, 4))) + mlp(x.flatten(2).max(-1).values))  # avg + max through one MLP
    torch.testing.assert_close(maps["channel"], wc)
    torch.testing.assert_close(cbam(x), x * wc[:, :, None, None, None] * maps["spatiotemporal"])


@pytest.mark.parametrize("dct", [7, 14])
def test_dct_basis_is_orthonormal_on_its_grid(dct):
    fca = FrequencyChannelAttention3d(32, dct)
    basis = fca.dct_basis()
    assert basis.shape == (16, dct, dct)
    flat = basis.flatten(1).double()
    torch.testing.assert_close(flat @ flat.T, torch.eye(16, dtype=torch.float64), atol=1e-6, rtol=0)
    # FcaNet scaling: (u, v) of the 7x7 grid times dct // 7; e.g. (6, 0) at 14 is the cosine of frequency 12
    u6 = FCA_TOP16.index((6, 0))
    p = torch.arange(dct, dtype=torch.float64)
    row = torch.cos(math.pi * 6 * (dct // 7) * (p + 0.5) / dct) * math.sqrt(2 / dct)
    torch.testing.assert_close(basis[u6].double(), row[:, None] * torch.full((dct,), 1 / math.sqrt(dct))[None].double(),
                               atol=1e-6, rtol=0)


def test_fca_lowest_frequency_is_gap_up_to_a_constant():
    torch.manual_seed(8)
    fca = FrequencyChannelAttention3d(16, 7, frequencies=((0, 0),))
    for size in (7, 14):  # 14: adaptive average pooling to the DCT size first (FcaNet)
        x = torch.randn(2, 16, 3, size, size)
        torch.testing.assert_close(fca.frequency_features(x), 7.0 * x.mean((2, 3, 4)))  # sqrt(7 * 7) x GAP
        torch.testing.assert_close(fca.attention_map(x), torch.sigmoid(fca.fc(7.0 * x.mean((2, 3, 4)))))


def test_fca_frequency_features_are_per_frame_dct_of_each_channel_part_mean_over_t():
    torch.manual_seed(9)
    fca = FrequencyChannelAttention3d(32, 7)  # 16 parts of 2 channels
    x = torch.randn(2, 32, 3, 7, 7)
    freq = fca.frequency_features(x)
    p = torch.arange(7, dtype=torch.float64)

    def dct1(f: int) -> torch.Tensor:
        return torch.cos(math.pi * f * (p + 0.5) / 7) * math.sqrt((1 if f == 0 else 2) / 7)

    for ch in (0, 1, 5, 31):
        u, v = FCA_TOP16[ch // 2]  # Eq. (5): channel part i gets frequency i
        coeff = torch.einsum("thw,h,w->t", x[0, ch].double(), dct1(u), dct1(v)).mean()  # 2D DCT per frame, mean T
        torch.testing.assert_close(freq[0, ch].double(), coeff, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fca(x), x * fca.attention_map(x)[:, :, None, None, None])
    assert "weight" not in fca.state_dict()  # buffers are rebuilt from the arguments


def test_fca_argument_checks():
    with pytest.raises(ValueError, match="divisible"):
        FrequencyChannelAttention3d(24, 7)
    with pytest.raises(ValueError, match="dct_size"):
        FrequencyChannelAttention3d(32, 4)
    with pytest.raises(ValueError, match="frequencies"):
        FrequencyChannelAttention3d(32, 7, frequencies=((7, 0),))
    with pytest.raises(ValueError, match="distinct"):
        FrequencyChannelAttention3d(32, 7, frequencies=((0, 0), (0, 0)))


def test_fsam_is_fam_then_sam_and_attention_map_matches_forward():
    torch.manual_seed(10)
    fsam = FSAM(32, 7, kernel=3)
    x = torch.randn(2, 32, 2, 5, 5)
    maps = fsam.attention_map(x)
    assert maps["channel"].shape == (2, 32) and maps["spatiotemporal"].shape == (2, 1, 2, 5, 5)
    weighted = x * maps["channel"][..., None, None, None]
    torch.testing.assert_close(maps["spatiotemporal"], fsam.sam.attention_map(weighted))
    torch.testing.assert_close(fsam(x), x * maps["channel"][:, :, None, None, None] * maps["spatiotemporal"])  # Eq. (8)
    fam_only, sam_only = FSAM(32, 7, sam=False), FSAM(32, 7, fam=False)
    assert set(fam_only.attention_map(x)) == {"channel"} and set(sam_only.attention_map(x)) == {"spatiotemporal"}
    with pytest.raises(ValueError, match="fam or sam"):
        FSAM(32, 7, fam=False, sam=False)
    y = FSAM(32, 7)(x.requires_grad_())
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_attention_parameter_counts_after_layer3_and_layer4_of_msf_r3d():
    """Spec: FSAM after layer3 (256 ch, DCT 14) and layer4 (512 ch, DCT 7) of MSF-R3D (21,835,125) gives
    21.877 M (paper 21.88 M); SE (r = 16) and CBAM-3D in the same places also give 21.88 M (Table 3)."""
    fsam = n_params(FSAM(256, 14)) + n_params(FSAM(512, 7))
    se = n_params(SE3d(256)) + n_params(SE3d(512))
    cbam = n_params(CBAM3d(256)) + n_params(CBAM3d(512))
    assert fsam == sum(2 * c * c // 16 + 2 * 343 + 1 for c in (256, 512)) == 42_334  # fc no bias; SAM conv + bias
    assert se == sum(2 * c * c // 16 + c // 16 + c for c in (256, 512)) == 41_776
    assert cbam == se + 2 * (2 * 343 + 2) == 43_152  # SAM conv without bias + BN(1)
    msf_r3d = 21_835_125
    assert abs((msf_r3d + fsam) / 1e6 - 21.877) < 0.001
    for extra in (fsam, se, cbam):
        assert round((msf_r3d + extra) / 1e6, 2) == 21.88  # Table 3: all three print 21.88 M
