"""ST-MANet (paper 002): stage shapes, the diversity losses (names, weighting, pooling, L_t = 0 with one stage),
every Table-4 row, classify_from, attention maps, one fit step, and the FLOPs against the 3D ResNet-50."""
from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from stia_kit.models import build_model
from stia_kit.models.st_manet import (PAPER_TABLE4, STAGES, STMANet, STMANetConfig, downsample_spatial_attention,
                                      downsample_temporal_attention, flops_over_baseline, pairwise_cosine_sum,
                                      spatial_diversity_loss, table4_configs, temporal_diversity_loss)
from stia_kit.train import TrainConfig, fit

CLIP = (3, 32, 32, 32)  # [C, T, H, W]: 32 frames so that A_t^5 is 2 x 2, not 1 x 1


def tiny(**overrides: Any) -> STMANetConfig:
    return STMANetConfig.teaching(width=4, **overrides)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_stage_shapes_and_attention_map_shapes() -> None:
    torch.manual_seed(0)
    model = STMANet(tiny(), 5).eval()
    x = torch.randn(2, *CLIP)
    with torch.no_grad():
        feats = model.forward_features(x)
        maps = model.attention_maps(x)
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 16, 8, 8), (32, 8, 4, 4), (64, 4, 2, 2), (128, 2, 1, 1)]
    assert {i: tuple(a.shape) for i, a in maps["temporal"].items()} == {2: (2, 16, 16), 3: (2, 8, 8), 4: (2, 4, 4),
                                                                        5: (2, 2, 2)}
    assert {i: tuple(a.shape) for i, a in maps["spatial"].items()} == {2: (2, 64, 64), 3: (2, 16, 16), 4: (2, 4, 4),
                                                                       5: (2, 1, 1)}
    for a in (*maps["temporal"].values(), *maps["spatial"].values()):
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))  # softmax rows


def test_paper_stage_shapes_and_row1_is_the_3d_resnet50() -> None:
    """Paper width at 32 x 112^2 (meta device): the spec's stage shapes; Table 4 row 1 is r3d_50 exactly."""
    with torch.device("meta"):
        model = build_model("st_manet", 101)
        row1 = STMANet(table4_configs()["3D ResNet-50"], 101)
        r3d = build_model("r3d_50", 101)
        feats = model.forward_features(torch.empty(1, 3, 32, 112, 112))
    assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 28, 28), (512, 8, 14, 14), (1024, 4, 7, 7),
                                                   (2048, 2, 4, 4)]
    assert n_params(row1) == n_params(r3d) == 46_405_925  # spec: 46.41 M at 101 classes
    assert model.head.fc.in_features == 3840  # Eq. (8): 256 + 512 + 1024 + 2048


def test_loss_names_and_lambdas_scale_them_exactly() -> None:
    torch.manual_seed(0)
    model = STMANet(tiny(lambda_s=1.0, lambda_t=1.0), 5).eval()
    x = torch.randn(2, *CLIP)
    with torch.no_grad():
        unit = model(x)
        assert set(unit) == {"logits", "loss_div_spatial", "loss_div_temporal"}
        maps = model.attention_maps(x)
        sizes = {i: (int(a.shape[-1] ** 0.5),) * 2 for i, a in maps["spatial"].items()}  # square maps here
        torch.testing.assert_close(unit["loss_div_temporal"], temporal_diversity_loss(maps["temporal"]))
        torch.testing.assert_close(unit["loss_div_spatial"], spatial_diversity_loss(maps["spatial"], sizes))
        for ls, lt in ((0.01, 0.001), (0.3, 0.0), (0.0, 2.5)):
            weighted = STMANet(tiny(lambda_s=ls, lambda_t=lt), 5).eval()
            weighted.load_state_dict(model.state_dict())
            out = weighted(x)
            torch.testing.assert_close(out["logits"], unit["logits"])
            torch.testing.assert_close(out["loss_div_spatial"], ls * unit["loss_div_spatial"])
            torch.testing.assert_close(out["loss_div_temporal"], lt * unit["loss_div_temporal"])
    # 12 ordered pairs, each a cosine in [0, 1] for non-negative matrices; A_s^5 is 1 x 1 here
    assert 0.0 < float(unit["loss_div_temporal"]) <= 12.0 + 1e-5


