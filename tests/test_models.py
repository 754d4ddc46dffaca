"""Every registered model (smoke test over the registry, parameter counts against published figures, the
preset convention, input specs), and R3D-18 / R2D-18 / C3D specifics: shapes, FLOPs, blocks."""
from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stia_kit.models import MODELS, InputSpec, PresetConfig, build_model, example_input, list_models
from stia_kit.models.blocks import BasicBlock, Bottleneck, res_stage
from stia_kit.models.r3d import ResNet3DConfig


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------ every registered model
#: Published parameter counts at the paper preset: name -> (num_classes, parameters, where it is published).
PUBLISHED: dict[str, tuple[int, int, str]] = {
    "r3d_18": (400, 33_371_472, "torchvision.models.video.r3d_18"),
    "r2d_18": (1000, 11_689_512, "2D ResNet-18 (torchvision.models.resnet18): fR2D applies it to each frame"),
    # conv 27,655,936 + fc6 33,558,528 + fc7 16,781,312 + fc8 413,797 (C3D on UCF101)
    "c3d": (101, 78_409_573, "C3D for UCF101, the widely reported figure"),
    "slowfast_r50": (400, 34_480_216, "PySlowFast SLOWFAST_4x16_R50"),
    "r3d_50": (400, 47_018_576, "Hara et al. 3D ResNet-50"),
    "tsn_bninception": (1000, 11_295_240, "TSN's BN-Inception (tsn-pytorch / pretrainedmodels bninception) with its fc"),
}
#: Registered models without a published figure, and why (each still builds at the paper preset below).
NO_PUBLISHED_COUNT: dict[str, str] = {
    "stin": "paper 000 prints no parameter count (its Table-3 'both' row is SlowFast-R50: tests/test_stin.py)",
    "stilt": "paper 001 prints no parameter count (the STIL module's figures under the spec's reading: tests/test_stilt.py)",
    "tstam": "paper 004 prints no parameter count (the attention layers' count under the spec's reading: tests/test_tstam.py)",
    "msf_r3d": "published 21.84 M (3 significant digits): pinned within 0.02 M in tests/test_msf_net.py",
    "msf_c3d": "published 69.20 M (3 significant digits), a documented gap (68.93 M): tests/test_msf_net.py",
    "st_manet": "paper 002 prints no parameter count (row 1 = r3d_50 and the TDA costs per reading: tests/test_st_manet.py)",
}


def test_every_registered_model_is_listed_with_or_without_a_published_count() -> None:
    """A newly registered model fails here until it is added to PUBLISHED or NO_PUBLISHED_COUNT."""
    assert not set(PUBLISHED) & set(NO_PUBLISHED_COUNT)
    assert sorted({*PUBLISHED, *NO_PUBLISHED_COUNT}) == MODELS.names() == list_models()


@pytest.mark.parametrize("name", MODELS.names())
def test_paper_preset_parameter_count(name: str) -> None:
    """The default (paper) preset is the published network; counted on the meta device (no memory)."""
    classes = PUBLISHED[name][0] if name in PUBLISHED else 400
    with torch.device("meta"):
        paper, explicit = build_model(name, classes), build_model(name, classes, preset="paper")
        teaching = build_model(name, classes, preset="teaching")
    assert n_params(paper) == n_params(explicit) > 4 * n_params(teaching)
    if name in PUBLISHED:
        assert n_params(paper) == PUBLISHED[name][1], PUBLISHED[name][2]
    else:
        assert name in NO_PUBLISHED_COUNT, f"{name}: add it to PUBLISHED or NO_PUBLISHED_COUNT"


@pytest.mark.parametrize("name", MODELS.names())
def test_every_registered_model_trains_at_the_teaching_preset(name: str) -> None:
    """torchvision-style smoke test: forward + backward at the teaching preset on a small input built from
    the model's declared ``input_spec``; logits shape, every parameter gets a finite gradient."""
    torch.manual_seed(0)
    model = build_model(name, 5, preset="teaching")
    spec = getattr(model, "input_spec", None)
    assert spec is not None, f"{name} declares no input_spec (stia_kit.models.InputSpec); the smoke test needs one"
    assert isinstance(spec, InputSpec) or all(isinstance(s, InputSpec) for s in spec.values())
    x = example_input(spec, batch=2, frames=16, size=32)
    out = model(x)
    logits = out["logits"] if isinstance(out, dict) else out
    assert logits.shape == (2, 5)
    loss = F.cross_entropy(logits, torch.tensor([0, 3]))
    if isinstance(out, dict):
        loss = loss + sum(v for k, v in out.items() if k.startswith("loss_"))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("name", MODELS.names())
