"""Tests of stia_kit.enhance: curve models, losses (hand-computed values), training, classical methods,
metrics, clip/video enhancement and temporal smoothing. Kept small: CPU, tiny images, few steps."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stia_kit.enhance import (
    ENHANCERS,
    ColorConstancyLoss,
    CurveEnhancer,
    CurveSmoother,
    DarkFrameDataset,
    EnhanceTrainConfig,
    EnhanceTransform,
    ExposureControlLoss,
    IlluminationSmoothnessLoss,
    SpatialConsistencyLoss,
    ZeroDCE,
    ZeroDCEConfig,
    ZeroDCELoss,
    ZeroDCELossConfig,
    ZeroDCEPP,
    ZeroDCEPPConfig,
    apply_curves,
    build_enhancer,
    convert_official_state_dict,
    enhance_clip,
    enhance_videos,
    flicker,
    le_curve,
    mean_brightness,
    psnr,
    ssim,
    train_curve_model,
)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the 2 shared CPU cores are oversubscribed by parallel test runs otherwise."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def dark_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random smooth RGB images scaled into [0, 0.15]: synthetic low-light frames."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear") * 0.15


# ---------------------------------------------------------------------------------------------- models


def test_parameter_counts_match_papers() -> None:
    assert n_params(ZeroDCE()) == 79_416
    assert n_params(ZeroDCEPP()) == 10_561
    assert n_params(ZeroDCEPP(ZeroDCEPPConfig.paper())) == 10_561  # downscaling adds no parameters


@pytest.mark.parametrize(
    "model, k", [(ZeroDCE(), 24), (ZeroDCEPP(), 3), (ZeroDCEPP(ZeroDCEPPConfig(scale_factor=12)), 3)]
)
def test_forward_shapes_and_range(model: torch.nn.Module, k: int) -> None:
    x = torch.rand(2, 3, 37, 50)  # odd sizes: the ++ upsampling must still hit the input size
    y, curves = model(x)
    assert y.shape == x.shape and curves.shape == (2, k, 37, 50)
    assert curves.abs().max() <= 1 and 0 <= y.min() and y.max() <= 1


def test_bad_inputs_and_configs_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="scale_factor"):
        ZeroDCEPPConfig(scale_factor=0.5)
    with pytest.raises(ValueError, match="iterations"):
        ZeroDCEConfig(iterations=0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        ZeroDCE()(torch.rand(3, 8, 8))


def test_le_curve_math() -> None:
    x = torch.linspace(0, 1, 101)
    assert torch.equal(le_curve(x, 0.0), x)  # a = 0 is the identity
    for a in torch.linspace(-1, 1, 21):
        y = le_curve(x, a)
        assert y.min() >= 0 and y.max() <= 1
        assert (y[1:] - y[:-1]).min() >= 0  # monotonic in x
        assert y[0] == 0 and y[-1] == 1
    assert le_curve(torch.tensor(0.5), 1.0).item() == pytest.approx(0.75)  # 0.5 + 1 * 0.5 * 0.5
    # Iterated curve, Eq. (2): shared map applied n times == per-iteration maps all equal to it.
    img = torch.rand(1, 3, 4, 4)
    a = torch.rand(1, 3, 4, 4) * 2 - 1
    assert torch.allclose(apply_curves(img, a, 8), apply_curves(img, a.repeat(1, 8, 1, 1), 8))
    ref = img
    for _ in range(8):
        ref = ref + a * ref * (1 - ref)
    assert torch.allclose(apply_curves(img, a, 8), ref)


def test_official_checkpoint_conversion_is_exact() -> None:
    """The official code computes x + r (x^2 - x); converting its weights must give identical images."""
    torch.manual_seed(0)
    official = ZeroDCE()  # stands for a network trained with the official sign convention
    x = torch.rand(1, 3, 16, 16)
    r = official.estimate_curves(x)
    ref = x
    for r_n in torch.split(r, 3, dim=1):
        ref = ref + r_n * (ref.pow(2) - ref)
    ours = ZeroDCE()
    ours.load_state_dict(convert_official_state_dict({f"module.{k}": v for k, v in official.state_dict().items()}))
    assert torch.allclose(ours(x)[0], ref, atol=1e-6)


# ---------------------------------------------------------------------------------------------- losses


def test_spatial_consistency_known_values() -> None:
    loss = SpatialConsistencyLoss()
    const = torch.full((2, 3, 16, 16), 0.3)
    assert loss(const, const).item() == 0.0
    img = torch.rand(2, 3, 16, 16)
    assert loss(img, img).item() == 0.0
    # Input 0, enhanced constant c on 8x8 -> pooled 2x2 of c. Each pooled pixel has 2 inside neighbours
    # (difference 0 for both) and 2 zero-padded outside ones (difference c vs 0): 2 c^2 per pixel.
    c = 0.5
    assert loss(torch.full((1, 3, 8, 8), c), torch.zeros(1, 3, 8, 8)).item() == pytest.approx(2 * c * c, rel=1e-5)


def test_exposure_known_values() -> None:
    loss = ExposureControlLoss()
    assert loss(torch.full((1, 3, 32, 32), 0.6)).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(torch.full((1, 3, 32, 32), 0.2)).item() == pytest.approx(0.16, rel=1e-5)  # (0.2 - 0.6)^2
    half = torch.cat([torch.full((1, 3, 16, 16), 0.6), torch.full((1, 3, 16, 16), 1.0)], dim=3)
    assert loss(half).item() == pytest.approx(0.08, rel=1e-5)  # two patches: (0 + 0.16) / 2


def test_color_constancy_known_value_and_grey_gradient() -> None:
    loss = ColorConstancyLoss()
    img = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand(2, 3, 8, 8)
    # D = (0.04, 0.16, 0.04); official form sqrt(sum D^2) = sqrt(0.0288)
    assert loss(img).item() == pytest.approx(math.sqrt(0.0288), rel=1e-5)
    grey = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    value = loss(grey)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-12) and torch.isfinite(grey.grad).all()


def test_illumination_smoothness_known_values() -> None:
    loss = IlluminationSmoothnessLoss()
    assert loss(torch.full((2, 24, 8, 8), 0.7)).item() == 0.0
    # Horizontal ramp 0, 0.1, 0.2, 0.3 on 3 rows: w_tv = 9 * 0.01 over count 3 * 3 -> 0.01; 2 * 0.01 / N.
    ramp = (torch.arange(4.0) * 0.1).expand(1, 1, 3, 4)
    assert loss(ramp).item() == pytest.approx(0.02, rel=1e-5)


def test_total_loss_weights() -> None:
    assert ZeroDCELossConfig() == ZeroDCELossConfig.zero_dce()
    assert (ZeroDCELossConfig().w_tv, ZeroDCELossConfig.zero_dce_pp().w_tv) == (200.0, 1600.0)
    assert EnhanceTrainConfig().loss_config(ZeroDCEPP()).w_tv == 1600.0
    assert EnhanceTrainConfig().loss_config(ZeroDCE()).w_tv == 200.0
    x = torch.full((1, 3, 16, 16), 0.2)
    parts = ZeroDCELoss()(x, x, torch.zeros(1, 24, 16, 16))
    assert parts["exp"].item() == pytest.approx(10 * 0.16, rel=1e-5)  # only exposure is non-zero
    assert parts["total"].item() == pytest.approx(1.6, rel=1e-5)


# ---------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained() -> tuple[ZeroDCEPP, dict[str, list[float]]]:
    torch.manual_seed(0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped: the autouse fixture does not cover it
    model = ZeroDCEPP()
    # lr 1e-3 instead of the paper's 1e-4 so that 40 CPU steps suffice.
    history = train_curve_model(model, dark_images(64), EnhanceTrainConfig(steps=40, batch_size=4, lr=1e-3))
    torch.set_num_threads(n)
    return model.eval(), history


def test_training_lowers_loss_and_brightens(trained: tuple[ZeroDCEPP, dict[str, list[float]]]) -> None:
    model, h = trained
    assert set(h) == {"total", "spa", "exp", "col", "tv", "brightness"} and len(h["total"]) == 40
    first, last = np.mean(h["total"][:3]), np.mean(h["total"][-5:])
    assert last < 0.25 * first, (first, last)
    x = dark_images(8, seed=1)  # unseen images
    with torch.no_grad():
        y = model(x)[0]
    assert x.mean().item() < 0.1
    assert abs(y.mean().item() - 0.6) < 0.15  # moved from ~0.07 to near the exposure level E = 0.6


def test_checkpoint_resume_uses_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    run = tmp_path / "curves" / "zdce"
    torch.manual_seed(0)
    cfg = dict(batch_size=4, out_dir=str(run), checkpoint_every=2, lr=1e-3)
    h1 = train_curve_model(ZeroDCEPP(), dark_images(8, 16), EnhanceTrainConfig(steps=2, **cfg))
    ckpt = run / "last.pt"
    assert ckpt.exists() and not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    resumed = ZeroDCEPP()
    h2 = train_curve_model(resumed, dark_images(8, 16), EnhanceTrainConfig(steps=4, **cfg))
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert len(h2["total"]) == 4 and h2["total"][:2] == h1["total"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # one engine epoch per 2 steps
    # build_enhancer loads the same checkpoint (training dict with a "model" entry) with weights_only=True
    enh = build_enhancer("zero_dce_pp", checkpoint=str(ckpt), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(enh.model.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(ValueError, match="checkpoint_every must divide steps"):
        EnhanceTrainConfig(steps=5, **cfg)


class CrashingFrames(torch.utils.data.Dataset):
    """Frames that raise KeyboardInterrupt (a simulated kill) on the ``crash_at``-th read, mid-epoch."""

    def __init__(self, frames: torch.Tensor, crash_at: int | None) -> None:
        self.frames, self.crash_at, self.reads = frames, crash_at, 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> torch.Tensor:
        self.reads += 1
        if self.crash_at is not None and self.reads > self.crash_at:
            raise KeyboardInterrupt(f"simulated kill at read {self.reads}")
        return self.frames[i]


def test_curve_training_resumes_exactly_after_a_kill(tmp_path: Path) -> None:
    """Killed during engine epoch 2 (steps 5-6 of 8), rerun: weights and history bit-identical to one run."""
    frames = dark_images(10, 16)  # 10 frames, batch 3: passes and epochs (6 samples) do not line up
    cfg = dict(steps=8, batch_size=3, checkpoint_every=2, lr=1e-3)

    torch.manual_seed(0)
    full_model = ZeroDCEPP()
    full = train_curve_model(full_model, CrashingFrames(frames, None),
                             EnhanceTrainConfig(out_dir=str(tmp_path / "full"), **cfg))

    killed_cfg = EnhanceTrainConfig(out_dir=str(tmp_path / "killed"), **cfg)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_curve_model(ZeroDCEPP(), CrashingFrames(frames, crash_at=2 * 6 + 4), killed_cfg)
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 1  # 4 steps saved
    torch.manual_seed(123)  # a different init: the weights must come from last.pt
    resumed_model = ZeroDCEPP()
    resumed = train_curve_model(resumed_model, CrashingFrames(frames, None), killed_cfg)

    assert resumed == full and len(full["total"]) == 8 and set(full) == {"total", "spa", "exp", "col", "tv",
                                                                        "brightness"}
    a, b = full_model.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_curve_training_keeps_the_official_optimiser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adam(lr, weight_decay on every parameter), gradient-norm clipping at 0.1, constant lr (official code)."""
    import stia_kit.train.loop as loop

    seen: dict[str, object] = {}
    real_clip = torch.nn.utils.clip_grad_norm_

    def clip(params, max_norm):
        seen["clip"] = max_norm
        return real_clip(params, max_norm)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    real_build = loop.build_optimizer

    def build(model, cfg):
        seen["opt"] = opt = real_build(model, cfg)
        return opt

    monkeypatch.setattr(loop, "build_optimizer", build)
    model = ZeroDCE()
    train_curve_model(model, dark_images(4, 16), EnhanceTrainConfig(steps=2, batch_size=2))
    opt = seen["opt"]
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups] == [
        (1e-4, 1e-4, len(list(model.parameters())))]  # biases decayed too, lr constant
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and seen["clip"] == 0.1


