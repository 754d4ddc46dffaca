"""Captum attributions (stia_kit.explain.attribution): every method on a tiny R3D-18, analytic toy cases,
dict inputs, ablations, baselines, budgets, the ReLU safety copy and default layers of every model."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from stia_kit.explain import attribution as A
from stia_kit.models import build_model, list_models

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def r3d() -> nn.Module:
    torch.manual_seed(0)
    return build_model("r3d_18", 4, preset="teaching", width=4)


@pytest.fixture(scope="module")
def clip() -> Tensor:
    return torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method", A.METHODS)
def test_every_method_gives_maps(r3d: nn.Module, clip: Tensor, method: str) -> None:
    att = A.attribute(r3d, clip, method=method, verbose=False)
    assert r3d.training  # eval for the call, mode restored
    m = att.maps["video"]
    assert m.shape == (2, 4, 16, 16) and torch.isfinite(m).all() and (m >= 0).all() and m.sum() > 0
    assert att.raw["video"].shape == clip.shape and att.raw["video"].dtype == torch.float32
    assert len(att.target) == 2 and att.method == method
    torch.testing.assert_close(att.raw["video"].abs().sum(1), m)


class Toy(nn.Module):
    """Smooth small 3D net: conv -> tanh -> pool -> linear."""

    def __init__(self, t: int = 4) -> None:
        super().__init__()
        self.feat = nn.Conv3d(3, 4, 3, padding=1)
        self.act = nn.Tanh()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.act(self.feat(x)).mean(dim=(2, 3, 4)))


def test_ig_completeness() -> None:
    torch.manual_seed(0)
    model, x = Toy(), torch.randn(2, 3, 4, 8, 8)
    for baseline in ("black", "blur", "shuffle"):
        att = A.attribute(model, x, target=1, method="integrated_gradients", n_steps=64, baseline=baseline,
                          verbose=False)
        base = A.make_baselines(("video",), (x,), A.ExplainConfig(baseline=baseline))[0]
        with torch.no_grad():
            diff = model(x)[:, 1] - model(base)[:, 1]
        torch.testing.assert_close(att.raw["video"].sum(dim=(1, 2, 3, 4)), diff, atol=2e-3, rtol=1e-2)
        assert att.meta["convergence_delta"].abs().max() < 2e-3


def test_black_value_per_channel() -> None:
    x = torch.randn(1, 3, 2, 4, 4)
    (b,) = A.make_baselines(("video",), (x,), A.ExplainConfig(black_value=(("video", (-1.0, -2.0, -3.0)),)))
    assert torch.equal(b[0, :, 0, 0, 0], torch.tensor([-1.0, -2.0, -3.0])) and b.shape == x.shape


def test_saliency_of_linear_model_is_abs_weight() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(3 * 2 * 4 * 4, 5)
    model = nn.Sequential(nn.Flatten(), lin)
    att = A.attribute(model, torch.randn(1, 3, 2, 4, 4), target=2, method="saliency", verbose=False)
    torch.testing.assert_close(att.raw["video"][0], lin.weight[2].detach().abs().reshape(3, 2, 4, 4))


class Region(nn.Module):
    """Logits depend only on the box t 2:4, h 4:8, w 8:12."""

    def forward(self, x: Tensor) -> Tensor:
        s = x[:, :, 2:4, 4:8, 8:12].mean(dim=(1, 2, 3, 4))
        return torch.stack([s, -s], dim=1)


def test_occlusion_marks_the_region() -> None:
    x = torch.rand(1, 3, 6, 16, 16) + 0.5
    att = A.attribute(Region(), x, target=0, method="occlusion", window=(1, 2, 2), stride=(1, 2, 2), verbose=False)
    m = att.maps["video"][0]
    inside = torch.zeros_like(m, dtype=torch.bool)
    inside[2:4, 4:8, 8:12] = True
    assert (m[inside] > 0).all() and (m[~inside] == 0).all()
    fa = A.attribute(Region(), x, target=0, method="feature_ablation", tube=(2, 4, 4), verbose=False)
    assert (fa.maps["video"][0][~inside] == 0).all() and fa.maps["video"][0][inside].min() > 0


def test_slic_tubes() -> None:
    x = torch.zeros(1, 3, 4, 16, 16)
    x[..., :, 8:] = 1.0  # two flat halves
    mask = A.tube_mask(x, (2, 8, 8), "slic")
    assert mask.shape == (1, 1, 4, 16, 16) and int(mask.min()) == 0
    assert len(torch.unique(mask)) == int(mask.max()) + 1  # consecutive ids
    assert not torch.equal(mask[..., 0, :, :], mask[..., 2, :, :])  # time blocks differ
    assert A.attribute(Region(), x + 0.5, target=0, method="feature_ablation", segmentation="slic",
                       verbose=False).maps["video"].shape == (1, 4, 16, 16)


class TimeFlip(nn.Module):
    """``layer`` = identity on the input; logit 0 = sum A[c0, t0] - sum A[c0, t1] + 0.2 sum A[c1]: the
    gradient of channel 0 changes sign over time."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        a = self.layer(x)
        sign = torch.tensor([1.0, -1.0])[: a.shape[2]].view(1, -1, 1, 1)
        z = (a[:, 0] * sign).sum(dim=(1, 2, 3)) + 0.2 * a[:, 1].sum(dim=(1, 2, 3))
        return torch.stack([z, -z], dim=1)


