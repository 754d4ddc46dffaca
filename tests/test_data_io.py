"""Video decoding: real clips (frame counts from realdata/README.md), exact frame selection, corrupt files."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from stia_kit.data import VideoReadError, decode_all, num_frames, probe, read_clip, read_frames

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
UCF_CLIP = "ucf101/UCF-101/CricketShot/v_CricketShot_g22_c01.avi"  # XviD AVI, 170 frames


def realdata() -> Path:
    if not (REALDATA / "README.md").is_file():
        pytest.skip(f"real clips not found at {REALDATA} (expected ../shared/realdata beside the repo)")
    return REALDATA


def readme_frame_counts() -> dict[str, int]:
    """Parse the README table: | `file` | dataset | label | codec | frames | ..."""
    counts = {}
    for line in (realdata() / "README.md").read_text().splitlines():
        m = re.match(r"^\| `([^`]+)` \|(?:[^|]*\|){3}\s*(\d+)\s*\|", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    assert len(counts) >= 20, "README table not parsed"
    return counts


def write_index_video(path: Path, n: int, size: tuple[int, int] = (48, 64)) -> None:
    """MPEG-4 AVI whose frame i is uniformly grey with level 10 + 7 * i (decodable back to i)."""
    h, w = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"qscale": "2"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 10 + 7 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def decoded_index(frames: np.ndarray) -> np.ndarray:
    return np.rint((frames.reshape(len(frames), -1).mean(1) - 10) / 7).astype(int)


@pytest.mark.realdata
def test_num_frames_matches_readme_for_every_real_clip() -> None:
    counts = readme_frame_counts()
    for rel, expected in counts.items():
        assert num_frames(realdata() / rel) == expected, rel
        assert num_frames(realdata() / rel, backend="pyav") == expected, rel


@pytest.mark.realdata
def test_raw_mpeg4_streams_fall_back_to_pyav() -> None:
    path = realdata() / "ucf101_reencoded/v_Basketball_g07_c04.mp4"
    assert probe(path).is_raw_stream
    with pytest.raises(VideoReadError):
        read_frames(path, [0], backend="decord")  # decord cannot index a raw stream
    frames = read_frames(path, [0, 50, 100])
    assert frames.shape == (3, 256, 340, 3) and frames.dtype == np.uint8
    with pytest.raises(VideoReadError, match="101 frames"):
        read_frames(path, [101])


@pytest.mark.realdata
def test_decord_and_pyav_return_the_same_frames() -> None:
    path = realdata() / UCF_CLIP
    idx = [169, 0, 40, 40, 99]  # unordered, repeated, includes the last frame
    a = read_frames(path, idx, backend="decord")
    b = read_frames(path, idx, backend="pyav")
    assert a.shape == b.shape == (5, 240, 320, 3)
    diff = np.abs(a.astype(int) - b.astype(int)).mean(axis=(1, 2, 3))
    assert (diff < 8).all(), diff  # different FFmpeg builds / colour conversion, same pictures
    assert np.array_equal(b[2], b[3])


@pytest.mark.realdata
def test_auto_random_access_returns_the_sequentially_decoded_frames_for_every_real_clip() -> None:
    """PyAV's sequential decode is the ground truth; decord seeking is wrong on some HMDB51 DivX files
    (e.g. brush_hair/April_09...: frame 136 comes back as frame 49), which "auto" must avoid."""
    for rel, n in readme_frame_counts().items():
        idx = [n - 1, n // 2, n // 3, 0]
        auto = read_frames(realdata() / rel, idx).astype(np.int16)
        truth = read_frames(realdata() / rel, idx, backend="pyav").astype(np.int16)
        diff = np.abs(auto - truth).mean(axis=(1, 2, 3))
        assert (diff < 6).all(), (rel, diff)


@pytest.mark.realdata
def test_hmdb_skip_packet_not_counted_as_frame() -> None:
    path = realdata() / "hmdb51/hmdb51_org/wave/TrumanShow_wave_f_nm_np1_fr_med_26.avi"
    assert probe(path).header_frames == 49  # header (and decord) count the DivX skip packet
    assert num_frames(path) == 48
    assert read_frames(path, [47]).shape == (1, 240, 432, 3)
    with pytest.raises(VideoReadError):
        read_frames(path, [48], backend="pyav")


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_read_frames_returns_exactly_the_requested_frames(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "index.avi"
    write_index_video(path, 30)
    assert num_frames(path, backend) == 30
    idx = [29, 3, 3, 0, 17]
    assert decoded_index(read_frames(path, idx, backend)).tolist() == idx


def test_read_clip_passes_the_frame_count_to_the_index_function(tmp_path: Path) -> None:
    path = tmp_path / "index.avi"
    write_index_video(path, 12)
    seen = []

    def pick(n: int) -> np.ndarray:
        seen.append(n)
        return np.array([[0, n - 1]])

    frames, idx, n = read_clip(path, pick)
    assert seen == [12] and n == 12 and idx.shape == (1, 2)
    assert decoded_index(frames).tolist() == [0, 11]


def _corrupt_files(tmp_path: Path, source: Path) -> dict[str, tuple[Path, str]]:
    data = source.read_bytes()
    zero = tmp_path / "zero.avi"
    zero.write_bytes(b"")
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(0).bytes(20000))
    half = tmp_path / "half.avi"
    half.write_bytes(data[: len(data) // 2])
    middle = bytearray(data)
    mid, length = len(data) // 2, len(data) // 10
    middle[mid : mid + length] = bytes(length)
    zeroed = tmp_path / "zeroed.avi"
    zeroed.write_bytes(bytes(middle))
    return {
        "zero": (zero, "zero bytes"),
        "noise": (noise, "not a video|cannot open"),
        "half": (half, "truncated"),
        "zeroed": (zeroed, "truncated|damaged|undecodable"),
    }


@pytest.mark.realdata
@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_corrupt_files_raise_video_read_error_naming_file_and_reason(tmp_path: Path, backend: str) -> None:
    for name, (path, reason) in _corrupt_files(tmp_path, realdata() / UCF_CLIP).items():
        with pytest.raises(VideoReadError, match=reason) as info:
            read_frames(path, [0, 1, 2, 100, 150], backend=backend)
        assert info.value.path == path and str(path) in str(info.value), name
        assert isinstance(info.value, RuntimeError)
        if backend != "decord":
            with pytest.raises(VideoReadError):
                decode_all(path, backend)


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="does not exist"):
        read_frames(tmp_path / "nope.avi", [0])
    path = tmp_path / "index.avi"
    write_index_video(path, 5)
    with pytest.raises(ValueError, match="backend"):
        read_frames(path, [0], backend="opencv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        read_frames(path, [-1])
    with pytest.raises(VideoReadError, match="5 frames"):
        read_frames(path, [5])


def test_video_read_error_pickles() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(VideoReadError("/x/y.avi", "zero bytes")))
    assert err.path == Path("/x/y.avi") and err.reason == "zero bytes" and "y.avi: zero bytes" in str(err)


def test_one_set_of_video_suffixes_for_check_and_enhance(tmp_path: Path) -> None:
    """`stia data check` and `stia enhance` find the same files (a folder of .mov is not silently skipped)."""
    from stia_kit.data import VIDEO_SUFFIXES, find_videos
    from stia_kit.enhance import find_videos as enhance_find_videos
    from stia_kit.enhance.video import VIDEO_EXTENSIONS

    assert set(VIDEO_EXTENSIONS) == VIDEO_SUFFIXES and {".mov", ".avi", ".mp4", ".webm"} <= VIDEO_SUFFIXES
    for suffix in sorted(VIDEO_SUFFIXES) + [".MOV", ".txt", ".npz"]:
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / f"clip{suffix.replace('.', '_')}{suffix}").write_bytes(b"x")
    found = find_videos(tmp_path)
    assert found == enhance_find_videos(tmp_path) and len(found) == len(VIDEO_SUFFIXES) + 1  # + .MOV