def test_dark_frame_dataset(tmp_path: Path) -> None:
    write_video(tmp_path / "a" / "v1.avi", n=5, size=(40, 48))
    write_video(tmp_path / "v2.mp4", n=5, size=(24, 32))  # smaller than the crop: resized up
    (tmp_path / "broken.mkv").write_bytes(b"not a video" * 10)
    ds = DarkFrameDataset(tmp_path, crop_size=32, samples_per_epoch=6, seed=0)
    assert len(ds.videos) == 3
    items = [ds[i] for i in range(6)]
    assert all(x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 for x in items)
    assert torch.equal(ds[0], items[0])  # reproducible
    assert any("broken.mkv" in q for q in ds.quarantine)
    items += [ds[i] for i in range(6, 30)]  # the broken file is drawn again: reported once, same draws
    assert sum("broken.mkv" in q for q in ds.quarantine) == 1
    assert torch.equal(DarkFrameDataset(tmp_path, crop_size=32, samples_per_epoch=30, seed=0)[29], items[29])
    h = train_curve_model(ZeroDCEPP(), ds, EnhanceTrainConfig(steps=2, batch_size=3))  # DataLoader path
    assert len(h["total"]) == 2 and all(math.isfinite(v) for v in h["total"])


# ---------------------------------------------------------------------------------------------- classical


