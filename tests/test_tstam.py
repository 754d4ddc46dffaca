"""T-STAM (paper 004) and the TSN baseline: the spec's hand checks (one-hot spatial attention, "sum" vs "mean"
frame pooling, temporal weights on the simplex), attention-map shapes, forward/backward over the ablation
switches, partial BN, TSN's average consensus and SE parameter count, and 1 : 3 stream fusion."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stia_kit.models import build_model
from stia_kit.models.tsn import TSN, TSNConfig, bn_inception_grid, freeze_bn_except_first
from stia_kit.models.tstam import (STREAM_WEIGHT_ROWS, FeatureMapping, MultiSpatialAttention, SpatialAttention,
                                   TemporalAttention, TSTAMConfig, fuse_streams, spatial_pool)

SIZE = 32  # the smallest side BN-Inception takes: 1 x 1 maps, fastest


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def clip(modality: str = "rgb", *, batch: int = 2, segments: int = 3, size: int = SIZE, new_length: int = 5
         ) -> dict[str, torch.Tensor]:
    c = 3 if modality == "rgb" else 2 * new_length
    return {modality: torch.randn(batch, c, segments, size, size)}


# ----------------------------------------------------------------------------------- spatial attention
def test_one_hot_spatial_logits_pick_that_positions_mapped_feature() -> None:
    """Eq. (6)-(7): logits zero except one large one per frame -> f_sj = sum_i x^_{i, k*}."""
    torch.manual_seed(0)
    B, N, L, d, h, w = 2, 3, 2, 5, 4, 4
    logits = torch.zeros(B, N, L, h, w)
    logits[:, :, 0, 1, 2] = 50.0  # model 0 looks at (1, 2)
    logits[:, :, 1, 3, 0] = 50.0  # model 1 looks at (3, 0)
    alpha = torch.softmax(logits.flatten(3), dim=3).reshape(logits.shape)
    mapped = torch.randn(B, N, d, h, w)
    f = spatial_pool(alpha, mapped, "sum")
    assert f.shape == (B, L, d)
    torch.testing.assert_close(f[:, 0], mapped[:, :, :, 1, 2].sum(dim=1))
    torch.testing.assert_close(f[:, 1], mapped[:, :, :, 3, 0].sum(dim=1))
    torch.testing.assert_close(spatial_pool(alpha, mapped, "mean"), f / N)


def test_spatial_attention_module_is_one_hot_on_a_single_salient_position() -> None:
    """Through the module's own layers (eval-mode BN = identity, delta 5x5 kernel, BN scale 100): an input
    that is zero except one position gives a map that is one-hot there."""
    att = SpatialAttention(4).eval()
    with torch.no_grad():
        att.reduce.weight.zero_()
        att.reduce.weight[0, 0] = 1.0  # hidden 0 = input channel 0
        att.conv.weight.zero_()
        att.conv.weight[0, 0, 2, 2] = 1.0  # centre tap only
        att.bn2.weight.fill_(100.0)  # s = 100 tanh(x_0)
    x = torch.zeros(2, 4, 5, 6)
    x[:, 0, 1, 4] = 10.0
    a = att.attention_map(x)
    assert a.shape == (2, 5, 6)
    torch.testing.assert_close(a.sum(dim=(1, 2)), torch.ones(2))
    assert a[:, 1, 4].min() > 0.999


def test_sum_frame_pool_scales_with_the_number_of_frames_mean_does_not() -> None:
    torch.manual_seed(0)
    msa = MultiSpatialAttention(8, 3, frame_pool="sum").eval()
    frame, mapped = torch.randn(1, 1, 8, 3, 3), torch.randn(1, 1, 6, 3, 3)
    f = {n: msa(frame.expand(-1, n, -1, -1, -1), mapped.expand(-1, n, -1, -1, -1)) for n in (2, 6)}
    torch.testing.assert_close(f[6], 3 * f[2])
    msa.frame_pool = "mean"
    torch.testing.assert_close(msa(frame.expand(-1, 6, -1, -1, -1), mapped.expand(-1, 6, -1, -1, -1)),
                               msa(frame.expand(-1, 2, -1, -1, -1), mapped.expand(-1, 2, -1, -1, -1)))
    assert msa.attention_map(frame.expand(-1, 6, -1, -1, -1)).shape == (1, 6, 3, 3, 3)


# ---------------------------------------------------------------------------------- temporal attention
def test_temporal_weights_are_a_softmax_over_frames_and_weight_the_pooled_features() -> None:
    torch.manual_seed(0)
    ta = TemporalAttention(6)
    mapped = torch.randn(3, 5, 6, 2, 2)
    alpha = ta.attention_map(mapped)
    assert alpha.shape == (3, 5) and (alpha > 0).all()
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(ta(mapped), (alpha[..., None] * mapped.mean(dim=(3, 4))).sum(dim=1))  # Eq. (3)
    same = mapped[:, :1].expand(-1, 5, -1, -1, -1)  # identical frames: uniform weights, f_t = GAP(x^)
    torch.testing.assert_close(ta.attention_map(same), torch.full((3, 5), 0.2))
    torch.testing.assert_close(ta(same), mapped[:, 0].mean(dim=(2, 3)))


def test_feature_mapping_is_one_1x1_conv_shared_over_frames_and_positions() -> None:
    torch.manual_seed(0)
    fm = FeatureMapping(4, 6)
    maps = torch.randn(2, 3, 4, 5, 5)
    out = fm(maps)
    assert out.shape == (2, 3, 6, 5, 5)
    expected = torch.einsum("dc,bnchw->bndhw", fm.conv.weight[:, :, 0, 0], maps) + fm.conv.bias[:, None, None]
    torch.testing.assert_close(out, expected)


# ------------------------------------------------------------------------------------------- the model
def test_attention_maps_shapes_and_normalisation() -> None:
    torch.manual_seed(0)
    model = build_model("tstam", 4, preset="teaching", num_spatial=3).eval()
    with torch.no_grad():
        maps = model.attention_maps(clip(segments=4, size=64))
    assert set(maps) == {"temporal", "spatial"}
    assert maps["temporal"].shape == (2, 4)
    assert maps["spatial"].shape == (2, 4, 3, 2, 2)  # [B, N, l, h, w]: 64^2 -> 2 x 2 maps
    torch.testing.assert_close(maps["temporal"].sum(dim=1), torch.ones(2))
    torch.testing.assert_close(maps["spatial"].sum(dim=(3, 4)), torch.ones(2, 4, 3))
    only_t = build_model("tstam", 4, preset="teaching", spatial=False)
    assert set(only_t.attention_maps(clip())) == {"temporal"}


@pytest.mark.parametrize("modality, num_spatial, segments", [("rgb", 1, 3), ("flow", 2, 4), ("rgb", 3, 5),
                                                             ("flow", 4, 6), ("rgb", 5, 3)])
def test_forward_backward_over_modalities_spatial_models_and_segments(modality: str, num_spatial: int,
                                                                      segments: int) -> None:
    torch.manual_seed(0)
    model = build_model("tstam", 5, preset="teaching", modality=modality, num_spatial=num_spatial,
                        num_segments=segments)
    assert model.input_keys == (modality,) and model.fc.in_features == num_spatial * 256
    spec = model.input_spec[modality]
    assert spec.channels == (3 if modality == "rgb" else 10) and spec.num_frames == segments
    out = model(clip(modality, segments=segments))
    assert out.shape == (2, 5)
    F.cross_entropy(out, torch.tensor([0, 4])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("over, fc_in", [({"se": False}, 4 * 256), ({"temporal": False}, 4 * 256),
                                         ({"spatial": False}, 256), ({"temporal": False, "spatial": False}, 256),
                                         ({"frame_pool": "mean"}, 4 * 256), ({"new_length": 2, "modality": "flow"},
                                                                            4 * 256)])
def test_ablation_switches_forward_backward(over: dict, fc_in: int) -> None:
    torch.manual_seed(0)
    model = build_model("tstam", 3, preset="teaching", **over)
    assert model.fc.in_features == fc_in
    assert (model.temporal is None) == (not model.cfg.temporal) and (model.spatial is None) == (not model.cfg.spatial)
    out = model(clip(model.cfg.modality, new_length=model.cfg.new_length))
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_temporal_off_drops_f_t_and_both_off_averages_frames() -> None:
    """Teaching ablations: temporal=False gives F_j = f_sj; both off gives mean_i GAP(x^_i)."""
    torch.manual_seed(0)
    full = build_model("tstam", 3, preset="teaching").eval()
    x = clip()
    with torch.no_grad():
        maps, mapped = full.feature_maps(x)
        f_s = full.spatial(maps, mapped)
        f_t = full.temporal(mapped)
        torch.testing.assert_close(full.features(x), (f_s + f_t[:, None]).flatten(1))  # Eq. (8)-(9)
        no_t = build_model("tstam", 3, preset="teaching", temporal=False).eval()
        no_t.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("temporal.")})
        torch.testing.assert_close(no_t.features(x), f_s.flatten(1))
        none = build_model("tstam", 3, preset="teaching", temporal=False, spatial=False).eval()
        none.load_state_dict({k: v for k, v in full.state_dict().items()
                              if not k.startswith(("temporal.", "spatial.", "fc."))}, strict=False)
        torch.testing.assert_close(none.features(x), mapped.mean(dim=(1, 3, 4)))


def test_tstam_paper_preset_sizes_on_meta() -> None:
    with torch.device("meta"):
        paper = build_model("tstam", 101)
        no_se = build_model("tstam", 101, se=False)
    cfg = paper.cfg
    assert (cfg.num_segments, cfg.num_spatial, cfg.attn_dim, cfg.se, cfg.frame_pool) == (6, 4, 256, True, "sum")
    assert cfg.drop_rate == 0.8 and dataclasses.replace(cfg, modality="flow").drop_rate == 0.7  # TSN convention
    assert paper.backbone.map_dim == 1024 and paper.fc.in_features == 1024
    assert n_params(paper) - n_params(no_se) == 646_398  # SE after all 10 inception modules (spec)
    # Eq. (1) mapping 1024*256 + 256, temporal score 256 + 1, per spatial model 1024*512 + 2*512 + 512*25 + 2
    attention = 1024 * 256 + 256 + 257 + 4 * (1024 * 512 + 2 * 512 + 512 * 25 + 2)
    assert n_params(paper) - n_params(paper.backbone) - n_params(paper.fc) == attention


def test_partial_bn_freezes_every_backbone_bn_but_the_first() -> None:
    torch.manual_seed(0)
    model = build_model("tstam", 3, preset="teaching", partial_bn=True)
    bns = [(n, m) for n, m in model.backbone.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns[0][0] == "conv1_7x7_s2_bn" and bns[0][1].training and bns[0][1].weight.requires_grad
    assert all(not m.training and not m.weight.requires_grad and not m.bias.requires_grad for _, m in bns[1:])
    before = {n: m.running_mean.clone() for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    F.cross_entropy(model(clip(size=64)), torch.tensor([0, 1])).backward()
    opt.step()
    after = {n: m.running_mean for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    frozen = {f"backbone.{n}" for n, _ in bns[1:]}
    assert all(torch.equal(before[n], after[n]) for n in frozen)  # running statistics unchanged
    assert not torch.equal(before["backbone.conv1_7x7_s2_bn"], after["backbone.conv1_7x7_s2_bn"])
    assert not torch.equal(before["spatial.models.0.bn1"], after["spatial.models.0.bn1"])  # new layers train
    model.eval().train()  # train() re-applies the freeze
    assert all(not m.training for _, m in bns[1:]) and bns[0][1].training
    free = build_model("tstam", 3, preset="teaching")
    assert not free.cfg.partial_bn and all(m.training for m in free.modules() if isinstance(m, nn.BatchNorm2d))
    assert len(freeze_bn_except_first(nn.Sequential(nn.BatchNorm2d(2), nn.BatchNorm2d(2)))) == 1


# ---------------------------------------------------------------------------------------------------- TSN
def test_tsn_is_the_average_of_per_segment_scores() -> None:
    torch.manual_seed(0)
    model = build_model("tsn_bninception", 4, preset="teaching", modality="flow").eval()
    assert isinstance(model, TSN) and model.input_keys == ("flow",)
    x = clip("flow", segments=3)["flow"]
    with torch.no_grad():
        out = model({"flow": x})
        per_segment = torch.stack([model(x[:, :, n:n + 1]) for n in range(3)], dim=1)
    assert out.shape == (2, 4)
    torch.testing.assert_close(out, per_segment.mean(dim=1))  # average consensus (TSN convention)
    train = build_model("tsn_bninception", 4, preset="teaching", se=True)
    train(clip("rgb")).sum().backward()
    assert all(p.grad is not None for p in train.parameters())


def test_tsn_se_switch_and_paper_sizes() -> None:
    with torch.device("meta"):
        tsn = build_model("tsn_bninception", 1000)
        tsn_se = build_model("tsn_bninception", 1000, se=True)
        some = build_model("tsn_bninception", 1000, se=("3a", "5b"))
    assert n_params(tsn) == 11_295_240  # TSN's BN-Inception with its 1000-class fc
    assert n_params(tsn_se) - n_params(tsn) == 646_398
    assert 0 < n_params(some) - n_params(tsn) < 646_398
    assert tsn.cfg.partial_bn and tsn.cfg.num_segments == 3 and tsn.cfg.drop_rate == 0.8


# ------------------------------------------------------------------------------ configs, inputs, fusion
@pytest.mark.parametrize("cls", [TSTAMConfig, TSNConfig])
@pytest.mark.parametrize("field, value", [("modality", "depth"), ("new_length", 0), ("dropout", 1.0),
                                          ("width", 0.0), ("crop_size", 56), ("se", "3a"), ("se_reduction", 0)])
def test_stream_config_validation_names_the_field(cls: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"Config\.{field} must"):
        cls(**{field: value})


@pytest.mark.parametrize("field, value", [("num_segments", 0), ("num_spatial", 0), ("attn_dim", 0),
                                          ("frame_pool", "max"), ("temporal", 1)])
def test_tstam_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"Config\.{field} must"):
        TSTAMConfig(**{field: value})


def test_inputs_are_checked_with_clear_errors() -> None:
    model = build_model("tstam", 3, preset="teaching")
    with pytest.raises(ValueError, match=r"\[B, 3, N, H, W\]"):
        model(clip("flow")["flow"])
    with pytest.raises(KeyError, match="'rgb' stream"):
        model(clip("flow"))
    with pytest.raises(ValueError, match="not 56"):
        model(clip(size=56))
    assert [s for s in range(30, 100) if bn_inception_grid(s)] == [*range(31, 39), *range(63, 71), *range(95, 100)]
    assert bn_inception_grid(224) == 7


def test_fuse_streams_is_one_to_three_on_probabilities() -> None:
    torch.manual_seed(0)
    rgb, flow = torch.randn(4, 6), torch.randn(4, 6)
    fused = fuse_streams({"rgb": rgb, "flow": flow})
    torch.testing.assert_close(fused, 0.25 * rgb.softmax(-1) + 0.75 * flow.softmax(-1))
    torch.testing.assert_close(fuse_streams({"rgb": rgb, "flow": flow}, on="logits"), 0.25 * rgb + 0.75 * flow)
    torch.testing.assert_close(fuse_streams({"rgb": rgb, "flow": flow}, STREAM_WEIGHT_ROWS["rgb only"]),
                               rgb.softmax(-1))
