"""The stia console script: info, data synth/check, parameter errors."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stia_kit.cli import main
from stia_kit.params import ParameterError

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def test_console_script_is_installed_and_info_runs() -> None:
    exe = shutil.which("stia") or str(Path(__import__("sys").executable).parent / "stia")
    out = subprocess.run([exe, "info"], capture_output=True, text=True, check=True).stdout
    assert "torch 2.13.0" in out and "r3d_18" in out and "device: cpu" in out


def test_data_synth_then_check_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(root), "--clips-per-class", "2", "--clips-per-group", "1", "--frames", "8", "--size", "32",
                 "--layouts", "ucf101,arid", "--quiet"]) == 0
    assert (root / "ucfTrainTestlist" / "classInd.txt").read_text().splitlines()[0] == "1 Drink"
    assert (root / "splits_v1" / "mapping_table.txt").is_file()
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ucf101" in out.lower()


def test_data_check_reports_each_bad_file_and_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"real clips not found at {REALDATA}")
    good = REALDATA / "ucf101" / "UCF-101" / "CricketBowling" / "v_CricketBowling_g01_c05.avi"
    shutil.copy(good, tmp_path / "good.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(bytes(range(256)) * 40)
    data = good.read_bytes()
    (tmp_path / "truncated.avi").write_bytes(data[: len(data) // 2])
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for name in ("empty.avi", "noise.mp4", "truncated.avi"):
        line = next((l for l in out.splitlines() if name in l), None)
        assert line is not None, f"{name} not reported:\n{out}"
    assert not any("good.avi" in l for l in out.splitlines() if "zero bytes" in l or "not a video" in l)


def test_data_check_on_real_ucf101_layout() -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"real clips not found at {REALDATA}")
    assert main(["data", "check", str(REALDATA / "ucf101")]) == 0


def test_train_rejects_bad_parameters() -> None:
    with pytest.raises(SystemExit):  # argparse: not an int
        main(["train", "--epochs", "many"])
    with pytest.raises(ValueError, match="crop_size"):
        main(["train", "--crop-size", "99", "--short-side", "64"])
    with pytest.raises(ParameterError, match="unknown parameter"):
        main(["quickstart", "--out", "/nonexistent/never", "-p", "epoch", "3"])
