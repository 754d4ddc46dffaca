"""MSF-Net (paper 003, stia_kit.models.msf_net): the channel-conserving MSL, the MSF block's placements and
shortcuts, MSF-R3D / MSF-C3D shapes and every switch at the teaching size, the parameter counts of Tables 1-5
against the spec's "match" values (meta device) and the documented gaps, and the MSL's receptive fields."""
from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stia_kit.models import build_model
from stia_kit.models.attention import FSAM, SE3d, CBAM3d
from stia_kit.models.msf_net import (MSL, MSFBlock, MSFC3DConfig, MSFConfig, count_table, msl_split,
                                     receptive_field, receptive_fields)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def paper_count(name: str, **overrides: Any) -> int:
    with torch.device("meta"):
        return n_params(build_model(name, 101, **overrides))


# ------------------------------------------------------------------------------------------ MSL
def test_msl_split_is_torch_chunk_with_an_even_fallback() -> None:
    for c, s in ((64, 3), (64, 4), (64, 5), (64, 6), (256, 6)):
        assert msl_split(c, s) == [t.shape[1] for t in torch.chunk(torch.empty(1, c), s, dim=1)]
    assert msl_split(64, 3) == [22, 22, 20]
    assert len(torch.chunk(torch.empty(1, 16), 5, dim=1)) == 4  # torch.chunk cannot make 5 groups here
    assert msl_split(16, 5) == [4, 3, 3, 3, 3]
    with pytest.raises(ValueError, match="S = 4"):
        msl_split(3, 4)


@pytest.mark.parametrize("scale", [3, 4, 5, 6])
def test_msl_conserves_channels_and_passes_x1(scale: int) -> None:
    torch.manual_seed(0)
    msl = MSL(24, scale).eval()
    x = torch.randn(2, 24, 3, 5, 5)
    y = msl(x)
    assert y.shape == x.shape
    first = msl.sizes[0]
    torch.testing.assert_close(y[:, :first], x[:, :first])  # y_1 = x_1 (Eq. (2))
    assert sum(msl.keep) + first == 24 and len(msl.branches) == scale - 1


def test_msl_branch_widths_follow_the_channel_conserving_reading() -> None:
    msl = MSL(64, 4)  # w = 16: branch 2 has no carry, then carries floor(half)
    assert msl.branch_widths == [16, 24, 28] and msl.keep == [8, 12, 28]
    assert n_params(msl) == 27 * (16**2 + 24**2 + 28**2) + 2 * (16 + 24 + 28)  # convs (no bias) + BN


def test_receptive_fields_of_the_corrected_eq1_match_the_msl() -> None:
    assert [r["rf_msl"] for r in receptive_fields(4)] == [3, 5, 7]
    assert [r["rf_with_first_conv"] for r in receptive_fields(4)] == [5, 7, 9]
    assert receptive_fields(5)[-1]["rf_with_first_conv"] == 11  # "larger than 9x9x9" for S > 4 (section 4.3)
    assert receptive_field([3, 3], [2, 1]) == 1 + 2 + 2 * 2  # a stride multiplies every later kernel
    # measured: the gradient support of one output voxel of each group along T, H and W
    torch.manual_seed(0)
    msl = MSL(8, 4, act=nn.Identity).eval()  # linear, so no ReLU can hide part of the support
    x = torch.randn(1, 8, 15, 15, 15, requires_grad=True)
    y = msl(x)
    starts = [2, 2 + msl.keep[0], 2 + msl.keep[0] + msl.keep[1]]  # first channel of y_21, y_31, y_4
    for start, expected in zip(starts, (3, 5, 7)):
        (g,) = torch.autograd.grad(y[0, start, 7, 7, 7], x, retain_graph=True)
        support = g.abs().sum(dim=(0, 1))  # [T, H, W]
        for dim in range(3):
            nz = support.sum(dim=[d for d in range(3) if d != dim]).nonzero()
            assert int(nz.max() - nz.min() + 1) == expected


