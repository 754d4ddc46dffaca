"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A reader (or a run interrupted mid-write) sees the old file or the new one, never half of one. Used by
SynthActions' writer, the run folders of every experiment and their results JSON.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # unique per writer
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str, *, skip_unchanged: bool = False) -> Path:
    """Write ``text`` atomically; with ``skip_unchanged`` an identical existing file is left untouched."""
    path = Path(path)
    if skip_unchanged and path.is_file() and path.read_text() == text:
        return path
    return write_bytes_atomic(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats made JSON-valid (nan -> None, inf -> "inf"/"-inf"), tuples -> lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike[str], payload: Any, *, indent: int | None = 2) -> Path:
    """``payload`` as JSON (non-finite numbers made valid, see :func:`json_safe`), written atomically."""
    return write_text_atomic(path, json.dumps(json_safe(payload), indent=indent, default=str))
