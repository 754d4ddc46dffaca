"""Rendering SynthActions clips: scene (background, clutter, distractors), camera, noise, low light.

A clip is drawn at 2x resolution with antialiased cv2 primitives and area-downsampled, which gives
smooth edges even at 32 px. The random draws of a clip happen in a fixed order that does not depend
on the class (scene, motion, placement, distractors, camera jitter, noise), so the same Generator
state renders the same actor, scene and noise for every class: the confusable pairs described in
:mod:`stia_kit.synth.actions` then differ only by their motion.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .actions import Motion, motion_dict, pose_at, speed_info
from .config import ACTIONS, SynthConfig
from .figure import Camera, Canvas, Look, draw_actor, draw_prop

SUPERSAMPLE = 2
_PANORAMA_WIDTHS = 4  # background panorama width in frame widths (wraps around while panning)
_MARGIN = 8  # vertical panorama margin (supersampled px) absorbing the camera jitter


# ----------------------------------------------------------------------------------- scene / actor
@dataclass(frozen=True)
class Scene:
    """One "group": an actor and the place they are filmed in (shared by the clips of a group)."""

    look: Look  # actor colours
    height_frac: float  # actor standing height as a fraction of the frame height
    floor_frac: float  # floor line as a fraction of the frame height
    wall: tuple[int, int, int]  # background colour above the floor
    floor: tuple[int, int, int]  # floor colour
    background_seed: int  # seeds the static texture and clutter

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Scene":
        """Draw a scene with an actor that stands out from the wall."""
        wall = rng.integers(50, 210, size=3)
        floor = np.clip(wall * rng.uniform(0.5, 0.9) + rng.integers(-20, 21, size=3), 0, 255)
        shirt, pants, skin_shift = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3), rng.uniform(0.7, 1.1)
        wall_lum = float(wall.mean())
        shirt, pants = (_contrast(c, wall_lum) for c in (shirt, pants))
        skin = _contrast(np.array([224, 172, 140]) * skin_shift, wall_lum)
        return cls(look=Look(_rgb(shirt), _rgb(pants), _rgb(skin)),
                   height_frac=float(rng.uniform(0.5, 0.64)), floor_frac=float(rng.uniform(0.86, 0.94)),
                   wall=_rgb(wall), floor=_rgb(floor), background_seed=int(rng.integers(0, 2 ** 31)))


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.round(c), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def _contrast(colour: np.ndarray, wall_lum: float, min_gap: float = 60.0) -> np.ndarray:
    """Shift ``colour``'s brightness away from the wall brightness (no random draws)."""
    gap = float(colour.mean()) - wall_lum
    if abs(gap) >= min_gap:
        return colour
    target = wall_lum + (min_gap if (gap >= 0 and wall_lum + min_gap <= 235) or wall_lum - min_gap < 20
                         else -min_gap)
    return np.clip(colour + (target - colour.mean()), 0, 255)


def build_background(scene: Scene, cfg: SynthConfig) -> np.ndarray:
    """Static supersampled panorama (wall texture, clutter, floor) that wraps horizontally."""
    rng = np.random.default_rng(scene.background_seed)
    s = cfg.size * SUPERSAMPLE
    height, width = s + 2 * _MARGIN, s * _PANORAMA_WIDTHS
    floor_y = _MARGIN + scene.floor_frac * s
    img = np.empty((height, width, 3), np.float32)
    img[:] = scene.wall
    img[int(floor_y):] = scene.floor
    # Low-frequency periodic texture: a small random grid tiled, upsampled, cropped.
    grid = rng.normal(0.0, 1.0, size=(6, 4 * _PANORAMA_WIDTHS)).astype(np.float32)
    tiled = np.tile(grid, (1, 3))
    smooth = cv2.resize(tiled, (width * 3, height), interpolation=cv2.INTER_CUBIC)[:, width:2 * width]
    img += 14.0 * smooth[..., None]
    # Floor boards: vertical seams that make camera panning visible.
    for x in np.arange(0, width, s / 3.0) + rng.uniform(0, s / 3.0):
        cv2.line(img, (int(x), int(floor_y)), (int(x - 0.2 * s), height), [0.8 * c for c in scene.floor], 2)
    for _ in range(cfg.clutter):
        _draw_clutter(img, rng, width, floor_y, s)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_clutter(img: np.ndarray, rng: np.random.Generator, width: int, floor_y: float, s: int) -> None:
    colour = [float(c) for c in rng.integers(20, 236, size=3)]
    kind = int(rng.integers(0, 3))
    x, y = float(rng.uniform(0, width)), float(rng.uniform(_MARGIN, floor_y))
    size = float(rng.uniform(0.06, 0.22)) * s
    if kind == 0:  # picture frame / window
        cv2.rectangle(img, (int(x), int(y)), (int(x + size), int(y + size * rng.uniform(0.5, 1.2))), colour,
                      -1 if rng.random() < 0.5 else 3, cv2.LINE_AA)
    elif kind == 1:  # round object
        cv2.circle(img, (int(x), int(y)), int(size / 2), colour, -1, cv2.LINE_AA)
    else:  # shelf / cable
        angle = rng.uniform(-0.4, 0.4)
        cv2.line(img, (int(x), int(y)), (int(x + 2 * size * math.cos(angle)), int(y + 2 * size * math.sin(angle))),
                 colour, 3, cv2.LINE_AA)