def test_every_builder_follows_the_preset_convention(name: str) -> None:
    """``preset="paper"`` by default; ``teaching`` changes exactly the config's TEACHING fields; overrides win;
    an unknown preset or field is rejected by name."""
    builder = MODELS.get(name)
    params = inspect.signature(builder).parameters
    assert params["preset"].default == "paper" and params["preset"].kind is inspect.Parameter.KEYWORD_ONLY
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    with torch.device("meta"):
        paper, teaching = build_model(name, 5).cfg, build_model(name, 5, preset="teaching").cfg
        assert isinstance(paper, PresetConfig) and type(paper) is type(teaching)
        assert type(paper).paper() == type(paper)()  # the dataclass defaults are the paper's
        changed = {f for f in vars(paper) if getattr(paper, f) != getattr(teaching, f)}
        assert changed == set(type(paper).TEACHING)
        assert all(getattr(teaching, f) == v for f, v in type(paper).TEACHING.items())
        field = next(iter(type(paper).TEACHING))
        over = build_model(name, 5, preset="teaching", **{field: getattr(paper, field)}).cfg
        assert getattr(over, field) == getattr(paper, field)
        with pytest.raises(ValueError, match="preset must be one of"):
            build_model(name, 5, preset="full")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="no_such_field"):
            build_model(name, 5, no_such_field=1)


@pytest.mark.parametrize("name, clip", [("c3d", (3, 8, 64, 64)), ("c3d", (3, 16, 16, 16)),
                                        ("slowfast_r50", (3, 20, 32, 32)), ("stin", (3, 12, 32, 32)),
                                        ("r3d_18", (1, 8, 32, 32))])
def test_input_spec_rejects_what_the_model_rejects(name: str, clip: tuple[int, ...]) -> None:
    """A clip the declared spec rejects also fails the forward, and the spec's own example is accepted."""
    model = build_model(name, 3, preset="teaching").eval()
    with pytest.raises(ValueError, match="cannot take clips"):
        model.input_spec.check(clip, who=name)
    with torch.no_grad(), pytest.raises((ValueError, RuntimeError)):
        model(torch.randn(1, *clip))
    assert model.input_spec.problems(model.input_spec.example_shape(frames=8, size=16)) == []


def test_registry_rejects_unknown_names_and_bad_class_counts() -> None:
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        build_model("nope", 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("r3d_18", 0)


def test_r3d_18_flops_equal_analytic_count() -> None:
    """FlopCounterMode on R3D-18 at 16x112^2 equals 2 x the multiply-adds of its convs and fc (40.70 GMACs,
    torchvision's published "40.70 GFLOPS"). The analytic count is done from the module shapes here."""
    model = build_model("r3d_18", 400).eval()
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


def test_c3d_rejects_too_few_frames() -> None:
    with pytest.raises(ValueError, match="T>=16"):
        build_model("c3d", 3, preset="teaching")(torch.randn(1, 3, 8, 64, 64))


def test_r3d_stage_shapes() -> None:
    model = build_model("r3d_18", 5, preset="teaching", width=8).eval()
    feats = model.forward_features(torch.randn(1, 3, 16, 112, 112))
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 16, 56, 56), (16, 8, 28, 28), (32, 4, 14, 14), (64, 2, 7, 7)]


def test_r2d_ignores_frame_order_but_r3d_does_not() -> None:
    """The frame-level baseline pools time away: reversing the clip cannot change its output."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 32, 32)
    rev = x.flip(2)
    r2d, r3d = build_model("r2d_18", 4, preset="teaching").eval(), build_model("r3d_18", 4, preset="teaching").eval()
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
