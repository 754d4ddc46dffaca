"""Registry, R3D-18 / R2D-18 / C3D: shapes, parameter counts against published figures, FLOPs."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stia_kit.models import build_model, list_models, register_model
from stia_kit.models.blocks import BasicBlock, Bottleneck, res_stage
from stia_kit.models.r3d import ResNet3DConfig


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_and_rejects_unknown() -> None:
    assert {"r3d_18", "r2d_18", "c3d"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        build_model("nope", 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("r3d_18", 0)
    with pytest.raises(ValueError, match="already registered"):
        register_model("r3d_18")(lambda **kw: nn.Identity())


def test_r3d_18_parameter_count_matches_torchvision() -> None:
    # torchvision.models.video.r3d_18(num_classes=400): 33,371,472 parameters
    assert n_params(build_model("r3d_18", 400, width=64)) == 33_371_472


def test_c3d_parameter_count_matches_published_figure() -> None:
    # C3D for UCF101 (101 classes): 78,409,573 parameters (conv 27,655,936 + fc6 33,558,528 + fc7 16,781,312 + fc8 413,797)
    assert n_params(build_model("c3d", 101, width_mult=1.0, fc_dim=4096)) == 78_409_573


def test_r3d_18_flops_equal_analytic_count() -> None:
    """FlopCounterMode on R3D-18 at 16x112^2 equals 2 x the multiply-adds of its convs and fc (40.70 GMACs,
    torchvision's published "40.70 GFLOPS"). The analytic count is done from the module shapes here."""
    model = build_model("r3d_18", 400, width=64).eval()
    x = torch.randn(1, 3, 16, 112, 112)
    macs = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv3d):
            k = mod.weight.shape[1] * mod.weight[0, 0].numel()  # C_in/groups * kt*kh*kw
            macs += out.numel() * k
        elif isinstance(mod, nn.Linear):
            macs += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    for h in handles:
        h.remove()
    assert counter.get_total_flops() == 2 * macs
    assert 40.6e9 < macs < 40.8e9


@pytest.mark.parametrize("name", ["r3d_18", "r2d_18", "c3d"])
def test_small_models_forward_backward(name: str) -> None:
    model = build_model(name, 11)
    x = torch.randn(2, 3, 16, 64, 64, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 11)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_c3d_rejects_too_few_frames() -> None:
    with pytest.raises(ValueError, match="T>=16"):
        build_model("c3d", 3)(torch.randn(1, 3, 8, 64, 64))


def test_r3d_stage_shapes() -> None:
    model = build_model("r3d_18", 5, width=8).eval()
    feats = model.forward_features(torch.randn(1, 3, 16, 112, 112))
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 16, 56, 56), (16, 8, 28, 28), (32, 4, 14, 14), (64, 2, 7, 7)]


def test_r2d_ignores_frame_order_but_r3d_does_not() -> None:
    """The frame-level baseline pools time away: reversing the clip cannot change its output."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 32, 32)
    rev = x.flip(2)
    r2d, r3d = build_model("r2d_18", 4).eval(), build_model("r3d_18", 4).eval()
    with torch.no_grad():
        torch.testing.assert_close(r2d(x), r2d(rev), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(r3d(x), r3d(rev), atol=1e-5)


def test_blocks_shapes_and_stage_validation() -> None:
    x = torch.randn(1, 16, 4, 8, 8)
    assert BasicBlock(16, 32, stride=(2, 2, 2))(x).shape == (1, 32, 2, 4, 4)
    assert Bottleneck(16, 8, stride=(1, 2, 2), temporal_kernel=3)(x).shape == (1, 32, 4, 4, 4)
    assert res_stage(Bottleneck, 16, 8, 3, temporal_kernel=[1, 3, 1])(x).shape == (1, 32, 4, 8, 8)
    with pytest.raises(ValueError, match="one per block"):
        res_stage(Bottleneck, 16, 8, 3, temporal_kernel=[1, 3])


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="temporal_strides"):
        ResNet3DConfig(temporal_strides=(1, 2))
    with pytest.raises(ValueError, match="dropout"):
        ResNet3DConfig(dropout=1.5)
