"""SlowFast-R50 baseline: published parameter count, pathway sampling, and the checkpoint key mapping."""
import re

import pytest
import torch

from stia_kit.models import build_model
from stia_kit.models.pretrained import load_slowfast_weights
from stia_kit.models.slowfast import PathwaySampler, SlowFast, SlowFastConfig
from stia_kit.models.stin import STIN, STINConfig


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_count_matches_published_34_48M():
    with torch.device("meta"):
        n = n_params(SlowFast(SlowFastConfig.paper(), 400))
        by_name = n_params(build_model("slowfast_r50", 400))  # the name means SlowFast-R50 4x16
    assert abs(n - 34.48e6) / 34.48e6 < 0.01
    assert n == by_name == 34_480_216  # exact count of PySlowFast SLOWFAST_4x16_R50 (fusion kernel 5)
    assert SlowFastConfig() == SlowFastConfig.paper()
    assert (SlowFastConfig.paper().width, SlowFastConfig.paper().num_frames) == (64, 64)


def test_teaching_preset_sizes():
    cfg = SlowFastConfig.teaching()
    assert (cfg.width, cfg.beta_inv, cfg.alpha, cfg.tau, cfg.depths, cfg.num_frames) == (16, 4, 4, 8, (1, 1, 1, 1), 32)
    assert cfg.fast_width == 4 and cfg.fast_temporal_kernels == SlowFastConfig().fast_temporal_kernels
    assert SlowFastConfig.teaching(width=32).width == 32


def test_sampler_and_forward_small():
    s, f = PathwaySampler(16, 8)(torch.arange(64.0).view(1, 1, 64, 1, 1))
    assert s.flatten().tolist() == [0, 16, 32, 48]
    assert f.flatten().tolist() == list(range(0, 64, 2))
    m = build_model("slowfast_r50", num_classes=5, preset="teaching", width=8)
    assert m(torch.randn(2, 3, 32, 32, 32)).shape == (2, 5)


def test_sampling_errors_are_clear():
    with pytest.raises(ValueError, match="T=40 must be a positive multiple of tau=16"):
        SlowFastConfig(num_frames=40)
    with pytest.raises(ValueError, match="tau=12 must be a positive multiple of alpha=8"):
        SlowFastConfig(tau=12)
    m = SlowFast(SlowFastConfig(width=8, depths=(1, 1, 1, 1)), 3)
    with pytest.raises(ValueError, match="T=24"):
        m(torch.randn(1, 3, 24, 32, 32))