# ----------------------------------------------------------------------------------- clips
@dataclass
class RenderedClip:
    """Frames uint8 [T,H,W,3] RGB, masks bool [T,H,W], boxes int32 [T,4] (x0, y0, x1, y1; x1/y1
    exclusive, so ``masks[t, y0:y1, x0:x1]`` holds the whole mask) and metadata."""

    frames: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    meta: dict


def render_clip(action: str, rng: np.random.Generator, cfg: SynthConfig,
                *, scene: Scene | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one clip of ``action``.

    Returns frames uint8 [T,H,W,3] RGB, masks bool [T,H,W] (actor + held/manipulated object) and
    boxes int32 [T,4] = (x0, y0, x1, y1) of the mask with exclusive x1/y1. ``scene`` (the group's
    actor and background) is drawn from ``rng`` when not given.
    """
    clip = render_clip_with_meta(action, rng, cfg, scene=scene)
    return clip.frames, clip.masks, clip.boxes


def render_clip_with_meta(action: str, rng: np.random.Generator, cfg: SynthConfig,
                          *, scene: Scene | None = None) -> RenderedClip:
    """:func:`render_clip` plus per-clip metadata (motion parameters, speed, scene)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {list(ACTIONS)}, got {action!r}")
    if action == "stand":  # by design: the sit trajectory played backwards, draws included
        clip = render_clip_with_meta("sit", rng, cfg, scene=scene)
        clip.meta["action"] = "stand"
        return RenderedClip(clip.frames[::-1].copy(), clip.masks[::-1].copy(), clip.boxes[::-1].copy(), clip.meta)

    scene = Scene.sample(rng) if scene is None else scene
    motion = Motion.sample(rng)
    place_u, scale_u = rng.random(2)
    n_t, size, ss = cfg.num_frames, cfg.size, SUPERSAMPLE
    distract = rng.random((cfg.distractors, 7))
    distract_colour = rng.integers(20, 236, size=(cfg.distractors, 3))
    jitter = rng.normal(0.0, cfg.camera_jitter, size=(n_t, 2)) if cfg.camera_jitter > 0 else np.zeros((n_t, 2))
    noise = rng.standard_normal((n_t, size, size, 3), dtype=np.float32) if cfg.noise_std > 0 else None

    panorama = build_background(scene, cfg)
    s = size * ss
    scale = scene.height_frac * s * (0.94 + 0.12 * scale_u)
    floor_y = scene.floor_frac * s
    forward_bias = {"walk": 0.0, "run": 0.0, "wave": 0.0, "turn": 0.0, "jump": 0.0, "sit": -0.1}.get(action, 0.12)
    pose0, _ = pose_at(action, 0, n_t, cfg.fps, motion)
    anchor_x = s * (0.5 + 0.16 * (place_u - 0.5)) - forward_bias * scale * math.cos(pose0.yaw)

    frames = np.empty((n_t, size, size, 3), np.uint8)
    masks = np.empty((n_t, size, size), bool)
    for k in range(n_t):
        pose, travel = pose_at(action, k, n_t, cfg.fps, motion)
        pan = travel * scale * math.cos(pose.yaw)
        jx, jy = jitter[k] * ss
        m = np.float32([[1, 0, pan - jx], [0, 1, _MARGIN - jy]])
        image = cv2.warpAffine(panorama, m, (s, s), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_WRAP)
        _draw_distractors(image, distract, distract_colour, k, s, floor_y, pan - jx, jy)
        canvas = Canvas(image, Camera(origin_x=anchor_x + jx, floor_y=floor_y + jy, scale=scale))
        for prop in pose.props:
            if prop.behind:
                draw_prop(canvas, prop, pose.yaw)
        draw_actor(canvas, pose, scene.look)
        frames[k] = cv2.resize(canvas.image, (size, size), interpolation=cv2.INTER_AREA)
        masks[k] = cv2.resize(canvas.mask, (size, size), interpolation=cv2.INTER_AREA) >= 128
    if noise is not None:
        frames = np.clip(frames + noise * np.float32(cfg.noise_std), 0, 255).round().astype(np.uint8)
    meta = {"action": action, "speed": speed_info(action, motion), "motion": motion_dict(motion),
            "scene": _scene_dict(scene), "place_u": float(place_u), "scale_u": float(scale_u)}
    return RenderedClip(frames, masks, boxes_from_masks(masks), meta)


def _scene_dict(scene: Scene) -> dict:
    d = asdict(scene)
    d["look"] = {k: list(v) for k, v in d["look"].items()}
    for key in ("wall", "floor"):
        d[key] = list(d[key])
    return d


def _draw_distractors(image: np.ndarray, params: np.ndarray, colours: np.ndarray, k: int, s: int,
                      floor_y: float, shift_x: float, shift_y: float) -> None:
    """Slowly drifting translucent-looking blobs on the wall (behind the actor)."""
    for (x, y, vx, vy, rx, ry, ang), colour in zip(params, colours):
        cx = (x * s + (vx - 0.5) * 0.02 * s * k - shift_x) % s
        cy = 0.15 * s + y * (floor_y - 0.3 * s) + (vy - 0.5) * 0.01 * s * k + shift_y
        axes = (int(0.04 * s + rx * 0.06 * s), int(0.03 * s + ry * 0.05 * s))
        cv2.ellipse(image, (int(round(cx * 16)), int(round(cy * 16))), (axes[0] * 16, axes[1] * 16),
                    float(ang * 180), 0, 360, [int(c) for c in colour], -1, cv2.LINE_AA, 4)


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """[T,4] int32 (x0, y0, x1, y1) bounding boxes of boolean masks, x1/y1 exclusive; zeros if empty."""
    boxes = np.zeros((masks.shape[0], 4), np.int32)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if ys.size:
            boxes[k] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def frames_digest(frames: np.ndarray) -> str:
    """sha256 of a uint8 frame array (shape included)."""
    h = hashlib.sha256(str(frames.shape).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------- low light
@dataclass(frozen=True)
class DarkenParams:
    """ARID-style low-light degradation of one clip."""

    gamma: float  # intensity exponent (2.5-4): crushes the mid-tones
    exposure: float  # multiplicative exposure after the gamma
    contrast: float  # contrast kept around the black level
    black_level: float  # sensor black offset (fraction of full scale)
    cast: tuple[float, float, float]  # per-channel gains (colour cast)
    shot_noise: float  # Poisson-like noise: variance = shot_noise * signal
    read_noise: float  # Gaussian read noise std (fraction of full scale)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "DarkenParams":
        """Randomise the degradation for one clip."""
        u = rng.random(6)
        cast = 1.0 + rng.uniform(-0.2, 0.2, size=3)
        cast = cast / cast.mean()
        return cls(gamma=float(2.5 + 1.5 * u[0]), exposure=float(0.55 + 0.35 * u[1]),
                   contrast=float(0.6 + 0.3 * u[2]), black_level=float(0.01 + 0.02 * u[3]),
                   cast=(float(cast[0]), float(cast[1]), float(cast[2])),
                   shot_noise=float(0.0005 + 0.0025 * u[4]), read_noise=float(0.004 + 0.008 * u[5]))


def darken(frames: np.ndarray, rng: np.random.Generator, params: DarkenParams | None = None,
           *, return_params: bool = False) -> np.ndarray | tuple[np.ndarray, DarkenParams]:
    """Turn clean uint8 frames [T,H,W,3] into a dark, noisy, colour-cast ARID-like clip.

    ``params`` default to :meth:`DarkenParams.sample` with ``rng``; the sensor noise is always drawn
    from ``rng``. With ``return_params=True`` returns ``(dark_frames, params)`` so callers can record them.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}")
    params = DarkenParams.sample(rng) if params is None else params
    x = frames.astype(np.float32) / 255.0
    x = np.power(x, params.gamma) * params.exposure * np.float32(params.cast)
    x = params.black_level + params.contrast * x
    std = np.sqrt(params.shot_noise * x + params.read_noise ** 2)
    x = x + std * rng.standard_normal(x.shape, dtype=np.float32)
    dark = np.clip(x * 255.0, 0, 255).round().astype(np.uint8)
    return (dark, params) if return_params else dark
