"""`stia course assign`: otter student notebooks + autograder zips, stable layout, no leaks (issue 12)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("otter", reason="otter-grader is not installed (the `course` extra)")

from stia_kit.course import assign as assign_mod  # noqa: E402
from stia_kit.course.assign import Assigned, assign, autograder_zip, leaks  # noqa: E402
from stia_kit.course.catalog import EXERCISES, EXERCISES_DIR  # noqa: E402

EXISTING = [ex.name for ex in EXERCISES if (EXERCISES_DIR / f"{ex.name}.ipynb").is_file()]


def build_course(base: Path) -> tuple[Path, list[Assigned]]:
    """Assign every existing exercise into ``base/course`` once per session (shared with the grade tests)."""
    course = base / "course"
    done = [assign_mod.Assigned(n, course / n / "student" / f"{n}.ipynb", course / n / "autograder" / "autograder.zip",
                                course / n / "autograder" / f"{n}.ipynb") for n in EXISTING]
    if not all(a.autograder_zip.is_file() and a.student.is_file() for a in done):
        t0 = time.monotonic()
        done = assign(course)
        print(f"assigned {len(done)} exercises in {time.monotonic() - t0:.1f} s")
    return course, done


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Assigned]]:
    if not EXISTING:
        pytest.skip(f"no exercise master notebooks in {EXERCISES_DIR} yet")
    return build_course(tmp_path_factory.getbasetemp())


def test_assign_layout_and_no_leaks(course: tuple[Path, list[Assigned]]) -> None:
    course_dir, done = course
    assert [a.name for a in done] == EXISTING
    for a in done:
        root = course_dir / a.name
        assert a.student == root / "student" / f"{a.name}.ipynb" and a.student.is_file()
        assert a.autograder_zip == root / "autograder" / "autograder.zip" and a.autograder_zip.is_file()
        assert a.master.is_file()
        assert not list((root / "autograder").glob("*-autograder_*.zip")), "the timestamped zip must be renamed"
        assert autograder_zip(course_dir, a.name) == a.autograder_zip
        master = EXERCISES_DIR / f"{a.name}.ipynb"
        assert leaks(master, a.student) == [], f"{a.name}: student notebook leaks"
        # the check can fail: the master itself holds every secret line, and the exercise has secrets
        assert leaks(master, master), f"{a.name}: no solution / hidden lines found in the master"
        student = json.loads(a.student.read_text())
        assert any("grader.check" in "".join(c["source"]) for c in student["cells"])
    assert not [p for p in course_dir.iterdir() if p.name.startswith(".")], "temporary build folders left"


def test_reassign_replaces_atomically(course: tuple[Path, list[Assigned]], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    name = EXISTING[0]
    out = tmp_path / "c"
    (out / name / "stale").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # a relative --out (the CLI default "course") is relative to here, not exercises/
    (a,) = assign("c", [name])
    assert a.student.resolve().is_relative_to(out.resolve())
    assert not (out / name / "stale").exists() and a.autograder_zip.is_file()
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_leaks_detects_a_leak(tmp_path: Path) -> None:
    import nbformat

    master = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell("# HIDDEN\nassert secret_value == 42"),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_code_cell("def f(x):\n    # BEGIN SOLUTION\n    return x * 17\n    # END SOLUTION")])
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(x):\n    ...")])
    leaky = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(x):\n    return x * 17")],
                                     metadata={"otter": {"tests": "assert secret_value == 42"}})
    assert leaks(master, clean) == []
    assert leaks(master, leaky) == ["assert secret_value == 42", "return x * 17"]


def test_unknown_name_and_missing_master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError, match="unknown exercise 'nope'.*known: 01_eca"):
        assign(tmp_path, ["nope"])
    with pytest.raises(KeyError, match="unknown exercise"):
        autograder_zip(tmp_path, "nope")
    with pytest.raises(FileNotFoundError, match="stia course assign --out"):
        autograder_zip(tmp_path, EXERCISES[0].name)
    monkeypatch.setattr(assign_mod, "EXERCISES_DIR", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing master notebook"):
        assign(tmp_path, [EXERCISES[0].name])
    with pytest.raises(FileNotFoundError, match="no exercise master notebooks"):
        assign(tmp_path)
