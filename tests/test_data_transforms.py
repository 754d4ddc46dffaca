"""Clip transforms: shapes, determinism, one set of random parameters per clip, multi-view crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stia_kit.data import (
    CenterCrop,
    Compose,
    DataConfig,
    MultiScaleCrop,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomShortSideResize,
    ShortSideResize,
    TenCrop,
    ThreeCrop,
    to_tensor_clip,
)


def clip(t: int = 4, h: int = 30, w: int = 40) -> torch.Tensor:
    """[3, T, H, W] whose frames differ only by a per-frame offset (so crops/flips can be compared)."""
    base = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) / (h * w)
    return base.repeat(3, t, 1, 1) + torch.arange(t).view(1, t, 1, 1)


def test_to_tensor_clip_layout_and_range() -> None:
    frames = np.zeros((5, 6, 7, 3), np.uint8)
    frames[2, 1, 3] = (255, 0, 51)
    x = to_tensor_clip(frames)
    assert x.shape == (3, 5, 6, 7) and x.dtype == torch.float32
    assert x[:, 2, 1, 3].tolist() == pytest.approx([1.0, 0.0, 0.2])
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_clip(frames.astype(np.float32))


def test_short_side_resize_keeps_aspect() -> None:
    assert ShortSideResize(20)(clip(h=30, w=40)).shape == (3, 4, 20, 27)
    assert ShortSideResize(20)(clip(h=40, w=30)).shape == (3, 4, 27, 20)
    out = RandomShortSideResize(20, 24)(clip(), np.random.default_rng(0))
    assert 20 <= min(out.shape[-2:]) <= 24


def test_random_crop_same_window_for_every_frame_and_deterministic() -> None:
    x = clip()
    a = RandomCrop(16)(x, np.random.default_rng(5))
    assert a.shape == (3, 4, 16, 16)
    assert torch.equal(a, RandomCrop(16)(x, np.random.default_rng(5)))
    for t in range(4):  # frame t = frame 0 + t: the same window was cut from every frame
        assert torch.allclose(a[:, t] - t, a[:, 0])
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(50)(x, np.random.default_rng(0))


def test_flip_flips_every_frame() -> None:
    x = clip()
    flipped = RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))
    assert torch.equal(flipped, x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(p=0.0)(x, np.random.default_rng(0)), x)
    outcomes = {bool(torch.equal(RandomHorizontalFlip()(x, np.random.default_rng(s)), x)) for s in range(20)}
    assert outcomes == {True, False}


def test_center_three_and_ten_crop() -> None:
    x = clip(h=30, w=40)
    c = CenterCrop(20)(x)
    assert torch.equal(c, x[..., 5:25, 10:30])
    three = ThreeCrop(30)(x)
    assert three.shape == (3, 3, 4, 30, 30)
    assert torch.equal(three[0], x[..., :30]) and torch.equal(three[2], x[..., 10:])
    ten = TenCrop(20)(x)
    assert ten.shape == (10, 3, 4, 20, 20)
    assert torch.equal(ten[4], c) and torch.equal(ten[9], c.flip(-1))
    assert torch.equal(ten[0], x[..., :20, :20]) and torch.equal(ten[5], ten[0].flip(-1))
    batched = TenCrop(20)(torch.stack([x, x]))  # leading dims kept: [N, V, C, T, H, W]
    assert batched.shape == (2, 10, 3, 4, 20, 20)


def test_multiscale_crop_and_normalize() -> None:
    out = MultiScaleCrop(16)(clip(), np.random.default_rng(1))
    assert out.shape == (3, 4, 16, 16)
    x = torch.ones(3, 2, 4, 4) * 0.5
    n = Normalize((0.5, 0.25, 0.0), (1.0, 0.5, 2.0))(x)
    assert n[:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.5, 0.25])
    assert Normalize((0.5,) * 3, (1.0,) * 3)(torch.stack([x, x])).shape == (2, 3, 2, 4, 4)


def test_config_pipelines_shapes_and_determinism() -> None:
    cfg = DataConfig(short_side=36, crop_size=32, scale_jitter=(32, 40))
    frames = np.random.default_rng(0).integers(0, 255, (8, 48, 64, 3), dtype=np.uint8)
    x = to_tensor_clip(frames)
    a = cfg.train_transform()(x, np.random.default_rng(9))
    b = cfg.train_transform()(x, np.random.default_rng(9))
    assert a.shape == (3, 8, 32, 32) and torch.equal(a, b)
    for crops in (1, 3, 10):
        out = DataConfig(short_side=36, crop_size=32, test_crops=crops).test_transform()(x)
        assert out.shape == ((3, 8, 32, 32) if crops == 1 else (crops, 3, 8, 32, 32))
    assert isinstance(cfg.train_transform(), Compose)


def test_data_config_validation_names_the_field() -> None:
    for kwargs, field in [
        ({"num_frames": 0}, "num_frames"),
        ({"crop_size": 80}, "crop_size"),
        ({"scale_jitter": (40, 30)}, "scale_jitter"),
        ({"test_crops": 5}, "test_crops"),
        ({"sampling": "uniform"}, "sampling"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"backend": "opencv"}, "backend"),
        ({"flip": 1}, "flip"),
    ]:
        with pytest.raises(ValueError, match=f"DataConfig.{field}"):
            DataConfig(**kwargs)
    assert DataConfig(test_clips=2, test_crops=3).test_views == 6
