"""SynthActions configuration: the class list and the validated, frozen :class:`SynthConfig`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

#: The 11 action classes, in ARID order (the order of ARID's ``mapping_table.txt``).
ACTIONS: tuple[str, ...] = (
    "drink", "jump", "pick", "pour", "push", "run", "sit", "stand", "turn", "walk", "wave",
)

#: Layout names understood by :func:`stia_kit.synth.generate_synth_actions`.
LAYOUTS: tuple[str, ...] = ("ucf101", "hmdb51", "arid")

#: Frame sizes that decord 0.6.0 cannot decode (its RGB copy fails with "The size must exactly
#: match" for these widths, whatever the codec; measured for every multiple of 8 from 16 to 256).
DECORD_BAD_SIZES: frozenset[int] = frozenset({16, 24, 48, 72})


def class_name(action: str) -> str:
    """CamelCase folder name of an action as used by UCF101/ARID (``"drink"`` -> ``"Drink"``)."""
    return action[:1].upper() + action[1:]


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a SynthActions benchmark (same config -> identical clips)."""

    classes: tuple[str, ...] = ACTIONS  # subset of ACTIONS to generate (kept in ACTIONS order)
    clips_per_class: int = 24  # clips rendered per class
    clips_per_group: int = 4  # clips per group gXX; a group = one actor + scene (UCF101-style)
    num_frames: int = 32  # frames per clip
    size: int = 64  # frame height = width in pixels
    fps: int = 15  # frame rate written to the videos; periodic actions run in real time
    seed: int = 0  # master seed; every clip's Generator is seeded from (seed, class, clip index)
    noise_std: float = 3.0  # std of additive Gaussian pixel noise (uint8 units)
    clutter: int = 8  # static background shapes per scene
    distractors: int = 2  # slowly moving background blobs per clip
    camera_jitter: float = 0.6  # std (pixels at `size`) of the per-frame camera translation
    test_fraction: float = 0.3  # fraction of groups held out for testing in each of the 3 splits
    lowlight: bool = False  # ARID-style dark variant (clean ground truth written under clean/)
    layouts: tuple[str, ...] = ("ucf101",)  # directory layouts to write: ucf101, hmdb51, arid

    def __post_init__(self) -> None:
        _check(isinstance(self.classes, tuple) and len(self.classes) >= 2,
               "classes", f"must be a tuple of at least 2 action names, got {self.classes!r}")
        unknown = [c for c in self.classes if c not in ACTIONS]
        _check(not unknown, "classes", f"unknown action(s) {unknown}; choose from {list(ACTIONS)}")
        _check(len(set(self.classes)) == len(self.classes), "classes", "contains duplicates")
        _check(list(self.classes) == sorted(self.classes, key=ACTIONS.index), "classes",
               f"must follow ACTIONS order {list(ACTIONS)}, got {list(self.classes)}")
        _check_int(self.clips_per_class, "clips_per_class", 2)
        _check_int(self.clips_per_group, "clips_per_group", 1)
        _check(self.num_groups >= 2, "clips_per_group",
               f"leaves {self.num_groups} group(s) for clips_per_class={self.clips_per_class}; "
               "need at least 2 groups so train and test are disjoint")
        _check_int(self.num_frames, "num_frames", 4)
        _check_int(self.size, "size", 32)
        _check(self.size % 8 == 0, "size", f"must be a multiple of 8, got {self.size}")
        _check(self.size not in DECORD_BAD_SIZES, "size",
               f"{self.size} cannot be decoded by decord 0.6.0 (bad widths: {sorted(DECORD_BAD_SIZES)})")
        _check_int(self.fps, "fps", 1)
        _check_int(self.seed, "seed", 0)
        _check_float(self.noise_std, "noise_std", 0.0, 64.0)
        _check_int(self.clutter, "clutter", 0)
        _check_int(self.distractors, "distractors", 0)
        _check_float(self.camera_jitter, "camera_jitter", 0.0, 4.0)
        _check_float(self.test_fraction, "test_fraction", 0.0, 1.0)
        _check(0.0 < self.test_fraction < 1.0, "test_fraction", f"must be in (0, 1), got {self.test_fraction}")
        _check(isinstance(self.lowlight, bool), "lowlight", f"must be a bool, got {self.lowlight!r}")
        _check(isinstance(self.layouts, tuple) and len(self.layouts) >= 1, "layouts",
               f"must be a non-empty tuple, got {self.layouts!r}")
        bad = [name for name in self.layouts if name not in LAYOUTS]
        _check(not bad, "layouts", f"unknown layout(s) {bad}; choose from {list(LAYOUTS)}")
        _check(len(set(self.layouts)) == len(self.layouts), "layouts", "contains duplicates")

    @property
    def num_groups(self) -> int:
        """Number of groups gXX per class."""
        return math.ceil(self.clips_per_class / self.clips_per_group)

    @property
    def test_groups_per_split(self) -> int:
        """Groups held out per split (at least 1, leaving at least 1 for training)."""
        return min(self.num_groups - 1, max(1, round(self.test_fraction * self.num_groups)))

    def to_dict(self) -> dict:
        """JSON-friendly dict of all fields."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    def content_key(self) -> str:
        """Hash of the fields that change clip content (not ``layouts`` or ``test_fraction``)."""
        d = self.to_dict()
        for name in ("layouts", "test_fraction", "classes"):
            d.pop(name)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ValueError(f"SynthConfig.{field} {message}")


def _check_int(value: object, field: str, minimum: int) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), field,
           f"must be an int, got {type(value).__name__} {value!r}")
    _check(value >= minimum, field, f"must be >= {minimum}, got {value}")  # type: ignore[operator]


def _check_float(value: object, field: str, lo: float, hi: float) -> None:
    _check(isinstance(value, (int, float)) and not isinstance(value, bool), field,
           f"must be a number, got {type(value).__name__} {value!r}")
    _check(lo <= float(value) <= hi, field, f"must be in [{lo}, {hi}], got {value}")  # type: ignore[arg-type]
