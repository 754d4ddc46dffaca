"""`stia grade`: otter grading, isolated and time-limited per submission, feedback and scores (issue 12)."""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("otter", reason="otter-grader is not installed (the `course` extra)")

import nbformat  # noqa: E402

from stia_kit.course.assign import Assigned, assign  # noqa: E402
from stia_kit.course.catalog import EXERCISES, EXERCISES_DIR  # noqa: E402
from stia_kit.course.grade import grade  # noqa: E402

DATA = Path(__file__).parent / "data" / "submissions"
EXISTING = [ex.name for ex in EXERCISES if (EXERCISES_DIR / f"{ex.name}.ipynb").is_file()]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Assigned]]:
    """Every existing exercise assigned once (reused when test_course_assign built it in this session)."""
    if not EXISTING:
        pytest.skip(f"no exercise master notebooks in {EXERCISES_DIR} yet")
    course = tmp_path_factory.getbasetemp() / "course"
    done = [Assigned(n, course / n / "student" / f"{n}.ipynb", course / n / "autograder" / "autograder.zip",
                     course / n / "autograder" / f"{n}.ipynb") for n in EXISTING]
    if not all(a.autograder_zip.is_file() and a.student.is_file() for a in done):
        done = assign(course)
    return course, done


@pytest.mark.parametrize("name", EXISTING)
def test_reference_full_and_student_zero(course: tuple[Path, list[Assigned]], tmp_path: Path, name: str) -> None:
    course_dir, done = course
    a = next(x for x in done if x.name == name)
    t0 = time.monotonic()
    rep = grade([a.master, a.student], name, course_dir=course_dir, out=tmp_path / "g", workers=2)
    print(f"{name}: graded 2 in {time.monotonic() - t0:.1f} s "
          f"({', '.join(f'{r.stem} {r.seconds:.1f} s' for r in rep.rows)})")
    ref, stu = rep.rows
    assert ref.status == "ok" and ref.max_score > 0 and ref.score == ref.max_score, ref
    assert stu.status == "ok" and stu.score == 0 and stu.max_score == ref.max_score, stu
    assert ref.reason == "" and stu.reason.startswith("no test passed"), (ref.reason, stu.reason)
    assert all(q.score == 0 for q in stu.questions) and len(stu.questions) == len(ref.questions)
    rows = list(csv.DictReader((tmp_path / "g" / "scores.csv").open()))
    assert [r["stem"] for r in rows] == [ref.stem, stu.stem] and ref.stem != stu.stem  # same file name twice
    saved = json.loads((tmp_path / "g" / f"{ref.stem}.json").read_text())
    assert saved["score"] == ref.score and saved["status"] == "ok" and set(saved["questions"])
    md = (tmp_path / "g" / f"{stu.stem}.md").read_text()
    assert "Public test output" in md
    # hidden test source never reaches the feedback
    master = json.loads((EXERCISES_DIR / f"{name}.ipynb").read_text())
    sources = ["".join(c["source"]) for c in master["cells"]]
    public = "\n".join(s for s in sources if not s.startswith("# HIDDEN"))
    hidden = [line.strip() for s in sources if s.startswith("# HIDDEN") for line in s.splitlines()[1:]]
    assert hidden, f"{name} has no hidden tests"
    for line in hidden:
        if len(line) > 20 and line not in public:
            assert line not in md, f"hidden test line in the feedback: {line}"


def _answers_replaced(master: Path, student: Path, dst: Path, code: str) -> Path:
    """The master notebook with every answer cell (where master and student differ) replaced by ``code``:
    a learner whose own code loops, exits, raises, deletes files or prints garbage."""
    nb = nbformat.read(master, as_version=4)
    stu = nbformat.read(student, as_version=4)
    replaced = 0
    for cell, s in zip(nb.cells, stu.cells):
        if cell.cell_type == "code" and cell.source != s.source and "grader.check" not in s.source:
            cell.source = code
            replaced += 1
    assert replaced, f"{master.name}: no answer cells found"
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


BROKEN = {
    "loop": "while True:\n    pass",
    "osexit": "import os\nos._exit(3)",
    "rmtree": ("import os, shutil\nhere = os.getcwd()\nparent = os.path.dirname(here)\n"
               "shutil.rmtree(here, ignore_errors=True)\nshutil.rmtree(parent, ignore_errors=True)"),
    "sysexit": "import sys\nsys.exit(1)",
    "raises": "raise RuntimeError('learner bug')",
    "garbage": "for _ in range(20):\n    print('x' * 1_000_000)",
}