@pytest.mark.parametrize("name, kw", [("gamma", {"gamma": 0.5}), ("histeq", {}), ("clahe", {"clip_limit": 3.0})])
def test_classical_methods_brighten_dark_frames(name: str, kw: dict) -> None:
    rng = np.random.default_rng(0)
    frames = (dark_images(3, 48).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    frames = np.clip(frames.astype(int) + rng.integers(0, 4, frames.shape), 0, 255).astype(np.uint8)
    out = build_enhancer(name, **kw)(frames)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert mean_brightness(out) > mean_brightness(frames) + 0.05


def test_build_enhancer_registry_errors_and_identity() -> None:
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    assert np.array_equal(build_enhancer("none")(frames), frames)
    with pytest.raises(KeyError, match="unknown enhancer 'retinex'; available: clahe, gamma, histeq, none"):
        build_enhancer("retinex")
    with pytest.raises(TypeError, match="for enhancer 'gamma'.*clip_limit"):
        build_enhancer("gamma", clip_limit=2.0)
    with pytest.raises(TypeError, match="for enhancer 'histeq'.*checkpoint"):
        build_enhancer("histeq", checkpoint="x.pt")  # curve-model options do not apply to classical methods
    with pytest.raises(TypeError, match="ZeroDCEConfig.*gamma"):
        build_enhancer("zero_dce", gamma=0.5)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        build_enhancer("gamma", gamma=0)
    enh = build_enhancer("zero_dce", device="cpu")
    assert enh(np.full((2, 8, 8, 3), 20, np.uint8)).shape == (2, 8, 8, 3)


def test_enhancer_registry_holds_every_method_and_each_builds_by_name() -> None:
    """One registry for every method the kit has; each builds with no options and maps frames to frames."""
    assert ENHANCERS.kind == "enhancer"
    assert ENHANCERS.names() == ["clahe", "gamma", "histeq", "none", "zero_dce", "zero_dce_pp"]
    frames = np.full((2, 16, 16, 3), 20, np.uint8)
    for name in ENHANCERS.names():
        options = {"device": "cpu"} if name.startswith("zero_dce") else {}
        out = build_enhancer(name, **options)(frames)
        assert out.dtype == np.uint8 and out.shape == frames.shape, name
    assert isinstance(build_enhancer("zero_dce_pp", device="cpu", scale_factor=4), CurveEnhancer)
    assert build_enhancer("zero_dce_pp", device="cpu", scale_factor=4).model.cfg.scale_factor == 4


# ---------------------------------------------------------------------------------------------- metrics


def test_psnr_ssim_known_values() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf
    assert ssim(img, img) == pytest.approx(1.0)
    a, b = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 110, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))  # 28.13 dB
    c1 = (0.01 * 255) ** 2  # constant images: only the luminance term of SSIM remains
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1))
    t = torch.from_numpy(img).permute(2, 0, 1).float() / 255  # torch [C, H, W] in [0, 1]
    assert ssim(t, t) == pytest.approx(1.0) and ssim(t, t * 0.5) < 1.0


