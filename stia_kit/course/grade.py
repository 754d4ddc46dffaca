"""``stia grade``: grade learner submissions of one exercise with otter, each isolated and time-limited.

Every submission is copied into its own fresh temporary folder (``<tmp>/work/sub.ipynb`` with the autograder
zip beside it; otter's own temporary folders are made under ``<tmp>/tmp`` via ``TMPDIR``), validated as a
notebook (nbformat read + validate; an invalid one scores 0 without running), then graded by
``python -m otter run`` in its own subprocess and session. On the time limit the whole process tree is killed:
the otter process group and every process carrying this submission's ``STIA_GRADE_TOKEN`` environment
variable (the Jupyter kernel runs in a session of its own). A submission that exits, raises, deletes files or
floods its output only affects its own temporary folder: it scores 0 with the reason and the batch goes on.

Outputs (all written atomically): ``<out>/<stem>.json`` per submission, ``<out>/<stem>.md`` feedback (public
test output trimmed, hidden tests only as passed / failed) and ``<out>/scores.csv`` (one row per submission).
Only the standard library, nbformat, psutil and PyYAML are imported; otter is run as a subprocess.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from stia_kit.course.assign import autograder_zip, assign, ZIP_NAME
from stia_kit.course.catalog import exercise
from stia_kit.fileio import write_json_atomic, write_text_atomic

STATUSES = ("ok", "error", "timeout", "invalid")
TAIL_BYTES = 64_000          # at most this much of a submission's captured stderr / stdout is read back
REASON_LINES = 15            # the reason of an error: the last lines of stderr
FEEDBACK_CHARS = 3_000       # public-test failure output per question in the markdown feedback
TOKEN_ENV = "STIA_GRADE_TOKEN"


@dataclass(frozen=True)
class QuestionScore:
    """One question of one submission: score, max_score and per-test-case results.

    ``public`` / ``hidden``: pass flags of the question's public / hidden test cases in master order (empty
    when unknown, e.g. the submission did not run). ``public_output``: otter's public-test output (no hidden
    test source).
    """

    name: str
    score: float
    max_score: float
    public: tuple[bool, ...] = ()
    hidden: tuple[bool, ...] = ()
    public_output: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("QuestionScore.name must be non-empty")
        if self.max_score < 0 or not (0 <= self.score <= self.max_score + 1e-9):
            raise ValueError(f"QuestionScore {self.name!r}: score must lie in [0, max_score={self.max_score}], "
                             f"got {self.score}")


@dataclass(frozen=True)
class GradeRow:
    """The result of one submission (``status`` one of ok / error / timeout / invalid)."""

    submission: str
    stem: str
    score: float
    max_score: float
    status: str
    reason: str
    seconds: float
    questions: tuple[QuestionScore, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"GradeRow.status must be one of {STATUSES}, got {self.status!r}")
        if not self.stem:
            raise ValueError("GradeRow.stem must be non-empty")
        if self.max_score < 0 or not (0 <= self.score <= self.max_score + 1e-9):
            raise ValueError(f"GradeRow {self.stem!r}: score must lie in [0, max_score={self.max_score}], "
                             f"got {self.score}")
        if self.seconds < 0:
            raise ValueError(f"GradeRow.seconds must be >= 0, got {self.seconds}")

    def to_json(self) -> dict[str, Any]:
        return {"submission": self.submission, "stem": self.stem, "score": self.score,
                "max_score": self.max_score, "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 3),
                "questions": {q.name: {"score": q.score, "max_score": q.max_score,
                                       "public_passed": list(q.public), "hidden_passed": list(q.hidden)}
                              for q in self.questions}}


@dataclass(frozen=True)
class GradeReport:
    """All rows of one ``grade`` call and the files it wrote."""

    assignment: str
    rows: tuple[GradeRow, ...]
    csv_path: Path
    json_paths: tuple[Path, ...]
    feedback_paths: tuple[Path, ...]
    paths: tuple[Path, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (len(self.rows) == len(self.json_paths) == len(self.feedback_paths)):
            raise ValueError(f"GradeReport: rows ({len(self.rows)}), json_paths ({len(self.json_paths)}) and "
                             f"feedback_paths ({len(self.feedback_paths)}) must have the same length")
        if not self.paths:
            object.__setattr__(self, "paths", (self.csv_path, *self.json_paths, *self.feedback_paths))

    def row(self, stem: str) -> GradeRow:
        for r in self.rows:
            if r.stem == stem:
                return r
        raise KeyError(f"no submission with stem {stem!r}; stems: {[r.stem for r in self.rows]}")


# ------------------------------------------------------------------------------------------- master facts
@dataclass(frozen=True)
class _Question:
    name: str
    points: float
    hidden: tuple[bool, ...]  # per test case, in the order otter numbers them (1..n)


def _questions(zip_path: Path) -> list[_Question]:
    """The questions of an autograder zip (its ``tests/<q>.py`` OK-format files): points and hidden flags."""
    import ast
    import zipfile

    out: list[_Question] = []
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if re.fullmatch(r"tests/[^/]+\.py", n))
        for n in names:
            tree = ast.parse(zf.read(n).decode("utf-8"), filename=n)
            spec: Any = None
            for node in tree.body:
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "test"):
                    spec = ast.literal_eval(node.value)
            if not isinstance(spec, dict):
                raise ValueError(f"{zip_path}: {n} has no literal `test = {{...}}` dict (not an otter test file)")
            cases = [c for suite in spec.get("suites", []) for c in suite.get("cases", [])]
            pts = spec.get("points")
            total = float(sum(pts)) if isinstance(pts, list) else float(pts if pts is not None else 1.0)
            out.append(_Question(str(spec.get("name", Path(n).stem)), total,
                                 tuple(bool(c.get("hidden", False)) for c in cases)))
    if not out:
        raise ValueError(f"{zip_path} holds no tests/*.py: not an otter autograder zip")
    return out


# ----------------------------------------------------------------------------------------- one submission
def _validate(path: Path) -> str | None:
    """None for a valid notebook, else the reason."""
    import nbformat

    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - any failure to read is the learner's notebook being broken
        msg = str(err).strip().splitlines()
        return f"not a notebook: {type(err).__name__}: {msg[0] if msg else ''}"[:500]
    return None


def _tail_file(path: Path, lines: int = REASON_LINES) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, io.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = "\n".join(line[:500] for line in data.strip().splitlines()[-lines:])
    return text


def _kill_tree(proc: subprocess.Popen[bytes], token: str) -> None:
    """Kill otter's process group, its descendants and every process carrying ``token`` in its environment."""
    import psutil

    victims: dict[int, psutil.Process] = {}
    try:
        parent = psutil.Process(proc.pid)
        victims[parent.pid] = parent
        for child in parent.children(recursive=True):
            victims[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get(TOKEN_ENV) == token:
                victims[p.pid] = p
        except (psutil.Error, OSError):
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in victims.values():
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(victims.values()), timeout=5)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


