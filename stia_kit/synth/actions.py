"""Pose trajectories of the 11 SynthActions classes.

Every class is a function of frame index -> :class:`~stia_kit.synth.figure.Pose`, driven by the same
per-clip random draws (:class:`Motion`), so two classes rendered with identical Generators differ only
where their motion differs. The classes come in confusable pairs on purpose:

* walk / run: one gait function; run only has a higher cadence (1.7-2.2 vs 0.8-1.2 cycles/s) and a
  12 % longer stride, so a single frame looks alike and only the speed of change separates them.
* sit / stand: one trajectory (standing -> seated onto a stool); stand is sit played backwards, frame
  for frame, so the two clips contain the same set of frames.
* drink / pour: both hold a cup at the chest next to a table with a bowl; drink brings the cup to the
  mouth, pour moves it over the bowl and tips it. They differ only around the arm and cup.
* pick / push: both bend to a box on the floor with the same reaching motion; pick then lifts the box
  to the chest, push slides it forward along the floor while stepping after it.
* jump (crouch, take off, land), turn (a half rotation about the vertical axis: the projected torso
  narrows, widens and mirrors) and wave (one forearm oscillating overhead, near-frontal view).

Periodic actions (walk, run, jump, wave) run in real time at the configured fps; one-shot actions
are placed in normalised clip time so the whole action is visible at any clip length.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .figure import (FOREARM, HIP_HALF, NECK_TO_HEAD, SHIN, SHOULDER_HALF, STAND_HIP_HEIGHT, THIGH,
                     TORSO, UPPER_ARM, Pose, Prop, direction, two_link_ik, vec)

PERIODIC = frozenset({"walk", "run", "jump", "wave"})

# Cadence ranges (cycles per second) of the periodic classes; walk and run do not overlap.
CADENCE = {"walk": (0.8, 1.2), "run": (1.7, 2.2), "jump": (0.8, 1.2), "wave": (1.5, 2.5)}
RUN_STRIDE_GAIN = 1.12

BOX_START = vec(0.33, 0.075)
BOX_SIZE = 0.15
TABLE_TOP = vec(0.30, 0.42)
STOOL_SEAT = vec(-0.21, 0.27)
CUP_REST = vec(0.17, 0.55)

FURNITURE = (150, 110, 70)
BOWL = (210, 210, 225)
LIQUID = (70, 120, 230)


@dataclass(frozen=True)
class Motion:
    """Per-clip random motion parameters, drawn identically for every class."""

    mirror: bool  # face left instead of right
    yaw_offset: float  # radians away from the pure profile/frontal view
    speed_u: float  # uniform [0, 1): position inside the class's speed range
    phase_u: float  # uniform [0, 1): phase of periodic actions
    onset_u: float  # uniform [0, 1): start time of one-shot actions
    duration_u: float  # uniform [0, 1): duration of one-shot actions
    amplitude_u: float  # uniform [0, 1): stride / jump height / wave amplitude
    alt: bool  # turn direction / waving arm
    cup_color: tuple[int, int, int]
    box_color: tuple[int, int, int]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Motion":
        """Draw a Motion (always the same number of draws, whatever the class)."""
        u = rng.random(8)
        cols = rng.integers(40, 230, size=(2, 3))
        return cls(mirror=bool(u[0] < 0.5), yaw_offset=float((u[1] - 0.5) * 0.6),
                   speed_u=float(u[2]), phase_u=float(u[3]), onset_u=float(u[4]),
                   duration_u=float(u[5]), amplitude_u=float(u[6]), alt=bool(u[7] < 0.5),
                   cup_color=tuple(int(c) for c in cols[0]),  # type: ignore[arg-type]
                   box_color=tuple(int(c) for c in cols[1]))  # type: ignore[arg-type]


def speed_info(action: str, motion: Motion) -> dict[str, float]:
    """Metadata describing how fast this clip's action is performed."""
    if action in PERIODIC:
        lo, hi = CADENCE[action]
        return {"cycles_per_s": lo + (hi - lo) * motion.speed_u}
    onset, duration = _window(motion)
    return {"onset_frac": onset, "duration_frac": duration}


def motion_dict(motion: Motion) -> dict:
    """JSON-friendly view of a Motion."""
    d = asdict(motion)
    d["cup_color"], d["box_color"] = list(motion.cup_color), list(motion.box_color)
    return d


def _window(motion: Motion) -> tuple[float, float]:
    onset = 0.04 + 0.16 * motion.onset_u
    duration = min(0.55 + 0.35 * motion.duration_u, 0.98 - onset)
    return onset, duration