def test_flicker_definition() -> None:
    static = torch.full((3, 6, 4, 4), 0.3)
    assert flicker(static) == 0.0
    ramp = torch.linspace(0.1, 0.6, 6).view(1, 6, 1, 1).expand(3, 6, 4, 4)  # a fade: constant d_t
    assert flicker(ramp) == pytest.approx(0.0, abs=1e-7)
    e = 0.05
    alt = (0.3 + e * torch.tensor([1.0, -1, 1, -1, 1])).view(1, 5, 1, 1).expand(3, 5, 4, 4)
    assert flicker(alt) == pytest.approx(4 * e)
    frames = (alt.permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)  # numpy [T, H, W, C]
    assert flicker(frames) == pytest.approx(4 * e, abs=0.01)


# ---------------------------------------------------------------------------------------------- clips


def test_enhance_clip_shapes_and_chunking() -> None:
    torch.manual_seed(0)
    model = ZeroDCEPP().eval()
    clip = torch.rand(3, 7, 16, 20) * 0.2
    out = enhance_clip(model, clip, chunk_size=3)
    assert out.shape == clip.shape
    with torch.no_grad():
        ref = model(clip.transpose(0, 1))[0].transpose(0, 1)
    assert torch.allclose(out, ref, atol=1e-6)
    batch = torch.stack([clip, clip.flip(1)])
    out_b = enhance_clip(model, batch, chunk_size=100, temporal_smoothing=0.5)
    assert out_b.shape == batch.shape
    # smoothing state carries across chunks: chunk size does not change the result
    assert torch.allclose(out_b[0], enhance_clip(model, clip, chunk_size=2, temporal_smoothing=0.5), atol=1e-6)


