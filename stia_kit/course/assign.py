"""``stia course assign``: otter-grader student notebooks and autograder zips for the course exercises.

For every catalogue exercise (``stia_kit.course.catalog.EXERCISES``) with a master ``exercises/<name>.ipynb``,
``python -m otter assign`` (run as a subprocess with the current interpreter) builds the stable layout::

    <out>/<name>/student/<name>.ipynb          the learner's notebook (solutions and hidden tests stripped)
    <out>/<name>/autograder/autograder.zip     otter's timestamped zip, renamed
    <out>/<name>/autograder/<name>.ipynb       the master copy otter keeps beside it (the reference solution)

Each exercise is built in a temporary folder beside ``<out>/<name>`` and renamed into place only after the
build and the leak check passed, so ``<out>/<name>`` is either the previous complete build or the new one.
Only the standard library and nbformat are imported here; otter is needed only at run time (a subprocess).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from stia_kit.course.catalog import EXERCISES, EXERCISES_DIR, exercise

ZIP_NAME = "autograder.zip"
ASSIGN_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Assigned:
    """One assigned exercise: its student notebook, autograder zip and master (reference) copy."""

    name: str
    student: Path
    autograder_zip: Path
    master: Path

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Assigned.name must be a non-empty str, got {self.name!r}")
        for field in ("student", "autograder_zip", "master"):
            value = getattr(self, field)
            if not isinstance(value, Path):
                raise TypeError(f"Assigned.{field} must be a pathlib.Path, got {type(value).__name__}")


def master_path(name: str) -> Path:
    """``exercises/<name>.ipynb`` for the catalogue exercise ``name`` (KeyError for an unknown name)."""
    exercise(name)
    return EXERCISES_DIR / f"{name}.ipynb"


def autograder_zip(course_dir: str | os.PathLike[str], name: str) -> Path:
    """The autograder zip of exercise ``name`` in ``course_dir``.

    Raises KeyError for a name not in the catalogue and FileNotFoundError (naming the command that builds it)
    when the zip is absent.
    """
    exercise(name)
    path = Path(course_dir) / name / "autograder" / ZIP_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no autograder zip for exercise {name!r} at {path}; build it with "
                                f"`stia course assign --out {course_dir} {name}`")
    return path


# ----------------------------------------------------------------------------------------------- leak check
def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def secret_lines(master: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(secret, public) stripped code lines of a master notebook (format v1).

    secret: the lines of hidden test cells (first line ``# HIDDEN``, inside ``# BEGIN TESTS`` / ``# END TESTS``)
    and the lines between ``# BEGIN SOLUTION`` / ``# END SOLUTION`` comments in code cells. public: every
    other line of the master (prompts, public tests, scaffolding), so a line that is also public is no leak.
    """
    secret: list[str] = []
    public: set[str] = set()
    in_tests = False
    for cell in master.get("cells", []):
        text = _source(cell)
        kind = cell.get("cell_type")
        if kind == "raw":
            head = _first_line(text).upper()
            if head == "# BEGIN TESTS":
                in_tests = True
            elif head == "# END TESTS":
                in_tests = False
            continue
        if kind != "code":
            public.update(line.strip() for line in text.splitlines())
            continue
        if in_tests and _first_line(text).upper() == "# HIDDEN":
            secret.extend(line.strip() for line in text.splitlines()[1:])
            continue
        in_solution = False
        for line in text.splitlines():
            marker = line.strip().upper()
            if marker == "# BEGIN SOLUTION":
                in_solution = True
            elif marker == "# END SOLUTION":
                in_solution = False
            elif in_solution:
                secret.append(line.strip())
            else:
                public.add(line.strip())
    return secret, public


