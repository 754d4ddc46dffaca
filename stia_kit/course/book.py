"""``stia course build``: the course notebooks 00 -> 07 executed through the sweep and rendered as one HTML book.

Each notebook runs as a one-point :func:`stia_kit.sweep.sweep` in ``<out>/runs/<stem>/`` (a rerun resumes: done
notebooks are not executed again; a failed one is recorded and the others go on), is rendered with nbconvert's
HTMLExporter to ``<out>/<stem>.html`` (images embedded; the plotly JS the notebooks output inline is kept, the
CDN ``<script src>`` tags of require.js / MathJax are removed so the page opens offline), and listed in
``<out>/index.html`` with its status, its run time and the exercises that go with it.
"""
from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from ..fileio import write_text_atomic
from .catalog import EXERCISES, NOTEBOOKS, NOTEBOOKS_DIR, CourseNotebook, Exercise

PageStatus = Literal["ran", "failed", "not run"]
_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', re.I)


@dataclasses.dataclass(frozen=True)
class BookPage:
    """One notebook of the book."""

    file: str  # notebooks/<file>
    html: Path  # <out>/<stem>.html
    status: PageStatus
    seconds: float | None  # run time (sweep status.json, or the given notebook's papermill duration)
    given: bool = False  # executed notebook passed in (not run by this build)
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("ran", "failed", "not run"):
            raise ValueError(f"BookPage.status must be 'ran', 'failed' or 'not run', got {self.status!r}")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError(f"BookPage.seconds must be >= 0 or None, got {self.seconds!r}")


@dataclasses.dataclass(frozen=True)
class Book:
    """What :func:`build_book` wrote."""

    index: Path  # <out>/index.html
    pages: tuple[BookPage, ...]  # in course order

    def __post_init__(self) -> None:
        if not isinstance(self.pages, tuple):
            raise TypeError(f"Book.pages must be a tuple, got {type(self.pages).__name__}")

    @property
    def failed(self) -> list[str]:
        return [p.file for p in self.pages if p.status != "ran"]


