"""stia_kit.progress: one updating line in a Jupyter kernel (checked on a real nbclient run), a tqdm bar in a
terminal, nothing when disabled; and fit / evaluate / SynthActions / curve training use it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stia_kit.progress import ENV_VAR, Progress, in_jupyter_kernel, progress_mode


def test_mode_detection_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert not in_jupyter_kernel()  # pytest is no kernel
    assert progress_mode() == "terminal" and progress_mode(enabled=False) == "off"
    assert progress_mode(mode="notebook") == "notebook"
    monkeypatch.setenv(ENV_VAR, "off")
    assert progress_mode() == "off" and progress_mode(mode="notebook") == "off"
    monkeypatch.setenv(ENV_VAR, "loud")
    with pytest.raises(ValueError, match=ENV_VAR):
        progress_mode()
    with pytest.raises(ValueError, match="progress mode"):
        progress_mode(mode="widget")  # type: ignore[arg-type]


def test_terminal_bar_is_removed_and_leaves_one_summary_line(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with Progress(50, "demo", unit="clip") as bar:
        for i in range(50):
            bar.update(1, status=f"clip {i}")
        assert bar.n == 50 and bar.line().startswith("demo: 50/50 clip (100 %)") and "clip 49" in bar.line()
        bar.close("demo: 50 clips")
    err = capsys.readouterr().err
    assert err.rstrip("\n").endswith("demo: 50 clips") and err.count("demo: 50 clips") == 1
    with pytest.raises(RuntimeError, match="closed"):
        bar.update(1)


def test_disabled_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(3, "quiet", enabled=False) as bar:
        bar.update(3, status="x")
        bar.close("summary")
    assert capsys.readouterr() == ("", "") and bar.mode == "off" and bar.n == 3


class FakeDisplay:
    """Stands in for IPython.display.display: records every display and handle update."""

    def __init__(self) -> None:
        self.handles: list[list[str]] = []  # one list of successive texts per display

    def __call__(self, obj: dict, raw: bool, display_id: bool) -> "FakeDisplay.Handle":
        assert raw and display_id is True
        self.handles.append([obj["text/plain"]])
        return FakeDisplay.Handle(self.handles[-1])

    class Handle:
        def __init__(self, texts: list[str]) -> None:
            self.texts = texts

        def update(self, obj: dict, raw: bool) -> None:
            assert raw
            self.texts.append(obj["text/plain"])


@pytest.fixture
def fake_display(monkeypatch: pytest.MonkeyPatch) -> FakeDisplay:
    import IPython.display

    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    monkeypatch.setenv(ENV_VAR, "notebook")
    monkeypatch.setattr(Progress, "default_min_interval", 0.0)  # draw every update
    return fake


def test_notebook_mode_updates_one_handle_with_throttling(fake_display: FakeDisplay) -> None:
    bar = Progress(1000, "nb", min_interval=3600)
    for _ in range(1000):
        bar.update(1)
    bar.close("nb: done")
    assert fake_display.handles == [[fake_display.handles[0][0], "nb: done"]] and bar.draws == 2
    assert fake_display.handles[0][0].startswith("nb: 0/1000 it (0 %)")


def test_fit_and_evaluate_show_one_line_each(fake_display: FakeDisplay, capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from torch import nn

    from stia_kit.train import TrainConfig, evaluate, fit

    class Toy(torch.utils.data.Dataset):
        classes = ["a", "b"]

        def __len__(self) -> int:
            return 16

        def __getitem__(self, i: int) -> dict:
            return {"video": torch.full((2, 1, 2, 2), float(i % 2)), "label": i % 2, "index": i, "failed": ""}

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    cfg = TrainConfig(epochs=3, batch_size=4, lr=0.1, device="cpu", log_every=1)
    fit(net, Toy(), Toy(), cfg)
    evaluate(net, Toy(), batch_size=4, progress=True)
    assert len(fake_display.handles) == 2 and capsys.readouterr() == ("", "")
    fit_texts, eval_texts = fake_display.handles
    assert any("epoch 2/3: loss" in t and "| epoch 1/3: train loss" in t for t in fit_texts)  # last epoch in status
    assert any("validating" in t for t in fit_texts)
    final = fit_texts[-1]
    assert final.startswith("fit Sequential: 3 epoch(s) in ") and "epoch 3/3: train loss" in final
    assert "best val top1 1.0000 at epoch" in final
    assert eval_texts[-1].startswith("eval: loss ") and eval_texts[-1].endswith(" s")
    assert "on 16 samples" in eval_texts[-1]


NOTEBOOK_CELLS = [
    """
    from stia_kit.progress import Progress
    bar = Progress(300, "demo", min_interval=0)
    for i in range(300):
        bar.update(1, status=f"step {i}")
    bar.close("demo: 300 steps")
    """,
    """
    from stia_kit.synth import SynthConfig, generate_synth_actions
    config = SynthConfig(clips_per_class=2, clips_per_group=1, num_frames=4, size=32)
    summary = generate_synth_actions(SYNTH_ROOT, config)
    """,
]


def test_executed_notebook_keeps_one_output_per_progress(tmp_path: Path) -> None:
    """nbclient (what papermill runs) stores each display as ONE output, updated in place; no stderr lines."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [nbformat.v4.new_code_cell(f"SYNTH_ROOT = {str(tmp_path / 'synth')!r}")]
    cells += [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in NOTEBOOK_CELLS]
    nb = nbformat.v4.new_notebook(cells=cells)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                            ).execute()
    outputs = [cell.outputs for cell in nb.cells]
    assert all(o.output_type == "display_data" for cell in outputs for o in cell), outputs  # no stream output
    texts = [[o.data["text/plain"] for o in cell] for cell in outputs]
    assert texts[1] == ["demo: 300 steps"]  # 300 updates, one stored output holding the final text
    assert len(texts[2]) == 1 and texts[2][0].startswith("SynthActions: 22 clips (22 rendered")
