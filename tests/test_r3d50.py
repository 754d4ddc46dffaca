"""Hara et al.'s 3D ResNet-50 (``r3d_50``): parameter counts and GMACs against the published figures (spec
``3d_attention.md``, "Shared"), stage shapes, the Hara block / stem options, Kaiming init and the zero-init
switch, and the per-stage API (``forward_stages`` callbacks, ``MultiStageHead``) that ST-MANet builds on."""
from __future__ import annotations

from typing import Sequence

import pytest
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from stia_kit.models import build_model
from stia_kit.models.blocks import Bottleneck, MultiStageHead, Stem, init_resnet_weights
from stia_kit.models.r3d import ResNet3D, ResNet3DConfig


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("classes, expected", [(400, 47_018_576), (101, 46_405_925)])
def test_parameter_counts(classes: int, expected: int) -> None:
    """MSF-Net Table 5 prints 47.02 M (400 classes); 46.41 M at UCF-101's 101 classes (spec)."""
    with torch.device("meta"):
        model = build_model("r3d_50", classes)
    assert n_params(model) == expected
    assert round(expected / 1e6, 2) == (47.02 if classes == 400 else 46.41)


@pytest.mark.parametrize("frames, gmacs", [(16, 10.07), (32, 20.14)])
def test_gmacs_on_the_meta_device(frames: int, gmacs: float) -> None:
    """torch.utils.flop_counter counts FLOPs = 2 x MACs; GMACs = FLOPs / 2 = the papers' "GFLOPs" (Table 5:
    10.1 at 16x112^2). The counter's total equals 2 x the analytic conv + fc multiply-adds."""
    with torch.device("meta"):
        model = build_model("r3d_50", 400).eval()
        x = torch.randn(1, 3, frames, 112, 112)
    macs = 0

    def hook(mod: nn.Module, inp: tuple[Tensor], out: Tensor) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv3d):
            macs += out.numel() * mod.weight.shape[1] * mod.weight[0, 0].numel()
        else:
            macs += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    with FlopCounterMode(display=False) as counter:
        model(x)
    for h in handles:
        h.remove()
    assert counter.get_total_flops() == 2 * macs
    assert round(counter.get_total_flops() / 2e9, 2) == gmacs


def test_stage_shapes_at_32x112() -> None:
    """Spec, 32x112^2: stem+pool 64x16x28^2; Z^2 256x16x28^2; Z^3 512x8x14^2; Z^4 1024x4x7^2; Z^5 2048x2x4^2."""
    with torch.device("meta"):
        model = build_model("r3d_50", 400)
        x = torch.randn(2, 3, 32, 112, 112)
        stem = model.stem(x)
        outs = model.forward_stages(x)
    assert tuple(stem.shape) == (2, 64, 16, 28, 28)
    assert [tuple(o.shape[1:]) for o in outs] == [(256, 16, 28, 28), (512, 8, 14, 14), (1024, 4, 7, 7), (2048, 2, 4, 4)]
    assert model.stage_numbers == (2, 3, 4, 5)
    assert model.stem_channels == 64 and model.stage_channels == [256, 512, 1024, 2048]
    assert model.input_spec.min_size == 32  # stem 2 x pool 2 x stages 8


