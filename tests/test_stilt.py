"""STILT (stia_kit.models.stilt): the co-attention (Eq. (1)-(3), the spec's identities and parameter counts), the
model's switches (Tables 4-6), the stream_logits contract through fit / evaluate, features and attention maps."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from stia_kit.models import build_model
from stia_kit.models.backbones2d import build_backbone2d
from stia_kit.models.fusion import early_fusion_svm, fit_awf, stack_stream_scores
from stia_kit.models.stilt import (PAPER_TABLE4, STILT, CoAttention, GuidedAttention, STILModule, STILTConfig,
                                   late_average_logits, table4_configs, table6_configs)
from stia_kit.train import TrainConfig, evaluate, fit

SEG, SIZE = 3, 32  # tiny inputs: 3 segments of 32 x 32


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def inputs(model: STILT, batch: int = 2, segments: int = SEG, size: int = SIZE) -> dict[str, torch.Tensor]:
    return {k: torch.randn(batch, s.channels, segments, size, size) for k, s in model.input_spec.items()}


# ---------------------------------------------------------------------------------------------- co-attention
@pytest.mark.parametrize("classes", [101, 51])
def test_stil_parameter_counts_under_the_reading(classes: int) -> None:
    """The spec's figures: embeddings 2,098,176; step-1 attention 263,169; steps 2 + 3 1,051,650; the two FC
    512 -> 1024 1,050,624; classifiers 2 x (1024 C + C)."""
    with torch.device("meta"):
        stil = STILModule(2048, classes)
    co = stil.coattention
    assert n_params(co.embed_s) + n_params(co.embed_t) == 2_098_176
    assert n_params(co.step1) == 263_169
    assert n_params(co.step2) + n_params(co.step3) == 1_051_650
    assert sum(n_params(h.fc) for h in stil.heads.values()) == 1_050_624
    assert sum(n_params(h.classifier) for h in stil.heads.values()) == 2 * (1024 * classes + classes)
    assert n_params(stil) == 2_098_176 + 263_169 + 1_051_650 + 1_050_624 + 2 * (1024 * classes + classes)
    with torch.device("meta"):
        mean_init = STILModule(2048, classes, init="mean")
    assert mean_init.coattention.step1 is None and n_params(stil) - n_params(mean_init) == 263_169


def test_stilt_paper_preset_parameter_decomposition() -> None:
    """Paper preset = two ResNet-50 feature extractors (the flow one with a 20-channel conv1) + STIL."""
    with torch.device("meta"):
        model = build_model("stilt", 101)
        rgb, flow = build_backbone2d("resnet50"), build_backbone2d("resnet50", in_channels=20)
    assert model.feature_dim == 2048 and n_params(flow) - n_params(rgb) == 64 * 17 * 7 * 7
    stil = 2_098_176 + 263_169 + 1_051_650 + 1_050_624 + 2 * (1024 * 101 + 101)
    assert n_params(model) == n_params(rgb) + n_params(flow) + stil == 51_740_045


@pytest.mark.parametrize("init, rounds", [("attend", 1), ("mean", 1), ("attend", 3)])
def test_coattention_identical_vectors_return_that_vector(init: str, rounds: int) -> None:
    """All segments equal -> every attended output is that (embedded) vector, whatever the weights."""
    torch.manual_seed(0)
    co = CoAttention(16, embed_dim=8, hidden_dim=6, init=init, rounds=rounds)  # type: ignore[arg-type]
    v, u = torch.randn(2, 1, 16), torch.randn(2, 1, 16)
    s, t = v.expand(2, 5, 16), u.expand(2, 4, 16)
    s_hat, t_hat = co(s, t)
    torch.testing.assert_close(s_hat, co.embed_s(v[:, 0]))
    torch.testing.assert_close(t_hat, co.embed_t(u[:, 0]))
    step = GuidedAttention(8, 6, guided=True)
    k = torch.randn(2, 1, 8).expand(2, 7, 8)
    out, a = step(k, torch.randn(2, 8))
    torch.testing.assert_close(out, k[:, 0])
    torch.testing.assert_close(a.sum(1), torch.ones(2))


def test_coattention_steps_follow_equations_1_to_3() -> None:
    """Recompute the three steps by hand from the module's weights: H = tanh(W_k K + (W_g g) 1^T),
    a = softmax(w_hk^T H) over segments, O = sum_i a_i k_i; weights sum to 1; attention_map returns them."""
    torch.manual_seed(1)
    co = CoAttention(10, embed_dim=8, hidden_dim=5)
    s, t = torch.randn(3, 4, 10), torch.randn(3, 4, 10)
    es, et = co.embed_s(s), co.embed_t(t)

    def attend(step: GuidedAttention, k: torch.Tensor, g: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = k @ step.w_k.weight.T + step.w_k.bias  # W_k K
        if g is not None:
            h = h + (g @ step.w_g.weight.T + step.w_g.bias)[:, None, :]  # (W_g g) 1^T
        a = torch.softmax((torch.tanh(h) @ step.w_hk.weight.T).squeeze(-1) + step.w_hk.bias, dim=1)  # Eq. (2)
        return (a[:, :, None] * k).sum(1), a  # Eq. (3)

    x_hat, a1 = attend(co.step1, es, None)  # step 1: K = S, g = 0
    t_hat, a_t = attend(co.step2, et, x_hat)  # step 2: K = T, g = x^
    s_hat, a_s = attend(co.step3, es, t_hat)  # step 3: K = S, g = t^
    got_s, got_t = co(s, t)
    torch.testing.assert_close(got_s, s_hat)
    torch.testing.assert_close(got_t, t_hat)
    maps = co.attention_map(s, t)
    assert set(maps) == {"spatial", "temporal", "summary"}
    for key, ref in (("spatial", a_s), ("temporal", a_t), ("summary", a1)):
        torch.testing.assert_close(maps[key], ref)
        assert maps[key].shape == (3, 4)
        torch.testing.assert_close(maps[key].sum(1), torch.ones(3))


def test_coattention_interaction_mean_init_and_rounds() -> None:
    """The temporal weights depend on the spatial features (the guidance); "mean" starts from uniform
    weights; extra rounds change the result but reuse the step-2/3 parameters."""
    torch.manual_seed(2)
    s, t = torch.randn(2, 5, 12), torch.randn(2, 5, 12)
    co = CoAttention(12, embed_dim=8, hidden_dim=8)
    a_t = co.attention_map(s, t)["temporal"]
    assert not torch.allclose(a_t, co.attention_map(torch.randn(2, 5, 12), t)["temporal"])
    mean = CoAttention(12, embed_dim=8, hidden_dim=8, init="mean")
    torch.testing.assert_close(mean.attention_map(s, t)["summary"], torch.full((2, 5), 0.2))
    three = CoAttention(12, embed_dim=8, hidden_dim=8, rounds=3)
    three.load_state_dict(co.state_dict())  # the same parameters
    assert n_params(three) == n_params(co)
    assert not torch.allclose(three(s, t)[0], co(s, t)[0])
    with pytest.raises(ValueError, match="rounds"):
        CoAttention(12, rounds=0)
    with pytest.raises(ValueError, match="init"):
        CoAttention(12, init="uniform")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- the model
SWITCHES: list[dict[str, Any]] = [
    dict(streams="both", stil=True),  # Two-stream + STIL (the registered default)
    dict(streams="both", stil=False),  # Two-stream (late average)
    dict(streams="rgb", stil=False),  # Spatial
    dict(streams="flow", stil=False),  # Temporal
    dict(backbone="resnet34"),  # Table 6
    dict(backbone="vgg19", width=0.125),  # Table 6 (fc7 feature)
    dict(coattn_init="mean", rounds=2, fc_activation="none", new_length=2),
]


@pytest.mark.parametrize("overrides", SWITCHES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_stilt_forward_backward_per_switch(overrides: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_model("stilt", 4, preset="teaching", **overrides)
    heads = model.cfg.heads
    assert model.input_keys == tuple({"spatial": "rgb", "temporal": "flow"}[h] for h in heads)
    x = inputs(model)
    out = model(x)
    assert out["logits"].shape == (2, 4) and set(out["stream_logits"]) == set(heads)
    assert all(v.shape == (2, 4) for v in out["stream_logits"].values())
    target = torch.tensor([1, 3])
    sum(F.cross_entropy(v, target) for v in out["stream_logits"].values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if len(heads) == 1:
        assert torch.equal(out["logits"], out["stream_logits"][heads[0]])
    else:
        late = (out["stream_logits"]["spatial"].softmax(-1) + out["stream_logits"]["temporal"].softmax(-1)) / 2
        torch.testing.assert_close(out["logits"].softmax(-1), late)
        torch.testing.assert_close(out["logits"].exp().sum(-1), torch.ones(2))


def test_late_average_logits_is_log_of_mean_softmax() -> None:
    a, b = torch.tensor([[10.0, 0.0, -5.0]]), torch.tensor([[0.0, 3.0, 1.0]])
    ref = ((a.softmax(-1) + b.softmax(-1)) / 2).log()
    torch.testing.assert_close(late_average_logits(a, b), ref)
    big = late_average_logits(a * 100, b * 100)  # stable for large logits
    assert torch.isfinite(big).all() and math.isclose(big.exp().sum().item(), 1.0, rel_tol=1e-6)


def test_without_stil_is_tsn_average_consensus() -> None:
    """stil=False: each segment classified by the backbone feature's linear layer, class scores averaged."""
    torch.manual_seed(0)
    model = build_model("stilt", 3, preset="teaching", streams="rgb", stil=False).eval()
    x = inputs(model)
    with torch.no_grad():
        out = model(x)["logits"]
        per_segment = torch.stack([model.classifiers["spatial"](model.backbones["spatial"](x["rgb"][:, :, i]))
                                   for i in range(SEG)], dim=1)  # [B, N, C]
    torch.testing.assert_close(out, per_segment.mean(1))


