"""Data pieces of the 3D attention papers (issue 10): ST-MANet's random-size crop and every-window test mode,
MSF-Net's fixed 171x128 resize and contrast augmentation, and evaluation over a variable number of views."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from stia_kit.data.config import DataConfig
from stia_kit.data.datasets import ManifestDataset, UCF101
from stia_kit.data.sampling import clip_span, num_windows, window_indices
from stia_kit.data.transforms import (
    Normalize,
    RandomContrast,
    RandomCrop,
    RandomHorizontalFlip,
    RandomSizeCrop,
    Resize,
    ShortSideResize,
)
from stia_kit.train.loop import evaluate
from stia_kit.train.metrics import collate_views, fold_views, mean_view_probs

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------ transforms


def test_random_size_crop_sides_independent_and_in_range() -> None:
    crop = RandomSizeCrop(0.5, 1.0, size=112)
    g = rng(1)
    boxes = [crop.crop_box(60, 80, g) for _ in range(400)]
    hs = np.array([b[2] for b in boxes])
    ws = np.array([b[3] for b in boxes])
    assert hs.min() >= 30 and hs.max() <= 60 and ws.min() >= 30 and ws.max() <= 60  # 0.5-1 x short side (60)
    assert hs.max() - hs.min() > 20 and ws.max() - ws.min() > 20  # both sides really vary
    assert np.mean(hs != ws) > 0.9  # drawn independently: almost never square
    assert abs(np.corrcoef(hs, ws)[0, 1]) < 0.2
    for top, left, ch, cw in boxes:
        assert 0 <= top <= 60 - ch and 0 <= left <= 80 - cw


def test_random_size_crop_output_and_determinism() -> None:
    clip = torch.rand(3, 4, 40, 56)
    crop = RandomSizeCrop(0.5, 1.0, size=24)
    a, b, c = crop(clip, rng(7)), crop(clip, rng(7)), crop(clip, rng(8))
    assert a.shape == (3, 4, 24, 24)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert crop(torch.rand(2, 3, 4, 40, 56), rng(0)).shape == (2, 3, 4, 24, 24)  # leading view dim kept
    # every frame gets the same box: a clip whose frames are identical stays identical frame to frame
    still = torch.rand(3, 1, 40, 56).expand(3, 4, 40, 56)
    out = crop(still, rng(3))
    assert torch.allclose(out[:, 0], out[:, 3])
    with pytest.raises(ValueError, match="rng"):
        crop(clip)
    with pytest.raises(ValueError, match="min_frac"):
        RandomSizeCrop(0.0, 1.0, 8)
    with pytest.raises(ValueError, match="min_frac"):
        RandomSizeCrop(0.9, 0.5, 8)


def test_resize_is_height_then_width() -> None:
    out = Resize(height=128, width=171)(torch.rand(3, 2, 240, 320))
    assert out.shape == (3, 2, 128, 171)  # MSF-Net: 171 wide x 128 high
    flat = Resize(10, 14)(torch.full((3, 2, 20, 20), 0.25))
    assert flat.shape == (3, 2, 10, 14) and torch.allclose(flat, torch.full_like(flat, 0.25))
    with pytest.raises(ValueError, match="height"):
        Resize(0, 10)


def test_random_contrast_factor_bounds_and_clamp() -> None:
    tf = RandomContrast(0.8, 1.2)
    clip = 0.3 + 0.4 * torch.rand(3, 4, 8, 8)  # values in [0.3, 0.7]: factors <= 1.2 never clamp
    m = tf.grey_mean(clip)
    factors = []
    for seed in range(50):
        out = tf(clip, rng(seed))
        a = float(((out - m) * (clip - m)).sum() / ((clip - m) ** 2).sum())  # the factor used
        assert torch.allclose(out, m + a * (clip - m), atol=1e-5)
        factors.append(a)
    assert 0.8 <= min(factors) and max(factors) <= 1.2 and max(factors) - min(factors) > 0.2
    assert torch.equal(tf(clip, rng(4)), tf(clip, rng(4)))
    strong = RandomContrast(3.0, 3.0)(torch.rand(3, 2, 8, 8), rng(0))
    assert float(strong.min()) >= 0.0 and float(strong.max()) <= 1.0 and float(strong.max()) == 1.0  # clamped
    same = RandomContrast(1.0, 1.0)(clip, rng(0))
    assert torch.allclose(same, clip, atol=1e-6)
    per_frame = RandomContrast(per_frame=True).grey_mean(clip)
    assert per_frame.shape == (1, 4, 1, 1) and m.shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="lo"):
        RandomContrast(1.2, 0.8)


# ------------------------------------------------------------------------------------------ windows


@pytest.mark.parametrize("n", [63, 64, 127, 128, 129, 164, 200, 255, 256, 1000])
def test_window_indices_non_overlapping_and_floor_count(n: int) -> None:
    t, s = 32, 2  # ST-MANet: 64-frame windows at stride 2
    idx = window_indices(n, t, s)
    assert idx.dtype == np.int64 and idx.shape == (max(1, n // 64), t) == (num_windows(n, t, s), t)
    assert idx.min() >= 0 and idx.max() < n
    assert (np.diff(idx, axis=1) == s).all()
    starts = idx[:, 0]
    assert (starts == np.arange(len(starts)) * 64).all()  # consecutive windows, each 64 frames
    assert (idx[1:, 0] > idx[:-1, -1]).all()  # no frame shared between windows


def test_window_indices_short_videos() -> None:
    assert clip_span(4, 2) == 7
    assert window_indices(7, 4, 2).tolist() == [[0, 2, 4, 6]]  # one window fits although 7 < 4 * 2
    assert window_indices(5, 4, 2, short_clip="loop").tolist() == [[0, 2, 4, 1]]
    assert window_indices(5, 4, 2, short_clip="repeat_last").tolist() == [[0, 2, 4, 4]]
    with pytest.raises(ValueError, match="stride"):
        window_indices(10, 4, 0)


# ------------------------------------------------------------------------------------------ DataConfig


def test_dataconfig_defaults_unchanged() -> None:
    cfg = DataConfig()
    assert (cfg.train_crop, cfg.resize_hw, cfg.contrast, cfg.test_windows) == ("random", None, None, False)
    steps = [type(s) for s in cfg.train_transform().transforms]
    assert steps == [ShortSideResize, RandomCrop, RandomHorizontalFlip, Normalize]
    assert cfg.test_views == 1
    assert cfg.sample_indices(100, train=False, rng=None).shape == (1, 8)


def test_dataconfig_st_manet_protocol() -> None:
    cfg = DataConfig(num_frames=32, stride=2, short_side=128, crop_size=112, train_crop="random_size",
                     test_windows=True)
    train = cfg.train_transform().transforms
    assert [type(s) for s in train] == [ShortSideResize, RandomSizeCrop, RandomHorizontalFlip, Normalize]
    assert (train[1].min_frac, train[1].max_frac, train[1].size) == (0.5, 1.0, 112)
    assert cfg.sample_indices(164, train=False, rng=None).shape == (2, 32)  # floor(164 / 64) windows
    assert cfg.sample_indices(164, train=True, rng=rng()).shape == (1, 32)  # training: one random clip
    with pytest.raises(ValueError, match="vary"):
        cfg.test_views
    out = cfg.train_transform()(torch.rand(3, 32, 120, 160), rng())
    assert out.shape == (3, 32, 112, 112)


def test_dataconfig_msf_net_protocol() -> None:
    cfg = DataConfig(sampling="tsn", num_frames=8, resize_hw=(128, 171), crop_size=112, contrast=(0.8, 1.2))
    train = cfg.train_transform()
    assert [type(s) for s in train.transforms] == [Resize, RandomCrop, RandomHorizontalFlip, RandomContrast,
                                                   Normalize]
    assert train(torch.rand(3, 8, 240, 320), rng()).shape == (3, 8, 112, 112)
    test = cfg.test_transform()
    assert isinstance(test.transforms[0], Resize) and test(torch.rand(3, 8, 240, 320)).shape == (3, 8, 112, 112)


@pytest.mark.parametrize("kwargs, field", [
    ({"train_crop": "square"}, "train_crop"),
    ({"crop_fracs": (0.0, 1.0)}, "crop_fracs"),
    ({"crop_fracs": (0.5,)}, "crop_fracs"),
    ({"resize_hw": (128,)}, "resize_hw"),
    ({"resize_hw": (50, 171)}, "crop_size"),
    ({"resize_hw": (128, 171), "scale_jitter": (64, 80)}, "resize_hw"),
    ({"contrast": (1.2, 0.8)}, "contrast"),
    ({"test_windows": 1}, "test_windows"),
    ({"test_windows": True, "sampling": "tsn"}, "test_windows"),
    ({"test_windows": True, "test_clips": 2}, "test_windows"),
])
def test_dataconfig_validation_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"DataConfig.{field}"):
        DataConfig(**kwargs)


def test_resize_hw_lifts_the_short_side_check() -> None:
    assert DataConfig(resize_hw=(128, 171), crop_size=112).short_side == 72  # unused with resize_hw


# ------------------------------------------------------------------------------------------ variable V


def test_collate_views_pads_and_counts() -> None:
    same = [{"video": torch.rand(2, 3, 1, 2, 2), "label": i} for i in range(3)]
    ref = default_collate(same)
    got = collate_views(same)
    assert set(got) == set(ref) and torch.equal(got["video"], ref["video"])  # plain default_collate
    mixed = [{"video": torch.rand(3, 1, 2, 2), "label": 0, "failed": ""},  # single view: [C, T, H, W]
             {"video": torch.rand(3, 3, 1, 2, 2), "label": 1, "failed": ""}]
    batch = collate_views(mixed)
    assert batch["video"].shape == (2, 3, 3, 1, 2, 2) and batch["num_views"].tolist() == [1, 3]
    assert torch.equal(batch["video"][0, 0], mixed[0]["video"]) and torch.equal(batch["video"][1], mixed[1]["video"])
    assert (batch["video"][0, 1:] == 0).all() and batch["label"].tolist() == [0, 1] and batch["failed"] == ["", ""]
    flat, b, v = fold_views(batch["video"], batch["num_views"])
    assert (flat.shape[0], b, v) == (4, 2, 3) and torch.equal(flat[1:], mixed[1]["video"])
    with pytest.raises(ValueError, match="differ beyond"):
        collate_views([{"video": torch.rand(2, 3, 1, 2, 2)}, {"video": torch.rand(2, 3, 1, 4, 4)}])


def test_mean_view_probs_with_counts() -> None:
    logits = torch.randn(6, 5)
    counts = torch.tensor([1, 3, 2])
    got = mean_view_probs(logits, 3, 3, counts)
    p = logits.softmax(-1)
    want = torch.stack([p[0], p[1:4].mean(0), p[4:6].mean(0)])
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(mean_view_probs(logits, 2, 3), mean_view_probs(logits, 2, 3, torch.tensor([3, 3])))
    with pytest.raises(ValueError, match="num_views"):
        mean_view_probs(logits, 3, 3, torch.tensor([1, 4, 1]))


class _Pool(nn.Module):
    """Mean colour of the clip -> linear: a deterministic tiny classifier. Shape: [N, 3, T, H, W] -> [N, k]."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3, 4)) * 10)


