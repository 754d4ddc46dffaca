"""Batch runs of one notebook over a parameter grid (``stia sweep``): papermill, one run folder per point.

A grid file (YAML)::

    notebook: 00_quickstart.ipynb     # optional (the CLI's NOTEBOOK wins); relative to the grid file, notebooks/
    fixed: {epochs: 3}                # parameters shared by every point
    grid: {width: [4, 8, 16]}         # cartesian product
    points: [{width: 32, epochs: 5}]  # optional explicit points, added to the product
    metrics: metrics.json             # JSON the notebook writes into its out_dir (flattened into results.csv)
    timeout_s: 3600                   # wall-clock limit of one run (kernel killed), null = none
    retries: 2                        # extra attempts after a kernel-start failure (never after a cell error)

Every point is checked against the notebook's ``parameters`` cell (names and literal types) and, when the
cell after it calls ``from_notebook(<ParamsClass>, ...)``, against that class (ranges, model geometry) before
anything runs. Each point runs in ``<OUT>/runs/<run_id>/`` (its ``out_dir`` parameter) in its own
``python -m stia_kit.sweep --one TASK.json`` subprocess (own session, killed with its kernel on timeout) and
ends with an atomic ``status.json``. A rerun skips done points; failed / timed-out ones run again.
``<OUT>/results.csv`` and ``<OUT>/index.html`` are rebuilt from every status file at the end of a sweep.

Backends: ``"process"`` (``workers`` concurrent subprocesses on this machine) and ``"submitit"`` (the same
per-point function sent through ``submitit.AutoExecutor``: ``cluster="slurm"`` on a cluster, ``"local"`` in
the tests; ``pip install submitit``).
"""
from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import hashlib
import html
import importlib
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from .fileio import write_json_atomic, write_text_atomic
from .params import ParameterError, from_mapping, notebook_parameters

REPO_ROOT = Path(__file__).resolve().parents[1]
Backend = Literal["process", "submitit"]
Status = Literal["done", "failed", "timeout", "interrupted"]

#: messages of kernel-start failures (jupyter_client / nbclient / zmq races under parallel launch): retried
KERNEL_START_ERRORS = ("Kernel died before replying to kernel_info", "Kernel didn't respond",
                       "Kernel not responding", "Address already in use", "Kernel failed to start")
#: top-level keys of a metrics JSON that repeat the parameters (not copied into results.csv)
METRICS_SKIP = ("params", "resolved")