def test_gradcam_time_differs_and_equals_at_t1() -> None:
    x = torch.rand(1, 2, 2, 4, 4) + 0.1
    x[:, 0] *= 5
    g = A.attribute(TimeFlip(), x, target=0, method="gradcam", layer="layer", verbose=False).maps["video"]
    gt = A.attribute(TimeFlip(), x, target=0, method="gradcam_time", layer="layer", verbose=False).maps["video"]
    assert (gt[0, 0] - g[0, 0] > 0.25).all()  # per-slice weights keep channel 0 at t0; the clip mean cancels it
    x1 = x[:, :, :1]
    g1 = A.attribute(TimeFlip(), x1, target=0, method="gradcam", layer="layer", verbose=False).maps["video"]
    gt1 = A.attribute(TimeFlip(), x1, target=0, method="gradcam_time", layer="layer", verbose=False).maps["video"]
    torch.testing.assert_close(g1, gt1)


def test_layer_cam_matches_captum(r3d: nn.Module, clip: Tensor) -> None:
    from captum.attr import LayerGradCam

    keys, xs, _ = A._split(r3d, clip)
    with A._EvalMode(r3d):
        Ac, G, owners, folded = A._capture(r3d, keys, xs, False, "stages.2", [0, 1])
        ref = LayerGradCam(A.CaptumForward(r3d, None), r3d.stages[2]).attribute(clip, target=[0, 1],
                                                                               relu_attributions=True)
    torch.testing.assert_close(A.layer_cam(Ac, G, per_time=False), ref.detach(), atol=1e-6, rtol=1e-4)
    assert owners == ["video"] and not folded


def tiny_dict(model: nn.Module, frames: int = 2, size: int = 32) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(1, s.channels, frames, size, size, generator=g) for k, s in model.input_spec.items()}


