"""Datasets: official split parsing on the real split files, missing/corrupt policies, DataLoader workers."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from stia_kit.data import (
    ARID,
    HMDB51,
    UCF101,
    DataConfig,
    ManifestDataset,
    MissingVideosError,
    NoReadableSampleError,
    VideoReadError,
    arid_split,
    build_dataset,
    check_videos,
    detect_layout,
    format_report,
    hmdb51_split,
    ucf101_split,
)

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
SMALL = DataConfig(num_frames=4, stride=2, short_side=36, crop_size=32)


def realdata() -> Path:
    if not (REALDATA / "README.md").is_file():
        pytest.skip(f"real clips not found at {REALDATA} (expected ../shared/realdata beside the repo)")
    return REALDATA


def write_video(path: Path, n: int = 12, level: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    """Small MPEG-4 AVI (PyAV encoder); frame i is grey level ``level + 7 * i``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), (level + 7 * i) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def names(samples: list[tuple[Path, int]]) -> set[str]:
    return {p.name for p, _ in samples if p.is_file()}


# ------------------------------------------------------------------------------ real split files


@pytest.mark.realdata
def test_ucf101_split_parsing_on_real_lists() -> None:
    root = realdata() / "ucf101"
    train, classes = ucf101_split(root, 1, train=True)
    test, _ = ucf101_split(root, 1, train=False)
    assert (len(train), len(test), len(classes)) == (9537, 3783, 101)
    assert classes[0] == "ApplyEyeMakeup" and classes[83] == "SoccerJuggling"
    assert names(train) == {
        "v_CricketBowling_g25_c07.avi", "v_CricketShot_g22_c01.avi", "v_CricketShot_g25_c07.avi",
        "v_SoccerJuggling_g23_c01.avi",
    }
    assert names(test) == {"v_ApplyEyeMakeup_g01_c01.avi", "v_CricketBowling_g01_c05.avi"}
    labels = {p.name: label for p, label in test}
    assert labels["v_ApplyEyeMakeup_g01_c01.avi"] == 0  # test lines carry no label: from the folder
    handstand = [p for p, _ in train if "HandStandPushups" in p.name]
    assert handstand and all(p.parent.name == "HandstandPushups" for p in handstand)
    assert [len(ucf101_split(root, k, True)[0]) for k in (2, 3)] == [9586, 9624]


