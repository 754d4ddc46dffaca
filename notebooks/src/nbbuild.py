"""Shared pieces of the notebook builders (``notebooks/src/build_*.py``): the generated ``parameters`` cell
and writing a validated notebook next to this folder."""
from __future__ import annotations

from pathlib import Path

import nbformat as nbf

from stia_kit.params import parameters_cell_source

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell


def parameters_cell(cls: type, *notes: str) -> nbf.NotebookNode:
    """The papermill ``parameters`` cell generated from params dataclass ``cls`` (tagged ``parameters``)."""
    cell = code(parameters_cell_source(cls, *notes))
    cell.metadata["tags"] = ["parameters"]
    return cell


def write_notebook(cells: list[nbf.NotebookNode], name: str) -> Path:
    """Validate ``cells`` and write them to ``notebooks/<name>``, declaring the ``stia-kit`` kernel.

    ``bash bootstrap.sh setup`` registers that kernel (display name "Python (STIA-Kit)") inside ``.venv``, so
    JupyterLab opens the notebook on the interpreter that has ``stia_kit``, not on a generic ``python3``.
    """
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "stia-kit", "display_name": "Python (STIA-Kit)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.validate(nb)
    out = Path(__file__).resolve().parents[1] / name
    nbf.write(nb, out)
    print("wrote", out)
    return out
