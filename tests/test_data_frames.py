"""Frame-folder / frames+flow datasets: stack sampler bounds, shapes, shared crop + flip (flow x inverted, also
in TenCrop), normalisation, missing / corrupt policies, copies, official splits mapped to frame folders."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from stia_kit.data import (
    FixedCornerMultiScaleCrop,
    FrameReadError,
    ImageCache,
    MissingFramesError,
    MissingVideosError,
    NoReadableSampleError,
    RandomHorizontalFlipFlow,
    TenCropFlow,
    TwoStreamConfig,
    TwoStreamDataset,
    arid_split,
    build_two_stream_dataset,
    flow_channel_order,
    frames_split,
    hmdb51_split,
    invert_flow_x,
    stack_field_indices,
    tsn_stack_indices,
    ucf101_split,
)
from stia_kit.data.frames import FLOW_MARKER

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
H, W = 32, 40
#: tiny geometry: no resize (short side 32 = H), centre crop 32 of 40 columns starts at column 4
TINY = TwoStreamConfig(num_segments=3, new_length=2, test_segments=4, test_crops=1, short_side=32, crop_size=32,
                       train_crop="center")


def realdata() -> Path:
    if not (REALDATA / "README.md").is_file():
        pytest.skip(f"real split files not found at {REALDATA} (expected ../shared/realdata beside the repo)")
    return REALDATA


def gradient(value: int = 0) -> np.ndarray:
    """A left-right / top-bottom asymmetric grey ramp, uint8 [H, W]: 4 * column + 2 * row + value."""
    rows, cols = np.mgrid[0:H, 0:W]
    return np.clip(4 * cols + 2 * rows + value, 0, 255).astype(np.uint8)


def write_folder(folder: Path, n: int = 12, *, rgb: np.ndarray | None = None, fx: np.ndarray | int = 200,
                 fy: np.ndarray | int = 60, marker: bool = True) -> Path:
    """A frame folder in the TSN layout: n RGB frames, n - 1 flow fields, the completion marker.

    RGB frame i (1-based) defaults to the ramp with red = green = blue, plus ``i`` so frames differ."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        image = np.repeat(gradient(i)[..., None], 3, axis=2) if rgb is None else rgb
        cv2.imwrite(str(folder / f"img_{i:05d}.jpg"), image)
    for i in range(1, n):
        for axis, field in (("x", fx), ("y", fy)):
            img = np.full((H, W), field, np.uint8) if isinstance(field, int) else field
            cv2.imwrite(str(folder / f"flow_{axis}_{i:05d}.jpg"), img)
    if marker:
        (folder / FLOW_MARKER).write_text(json.dumps({"n_frames": n, "n_flow": n - 1}))
    return folder


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, int]]:
    """Four complete folders (two classes) of 12 frames at 32x40, flow x = 200 (rightward), y = 60."""
    root = tmp_path_factory.mktemp("frames")
    return [(write_folder(root / c / f"v_{c}_g0{g}_c01"), label)
            for label, c in enumerate(["A", "B"]) for g in (1, 2)]


def unnorm_flow(flow: torch.Tensor) -> torch.Tensor:
    return flow * 0.226 + 0.5  # inverse of the "imagenet" flow normalisation (TSN convention)


