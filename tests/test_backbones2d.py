"""2D backbones of the two-stream family: published parameter counts, shapes, flow conv1 and its
cross-modality initialisation, SE, and the local-file loaders (generated state dicts, nothing downloaded)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from stia_kit.models.backbones2d import (
    BACKBONES2D, INCEPTION_MODULES, Backbone2d, BNInception2d, SEBlock, adapt_first_conv, build_backbone2d,
    cross_modality_init, fold_segments, image_classifier, load_torchvision_resnet, load_tsn_bninception,
    unfold_segments,
)
from stia_kit.models.pretrained import LoadReport

NAMES = ("resnet34", "resnet50", "vgg19", "bn_inception")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_names() -> None:
    assert BACKBONES2D.names() == sorted(NAMES)
    with pytest.raises(KeyError, match="available"):
        build_backbone2d("resnet18")


@pytest.mark.parametrize("name, published", [
    ("resnet50", 25_557_032),  # torchvision resnet50
    ("resnet34", 21_797_672),  # torchvision resnet34
    ("vgg19", 143_667_240),  # torchvision vgg19
    ("bn_inception", 11_295_240),  # pretrainedmodels / tsn-pytorch BNInception(num_classes=1000)
])
def test_published_parameter_counts(name: str, published: int) -> None:
    with torch.device("meta"):
        assert n_params(image_classifier(name, 1000)) == published


def test_se_parameter_count() -> None:
    with torch.device("meta"):
        plain = n_params(build_backbone2d("bn_inception"))
        assert n_params(build_backbone2d("bn_inception", se=True)) - plain == 646_398  # spec, reduction 16
        # 3a outputs 256 channels: 256 * 16 + 16 + 16 * 256 + 256
        assert n_params(build_backbone2d("bn_inception", se=["3a"])) - plain == 8_464
        assert n_params(build_backbone2d("bn_inception", se=["inception_3a"])) - plain == 8_464


@pytest.mark.parametrize("name, dim, maps", [("resnet50", 2048, 2048), ("resnet34", 512, 512),
                                             ("vgg19", 4096, 512), ("bn_inception", 1024, 1024)])
def test_paper_size_shapes_on_meta(name: str, dim: int, maps: int) -> None:
    with torch.device("meta"):
        m = build_backbone2d(name)
        x = torch.empty(2, 3, 224, 224)
        assert m.feature_dim == dim and m.map_dim == maps
        assert m.forward_maps(x).shape == (2, maps, 7, 7)
        assert m(x).shape == (2, dim)


@pytest.mark.parametrize("name", NAMES)
def test_teaching_shapes_and_backward(name: str) -> None:
    torch.manual_seed(0)
    m = build_backbone2d(name, width=0.25, in_channels=20)
    assert isinstance(m, Backbone2d) and m.in_channels == 20
    x = torch.randn(2, 20, 64, 64)
    maps = m.forward_maps(x)
    assert maps.shape == (2, m.map_dim, 2, 2)
    y = m(x)
    assert y.shape == (2, m.feature_dim)
    y.sum().backward()
    assert m.get_first_conv().weight.grad is not None


def test_width_scales_channels() -> None:
    assert build_backbone2d("resnet50", width=0.25).feature_dim == 512
    assert build_backbone2d("resnet34", width=0.25).feature_dim == 128
    assert build_backbone2d("bn_inception", width=0.25).feature_dim == 256
    vgg = build_backbone2d("vgg19", width=0.25, pool_size=1)
    assert vgg.feature_dim == 1024 and vgg.classifier[0].in_features == 128
    pool5 = build_backbone2d("vgg19", width=0.25, feature="pool5")
    assert pool5.feature_dim == 128 and not hasattr(pool5, "classifier")
    assert pool5(torch.randn(1, 3, 32, 32)).shape == (1, 128)


def test_image_classifier_logits() -> None:
    for name in NAMES:
        m = image_classifier(name, 7, width=0.125)
        assert m(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="only available for 'bn_inception'"):
        build_backbone2d("resnet50", se=True)
    with pytest.raises(ValueError, match="unknown inception module"):
        build_backbone2d("bn_inception", se=["6a"])
    with pytest.raises(ValueError, match="image_classifier"):
        build_backbone2d("resnet50", num_classes=10)
    with pytest.raises(ValueError, match="width"):
        build_backbone2d("resnet34", width=0)
    with pytest.raises(ValueError, match="in_channels"):
        build_backbone2d("vgg19", in_channels=0)
    with pytest.raises(ValueError, match="feature"):
        build_backbone2d("vgg19", feature="fc6")
    with pytest.raises(ValueError, match="se_reduction"):
        build_backbone2d("bn_inception", se=True, se_reduction=0)


def test_fold_segments_order() -> None:
    x = torch.randn(2, 3, 4, 5, 5)  # [B, C, N, H, W]
    folded, b, n = fold_segments(x)
    assert folded.shape == (8, 3, 5, 5) and (b, n) == (2, 4)
    assert torch.equal(folded[1 * 4 + 2], x[1, :, 2])  # row b*N + n is frame n of sample b
    assert torch.equal(unfold_segments(folded, b, n).transpose(1, 2), x)
    with pytest.raises(ValueError, match="B, C, N, H, W"):
        fold_segments(torch.randn(2, 3, 5, 5))


def test_cross_modality_init_by_hand() -> None:
    w = torch.tensor([[[[1.0]], [[2.0]], [[6.0]]], [[[0.0]], [[-3.0]], [[3.0]]]])  # [2, 3, 1, 1]
    out = cross_modality_init(w, 4)
    assert out.shape == (2, 4, 1, 1)
    assert torch.equal(out[0].flatten(), torch.full((4,), 3.0))  # (1 + 2 + 6) / 3
    assert torch.equal(out[1].flatten(), torch.zeros(4))


@pytest.mark.parametrize("name", NAMES)
def test_adapt_first_conv(name: str) -> None:
    m = build_backbone2d(name, width=0.125)
    rgb = m.get_first_conv().weight.detach().clone()
    adapt_first_conv(m, 20)
    conv = m.get_first_conv()
    assert conv.in_channels == 20 and conv.weight.shape[1] == 20
    assert torch.allclose(conv.weight, rgb.mean(dim=1, keepdim=True).expand(-1, 20, -1, -1))
    assert m.eval()(torch.randn(1, 20, 32, 32)).shape == (1, m.feature_dim)


# ------------------------------------------------------------------------------------------------------ SE
def test_se_block_shape_and_gate() -> None:
    torch.manual_seed(0)
    se = SEBlock(32, reduction=16)
    assert se.fc1.out_features == 2
    x = torch.randn(3, 32, 5, 5)
    w = se.channel_weights(x)
    assert w.shape == (3, 32) and bool(((w > 0) & (w < 1)).all())
    y = se(x)
    assert y.shape == x.shape
    assert torch.allclose(y, x * w[:, :, None, None])
    with torch.no_grad():  # gate: a channel whose excitation logit is very negative is switched off
        se.fc2.bias[:16] = -50.0
        se.fc2.bias[16:] = 50.0
    y = se(x)
    assert y[:, :16].abs().max() < 1e-12 and torch.allclose(y[:, 16:], x[:, 16:])


def test_se_sits_after_each_inception_concat() -> None:
    m = build_backbone2d("bn_inception", width=0.125, se=True)
    assert isinstance(m, BNInception2d) and m.se_modules == INCEPTION_MODULES
    x = torch.randn(1, m.get_submodule("inception_3b_1x1").in_channels, 8, 8)
    with torch.no_grad():
        m.inception_3b_se.fc2.bias.fill_(-50.0)  # closes every channel of module 3b's output
    assert m.inception("3b", x).abs().max() < 1e-12
    assert m.inception("3b", x).shape[1] == m.inception_3b_se.fc2.out_features
    assert not hasattr(build_backbone2d("bn_inception", width=0.125, se=["3a"]), "inception_3b_se")


# -------------------------------------------------------------------------------------------------- loaders
def _perturbed(state: dict[str, torch.Tensor], drop: str, wrong: str) -> dict[str, torch.Tensor]:
    """``state`` with one key dropped, one tensor of the wrong shape and one extra key."""
    state = {k: v.clone() for k, v in state.items() if k != drop}
    state[wrong] = torch.zeros(3, 3)
    state["extra.weight"] = torch.zeros(2)
    return state


def test_load_torchvision_resnet_report() -> None:
    torch.manual_seed(0)
    ckpt = image_classifier("resnet34", 1000, width=0.25).state_dict()  # torchvision key layout
    state = _perturbed(ckpt, drop="layer2.0.bn1.weight", wrong="layer3.1.conv2.weight")
    model = build_backbone2d("resnet34", width=0.25)
    report = load_torchvision_resnet(model, state)
    assert isinstance(report, LoadReport) and report.layout == "torchvision"
    assert report.missing == ["layer2.0.bn1.weight", "layer3.1.conv2.weight"]
    assert sorted(report.unexpected) == ["extra.weight", "fc.bias", "fc.weight"]  # backbone has no fc
    assert report.mismatched == [("layer3.1.conv2.weight", (3, 3), tuple(ckpt["layer3.1.conv2.weight"].shape))]
    own = model.state_dict()
    assert "layer1.0.conv1.weight" in report.matched
    assert torch.equal(own["layer4.2.bn2.running_var"], ckpt["layer4.2.bn2.running_var"])
    assert torch.equal(own["conv1.weight"], ckpt["conv1.weight"])
    with pytest.raises(RuntimeError, match="strict"):
        load_torchvision_resnet(build_backbone2d("resnet34", width=0.25), state, strict=True)
    full = image_classifier("resnet34", 1000, width=0.25)
    assert load_torchvision_resnet(full, ckpt, strict=True).summary().startswith("torchvision: ")


def test_flow_conv1_from_rgb_checkpoint(tmp_path: Path) -> None:
    ckpt = build_backbone2d("resnet50", width=0.125).state_dict()
    path = tmp_path / "rgb.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ckpt.items()}}, path)
    flow = build_backbone2d("resnet50", width=0.125, in_channels=20)
    report = load_torchvision_resnet(flow, path)
    assert "conv1.weight (cross-modality init)" in report.matched
    assert not report.missing and not report.unexpected and not report.mismatched
    assert torch.equal(flow.conv1.weight, cross_modality_init(ckpt["conv1.weight"], 20))


def test_vgg_loads_by_torchvision_names() -> None:
    ckpt = image_classifier("vgg19", 1000, width=0.125, pool_size=1).state_dict()
    assert {"features.0.weight", "classifier.0.weight", "classifier.3.weight", "classifier.6.weight"} <= set(ckpt)
    model = build_backbone2d("vgg19", width=0.125, pool_size=1)
    report = load_torchvision_resnet(model, ckpt)
    assert sorted(report.unexpected) == ["classifier.6.bias", "classifier.6.weight"] and not report.missing


def _tsn_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our BN-Inception state dict as the Caffe-converted TSN file stores it: BN vectors ``[1, C]``,
    the classifier under pretrainedmodels' ``last_linear``, no ``num_batches_tracked``."""
    out = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        if "_bn." in k:
            v = v.unsqueeze(0)
        out["last_linear." + k.removeprefix("fc.") if k.startswith("fc.") else k] = v
    return out