def smoothstep(x: float) -> float:
    """Cubic ease in [0, 1] (clamped)."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def lerp(a, b, w: float):
    """Linear interpolation (works for floats and numpy vectors)."""
    return a + (b - a) * w


# --------------------------------------------------------------------------------- body builders
def _upper_body(j: dict[str, np.ndarray], pelvis: np.ndarray, lean: float) -> None:
    """Torso leaning forward by ``lean`` radians; sets neck, head and shoulders."""
    j["pelvis"] = pelvis
    j["neck"] = pelvis + TORSO * vec(math.sin(lean), math.cos(lean))
    j["head"] = j["neck"] + NECK_TO_HEAD * vec(math.sin(lean * 0.8), math.cos(lean * 0.8))
    for side, sign in (("l", 1.0), ("r", -1.0)):
        j[f"shoulder_{side}"] = j["neck"] + vec(0.0, -0.015, sign * SHOULDER_HALF)
        j[f"hip_{side}"] = pelvis + vec(0.0, 0.0, sign * HIP_HALF)


def _leg_to(j: dict[str, np.ndarray], side: str, foot: np.ndarray) -> None:
    hip = j[f"hip_{side}"]
    target = vec(foot[0], foot[1], hip[2])
    j[f"knee_{side}"], j[f"foot_{side}"] = two_link_ik(hip, target, THIGH, SHIN, bend=+1.0)


def _arm_to(j: dict[str, np.ndarray], side: str, hand: np.ndarray) -> None:
    shoulder = j[f"shoulder_{side}"]
    target = vec(hand[0], hand[1], shoulder[2] if hand[2] == 0 else hand[2])
    j[f"elbow_{side}"], j[f"hand_{side}"] = two_link_ik(shoulder, target, UPPER_ARM, FOREARM, bend=-1.0)


def _arm_swing(j: dict[str, np.ndarray], side: str, flex: float, elbow: float) -> None:
    """Forward kinematics: upper arm at ``flex`` from vertical, forearm a further ``elbow``."""
    j[f"elbow_{side}"] = j[f"shoulder_{side}"] + UPPER_ARM * direction(flex)
    j[f"hand_{side}"] = j[f"elbow_{side}"] + FOREARM * direction(flex + elbow)


def _standing(lean: float = 0.02, pelvis: np.ndarray | None = None) -> dict[str, np.ndarray]:
    j: dict[str, np.ndarray] = {}
    _upper_body(j, vec(0.0, STAND_HIP_HEIGHT) if pelvis is None else pelvis, lean)
    _leg_to(j, "l", vec(0.03, 0.0))
    _leg_to(j, "r", vec(-0.02, 0.0))
    _arm_swing(j, "l", 0.08, 0.2)
    _arm_swing(j, "r", -0.05, 0.2)
    return j


def _base_yaw(motion: Motion) -> float:
    return (math.pi if motion.mirror else 0.0) + motion.yaw_offset


def _near_side(yaw: float) -> str:
    """The arm nearer to the camera (depth of lateral=-1 is +cos(yaw))."""
    return "r" if math.cos(yaw) >= 0 else "l"


# --------------------------------------------------------------------------------- classes
def _gait(t: float, motion: Motion, run: bool) -> tuple[Pose, float]:
    lo, hi = CADENCE["run" if run else "walk"]
    cadence = lo + (hi - lo) * motion.speed_u
    amp = (0.42 + 0.06 * motion.amplitude_u) * (RUN_STRIDE_GAIN if run else 1.0)
    omega_t = 2 * math.pi * (cadence * t + motion.phase_u)
    j: dict[str, np.ndarray] = {}
    _upper_body(j, vec(0.0, STAND_HIP_HEIGHT), 0.08)
    for side, off in (("l", 0.0), ("r", math.pi)):
        thigh = amp * math.sin(omega_t + off)
        knee = 0.1 + 1.0 * max(0.0, math.cos(omega_t + off)) ** 1.5
        j[f"knee_{side}"] = j[f"hip_{side}"] + THIGH * direction(thigh)
        j[f"foot_{side}"] = j[f"knee_{side}"] + SHIN * direction(thigh - knee)
        _arm_swing(j, side, -0.8 * amp * math.sin(omega_t + off), 0.5)
    lowest = min(j["foot_l"][1], j["foot_r"][1])
    for name in j:  # keep the stance foot on the floor (gives the natural vertical bob)
        j[name] = j[name] - vec(0.0, lowest)
    stride = 2 * (THIGH + SHIN) * math.sin(amp)
    travel = 2 * cadence * stride * 0.9 * t
    return Pose(j, _base_yaw(motion)), travel


def _sit(p: float, motion: Motion) -> Pose:
    """Standing (p=0) -> seated on a stool (p=1)."""
    w = smoothstep(p)
    pelvis = vec(lerp(0.0, -0.17, w), lerp(STAND_HIP_HEIGHT, 0.30, smoothstep(p * 1.1 - 0.05)))
    j: dict[str, np.ndarray] = {}
    _upper_body(j, pelvis, 0.05 + 0.5 * math.sin(math.pi * w) + 0.08 * w)
    _leg_to(j, "l", vec(0.05, 0.0))
    _leg_to(j, "r", vec(0.0, 0.0))
    for side in ("l", "r"):
        hang = j[f"shoulder_{side}"] + vec(0.05, -UPPER_ARM - FOREARM + 0.02)
        lap = (j[f"hip_{side}"] + j[f"knee_{side}"]) / 2 + vec(0.0, 0.05)
        _arm_to(j, side, lerp(hang, vec(lap[0], lap[1]), w))
    stool = Prop("stool", STOOL_SEAT.copy(), 0.2, FURNITURE, behind=True)
    return Pose(j, _base_yaw(motion), [stool])


def _reach_box(p: float, motion: Motion, lift: bool) -> Pose:
    """Bend to the box (shared by pick and push), then lift it (pick) or slide it (push)."""
    reach = smoothstep(p / 0.35)
    act = smoothstep((p - 0.45) / 0.55)
    box = BOX_START.copy()
    feet = [vec(0.02, 0.0), vec(-0.03, 0.0)]
    if lift:
        box = vec(lerp(BOX_START[0], 0.2, act), lerp(BOX_START[1], 0.5, act))
        crouch, lean, shift = reach * (1 - act), 1.1 * reach * (1 - act) + 0.12 * act, 0.0
    else:
        slide = 0.3 * act
        box = BOX_START + vec(slide, 0.0)
        crouch, lean, shift = reach, 1.1 * reach - 0.15 * act, slide
        for i, (a, b) in enumerate(((0.0, 0.5), (0.5, 1.0))):  # left then right foot steps forward
            s = min(max((act - a) / (b - a), 0.0), 1.0)
            feet[i] = feet[i] + vec(0.3 * smoothstep(s), 0.05 * math.sin(math.pi * s))
    pelvis = vec(shift - 0.06 * crouch, STAND_HIP_HEIGHT - 0.18 * crouch)
    j: dict[str, np.ndarray] = {}
    _upper_body(j, pelvis, 0.03 + lean)
    _leg_to(j, "l", feet[0])
    _leg_to(j, "r", feet[1])
    grasp = box + vec(-0.075, 0.045)
    for side in ("l", "r"):
        hang = j[f"shoulder_{side}"] + vec(0.04, -UPPER_ARM - FOREARM + 0.02)
        hand = lerp(hang, grasp, reach if act == 0 else 1.0)
        _arm_to(j, side, vec(hand[0], hand[1]))
    # The box follows the hands once grasped (it stays where the hands actually are).
    if act > 0:
        box = (j["hand_l"] + j["hand_r"]) / 2 - vec(-0.075, 0.045)
        box[2] = 0.0
    prop = Prop("box", box, BOX_SIZE, motion.box_color, in_mask=True)
    return Pose(j, _base_yaw(motion), [prop])


def _cup(p: float, motion: Motion, drink: bool) -> Pose:
    """Hold a cup at the chest; drink: to the mouth, pour: over the bowl, tipped."""
    go = smoothstep(p / 0.35) * (1 - smoothstep((p - 0.65) / 0.35))
    tip = smoothstep((p - 0.35) / 0.1) * (1 - smoothstep((p - 0.55) / 0.1))
    yaw = _base_yaw(motion)
    j = _standing(0.03)
    side = _near_side(yaw)
    if drink:
        hand, angle = lerp(CUP_REST, vec(0.11, 0.80), go), -0.3 * go - 0.7 * tip
    else:
        hand, angle = lerp(CUP_REST, vec(0.22, 0.65), go), 0.3 * go + 1.5 * tip
    _arm_to(j, side, hand)
    cup_center = j[f"hand_{side}"] + vec(0.0, 0.03)
    cup_center[2] = j[f"hand_{side}"][2]
    props = [Prop("table", TABLE_TOP.copy(), 0.22, FURNITURE, behind=True),
             Prop("bowl", TABLE_TOP + vec(-0.02, 0.005), 0.1, BOWL, behind=True),
             Prop("cup", cup_center, 0.08, motion.cup_color, angle=angle, in_mask=True)]
    if not drink and angle > 1.2:
        lip = cup_center + 0.04 * vec(math.sin(angle), math.cos(angle))
        props.append(Prop("stream", lip, 0.015, LIQUID, end=vec(lip[0], TABLE_TOP[1] + 0.04, lip[2])))
    return Pose(j, yaw, props)


def _jump(t: float, motion: Motion) -> Pose:
    lo, hi = CADENCE["jump"]
    c = ((lo + (hi - lo) * motion.speed_u) * t + motion.phase_u) % 1.0
    height_max = 0.2 + 0.08 * motion.amplitude_u
    crouch, height, arms_up = 0.0, 0.0, 0.0
    if c < 0.3:
        crouch = smoothstep(c / 0.3)
    elif c < 0.4:
        crouch = 1 - smoothstep((c - 0.3) / 0.1)
        arms_up = smoothstep((c - 0.3) / 0.1)
    elif c < 0.8:
        s = (c - 0.4) / 0.4
        height = 4 * height_max * s * (1 - s)
        arms_up = 1 - smoothstep((s - 0.5) / 0.5)
    else:
        crouch = 0.6 * math.sin(math.pi * (c - 0.8) / 0.2)
    tuck = 0.06 * math.sin(math.pi * min(max((c - 0.4) / 0.4, 0.0), 1.0))
    j: dict[str, np.ndarray] = {}
    _upper_body(j, vec(-0.04 * crouch, STAND_HIP_HEIGHT - 0.16 * crouch + height), 0.45 * crouch + 0.03)
    _leg_to(j, "l", vec(0.03, height + tuck))
    _leg_to(j, "r", vec(-0.02, height + tuck))
    for side in ("l", "r"):
        _arm_swing(j, side, -0.7 * crouch + 2.6 * arms_up, 0.25)
    return Pose(j, _base_yaw(motion))


def _turn(p: float, motion: Motion) -> Pose:
    w = smoothstep(p)
    yaw = _base_yaw(motion) + (1 if motion.alt else -1) * math.pi * w
    j: dict[str, np.ndarray] = {}
    _upper_body(j, vec(0.0, STAND_HIP_HEIGHT), 0.03)
    step = math.sin(4 * math.pi * min(max(p, 0.0), 1.0)) if 0 < w < 1 else 0.0
    _leg_to(j, "l", vec(0.0, 0.05 * max(0.0, step), 0.0))
    _leg_to(j, "r", vec(0.0, 0.05 * max(0.0, -step), 0.0))
    _arm_swing(j, "l", 0.05, 0.25)
    _arm_swing(j, "r", 0.05, 0.25)
    return Pose(j, yaw)


def _wave(t: float, motion: Motion) -> Pose:
    lo, hi = CADENCE["wave"]
    omega_t = 2 * math.pi * ((lo + (hi - lo) * motion.speed_u) * t + motion.phase_u)
    yaw = math.pi / 2 + (0.6 if motion.mirror else -0.6) + 0.5 * motion.yaw_offset
    j = _standing(0.02)
    side = "l" if motion.alt else "r"
    sign = 1.0 if side == "l" else -1.0
    abduct = 2.35
    elbow = j[f"shoulder_{side}"] + UPPER_ARM * vec(0.0, -math.cos(abduct), sign * math.sin(abduct))
    beta = math.pi - 0.15 + (0.4 + 0.2 * motion.amplitude_u) * math.sin(omega_t)
    j[f"elbow_{side}"] = elbow
    j[f"hand_{side}"] = elbow + FOREARM * vec(0.0, -math.cos(beta), sign * math.sin(beta))
    return Pose(j, yaw)


def pose_at(action: str, frame: int, num_frames: int, fps: int, motion: Motion) -> tuple[Pose, float]:
    """Pose of ``action`` at ``frame`` and the forward distance travelled (followed by the camera)."""
    t = frame / fps
    onset, duration = _window(motion)
    p = (frame / max(num_frames - 1, 1) - onset) / duration
    p = min(max(p, 0.0), 1.0)
    if action in ("walk", "run"):
        return _gait(t, motion, run=action == "run")
    if action == "sit":
        return _sit(p, motion), 0.0
    if action == "stand":
        raise ValueError("stand is rendered as sit played backwards; see render.render_clip")
    if action in ("pick", "push"):
        return _reach_box(p, motion, lift=action == "pick"), 0.0
    if action in ("drink", "pour"):
        return _cup(p, motion, drink=action == "drink"), 0.0
    if action == "jump":
        return _jump(t, motion), 0.0
    if action == "turn":
        return _turn(p, motion), 0.0
    if action == "wave":
        return _wave(t, motion), 0.0
    raise ValueError(f"unknown action {action!r}")
