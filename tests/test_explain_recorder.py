"""The attention recorder (issue 11): every attention module of every registered model is recorded with its
documented shape; hooks never outlive the ``with``; memory bounds; the recorded maps are the ones the forward
used."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from stia_kit.explain.recorder import (ATTENTION_CONTAINERS, ATTENTION_NAME, ATTENTION_SPECS, AttentionRecorder,
                                       attention_modules, record_attention, spec_for)
from stia_kit.models import MODELS, build_model
from stia_kit.models.registry import example_input

#: Registered models whose default teaching preset holds attention modules (the rest must record nothing;
#: MSF-R3D / MSF-C3D default to no attention, as in the paper's Tables 1-2).
WITH_ATTENTION = {"stin", "stilt", "tstam", "st_manet"}
#: Every registered model at its defaults, plus the switchable attention of the 3D-attention family.
CASES = [(name, {}) for name in MODELS.names()] + [
    ("msf_r3d", {"attention": kind}) for kind in ("se", "cbam", "fsam", "fam", "sam")] + [
    ("msf_c3d", {"attention": "fsam"}), ("tsn_bninception", {"se": True})]


def _looks_like_attention(module: nn.Module) -> bool:
    return hasattr(module, "attention_map") or ATTENTION_NAME.search(type(module).__name__) is not None


@pytest.mark.parametrize("name, overrides", CASES, ids=[f"{n}-{'-'.join(map(str, o.values())) or 'default'}" for n, o in CASES])
def test_every_attention_module_of_every_model_is_recorded_with_its_documented_shape(name: str, overrides: dict) -> None:
    torch.manual_seed(0)
    model = build_model(name, 5, preset="teaching", **overrides).eval()
    root_cls = type(model)
    for mname, module in model.named_modules():
        if module is model or not _looks_like_attention(module):
            continue
        assert spec_for(module) is not None or type(module).__name__ in ATTENTION_CONTAINERS, (
            f"{name}: {mname} ({type(module).__name__}) looks like an attention module but is neither in "
            "recorder.ATTENTION_SPECS nor in ATTENTION_CONTAINERS: it would go unrecorded")
    x = example_input(model.input_spec, batch=2, frames=16, size=32)
    with AttentionRecorder(model, nested=True) as rec, torch.no_grad():
        model(x)
    recorded = rec.by_name()
    expected_modules = [n for n, _ in attention_modules(model, nested=True)]
    assert set(recorded) == set(expected_modules), f"{name}: modules that ran but were not recorded"
    assert (len(expected_modules) > 0) == (name in WITH_ATTENTION or bool(overrides)), f"{name} ({root_cls.__name__})"
    modules = dict(model.named_modules())
    for mname, records in recorded.items():
        module = modules[mname]
        spec = spec_for(module)
        for r in records:
            assert r.kind == spec.kind
            assert r.shapes() == spec.expected(module, r.input_shapes), f"{name}: {mname}"
            maps = r.map.values() if isinstance(r.map, dict) else [r.map]
            assert all(torch.isfinite(t).all() and t.device.type == "cpu" for t in maps)
    # The default (outermost only) is a subset without the nested parts.
    with AttentionRecorder(model) as outer, torch.no_grad():
        model(x)
    assert {r.name for r in outer.records} <= set(recorded)
    assert all(not any(r.name.startswith(o.name + ".") for o in outer.records) for r in outer.records)


def test_stmanet_records_the_matrices_the_forward_used() -> None:
    """A_t / A_s from the recorder equal ST-MANet's own attention_maps (a separate code path)."""
    torch.manual_seed(0)
    model = build_model("st_manet", 4, preset="teaching").eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        own = model.attention_maps(x)
        records = record_attention(model, x)
    temporal = [r.map for r in records if r.kind == "temporal_matrix"]
    spatial = [r.map for r in records if r.kind == "spatial_matrix"]
    assert len(temporal) == len(own["temporal"]) and len(spatial) == len(own["spatial"]) and temporal
    for got, want in zip(temporal, [own["temporal"][k] for k in sorted(own["temporal"])]):
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got.sum(-1), torch.ones(got.shape[:-1]))  # rows of A_t sum to 1
    for got, want in zip(spatial, [own["spatial"][k] for k in sorted(own["spatial"])]):
        torch.testing.assert_close(got, want)


