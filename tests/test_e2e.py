"""End to end through the CLI: generate -> train -> evaluate -> kill -9 mid-run -> resume to the same result."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY
from stia_kit.cli import main
from stia_kit.train import load_checkpoint


def train_args(data: Path, out: Path, epochs: int) -> list[str]:
    args = ["train", "--dataset", "synth", "--data-root", str(data), "--out-dir", str(out), "--epochs", str(epochs),
            "--model", "r3d_18", "--optimizer", "sgd", "--lr", "0.05"]
    for k, v in TINY.items():
        if not k.startswith("synth_"):
            args += ["--" + k.replace("_", "-"), str(v)]
    return args + ["--synth-clips-per-class", "8", "--synth-frames", "8", "--synth-size", "32"]


def test_generate_train_evaluate(tiny_synth: Path, tmp_path: Path, capsys) -> None:
    assert main(train_args(tiny_synth, tmp_path, epochs=2)) == 0
    run = tmp_path / "r3d_18"
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    # no validation split by default: the test split is not looked at during training
    assert [(l["epoch"], l["split"]) for l in lines] == [(0, "train"), (1, "train")]
    assert all(l["num_samples"] > 0 for l in lines)
    metrics = json.loads((run / "metrics.json").read_text())["models"]["r3d_18"]
    test_clips = sum(map(sum, metrics["confusion"]))
    assert len(metrics["confusion"]) == 11 and test_clips > 0 and metrics["weights"] == "last.pt"
    trace = sum(metrics["confusion"][k][k] for k in range(11))
    assert metrics["top1"] == pytest.approx(trace / test_clips)

    # stia eval on the same weights with the training run's single view reproduces the reported test result
    assert main(["eval", "--run", str(run)]) == 0
    one = json.loads((run / "eval_last_1views.json").read_text())
    assert one["confusion"] == metrics["confusion"] and one["top1"] == pytest.approx(metrics["top1"])
    assert main(["eval", "--run", str(run), "--test-clips", "2", "--test-crops", "3"]) == 0
    out = json.loads((run / "eval_last_6views.json").read_text())
    assert out["views"] == 6 and out["num_samples"] == test_clips


def test_killed_training_resumes_to_the_same_weights(tiny_synth: Path, tmp_path: Path) -> None:
    """A real SIGKILL during epoch 2 of 3, a rerun of the same command, and an uninterrupted run agree exactly."""
    cmd = [sys.executable, "-m", "stia_kit.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cmd + train_args(tiny_synth, ref, 3), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(cmd + train_args(tiny_synth, killed, 3), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "r3d_18" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if last.exists():  # epoch 0 finished and checkpointed (written atomically)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = load_checkpoint(killed / "r3d_18" / "last.pt")
    assert first["epoch"] < 2, "the kill should land before the last epoch"

    subprocess.run(cmd + train_args(tiny_synth, killed, 3), check=True, env=env, capture_output=True)
    a, b = load_checkpoint(ref / "r3d_18" / "last.pt"), load_checkpoint(killed / "r3d_18" / "last.pt")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), f"weights differ after resume: {k}"
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k != "time"} for l in p.read_text().splitlines()]
    assert strip(ref / "r3d_18" / "metrics.jsonl") == strip(killed / "r3d_18" / "metrics.jsonl")