def _strings(obj: Any) -> list[str]:
    """Every string inside a JSON value (cell sources, outputs, metadata), decoded."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def _load(nb: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(nb, dict):
        return nb
    path = Path(nb)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read notebook {path}: {err}") from err


def leaks(master: str | os.PathLike[str] | dict[str, Any],
          student: str | os.PathLike[str] | dict[str, Any]) -> list[str]:
    """The hidden-test and solution lines of ``master`` that appear in ``student`` (empty: no leak).

    Lines shorter than 4 characters, comments and lines that also appear (as text) in the public part of the
    master, e.g. quoted in a prompt, are not counted (``)``, ``...`` or ``import torch`` are no leak). The
    student notebook is searched in its decoded JSON strings (sources, outputs and metadata, where otter
    stores the public tests).
    """
    secret, public_lines = secret_lines(_load(master))
    public = "\n".join(public_lines)
    haystack = "\n".join(_strings(_load(student)))
    found: list[str] = []
    for line in secret:
        if len(line) < 4 or line.startswith("#") or line in found or line in public:
            continue
        if line in haystack:
            found.append(line)
    return found


# --------------------------------------------------------------------------------------------------- assign
def _tail(text: str, n: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _assign_one(name: str, out: Path, run_tests: bool) -> Assigned:
    master = master_path(name)
    if not master.is_file():
        raise FileNotFoundError(f"exercise {name!r}: master notebook {master} is missing (it is generated by "
                                f"exercises/src/build_{name}.py)")
    out = out.resolve()  # otter runs in the master's folder: a relative out would land under exercises/
    out.mkdir(parents=True, exist_ok=True)
    final = out / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out))
    try:
        dist = tmp / "dist"
        cmd = [sys.executable, "-m", "otter", "assign", str(master), str(dist)]
        if not run_tests:
            cmd.append("--no-run-tests")
        # cwd = the master's folder: otter resolves files named in the assignment config relative to it
        r = subprocess.run(cmd, cwd=master.parent, capture_output=True, text=True, timeout=ASSIGN_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"`otter assign` failed for exercise {name!r} (exit {r.returncode}):\n"
                               f"{_tail(r.stderr or r.stdout)}")
        student = dist / "student" / f"{name}.ipynb"
        if not student.is_file():
            raise RuntimeError(f"`otter assign` for {name!r} wrote no student notebook {student}; found: "
                               f"{sorted(str(p.relative_to(dist)) for p in dist.rglob('*'))}")
        zips = sorted((dist / "autograder").glob("*.zip"))
        if len(zips) != 1:
            raise RuntimeError(f"`otter assign` for {name!r}: expected one zip in {dist / 'autograder'}, "
                               f"found {[z.name for z in zips]}")
        zips[0].rename(dist / "autograder" / ZIP_NAME)
        found = leaks(master, student)
        if found:
            raise RuntimeError(f"exercise {name!r}: the student notebook {student} leaks hidden test / solution "
                               f"lines: {found[:5]}")
        old: Path | None = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=out))
            final.rename(old / name)
        dist.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Assigned(name=name, student=final / "student" / f"{name}.ipynb",
                    autograder_zip=final / "autograder" / ZIP_NAME, master=final / "autograder" / f"{name}.ipynb")


def assign(out: str | os.PathLike[str] = "course", names: Sequence[str] | None = None, *,
           run_tests: bool = False) -> list[Assigned]:
    """Build ``<out>/<name>/student/`` and ``<out>/<name>/autograder/autograder.zip`` per exercise.

    ``names=None`` assigns every catalogue exercise whose master exists and raises FileNotFoundError when none
    does; explicitly named exercises must exist (KeyError for an unknown name, FileNotFoundError for a missing
    master), checked for all names before anything is built. ``run_tests`` lets otter run the master's tests.
    """
    out = Path(out)
    if names is None:
        todo = [ex.name for ex in EXERCISES if master_path(ex.name).is_file()]
        if not todo:
            raise FileNotFoundError(f"no exercise master notebooks in {EXERCISES_DIR} (expected "
                                    f"{', '.join(ex.name + '.ipynb' for ex in EXERCISES)})")
    else:
        if isinstance(names, str):
            raise TypeError(f"names must be a sequence of exercise names, got the str {names!r}")
        todo = list(dict.fromkeys(names))
        missing = [n for n in todo if not master_path(n).is_file()]
        if missing:
            raise FileNotFoundError(f"missing master notebook(s): "
                                    f"{', '.join(str(master_path(n)) for n in missing)}")
    return [_assign_one(name, out, run_tests) for name in todo]