def test_fsam_record_reproduces_the_forward() -> None:
    """forward(x) == x * channel * spatiotemporal with the recorded FSAM maps (MSF-Net Eq. (8))."""
    from stia_kit.models.attention import FSAM
    torch.manual_seed(0)
    fsam = FSAM(16, 7).eval()
    x = torch.randn(2, 16, 3, 7, 7)
    wrapper = nn.Sequential(fsam)  # the root module itself is never recorded
    with AttentionRecorder(wrapper) as rec, torch.no_grad():
        y = wrapper(x)
    (r,) = rec.records
    assert r.kind == "dict" and set(r.map) == {"channel", "spatiotemporal"}
    torch.testing.assert_close(y, x * r.map["channel"][:, :, None, None, None] * r.map["spatiotemporal"])


class _Toy(nn.Module):
    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x, need_weights=False)  # the fused path: no weights returned
        return self.fc(out.mean(1))


def test_multihead_attention_weights_are_recomputed_for_the_recorded_pass() -> None:
    torch.manual_seed(0)
    model = _Toy().eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        _, want = model.attn(x, x, x, need_weights=True, average_attn_weights=False)  # [B, heads, L, L]
        with AttentionRecorder(model, average_heads=False) as rec:
            y = model(x)
        with AttentionRecorder(model) as avg:
            model(x)
    (r,) = rec.records
    assert r.kind == "sequence" and r.shapes() == (2, 2, 5, 5)
    torch.testing.assert_close(r.map, want)
    torch.testing.assert_close(avg.records[0].map, want.mean(1))
    assert avg.records[0].shapes() == ATTENTION_SPECS[nn.MultiheadAttention].expected(model.attn, [(2, 5, 8)])
    torch.testing.assert_close(y, model(x).detach())  # the recorded pass's output is unchanged


def test_hooks_are_removed_on_exit_even_when_the_forward_raises() -> None:
    class Failing(nn.Module):  # records FSAM maps, then raises
        def __init__(self) -> None:
            super().__init__()
            self.net = build_model("msf_r3d", 4, preset="teaching", attention="fsam")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.net(x)
            raise RuntimeError("after the attention modules ran")

    model = Failing().eval()
    modules = [m for _, m in attention_modules(model, nested=True)]
    assert modules
    with pytest.raises(RuntimeError, match="after the attention"):
        with AttentionRecorder(model) as rec, torch.no_grad():
            assert all(m._forward_hooks for _, m in rec.modules)
            model(torch.randn(1, 3, 4, 32, 32))
    assert rec.records  # recorded before the error
    assert all(not m._forward_hooks for m in modules)


def test_memory_bounds_include_filter_max_items_and_max_mb() -> None:
    torch.manual_seed(0)
    model = build_model("stin", 4, preset="teaching").eval()
    x = example_input(model.input_spec, batch=2, frames=16, size=32)
    names = [n for n, _ in attention_modules(model)]
    axial = [n for n in names if n.endswith(".axial.T")]
    assert axial, names
    with AttentionRecorder(model, include=axial[:1]) as one, torch.no_grad():
        model(x)
    assert {r.name for r in one.records} == set(axial[:1])
    assert [r.call for r in one.records] == list(range(len(one.records))) and len(one.records) >= 2  # recurrence
    with AttentionRecorder(model, include=r"\.eca$", max_items=1) as eca, torch.no_grad():
        model(x)
    assert eca.records and all(r.kind == "channel" and r.map.shape[0] == 1 for r in eca.records)
    with AttentionRecorder(model, max_mb=1e-4) as small, torch.no_grad():
        model(x)
    assert len(small.records) == 1 and small.dropped  # the first record exceeds 100 bytes; the rest dropped
    with pytest.raises(ValueError, match="matches no attention module"):
        AttentionRecorder(model, include=["nope"])


def test_flat_gives_one_labelled_map_per_part_for_the_views() -> None:
    torch.manual_seed(0)
    model = build_model("stilt", 4, preset="teaching").eval()
    x = example_input(model.input_spec, batch=2, frames=16, size=32)
    with AttentionRecorder(model) as rec, torch.no_grad():
        model(x)
    flat = rec.flat(item=1)
    labels = {label: (kind, t.shape) for label, kind, t in flat}
    n = x["rgb"].shape[2]
    assert any(label.endswith(":spatial") for label in labels)
    for label, (kind, shape) in labels.items():
        assert kind == "segment" and shape == (n,), label