# ------------------------------------------------------------------------------------ MSF block
@pytest.mark.parametrize("position", ["a", "b", "c", "d"])
@pytest.mark.parametrize("shortcut_kind", ["maxpool", "conv"])
def test_msf_block_shapes(position: str, shortcut_kind: str) -> None:
    x = torch.randn(2, 8, 4, 8, 8)
    down = MSFBlock(8, 16, stride=(2, 2, 2), position=position, shortcut_kind=shortcut_kind)  # type: ignore[arg-type]
    same = MSFBlock(8, 8, position=position)  # type: ignore[arg-type]
    assert down(x).shape == (2, 16, 2, 4, 4) and same(x).shape == x.shape
    assert isinstance(same.downsample, nn.Identity)
    assert any(isinstance(m, nn.MaxPool3d) for m in down.downsample.modules()) == (shortcut_kind == "maxpool")


def test_path_b_has_the_strided_shortcut_parameter_count() -> None:
    assert paper_count("msf_r3d", shortcut="conv") == paper_count("msf_r3d")


# ------------------------------------------------------------------------------------ counts
#: The spec's "match" values (M parameters, 101 classes, meta device), each within 0.02 M of paper 003.
SPEC_COUNTS: list[tuple[dict[str, Any], float, float]] = [
    ({"scale": 3}, 21.170, 21.18), ({"scale": 5}, 21.785, 21.80), ({"scale": 6}, 21.486, 21.50),
    ({"msl_position": "a"}, 26.656, 26.66), ({"msl_position": "c"}, 16.077, 16.09),
    ({"attention": "fsam"}, 21.877, 21.88), ({"attention": "se"}, 21.88, 21.88), ({"attention": "cbam"}, 21.88, 21.88),
]


def test_msf_r3d_is_21_835_125_parameters() -> None:
    assert paper_count("msf_r3d") == 21_835_125  # paper: 21.84 M (Tables 2-5), 21.82 M (Table 1)


@pytest.mark.parametrize("overrides, spec, published", SPEC_COUNTS)
def test_msf_r3d_counts_match_the_spec_and_the_paper(overrides: dict[str, Any], spec: float, published: float) -> None:
    m = paper_count("msf_r3d", **overrides) / 1e6
    assert abs(m - spec) <= 0.005, (overrides, m)
    assert abs(m - published) <= 0.02, (overrides, m)


def test_msf_c3d_counts_are_the_documented_gap() -> None:
    assert abs(paper_count("msf_c3d") / 1e6 - 68.93) < 0.005  # paper 69.20 M: not reproduced
    assert abs(paper_count("msf_c3d", projections=False) / 1e6 - 68.77) < 0.005
    fsam = paper_count("msf_c3d", attention="fsam") - paper_count("msf_c3d")
    assert fsam == 42_334  # FAM fc at 256 + 512 channels and two SAM convs (paper: 69.25 - 69.20)


@pytest.fixture(scope="module")
def table() -> list[dict[str, Any]]:
    return count_table()


def test_count_table_matches_and_gaps(table: list[dict[str, Any]]) -> None:
    by = {(r["table"], r["row"]): r for r in table}
    for r in table:
        if r["table"] in ("Table 1", "Table 2", "Table 3") and r["row"] != "NST":
            assert r["status"] == "match", r
        if r["params"] is not None:
            assert r["delta_M"] == pytest.approx(r["params"] / 1e6 - r["published_params_M"], abs=1e-3)
        assert r["note"]
    assert by[("Table 3", "NST")]["status"] == "omitted" and by[("Table 3", "NST")]["params"] is None
    c3d, r3d = by[("Table 5", "C3D")], by[("Table 5", "R3D")]
    assert c3d["status"] == "match" and c3d["params"] == 78_409_573 and c3d["gmacs"] == pytest.approx(38.55, abs=0.01)
    assert r3d["status"] == "gap" and r3d["params"] == 33_218_085 and r3d["gmacs"] == pytest.approx(20.35, abs=0.01)
    msf = by[("Table 5", "MSF-R3D")]
    assert msf["params"] == 21_835_125 and msf["gmacs"] == pytest.approx(14.05, abs=0.01) and msf["status"] == "gap"
    assert by[("Table 5", "MSF-C3D")]["status"] == "gap" and by[("Table 5", "MSF-C3D")]["gmacs"] < 32.9
    assert by[("Table 1", "(d) first conv in parts")]["delta_M"] == pytest.approx(-0.007, abs=0.001)
    assert all(r["status"] == "gap" for r in table if r["table"] == "Table 4")  # 101-class figures reprinted