def _manual_scores(model: nn.Module, videos: list[torch.Tensor]) -> torch.Tensor:
    rows = []
    with torch.no_grad():
        for v in videos:
            views = v if v.dim() == 5 else v[None]  # [V, C, T, H, W]
            rows.append(model(views).softmax(-1).mean(0))
    return torch.stack(rows)


class _Views(Dataset):
    """Samples with 1, 3, 2, 4 views (single view as [C, T, H, W], like VideoDataset)."""

    classes = ["a", "b", "c"]

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        shapes = [(3, 2, 4, 4), (3, 3, 2, 4, 4), (2, 3, 2, 4, 4), (4, 3, 2, 4, 4)]
        self.videos = [torch.rand(s, generator=g) for s in shapes]

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.videos[i], "label": i % 3, "index": i, "failed": ""}


def test_evaluate_over_variable_views_matches_per_video_mean() -> None:
    ds, model = _Views(), _Pool()
    want = _manual_scores(model, ds.videos)
    for batch_size in (1, 3, 4):
        res = evaluate(model, ds, batch_size=batch_size, return_scores=True)
        assert res.num_samples == 4 and res.indices == [0, 1, 2, 3]
        assert torch.allclose(res.scores["logits"], want, atol=1e-5), batch_size
    loader = DataLoader(ds, batch_size=4, collate_fn=collate_views)  # a caller's own loader
    res = evaluate(model, loader, return_scores=True)
    assert torch.allclose(res.scores["logits"], want, atol=1e-5)
    nll = -want[torch.arange(4), torch.tensor([0, 1, 2, 0])].log().mean()
    assert abs(res.loss - float(nll)) < 1e-5