def test_dict_inputs_stilt_and_tsn() -> None:
    torch.manual_seed(0)
    stilt = build_model("stilt", 3, preset="teaching")
    x = tiny_dict(stilt)
    gg = A.attribute(stilt, x, method="guided_gradcam", verbose=False)
    assert set(gg.maps) == {"rgb", "flow"}
    assert gg.meta["layers_by_key"] == {"rgb": "backbones.spatial.layer4", "flow": "backbones.temporal.layer4"}
    assert "backbones.spatial.layer1.0.relu" in gg.meta["split_relus"]  # 2D ResNet blocks reuse self.relu
    for k in ("rgb", "flow"):
        assert gg.maps[k].shape == (1, 2, 32, 32) and (gg.maps[k] >= 0).all() and gg.raw[k].shape == x[k].shape
    cam = A.attribute(stilt, x, method="gradcam", layer="backbones.temporal.layer4", verbose=False)
    assert set(cam.maps) == {"flow"}  # the temporal backbone depends on flow only
    sm = A.attribute(stilt, x, method="smoothgrad", noise_by_key=(("flow", 0.05),), nt_samples=2, verbose=False)
    rng = {k: float(v.max() - v.min()) for k, v in x.items()}
    assert sm.meta["stdevs"]["flow"] == pytest.approx(0.05 * rng["flow"], rel=1e-5)
    assert sm.meta["stdevs"]["rgb"] == pytest.approx(0.15 * rng["rgb"], rel=1e-5)
    tsn = build_model("tsn_bninception", 3, preset="teaching")
    xt = tiny_dict(tsn, frames=2, size=31)
    c = A.attribute(tsn, xt, method="gradcam", verbose=False)  # folded [B*N, C, h, w] layer
    assert c.maps["rgb"].shape == (1, 2, 31, 31) and c.meta["layer"] == "backbone.inception_5b_pool"
    with pytest.warns(UserWarning, match="functional ReLU"):  # BN-Inception's torch.relu calls
        assert A.guided_safe_copy(tsn, xt).functional_relus > 0


