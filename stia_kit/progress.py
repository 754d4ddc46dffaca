"""One progress display for every long loop of the kit: ``fit`` / ``evaluate``, SynthActions generation and
curve-model training.

Where it runs decides how it shows (:func:`progress_mode`):

* **notebook** — inside a Jupyter kernel (JupyterLab, the classic notebook, and papermill / nbclient runs): ONE
  text output, created with ``IPython.display.display(..., display_id=True)`` and rewritten in place with
  ``DisplayHandle.update``. nbclient applies ``update_display_data`` messages to the output it already stored,
  so an executed notebook keeps one line per progress display instead of one stderr line per update.
* **terminal** — anywhere else: a ``tqdm`` bar on stderr, removed when done.
* **off** — ``enabled=False`` (or ``STIA_PROGRESS=off``): nothing at all.

When closed, a display leaves one short summary line (notebook: the output's final text; terminal: one line on
stderr). Per-epoch summaries belong in the logger and in ``metrics.jsonl``; a display only shows the latest
one in its status text (:meth:`Progress.update`). ``STIA_PROGRESS`` (``auto`` | ``notebook`` | ``terminal`` |
``off``) overrides the detection, e.g. to silence a script.

Typical use::

    with Progress(len(jobs), "SynthActions", unit="clip", enabled=progress) as bar:
        for job in jobs:
            ...
            bar.update(1, status=f"{job.name}")
        bar.close(summary=f"SynthActions: {len(jobs)} clips in {seconds:.0f} s")
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any, Literal

ProgressMode = Literal["auto", "notebook", "terminal", "off"]
_MODES: tuple[str, ...] = ("auto", "notebook", "terminal", "off")
ENV_VAR = "STIA_PROGRESS"  # overrides the mode detection ("auto" | "notebook" | "terminal" | "off")


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a ``kernel``: JupyterLab, notebook, papermill).

    A terminal IPython shell has no kernel and counts as a terminal. IPython is not imported when the program
    has not imported it already (a plain script never pays for it).
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_mode(enabled: bool = True, mode: ProgressMode = "auto") -> str:
    """The concrete display mode: ``"notebook"``, ``"terminal"`` or ``"off"``.

    ``enabled=False`` always gives ``"off"``; otherwise ``$STIA_PROGRESS`` (when set and not ``auto``) wins over
    ``mode``, and ``"auto"`` means notebook inside a Jupyter kernel, terminal elsewhere.
    """
    if mode not in _MODES:
        raise ValueError(f"progress mode must be one of {list(_MODES)}, got {mode!r}")
    if not enabled:
        return "off"
    env = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if env not in _MODES:
        raise ValueError(f"${ENV_VAR} must be one of {list(_MODES)}, got {env!r}")
    chosen = env if env != "auto" else mode
    if chosen == "auto":
        chosen = "notebook" if in_jupyter_kernel() else "terminal"
    return chosen


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """A counter with a status text, shown as one updating line (see the module docstring).

    ``total``: expected number of units (None = unknown). ``desc``: what is counted ("train", "SynthActions").
    ``unit``: unit name for the rate. ``enabled``: False shows nothing. ``mode``: see :func:`progress_mode`.
    ``min_interval``: seconds between two redraws of the notebook line (updates in between only change the
    state; the final state is always drawn on :meth:`close`); None = :attr:`default_min_interval`.

    The object is also a context manager: leaving the block closes it (without a summary when the block
    raised, so the last state stays visible, marked "stopped").
    """

    default_min_interval: float = 0.5  # seconds between notebook redraws when min_interval is None

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", enabled: bool = True,
                 mode: ProgressMode = "auto", min_interval: float | None = None) -> None:
        if min_interval is None:
            min_interval = self.default_min_interval
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise ValueError(f"Progress.total must be None or an int >= 0, got {total!r}")
        if not min_interval >= 0:
            raise ValueError(f"Progress.min_interval must be >= 0, got {min_interval!r}")
        self.total, self.desc, self.unit = total, desc, unit
        self.mode = progress_mode(enabled, mode)
        self.min_interval = float(min_interval)
        self.n = 0  # units done so far
        self.status = ""  # free text shown after the counter (e.g. the last epoch's summary)
        self.closed = False
        self.draws = 0  # how many times the line was (re)drawn; notebook mode only
        self._start = time.perf_counter()
        self._last_draw = -float("inf")
        self._handle: Any = None
        self._bar: Any = None
        if self.mode == "notebook":
            from IPython.display import display

            self._handle = display({"text/plain": self.line()}, raw=True, display_id=True)
            self.draws = 1
            self._last_draw = time.perf_counter()
        elif self.mode == "terminal":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr)

    @property
    def enabled(self) -> bool:
        """False when nothing is shown."""
        return self.mode != "off"

    @property
    def elapsed(self) -> float:
        """Seconds since the display was created."""
        return time.perf_counter() - self._start

    def line(self) -> str:
        """The current text of the one line (notebook mode shows exactly this)."""
        elapsed = self.elapsed
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if self.total:
            count = f"{self.n}/{self.total} {self.unit} ({100.0 * self.n / self.total:.0f} %)"
            eta = f", {_duration((self.total - self.n) / rate)} left" if 0 < self.n < self.total and rate > 0 else ""
        else:
            count, eta = f"{self.n} {self.unit}", ""
        text = f"{self.desc}: {count}, {_duration(elapsed)}{eta}"
        return f"{text} | {self.status}" if self.status else text

    def update(self, n: int = 1, status: str | None = None) -> None:
        """Count ``n`` more units and optionally replace the status text; redraws at most every ``min_interval``."""
        if self.closed:
            raise RuntimeError(f"Progress({self.desc!r}) is closed")
        self.n += n
        if status is not None:
            self.status = status
        if self._bar is not None:
            if status is not None:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(n)
        elif self._handle is not None and time.perf_counter() - self._last_draw >= self.min_interval:
            self._draw(self.line())

    def set_status(self, status: str) -> None:
        """Replace the status text without counting (same as ``update(0, status)``)."""
        self.update(0, status)

    def _draw(self, text: str) -> None:
        self._handle.update({"text/plain": text}, raw=True)
        self.draws += 1
        self._last_draw = time.perf_counter()

    def close(self, summary: str | None = None) -> None:
        """Finish: the line becomes ``summary`` (notebook) / the bar is removed and ``summary`` printed on
        stderr (terminal); without a summary the last state stays (notebook) or nothing is left (terminal).
        Closing twice is a no-op."""
        if self.closed:
            return
        self.closed = True
        if self._handle is not None:
            self._draw(summary if summary is not None else self.line())
        elif self._bar is not None:
            self._bar.close()
            if summary is not None:
                from tqdm import tqdm

                tqdm.write(summary, file=sys.stderr)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.closed:
            if exc_type is not None and self._handle is not None:
                self.status = f"{self.status} (stopped: {exc_type.__name__})".lstrip()
            self.close()