def test_single_stage_gives_zero_temporal_loss() -> None:
    """No pair in delta with one stage: L_t = 0 (the function, and the model with div_stages_t=(5,))."""
    a = torch.softmax(torch.randn(2, 4, 4), -1)
    assert float(temporal_diversity_loss({5: a})) == 0.0
    assert float(pairwise_cosine_sum([a])) == 0.0
    torch.manual_seed(0)
    out = STMANet(tiny(div_stages_t=(5,), lambda_t=1.0), 5)(torch.randn(2, *CLIP))
    assert out["loss_div_temporal"].item() == 0.0 and out["loss_div_spatial"].item() > 0.0


def test_pairwise_cosine_sum_is_the_sum_over_ordered_pairs() -> None:
    torch.manual_seed(0)
    mats = [torch.rand(3, 2, 2) for _ in STAGES]
    want = sum(F.cosine_similarity(mats[i].flatten(1), mats[j].flatten(1), dim=1).mean()
               for i, j in itertools.permutations(range(4), 2))
    torch.testing.assert_close(pairwise_cosine_sum(mats), want)
    same = [mats[0]] * 4
    torch.testing.assert_close(pairwise_cosine_sum(same), torch.tensor(12.0))  # 12 ordered pairs, cosine 1


def test_spatial_downsampling_pools_position_pairs() -> None:
    """"positions": entry (p, q) of the pooled matrix averages A_s over the source positions in the blocks of
    p and q; "naive" pools the matrix as an image (a different result)."""
    torch.manual_seed(0)
    a = torch.rand(2, 16, 16)  # a 4 x 4 map
    got = downsample_spatial_attention(a, (4, 4), (2, 2))
    blocks = a.reshape(2, 2, 2, 2, 2, 2, 2, 2, 2)  # [B, qh', qh, qw', qw, kh', kh, kw', kw]
    want = blocks.mean(dim=(2, 4, 6, 8)).reshape(2, 4, 4)
    torch.testing.assert_close(got, want)
    naive = downsample_spatial_attention(a, (4, 4), (2, 2), "naive")
    assert naive.shape == (2, 4, 4) and not torch.allclose(naive, got)
    with pytest.raises(ValueError, match="div_pool_s"):
        downsample_spatial_attention(a, (4, 4), (2, 2), "bogus")  # type: ignore[arg-type]
    torch.testing.assert_close(downsample_temporal_attention(torch.ones(1, 8, 8), 2), torch.ones(1, 2, 2))


@pytest.mark.parametrize("row", list(PAPER_TABLE4))
def test_every_table4_row_builds_and_trains(row: str) -> None:
    cfg = table4_configs(tiny())[row]
    torch.manual_seed(0)
    model = STMANet(cfg, 3)
    out = model(torch.randn(2, *CLIP))
    losses = {k for k in out if k.startswith("loss_")}
    assert losses == ({"loss_div_spatial", "loss_div_temporal"} if row == "ST-MANet" else set())
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 2])) + sum(out[k] for k in losses)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{row}: {name}"
    assert model.cfg.head_stages == (STAGES if cfg.multilevel_fusion else (5,))


@pytest.mark.parametrize("stage", [2, 3, 4, 5, "fusion"])
def test_classify_from(stage: int | str) -> None:
    model = STMANet(tiny(classify_from=stage), 4)
    want = sum(model.backbone.stage_channels) if stage == "fusion" else model.backbone.stage_channels[int(stage) - 2]
    assert model.head.fc.in_features == want
    out = model(torch.randn(1, *CLIP))
    assert out["logits"].shape == (1, 4) and "loss_div_spatial" in out  # Fig. 4 runs keep the constraints


def test_config_validation_names_the_field() -> None:
    for field, value in (("lambda_s", -1.0), ("classify_from", 1), ("tda_proj", "1x1"), ("tda_seed", "zero"),
                         ("pool", "min"), ("div_stages_t", (1, 2)), ("div_stages_s", ()), ("div_pool_s", "x"),
                         ("width", 3), ("depths", (1, 1)), ("stem_kernel", (2, 7, 7)), ("dropout", 1.0)):
        with pytest.raises(ValueError, match=field):
            STMANetConfig(**{field: value})
    with pytest.raises(ValueError, match="classify_from='fusion' needs multilevel_fusion"):
        STMANetConfig(classify_from="fusion", multilevel_fusion=False)


