"""STIN with CDAI: Table 1 stage shapes, Table 3 ablation rows, CDAI switches, config validation.

Table 1 shapes are asserted twice:
- at the paper's full width and geometry on ``torch.device("meta")`` tensors (no compute, every channel count
  and ``T x H x W`` of Table 1), and
- with a real forward at the paper's geometry (64 x 224^2 input, tau 16, alpha 8) on a width-8 model
  (1/8 of the paper's channels), which checks that actual computation produces the same ``T x H x W``.
"""
import pytest
import torch

from stia_kit.models import build_model
from stia_kit.models.slowfast import SlowFast, SlowFastConfig
from stia_kit.models.stin import (STIN, TABLE3_ROWS, CrossDualAttentionInteraction, DenseTemporalReduction,
                                  STINConfig, table3_configs)

# Table 1: (channels, T, H, W) after stem+pool and after res2..res5
TABLE1 = {
    "sparse": [(64, 4, 56, 56), (256, 4, 56, 56), (512, 4, 28, 28), (1024, 4, 14, 14), (2048, 4, 7, 7)],
    "dense": [(8, 32, 56, 56), (32, 32, 56, 56), (64, 32, 28, 28), (128, 32, 14, 14), (256, 32, 7, 7)],
}


def stage_shapes(model, x):
    shapes = {}
    for p in ("sparse", "dense"):
        pathway = getattr(model, p)
        for i, mod in enumerate([pathway.stem, *pathway.stages]):
            mod.register_forward_hook(lambda m, inp, out, p=p, i=i: shapes.__setitem__((p, i), tuple(out.shape[1:])))
    return model(x), shapes


def test_table1_shapes_full_width_on_meta():
    with torch.device("meta"):
        model = STIN(STINConfig.paper(), 400)
        out, shapes = stage_shapes(model, torch.empty(1, 3, 64, 224, 224))
    assert out.shape == (1, 400)
    for p, rows in TABLE1.items():
        assert [shapes[(p, i)] for i in range(5)] == rows


def test_table1_geometry_real_forward_at_paper_input():
    torch.manual_seed(0)
    model = STIN(STINConfig.paper(width=8), 400).eval()  # paper geometry, 1/8 width (dense stem: 1 channel)
    with torch.no_grad():
        out, shapes = stage_shapes(model, torch.randn(1, 3, 64, 224, 224))
    assert out.shape == (1, 400) and torch.isfinite(out).all()
    for p, rows in TABLE1.items():
        assert [shapes[(p, i)] for i in range(5)] == [(c // 8, t, h, w) for c, t, h, w in rows]


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_table3_rows_from_one_constructor():
    rows = table3_configs(STINConfig.paper())
    assert tuple(rows) == TABLE3_ROWS
    with torch.device("meta"):
        models = {k: STIN(c, 400) for k, c in rows.items()}
        slowfast = SlowFast(SlowFastConfig.paper(), 400)
    assert models["dense only"].sparse is None and models["dense only"].head.fc.in_features == 256
    assert models["sparse only"].dense is None and models["sparse only"].head.fc.in_features == 2048
    assert n_params(models["both"]) == n_params(slowfast) == 34_480_216  # the "both" row is SlowFast-R50
    cdai = [m for m in models["both + CDAI"].modules() if isinstance(m, CrossDualAttentionInteraction)]
    assert len(cdai) == 4  # after res2, res3, res4, res5
    assert not any(isinstance(m, CrossDualAttentionInteraction) for k in TABLE3_ROWS[:3] for m in models[k].modules())
    # CDAI's overhead in parameters is small (max-pool + ECA + 1x1 projection + axial attention)
    assert 0 < n_params(models["both + CDAI"]) - n_params(slowfast) < 0.02 * n_params(slowfast)
    x = torch.randn(2, 3, 32, 32, 32)
    for cfg in table3_configs(STINConfig(width=8, depths=(1, 1, 1, 1))).values():
        assert STIN(cfg, 11)(x).shape == (2, 11)


@pytest.mark.parametrize("mode, channels", [("max_pool", 4), ("time_to_channel", 32), ("interval_sampling", 4),
                                            ("interval_conv", 8)])
def test_dense_to_sparse_temporal_reductions(mode, channels):
    red = DenseTemporalReduction(4, 8, mode)
    x = torch.randn(2, 4, 32, 5, 5)
    y = red(x)
    assert y.shape == (2, channels, 4, 5, 5) and red.out_channels == channels
    if mode == "max_pool":
        torch.testing.assert_close(y, x.view(2, 4, 4, 8, 5, 5).amax(3))
    if mode == "interval_sampling":
        torch.testing.assert_close(y, x[:, :, ::8])
    if mode == "time_to_channel":  # channel c*alpha + j of step t is frame alpha*t + j of channel c
        torch.testing.assert_close(y[:, 1 * 8 + 3, 2], x[:, 1, 8 * 2 + 3])


@pytest.mark.parametrize("fusion, directions, sparse_c, dense_c", [
    ("add", "both", 16 + 4, 4), ("concat", "both", 16 + 4, 8),
    ("add", "dense_to_sparse", 16 + 4, 4), ("add", "sparse_to_dense", 16, 4)])
def test_cdai_shapes_and_switches(fusion, directions, sparse_c, dense_c):
    cdai = CrossDualAttentionInteraction(16, 4, 8, fusion=fusion, directions=directions)
    s, d = cdai(torch.randn(2, 16, 2, 6, 6), torch.randn(2, 4, 16, 6, 6))
    assert s.shape == (2, sparse_c, 2, 6, 6) and d.shape == (2, dense_c, 16, 6, 6)


@pytest.mark.parametrize("overrides", [dict(fusion="concat"), dict(temporal_reduction="time_to_channel"),
                                       dict(temporal_reduction="interval_conv", directions="dense_to_sparse")])
def test_switches_build_and_train(overrides):
    model = build_model("stin", num_classes=5, width=8, depths=(1, 1, 1, 1), **overrides)
    loss = model(torch.randn(2, 3, 32, 32, 32)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("laterals.1."))


def test_default_model_forward_backward():
    model = build_model("stin", num_classes=11)  # defaults: small working model
    x = torch.randn(1, 3, 32, 64, 64)
    model(x).sum().backward()
    assert model.laterals[1].sparse_to_dense.attention.axial["T"].query.weight.grad is not None


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_frames=40), "T=40 must be a positive multiple of tau=16"),
    (dict(tau=12), "tau=12 must be a positive multiple of alpha=8"),
    (dict(pathways="sparse"), "cdai=True needs pathways='both'"),
    (dict(temporal_reduction="avg"), "temporal_reduction must be one of"),
    (dict(width=12), "multiple of beta_inv"),
    (dict(depths=(3, 4, 6)), "one entry per stage"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        STINConfig(**kwargs)


@pytest.mark.parametrize("row", TABLE3_ROWS)
def test_every_table3_row_fits_a_small_batch(row):
    """Each ablation row can learn: AdamW at the teaching lr fits 4 labelled noise clips (loss < 1/3 of ln 4)."""
    torch.manual_seed(0)
    cfg = table3_configs(STINConfig(width=8, beta_inv=4, alpha=4, tau=8, num_frames=16, depths=(1, 1, 1, 1),
                                    dropout=0.0))[row]
    model = STIN(cfg, 4)
    x, y = torch.randn(4, 3, 16, 32, 32), torch.arange(4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < torch.log(torch.tensor(4.0)).item() / 3, f"{row}: loss {loss.item():.3f} after 40 steps"