class SweepError(ParameterError):
    """A grid file or grid point is invalid (the message names the point and the parameter)."""


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """A parsed grid file."""

    notebook: str = ""  # notebook path ("" = given on the command line)
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # parameters shared by every point
    grid: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)  # name -> values (cartesian)
    points: Sequence[Mapping[str, Any]] = ()  # explicit points, added after the product
    metrics: str = "metrics.json"  # metrics JSON path relative to each run's out_dir ("" = none)
    timeout_s: float | None = None  # wall-clock limit of one run, None = no limit
    retries: int = 2  # extra attempts after kernel-start failures

    def __post_init__(self) -> None:
        if not isinstance(self.fixed, Mapping):
            raise SweepError(f"GridSpec.fixed must be a mapping, got {type(self.fixed).__name__}")
        if not isinstance(self.grid, Mapping):
            raise SweepError(f"GridSpec.grid must be a mapping name -> list, got {type(self.grid).__name__}")
        for name, values in self.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise SweepError(f"GridSpec.grid[{name!r}] must be a non-empty list, got {values!r}")
        if not isinstance(self.points, (list, tuple)) or not all(isinstance(p, Mapping) for p in self.points):
            raise SweepError("GridSpec.points must be a list of mappings")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise SweepError(f"GridSpec.timeout_s must be > 0 or null, got {self.timeout_s!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise SweepError(f"GridSpec.retries must be an int >= 0, got {self.retries!r}")

    def expand(self) -> list[dict[str, Any]]:
        """Every point's full parameters (``fixed`` + the point), product first, duplicates dropped."""
        names = list(self.grid)
        product = [dict(zip(names, combo)) for combo in itertools.product(*(self.grid[n] for n in names))]
        if not names and self.points:
            product = []  # explicit points only (no grid: the product is one empty point, the fixed-only run)
        out, seen = [], set()
        for point in [*product, *self.points]:
            full = {**self.fixed, **point}
            key = json.dumps(full, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(full)
        return out


def load_grid(path: str | os.PathLike[str]) -> GridSpec:
    """Read a grid YAML file (keys of :class:`GridSpec`; unknown keys are errors)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SweepError(f"{path}: a grid file is a mapping (notebook, fixed, grid, points, metrics, timeout_s)")
    known = {f.name for f in dataclasses.fields(GridSpec)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    empty = {"notebook": "", "metrics": "", "fixed": {}, "grid": {}, "points": ()}  # `key:` with no value
    data = {k: (empty[k] if v is None and k in empty else v) for k, v in data.items()}
    return GridSpec(**data)


def run_id(params: Mapping[str, Any], varying: Sequence[str] | None = None) -> str:
    """Stable id: readable ``name=value`` prefix (``varying`` names, else all) + hash of the sorted parameters.

    e.g. ``seed=1_width=8-3fa2c1d0``; the hash covers every parameter, so two points never share an id.
    """
    digest = hashlib.sha1(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()[:8]
    names = sorted(params) if varying is None else sorted(n for n in varying if n in params)
    parts = [f"{n}={params[n]}" for n in names]
    prefix = re.sub(r"[^A-Za-z0-9=.,+-]+", "_", "_".join(parts))[:60].strip("_")
    return f"{prefix}-{digest}" if prefix else digest


# ---------------------------------------------------------------------------------------------- notebook side
@dataclasses.dataclass(frozen=True)
class NotebookSignature:
    """What a notebook accepts: its parameters cell's literal values and (when found) its params class."""

    path: Path  # the notebook file
    defaults: Mapping[str, Any]  # name -> literal value of the parameters cell
    params_class: type | None  # the class passed to from_notebook(...) in a later cell, if importable


def _import_map(sources: Sequence[str]) -> dict[str, str]:
    """Local name -> dotted import path, from the import statements of ``sources``."""
    names: dict[str, str] = {}
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # IPython magics etc.
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _resolve(dotted: str) -> Any:
    """Import ``a.b.C`` (module ``a.b`` attribute ``C``, or module ``a.b.C``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def read_signature(notebook: str | os.PathLike[str]) -> NotebookSignature:
    """Parse ``notebook``: its single ``parameters`` cell and the ``from_notebook(Class, ...)`` call after it."""
    import nbformat

    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise SweepError(f"{path.name}: needs exactly one code cell tagged 'parameters' (found {len(tagged)})")
    i = tagged[0]
    defaults = notebook_parameters(code[i].source)
    cls = None
    for cell in code[i + 1:]:
        m = re.search(r"from_notebook\(\s*([A-Za-z_][\w.]*)\s*,", cell.source)
        if m:
            head, _, rest = m.group(1).partition(".")
            dotted = _import_map([c.source for c in code[:i]]).get(head, head) + (f".{rest}" if rest else "")
            try:
                cls = _resolve(dotted)
            except (ImportError, AttributeError):
                print(f"note: {path.name}: cannot import {dotted}; checking names and types only", file=sys.stderr)
            break
    return NotebookSignature(path, defaults, cls if dataclasses.is_dataclass(cls) else None)


def _same_type(value: Any, default: Any) -> bool:
    """Is ``value`` acceptable where the parameters cell has literal ``default``? (ints pass for floats)"""
    if default is None:
        return value is None or isinstance(value, (bool, int, float, str))
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(value) is type(default)


def validate_points(sig: NotebookSignature, points: Sequence[Mapping[str, Any]],
                    out_dirs: Sequence[str], ids: Sequence[str]) -> None:
    """Raise :class:`SweepError` naming the point and parameter for the first invalid point."""
    if "out_dir" not in sig.defaults:
        raise SweepError(f"{sig.path.name}: its parameters cell has no 'out_dir' (each run needs its own folder)")
    for k, (point, out_dir, rid) in enumerate(zip(points, out_dirs, ids)):
        where = f"grid point {k} ({rid})"
        if "out_dir" in point:
            raise SweepError(f"{where}: do not set 'out_dir' (the sweep gives each run <OUT>/runs/<run_id>)")
        for name, value in point.items():
            if name not in sig.defaults:
                raise SweepError(f"{where}: unknown parameter {name!r} for {sig.path.name}; "
                                 f"valid parameters: {sorted(sig.defaults)}")
            if not _same_type(value, sig.defaults[name]):
                kind = type(sig.defaults[name]).__name__
                raise SweepError(f"{where}: parameter {name!r} must be {'an' if kind == 'int' else 'a'} {kind} "
                                 f"like the notebook's {sig.defaults[name]!r}, got {type(value).__name__} {value!r}")
        if sig.params_class is not None:
            try:
                from_mapping(sig.params_class, {**point, "out_dir": out_dir})
            except (ValueError, TypeError) as e:
                raise SweepError(f"{where}: {e}") from e


def resolve_kernel(name: str) -> str:
    """``name`` if that Jupyter kernel is installed; else this interpreter's ``python3`` kernel, with a note."""
    from jupyter_client.kernelspec import KernelSpecManager

    if name in KernelSpecManager().find_kernel_specs():
        return name
    print(f"note: Jupyter kernel {name!r} is not installed (bash bootstrap.sh setup registers 'stia-kit'); "
          "using 'python3'", file=sys.stderr)
    return "python3"


# --------------------------------------------------------------------------------------------- one grid point
@dataclasses.dataclass(frozen=True)
class PointTask:
    """Everything one run needs (JSON-serialisable: it travels to a subprocess or a SLURM job)."""

    run_id: str  # stable id (folder name under <OUT>/runs)
    notebook: str  # input notebook (absolute path)
    run_dir: str  # the run's folder = its out_dir parameter (absolute)
    params: dict[str, Any]  # the point's parameters, out_dir included
    kernel: str  # Jupyter kernel name (resolved before the sweep)
    cwd: str  # working directory of the kernel
    timeout_s: float | None = None  # wall-clock limit of the whole run (all attempts)
    retries: int = 2  # extra attempts after kernel-start failures
    render_html: bool = False  # also write an HTML rendering of the executed notebook

    @property
    def output(self) -> Path:
        return Path(self.run_dir) / Path(self.notebook).name


def is_kernel_start_error(exc: BaseException) -> bool:
    """A failure to start / reach the kernel (worth retrying), not an error raised by a notebook cell."""
    if type(exc).__name__ == "PapermillExecutionError":
        return False
    text = f"{type(exc).__name__}: {exc}".lower()  # a kernel dying mid-run (DeadKernelError) is not retried
    return any(m.lower() in text for m in KERNEL_START_ERRORS)


def with_retries(fn: Callable[[], Any], retries: int, *, delay_s: float = 1.0) -> int:
    """Call ``fn`` until it succeeds; retry only kernel-start failures (``retries`` times). Returns attempts."""
    for attempt in range(1, retries + 2):
        try:
            fn()
            return attempt
        except Exception as e:
            if attempt > retries or not is_kernel_start_error(e):
                try:
                    e.attempts = attempt  # type: ignore[attr-defined]
                except AttributeError:
                    pass
                raise
            time.sleep(delay_s * attempt)
    raise AssertionError("unreachable")


def _status(task: PointTask, status: Status, seconds: float, attempts: int, error: str = "") -> dict[str, Any]:
    payload = {"run_id": task.run_id, "status": status, "error": error, "seconds": round(seconds, 2),
               "attempts": attempts, "params": task.params, "notebook": task.output.name,
               "html": task.output.with_suffix(".html").name if task.render_html and status == "done" else ""}
    write_json_atomic(Path(task.run_dir) / "status.json", payload)
    return payload


def run_in_process(task: PointTask) -> dict[str, Any]:
    """Execute ``task`` with papermill in this process (the ``--one`` subprocess) and write its status."""
    import papermill as pm

    Path(task.run_dir).mkdir(parents=True, exist_ok=True)
    start = time.monotonic()

    def once() -> None:
        pm.execute_notebook(task.notebook, str(task.output), parameters=task.params, kernel_name=task.kernel,
                            language="python", cwd=task.cwd, progress_bar=False, log_output=False)

    try:
        attempts = with_retries(once, task.retries)
    except Exception as e:
        msg = getattr(e, "ename", None) and f"{e.ename}: {e.evalue}" or f"{type(e).__name__}: {e}"
        return _status(task, "failed", time.monotonic() - start, getattr(e, "attempts", 1), msg.strip()[:2000])
    if task.render_html:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_filename(str(task.output))
        write_text_atomic(task.output.with_suffix(".html"), body)
    return _status(task, "done", time.monotonic() - start, attempts)


_LIVE: set[subprocess.Popen] = set()  # running point subprocesses (killed on Ctrl-C)
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set while an interrupted sweep kills its running points


def _kill(proc: subprocess.Popen) -> None:
    """Kill the point's process, its session and every descendant (jupyter_client starts the kernel in a
    session of its own, so the process group alone would leave it running)."""
    try:
        import psutil  # a pinned transitive dependency of the Jupyter stack

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:
        children = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in children:
        try:
            child.kill()
        except Exception:
            pass
    proc.wait()


def execute_point(task: PointTask) -> dict[str, Any]:
    """Run ``task`` in a ``python -m stia_kit.sweep --one`` subprocess with a wall-clock watchdog.

    The per-point function of both backends. Returns (and writes) the run's ``status.json`` payload.
    """
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "status.json").unlink(missing_ok=True)
    task_file = write_json_atomic(run_dir / "task.json", dataclasses.asdict(task))
    start = time.monotonic()
    with open(run_dir / "log.txt", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stia_kit.sweep", "--one", str(task_file)], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            proc.wait(timeout=task.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _status(task, "timeout", time.monotonic() - start, 1, f"killed after {task.timeout_s} s")
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    status = run_dir / "status.json"
    if status.is_file():
        return json.loads(status.read_text())
    if _STOPPING.is_set():  # killed by the sweep's own Ctrl-C / SIGTERM: not a failure of the notebook
        return _status(task, "interrupted", time.monotonic() - start, 1,
                       "interrupted (Ctrl-C / SIGTERM) while running; the next run of the sweep starts it again")
    tail = (run_dir / "log.txt").read_text(errors="replace")[-1500:]
    return _status(task, "failed", time.monotonic() - start, 1, f"exit code {proc.returncode}: {tail}".strip())


def is_done(run_dir: Path) -> bool:
    """A finished point: status ``done`` and its executed notebook present."""
    try:
        info = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("status") == "done" and (run_dir / info.get("notebook", "")).is_file()


# -------------------------------------------------------------------------------------------------- results
def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Scalars of a JSON value with dotted keys (lists of dicts indexed: ``rows.0.top1``; scalar lists skipped)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, list):
        out = {}
        if all(isinstance(v, dict) for v in obj):
            for i, v in enumerate(obj):
                out.update(flatten(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: obj} if prefix else {}


def collect(out: str | os.PathLike[str], metrics: str = "metrics.json") -> list[dict[str, Any]]:
    """One row per ``<out>/runs/*/status.json``: run_id, status, seconds, attempts, error, notebook, html,
    each parameter, and ``metrics.<dotted key>`` for every scalar of the run's metrics JSON."""
    rows = []
    for status in sorted(Path(out).glob("runs/*/status.json")):
        info = json.loads(status.read_text())
        run_dir = status.parent
        row = {"run_id": info["run_id"], "status": info["status"], "seconds": info["seconds"],
               "attempts": info["attempts"], "error": info.get("error", ""),
               "notebook": f"runs/{run_dir.name}/{info['notebook']}",
               "html": f"runs/{run_dir.name}/{info['html']}" if info.get("html") else ""}
        row.update({k: v for k, v in info["params"].items() if k != "out_dir"})
        mpath = run_dir / metrics if metrics else None
        if mpath is not None and info["status"] == "done" and mpath.is_file():
            data = json.loads(mpath.read_text())
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if k not in METRICS_SKIP}
            row.update({f"metrics.{k}": v for k, v in flatten(data).items()})
        rows.append(row)
    return rows


def write_results(out: str | os.PathLike[str], rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write ``<out>/results.csv`` and ``<out>/index.html`` (atomically); returns both paths."""
    out = Path(out)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = write_text_atomic(out / "results.csv", buf.getvalue())
    n_done = sum(r["status"] == "done" for r in rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c, "")
            if c in ("notebook", "html") and v:
                cells.append(f'<td><a href="{html.escape(str(v))}">{html.escape(Path(str(v)).name)}</a></td>')
            else:
                text = f"{v:.4g}" if isinstance(v, float) else str(v)
                cls = f' class="{v}"' if c == "status" else ""
                cells.append(f"<td{cls} title=\"{html.escape(str(v))}\">{html.escape(text[:120])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>sweep {html.escape(out.name)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px;white-space:nowrap}} th{{background:#eee;position:sticky;top:0}}
.done{{color:#070}} .failed,.timeout{{color:#b00;font-weight:bold}} .interrupted{{color:#a60}}</style></head><body>
<h1>Sweep: {html.escape(out.name)}</h1><p>{n_done} of {len(rows)} runs done. Data: <a href="results.csv">results.csv</a>.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
    return csv_path, write_text_atomic(out / "index.html", page)


# ---------------------------------------------------------------------------------------------------- sweep
@dataclasses.dataclass
class SweepResult:
    """What one ``sweep`` call did."""

    tasks: list[PointTask]  # every point of the grid
    ran: list[str]  # run ids executed by this call
    skipped: list[str]  # run ids already done (resumed)
    statuses: dict[str, dict[str, Any]]  # run id -> status payload of the runs of this call
    csv: Path  # <out>/results.csv
    index: Path  # <out>/index.html
    interrupted: bool = False  # Ctrl-C: launching stopped; rerun the same command to resume

    @property
    def failed(self) -> list[str]:
        """Run ids of this call that failed or timed out (not the ones cut off by an interrupt)."""
        return [k for k, s in self.statuses.items() if s["status"] not in ("done", "interrupted")]


def plan(notebook: str | os.PathLike[str], spec: GridSpec, out: str | os.PathLike[str], *,
         kernel: str = "python3", cwd: str | os.PathLike[str] | None = None,
         render_html: bool = False) -> list[PointTask]:
    """Validate every point of ``spec`` against ``notebook`` and return one task per point (nothing runs)."""
    sig = read_signature(notebook)
    points = spec.expand()
    varying = sorted(set(spec.grid) | {k for p in spec.points for k in p})
    ids = [run_id(p, varying) for p in points]
    out = Path(out).resolve()
    run_dirs = [str(out / "runs" / i) for i in ids]
    validate_points(sig, points, run_dirs, ids)
    return [PointTask(run_id=i, notebook=str(sig.path.resolve()), run_dir=d, params={**p, "out_dir": d},
                      kernel=kernel, cwd=str(Path(cwd or os.getcwd()).resolve()), timeout_s=spec.timeout_s,
                      retries=spec.retries, render_html=render_html) for i, d, p in zip(ids, run_dirs, points)]


def sweep(notebook: str | os.PathLike[str], spec: GridSpec, out: str | os.PathLike[str], *, workers: int = 1,
          backend: Backend = "process", kernel: str = "stia-kit", cwd: str | os.PathLike[str] | None = None,
          render_html: bool = False, cluster: str | None = None, executor_options: Mapping[str, Any] | None = None,
          on_status: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run every not-yet-done point of ``spec`` on ``notebook``; collect ``results.csv`` and ``index.html``.

    ``cluster`` (None = submitit's choice: SLURM when ``sbatch`` is found, else local) / ``executor_options``
    go to ``submitit.AutoExecutor`` (backend ``"submitit"``; e.g.
    ``{"slurm_partition": "gpu", "timeout_min": 120, "gpus_per_node": 1}``). Invalid points raise
    :class:`SweepError` before anything runs; a failed point is recorded and the others go on.
    """
    if workers < 1:
        raise SweepError(f"workers must be >= 1, got {workers}")
    if backend not in ("process", "submitit"):
        raise SweepError(f"backend must be 'process' or 'submitit', got {backend!r}")
    tasks = plan(notebook, spec, out, kernel=resolve_kernel(kernel), cwd=cwd, render_html=render_html)
    out = Path(out).resolve()
    todo = [t for t in tasks if not is_done(Path(t.run_dir))]
    skipped = [t.run_id for t in tasks if t not in todo]
    statuses: dict[str, dict[str, Any]] = {}
    interrupted = False

    def record(s: dict[str, Any]) -> None:
        statuses[s["run_id"]] = s
        if on_status:
            on_status(s)

    try:
        if backend == "process":
            _run_processes(todo, workers, record)
        else:
            _run_submitit(todo, out, workers, cluster, dict(executor_options or {}), record)
    except KeyboardInterrupt:
        interrupted = True
    csv_path, index = write_results(out, collect(out, spec.metrics))
    return SweepResult(tasks, [t.run_id for t in todo if t.run_id in statuses], skipped, statuses, csv_path,
                       index, interrupted)


def _run_processes(todo: list[PointTask], workers: int, record: Callable[[dict[str, Any]], None]) -> None:
    stop = threading.Event()

    def one(task: PointTask) -> None:
        if not stop.is_set():
            record(execute_point(task))

    _STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = [pool.submit(one, t) for t in todo]
    try:
        for f in futures:
            f.result()
    except KeyboardInterrupt:
        stop.set()  # queued points do not start
        _STOPPING.set()
        with _LIVE_LOCK:
            live = list(_LIVE)
        for proc in live:
            _kill(proc)  # running points end without a done status: the rerun does them again
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_submitit(todo: list[PointTask], out: Path, workers: int, cluster: str | None, options: dict[str, Any],
                  record: Callable[[dict[str, Any]], None]) -> None:
    try:
        import submitit
    except ImportError as e:
        raise SweepError("backend 'submitit' needs submitit: pip install submitit "
                         "(or pip install 'stia-kit[cluster]')") from e
    if not todo:
        return
    executor = submitit.AutoExecutor(folder=str(out / "submitit" / "%j"), cluster=cluster)
    timeouts = [t.timeout_s for t in todo if t.timeout_s]
    defaults: dict[str, Any] = {"slurm_array_parallelism": workers, "name": "stia-sweep"}
    if timeouts:  # the job outlives the run's own watchdog by a margin
        defaults["timeout_min"] = int(max(timeouts) // 60) + 5
    if executor.cluster != "slurm":
        defaults.pop("slurm_array_parallelism")
    executor.update_parameters(**{**defaults, **options})
    jobs = executor.map_array(execute_point, todo)
    try:
        for task, job in zip(todo, jobs):
            try:
                record(job.result())
            except Exception as e:  # the job itself failed (node lost, out of time, pickling...)
                record(_status(task, "failed", 0.0, 1, f"submitit job {job.job_id}: {type(e).__name__}: {e}"[:2000]))
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        raise


def find_notebook(name: str, grid_path: str | os.PathLike[str] | None = None) -> Path:
    """``name`` as given, else relative to the grid file's folder, its parent, or the repository's notebooks/."""
    candidates = [Path(name)]
    if grid_path is not None:
        g = Path(grid_path).resolve().parent
        candidates += [g / name, g.parent / name]
    candidates.append(REPO_ROOT / "notebooks" / name)
    for c in candidates:
        if c.is_file():
            return c
    raise SweepError(f"notebook {name!r} not found (looked in: {', '.join(str(c.parent) for c in candidates)})")


def _main_one(argv: Sequence[str] | None = None) -> int:
    """``python -m stia_kit.sweep --one TASK.json``: the subprocess of one point."""
    parser = argparse.ArgumentParser(prog="python -m stia_kit.sweep")
    parser.add_argument("--one", required=True, help="task.json written by execute_point")
    args = parser.parse_args(argv)
    info = json.loads(Path(args.one).read_text())
    status = run_in_process(PointTask(**info))
    return 0 if status["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(_main_one())
