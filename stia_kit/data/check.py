"""Dataset folder checks: layout detection and a full decode of every video (``stia data check ROOT``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .video_io import VIDEO_SUFFIXES, Backend, VideoReadError, decode_all

__all__ = ["Layout", "CheckReport", "detect_layout", "find_videos", "check_videos", "format_report"]

Layout = Literal["ucf101", "hmdb51", "arid", "folder"]


@dataclass
class CheckReport:
    """Result of :func:`check_videos`."""

    layout: str  # detected layout of the root ("ucf101", "hmdb51", "arid" or "folder")
    total: int  # video files found under the root
    bad: list[tuple[Path, str]] = field(default_factory=list)  # unreadable files and the reason for each
    frames: dict[Path, int] = field(default_factory=dict)  # decoded frame count of every readable file

    @property
    def ok(self) -> bool:
        """True when every video decoded."""
        return not self.bad


def detect_layout(root: str | os.PathLike[str]) -> Layout:
    """Recognise the official layouts by their split-list folders (or video folders).

    ``ucf101``: ``ucfTrainTestlist/`` or ``UCF-101/``; ``hmdb51``: ``testTrainMulti_7030_splits/`` or
    ``hmdb51_org/``; ``arid``: ``splits_v1/``, ``clips_v1/`` or ``clips_v1.5/``; anything else: ``folder``.

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"dataset root is not a directory: {root}")
    if (root / "ucfTrainTestlist").is_dir() or (root / "UCF-101").is_dir():
        return "ucf101"
    if (root / "testTrainMulti_7030_splits").is_dir() or (root / "hmdb51_org").is_dir():
        return "hmdb51"
    if any((root / d).is_dir() for d in ("splits_v1", "clips_v1", "clips_v1.5")):
        return "arid"
    return "folder"


def find_videos(root: str | os.PathLike[str]) -> list[Path]:
    """Every file under ``root`` (recursively) whose suffix is a video suffix, sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def check_videos(root: str | os.PathLike[str], backend: Backend = "auto") -> CheckReport:
    """Decode every frame of every video under ``root`` and report the unreadable ones.

    ``backend="auto"`` decodes with PyAV in strict mode (damaged frames are errors, not concealed) and
    compares the decoded count with the container's packet count and header (truncation).

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    layout = detect_layout(root)
    videos = find_videos(root)
    report = CheckReport(layout=layout, total=len(videos))
    for path in videos:
        try:
            report.frames[path] = decode_all(path, backend)
        except VideoReadError as exc:
            report.bad.append((path, exc.reason))
        except Exception as exc:  # noqa: BLE001 - a checker reports, it does not stop at the first odd file
            report.bad.append((path, f"{type(exc).__name__}: {exc}"))
    return report


def format_report(report: CheckReport, root: str | os.PathLike[str] | None = None) -> str:
    """Human-readable summary: layout, counts, then one line per unreadable file."""
    base = Path(root) if root is not None else None

    def show(path: Path) -> str:
        if base is not None:
            try:
                return str(path.relative_to(base))
            except ValueError:
                pass
        return str(path)

    good = report.total - len(report.bad)
    lines = [
        f"layout: {report.layout}",
        f"videos: {report.total} found, {good} readable, {len(report.bad)} unreadable",
        f"frames: {sum(report.frames.values())} decoded",
    ]
    if report.bad:
        lines.append("unreadable:")
        lines.extend(f"  {show(path)}: {reason}" for path, reason in report.bad)
    return "\n".join(lines)