_CASE = re.compile(r"^\s*(\S+) - (\d+) result:\s*\n\s*(\S+)", re.MULTILINE)


def _case_flags(output: str, qname: str) -> dict[int, bool]:
    flags: dict[int, bool] = {}
    for m in _CASE.finditer(output or ""):
        if m.group(1) == qname:
            flags[int(m.group(2))] = "passed" in m.group(3) or m.group(3).startswith("\u2705")
    return flags


def _public_section(public_output: str, qname: str) -> str:
    """The ``<qname> results:`` part of otter's combined public-test output."""
    parts = re.split(r"^(?=\S+ results:)", public_output or "", flags=re.MULTILINE)
    for part in parts:
        if part.startswith(f"{qname} results:"):
            return part.strip()
    return ""


def _parse_results(results: dict[str, Any], questions: list[_Question]) -> tuple[QuestionScore, ...]:
    tests = results.get("tests")
    if not isinstance(tests, list):
        raise ValueError("results.json has no 'tests' list")
    public_out = "\n".join(str(t.get("output", "")) for t in tests if t.get("name") == "Public Tests")
    by_name = {str(t.get("name")): t for t in tests if t.get("name") != "Public Tests"}
    scored: list[QuestionScore] = []
    for q in questions:
        t = by_name.pop(q.name, None)
        if t is None:
            raise ValueError(f"results.json lacks question {q.name!r}")
        max_score = float(t.get("max_score", q.points) or 0.0)
        score = min(max(float(t.get("score") or 0.0), 0.0), max_score)
        section = _public_section(public_out, q.name)
        public_flags = _case_flags(section, q.name)
        all_flags = _case_flags(str(t.get("output", "")), q.name)
        # otter numbers a question's test cases 1..n in master order; public ones first appear in the public run
        idx_public = [i + 1 for i, h in enumerate(q.hidden) if not h]
        idx_hidden = [i + 1 for i, h in enumerate(q.hidden) if h]
        full = score >= max_score - 1e-9
        public = tuple(all_flags.get(i, full) for i in idx_public)
        if public_flags and len(public_flags) == len(idx_public):
            public = tuple(public_flags[k] for k in sorted(public_flags))
        hidden = tuple(all_flags.get(i, full) for i in idx_hidden)
        scored.append(QuestionScore(q.name, score, max_score, public, hidden, section))
    for name, t in by_name.items():  # a question otter knows that the master parse missed: keep its score
        max_score = float(t.get("max_score") or 0.0)
        scored.append(QuestionScore(name, min(max(float(t.get("score") or 0.0), 0.0), max_score), max_score))
    return tuple(scored)


