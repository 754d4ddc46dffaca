"""`stia_kit.sweep`: validation before any run, parallel papermill runs, failures, timeouts, resume, submitit."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import nbformat
import pytest

from stia_kit import sweep as S

NB00 = Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb"
SWEEPS = Path(__file__).resolve().parents[1] / "notebooks" / "sweeps"

BODY = """import json, os, time
from pathlib import Path
if counter:
    with open(counter, "a") as f:
        f.write(f"{n}\\n")
if mode == "raise":
    raise ValueError(f"boom {n}")
if mode == "sleep":
    time.sleep(600)
if mode == "nap":
    time.sleep(2)
if mode == "exit":
    os._exit(3)
Path(out_dir).mkdir(parents=True, exist_ok=True)
with open(Path(out_dir) / "metrics.json", "w") as f:
    json.dump({"score": n * lr, "nested": {"n": n}, "rows": [{"a": n}], "curve": [1, 2], "params": {"n": n}}, f)"""


@pytest.fixture()
def tiny_nb(tmp_path: Path) -> Path:
    """A notebook with parameters mode / n / lr / out_dir / counter and one cell that obeys ``mode``."""
    params = nbformat.v4.new_code_cell('mode = "ok"\nn = 1\nlr = 0.5\nout_dir = "out"\ncounter = ""')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import json"), params,
                                         nbformat.v4.new_code_cell(BODY)])
    nb.metadata["kernelspec"] = {"name": "not-installed-here", "display_name": "x", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def spec(**kw) -> S.GridSpec:
    return S.GridSpec(**{"metrics": "metrics.json", "timeout_s": 120, "retries": 0, **kw})


def counts(counter: Path) -> dict[int, int]:
    lines = counter.read_text().split() if counter.exists() else []
    return {int(n): lines.count(n) for n in set(lines)}


def test_run_ids_are_stable_and_readable() -> None:
    a = S.run_id({"width": 8, "seed": 1}, ["seed", "width"])
    assert a == S.run_id({"seed": 1, "width": 8}, ["width", "seed"])
    assert a.startswith("seed=1_width=8-") and len(a.split("-")[-1]) == 8
    assert S.run_id({"width": 8, "seed": 2}, ["seed", "width"]) != a
    assert S.run_id({"width": 8, "seed": 1, "epochs": 3}, ["seed", "width"]) != a  # hash covers fixed params too
    assert spec(grid={"n": [1, 2], "mode": ["ok"]}, points=[{"n": 1, "mode": "ok"}, {"n": 9}]).expand() == [
        {"n": 1, "mode": "ok"}, {"n": 2, "mode": "ok"}, {"n": 9}]


@pytest.mark.parametrize("point, match", [
    ({"nn": 2}, r"grid point 1 .*unknown parameter 'nn'"),
    ({"n": "2"}, r"grid point 1 .*parameter 'n' must be an int.*got str '2'"),
    ({"n": True}, r"parameter 'n' must be an int"),
    ({"mode": 3}, r"parameter 'mode' must be a str"),
    ({"out_dir": "x"}, r"do not set 'out_dir'"),
])
def test_invalid_point_rejected_before_any_run(tiny_nb: Path, tmp_path: Path, point: dict, match: str) -> None:
    counter = tmp_path / "count.txt"
    with pytest.raises(S.SweepError, match=match):
        S.sweep(tiny_nb, spec(fixed={"counter": str(counter)}, points=[{"n": 1}, point]), tmp_path / "out",
                kernel="python3")
    assert not counter.exists() and not (tmp_path / "out" / "runs").exists()
    assert S.plan(tiny_nb, spec(points=[{"lr": 2}]), tmp_path / "o")[0].params["lr"] == 2  # int ok for float


def test_params_class_ranges_checked(tmp_path: Path) -> None:
    sig = S.read_signature(NB00)
    assert sig.params_class is not None and sig.params_class.__name__ == "QuickstartParams"
    with pytest.raises(S.SweepError, match=r"grid point 1 \(width=0-\w+\).*width"):
        S.plan(NB00, spec(grid={"width": [4, 0]}), tmp_path)
    grid = S.load_grid(SWEEPS / "00_widths.yaml")
    assert len(S.plan(S.find_notebook(grid.notebook, SWEEPS / "00_widths.yaml"), grid, tmp_path)) == 4


def test_grid_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "g.yaml"
    bad.write_text("grid: {n: [1]}\ntimeout: 3\n")
    with pytest.raises(S.SweepError, match=r"unknown key\(s\) \['timeout'\]"):
        S.load_grid(bad)
    bad.write_text("grid: {n: 1}\n")
    with pytest.raises(S.SweepError, match=r"grid\['n'\] must be a non-empty list"):
        S.load_grid(bad)


def test_retries_only_kernel_start_failures() -> None:
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("Kernel died before replying to kernel_info")

    assert S.with_retries(flaky, 2, delay_s=0) == 3
    calls.clear()
    with pytest.raises(RuntimeError):
        S.with_retries(flaky, 1, delay_s=0)
    assert len(calls) == 2

    def cell_error() -> None:
        calls.append(1)
        raise ValueError("boom")

    calls.clear()
    with pytest.raises(ValueError):
        S.with_retries(cell_error, 5, delay_s=0)
    assert len(calls) == 1


def test_flatten() -> None:
    flat = S.flatten({"a": 1, "b": {"c": 2.5, "d": "x"}, "rows": [{"t": 1}, {"t": 2}], "curve": [1, 2]})
    assert flat == {"a": 1, "b.c": 2.5, "b.d": "x", "rows.0.t": 1, "rows.1.t": 2}


def test_sweep_failures_recorded_and_resume_skips_done(tiny_nb: Path, tmp_path: Path) -> None:
    counter, out = tmp_path / "count.txt", tmp_path / "out"
    grid = spec(fixed={"counter": str(counter)}, grid={"n": [1, 2]},
                points=[{"n": 3, "mode": "raise"}, {"n": 5, "mode": "exit"}])
    seen = []
    res = S.sweep(tiny_nb, grid, out, workers=2, kernel="python3", cwd=tmp_path, on_status=seen.append)
    assert len(res.tasks) == 4 and sorted(s["run_id"] for s in seen) == sorted(t.run_id for t in res.tasks)
    by_n = {s["params"]["n"]: s for s in res.statuses.values()}
    assert [by_n[n]["status"] for n in (1, 2, 3, 5)] == ["done", "done", "failed", "failed"]
    assert "ValueError: boom 3" in by_n[3]["error"] and by_n[3]["attempts"] == 1
    assert by_n[5]["attempts"] == 1 and by_n[5]["error"]  # the kernel died mid-run: recorded, not retried
    assert counts(counter) == {1: 1, 2: 1, 3: 1, 5: 1}
    rows = list(csv.DictReader(res.csv.open()))
    assert len(rows) == 4
    row1 = next(r for r in rows if r["n"] == "1")
    assert row1["status"] == "done" and float(row1["metrics.score"]) == 0.5 and row1["metrics.rows.0.a"] == "1"
    assert row1["metrics.nested.n"] == "1" and "metrics.params.n" not in row1 and "metrics.curve" not in row1
    assert (out / row1["notebook"]).is_file() and row1["notebook"].startswith(f"runs/{row1['run_id']}/")
    assert json.loads((out / "runs" / row1["run_id"] / "status.json").read_text())["status"] == "done"
    page = res.index.read_text()
    assert page.count("<tr>") == 5 and f'href="{row1["notebook"]}"' in page and "2 of 4 runs done" in page

    res2 = S.sweep(tiny_nb, grid, out, workers=2, kernel="python3", cwd=tmp_path)
    assert sorted(res2.skipped) == sorted(by_n[n]["run_id"] for n in (1, 2))
    assert counts(counter) == {1: 1, 2: 1, 3: 2, 5: 2}  # done points skipped, failed ones retried
    assert len(list(csv.DictReader(res2.csv.open()))) == 4  # index rebuilt from every status file


def test_timeout_kills_the_run(tiny_nb: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = S.sweep(tiny_nb, spec(points=[{"mode": "sleep"}], timeout_s=6), tmp_path / "out", kernel="python3",
                  cwd=tmp_path)
    (status,) = res.statuses.values()
    assert status["status"] == "timeout" and "6" in status["error"]
    assert time.monotonic() - t0 < 30
    assert list(csv.DictReader(res.csv.open()))[0]["status"] == "timeout"


def test_submitit_local_backend(tiny_nb: Path, tmp_path: Path) -> None:
    pytest.importorskip("submitit", reason="optional dependency (pip install submitit)")
    res = S.sweep(tiny_nb, spec(grid={"n": [4]}), tmp_path / "out", backend="submitit", cluster="local",
                  kernel="python3", cwd=tmp_path)
    (status,) = res.statuses.values()
    assert status["status"] == "done", status["error"]
    (row,) = csv.DictReader(res.csv.open())
    assert float(row["metrics.score"]) == 2.0 and (tmp_path / "out" / "submitit").is_dir()


def test_cli_sweep(tiny_nb: Path, tmp_path: Path) -> None:
    from stia_kit import cli

    grid = tmp_path / "g.yaml"
    grid.write_text("notebook: tiny.ipynb\nfixed:\n  lr: 2\ngrid:\n  n: [3]\npoints:\n")
    assert cli.main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "o"), "--kernel", "python3", "--quiet"]) == 0
    (row,) = csv.DictReader((tmp_path / "o" / "results.csv").open())
    assert row["status"] == "done" and float(row["metrics.score"]) == 6.0
    grid.write_text("notebook: tiny.ipynb\ngrid:\n  n: [1.5]\n")
    assert cli.main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "o2"), "--kernel", "python3"]) == 2


def test_cli_sweep_interrupted_then_resumed(tiny_nb: Path, tmp_path: Path) -> None:
    """SIGINT during a sweep: exit 130, finished points kept; the same command again skips them."""
    import signal
    import subprocess
    import sys

    counter, out = tmp_path / "count.txt", tmp_path / "o"
    grid = tmp_path / "g.yaml"
    grid.write_text(f"notebook: {tiny_nb}\nfixed:\n  mode: nap\n  counter: {counter}\ngrid:\n  n: [1, 2, 3, 4]\n"
                    "timeout_s: 120\nretries: 0\n")
    cmd = [sys.executable, "-m", "stia_kit.cli", "sweep", "--grid", str(grid), "--out", str(out), "--kernel", "python3"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(list(out.glob("runs/*/status.json"))) < 1:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "run the same command again to resume" in stderr
    done_before = {p.parent.name for p in out.glob("runs/*/status.json")
                   if json.loads(p.read_text())["status"] == "done"}
    assert 1 <= len(done_before) < 4
    states = [json.loads(p.read_text())["status"] for p in out.glob("runs/*/status.json")]
    assert set(states) <= {"done", "interrupted"}, states  # the point cut off is not a failure of the notebook
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"{len(done_before)} already done (skipped)" in second.stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted(int(r["n"]) for r in rows) == [1, 2, 3, 4] and all(r["status"] == "done" for r in rows)
    # finished points ran once; the one cut off by the interrupt (if any) ran again, none ran three times
    assert all(counts(counter)[int(r["n"])] == (1 if r["run_id"] in done_before else counts(counter)[int(r["n"])])
               for r in rows) and max(counts(counter).values()) <= 2


@pytest.mark.parametrize("grid_file", sorted(p.name for p in SWEEPS.glob("*.yaml")))
def test_example_grids_are_valid(grid_file: str, tmp_path: Path) -> None:
    """Every shipped grid names a notebook and passes the notebook's own parameter checks."""
    grid = S.load_grid(SWEEPS / grid_file)
    tasks = S.plan(S.find_notebook(grid.notebook, SWEEPS / grid_file), grid, tmp_path)
    assert len(tasks) == len(grid.expand()) >= 3 and len({t.run_id for t in tasks}) == len(tasks)