def test_features_attention_map_and_early_fusion() -> None:
    torch.manual_seed(0)
    model = build_model("stilt", 3, preset="teaching").eval()
    x = inputs(model, batch=4, segments=5)
    feats = model.features(x)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {"spatial": (4, 128), "temporal": (4, 128)}
    maps = model.attention_map(x)
    assert maps["spatial"].shape == maps["temporal"].shape == (4, 5)
    torch.testing.assert_close(maps["temporal"].sum(1), torch.ones(4))
    pred = early_fusion_svm({k: v.numpy() for k, v in feats.items()}, np.array([0, 1, 2, 0]),
                            [v.numpy() for v in feats.values()], num_classes=3)
    assert pred.shape == (4,) and set(pred.tolist()) <= {0, 1, 2}
    plain = build_model("stilt", 3, preset="teaching", stil=False).eval()
    assert {k: tuple(v.shape) for k, v in plain.features(x).items()} == {"spatial": (4, 512), "temporal": (4, 512)}
    with pytest.raises(RuntimeError, match="stil=True"):
        plain.attention_map(x)


def test_input_spec_and_input_checks() -> None:
    model = build_model("stilt", 3, preset="teaching")
    spec = model.input_spec
    assert set(spec) == {"rgb", "flow"} and spec["rgb"].channels == 3 and spec["flow"].channels == 10
    assert spec["rgb"].num_frames == 3 and spec["rgb"].size == 56
    with torch.device("meta"):
        paper = build_model("stilt", 3)
    assert paper.input_spec["flow"].channels == 20 and paper.input_spec["rgb"].size == 224
    x = inputs(model)
    with pytest.raises(ValueError, match="cannot take clips"):
        model({"rgb": x["rgb"], "flow": torch.randn(2, 6, SEG, SIZE, SIZE)})
    with pytest.raises(KeyError, match="flow"):
        model({"rgb": x["rgb"]})
    assert build_model("stilt", 3, preset="teaching", streams="flow", stil=False).input_keys == ("flow",)


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="stil=True needs streams='both'"):
        STILTConfig(streams="rgb")
    for field, value in (("backbone", "resnet18"), ("streams", "audio"), ("coattn_init", "zero"), ("width", 0),
                         ("new_length", 0), ("rounds", 0), ("dropout", 1.0), ("fc_activation", "gelu"),
                         ("vgg_feature", "fc6")):
        with pytest.raises(ValueError, match=f"STILTConfig.{field}"):
            STILTConfig(**{field: value})