def _zero(questions: list[_Question]) -> tuple[QuestionScore, ...]:
    return tuple(QuestionScore(q.name, 0.0, q.points) for q in questions)


_ERROR_LINE = re.compile(r"^\s*([\w.]+(?:Error|Exception|Exit)\b.*)$", re.M)


def _shortfall(qs: tuple[QuestionScore, ...]) -> str:
    """Why a graded submission lost points: the questions below full marks and the first error a public test
    raised (``NameError: name 'f' is not defined`` for an answer never defined); "" at full marks."""
    lost = [q for q in qs if q.score < q.max_score]
    if not lost:
        return ""
    head = ("no test passed" if all(q.score == 0 for q in qs) else "points lost") + ": " + ", ".join(
        f"{q.name} {q.score:g}/{q.max_score:g}" for q in lost)
    for q in lost:
        m = _ERROR_LINE.search(q.public_output or "")
        if m:
            return f"{head} (first error: {m.group(1).strip()[:200]})"
    return head


def _grade_one(sub: Path, stem: str, zip_path: Path, questions: list[_Question], timeout_s: float) -> GradeRow:
    t0 = time.monotonic()
    max_score = sum(q.points for q in questions)

    def row(status: str, reason: str, qs: tuple[QuestionScore, ...] | None = None) -> GradeRow:
        qs = _zero(questions) if qs is None else qs
        score = sum(q.score for q in qs) if status == "ok" else 0.0
        total = sum(q.max_score for q in qs) if qs else max_score
        return GradeRow(str(sub), stem, score, total, status, reason, time.monotonic() - t0, qs)

    if not sub.is_file():
        return row("invalid", f"not a notebook: no such file {sub}")
    root = Path(tempfile.mkdtemp(prefix=f"stia-grade-{stem}-"))
    try:
        work, tmp = root / "work", root / "tmp"
        work.mkdir()
        tmp.mkdir()
        nb = work / "sub.ipynb"
        shutil.copyfile(sub, nb)
        bad = _validate(nb)
        if bad is not None:
            return row("invalid", bad)
        shutil.copyfile(zip_path, work / ZIP_NAME)
        (work / "res").mkdir()
        token = uuid.uuid4().hex
        env = {**os.environ, TOKEN_ENV: token, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "otter", "run", "-a", ZIP_NAME, "-o", "res", "sub.ipynb", "--no-logo"]
        with (root / "stdout.txt").open("wb") as out_f, (root / "stderr.txt").open("wb") as err_f:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out_f,
                                    stderr=err_f, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                rc = -9
            finally:
                _kill_tree(proc, token)  # also reaps a kernel left behind by a normal exit
        if timed_out:
            return row("timeout", f"time limit of {timeout_s:g} s exceeded")
        err_tail = _tail_file(root / "stderr.txt") or _tail_file(root / "stdout.txt")
        if rc != 0:
            found = _ERROR_LINE.findall(err_tail)  # the exception otter died of first, then the traceback tail
            head = f"{found[-1].strip()[:300]} | " if found else ""
            return row("error", f"otter run exited with status {rc}: {head}{err_tail}".strip())
        res = work / "res" / "results.json"
        try:
            with res.open("rb") as f:
                data = f.read(TAIL_BYTES * 100)
            results = json.loads(data.decode("utf-8"))
            qs = _parse_results(results, questions)
        except (OSError, ValueError, TypeError, AttributeError) as err:
            return row("error", f"no usable results.json ({type(err).__name__}: {err}): {err_tail}".strip())
        return row("ok", _shortfall(qs), qs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- outputs
def _stems(subs: Sequence[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems: list[str] = []
    for s in subs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", s.stem).strip("._") or "submission"
        cand, k = base, 1
        while cand.lower() in seen:
            k += 1
            cand = f"{base}-{k}"
        seen[cand.lower()] = 1
        stems.append(cand)
    return stems


def feedback_markdown(row: GradeRow, assignment: str) -> str:
    """The learner's feedback: total, per question score, public-test failures trimmed, hidden pass/fail."""
    lines = [f"# {assignment}: {row.score:g} / {row.max_score:g}", "",
             f"Submission: `{Path(row.submission).name}` - status **{row.status}**"
             + (f" ({row.seconds:.1f} s)" if row.seconds else ""), ""]
    if row.reason:
        lines += ["Reason:", "", "```", row.reason, "```", ""]
    for q in row.questions:
        lines.append(f"## {q.name}: {q.score:g} / {q.max_score:g}")
        lines.append("")
        if row.status != "ok":
            lines += ["Not graded (see the reason above).", ""]
            continue
        if q.public:
            npass = sum(q.public)
            lines.append(f"- public tests: {npass} / {len(q.public)} passed")
        if q.hidden:
            lines.append("- hidden tests: " + ", ".join(f"#{i + 1} {'passed' if ok else 'failed'}"
                                                       for i, ok in enumerate(q.hidden)))
        lines.append("")
        if q.public and not all(q.public) and q.public_output:
            text = q.public_output
            if len(text) > FEEDBACK_CHARS:
                text = text[:FEEDBACK_CHARS] + "\n... (trimmed)"
            lines += ["Public test output:", "", "```", text, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _csv(rows: Sequence[GradeRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["stem", "submission", "score", "max_score", "status", "seconds", "reason"])
    for r in rows:
        w.writerow([r.stem, r.submission, f"{r.score:g}", f"{r.max_score:g}", r.status, f"{r.seconds:.2f}",
                    " ".join(r.reason.split())[:300]])
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- grade
def grade(submissions: Sequence[str | os.PathLike[str]], assignment: str, *,
          course_dir: str | os.PathLike[str] = "course", out: str | os.PathLike[str] = "grades",
          timeout_s: float = 120.0, workers: int = 1) -> GradeReport:
    """Grade ``submissions`` (notebook paths) of exercise ``assignment`` with its autograder zip.

    Assigns the exercise into ``course_dir`` first when its zip is absent. ``timeout_s`` limits each
    submission's otter run (the whole process tree is killed; score 0, status ``timeout``); ``workers``
    submissions are graded at once (threads, one subprocess each). Writes ``<out>/<stem>.json``,
    ``<out>/<stem>.md`` and ``<out>/scores.csv``; returns the rows in submission order.
    """
    exercise(assignment)
    if isinstance(submissions, (str, os.PathLike)):
        raise TypeError("submissions must be a sequence of notebook paths, not a single path")
    subs = [Path(s).resolve() for s in submissions]
    if not subs:
        raise ValueError("submissions is empty: give at least one notebook path")
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    try:
        zip_path = autograder_zip(course_dir, assignment)
    except FileNotFoundError:
        assign(course_dir, [assignment])
        zip_path = autograder_zip(course_dir, assignment)
    zip_path = zip_path.resolve()
    questions = _questions(zip_path)
    stems = _stems(subs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(lambda a: _grade_one(a[0], a[1], zip_path, questions, float(timeout_s)),
                             zip(subs, stems)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_paths = tuple(write_json_atomic(out / f"{r.stem}.json", {"assignment": assignment, **r.to_json()})
                       for r in rows)
    md_paths = tuple(write_text_atomic(out / f"{r.stem}.md", feedback_markdown(r, assignment)) for r in rows)
    csv_path = write_text_atomic(out / "scores.csv", _csv(rows))
    return GradeReport(assignment, tuple(rows), csv_path, json_paths, md_paths)