def test_load_tsn_bninception_report(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ckpt = image_classifier("bn_inception", 1000, width=0.125).state_dict()
    tsn = _tsn_layout(ckpt)
    assert "inception_3a_1x1_bn.weight" in tsn and tsn["inception_3a_1x1_bn.weight"].dim() == 2
    state = _perturbed(tsn, drop="inception_4d_3x3.weight", wrong="inception_5a_pool_proj.weight")
    path = tmp_path / "bn_inception.pth"
    torch.save(state, path)
    model = build_backbone2d("bn_inception", width=0.125, se=["5b"])
    report = load_tsn_bninception(model, path)
    assert report.layout == "tsn_bninception"
    se_keys = ["inception_5b_se.fc1.bias", "inception_5b_se.fc1.weight", "inception_5b_se.fc2.bias",
               "inception_5b_se.fc2.weight"]
    assert report.missing == sorted(["inception_4d_3x3.weight", "inception_5a_pool_proj.weight", *se_keys])
    assert sorted(report.unexpected) == ["extra.weight", "last_linear.bias", "last_linear.weight"]
    assert [m[0] for m in report.mismatched] == ["inception_5a_pool_proj.weight"]
    own = model.state_dict()
    assert torch.equal(own["inception_3a_1x1_bn.running_mean"], ckpt["inception_3a_1x1_bn.running_mean"])
    assert torch.equal(own["inception_5b_pool_proj.weight"], ckpt["inception_5b_pool_proj.weight"])

    classifier = image_classifier("bn_inception", 1000, width=0.125)  # last_linear -> fc
    assert not load_tsn_bninception(classifier, tsn, strict=True).missing
    assert torch.equal(classifier.fc.weight, ckpt["fc.weight"])

    flow = build_backbone2d("bn_inception", width=0.125, in_channels=10)  # TSN flow: L = 5
    report = load_tsn_bninception(flow, {f"base_model.{k}": v for k, v in tsn.items()})
    assert "conv1_7x7_s2.weight (cross-modality init)" in report.matched
    assert torch.equal(flow.conv1_7x7_s2.weight, cross_modality_init(ckpt["conv1_7x7_s2.weight"], 10))
    assert torch.equal(flow.conv1_7x7_s2.bias, ckpt["conv1_7x7_s2.bias"])