# ------------------------------------------------------------------------------------ models
def test_msf_r3d_stage_shapes_and_attention_places() -> None:
    model = build_model("msf_r3d", 5, preset="teaching", attention="fsam").eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 8, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 8, 32, 32), (32, 4, 16, 16), (64, 2, 8, 8), (128, 1, 4, 4)]
    kinds = [type(a) for a in model.attention]
    assert kinds == [nn.Identity, nn.Identity, FSAM, FSAM]
    assert (model.attention[2].fam.dct_h, model.attention[3].fam.dct_h) == (14, 7)  # stage sizes at 112^2
    x3 = model.stages[2](model.stages[1](model.stages[0](model.stem(torch.randn(1, 3, 8, 64, 64)))))
    maps = model.attention[2].attention_map(x3)
    assert maps["channel"].shape == (1, 64) and maps["spatiotemporal"].shape == (1, 1, 2, 8, 8)
    moved = build_model("msf_r3d", 5, preset="teaching", attention="se", attention_at=(1, 2))
    assert [type(a) for a in moved.attention] == [SE3d, SE3d, nn.Identity, nn.Identity]


TEACHING_SWITCHES: list[tuple[str, dict[str, Any]]] = [
    ("msf_r3d", {}), ("msf_r3d", {"msl_position": "a"}), ("msf_r3d", {"msl_position": "c"}),
    ("msf_r3d", {"msl_position": "d"}), ("msf_r3d", {"scale": 3}), ("msf_r3d", {"scale": 5}),
    ("msf_r3d", {"scale": 6}), ("msf_r3d", {"attention": "se"}), ("msf_r3d", {"attention": "cbam"}),
    ("msf_r3d", {"attention": "fsam"}), ("msf_r3d", {"attention": "fam"}), ("msf_r3d", {"attention": "sam"}),
    ("msf_r3d", {"shortcut": "conv"}), ("msf_c3d", {}), ("msf_c3d", {"attention": "fsam"}),
    ("msf_c3d", {"projections": False}),
]


@pytest.mark.parametrize("name, overrides", TEACHING_SWITCHES)
def test_every_switch_trains_at_the_teaching_size(name: str, overrides: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_model(name, 4, preset="teaching", **overrides)
    frames = 16 if name == "msf_c3d" else 8
    out = model(torch.randn(2, 3, frames, 32, 32))
    assert out.shape == (2, 4)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_fam_and_sam_switches_keep_one_half_of_fsam() -> None:
    fam = build_model("msf_r3d", 4, preset="teaching", attention="fam").attention[3]
    sam = build_model("msf_r3d", 4, preset="teaching", attention="sam").attention[3]
    cbam = build_model("msf_r3d", 4, preset="teaching", attention="cbam").attention[3]
    assert fam.fam is not None and fam.sam is None and sam.fam is None and sam.sam is not None
    assert isinstance(cbam, CBAM3d)


def test_msf_c3d_needs_16_frames() -> None:
    model = build_model("msf_c3d", 3, preset="teaching").eval()
    with pytest.raises(ValueError, match="T>=16"):
        model(torch.randn(1, 3, 8, 64, 64))
    assert model.input_spec.problems((3, 8, 64, 64))


def test_config_validation_names_the_field() -> None:
    for kwargs, field in (({"scale": 7}, "scale"), ({"scale": 2}, "scale"), ({"attention": "nst"}, "attention"),
                          ({"attention_at": (5,)}, "attention_at"), ({"attention_at": (3, 3)}, "attention_at"),
                          ({"msl_position": "e"}, "msl_position"), ({"shortcut": "zero"}, "shortcut"),
                          ({"depths": (2, 2, 2)}, "depths"), ({"dropout": 1.0}, "dropout"), ({"width": 0}, "width")):
        with pytest.raises(ValueError, match=field):
            MSFConfig(**kwargs)
    for kwargs, field in (({"attention_at": (6,)}, "attention_at"), ({"fc_dim": 0}, "fc_dim"),
                          ({"dropout": -0.1}, "dropout")):
        with pytest.raises(ValueError, match=field):
            MSFC3DConfig(**kwargs)