class TwoModal(nn.Module):
    input_keys = ("rgb", "flow")

    def forward(self, x: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = x["rgb"].mean(dim=(1, 2, 3, 4)), x["flow"].mean(dim=(1, 2, 3, 4))
        return {"logits": torch.stack([2 * a + b, torch.zeros_like(a)], dim=1)}


def test_modality_ablation_numbers() -> None:
    x = {"rgb": torch.full((1, 3, 2, 4, 4), 1.0), "flow": torch.full((1, 2, 2, 4, 4), 0.5)}
    drops = A.modality_ablation(TwoModal(), x, target=0)
    p = lambda z: torch.sigmoid(torch.tensor(z)).item()  # noqa: E731  (2-class softmax of [z, 0])
    assert drops["rgb"] == pytest.approx(p(2.5) - p(0.5), abs=1e-6)
    assert drops["flow"] == pytest.approx(p(2.5) - p(2.0), abs=1e-6)


def test_pathway_ablation_stin() -> None:
    torch.manual_seed(0)
    stin = build_model("stin", 4, preset="teaching").eval()
    x = torch.randn(1, 3, 8, 32, 32)
    drops = A.pathway_ablation(stin, x, target=1)
    assert set(drops) == {"sparse", "dense"}
    with torch.no_grad():
        s, d = stin.forward_features(x)
        p = lambda *f: torch.softmax(stin.head(*f), 1)[0, 1].item()  # noqa: E731
        full = p(s, d)
        assert drops["sparse"] == pytest.approx(full - p(torch.zeros_like(s), d), abs=1e-6)
        assert drops["dense"] == pytest.approx(full - p(s, torch.zeros_like(d)), abs=1e-6)
    with pytest.raises(ValueError, match="no known pathways"):
        A.pathway_ablation(build_model("r3d_18", 2, preset="teaching", width=4), torch.randn(1, 3, 2, 16, 16))


def test_shuffle_baseline_is_a_permutation() -> None:
    rgb, flow = torch.randn(1, 3, 6, 4, 4), torch.randn(1, 2, 6, 4, 4)
    b_rgb, b_flow = A.make_baselines(("rgb", "flow"), (rgb, flow), A.ExplainConfig(baseline="shuffle", seed=3))
    perm = A.time_permutation(6, 3)
    assert sorted(perm.tolist()) == list(range(6)) and perm.tolist() != list(range(6))
    assert torch.equal(b_rgb, rgb[:, :, perm]) and torch.equal(b_flow, flow[:, :, perm])  # one permutation for all keys
    assert A.time_permutation(2, 0).tolist() == [1, 0]


def test_internal_batch_size_shrinks_with_memory(r3d: nn.Module, clip: Tensor) -> None:
    big = A.attribute(r3d, clip, method="integrated_gradients", n_steps=8, memory_mb=1024, verbose=False)
    small = A.attribute(r3d, clip, method="integrated_gradients", n_steps=8, memory_mb=0.05, verbose=False)
    assert big.meta["internal_batch_size"] == 16 and small.meta["internal_batch_size"] < 16
    torch.testing.assert_close(big.raw["video"], small.raw["video"], atol=1e-5, rtol=1e-3)


def test_estimate_cost(r3d: nn.Module, clip: Tensor, capsys: pytest.CaptureFixture[str]) -> None:
    est = A.estimate_cost(r3d, clip, "integrated_gradients", A.ExplainConfig(n_steps=16))
    assert est.passes == 32 and est.seconds > 0 and est.text.startswith("integrated_gradients: 32 passes, ~")
    assert "internal batch" in est.text
    occ = A.estimate_cost(r3d, clip, "occlusion", A.ExplainConfig(window=(2, 8, 8), stride=(2, 8, 8)))
    assert occ.passes == 1 + 2 * 2 * 2
    A.attribute(r3d, clip, method="saliency", announce_seconds=0)
    assert "saliency: 2 passes" in capsys.readouterr().out


class Reused(nn.Module):
    """One in-place ReLU module called three times."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv3d(3, 4, 3, padding=1), nn.Conv3d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 3)
        self.input_spec = None

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.c1(x))
        y = self.relu(self.c2(y))
        return self.fc(self.relu(y - 0.1).mean(dim=(2, 3, 4)))


class Unrolled(Reused):
    def __init__(self, src: Reused) -> None:
        super().__init__()
        self.load_state_dict(src.state_dict())
        self.r1, self.r2, self.r3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.r1(self.c1(x))
        y = self.r2(self.c2(y))
        return self.fc(self.r3(y - 0.1).mean(dim=(2, 3, 4)))


def test_guided_safe_copy_splits_reused_inplace_relu() -> None:
    from captum.attr import GuidedBackprop

    torch.manual_seed(0)
    model, x = Reused(), torch.randn(1, 3, 2, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    safe = A.guided_safe_copy(model, x)
    assert safe.split_relus == ["relu"] and isinstance(safe.relu, A.SplitReLU) and len(safe.relu.relus) == 3
    ref = GuidedBackprop(Unrolled(model)).attribute(x.clone(), target=0)
    torch.testing.assert_close(GuidedBackprop(safe).attribute(x.clone(), target=0), ref)
    torch.testing.assert_close(safe(x), model(x))
    att = A.attribute(model, x, target=0, method="guided_gradcam", layer="c2", verbose=False)
    assert att.maps["video"].shape == (1, 2, 8, 8) and att.meta["split_relus"] == ["relu"]
    assert type(model.relu) is nn.ReLU and model.relu.inplace  # original untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_default_layer_for_every_model() -> None:
    for name in list_models():
        model = build_model(name, 3, preset="teaching").eval()
        layer = A.default_layer(model)
        probe = A._probe_input(model, batch=1)
        shapes: list[tuple[int, ...]] = []
        h = model.get_submodule(layer).register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
        with torch.no_grad():
            model(probe)
        h.remove()
        assert shapes and len(shapes[0]) in (4, 5), (name, layer, shapes)
        if len(shapes[0]) == 5:
            assert shapes[0][0] == 1, (name, layer)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="method"):
        A.ExplainConfig(method="lime")
    with pytest.raises(ValueError, match="window"):
        A.ExplainConfig(window=(2, 0, 8))
    with pytest.raises(ValueError, match="noise_by_key"):
        A.ExplainConfig(noise_by_key=("flow", 0.1))