def _write_video(path: Path, n: int, level: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(n):
            img = np.full((24, 32, 3), (level + 9 * i) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_video_dataset_windows_and_evaluate(tmp_path: Path) -> None:
    lengths = [4, 8, 13, 24]  # windows of 2 x 2 = 4 frames: V = 1, 2, 3, 6
    rows = [(_write_video(tmp_path / f"v{i}.avi", n, 20 * i), i % 2) for i, n in enumerate(lengths)]
    cfg = DataConfig(num_frames=2, stride=2, short_side=16, crop_size=16, test_windows=True, frame_cache=False)
    ds = ManifestDataset(rows, train=False, config=cfg)
    videos = [ds[i]["video"] for i in range(len(ds))]
    assert [tuple(v.shape) for v in videos] == [(3, 2, 16, 16)] + [(v, 3, 2, 16, 16) for v in (2, 3, 6)]
    model = _Pool(2)
    want = _manual_scores(model, videos)
    res = evaluate(model, ds, batch_size=4, return_scores=True)
    assert res.num_samples == 4 and torch.allclose(res.scores["logits"], want, atol=1e-5)
    train = ManifestDataset(rows, train=True, config=DataConfig(
        num_frames=2, stride=2, short_side=16, crop_size=12, train_crop="random_size", contrast=(0.8, 1.2),
        test_windows=True, frame_cache=False))
    assert train[3]["video"].shape == (3, 2, 12, 12)  # training: one clip, random-size crop


@pytest.mark.realdata
def test_st_manet_windows_on_real_ucf101_clips() -> None:
    if not (REALDATA / "README.md").is_file():
        pytest.skip(f"real clips not found at {REALDATA} (expected ../shared/realdata beside the repo)")
    cfg = DataConfig(num_frames=32, stride=2, short_side=32, crop_size=28, test_windows=True, frame_cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only 2 of the 3783 listed test clips are present
        ds = UCF101(REALDATA / "ucf101", split=1, train=False, config=cfg, missing="skip")
    shapes = {p.name: tuple(ds[i]["video"].shape) for i, (p, _) in enumerate(ds.samples)}
    # ApplyEyeMakeup g01 c01: 164 frames -> floor(164 / 64) = 2 windows; CricketBowling g01 c05: 60 frames < 63,
    # one clip by the short-clip rule
    assert shapes == {"v_ApplyEyeMakeup_g01_c01.avi": (2, 3, 32, 28, 28),
                      "v_CricketBowling_g01_c05.avi": (3, 32, 28, 28)}
    model = _Pool(101)
    res = evaluate(model, ds, batch_size=2, return_scores=True)
    want = _manual_scores(model, [ds[i]["video"] for i in range(len(ds))])
    assert res.num_samples == 2 and torch.allclose(res.scores["logits"], want, atol=1e-5)