@pytest.mark.parametrize("overrides", [dict(tda_seed="none"), dict(tda_proj="reshape", pool="avg"),
                                       dict(tda_proj="conv3x1x1_all", scale_logits=True, div_pool_s="naive"),
                                       dict(fuse_last_tda=False, sda=False)])
def test_switches_build_and_run(overrides: dict[str, Any]) -> None:
    torch.manual_seed(0)
    out = STMANet(tiny(**overrides), 3)(torch.randn(1, *CLIP))
    assert out["logits"].shape == (1, 3) and all(torch.isfinite(v).all() for v in out.values())


def test_fuse_last_tda_changes_the_last_stage_only() -> None:
    torch.manual_seed(0)
    on = STMANet(tiny(), 3).eval()
    off = STMANet(tiny(fuse_last_tda=False), 3).eval()
    off.load_state_dict(on.state_dict())
    x = torch.randn(1, *CLIP)
    with torch.no_grad():
        a, b = on.forward_features(x), off.forward_features(x)
    for i in range(3):
        torch.testing.assert_close(a[i], b[i])
    assert not torch.allclose(a[3], b[3])


class RandomClips(Dataset):
    def __init__(self, n: int) -> None:
        self.n, self.classes = n, ["a", "b"]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(i)
        return {"video": torch.randn(*CLIP, generator=g), "label": i % 2, "index": i, "failed": ""}


def test_fit_step_logs_the_weighted_diversity_terms() -> None:
    torch.manual_seed(0)
    model = build_model("st_manet", 2, preset="teaching", width=4, lambda_s=0.5, lambda_t=0.25)
    cfg = TrainConfig(epochs=1, batch_size=2, lr=0.01, device="cpu", amp="off", seed=0, out_dir=None)
    rec = fit(model, RandomClips(2), None, cfg, progress=False).history[-1]["train"]
    assert {"loss_ce", "loss_div_spatial", "loss_div_temporal"} <= set(rec)
    assert rec["loss"] == pytest.approx(rec["loss_ce"] + rec["loss_div_spatial"] + rec["loss_div_temporal"], rel=1e-5)
    assert 0.0 < rec["loss_div_temporal"] <= 0.25 * 12 + 1e-5


def test_flops_over_baseline_at_paper_size() -> None:
    """Measured on the meta device, printed beside the paper's "+24 %" (section 4.5; no reading reproduces it).
    Pinned: the baseline (Hara R3D-50, 20.14 GMACs at 32 x 112^2) and SDA alone (+26.7 %, spec)."""
    full = {k: flops_over_baseline(STMANetConfig(tda_proj=k)) for k in ("reshape", "conv3x1x1", "conv3x1x1_all")}
    sda = flops_over_baseline(STMANetConfig(tda=False, multilevel_fusion=False))
    for k, r in full.items():
        print(f"ST-MANet tda_proj={k}: {r['gmacs']:.2f} vs {r['baseline_gmacs']:.2f} GMACs "
              f"(+{r['increase_pct']:.1f} %, paper +{r['paper_increase_pct']:.0f} %), "
              f"{r['params_m']:.2f} M vs {r['baseline_params_m']:.2f} M parameters")
    assert sda["baseline_gmacs"] == pytest.approx(20.137, abs=0.005)
    assert sda["increase_pct"] == pytest.approx(26.7, abs=0.05) and sda["params_m"] == sda["baseline_params_m"]
    for proj, extra_m in (("reshape", 41.8), ("conv3x1x1_all", 171.3)):  # spec: eps-only +41.8 M, full-width +171 M
        tda = flops_over_baseline(STMANetConfig(tda_proj=proj, sda=False, multilevel_fusion=False))
        assert tda["params_m"] - tda["baseline_params_m"] == pytest.approx(extra_m, abs=0.1)
    assert full["reshape"]["increase_pct"] < full["conv3x1x1"]["increase_pct"] < full["conv3x1x1_all"]["increase_pct"]