def test_ucf101_case_insensitive_resolution(tmp_path: Path) -> None:
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 HandstandPushups\n")
    (lists / "trainlist01.txt").write_text("HandstandPushups/v_HandStandPushups_g08_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("HandstandPushups/v_HandStandPushups_g01_c01.avi\n")
    write_video(tmp_path / "UCF-101" / "HandstandPushups" / "v_HandstandPushups_g08_c01.avi")
    write_video(tmp_path / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi")
    ds = UCF101(tmp_path, train=True, config=SMALL)
    assert ds.samples[0][0].name == "v_HandstandPushups_g08_c01.avi" and not ds.missing
    assert len(UCF101(tmp_path, train=False, config=SMALL)) == 1


@pytest.mark.realdata
def test_ucf101_missing_raise_and_skip_on_real_subset() -> None:
    root = realdata() / "ucf101"
    with pytest.raises(MissingVideosError, match="9533 of 9537") as info:
        UCF101(root, split=1, train=True, config=SMALL)
    assert isinstance(info.value, FileNotFoundError) and "missing='skip'" in str(info.value)
    with pytest.warns(UserWarning, match="3781 of 3783"):
        test = UCF101(root, split=1, train=False, config=SMALL, missing="skip")
    assert len(test) == 2 and len(test.missing) == 3781
    sample = test[0]
    assert set(sample) == {"video", "label", "index", "failed"}
    assert sample["video"].shape == (3, 4, 32, 32) and sample["video"].dtype == torch.float32
    assert sample["failed"] == "" and sample["label"] in (0, test.classes.index("CricketBowling"))


@pytest.mark.realdata
def test_hmdb51_split_parsing_and_skip() -> None:
    root = realdata() / "hmdb51"
    train, classes = hmdb51_split(root, 1, train=True)
    test, _ = hmdb51_split(root, 1, train=False)
    assert (len(train), len(test), len(classes)) == (3570, 1530, 51)
    assert classes[:2] == ["brush_hair", "cartwheel"] and classes[-1] == "wave"
    assert names(train) == {
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi",
        "RATRACE_wave_f_nm_np1_fr_goo_37.avi",
    }
    assert "TrumanShow_wave_f_nm_np1_fr_med_26.avi" in names(test)
    with pytest.warns(UserWarning):
        ds = HMDB51(root, split=1, train=True, config=SMALL, missing="skip")
    assert len(ds) == 3
    assert {classes[label] for _, label in ds.samples} == {"brush_hair", "cartwheel", "wave"}


@pytest.mark.realdata
def test_arid_split_parsing_and_search_order(tmp_path: Path) -> None:
    root = realdata() / "arid"
    train, classes = arid_split(root, 1, train=True)
    test, _ = arid_split(root, 1, train=False)
    assert (len(train), len(test), len(classes)) == (2288, 823, 11)
    assert classes[0] == "Drink" and classes[10] == "Wave"
    assert train[0][0] == root / "clips_v1" / "Drink" / "Drink_11_1.avi" and train[0][1] == 0
    with pytest.raises(MissingVideosError):
        ARID(root, config=SMALL)
    # search order: clips_v1, clips_v1.5, root
    (tmp_path / "splits_v1").mkdir()
    (tmp_path / "splits_v1" / "mapping_table.txt").write_text("0\tDrink\n1\tJump\n")
    (tmp_path / "splits_v1" / "ARID_split1_train.txt").write_text("0\t0\tDrink/Drink_1_1.avi\n1\t1\tJump/Jump_1_1.avi\n")
    write_video(tmp_path / "clips_v1.5" / "Drink" / "Drink_1_1.avi")
    write_video(tmp_path / "Drink" / "Drink_1_1.avi")
    write_video(tmp_path / "Jump" / "Jump_1_1.avi")
    ds = build_dataset("arid", tmp_path, config=SMALL)
    assert [p.relative_to(tmp_path).parts[0] for p, _ in ds.samples] == ["clips_v1.5", "Jump"]
    assert ds[1]["label"] == 1


@pytest.mark.realdata
def test_detect_layout_on_real_roots(tmp_path: Path) -> None:
    assert [detect_layout(realdata() / d) for d in ("ucf101", "hmdb51", "arid")] == ["ucf101", "hmdb51", "arid"]
    assert detect_layout(tmp_path) == "folder"


# ------------------------------------------------------------------------------ synthetic layout


@pytest.fixture(scope="module")
def synth_ucf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 11-class dataset in the UCF101 layout (2 train + 1 test video per class)."""
    root = tmp_path_factory.mktemp("synth_ucf")
    classes = [f"Action{k:02d}" for k in range(11)]
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(classes)))
    train, test = [], []
    for k, c in enumerate(classes):
        for g in (1, 2, 3):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            write_video(root / "UCF-101" / rel, n=10 + g, level=k * 10)
            (train.append(f"{rel} {k + 1}") if g < 3 else test.append(rel))
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def test_synthetic_ucf_layout_train_and_multiview_test(synth_ucf: Path) -> None:
    ds = build_dataset("ucf101", synth_ucf, train=True, config=SMALL, seed=1)
    assert len(ds) == 22 and len(ds.classes) == 11
    s = ds[5]
    assert s["video"].shape == (3, 4, 32, 32) and s["label"] == 2 and s["index"] == 5
    cfg = DataConfig(num_frames=4, stride=2, short_side=36, crop_size=32, test_clips=2, test_crops=3)
    test = build_dataset("ucf101", synth_ucf, train=False, config=cfg)
    assert test[0]["video"].shape == (6, 3, 4, 32, 32)
    tsn = UCF101(synth_ucf, train=False, config=DataConfig(sampling="tsn", num_frames=3, short_side=36, crop_size=32, test_crops=10))
    assert tsn[0]["video"].shape == (10, 3, 3, 32, 32)


def test_per_sample_randomness_is_reproducible_and_changes_with_epoch(synth_ucf: Path) -> None:
    ds = UCF101(synth_ucf, train=True, config=SMALL, seed=7)
    a = ds[3]["video"]
    assert torch.equal(a, UCF101(synth_ucf, train=True, config=SMALL, seed=7)[3]["video"])
    assert torch.equal(a, ds[3]["video"])
    ds.set_epoch(1)
    others = [ds[3]["video"]] + [UCF101(synth_ucf, train=True, config=SMALL, seed=s)[3]["video"] for s in (8, 9)]
    assert any(not torch.equal(a, o) for o in others)


def test_manifest_formats(tmp_path: Path, synth_ucf: Path) -> None:
    videos = sorted((synth_ucf / "UCF-101").rglob("*.avi"))[:3]
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\n" + "".join(f"{v},{v.parent.name}\n" for v in videos))
    ds = ManifestDataset(csv, config=SMALL)
    assert ds.classes == sorted({v.parent.name for v in videos}) and len(ds) == 3
    txt = tmp_path / "sub" / "list.txt"
    txt.parent.mkdir()
    rel = Path("..") / "list.csv"  # relative paths resolve against the manifest folder
    (tmp_path / "a.avi").write_bytes(videos[0].read_bytes())
    txt.write_text(f"../a.avi 4\n{videos[1]} 0\n")
    ds2 = build_dataset("manifest", txt, config=SMALL)
    assert ds2.classes == ["0", "1", "2", "3", "4"] and ds2.samples[0][0] == txt.parent / "../a.avi"
    assert ds2[0]["label"] == 4 and rel.name == "list.csv"
    with pytest.raises(ValueError, match="mix"):
        ManifestDataset([(videos[0], 1), (videos[1], "x")])


# ------------------------------------------------------------------------------ corrupt files


@pytest.fixture()
def mixed_manifest(tmp_path: Path) -> list[tuple[Path, int]]:
    """good, zero-byte, random bytes, good, truncated half, good with zeroed middle bytes, good."""
    good = [write_video(tmp_path / f"good{i}.avi", n=40, level=i * 20) for i in range(4)]
    zero = tmp_path / "zero.avi"
    zero.write_bytes(b"")
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(0).bytes(4000))
    big = write_video(tmp_path / "big.avi", n=40, level=5)
    data = big.read_bytes()
    half = tmp_path / "half.avi"
    half.write_bytes(data[: len(data) // 2])
    mid = bytearray(data)
    mid[len(data) // 2 : len(data) // 2 + len(data) // 8] = bytes(len(data) // 8)
    zeroed = tmp_path / "zeroed.avi"
    zeroed.write_bytes(bytes(mid))
    order = [good[0], zero, noise, good[1], half, zeroed, good[2], good[3]]
    return [(p, i % 2) for i, p in enumerate(order)]


def test_corrupt_files_raise_by_default(mixed_manifest: list[tuple[Path, int]]) -> None:
    ds = ManifestDataset(mixed_manifest, config=SMALL, classes=["a", "b"])
    assert ds[0]["failed"] == ""
    expected = {1: "zero bytes", 2: "not a video", 4: "truncated", 5: "truncated|damaged|undecodable"}
    for index, reason in expected.items():
        with pytest.raises(VideoReadError, match=reason) as info:
            ds[index]
        assert info.value.path == mixed_manifest[index][0]


def test_corrupt_files_skip_substitutes_next_readable(mixed_manifest: list[tuple[Path, int]]) -> None:
    ds = ManifestDataset(mixed_manifest, config=SMALL, on_error="skip", classes=["a", "b"])
    s = ds[1]
    assert s["index"] == 3 and s["label"] == 1 and s["video"].shape == (3, 4, 32, 32)
    assert s["failed"].count("; ") == 1 and "zero.avi: zero bytes" in s["failed"] and "noise.avi" in s["failed"]
    s = ds[4]
    assert s["index"] == 6 and "half.avi" in s["failed"] and "zeroed.avi" in s["failed"]
    assert len(ds.quarantine) == 4
    assert ds[4]["index"] == 6  # deterministic substitution
    only_bad = ManifestDataset(mixed_manifest[1:3], config=SMALL, on_error="skip", classes=["a", "b"])
    with pytest.raises(NoReadableSampleError, match="zero bytes"):
        only_bad[0]


def test_dataloader_two_workers_survive_corrupt_files(mixed_manifest: list[tuple[Path, int]]) -> None:
    ds = ManifestDataset(mixed_manifest, config=SMALL, on_error="skip", classes=["a", "b"])
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False, timeout=60)
    batches = list(loader)
    assert len(batches) == 4
    videos = torch.cat([b["video"] for b in batches])
    assert videos.shape == (8, 3, 4, 32, 32) and torch.isfinite(videos).all()
    failed = [f for b in batches for f in b["failed"] if f]
    assert sum(f.count(".avi:") for f in failed) == 6  # zero+noise, noise, half+zeroed, zeroed
    assert torch.cat([b["index"] for b in batches]).tolist() == [0, 3, 3, 3, 6, 6, 6, 7]
    strict = ManifestDataset(mixed_manifest, config=SMALL, classes=["a", "b"])
    batches_iter = iter(DataLoader(strict, batch_size=2, num_workers=2, timeout=60))
    with pytest.raises(VideoReadError, match="zero bytes"):  # re-raised in the main process, same type
        list(batches_iter)
    # torch 2.13 waits 5 s per worker when an iterator that re-raised is only garbage-collected; shut the
    # workers down explicitly to keep the test fast (private method of the pinned torch version).
    batches_iter._shutdown_workers()  # type: ignore[attr-defined]


def test_check_videos_reports_every_bad_file(mixed_manifest: list[tuple[Path, int]], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a video suffix: ignored")
    report = check_videos(tmp_path)
    assert report.layout == "folder" and report.total == 9  # 8 listed + big.avi
    bad = {p.name: reason for p, reason in report.bad}
    assert set(bad) == {"zero.avi", "noise.avi", "half.avi", "zeroed.avi"}
    assert all(n == 40 for n in report.frames.values()) and len(report.frames) == 5
    text = format_report(report, tmp_path)
    assert "9 found, 5 readable, 4 unreadable" in text and "zero.avi: zero bytes" in text


@pytest.mark.realdata
def test_check_videos_on_real_hmdb51() -> None:
    report = check_videos(realdata() / "hmdb51")
    assert report.layout == "hmdb51" and report.total == 6 and not report.bad
    assert sorted(report.frames.values()) == [48, 72, 74, 74, 83, 408]


def test_bad_arguments(synth_ucf: Path) -> None:
    with pytest.raises(ValueError, match="missing"):
        UCF101(synth_ucf, missing="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("kinetics", synth_ucf)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split"):
        UCF101(synth_ucf, split=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(UCF101(synth_ucf, train=False, missing="skip")) == 11  # nothing missing: no warning


def test_datasets_register_like_models(synth_ucf: Path) -> None:
    from stia_kit.data import DATASET_NAMES, DATASETS, FrameCache

    assert DATASETS.names() == list(DATASET_NAMES) == ["arid", "hmdb51", "manifest", "ucf101"]
    ds = DATASETS.build("ucf101", synth_ucf, train=False, config=SMALL)
    same = build_dataset("ucf101", synth_ucf, train=False, config=SMALL)
    assert isinstance(ds, UCF101) and torch.equal(ds[0]["video"], same[0]["video"])
    with pytest.raises(KeyError, match="unknown dataset 'kinetics'; available: arid, hmdb51, manifest, ucf101"):
        DATASETS.get("kinetics")
    cache = FrameCache()
    assert build_dataset("ucf101", synth_ucf, config=SMALL, cache=cache, max_attempts=3).cache is cache