def test_table_rows_and_backbone_copy() -> None:
    rows = table4_configs(STILTConfig.teaching())
    assert list(rows) == list(PAPER_TABLE4)
    assert rows["Spatial"][0].streams == "rgb" and not rows["Two-stream"][0].stil
    assert rows["Two-stream + STIL + AWF"] == (rows["Two-stream + STIL"][0], "awf")
    assert {c.backbone for c in table6_configs().values()} == {"vgg19", "resnet34", "resnet50"}
    torch.manual_seed(0)
    stage1 = STILT(rows["Two-stream"][0], 3)
    stage2 = STILT(rows["Two-stream + STIL"][0], 3)
    assert stage2.copy_backbones_from(stage1) == ["spatial", "temporal"]
    for h in ("spatial", "temporal"):
        for a, b in zip(stage1.backbones[h].state_dict().values(), stage2.backbones[h].state_dict().values()):
            assert torch.equal(a, b)
    assert stage2.copy_backbones_from(STILT(rows["Temporal"][0], 3)) == ["temporal"]


class RandomTwoStream(Dataset):
    """Random frames + flow samples in the data layer's format."""

    def __init__(self, n: int, flow_channels: int) -> None:
        self.n, self.flow_channels, self.classes = n, flow_channels, ["a", "b", "c"]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(i)
        return {"rgb": torch.randn(3, SEG, SIZE, SIZE, generator=g),
                "flow": torch.randn(self.flow_channels, SEG, SIZE, SIZE, generator=g),
                "label": i % 3, "index": i, "failed": ""}


