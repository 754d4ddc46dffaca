"""Optical flow extraction: quantisation, the three methods, the TSN folder layout, resume, bad videos, CLI."""
from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from stia_kit.cli import main
from stia_kit.data import flow as F
from stia_kit.data.flow import (
    FLOW_MARKER, FLOW_METHODS, FLOW_SUMMARY, FlowConfig, compute_flow, dequantise_flow, extract_tree,
    extract_video, flow_backend_check, flow_to_rgb, flow_wheel, is_complete, load_flow, quantise_flow, read_marker,
)
from stia_kit.data.video_io import VideoReadError, read_frames
from stia_kit.synth.video import write_video

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
FAST = FlowConfig(method="dis")  # the fastest method, for tests that are about files rather than flow


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random grey texture (uint8 [h, w]) that every flow method can track."""
    noise = (np.random.default_rng(seed).random((h, w)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def translating_frames(n: int = 6, size: int = 32, shift: int = 1, seed: int = 0) -> np.ndarray:
    """RGB frames uint8 [n, size, size, 3] whose content moves ``shift`` pixels to the right per frame."""
    big = texture(size, size + n * shift + 8, seed)
    x0 = n * shift + 4
    frames = [big[:, x0 - t * shift: x0 - t * shift + size] for t in range(n)]  # window moves left = content right
    rgb = np.stack(frames)[..., None].repeat(3, axis=-1)  # [n, H, W, 3]
    rgb[..., 0] = rgb[..., 0] // 2 + 60  # not grey, so RGB -> BGR mix-ups would show
    return np.ascontiguousarray(rgb)


def make_video(path: Path, n: int = 6, size: int = 32, seed: int = 0) -> Path:
    write_video(path, translating_frames(n, size, seed=seed), fps=10)
    return path


def make_tree(root: Path, n_videos: int = 4, n_frames: int = 5) -> list[Path]:
    """UCF101-style tree: root/ClassA/v_ClassA_g01_c0k.avi, root/ClassB/..."""
    videos = []
    for i in range(n_videos):
        cls = "ClassA" if i % 2 == 0 else "ClassB"
        videos.append(make_video(root / cls / f"v_{cls}_g01_c{i:02d}.avi", n=n_frames, seed=i))
    return sorted(videos)


def out_of(src: Path, dst: Path, video: Path) -> Path:
    return dst / video.relative_to(src).with_suffix("")


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------------------------------- units


def test_config_validation_names_the_field() -> None:
    for kwargs, name in [({"method": "lk"}, "method"), ({"bound": 0}, "bound"), ({"bound": float("nan")}, "bound"),
                         ({"jpeg_quality": 101}, "jpeg_quality"), ({"short_side": 4}, "short_side"),
                         ({"rgb": 1}, "rgb"), ({"max_frames": 1}, "max_frames"), ({"dis_preset": "slow"}, "dis_preset")]:
        with pytest.raises(ValueError, match=f"FlowConfig.{name} "):
            FlowConfig(**kwargs)
    assert FlowConfig().settings()["bound"] == 20.0 and "dis_preset" not in FlowConfig().settings()
    assert FlowConfig(method="dis").settings()["dis_preset"] == "medium"


def test_quantise_dequantise_round_trip_and_bounds() -> None:
    bound = 20.0
    v = np.linspace(-bound, bound, 1001, dtype=np.float32).reshape(-1, 1, 1).repeat(2, axis=-1)  # [1001, 1, 2]
    q = quantise_flow(v, bound)
    assert q.dtype == np.uint8 and q.shape == v.shape
    assert np.abs(dequantise_flow(q, bound) - v).max() <= bound / 255 + 1e-5  # half a step is bound/255
    assert np.all(np.diff(q[:, 0, 0].astype(int)) >= 0)  # monotone
    zero = quantise_flow(np.zeros((2, 2, 2), np.float32), bound)
    assert np.all(zero == 128)  # 127.5 rounds to 128: "128 ~ zero motion"
    assert quantise_flow(np.array([-bound, bound, -1e6, 1e6]), bound).tolist() == [0, 255, 0, 255]  # clipped
    assert dequantise_flow(np.array([0, 255], np.uint8), bound).tolist() == pytest.approx([-bound, bound])
    assert quantise_flow(np.array([5.0]), 5.0).tolist() == [255]  # the bound is a parameter
    with pytest.raises(ValueError, match="bound"):
        quantise_flow(v, 0.0)


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_rightward_translation_gives_positive_dx(method: str) -> None:
    img = texture(64, 80)
    prev, nxt = img[:, 6:70].copy(), img[:, 4:68].copy()  # content moves 2 px right
    flow = compute_flow(prev, nxt, method)
    assert flow.dtype == np.float32 and flow.shape == (64, 64, 2)
    inner = flow[8:-8, 8:-8]
    assert abs(float(inner[..., 0].mean()) - 2.0) < 0.25 and abs(float(inner[..., 1].mean())) < 0.25
    assert quantise_flow(flow)[..., 0].mean() > 128 + 8  # 2 px = 12.75 levels at bound 20
    est = F.make_flow_estimator(FlowConfig(method=method))  # reusable estimator gives the same field
    np.testing.assert_allclose(compute_flow(prev, nxt, estimator=est), flow, atol=1e-4)


def test_compute_flow_input_checks_and_backend_check(monkeypatch: pytest.MonkeyPatch) -> None:
    img = texture(32, 32)
    with pytest.raises(ValueError, match="grey uint8"):
        compute_flow(np.stack([img] * 3, -1), img, "dis")
    with pytest.raises(ValueError, match="same shape"):
        compute_flow(img, img[:16], "dis")
    with pytest.raises(ValueError, match="flow method"):
        flow_backend_check("lucas_kanade")
    for m in FLOW_METHODS:
        flow_backend_check(m)  # all present in the pinned opencv-contrib wheel
    monkeypatch.delattr(cv2, "optflow")
    with pytest.raises(RuntimeError, match=r"cv2\.optflow.*opencv-contrib-python-headless"):
        flow_backend_check("tvl1")
    with pytest.raises(RuntimeError, match="cv2.optflow"):
        extract_tree(Path(__file__).parent, Path("/nonexistent-dst"), FlowConfig())  # before any work
    flow_backend_check("dis")


def test_flow_to_rgb_and_wheel() -> None:
    zero = flow_to_rgb(np.zeros((4, 5, 2), np.float32))
    assert zero.dtype == np.uint8 and zero.shape == (4, 5, 3) and np.all(zero == 255)  # zero flow = white
    assert np.all(flow_to_rgb(np.zeros((2, 2, 2)), background="black") == 0)  # or black
    right = flow_to_rgb(np.array([[[3.0, 0.0], [0.0, 0.0]]]))
    assert right[0, 0].tolist() == [255, 0, 0] and right[0, 1].tolist() == [255, 255, 255]
    left = flow_to_rgb(np.array([[[-1.0, 0.0]]]), max_magnitude=1.0)
    assert left[0, 0].tolist() == [0, 255, 255]  # opposite hue: cyan
    half = flow_to_rgb(np.array([[[1.0, 0.0]]]), max_magnitude=2.0)
    assert half[0, 0, 0] == 255 and 120 <= half[0, 0, 1] <= 135  # half saturation
    sat = flow_to_rgb(np.array([[[9.0, 0.0]]]), max_magnitude=2.0)
    assert sat[0, 0].tolist() == [255, 0, 0]  # saturates above max_magnitude
    with pytest.raises(ValueError, match="dequantise_flow"):
        flow_to_rgb(np.zeros((2, 2, 2), np.uint8))
    wheel = flow_wheel(33)
    assert wheel.shape == (33, 33, 3) and wheel.dtype == np.uint8
    assert wheel[16, 16].tolist() == [255, 255, 255]  # centre = no motion
    assert wheel[16, 32].tolist() == [255, 0, 0]  # right rim = rightward, full strength
    assert wheel[0, 0].tolist() == [255, 255, 255]  # outside the disc


# ------------------------------------------------------------------------------------------ one video


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_extract_video_layout_marker_and_direction(tmp_path: Path, method: str) -> None:
    video = make_video(tmp_path / "v_Right_g01_c01.avi", n=6)
    out = tmp_path / "out" / "v_Right_g01_c01"
    cfg = FlowConfig(method=method)
    r = extract_video(video, out, cfg)
    assert (r.status, r.n_frames, r.n_flow, r.height, r.width) == ("done", 6, 5, 32, 32)
    expected = ({f"img_{i:05d}.jpg" for i in range(1, 7)} | {f"flow_x_{i:05d}.jpg" for i in range(1, 6)}
                | {f"flow_y_{i:05d}.jpg" for i in range(1, 6)} | {FLOW_MARKER})
    assert names(out) == expected  # 1-based, n images, n-1 fields, nothing else
    fx = np.stack([cv2.imread(str(out / f"flow_x_{i:05d}.jpg"), cv2.IMREAD_UNCHANGED) for i in range(1, 6)])
    fy = np.stack([cv2.imread(str(out / f"flow_y_{i:05d}.jpg"), cv2.IMREAD_UNCHANGED) for i in range(1, 6)])
    assert fx.shape == (5, 32, 32) and fx.dtype == np.uint8  # grey JPEG
    assert fx[:, 8:-8, 8:-8].mean() > 132 and abs(fy[:, 8:-8, 8:-8].mean() - 128) < 3  # 1 px right = +6.4
    decoded = read_frames(video, list(range(6)), backend="pyav")
    imgs = np.stack([cv2.imread(str(out / f"img_{i:05d}.jpg"))[..., ::-1] for i in range(1, 7)])  # BGR -> RGB
    assert np.abs(imgs.astype(int) - decoded.astype(int)).mean() < 3  # same frames, same order, RGB kept
    marker = read_marker(out)
    assert marker is not None and marker["n_frames"] == 6 and marker["n_flow"] == 5
    assert marker["method"] == method and marker["bound"] == 20.0 and marker["source"]["size"] == video.stat().st_size
    assert is_complete(out) and is_complete(out, cfg, source=video)
    assert not is_complete(out, FlowConfig(method=method, bound=10.0))  # other settings: not this extraction
    assert extract_video(video, out, cfg).status == "skipped"


def test_short_side_no_rgb_max_frames_and_load_flow(tmp_path: Path) -> None:
    video = tmp_path / "wide.avi"
    write_video(video, translating_frames(8, 48)[:, 8:40], fps=10)  # 32 x 48 frames
    out = tmp_path / "o"
    r = extract_video(video, out, FlowConfig(method="dis", short_side=16, rgb=False, max_frames=4))
    assert (r.n_frames, r.n_flow, r.height, r.width) == (4, 3, 16, 24)
    assert names(out) == {f"flow_{c}_{i:05d}.jpg" for c in "xy" for i in (1, 2, 3)} | {FLOW_MARKER}
    assert cv2.imread(str(out / "flow_x_00001.jpg"), cv2.IMREAD_UNCHANGED).shape == (16, 24)
    field = load_flow(out, 1)
    assert field.shape == (16, 24, 2) and field.dtype == np.float32 and field[..., 0].mean() > 0.1
    with pytest.raises(FileNotFoundError):
        load_flow(out, 4)


def test_changed_source_or_corrupt_marker_is_redone(tmp_path: Path) -> None:
    video = make_video(tmp_path / "a.avi")
    out = tmp_path / "a"
    extract_video(video, out, FAST)
    assert is_complete(out, FAST, source=video)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not is_complete(out, FAST, source=video)  # the source changed since
    assert extract_video(video, out, FAST).status == "redone"
    (out / FLOW_MARKER).write_text("{not json")
    assert read_marker(out) is None and not is_complete(out)
    (out / "flow_x_00002.jpg").unlink()
    extract_video(video, out, FAST)
    assert is_complete(out, FAST, source=video)
    marker = json.loads((out / FLOW_MARKER).read_text())
    (out / "flow_y_00099.jpg").write_bytes(b"stray")  # counts no longer match the marker
    assert not is_complete(out) and marker["n_flow"] == 5


# ------------------------------------------------------------------------------------------------ trees


def test_interrupted_tree_resumes_without_recomputing_finished_videos(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    videos = make_tree(src, n_videos=4, n_frames=5)  # 5 img + 4 + 4 flow = 13 JPEGs per video
    real_write = F._write_jpeg
    calls = {"n": 0}

    def dying_write(path: Path, image: np.ndarray, quality: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2 * 13 + 6:  # the run is "killed" in the middle of the third video
            raise KeyboardInterrupt
        real_write(path, image, quality)

    monkeypatch.setattr(F, "_write_jpeg", dying_write)
    with pytest.raises(KeyboardInterrupt):
        extract_tree(src, dst, FAST, workers=1, progress=False)
    outs = [out_of(src, dst, v) for v in videos]
    assert is_complete(outs[0], FAST, source=videos[0]) and is_complete(outs[1], FAST, source=videos[1])
    assert len(names(outs[2])) == 5 and read_marker(outs[2]) is None  # half written, no marker
    assert not outs[3].exists()
    before = {o: (o / FLOW_MARKER).stat().st_mtime_ns for o in outs[:2]}
    img_before = (outs[0] / "img_00001.jpg").stat().st_mtime_ns

    monkeypatch.setattr(F, "_write_jpeg", real_write)
    summary = extract_tree(src, dst, FAST, workers=1, progress=False)
    rel = [str(v.relative_to(src)) for v in videos]
    assert summary.skipped == rel[:2] and summary.redone == [rel[2]] and summary.done == [rel[3]]
    assert summary.failed == [] and summary.total == 4 and summary.fields == 8
    assert all(is_complete(o, FAST, source=v) for o, v in zip(outs, videos))
    assert {o: (o / FLOW_MARKER).stat().st_mtime_ns for o in outs[:2]} == before  # not recomputed
    assert (outs[0] / "img_00001.jpg").stat().st_mtime_ns == img_before
    assert len(names(outs[2])) == 14

    # a finished folder whose marker was lost, with a leftover partial file: redone, the stray file removed
    (outs[1] / FLOW_MARKER).unlink()
    (outs[1] / "flow_x_00077.jpg").write_bytes(b"partial")
    again = extract_tree(src, dst, FAST, workers=1, progress=False)
    assert again.redone == [rel[1]] and sorted(again.skipped) == sorted([rel[0], rel[2], rel[3]])
    assert "flow_x_00077.jpg" not in names(outs[1]) and is_complete(outs[1], FAST, source=videos[1])
    saved = json.loads((dst / FLOW_SUMMARY).read_text())
    assert saved["redone"] == [rel[1]] and saved["settings"]["method"] == "dis"


def test_bad_videos_are_reported_and_skipped(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    good = make_tree(src, n_videos=2, n_frames=4)
    data = good[0].read_bytes()
    (src / "ClassA" / "v_bad_truncated.avi").write_bytes(data[: len(data) // 2])
    (src / "ClassA" / "v_bad_noise.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    (src / "ClassB" / "v_bad_empty.mp4").write_bytes(b"")
    write_video(src / "ClassB" / "v_bad_single.avi", translating_frames(1, 32), fps=10)
    summary = extract_tree(src, dst, FAST, workers=1, progress=False)
    assert sorted(summary.done) == sorted(str(v.relative_to(src)) for v in good)
    reasons = dict(entry.split(": ", 1) for entry in summary.failed)
    assert set(reasons) == {"ClassA/v_bad_truncated.avi", "ClassA/v_bad_noise.avi", "ClassB/v_bad_empty.mp4",
                            "ClassB/v_bad_single.avi"}
    assert "truncated" in reasons["ClassA/v_bad_truncated.avi"] and "not a video" in reasons["ClassA/v_bad_noise.avi"]
    assert "zero bytes" in reasons["ClassB/v_bad_empty.mp4"] and "at least 2" in reasons["ClassB/v_bad_single.avi"]
    assert not (dst / "ClassA" / "v_bad_truncated").exists()  # a failed video leaves no folder
    assert "failed:" in summary.format() and not summary.ok
    assert json.loads((dst / FLOW_SUMMARY).read_text())["failed"] == summary.failed
    with pytest.raises(VideoReadError, match="zero bytes"):
        extract_video(src / "ClassB" / "v_bad_empty.mp4", tmp_path / "x", FAST)


def test_synth_layouts_and_process_pool(tmp_path: Path) -> None:
    from stia_kit.synth import SynthConfig, generate_synth_actions

    root = tmp_path / "synth"
    generate_synth_actions(root, SynthConfig(classes=("drink", "jump"), clips_per_class=2, clips_per_group=1,
                                             num_frames=6, size=32, layouts=("ucf101", "hmdb51", "arid")),
                           progress=False)
    cfg = FlowConfig(method="tvl1")
    one = extract_tree(root / "UCF-101", tmp_path / "one", cfg, workers=1, progress=False)
    assert one.total == 4 and len(one.done) == 4 and is_complete(tmp_path / "one" / "Drink" / "v_Drink_g01_c01")
    pool = extract_tree(root, tmp_path / "pool", cfg, workers=2, progress=False)  # spawn pool, all 3 layouts
    assert pool.workers == 2 and pool.total == 12 and len(pool.done) == 12 and pool.ok
    for rel in ("UCF-101/Drink/v_Drink_g01_c01", "hmdb51_org/drink/drink_g01_c01", "clips_v1/Drink/Drink_1_1"):
        assert is_complete(tmp_path / "pool" / rel, cfg)
    a, b = tmp_path / "one" / "Jump" / "v_Jump_g02_c01", tmp_path / "pool" / "UCF-101" / "Jump" / "v_Jump_g02_c01"
    for name in ("img_00003.jpg", "flow_x_00005.jpg", "flow_y_00001.jpg"):
        assert (a / name).read_bytes() == (b / name).read_bytes()  # workers change nothing in the output
    assert extract_tree(root, tmp_path / "pool", cfg, workers=2, progress=False).skipped == sorted(pool.done)


def crashing_job(video: str, out_dir: str, cfg: FlowConfig) -> tuple[str, int, int, str]:
    """Pool job that kills its worker process (as a segfault would) on videos named *crash*."""
    if "crash" in Path(video).name:
        os._exit(3)
    return F._tree_job(video, out_dir, cfg)


def test_a_video_that_kills_its_worker_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    good = make_tree(src, n_videos=4, n_frames=4)
    make_video(src / "ClassA" / "v_crash.avi", n=4)
    monkeypatch.setattr(F, "_tree_job", crashing_job)  # looked up at submit time, pickled by reference
    summary = extract_tree(src, dst, FAST, workers=2, progress=False)
    assert summary.failed == [f"ClassA/v_crash.avi: {F.WORKER_DIED}"]
    # the pool terminates the other workers when one dies: a video cut off mid-way is redone, not lost
    assert sorted(summary.done + summary.redone) == sorted(str(v.relative_to(src)) for v in good)
    assert all(is_complete(out_of(src, dst, v), FAST, source=v) for v in good)


def test_cli_and_script(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    make_tree(src, n_videos=2, n_frames=4)
    assert main(["data", "flow", str(src), str(tmp_path / "d"), "--method", "farneback", "--bound", "10",
                 "--workers", "1", "--short-side", "16", "--no-rgb", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 done" in out and "0 failed" in out
    marker = read_marker(tmp_path / "d" / "ClassA" / "v_ClassA_g01_c00")
    assert marker is not None and marker["settings"]["bound"] == 10.0 and marker["n_img"] == 0
    (src / "ClassA" / "broken.avi").write_bytes(b"RIFF....AVI garbage")
    monkeypatch.setattr(sys, "argv", ["extract_flow.py", str(src), str(tmp_path / "e"), "--method", "dis",
                                      "--workers", "1", "--quiet"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / "data_prep" / "extract_flow.py"), run_name="__main__")
    assert exit_info.value.code == 1  # one video failed
    out = capsys.readouterr().out
    assert "ClassA/broken.avi: " in out and "2 done" in out
    assert main(["data", "flow", str(src), str(tmp_path / "f"), "--bound", "-1", "--quiet"]) == 2
    assert "FlowConfig.bound" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- real data


@pytest.mark.realdata
@pytest.mark.parametrize("clip", ["ucf101/UCF-101/CricketBowling/v_CricketBowling_g01_c05.avi",  # XviD AVI
                                  "ucf101_reencoded/v_Basketball_g01_c02.mp4",  # raw MPEG-4 stream, no index
                                  "hmdb51/hmdb51_org/wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi"])  # DivX, 560 px
def test_real_clip_first_frames(tmp_path: Path, clip: str) -> None:
    if not (REALDATA / "README.md").is_file():
        pytest.skip(f"real clips not found at {REALDATA} (expected ../shared/realdata beside the repo)")
    video = REALDATA / clip
    out = tmp_path / "clip"
    r = extract_video(video, out, FlowConfig(method="dis", max_frames=10))
    frames = read_frames(video, list(range(10)), backend="pyav")
    assert (r.n_frames, r.n_flow, (r.height, r.width)) == (10, 9, frames.shape[1:3])
    assert is_complete(out) and len(names(out)) == 10 + 2 * 9 + 1
    img = cv2.imread(str(out / "img_00010.jpg"))[..., ::-1]
    assert np.abs(img.astype(int) - frames[9].astype(int)).mean() < 4  # frame 10 is the 10th decoded frame
    field = load_flow(out, 5)
    assert field.shape == (*frames.shape[1:3], 2) and np.isfinite(field).all()
    assert flow_to_rgb(field).shape == (*frames.shape[1:3], 3)


def test_cli_interrupt_says_how_to_resume(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C during `stia data flow`: exit 130 and one line saying finished videos are kept (no traceback)."""
    import stia_kit.data.flow as flow_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(flow_mod, "extract_tree", interrupted)
    assert main(["data", "flow", str(tmp_path), str(tmp_path / "out"), "--method", "dis", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err