# --- a state dict in PySlowFast's key layout, generated from the architecture (independent of our names) ---
def pyslowfast_state(width=16, beta_inv=8, depths=(1, 1, 1, 1), classes=11, kernel=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}

    def conv(name, *shape):
        sd[name + ".weight"] = torch.randn(*shape, generator=g)

    def bn(name, c):
        for s in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{name}.{s}"] = torch.rand(c, generator=g) + 0.5
        sd[f"{name}.num_batches_tracked"] = torch.tensor(7)

    widths = {0: width, 1: width // beta_inv}
    conv("s1.pathway0_stem.conv", width, 3, 1, 7, 7); bn("s1.pathway0_stem.bn", width)
    conv("s1.pathway1_stem.conv", widths[1], 3, 5, 7, 7); bn("s1.pathway1_stem.bn", widths[1])
    fast_ch = [widths[1]] + [4 * widths[1] * 2**i for i in range(3)]
    for k, c in enumerate(fast_ch, start=1):
        conv(f"s{k}_fuse.conv_f2s", 2 * c, c, kernel, 1, 1); bn(f"s{k}_fuse.bn", 2 * c)
    for p in (0, 1):
        in_ch = widths[p]
        for i, depth in enumerate(depths):
            w = widths[p] * 2**i
            if p == 0:
                in_ch += 2 * fast_ch[i]
            kt = (1, 1, 3, 3)[i] if p == 0 else 3
            for j in range(depth):
                pre = f"s{i + 2}.pathway{p}_res{j}"
                cin = in_ch if j == 0 else 4 * w
                conv(f"{pre}.branch2.a", w, cin, kt, 1, 1); bn(f"{pre}.branch2.a_bn", w)
                conv(f"{pre}.branch2.b", w, w, 1, 3, 3); bn(f"{pre}.branch2.b_bn", w)
                conv(f"{pre}.branch2.c", 4 * w, w, 1, 1, 1); bn(f"{pre}.branch2.c_bn", 4 * w)
                if j == 0:
                    conv(f"{pre}.branch1", 4 * w, cin, 1, 1, 1); bn(f"{pre}.branch1_bn", 4 * w)
            in_ch = 4 * w
    sd["head.projection.weight"] = torch.randn(classes, 4 * 8 * (width + widths[1]), generator=g)
    sd["head.projection.bias"] = torch.randn(classes, generator=g)
    return sd


def pytorchvideo_rename(key):
    """PySlowFast -> PyTorchVideo names (written independently of the loader's regexes)."""
    rules = [
        (r"s1\.pathway(\d)_stem\.conv\.", r"blocks.0.multipathway_blocks.\1.conv."),
        (r"s1\.pathway(\d)_stem\.bn\.", r"blocks.0.multipathway_blocks.\1.norm."),
        (r"s(\d)_fuse\.conv_f2s\.", lambda m: f"blocks.{int(m[1]) - 1}.multipathway_fusion.conv_fast_to_slow."),
        (r"s(\d)_fuse\.bn\.", lambda m: f"blocks.{int(m[1]) - 1}.multipathway_fusion.norm."),
        (r"s(\d)\.pathway(\d)_res(\d+)\.branch2\.([abc])_bn\.",
         lambda m: f"blocks.{int(m[1]) - 1}.multipathway_blocks.{m[2]}.res_blocks.{m[3]}.branch2.norm_{m[4]}."),
        (r"s(\d)\.pathway(\d)_res(\d+)\.branch2\.([abc])\.",
         lambda m: f"blocks.{int(m[1]) - 1}.multipathway_blocks.{m[2]}.res_blocks.{m[3]}.branch2.conv_{m[4]}."),
        (r"s(\d)\.pathway(\d)_res(\d+)\.branch1_bn\.",
         lambda m: f"blocks.{int(m[1]) - 1}.multipathway_blocks.{m[2]}.res_blocks.{m[3]}.branch1_norm."),
        (r"s(\d)\.pathway(\d)_res(\d+)\.branch1\.",
         lambda m: f"blocks.{int(m[1]) - 1}.multipathway_blocks.{m[2]}.res_blocks.{m[3]}.branch1_conv."),
        (r"head\.projection\.", "blocks.6.proj."),
    ]
    for pat, rep in rules:
        new, n = re.subn("^" + pat, rep, key)
        if n:
            return new
    raise AssertionError(key)


@pytest.mark.parametrize("layout", ["pyslowfast", "pytorchvideo"])
def test_checkpoint_layouts_load_every_key(tmp_path, layout):
    sd = pyslowfast_state()
    if layout == "pytorchvideo":
        sd = {pytorchvideo_rename(k): v for k, v in sd.items()}
    path = tmp_path / "ckpt.pyth"
    torch.save({"model_state": sd} if layout == "pyslowfast" else sd, path)
    model = SlowFast(SlowFastConfig(width=16, depths=(1, 1, 1, 1)), 11)
    report = load_slowfast_weights(model, path)
    assert report.layout == layout
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    assert len(report.matched) == len(sd) == len(model.state_dict())
    own = model.state_dict()
    key = "s1.pathway0_stem.conv.weight" if layout == "pyslowfast" else "blocks.0.multipathway_blocks.0.conv.weight"
    torch.testing.assert_close(own["slow.stem.conv.0.weight"], sd[key])
    key = "s3_fuse.conv_f2s.weight" if layout == "pyslowfast" else "blocks.2.multipathway_fusion.conv_fast_to_slow.weight"
    torch.testing.assert_close(own["fuse.2.conv.0.weight"], sd[key])
    key = "s4.pathway1_res0.branch2.b_bn.running_var" if layout == "pyslowfast" else \
        "blocks.3.multipathway_blocks.1.res_blocks.0.branch2.norm_b.running_var"
    torch.testing.assert_close(own["fast.stages.2.0.conv_b.1.running_var"], sd[key])


def test_checkpoint_onto_stin_shared_parts():
    sd = pyslowfast_state()
    stin = STIN(STINConfig(width=16, depths=(1, 1, 1, 1), cdai_stem_lateral=True), 11)
    report = load_slowfast_weights(stin, sd)
    matched = set(report.matched)
    assert {"sparse.stem.conv.0.weight", "dense.stem.conv.0.weight", "laterals.0.conv.0.weight",
            "dense.stages.3.0.conv_c.0.weight", "sparse.stages.0.0.conv_b.0.weight"} <= matched
    assert not any(k.startswith("laterals.1.") for k in matched)  # CDAI is new
    assert any(k.startswith("laterals.1.") for k in report.missing)
    assert "s2_fuse.conv_f2s.weight" in report.unexpected  # SlowFast laterals after res2..res4 have no target
    # sparse res3 input: C + beta*C (max-pool + ECA) in STIN vs C + 2*beta*C in SlowFast
    assert ("sparse.stages.1.0.conv_a.0.weight", (32, 80, 1, 1, 1), (32, 72, 1, 1, 1)) in report.mismatched
    # the paper's STIN (no stem lateral): SlowFast's stem lateral has no target, res2 takes C instead of C + 2 beta C
    report = load_slowfast_weights(STIN(STINConfig(width=16, depths=(1, 1, 1, 1)), 11), sd)
    assert "s1_fuse.conv_f2s.weight" in report.unexpected and "sparse.stem.conv.0.weight" in report.matched
    assert ("sparse.stages.0.0.conv_a.0.weight", (16, 20, 1, 1, 1), (16, 16, 1, 1, 1)) in report.mismatched
    # with cdai=False STIN *is* SlowFast: everything loads
    report = load_slowfast_weights(STIN(STINConfig(width=16, depths=(1, 1, 1, 1), cdai=False), 11), sd)
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