def unnorm_rgb(rgb: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    return rgb * std + mean


# ------------------------------------------------------------------------------------------ sampler


def test_stack_sampler_bounds_and_centre_over_many_sizes() -> None:
    rng = np.random.default_rng(0)
    for n_flow in range(1, 41):
        for segments in (1, 2, 3, 5, 7):
            for length in (1, 2, 5, 10):
                for train, clips in ((True, 1), (False, 1), (False, 3)):
                    starts, rgb = tsn_stack_indices(n_flow, segments, length, train=train, rng=rng, num_clips=clips)
                    assert starts.shape == rgb.shape == (clips, segments)
                    assert starts.dtype == rgb.dtype == np.int64
                    assert (starts >= 0).all() and (starts <= max(n_flow - length, 0)).all(), (n_flow, segments, length)
                    assert (np.diff(starts, axis=1) >= 0).all()  # segments in temporal order
                    if n_flow >= length:  # the RGB frame is the centre of frames s .. s + L the stack spans
                        assert (rgb == starts + length // 2).all()
                    else:  # short video: no full stack fits (TSN convention: start 0, fields clamped)
                        assert (starts == 0).all() and (rgb == min(length // 2, n_flow)).all()
                    assert (rgb <= n_flow).all()  # a frame index of the n_flow + 1 frames
                    fields = stack_field_indices(starts, length, n_flow)
                    assert fields.shape == (clips, segments, length) and (fields <= n_flow - 1).all()


def test_stack_sampler_segments_and_test_positions() -> None:
    # 30 fields, L = 10: 21 starts in 3 segments of 7; test = segment centres (TSN int(tick / 2 + tick * k))
    starts, rgb = tsn_stack_indices(30, 3, 10, train=False)
    assert starts.tolist() == [[3, 10, 17]] and rgb.tolist() == [[8, 15, 22]]
    for seed in range(20):
        s, _ = tsn_stack_indices(30, 3, 10, train=True, rng=np.random.default_rng(seed))
        assert all(7 * k <= s[0, k] < 7 * (k + 1) for k in range(3))
    a = tsn_stack_indices(30, 3, 10, train=True, rng=np.random.default_rng(5))
    b = tsn_stack_indices(30, 3, 10, train=True, rng=np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert stack_field_indices(np.array([0]), 4, 2).tolist() == [[0, 1, 1, 1]]  # last field repeated
    with pytest.raises(ValueError, match="n_flow"):
        tsn_stack_indices(0, 3, 5, train=False)
    with pytest.raises(ValueError, match="rng"):
        tsn_stack_indices(30, 3, 5, train=True)


def test_flow_channel_order_and_config_validation() -> None:
    assert flow_channel_order(3) == ["x1", "y1", "x2", "y2", "x3", "y3"]
    for kwargs, field in ((dict(modality="depth"), "modality"), (dict(new_length=0), "new_length"),
                          (dict(test_crops=3), "test_crops"), (dict(crop_size=300), "crop_size"),
                          (dict(train_crop="corner"), "train_crop"), (dict(normalize="kinetics"), "normalize"),
                          (dict(flip=1), "flip"), (dict(frame_cache_mb=-1), "frame_cache_mb")):
        with pytest.raises(ValueError, match=f"TwoStreamConfig.{field}"):
            TwoStreamConfig(**kwargs)


# ------------------------------------------------------------------------------------------ samples


def test_shapes_per_modality_and_test_mode(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, test_segments=4, test_crops=10, short_side=32, crop_size=28)
    ds = TwoStreamDataset(tree, ["A", "B"], cfg)
    s = ds[1]
    assert set(s) == {"rgb", "flow", "label", "index", "failed"}
    assert s["rgb"].shape == (3, 3, 28, 28) and s["flow"].shape == (4, 3, 28, 28)
    assert s["rgb"].dtype == torch.float32 and (s["label"], s["index"], s["failed"]) == (0, 1, "")
    assert set(ds.with_modality("rgb")[0]) == {"rgb", "label", "index", "failed"}
    assert ds.with_modality("flow")[0]["flow"].shape == (4, 3, 28, 28)
    test = TwoStreamDataset(tree, ["A", "B"], cfg, train=False)
    t = test[0]
    assert t["rgb"].shape == (10, 3, 4, 28, 28) and t["flow"].shape == (10, 4, 4, 28, 28)
    one = TwoStreamDataset(tree, ["A", "B"], TINY, train=False)[0]  # one view: no view dimension (VideoDataset)
    assert one["rgb"].shape == (3, 4, 32, 32) and one["flow"].shape == (4, 4, 32, 32)
    assert "4 segments" in repr(test) and "test" in repr(test)


def test_sample_reads_the_sampled_files(tmp_path: Path) -> None:
    """RGB frame i carries grey level ramp + i; flow x field t = 10 t, y = 250 - 10 t: the tensors hold the
    frames and fields the sampler chose, flow channels ordered x1, y1, x2, y2."""
    folder = tmp_path / "A" / "v"
    write_folder(folder, n=12)
    for t in range(1, 12):
        cv2.imwrite(str(folder / f"flow_x_{t:05d}.jpg"), np.full((H, W), 10 * t, np.uint8))
        cv2.imwrite(str(folder / f"flow_y_{t:05d}.jpg"), np.full((H, W), 250 - 10 * t, np.uint8))
    ds = TwoStreamDataset([(folder, 0)], ["A"], TINY, train=False)
    fields, frames = ds.indices(0)
    s = ds[0]
    flow = unnorm_flow(s["flow"]) * 255  # [4, N, 32, 32]
    for k in range(fields.shape[0]):
        for j in range(2):
            assert flow[2 * j, k].mean().item() == pytest.approx(10 * (fields[k, j] + 1), abs=1.5)
            assert flow[2 * j + 1, k].mean().item() == pytest.approx(250 - 10 * (fields[k, j] + 1), abs=1.5)
        expected = gradient(int(frames[k]) + 1)[:, 4:36].astype(np.float32)  # frame index 0-based -> file + 1
        got = unnorm_rgb(s["rgb"])[:, k].numpy() * 255
        assert np.abs(got - expected[None]).mean() < 2.0


def test_flip_inverts_flow_x_and_mirrors_both_modalities(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, short_side=32, crop_size=32, train_crop="center", flip=True)
    ds = TwoStreamDataset(tree[:1], ["A", "B"], cfg)
    seen = set()
    for epoch in range(16):
        ds.set_epoch(epoch)
        s = ds[0]
        fields, frames = ds.indices(0)
        rgb = unnorm_rgb(s["rgb"]).numpy() * 255  # [3, N, 32, 32]
        flow = unnorm_flow(s["flow"]).numpy()
        ramp = gradient(int(frames[0]) + 1)[:, 4:36].astype(np.float32)
        flipped = np.abs(rgb[0, 0] - ramp[:, ::-1]).mean() < np.abs(rgb[0, 0] - ramp).mean()
        seen.add(flipped)
        x, y = flow[0::2], flow[1::2]
        if flipped:  # rightward motion (x = 200 > 128) becomes leftward; y untouched
            assert (x < 0.5).all() and x.mean() == pytest.approx(1 - 200 / 255, abs=0.01)
        else:
            assert (x > 0.5).all() and x.mean() == pytest.approx(200 / 255, abs=0.01)
        assert y.mean() == pytest.approx(60 / 255, abs=0.01)
    assert seen == {True, False}  # both cases met in 16 epochs


def test_tencrop_flipped_views_invert_flow_x(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, test_segments=2, test_crops=10, short_side=32, crop_size=24)
    s = TwoStreamDataset(tree, ["A", "B"], cfg, train=False)[0]
    x = unnorm_flow(s["flow"])[:, 0::2]  # [10, L, N, 24, 24]
    y = unnorm_flow(s["flow"])[:, 1::2]
    assert (x[:5] > 0.5).all() and (x[5:] < 0.5).all()
    assert torch.allclose(x[5:], 1 - x[:5].flip(-1), atol=1e-6)  # views 5..9 = mirrored 0..4, x inverted
    assert torch.allclose(y[5:], y[:5].flip(-1), atol=1e-6)
    assert torch.allclose(s["rgb"][5:], s["rgb"][:5].flip(-1))


def test_same_crop_window_for_both_modalities(tmp_path: Path) -> None:
    """RGB (grey) and flow y carry the same asymmetric ramp: after multi-scale crops, resizing and flips they
    must still agree pixel for pixel (a different window or flip would differ by many levels)."""
    ramp = gradient(0)
    folder = write_folder(tmp_path / "A" / "v", n=12, rgb=np.repeat(ramp[..., None], 3, axis=2), fx=128, fy=ramp)
    cfg = TwoStreamConfig(num_segments=2, new_length=2, short_side=32, crop_size=24, train_crop="multiscale")
    ds = TwoStreamDataset([(folder, 0)], ["A"], cfg)
    windows = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        s = ds[0]
        grey = unnorm_rgb(s["rgb"])[0]  # [N, 24, 24]
        fy = unnorm_flow(s["flow"])[1::2]  # [L, N, 24, 24]
        assert (grey - fy).abs().max().item() < 4 / 255
        windows.add(round(float(grey[0, 0, 0]) * 255))
    assert len(windows) > 2  # the crops did move


def test_bgr255_normalisation(tree: list[tuple[Path, int]]) -> None:
    imagenet = TwoStreamDataset(tree, ["A", "B"], TINY, train=False)[0]
    bgr = TwoStreamDataset(tree, ["A", "B"], TwoStreamConfig(**{**TINY.__dict__, "normalize": "bgr255"}),
                           train=False)[0]
    rgb01 = unnorm_rgb(imagenet["rgb"])
    expected = rgb01.flip(0) * 255 - torch.tensor([104.0, 117.0, 128.0]).view(3, 1, 1, 1)
    assert torch.allclose(bgr["rgb"], expected, atol=1e-3)
    assert torch.allclose(bgr["flow"], unnorm_flow(imagenet["flow"]) * 255 - 128, atol=1e-3)
    assert bgr["flow"][0::2].mean().item() == pytest.approx(200 - 128, abs=2)


def test_reproducible_per_sample_and_epoch(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, short_side=32, crop_size=24)
    a, b = TwoStreamDataset(tree, ["A", "B"], cfg, seed=3), TwoStreamDataset(tree, ["A", "B"], cfg, seed=3)
    assert torch.equal(a[2]["flow"], b[2]["flow"]) and torch.equal(a[2]["rgb"], b[2]["rgb"])
    draws = {tuple(a.indices(2)[0][:, 0]) for a.epoch in range(12)}
    assert len(draws) > 1  # epochs draw different stacks


def test_with_modality_and_subset_keep_the_draws(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, short_side=32, crop_size=24)
    ds = TwoStreamDataset(tree, ["A", "B"], cfg, seed=1)
    ds.set_epoch(4)
    both = ds[3]
    rgb, flow = ds.with_modality("rgb"), ds.with_modality("flow")
    assert rgb.modality == "rgb" and ds.modality == "both" and rgb.name.endswith("[rgb]")
    assert torch.equal(rgb[3]["rgb"], both["rgb"]) and torch.equal(flow[3]["flow"], both["flow"])
    sub = ds.subset([2, 0], name="held")
    assert sub.samples == [tree[2], tree[0]] and sub.name == "held" and len(sub) == 2
    assert sub.quarantine is not ds.quarantine
    with pytest.raises(IndexError):
        ds.subset([9])


def test_frame_cache_gives_identical_samples(tree: list[tuple[Path, int]]) -> None:
    cfg = TwoStreamConfig(num_segments=3, new_length=2, short_side=32, crop_size=24)
    plain = TwoStreamDataset(tree, ["A", "B"], cfg)
    cached = TwoStreamDataset(tree, ["A", "B"], TwoStreamConfig(**{**cfg.__dict__, "frame_cache_mb": 1}))
    for epoch in range(3):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            p, c = plain[i], cached[i]
            assert torch.equal(p["rgb"], c["rgb"]) and torch.equal(p["flow"], c["flow"])
    assert cached.cache is not None and cached.cache.hits > 0 and cached.cache.bytes <= 2**20
    assert cached.with_modality("rgb").cache is cached.cache  # copies share it
    small = ImageCache(3000)
    for k in range(5):
        small.put(("f", 0, str(k)), np.zeros(1000, np.uint8))
    assert len(small) == 3 and small.get(("f", 0, "0")) is None and small.get(("f", 0, "4")) is not None


def test_dataloader_batch_with_default_collate(tree: list[tuple[Path, int]]) -> None:
    ds = TwoStreamDataset(tree, ["A", "B"], TwoStreamConfig(num_segments=2, new_length=2, short_side=32, crop_size=24))
    batch = next(iter(DataLoader(ds, batch_size=3, shuffle=False)))
    assert batch["rgb"].shape == (3, 3, 2, 24, 24) and batch["flow"].shape == (3, 4, 2, 24, 24)
    assert batch["label"].tolist() == [0, 0, 1] and batch["index"].tolist() == [0, 1, 2]
    assert batch["failed"] == ["", "", ""]


# ------------------------------------------------------------------------------------------ policies


def test_missing_and_incomplete_folders_raise_or_skip(tree: list[tuple[Path, int]], tmp_path: Path) -> None:
    half = write_folder(tmp_path / "A" / "v_half", n=6, marker=False)  # extraction unfinished
    absent = tmp_path / "A" / "v_absent"
    listed = [*tree, (half, 0), (absent, 1)]
    with pytest.raises(MissingFramesError, match=r"2 of 6 listed frame folders are missing \(1 absent, 1 without") as e:
        TwoStreamDataset(listed, ["A", "B"], TINY)
    assert isinstance(e.value, MissingVideosError) and e.value.missing == [half, absent]
    with pytest.warns(UserWarning, match="skipping 2 of 6"):
        ds = TwoStreamDataset(listed, ["A", "B"], TINY, missing="skip")
    assert len(ds) == 4 and ds.missing == [half, absent] and "2 missing" in repr(ds)
    with pytest.raises(MissingFramesError):  # nothing left
        TwoStreamDataset([(absent, 0)], ["A"], TINY, missing="skip")


def test_corrupt_or_short_folders_raise_or_substitute(tmp_path: Path) -> None:
    good = write_folder(tmp_path / "A" / "v_good")
    corrupt = write_folder(tmp_path / "A" / "v_corrupt")
    for i in range(1, 12):
        (corrupt / f"flow_x_{i:05d}.jpg").write_bytes(b"not a jpeg")
    short = write_folder(tmp_path / "A" / "v_short", n=1)  # one frame: no flow field
    gone = write_folder(tmp_path / "A" / "v_gone")
    (gone / "img_00005.jpg").unlink()
    (gone / "img_00006.jpg").unlink()
    (gone / "img_00007.jpg").unlink()
    samples = [(corrupt, 0), (short, 0), (gone, 0), (good, 0)]
    strict = TwoStreamDataset(samples, ["A"], TINY)
    with pytest.raises(FrameReadError, match="cannot be decoded"):
        strict[0]
    with pytest.raises(FrameReadError, match="too few files"):
        strict[1]
    lenient = TwoStreamDataset(samples, ["A"], TINY, train=False, on_error="skip")
    s = lenient[0]
    assert s["index"] == 3 and s["flow"].shape == (4, 4, 32, 32)  # test mode: 4 test segments
    reasons = s["failed"].split("; ")
    assert len(reasons) == 3 and reasons[0].startswith(f"{corrupt}: flow_x_") and "cannot be decoded" in reasons[0]
    assert reasons[1].startswith(f"{short}: too few files") and reasons[2].startswith(f"{gone}: img_0000")
    assert lenient.quarantine == reasons
    assert lenient.with_modality("flow")[2]["failed"] == ""  # the flow of v_gone is complete
    with pytest.raises(NoReadableSampleError, match="no readable frame folder among 3"):
        TwoStreamDataset(samples[:3], ["A"], TINY, on_error="skip")[0]


def test_bad_marker_and_size_mismatch(tmp_path: Path) -> None:
    bad = write_folder(tmp_path / "A" / "v_bad")
    (bad / FLOW_MARKER).write_text("{not json")
    odd = write_folder(tmp_path / "A" / "v_odd")
    cv2.imwrite(str(odd / "flow_y_00003.jpg"), np.full((H, W + 8), 128, np.uint8))
    ds = TwoStreamDataset([(bad, 0), (odd, 0)], ["A"], TwoStreamConfig(**{**TINY.__dict__, "new_length": 11}))
    with pytest.raises(FrameReadError, match="bad completion marker"):
        ds[0]
    with pytest.raises(FrameReadError, match="differ in size"):
        ds[1]


# ------------------------------------------------------------------------------------------ transforms


def test_flow_aware_transforms_directly() -> None:
    clip = torch.rand(5, 2, 8, 10)  # [3 RGB + x + y, T, H, W]
    assert torch.equal(invert_flow_x(clip, [3])[3], 1 - clip[3]) and torch.equal(invert_flow_x(clip, [3])[4], clip[4])
    flip = RandomHorizontalFlipFlow(1.0, [3])(clip, np.random.default_rng(0))
    assert torch.allclose(flip[3], 1 - clip[3].flip(-1)) and torch.equal(flip[:3], clip[:3].flip(-1))
    assert torch.equal(RandomHorizontalFlipFlow(0.0, [3])(clip, np.random.default_rng(0)), clip)
    ten = TenCropFlow(6, [3])(clip)
    assert ten.shape == (10, 5, 2, 6, 6) and torch.allclose(ten[5, 3], 1 - ten[0, 3].flip(-1))
    with pytest.raises(ValueError, match="out of range"):
        invert_flow_x(clip, [7])


def test_fixed_corner_multiscale_crop_uses_tsn_positions() -> None:
    crop = FixedCornerMultiScaleCrop(16, more_fix_crop=False)
    assert crop.offsets(32, 40, 24, 24) == [(0, 0), (0, 16), (8, 0), (8, 16), (4, 8)]
    assert len(FixedCornerMultiScaleCrop(16).offsets(32, 40, 24, 24)) == 13
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")
    clip = (rows * 100 + cols).expand(1, 1, 32, 40)  # the top-left value identifies the window
    allowed = {(t, l) for ch in (32, 28, 24, 21) for cw in (32, 28, 24, 21)
               for t, l in FixedCornerMultiScaleCrop(16).offsets(32, 40, ch, cw)}
    rng = np.random.default_rng(0)
    for _ in range(30):
        out = FixedCornerMultiScaleCrop(32, scales=(1.0,), max_distort=0)(clip, rng)  # no resize: exact window
        top, left = divmod(int(out[0, 0, 0, 0]), 100)
        assert (top, left) in allowed and out.shape == (1, 1, 32, 32)
        assert FixedCornerMultiScaleCrop(16)(clip, rng).shape == (1, 1, 16, 16)


# ------------------------------------------------------------------------------------------ official splits


def test_frames_split_maps_official_splits_to_frame_folders(tmp_path: Path) -> None:
    root = realdata()
    frames = tmp_path / "frames"
    ucf, classes = frames_split("ucf101", root / "ucf101", frames, split=1, train=True)
    videos, ucf_classes = ucf101_split(root / "ucf101", 1, True)
    assert classes == ucf_classes and len(ucf) == len(videos) == 9537
    assert [label for _, label in ucf] == [label for _, label in videos]
    assert ucf[0][0] == frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01"
    # case-insensitive match of an existing folder (list: HandstandPushups/v_HandStandPushups_g08_c01.avi)
    real = write_folder(frames / "handstandpushups" / "v_HandStandPushups_g08_c01")
    write_folder(frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01")
    ucf, _ = frames_split("ucf101", root / "ucf101", frames, split=1, train=True)
    assert real in [p for p, _ in ucf]
    with pytest.warns(UserWarning, match=f"skipping {9537 - 2} of 9537"):
        ds = build_two_stream_dataset("ucf101", root / "ucf101", frames, split=1, train=True, config=TINY,
                                      missing="skip")
    assert len(ds) == 2 and ds.classes[ds.samples[1][1]] == "HandstandPushups" and ds[1]["flow"].shape[0] == 4

    hmdb, h_classes = frames_split("hmdb51", root / "hmdb51", frames, split=2, train=False)
    h_videos, _ = hmdb51_split(root / "hmdb51", 2, False)
    assert len(hmdb) == len(h_videos) and len(h_classes) == 51
    assert all(p.parent.parent == frames and p.name == v.stem and p.parent.name == v.parent.name
               for (p, _), (v, _) in zip(hmdb, h_videos))

    arid, a_classes = frames_split("arid", root / "arid", frames, split=1, train=True)
    a_videos, _ = arid_split(root / "arid", 1, True)
    assert len(arid) == len(a_videos) and a_classes[0] == "Drink"
    assert arid[0][0] == frames / "Drink" / "Drink_11_1"
    with pytest.raises(ValueError, match="layout"):
        frames_split("kinetics", root, frames)  # type: ignore[arg-type]


def test_marker_name_matches_the_flow_extraction() -> None:
    flow = pytest.importorskip("stia_kit.data.flow", reason="stia_kit.data.flow (flow extraction) not present")
    assert flow.FLOW_MARKER == FLOW_MARKER


def test_missing_without_realdata_message_is_clear(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError, match="classInd.txt"):
            frames_split("ucf101", tmp_path, tmp_path / "frames")
