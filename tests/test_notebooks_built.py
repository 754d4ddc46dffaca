"""Every notebook equals its builder's output cell by cell, and declares the kernel the set-up registers."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
import pytest

SRC = Path(__file__).resolve().parents[1] / "notebooks" / "src"
BUILDERS = sorted(SRC.glob("build_*.py"))
NOTEBOOK = {"build_00": "00_quickstart.ipynb", "build_01": "01_dual_pathway_cdai.ipynb",
            "build_02": "02_stilt_two_stream.ipynb", "build_03": "03_tstam_attention.ipynb",
            "build_04": "04_st_manet.ipynb", "build_05": "05_msf_fsam.ipynb",
            "build_06": "06_lowlight_arid.ipynb", "build_07": "07_attention_and_attribution.ipynb"}


def _cells(builder: Path) -> list:
    sys.path.insert(0, str(SRC))
    try:
        return importlib.import_module(builder.stem).notebook_cells()
    finally:
        sys.path.remove(str(SRC))


def test_every_builder_has_a_notebook() -> None:
    assert {b.stem for b in BUILDERS} == set(NOTEBOOK), "add the new builder's notebook to NOTEBOOK"


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.stem)
def test_notebook_is_its_builders_output(builder: Path) -> None:
    nb = nbformat.read(SRC.parent / NOTEBOOK[builder.stem], as_version=4)
    built = _cells(builder)
    hint = f"rebuild with: python notebooks/src/{builder.name}"
    assert len(nb.cells) == len(built), hint
    for i, (have, want) in enumerate(zip(nb.cells, built)):
        assert (have.cell_type, have.source) == (want.cell_type, want.source), f"cell {i} differs; {hint}"
        assert have.metadata.get("tags", []) == want.metadata.get("tags", []), f"cell {i} tags differ; {hint}"
        if have.cell_type == "code":
            assert not have.outputs, f"cell {i} of the committed notebook has outputs; {hint}"
    assert nb.metadata["kernelspec"]["name"] == "stia-kit"