def _render(notebook: Path, *, back: str, error: str = "") -> str:
    """The executed notebook as one self-contained HTML page with a back link (and the error on top)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(embed_images=True).from_filename(str(notebook))
    body = _EXTERNAL_SCRIPT.sub("", body)
    banner = f'<p style="font-family:sans-serif;padding:4px 12px"><a href="{back}">&larr; back to the index</a></p>'
    if error:
        banner += (f'<pre class="stia-error" style="color:#b00;border:1px solid #b00;padding:8px;margin:8px 12px;'
                   f'white-space:pre-wrap">This notebook failed: {html.escape(error)}</pre>')
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, body, count=1)


def _error_page(title: str, error: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif"><p><a href="index.html">&larr; back to the index</a></p>'
            f'<h1>{html.escape(title)}</h1><pre class="stia-error" style="color:#b00;white-space:pre-wrap">'
            f'{html.escape(error)}</pre></body></html>\n')


def _papermill_seconds(notebook: Path) -> float | None:
    import nbformat

    try:
        duration = nbformat.read(notebook, as_version=4).metadata.get("papermill", {}).get("duration")
    except Exception:
        return None
    return round(float(duration), 2) if isinstance(duration, (int, float)) else None


def _run_one(nb: CourseNotebook, notebooks_dir: Path, runs: Path, params: Mapping[str, Any], kernel: str,
             timeout_s: float | None) -> tuple[PageStatus, float | None, Path | None, str]:
    """Execute ``nb`` as a one-point sweep; (status, seconds, executed notebook or None, error)."""
    from ..sweep import GridSpec, sweep

    source = notebooks_dir / nb.file
    if not source.is_file():
        return "not run", None, None, f"notebook {source} not found"
    try:
        spec = GridSpec(fixed=dict(params), timeout_s=timeout_s, metrics="")
        result = sweep(source, spec, runs / Path(nb.file).stem, workers=1, kernel=kernel)
    except Exception as e:  # invalid parameters (SweepError), kernel missing ...
        return "failed", None, None, f"{type(e).__name__}: {e}"
    task = result.tasks[0]
    info = json.loads((Path(task.run_dir) / "status.json").read_text())
    executed = Path(task.run_dir) / info["notebook"]
    status: PageStatus = "ran" if info["status"] == "done" else "failed"
    return status, info.get("seconds"), executed if executed.is_file() else None, info.get("error", "")


def _exercise_cell(ex: Exercise, course_dir: Path | None, out: Path) -> str:
    """Link to the copied student notebook + preview, or the hint to run ``stia course assign``."""
    student = course_dir / ex.name / "student" / f"{ex.name}.ipynb" if course_dir is not None else None
    if student is not None and student.is_file():
        dest = out / "exercises" / ex.name
        shutil.copytree(student.parent, dest, dirs_exist_ok=True)
        preview = dest / f"{ex.name}.html"
        write_text_atomic(preview, _render(dest / student.name, back="../../index.html"))
        return (f'<li><a href="exercises/{ex.name}/{ex.name}.html">{html.escape(ex.title)}</a> '
                f'(<a href="exercises/{ex.name}/{ex.name}.ipynb">notebook</a>)</li>')
    return (f"<li>{html.escape(ex.title)}: <code>exercises/{ex.name}.ipynb</code> "
            f"(run <code>stia course assign</code> to make the student notebook)</li>")


def _machine() -> str:
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    return f"{os.cpu_count()} CPUs, torch {torch}"


def build_book(out: str | os.PathLike[str] = "site", *, params: Mapping[str, Mapping[str, Any]] | None = None,
               executed: Mapping[str, str | os.PathLike[str]] | None = None,
               course_dir: str | os.PathLike[str] | None = "course", workers: int = 1, kernel: str = "stia-kit",
               timeout_s: float | None = None, notebooks: Sequence[CourseNotebook] = NOTEBOOKS,
               notebooks_dir: str | os.PathLike[str] = NOTEBOOKS_DIR,
               exercises: Sequence[Exercise] = EXERCISES) -> Book:
    """Execute (unless ``executed`` gives it) and render every course notebook; write ``<out>/index.html``.

    ``params``: notebook file name -> extra parameters (default: the notebook's defaults). ``executed``: file
    name -> an already executed notebook (nothing runs for it; its papermill duration is shown, "given").
    ``course_dir``: ``stia course assign`` output; its student notebooks are copied into ``<out>/exercises/``.
    A failed notebook gets a page with its error; the book is always written (see :attr:`Book.failed`).
    """
    out = Path(out).resolve()
    params = dict(params or {})
    executed = {k: Path(v) for k, v in (executed or {}).items()}
    names = {nb.file for nb in notebooks}
    for key in [*params, *executed]:
        if key not in names:
            raise KeyError(f"build_book: {key!r} is not a course notebook; known: {', '.join(sorted(names))}")
    for key, path in executed.items():
        if not path.is_file():
            raise FileNotFoundError(f"build_book: executed[{key!r}] = {path} does not exist")
    if workers < 1:
        raise ValueError(f"build_book: workers must be >= 1, got {workers}")
    out.mkdir(parents=True, exist_ok=True)
    nb_dir, runs = Path(notebooks_dir), out / "runs"

    def one(nb: CourseNotebook) -> BookPage:
        page = out / f"{Path(nb.file).stem}.html"
        if nb.file in executed:
            status, seconds, path, error, given = "ran", _papermill_seconds(executed[nb.file]), executed[nb.file], "", True
        else:
            status, seconds, path, error = _run_one(nb, nb_dir, runs, params.get(nb.file, {}), kernel, timeout_s)
            given = False
        try:
            text = _render(path, back="index.html", error=error) if path is not None else _error_page(nb.title, error)
        except Exception as e:  # an unreadable notebook: the book goes on
            status, error = "failed", f"rendering failed: {type(e).__name__}: {e}"
            text = _error_page(nb.title, error)
        write_text_atomic(page, text)
        return BookPage(nb.file, page, status, seconds, given, error)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pages = tuple(pool.map(one, notebooks))
    course = Path(course_dir).resolve() if course_dir is not None else None
    rows = []
    for nb, page in zip(notebooks, pages):
        status = html.escape(page.status) + (f': <span class="err">{html.escape(page.error[:300])}</span>'
                                             if page.error else "")
        secs = "given" if page.given else "-"
        if page.seconds is not None:
            secs = f"{page.seconds:.1f} s" + (" (given)" if page.given else "")
        exs = "".join(_exercise_cell(e, course, out) for e in exercises if e.notebook == nb.file)
        rows.append(f'<tr class="{page.status.replace(" ", "-")}"><td><a href="{page.html.name}">'
                    f"{html.escape(Path(nb.file).stem)}: {html.escape(nb.title)}</a></td>"
                    f"<td>{html.escape(nb.teaches)}</td><td>{status}</td><td>{secs}</td>"
                    f"<td><ul>{exs}</ul></td></tr>")
    n_ok = sum(p.status == "ran" for p in pages)
    index = f"""<!doctype html><html><head><meta charset="utf-8"><title>STIA-Kit course</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}} th{{background:#eee}} ul{{margin:0;padding-left:16px}}
.failed td:nth-child(3),.not-run td:nth-child(3),.err{{color:#b00}}</style></head><body>
<h1>STIA-Kit course book</h1>
<p>The course path, in order. {n_ok} of {len(pages)} notebooks ran. Built {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
on {html.escape(_machine())}.</p>
<table id="course"><thead><tr><th>Notebook</th><th>What it teaches</th><th>Status</th><th>Run time</th>
<th>Exercises</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    return Book(write_text_atomic(out / "index.html", index), pages)