def test_broken_submissions_do_not_affect_the_batch(course: tuple[Path, list[Assigned]], tmp_path: Path) -> None:
    course_dir, done = course
    a = done[0]
    subs = [_answers_replaced(a.master, a.student, tmp_path / "in" / f"{k}.ipynb", code)
            for k, code in BROKEN.items()]
    (tmp_path / "in" / "x").mkdir()
    (tmp_path / "in" / "y").mkdir()
    subs += [shutil.copy(DATA / "plain_text.ipynb", tmp_path / "in" / "x" / "sub.ipynb"),
             shutil.copy(DATA / "truncated.ipynb", tmp_path / "in" / "y" / "sub.ipynb"),
             tmp_path / "in" / "missing.ipynb"]
    good = shutil.copy(a.master, tmp_path / "in" / "good.ipynb")
    subs.append(Path(good))
    before = sorted(p.relative_to(course_dir) for p in course_dir.rglob("*"))
    t0 = time.monotonic()
    rep = grade(subs, a.name, course_dir=course_dir, out=tmp_path / "g", timeout_s=45, workers=2)
    print(f"broken batch of {len(subs)}: {time.monotonic() - t0:.1f} s "
          f"({', '.join(f'{r.stem} {r.seconds:.1f} s' for r in rep.rows)})")
    r = {row.stem: row for row in rep.rows}
    assert list(r) == ["loop", "osexit", "rmtree", "sysexit", "raises", "garbage", "sub", "sub-2", "missing", "good"]
    full = r["good"].max_score
    assert r["good"].status == "ok" and r["good"].score == full > 0
    assert (r["loop"].status, r["loop"].score, r["loop"].reason) == ("timeout", 0, "time limit of 45 s exceeded")
    assert r["osexit"].status == "error" and r["osexit"].score == 0 and "Kernel died" in r["osexit"].reason
    assert r["rmtree"].status == "error" and r["rmtree"].score == 0 and "No such file" in r["rmtree"].reason
    # otter runs every cell (errors allowed): these answers are never defined, so every test fails
    for k in ("sysexit", "raises", "garbage"):
        assert r[k].status == "ok" and r[k].score == 0 and r[k].reason.startswith("no test passed"), r[k]
        assert "Error" in r[k].reason, r[k].reason  # the first error the public tests raised
    for k in ("sub", "sub-2", "missing"):
        assert r[k].status == "invalid" and r[k].score == 0 and r[k].reason.startswith("not a notebook: "), r[k]
    assert "NotJSONError" in r["sub"].reason and "NotJSONError" in r["sub-2"].reason
    assert all(row.max_score == full for row in rep.rows)
    assert sorted(p.relative_to(course_dir) for p in course_dir.rglob("*")) == before
    assert all(p.is_file() for p in rep.paths) and len(rep.paths) == 1 + 2 * len(subs)
    assert (tmp_path / "g" / "scores.csv").stat().st_size < 10_000
    assert all(p.stat().st_size < 50_000 for p in rep.paths)
    import psutil

    from stia_kit.course.grade import TOKEN_ENV

    left = []
    for proc in psutil.process_iter():
        try:
            if TOKEN_ENV in proc.environ():
                left.append(proc)
        except psutil.Error:
            continue
    assert not left, f"grading processes left running (kernels not killed): {left}"


def test_learner_self_check_passes_with_the_solution(course: tuple[Path, list[Assigned]], tmp_path: Path) -> None:
    from nbclient import NotebookClient

    _, done = course
    a = done[0]
    stu = nbformat.read(a.student, as_version=4)
    ref = nbformat.read(a.master, as_version=4)
    assert len(stu.cells) == len(ref.cells), "student and reference notebooks differ in cell layout"
    for s, r in zip(stu.cells, ref.cells):
        if s.cell_type == "code" and s.source != r.source and "grader.check" not in s.source:
            s.source = r.source  # the learner fills the solution in
    work = tmp_path / "student"
    shutil.copytree(a.student.parent, work)
    nbformat.write(stu, work / a.student.name)
    t0 = time.monotonic()
    NotebookClient(stu, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(work)}}).execute()
    print(f"self-check notebook executed in {time.monotonic() - t0:.1f} s")
    checks = [c for c in stu.cells if c.cell_type == "code" and c.source.strip().startswith("grader.check(")]
    assert checks, "no grader.check cells in the student notebook"
    first = checks[0]
    text = json.dumps(first.outputs)
    assert "passed" in text and "failed" not in text.lower(), text[:2000]


def test_cli_grade_and_course_commands(course: tuple[Path, list[Assigned]], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`stia grade` writes the same files (a non-notebook costs no otter run); `stia course` is registered."""
    from stia_kit import cli

    course_dir, done = course
    bad = tmp_path / "homework.ipynb"
    bad.write_text("not json")
    assert cli.main(["grade", str(bad), "--assignment", done[0].name, "--course-dir", str(course_dir),
                     "--out", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "homework" in out and "invalid" in out and "not a notebook" in out
    assert json.loads((tmp_path / "g" / "homework.json").read_text())["score"] == 0
    with pytest.raises(SystemExit):
        cli.main(["grade", str(bad), "--assignment", "99_nope"])
    with pytest.raises(SystemExit, match="NOTEBOOK:NAME=VALUE"):
        cli.main(["course", "build", "--out", str(tmp_path / "site"), "-p", "epochs=3"])