def test_hara_layers() -> None:
    """7x7x7 stem stride (1,2,2); 3x3x3 max-pool stride 2 padding 1; 1x1x1 / 3x3x3 (stride) / 1x1x1 blocks;
    projection shortcuts on the first block of every stage (64 -> 256 at stage 2 too)."""
    with torch.device("meta"):
        model = build_model("r3d_50", 400)
    conv = model.stem.conv[0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((7, 7, 7), (1, 2, 2), (3, 3, 3))
    pool = model.stem.pool
    assert isinstance(pool, nn.MaxPool3d)
    assert (pool.kernel_size, pool.stride, pool.padding) == ((3, 3, 3), (2, 2, 2), (1, 1, 1))
    assert [len(s) for s in model.stages] == [3, 4, 6, 3]
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            assert isinstance(block, Bottleneck) and block.form == "hara"
            a, b, c = block.conv_a[0], block.conv_b[0], block.conv_c[0]
            stride = (2, 2, 2) if i > 0 and j == 0 else (1, 1, 1)
            assert (a.kernel_size, a.stride) == ((1, 1, 1), (1, 1, 1))
            assert (b.kernel_size, b.stride) == ((3, 3, 3), stride)
            assert (c.kernel_size, c.stride) == ((1, 1, 1), (1, 1, 1))
            if j == 0:
                assert isinstance(block.downsample, nn.Sequential) and block.downsample[0].stride == stride
            else:
                assert isinstance(block.downsample, nn.Identity)


def test_bottleneck_forms_and_zero_init_defaults() -> None:
    """SlowFast form unchanged (temporal kernel first, last BN zeroed); Hara form keeps BN weight 1 unless asked."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 4, 8, 8)
    sf, hara = Bottleneck(16, 8, stride=(2, 2, 2), temporal_kernel=3), Bottleneck(16, 8, stride=(2, 2, 2), form="hara", temporal_kernel=3)
    assert sf(x).shape == hara(x).shape == (1, 32, 2, 4, 4)
    assert sf.conv_a[0].kernel_size == (3, 1, 1) and sf.conv_b[0].stride == (1, 2, 2)
    assert float(sf.last_norm.weight.detach().abs().sum()) == 0.0
    assert torch.all(hara.last_norm.weight == 1)
    assert float(Bottleneck(16, 8, form="hara", zero_init_last_bn=True).last_norm.weight.detach().abs().sum()) == 0.0
    assert torch.all(Bottleneck(16, 8, zero_init_last_bn=False).last_norm.weight == 1)
    with pytest.raises(ValueError, match="form must be one of"):
        Bottleneck(16, 8, form="c2d")  # type: ignore[arg-type]
    assert Stem(3, 8, kernel=(7, 7, 7), pool=True, pool_kernel=(3, 3, 3), pool_stride=(2, 2, 2))(
        torch.randn(1, 3, 8, 32, 32)).shape == (1, 8, 4, 8, 8)


def test_kaiming_init_and_zero_init_switch() -> None:
    """init="kaiming": conv weights ~ N(0, 2 / fan_out), every BN weight 1 / bias 0; zero_init_last_bn zeroes
    exactly the last BN of each block; init="default" leaves PyTorch's (smaller, fan-in uniform) weights."""
    torch.manual_seed(0)
    kaiming = build_model("r3d_50", 5, preset="teaching")
    default = build_model("r3d_50", 5, preset="teaching", init="default")
    zeroed = build_model("r3d_50", 5, preset="teaching", zero_init_last_bn=True)
    conv_k, conv_d = kaiming.stages[3][1].conv_b[0].weight.detach(), default.stages[3][1].conv_b[0].weight.detach()  # 128x128x3x3x3
    fan_out = conv_k.shape[0] * conv_k[0, 0].numel()
    assert abs(float(conv_k.std()) / (2 / fan_out) ** 0.5 - 1) < 0.05
    assert float(conv_d.std()) < 0.7 * float(conv_k.std())
    bns = [m for m in kaiming.modules() if isinstance(m, nn.BatchNorm3d)]
    assert all(torch.all(b.weight == 1) and torch.all(b.bias == 0) for b in bns)
    blocks = [b for s in zeroed.stages for b in s]
    assert all(float(b.last_norm.weight.detach().abs().sum()) == 0.0 for b in blocks)
    last = {id(b.last_norm) for b in blocks}
    assert all(torch.all(m.weight == 1) for m in zeroed.modules() if isinstance(m, nn.BatchNorm3d) and id(m) not in last)
    # the helper itself: a plain conv net gets the same statistics
    net = nn.Sequential(nn.Conv3d(64, 256, 3), nn.BatchNorm3d(256))
    nn.init.constant_(net[1].weight, 3.0)
    init_resnet_weights(net)
    assert abs(float(net[0].weight.detach().std()) / (2 / (256 * 27)) ** 0.5 - 1) < 0.05 and torch.all(net[0].bias == 0)
    assert torch.all(net[1].weight == 1)


def test_after_stage_replaces_the_stage_output_fed_forward() -> None:
    """A toy callback adding 1: the next stage receives the replaced tensor (checked against running the
    stages by hand), ``previous`` holds stem + the replaced outputs so far, numbers are 2..5."""
    torch.manual_seed(0)
    model = build_model("r3d_50", 5, preset="teaching").eval()
    x = torch.randn(1, 3, 8, 32, 32)
    calls: list[tuple[int, int, list[tuple[int, ...]]]] = []
    seen_previous: list[Sequence[Tensor]] = []

    def plus_one(number: int, z: Tensor, previous: Sequence[Tensor]) -> Tensor:
        calls.append((number, z.shape[1], [tuple(p.shape[1:2]) for p in previous]))
        seen_previous.append(previous)
        return z + 1

    with torch.no_grad():
        outs = model.forward_stages(x, after_stage=plus_one)
        expected, z = [], model.stem(x)
        stem = z
        for stage in model.stages:
            z = stage(z) + 1
            expected.append(z)
        plain = model.forward_stages(x)
    assert [c[0] for c in calls] == [2, 3, 4, 5]
    assert [c[2] for c in calls] == [[(16,)], [(16,), (64,)], [(16,), (64,), (128,)], [(16,), (64,), (128,), (256,)]]
    for got, want in zip(outs, expected):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(seen_previous[0][0], stem)
    torch.testing.assert_close(seen_previous[3][-1], outs[2])  # stage 5's input is the replaced Zbar^4
    assert not torch.allclose(outs[-1], plain[-1])  # the replacement propagated
    with pytest.raises(TypeError, match="must return a Tensor for stage 2"):
        model.forward_stages(x, after_stage=lambda n, z, p: None)  # type: ignore[arg-type,return-value]


def test_multi_stage_head() -> None:
    """Eq. 8 reading: GAP of stages 2-5 concatenated = 3840 inputs on R3D-50; one-stage heads; checked inputs."""
    with torch.device("meta"):
        paper = build_model("r3d_50", 101)
        fused = paper.stage_head((2, 3, 4, 5), 101)
    assert isinstance(fused, MultiStageHead) and fused.fc.in_features == 3840 and fused.channels == (256, 512, 1024, 2048)
    torch.manual_seed(0)
    model = build_model("r3d_50", 7, preset="teaching").eval()
    with torch.no_grad():
        outs = model.forward_stages(torch.randn(2, 3, 8, 32, 32))
        head = model.stage_head((2, 3, 4, 5), 7)
        sel = model.select_stages(outs, (2, 3, 4, 5))
        assert head(*sel).shape == (2, 7)
        torch.testing.assert_close(head(sel), head(*sel))
        pooled = torch.cat([o.mean(dim=(2, 3, 4)) for o in outs], dim=1)
        torch.testing.assert_close(head(sel), head.fc(pooled))
        one = model.stage_head((3,), 7)
        assert one.fc.in_features == 128 and one(*model.select_stages(outs, (3,))).shape == (2, 7)
    with pytest.raises(ValueError, match="expects inputs with channels"):
        head(*outs[:3])
    with pytest.raises(ValueError, match="stem is stage 1"):
        model.stage_head((1, 2), 7)
    with pytest.raises(ValueError, match="non-empty"):
        MultiStageHead([], 3)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="block_form"):
        ResNet3DConfig(block_form="hara")  # basic blocks have no Hara form
    with pytest.raises(ValueError, match="block_form"):
        ResNet3DConfig(bottleneck=True, block_form="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init"):
        ResNet3DConfig(init="xavier")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stem_pool_kernel"):
        ResNet3DConfig(stem_pool_kernel=(2, 3, 3))
    with pytest.raises(ValueError, match="stem_pool_stride"):
        ResNet3DConfig(stem_pool_stride=(1, 2))  # type: ignore[arg-type]
    assert isinstance(ResNet3D(ResNet3DConfig(width=4, depths=(1, 1, 1, 1)), 3), ResNet3D)
