"""The course book (``stia course build``): built from the notebook tests' executed runs, and a failing notebook.

Named ``test_zz_*`` so that pytest runs it after tests/test_notebook_0N.py (files run alphabetically), which
register their executed notebooks in the session fixture ``executed_notebooks``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from stia_kit.course.book import build_book
from stia_kit.course.catalog import NOTEBOOKS, CourseNotebook

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.__errs = [];
addEventListener('error', e => __errs.push('error: ' + (e.message || e.type)));
addEventListener('unhandledrejection', e => __errs.push('rejection: ' + String(e.reason)));
const _ce = console.error; console.error = (...a) => { __errs.push('console: ' + a.join(' ')); _ce(...a); };
addEventListener('load', () => setTimeout(() => {
  const graphs = [...document.querySelectorAll('.js-plotly-plot')].filter(d => d.querySelector('.main-svg')).length;
  const images = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  const m = document.createElement('pre'); m.id = 'stia-probe';
  m.textContent = JSON.stringify({errors: __errs, graphs: graphs, images: images});
  document.body.appendChild(m);
}, 1500));
</script>"""


def _browse(page: Path, tmp: Path) -> dict:
    probe = page.with_name(f"probe_{page.name}")
    probe.write_text(page.read_text().replace("<head>", "<head>\n" + PROBE, 1))
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="stia-probe">(.*?)</pre>', out.stdout, re.S)
    assert found, f"probe marker missing (chromium rc {out.returncode}): {out.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<"))


def test_book_from_the_notebook_tests(executed_notebooks: dict[str, Path], tmp_path: Path) -> None:
    if len(executed_notebooks) < len(NOTEBOOKS):
        pytest.skip(f"run with the notebook tests (tests/test_notebook_0*.py registered "
                    f"{len(executed_notebooks)} of {len(NOTEBOOKS)} executed notebooks)")
    start = time.monotonic()
    book = build_book(tmp_path / "site", executed=executed_notebooks, course_dir=None)
    print(f"build_book over {len(executed_notebooks)} executed notebooks: {time.monotonic() - start:.1f} s")
    assert book.failed == [] and all(p.given for p in book.pages)
    index = book.index.read_text()
    links = re.findall(r'<a href="([^"]+)">', index)
    pages = [l for l in links if re.fullmatch(r"0\d_\w+\.html", l)]
    assert pages == [Path(nb.file).stem + ".html" for nb in NOTEBOOKS]  # the course path in order
    for link in links:
        assert (book.index.parent / link).is_file(), link
    for page in book.pages:
        text = page.html.read_text()
        assert 'href="index.html"' in text and not re.search(r'<script[^>]*src="https?://', text), page.file
    assert "run <code>stia course assign</code>" in index and "given" in index
    q = (book.index.parent / "00_quickstart.html").read_text()
    assert "Plotly.newPlot" in q and "plotly.js v" in q  # figures and the plotly JS itself, inline
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian package `chromium`): the browser check did not run")
    assert _browse(book.index, tmp_path)["errors"] == []
    result = _browse(book.index.parent / "00_quickstart.html", tmp_path)
    assert result["errors"] == [] and result["graphs"] >= 1, result
    result = _browse(book.index.parent / "01_dual_pathway_cdai.html", tmp_path)
    assert result["errors"] == [] and result["images"] >= 1, result


def _tiny(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fail = False\nout_dir = ''")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


def test_failing_notebook_is_recorded_and_rerun_resumes(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny(nbs / "a_ok.ipynb", "print('fine')")
    _tiny(nbs / "b_bad.ipynb", "if fail:\n    raise ValueError('stia-broken-on-purpose')")
    course = (CourseNotebook("a_ok.ipynb", "OK", "nothing"), CourseNotebook("b_bad.ipynb", "Bad", "errors"))
    kw = dict(course_dir=None, kernel="python3", notebooks=course, notebooks_dir=nbs, exercises=())
    book = build_book(tmp_path / "site", params={"b_bad.ipynb": {"fail": True}}, **kw)
    assert [p.status for p in book.pages] == ["ran", "failed"] and book.failed == ["b_bad.ipynb"]
    assert "stia-broken-on-purpose" in book.pages[1].error
    assert "stia-broken-on-purpose" in book.pages[1].html.read_text()
    assert book.pages[0].seconds is not None and book.pages[0].seconds > 0
    index = book.index.read_text()
    assert "stia-broken-on-purpose" in index and "fine" in book.pages[0].html.read_text()
    done = next((tmp_path / "site" / "runs" / "a_ok" / "runs").glob("*/status.json"))
    stamp = done.stat().st_mtime_ns
    again = build_book(tmp_path / "site", params={"b_bad.ipynb": {"fail": False}}, **kw)
    assert [p.status for p in again.pages] == ["ran", "ran"]
    assert done.stat().st_mtime_ns == stamp  # the done notebook was not executed again
    with pytest.raises(KeyError, match="not a course notebook"):
        build_book(tmp_path / "site", params={"zz.ipynb": {}}, **kw)


def test_exercises_copied_or_pointed_to(tmp_path: Path) -> None:
    from stia_kit.course.catalog import exercise

    done = _tiny(tmp_path / "done.ipynb", "print('fine')")
    student = tmp_path / "course" / "01_eca" / "student"
    student.mkdir(parents=True)
    _tiny(student / "01_eca.ipynb", "x = ...")
    (student / "data.txt").write_text("support file")
    nb = CourseNotebook("01_dual_pathway_cdai.ipynb", "STIN", "pathways")
    book = build_book(tmp_path / "site", executed={nb.file: done}, course_dir=tmp_path / "course", notebooks=(nb,),
                      exercises=(exercise("01_eca"), exercise("02_axial_attention"), exercise("04_le_curve_exposure")))
    site = tmp_path / "site"
    assert (site / "exercises" / "01_eca" / "data.txt").read_text() == "support file"
    assert "index.html" in (site / "exercises" / "01_eca" / "01_eca.html").read_text()
    index = book.index.read_text()
    assert 'href="exercises/01_eca/01_eca.html"' in index and 'href="exercises/01_eca/01_eca.ipynb"' in index
    assert "<code>exercises/02_axial_attention.ipynb</code> (run <code>stia course assign</code>" in index
    assert "04_le_curve" not in index  # another notebook's exercise
    for link in re.findall(r'<a href="([^"]+)">', index):
        assert (site / link).is_file(), link
