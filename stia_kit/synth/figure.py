"""The articulated actor: 3D skeleton, simple kinematics, projection and cv2 drawing.

Coordinates are in *body units* (standing height ~= 1) in a world frame with axes
``(forward, up, lateral)``: ``forward`` is where the actor faces at yaw 0, ``up`` is vertical with the
floor at 0, ``lateral`` points to the actor's left. The camera is orthographic and looks
horizontally; the actor's yaw ``phi`` rotates the body about the vertical axis:

    image_x = forward * cos(phi) + lateral * sin(phi)      (phi = 0: profile facing right,
    depth   = forward * sin(phi) - lateral * cos(phi)       phi = pi/2: facing the camera)

so a turning actor's torso widens, narrows and mirrors exactly as a projected 3D rotation. Parts are
painted far-to-near (painter's algorithm) and the far side is shaded darker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# Body proportions (body units).
SHIN = 0.25
THIGH = 0.25
TORSO = 0.30
NECK_TO_HEAD = 0.11
HEAD_RADIUS = 0.075
UPPER_ARM = 0.16
FOREARM = 0.16
SHOULDER_HALF = 0.09
HIP_HALF = 0.055
CHEST_HALF_DEPTH = 0.045
LIMB_WIDTH = 0.055
STAND_HIP_HEIGHT = SHIN + THIGH - 0.01  # knees very slightly bent when standing

SUBPIXEL_SHIFT = 4  # cv2 drawing uses fixed-point coordinates with 4 fractional bits
_SCALE = 1 << SUBPIXEL_SHIFT


def vec(forward: float, up: float, lateral: float = 0.0) -> np.ndarray:
    """A 3D point/vector in world body units."""
    return np.array([forward, up, lateral], dtype=np.float64)


def direction(angle: float) -> np.ndarray:
    """Unit vector in the sagittal plane: angle 0 points down, +pi/2 points forward."""
    return vec(math.sin(angle), -math.cos(angle))


def two_link_ik(root: np.ndarray, target: np.ndarray, len_a: float, len_b: float,
                bend: float) -> tuple[np.ndarray, np.ndarray]:
    """Middle joint and end effector of a 2-segment limb reaching for ``target``.

    Solved in the (forward, up) plane; the lateral coordinate is interpolated. ``bend`` = +1 puts the
    middle joint in front of the root->target line (knees), -1 behind it (elbows). An unreachable
    target is approached as far as the limb allows along the same direction.
    """
    d = target - root
    planar = math.hypot(d[0], d[1])
    reach = min(max(planar, abs(len_a - len_b) + 1e-6), len_a + len_b - 1e-6)
    ux, uy = (d[0] / planar, d[1] / planar) if planar > 1e-9 else (0.0, -1.0)
    along = (len_a ** 2 - len_b ** 2 + reach ** 2) / (2 * reach)
    off = math.sqrt(max(len_a ** 2 - along ** 2, 0.0))
    # The middle joint sits on the perpendicular rotated counter-clockwise (bend=+1: in front of a
    # downward limb, i.e. knees) or clockwise (bend=-1: behind it, i.e. elbows).
    px, py = -uy * bend, ux * bend
    frac = len_a / (len_a + len_b)
    mid = root + vec(ux * along + px * off, uy * along + py * off, d[2] * frac)
    end = root + vec(ux * reach, uy * reach, d[2])
    return mid, end


@dataclass
class Prop:
    """A small object drawn with the actor.

    kind: "box" (square), "cup" (rectangle rotated by ``angle`` in the sagittal plane, 0 = upright,
    positive tips the opening forward), "bowl" (open container), "stool", "table", "stream" (liquid
    line from ``center`` to ``end``). ``in_mask`` marks objects that belong to the actor mask (the held
    or manipulated object); the others are scene furniture.
    """

    kind: str
    center: np.ndarray
    size: float
    color: tuple[int, int, int]
    angle: float = 0.0
    in_mask: bool = False
    behind: bool = False  # draw before the actor (furniture)
    end: np.ndarray | None = None


@dataclass
class Pose:
    """Joint positions (world body units) + yaw + props of one frame."""

    joints: dict[str, np.ndarray]
    yaw: float
    props: list[Prop] = field(default_factory=list)


@dataclass(frozen=True)
class Look:
    """Appearance of an actor: colours are RGB uint8 tuples."""

    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]


@dataclass(frozen=True)
class Camera:
    """Maps world body units to (supersampled) pixels for one frame."""

    origin_x: float  # pixel x of world forward=0 / lateral=0 at yaw 0
    floor_y: float  # pixel y of the floor (up = 0)
    scale: float  # pixels per body unit

    def project(self, p: np.ndarray, yaw: float) -> tuple[float, float, float]:
        """-> (pixel x, pixel y, depth toward the camera)."""
        c, s = math.cos(yaw), math.sin(yaw)
        x = p[0] * c + p[2] * s
        depth = p[0] * s - p[2] * c
        return self.origin_x + self.scale * x, self.floor_y - self.scale * p[1], depth


def _fixed(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _SCALE)), int(round(y * _SCALE))


def _shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, round(c * factor)))) for c in color)  # type: ignore[return-value]


class Canvas:
    """An RGB image and its actor mask, drawn together (mask without antialiasing)."""

    def __init__(self, image: np.ndarray, cam: Camera) -> None:
        self.image = image
        self.mask = np.zeros(image.shape[:2], np.uint8)
        self.cam = cam

    def _px(self, p: np.ndarray, yaw: float) -> tuple[int, int]:
        x, y, _ = self.cam.project(p, yaw)
        return _fixed(x, y)

    def line(self, a: np.ndarray, b: np.ndarray, yaw: float, width: float,
             color: tuple[int, int, int], in_mask: bool) -> None:
        pa, pb = self._px(a, yaw), self._px(b, yaw)
        thick = max(1, int(round(width * self.cam.scale)))
        cv2.line(self.image, pa, pb, color, thick, cv2.LINE_AA, SUBPIXEL_SHIFT)
        if in_mask:
            cv2.line(self.mask, pa, pb, 255, thick, cv2.LINE_8, SUBPIXEL_SHIFT)

    def polygon(self, points: list[np.ndarray], yaw: float, color: tuple[int, int, int],
                in_mask: bool, hull: bool = False) -> None:
        pts = np.array([self._px(p, yaw) for p in points], np.int32)
        if hull:
            pts = cv2.convexHull(pts)[:, 0, :]
        cv2.fillPoly(self.image, [pts], color, cv2.LINE_AA, SUBPIXEL_SHIFT)
        if in_mask:
            cv2.fillPoly(self.mask, [pts], 255, cv2.LINE_8, SUBPIXEL_SHIFT)

    def disc(self, center: np.ndarray, yaw: float, radius: float, color: tuple[int, int, int],
             in_mask: bool) -> None:
        c = self._px(center, yaw)
        r = max(1, int(round(radius * self.cam.scale * _SCALE)))
        cv2.circle(self.image, c, r, color, -1, cv2.LINE_AA, SUBPIXEL_SHIFT)
        if in_mask:
            cv2.circle(self.mask, c, r, 255, -1, cv2.LINE_8, SUBPIXEL_SHIFT)


def _rotated_rect(center: np.ndarray, half_w: float, half_h: float, angle: float,
                  facing: float) -> list[np.ndarray]:
    """Corners of a rectangle in the sagittal plane rotated by ``angle`` (forward-tipping)."""
    ca, sa = math.cos(angle), math.sin(angle)
    corners = []
    for fx, uy in ((-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)):
        corners.append(center + vec(fx * ca + uy * sa, -fx * sa + uy * ca, 0.0))
    return corners


def draw_prop(canvas: Canvas, prop: Prop, yaw: float) -> None:
    """Draw one prop; boxes/cups/bowls are drawn facing the camera (no rotation foreshortening)."""
    s = prop.size
    if prop.kind == "box":
        canvas.polygon(_rotated_rect(prop.center, s / 2, s / 2, 0.0, yaw), yaw, prop.color, prop.in_mask)
        lid = prop.center + vec(0, s / 2 - 0.012)
        canvas.line(lid - vec(s / 2, 0), lid + vec(s / 2, 0), yaw, 0.02, _shade(prop.color, 0.6), prop.in_mask)
    elif prop.kind == "cup":
        canvas.polygon(_rotated_rect(prop.center, s * 0.35, s / 2, prop.angle, yaw), yaw, prop.color,
                       prop.in_mask)
    elif prop.kind == "bowl":
        c = prop.center
        pts = [c + vec(-s / 2, s / 2), c + vec(s / 2, s / 2), c + vec(s / 3, 0), c + vec(-s / 3, 0)]
        canvas.polygon(pts, yaw, prop.color, prop.in_mask)
    elif prop.kind == "table":
        c = prop.center  # centre of the table top
        canvas.line(c - vec(s / 2, 0), c + vec(s / 2, 0), yaw, 0.03, prop.color, prop.in_mask)
        canvas.line(c, vec(c[0], 0.0, c[2]), yaw, 0.03, prop.color, prop.in_mask)
        canvas.line(vec(c[0] - s / 3, 0.0, c[2]), vec(c[0] + s / 3, 0.0, c[2]), yaw, 0.03, prop.color,
                    prop.in_mask)
    elif prop.kind == "stool":
        c = prop.center  # centre of the seat
        canvas.line(c - vec(s / 2, 0), c + vec(s / 2, 0), yaw, 0.045, prop.color, prop.in_mask)
        for dx in (-s / 2.5, s / 2.5):
            canvas.line(c + vec(dx, 0), vec(c[0] + dx * 1.1, 0.0, c[2]), yaw, 0.025, prop.color, prop.in_mask)
    elif prop.kind == "stream":
        assert prop.end is not None
        canvas.line(prop.center, prop.end, yaw, s, prop.color, prop.in_mask)
    else:
        raise ValueError(f"unknown prop kind {prop.kind!r}")


def draw_actor(canvas: Canvas, pose: Pose, look: Look) -> None:
    """Paint the actor and its props far-to-near into ``canvas`` (image and mask)."""
    j, yaw = pose.joints, pose.yaw
    cam = canvas.cam
    depth = lambda p: cam.project(p, yaw)[2]  # noqa: E731 - tiny local helper
    items: list[tuple[float, int, object]] = []

    def add(d: float, fn) -> None:
        items.append((d, len(items), fn))

    for side, sign in (("l", 1.0), ("r", -1.0)):
        far = depth(j[f"shoulder_{side}"]) < depth(j["neck"])
        k = 0.72 if far else 1.0
        for a, b, colour in ((f"hip_{side}", f"knee_{side}", look.pants),
                             (f"knee_{side}", f"foot_{side}", look.pants),
                             (f"shoulder_{side}", f"elbow_{side}", look.shirt),
                             (f"elbow_{side}", f"hand_{side}", look.skin)):
            pa, pb, col = j[a], j[b], _shade(colour, k)
            add(depth((pa + pb) / 2),
                lambda pa=pa, pb=pb, col=col: canvas.line(pa, pb, yaw, LIMB_WIDTH, col, True))
        foot = j[f"foot_{side}"]
        toe = foot + vec(0.05, 0.0)
        col = _shade(look.pants, 0.55 * k)
        add(depth(foot), lambda foot=foot, toe=toe, col=col: canvas.line(foot, toe, yaw, 0.04, col, True))

    torso_pts = []
    for top in (True, False):
        centre, half = (j["neck"], SHOULDER_HALF) if top else (j["pelvis"], HIP_HALF)
        for lat in (-half, half):
            for dep in (-CHEST_HALF_DEPTH, CHEST_HALF_DEPTH):
                torso_pts.append(centre + vec(dep, 0.0, lat))
    add(depth(j["pelvis"]), lambda: canvas.polygon(torso_pts, yaw, look.shirt, True, hull=True))
    add(depth(j["neck"]) + 0.01,
        lambda: canvas.line(j["neck"], j["head"], yaw, LIMB_WIDTH * 0.8, look.skin, True))
    add(depth(j["head"]) + 0.02, lambda: _draw_head(canvas, j["head"], yaw, look))

    for prop in pose.props:
        if prop.behind:
            continue
        add(depth(prop.center) + 0.05, lambda prop=prop: draw_prop(canvas, prop, yaw))

    for _, _, fn in sorted(items, key=lambda it: (it[0], it[1])):
        fn()  # type: ignore[operator]


def _draw_head(canvas: Canvas, head: np.ndarray, yaw: float, look: Look) -> None:
    # Hair on the back/top of the head and a nose in front make the facing direction readable.
    hair = head + vec(-0.025, 0.025)
    hair_colour = _shade(look.pants, 0.5)
    hair_in_front = canvas.cam.project(hair, yaw)[2] >= canvas.cam.project(head, yaw)[2] - 1e-9
    if not hair_in_front:
        canvas.disc(hair, yaw, HEAD_RADIUS * 0.75, hair_colour, True)
    canvas.disc(head, yaw, HEAD_RADIUS, look.skin, True)
    if hair_in_front:
        canvas.disc(hair, yaw, HEAD_RADIUS * 0.75, hair_colour, True)
    nose = head + vec(HEAD_RADIUS * 0.95, -0.01)
    if canvas.cam.project(nose, yaw)[2] > -0.5 * HEAD_RADIUS:
        canvas.disc(nose, yaw, HEAD_RADIUS * 0.28, _shade(look.skin, 0.7), True)
