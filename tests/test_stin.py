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
from stia_kit.models.slowfast import FuseFastToSlow, SlowFast, SlowFastConfig
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
    # CDAI's overhead in parameters is small (max-pool + ECA + 1x1 projection + axial attention with full-width Q/K)
    assert 0 < n_params(models["both + CDAI"]) - n_params(slowfast) < 0.03 * n_params(slowfast)  # +2.2 %
    x = torch.randn(2, 3, 32, 32, 32)
    for cfg in table3_configs(STINConfig.teaching(width=8)).values():
        assert STIN(cfg, 11)(x).shape == (2, 11)


def test_teaching_both_row_is_the_slowfast_teaching_model():
    """Table 3's "both" row is SlowFast (the paper reports the same 95.8 / 77.0): at the teaching preset the
    row computes exactly what SlowFast-R50's teaching model computes, given the same weights."""
    torch.manual_seed(0)
    slowfast = build_model("slowfast_r50", 11, preset="teaching").eval()
    both = STIN(table3_configs(STINConfig.teaching())["both"], 11).eval()
    rename = {"slow.": "sparse.", "fast.": "dense.", "fuse.": "laterals."}
    state = {next((v + k[len(p):] for p, v in rename.items() if k.startswith(p)), k): t
             for k, t in slowfast.state_dict().items()}
    assert set(state) == set(both.state_dict())
    both.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(both(x), slowfast(x))


def test_paper_preset_readings():
    """The paper preset: Q, K, V of one shape, no stem lateral with CDAI, SlowFast's dense kernels."""
    cfg = STINConfig()
    assert cfg == STINConfig.paper() and (cfg.qk_reduction, cfg.cdai_stem_lateral) == (1, False)
    assert cfg.dense_kernels == (3, 3, 3, 3) and cfg.interval_sampling == "random"
    assert STINConfig.teaching().qk_reduction == 1
    with torch.device("meta"):
        model = STIN(cfg, 400)
    assert not isinstance(model.laterals[0], FuseFastToSlow) and not list(model.laterals[0].parameters())
    attn = model.laterals[1].sparse_to_dense.attention.axial["W"]
    assert attn.qk_dim == attn.value.out_features == 32  # dense res2 channels
    assert [st[0].conv_a[0].kernel_size[0] for st in model.dense.stages] == [3, 3, 3, 3]
    assert model.sparse.stages[0][0].conv_a[0].in_channels == 64  # stem output, no lateral channels


def test_printed_dense_kernels_and_stem_lateral_switches():
    cfg = STINConfig.teaching(width=8, dense_temporal_kernels="table1", cdai_stem_lateral=True)
    assert cfg.dense_kernels == (3, 3, 1, 1)  # what Table 1 prints for the dense pathway
    model = STIN(cfg, 5)
    assert [st[0].conv_a[0].kernel_size[0] for st in model.dense.stages] == [3, 3, 1, 1]
    assert isinstance(model.laterals[0], FuseFastToSlow)
    assert model.sparse.stages[0][0].conv_a[0].in_channels == 8 + 2 * 2  # stem + 2 * dense stem channels
    assert model(torch.randn(2, 3, 16, 32, 32)).shape == (2, 5)
    assert STINConfig(dense_temporal_kernels=(3, 1, 1, 1)).dense_kernels == (3, 1, 1, 1)


@pytest.mark.parametrize("mode, channels", [("max_pool", 4), ("time_to_channel", 32), ("interval_sampling", 4),
                                            ("interval_conv", 8)])
def test_dense_to_sparse_temporal_reductions(mode, channels):
    red = DenseTemporalReduction(4, 8, mode)
    x = torch.randn(2, 4, 32, 5, 5)
    y = red(x)
    assert y.shape == (2, channels, 4, 5, 5) and red.out_channels == channels
    if mode == "max_pool":
        torch.testing.assert_close(y, x.view(2, 4, 4, 8, 5, 5).amax(3))
    if mode == "interval_sampling":  # random in training (the paper); each window's first frame at eval
        windows = x.view(2, 4, 4, 8, 5, 5)
        assert ((windows == y[:, :, :, None]).all(dim=(1, 4, 5)).any(-1)).all()  # a frame of its own window
        torch.testing.assert_close(red.eval()(x), x[:, :, ::8])
    if mode == "time_to_channel":  # channel c*alpha + j of step t is frame alpha*t + j of channel c
        torch.testing.assert_close(y[:, 1 * 8 + 3, 2], x[:, 1, 8 * 2 + 3])


def test_random_interval_sampling_varies_in_training_only():
    torch.manual_seed(0)
    x = torch.arange(64.0).view(1, 1, 64, 1, 1).expand(3, 2, 64, 2, 2).contiguous()
    rnd, first = DenseTemporalReduction(2, 8, "interval_sampling"), DenseTemporalReduction(2, 8, "interval_sampling",
                                                                                             sampling="first")
    draws = torch.stack([rnd(x)[:, 0, :, 0, 0] for _ in range(20)])  # [20, B, T'] frame indices drawn
    assert ((draws // 8) == torch.arange(8)).all()  # window t draws from frames 8t .. 8t+7
    assert len(draws.unique()) > 32 and not (draws[:, 0] == draws[:, 1]).all()  # varies per draw and clip
    y = rnd(x)
    assert (y[:, 0] == y[:, 1]).all()  # one frame per window and clip, the same for all channels
    torch.testing.assert_close(first(x), x[:, :, ::8])
    torch.testing.assert_close(rnd.eval()(x), x[:, :, ::8])
    with pytest.raises(ValueError, match="interval sampling must be one of"):
        DenseTemporalReduction(2, 8, "interval_sampling", sampling="middle")  # type: ignore[arg-type]


@pytest.mark.parametrize("fusion, directions, sparse_c, dense_c", [
    ("add", "both", 16 + 4, 4), ("concat", "both", 16 + 4, 8),
    ("add", "dense_to_sparse", 16 + 4, 4), ("add", "sparse_to_dense", 16, 4)])
def test_cdai_shapes_and_switches(fusion, directions, sparse_c, dense_c):
    cdai = CrossDualAttentionInteraction(16, 4, 8, fusion=fusion, directions=directions)
    s, d = cdai(torch.randn(2, 16, 2, 6, 6), torch.randn(2, 4, 16, 6, 6))
    assert s.shape == (2, sparse_c, 2, 6, 6) and d.shape == (2, dense_c, 16, 6, 6)


@pytest.mark.parametrize("overrides", [dict(fusion="concat"), dict(temporal_reduction="time_to_channel"),
                                       dict(temporal_reduction="interval_conv", directions="dense_to_sparse"),
                                       dict(temporal_reduction="interval_sampling"),
                                       dict(temporal_reduction="interval_sampling", interval_sampling="first"),
                                       dict(qk_reduction=8), dict(dense_temporal_kernels="table1"),
                                       dict(cdai_stem_lateral=True)])
def test_switches_build_and_train(overrides):
    model = build_model("stin", num_classes=5, preset="teaching", width=8, **overrides)
    loss = model(torch.randn(2, 3, 32, 32, 32)).logsumexp(1).sum()
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("laterals.1."))


def test_teaching_model_forward_backward():
    model = build_model("stin", num_classes=11, preset="teaching")
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
    (dict(dense_temporal_kernels="printed"), "dense_temporal_kernels must be one of"),
    (dict(dense_temporal_kernels=(3, 3, 2, 1)), "temporal kernels must be odd"),
    (dict(interval_sampling="middle"), "interval_sampling must be one of"),
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
