"""Tiny shared helper for the exercise builders: otter-grader master-notebook (format v1) cells.

Each ``exercises/src/build_<name>.py`` does ``sys.path.insert(0, <this folder>)`` and
``from _otter import config, question, write``, then::

    cells = config(NAME) + [intro markdown, setup code] + question("q1", 1, PROMPT, SOLUTION, TESTS, HIDDEN) + ...
    write(cells, SRC.parent / f"{NAME}.ipynb")

Master format (otter-grader 7): a raw ``# ASSIGNMENT CONFIG`` cell first; per question a raw ``# BEGIN QUESTION``
cell, a markdown prompt, raw ``# BEGIN SOLUTION`` / solution code cell(s) / raw ``# END SOLUTION``, raw
``# BEGIN TESTS`` / test code cells (a cell whose first line is ``# HIDDEN`` is hidden) / raw ``# END TESTS``, and
a raw ``# END QUESTION``. Solution code cells mark the lines otter replaces with ``...`` by the comment pair
``# BEGIN SOLUTION`` / ``# END SOLUTION``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nbformat as nbf

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def config(name: str, **extra: object) -> list:
    """The ``# ASSIGNMENT CONFIG`` raw cell (as a one-element list) for the assignment ``name``.

    ``extra`` adds or overrides top-level YAML keys (simple scalars only: ``str``, ``bool``, ``int``, ``None``).
    """
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"config: name must be a non-empty word without spaces, got {name!r}")
    keys: dict[str, object] = {"name": name, "export_cell": False, "check_all_cell": False, "init_cell": True,
                               "requirements": None, "environment": None}
    keys.update(extra)
    lines = ["# ASSIGNMENT CONFIG"] + [f"{k}: {_yaml_scalar(v)}" for k, v in keys.items()]
    return [nbf.v4.new_raw_cell("\n".join(lines) + "\n")]


def _yaml_scalar(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return v
    raise TypeError(f"config: only scalar YAML values are supported, got {type(v).__name__} {v!r}")


def _as_list(cells: str | Sequence[str], what: str) -> list[str]:
    items = [cells] if isinstance(cells, str) else list(cells)
    if not all(isinstance(c, str) and c.strip() for c in items):
        raise ValueError(f"question: every {what} cell must be a non-empty string")
    return items


def question(name: str, points: int | float, prompt: str, solution: str | Sequence[str],
             tests: str | Sequence[str], hidden: str | Sequence[str]) -> list:
    """The cells of one question: prompt, solution cell(s), public ``tests`` and ``hidden`` test cells.

    ``solution`` code must contain a ``# BEGIN SOLUTION`` / ``# END SOLUTION`` comment pair (the lines otter
    strips); each ``hidden`` cell gets a ``# HIDDEN`` first line unless it already has one. At least one public
    and one hidden test is required (the course rule: every question has a hidden test).
    """
    if points <= 0:
        raise ValueError(f"question {name!r}: points must be > 0, got {points}")
    sols = _as_list(solution, "solution")
    for s in sols:
        if "# BEGIN SOLUTION" not in s or "# END SOLUTION" not in s:
            raise ValueError(f"question {name!r}: each solution cell needs a '# BEGIN SOLUTION' / "
                             "'# END SOLUTION' comment pair")
    pub = _as_list(tests, "public test")
    hid = _as_list(hidden, "hidden test")
    if not pub or not hid:
        raise ValueError(f"question {name!r}: needs at least one public and one hidden test "
                         f"(got {len(pub)} public, {len(hid)} hidden)")
    hid = [h if h.lstrip().startswith("# HIDDEN") else "# HIDDEN\n" + h for h in hid]
    cells = [nbf.v4.new_raw_cell(f"# BEGIN QUESTION\nname: {name}\npoints: {points}"),
             nbf.v4.new_markdown_cell(prompt),
             nbf.v4.new_raw_cell("# BEGIN SOLUTION")]
    cells += [nbf.v4.new_code_cell(s) for s in sols]
    cells += [nbf.v4.new_raw_cell("# END SOLUTION"), nbf.v4.new_raw_cell("# BEGIN TESTS")]
    cells += [nbf.v4.new_code_cell(t) for t in pub + hid]
    cells += [nbf.v4.new_raw_cell("# END TESTS"), nbf.v4.new_raw_cell("# END QUESTION")]
    return cells


def write(cells: list, path: str | Path) -> Path:
    """Write ``cells`` as a validated nbformat-4 notebook (``python3`` kernel spec, cell ids ``cell-000``, ...)."""
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = list(cells)
    for i, cell in enumerate(nb.cells):  # numbered ids: rebuilding an unchanged exercise rewrites identical bytes
        cell["id"] = f"cell-{i:03d}"
    nbf.validate(nb)
    path = Path(path)
    nbf.write(nb, path)
    return path