def test_fit_trains_each_head_by_its_own_cross_entropy_and_awf_fits_on_scores() -> None:
    """The training loop's stream_logits contract: loss = CE(spatial) + CE(temporal), both logged, "logits"
    (the late average) evaluated; evaluate's per-head scores feed AWF."""
    torch.manual_seed(0)
    model = build_model("stilt", 3, preset="teaching")
    data = RandomTwoStream(4, model.cfg.flow_channels)
    cfg = TrainConfig(epochs=1, batch_size=2, lr=0.01, device="cpu", amp="off", seed=0, out_dir=None)
    rec = fit(model, data, data, cfg, progress=False).history[-1]["train"]
    assert rec["loss"] == pytest.approx(rec["loss_ce_spatial"] + rec["loss_ce_temporal"], rel=1e-5)
    assert "loss_ce" not in rec and {"top1", "top1_spatial", "top1_temporal"} <= set(rec)
    report = evaluate(model, data, batch_size=2, return_scores=True)
    assert report.scores is not None and set(report.scores) == {"logits", "spatial", "temporal"}
    torch.testing.assert_close(report.scores["logits"],
                               (report.scores["spatial"] + report.scores["temporal"]) / 2, rtol=1e-5, atol=1e-6)
    w = fit_awf(stack_stream_scores(report.scores), np.array(report.targets), lam=1.0)
    assert w.shape == (3, 2) and np.allclose(w.sum(1), 1.0)
