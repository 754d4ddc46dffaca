"""Shared fixtures: a tiny SynthActions root generated once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

#: the tiny quickstart geometry used by the end-to-end, CLI and notebook tests (seconds per epoch on a CPU)
TINY = dict(synth_clips_per_class=8, synth_frames=8, synth_size=32, num_frames=4, stride=2, short_side=32,
            crop_size=28, width=4, batch_size=8, warmup_epochs=0.0)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SynthActions, 11 classes x 8 clips of 8 frames at 32 px, UCF101 layout."""
    from stia_kit.synth import SynthConfig, generate_synth_actions

    root = tmp_path_factory.mktemp("synth")
    generate_synth_actions(root, SynthConfig(clips_per_class=8, num_frames=8, size=32), progress=False)
    return root


def parameters_cell_values(notebook: Path) -> dict[str, object]:
    """The literal values of the notebook's single cell tagged ``parameters``."""
    import nbformat

    from stia_kit.params import notebook_parameters

    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: exactly one cell must be tagged 'parameters'"
    return notebook_parameters(cells[0].source)


#: notebook file name -> its executed output, filled by the tests/test_notebook_0N.py runs (the CI course book)
EXECUTED_NOTEBOOKS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def executed_notebooks() -> dict[str, Path]:
    """The session's executed course notebooks (each notebook test registers its output here)."""
    return EXECUTED_NOTEBOOKS
