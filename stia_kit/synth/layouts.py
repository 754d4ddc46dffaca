"""File names and split files of the official UCF101, HMDB51 and ARID layouts.

* ucf101: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``; ``ucfTrainTestlist/classInd.txt`` ("1 Drink",
  1-based), ``trainlist0{1,2,3}.txt`` ("Drink/v_Drink_g01_c01.avi 1", 1-based label) and
  ``testlist0{1,2,3}.txt`` ("Drink/v_Drink_g01_c01.avi").
* hmdb51: ``hmdb51_org/<class>/<class>_gXX_cYY.avi``; ``testTrainMulti_7030_splits/
  <class>_test_split{1,2,3}.txt`` lines ``"<name>.avi <tag> "`` (1 train, 2 test; 0 "unused" is
  never written because every clip belongs to a train or test group).
* arid: ``clips_v1/<Class>/<Class>_<group>_<n>.avi``; ``splits_v1/ARID_split{1,2,3}_{train,test}.txt``
  lines ``index\\tlabel\\tClass/Class_<group>_<n>.avi`` (0-based label) and ``mapping_table.txt``.

A group gXX is one actor + scene; each split holds out a different contiguous block of groups (wrapping
around), like UCF101's three splits, so no actor appears in both train and test.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import SynthConfig, class_name
from ..fileio import write_text_atomic as _write_text_atomic

NUM_SPLITS = 3


def group_and_number(cfg: SynthConfig, clip_index: int) -> tuple[int, int]:
    """1-based (group, clip-within-group) of a 0-based clip index."""
    return clip_index // cfg.clips_per_group + 1, clip_index % cfg.clips_per_group + 1


def clip_relpath(layout: str, action: str, cfg: SynthConfig, clip_index: int) -> str:
    """Path of a clip's video relative to the dataset root, for ``layout``."""
    g, n = group_and_number(cfg, clip_index)
    cls = class_name(action)
    if layout == "ucf101":
        return f"UCF-101/{cls}/v_{cls}_g{g:02d}_c{n:02d}.avi"
    if layout == "hmdb51":
        return f"hmdb51_org/{action}/{action}_g{g:02d}_c{n:02d}.avi"
    if layout == "arid":
        return f"clips_v1/{cls}/{cls}_{g}_{n}.avi"
    raise ValueError(f"unknown layout {layout!r}")


def test_groups(cfg: SynthConfig, split: int) -> set[int]:
    """1-based groups held out for testing in ``split`` (1..3)."""
    count, total = cfg.test_groups_per_split, cfg.num_groups
    start = ((split - 1) * count) % total
    return {(start + i) % total + 1 for i in range(count)}


def split_files(layout: str, cfg: SynthConfig) -> dict[str, str]:
    """Relative path -> text of every split/annotation file of ``layout``."""
    files: dict[str, str] = {}
    classes = cfg.classes
    clips = [(label, action, c) for label, action in enumerate(classes) for c in range(cfg.clips_per_class)]
    for split in range(1, NUM_SPLITS + 1):
        held_out = test_groups(cfg, split)
        is_test = {(a, c): group_and_number(cfg, c)[0] in held_out for _, a, c in clips}
        if layout == "ucf101":
            inner = lambda a, c: clip_relpath(layout, a, cfg, c).split("/", 1)[1]  # noqa: E731
            files[f"ucfTrainTestlist/trainlist0{split}.txt"] = "".join(
                f"{inner(a, c)} {label + 1}\n" for label, a, c in clips if not is_test[(a, c)])
            files[f"ucfTrainTestlist/testlist0{split}.txt"] = "".join(
                f"{inner(a, c)}\n" for label, a, c in clips if is_test[(a, c)])
        elif layout == "hmdb51":
            for action in classes:
                files[f"testTrainMulti_7030_splits/{action}_test_split{split}.txt"] = "".join(
                    f"{Path(clip_relpath(layout, a, cfg, c)).name} {2 if is_test[(a, c)] else 1} \n"
                    for _, a, c in clips if a == action)
        elif layout == "arid":
            for part, want_test in (("train", False), ("test", True)):
                rows = [(label, clip_relpath(layout, a, cfg, c).split("/", 1)[1])
                        for label, a, c in clips if is_test[(a, c)] == want_test]
                files[f"splits_v1/ARID_split{split}_{part}.txt"] = "".join(
                    f"{i}\t{label}\t{rel}\n" for i, (label, rel) in enumerate(rows))
        else:
            raise ValueError(f"unknown layout {layout!r}")
    if layout == "ucf101":
        files["ucfTrainTestlist/classInd.txt"] = "".join(f"{i + 1} {class_name(a)}\n" for i, a in enumerate(classes))
    if layout == "arid":
        files["splits_v1/mapping_table.txt"] = "".join(f"{i}\t{class_name(a)}\n" for i, a in enumerate(classes))
    return files


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`stia_kit.fileio.write_text_atomic`); unchanged files are left untouched."""
    _write_text_atomic(path, text, skip_unchanged=True)