def test_curve_smoother_is_causal_ema() -> None:
    s = CurveSmoother(0.75)
    a = torch.tensor([0.0, 1.0, 1.0]).view(3, 1, 1, 1)
    out = s(a).flatten().tolist()
    assert out == pytest.approx([0.0, 0.25, 0.4375])  # 0.75 * 0.25 + 0.25 * 1
    with pytest.raises(ValueError, match="temporal_smoothing"):
        CurveSmoother(1.0)


class JitteryZeroDCEPP(ZeroDCEPP):
    """Zero-DCE++ whose curve estimate fluctuates from frame to frame by a global offset (seeded), standing in
    for an estimator that reacts to the per-frame noise of dark footage."""

    def __init__(self, jitter: float) -> None:
        super().__init__()
        self.jitter = jitter
        self.gen = torch.Generator().manual_seed(0)

    def estimate_curves(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.jitter * torch.randn(x.shape[0], 1, 1, 1, generator=self.gen)
        return (super().estimate_curves(x) + 0.6 + offset).clamp(-1, 1)


def test_temporal_smoothing_reduces_flicker() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    scene = dark_images(1, 32)[0]
    clip = (scene[:, None].repeat(1, 24, 1, 1) + 0.02 * torch.randn(3, 24, 32, 32, generator=g)).clamp(0, 1)
    per_frame = enhance_clip(JitteryZeroDCEPP(0.15).eval(), clip)
    smoothed = enhance_clip(JitteryZeroDCEPP(0.15).eval(), clip, temporal_smoothing=0.8)
    assert mean_brightness(smoothed) > 2 * mean_brightness(clip)  # still enhanced
    assert flicker(smoothed) < 0.5 * flicker(per_frame), (flicker(smoothed), flicker(per_frame))


def test_enhance_transform_on_frames_and_tensors() -> None:
    frames = (np.random.default_rng(0).random((4, 16, 16, 3)) * 40).astype(np.uint8)
    t_gamma = EnhanceTransform("gamma", gamma=0.5)
    assert t_gamma(frames).dtype == np.uint8 and mean_brightness(t_gamma(frames)) > mean_brightness(frames)
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255  # [C, T, H, W]
    out = t_gamma(clip)
    assert out.shape == clip.shape and out.dtype == torch.float32
    t_curve = EnhanceTransform(CurveEnhancer(ZeroDCEPP()))
    assert t_curve(clip).shape == clip.shape and t_curve(frames).shape == frames.shape


# ---------------------------------------------------------------------------------------------- videos


def write_video(path: Path, n: int = 6, size: tuple[int, int] = (24, 32), seed: int = 0) -> None:
    """A small dark MPEG-4 video of n frames, size (H, W)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.height, s.width, s.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(n):
            img = rng.integers(0, 40, (size[0], size[1], 3), dtype=np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_enhance_videos_mirrors_tree_reports_bad_file_and_resumes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_video(src / "classA" / "v1.avi")
    write_video(src / "classB" / "v2.mp4", seed=1)
    write_video(src / "v3.mkv", n=4, seed=2)
    (src / "classA" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    (src / "notes.txt").write_text("not a video")

    report = enhance_videos(src, dst, "zero_dce_pp", device="cpu", temporal_smoothing=0.5, progress=False)
    assert sorted(report.done) == ["classA/v1.avi", "classB/v2.mp4", "v3.mkv"]
    assert list(report.failed) == ["classA/corrupt.mp4"] and "corrupt.mp4" in report.summary()
    for rel in report.done:
        out, inp = decoded_frames(dst / rel), decoded_frames(src / rel)
        assert len(out) == len(inp) and out[0].shape == inp[0].shape
    assert not list(dst.rglob(".*partial*"))  # no temporary files left behind

    again = enhance_videos(src, dst, "gamma", progress=False)
    assert again.done == [] and sorted(again.skipped) == sorted(report.done)
    assert list(again.failed) == ["classA/corrupt.mp4"]
