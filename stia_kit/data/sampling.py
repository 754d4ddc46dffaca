"""Frame-index samplers: pure functions ``(num_frames, rng) -> int64 index array``.

Two samplers, both returning ``[num_clips, T]`` arrays of frame indices in ``[0, num_frames)``:

- :func:`dense_indices`: ``T`` frames at stride ``s`` (a clip spans ``(T - 1) * s + 1`` frames). Training: one
  clip at a uniformly random start. Testing: ``num_clips`` clips with evenly spaced starts from the first to
  the last possible start (one clip: the centred one).
- :func:`tsn_indices`: TSN segment sampling. The video is cut into ``T`` equal segments and one frame is
  taken per segment: at a random offset inside each segment when training, at the segment centre when testing
  (``num_clips > 1`` test clips use offsets ``(c + 0.5) / num_clips`` of the segment length).

Short videos (fewer frames than a clip needs: ``num_frames < (T - 1) * s + 1`` for dense, ``num_frames < T``
for TSN) follow the ``short_clip`` rule, with the stride kept:

- ``"loop"``: indices wrap around, ``(start + k * s) % num_frames`` (the clip continues from the first frame).
  Training draws ``start`` uniformly in ``[0, num_frames)``; testing uses ``start = 0`` for every clip.
- ``"repeat_last"``: indices are clamped, ``min(k * s, num_frames - 1)`` (the last frame is repeated to pad),
  always starting at frame 0.

:func:`window_indices` is a third, test-only dense sampler (ST-MANet's protocol): every consecutive
non-overlapping window of ``T * s`` frames, so the number of clips varies per video.

Randomness comes only from the ``numpy.random.Generator`` passed in, so a seeded generator reproduces the
indices exactly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "ShortClipRule", "SHORT_CLIP_RULES", "dense_indices", "tsn_indices", "clip_span", "tsn_stack_indices",
    "stack_field_indices", "window_indices", "num_windows",
]

ShortClipRule = Literal["loop", "repeat_last"]
SHORT_CLIP_RULES: tuple[str, ...] = ("loop", "repeat_last")


def _check_common(num_frames: int, clip_len: int, num_clips: int, short_clip: str) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 (a video with no frames cannot be sampled), got {num_frames}")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if short_clip not in SHORT_CLIP_RULES:
        raise ValueError(f"short_clip must be one of {SHORT_CLIP_RULES}, got {short_clip!r}")


def _need_rng(rng: np.random.Generator | None, what: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"{what}: training-mode sampling needs rng=numpy.random.Generator (for reproducibility)")
    return rng


def clip_span(clip_len: int, stride: int) -> int:
    """Number of consecutive frames a dense clip covers: ``(clip_len - 1) * stride + 1``."""
    return (clip_len - 1) * stride + 1


def _short_dense(
    num_frames: int, clip_len: int, stride: int, starts: np.ndarray, short_clip: ShortClipRule
) -> np.ndarray:
    offsets = np.arange(clip_len, dtype=np.int64) * stride
    if short_clip == "loop":
        return (starts[:, None] + offsets[None, :]) % num_frames
    return np.minimum(offsets[None, :].repeat(len(starts), axis=0), num_frames - 1)


def dense_indices(
    num_frames: int,
    clip_len: int,
    stride: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    num_clips: int = 1,
    short_clip: ShortClipRule = "loop",
) -> np.ndarray:
    """Dense clip sampling: ``clip_len`` frames ``stride`` apart.

    Args:
        num_frames: frames in the video (>= 1).
        clip_len: frames per clip (T).
        stride: step between sampled frames (s >= 1).
        train: random start (one clip) when True; ``num_clips`` evenly spaced clips when False.
        rng: required when ``train`` is True.
        num_clips: test clips (ignored when training, which always returns one clip).
        short_clip: rule for videos shorter than the clip span (see module docstring).

    Shape:
        returns int64 ``[num_clips, clip_len]`` (``[1, clip_len]`` when training).
    """
    _check_common(num_frames, clip_len, num_clips, short_clip)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    span = clip_span(clip_len, stride)
    n_out = 1 if train else num_clips
    if num_frames < span:
        if train and short_clip == "loop":
            starts = _need_rng(rng, "dense_indices").integers(0, num_frames, size=1)
        else:
            starts = np.zeros(n_out, dtype=np.int64)
        return _short_dense(num_frames, clip_len, stride, starts.astype(np.int64), short_clip)
    max_start = num_frames - span
    if train:
        starts = _need_rng(rng, "dense_indices").integers(0, max_start + 1, size=1)
    elif num_clips == 1:
        starts = np.array([max_start // 2])
    else:
        starts = np.round(np.linspace(0, max_start, num_clips)).astype(np.int64)
    offsets = np.arange(clip_len, dtype=np.int64) * stride
    return (starts.astype(np.int64)[:, None] + offsets[None, :]).astype(np.int64)


def tsn_indices(
    num_frames: int,
    num_segments: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    num_clips: int = 1,
    short_clip: ShortClipRule = "loop",
) -> np.ndarray:
    """TSN segment sampling: one frame from each of ``num_segments`` equal segments.

    Args:
        num_frames: frames in the video (>= 1).
        num_segments: segments = frames per clip (T).
        train: random offset inside each segment when True, segment centre when False.
        rng: required when ``train`` is True.
        num_clips: test clips; clip ``c`` takes offset ``(c + 0.5) / num_clips`` of each segment.
        short_clip: rule when ``num_frames < num_segments`` (stride 1, see module docstring).

    Shape:
        returns int64 ``[num_clips, num_segments]`` (``[1, num_segments]`` when training).
    """
    _check_common(num_frames, num_segments, num_clips, short_clip)
    if num_frames < num_segments:
        n_out = 1 if train else num_clips
        if train and short_clip == "loop":
            starts = _need_rng(rng, "tsn_indices").integers(0, num_frames, size=1)
        else:
            starts = np.zeros(n_out, dtype=np.int64)
        return _short_dense(num_frames, num_segments, 1, starts.astype(np.int64), short_clip)
    # segment k = [b_k, b_{k+1}), b_k = floor(k F / K) in integers (a float F / K mis-rounds, e.g. F=15, K=11)
    bounds = (np.arange(num_segments + 1, dtype=np.int64) * num_frames) // num_segments
    lengths = np.maximum(bounds[1:] - bounds[:-1], 1)
    if train:
        offsets = (_need_rng(rng, "tsn_indices").random(num_segments) * lengths).astype(np.int64)
        return (bounds[:-1] + np.minimum(offsets, lengths - 1))[None, :].astype(np.int64)
    # clip c: offset floor((c + 1/2) / n * L) of each segment, as ((2c + 1) L) // (2n) in integers
    twice = 2 * np.arange(num_clips, dtype=np.int64) + 1
    idx = bounds[None, :-1] + (twice[:, None] * lengths[None, :]) // (2 * num_clips)
    return np.minimum(idx, num_frames - 1).astype(np.int64)


def num_windows(num_frames: int, clip_len: int, stride: int) -> int:
    """Windows :func:`window_indices` takes: ``max(1, num_frames // (clip_len * stride))``."""
    if num_frames < 1 or clip_len < 1 or stride < 1:
        raise ValueError(f"num_frames, clip_len and stride must be >= 1, got {num_frames}, {clip_len}, {stride}")
    return max(1, num_frames // (clip_len * stride))


def window_indices(num_frames: int, clip_len: int, stride: int, *,
                   short_clip: ShortClipRule = "loop") -> np.ndarray:
    """Every consecutive non-overlapping window of a video, one dense clip per window (test only).

    ST-MANet (paper, sec. 4.1): "the entire video is first divided into multiple continuous video segments of
    64 frames each", each subsampled at stride 2 to 32 frames. A window holds ``span = clip_len * stride``
    frames (64 = 32 x 2); window ``k`` starts at ``k * span`` and takes ``k * span + arange(clip_len) * stride``.
    Reading (the paper does not say what happens to the remainder): windows start at frame 0, the
    ``num_frames % span`` frames after the last full window are dropped, and a video shorter than one window
    gives one clip: the first window when it still fits (``num_frames >= (clip_len - 1) * stride + 1``), else
    the ``short_clip`` rule (start 0, as in test mode).

    Shape:
        returns int64 ``[V, clip_len]`` with ``V = max(1, num_frames // (clip_len * stride))`` (varies per video).
    """
    _check_common(num_frames, clip_len, 1, short_clip)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if num_frames < clip_span(clip_len, stride):
        return _short_dense(num_frames, clip_len, stride, np.zeros(1, dtype=np.int64), short_clip)
    v = num_windows(num_frames, clip_len, stride)
    starts = np.arange(v, dtype=np.int64) * (clip_len * stride)
    offsets = np.arange(clip_len, dtype=np.int64) * stride
    return starts[:, None] + offsets[None, :]  # [V, clip_len]


# ------------------------------------------------------------------------- flow stacks (two-stream)


def tsn_stack_indices(
    n_flow: int,
    num_segments: int,
    new_length: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    num_clips: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """TSN segment sampling of flow stacks, with the aligned RGB frame of each stack.

    A video of ``n`` frames has ``n_flow = n - 1`` flow fields (field ``t`` is the motion from frame ``t`` to
    ``t + 1``, 0-based). A stack is ``new_length`` (L) consecutive fields ``s .. s + L - 1``; it spans frames
    ``s .. s + L`` and its RGB frame is the centre one, ``s + L // 2`` (reading: STILT pairs one RGB frame with
    one stack per segment and never says which frame; the centre is the frame the stack's motion surrounds).

    The ``M = n_flow - L + 1`` possible starts are cut into ``num_segments`` segments (TSN convention, as
    tsn-pytorch samples flow with ``new_length``):

    - training (one clip): a random start inside each segment (:func:`tsn_indices` on the ``M`` starts); when
      ``M < num_segments``, ``num_segments`` sorted random starts in ``[0, M)`` (repeats allowed; TSN);
    - testing: start ``floor((k + (c + 0.5) / num_clips) * M / num_segments)`` for segment ``k`` and clip
      ``c`` (one clip: the segment centre, TSN's ``int(tick / 2 + tick * k)``).

    Every start is ``<= n_flow - L``. Short videos, ``n_flow < L`` (no full stack fits; TSN convention): every
    start is 0 and the stack repeats the last field (:func:`stack_field_indices` clamps), the RGB frame is
    ``min(L // 2, n_flow)``.

    Args:
        n_flow: flow fields in the video (>= 1).
        num_segments: segments = stacks per clip (N).
        new_length: fields per stack (L; STILT: 10, T-STAM/TSN: 5).
        train: random offsets (one clip) when True, evenly placed when False.
        rng: required when ``train`` is True.
        num_clips: test clips (ignored when training).

    Shape:
        returns ``(starts, rgb)``, both int64 ``[num_clips, num_segments]`` (``[1, num_segments]`` when
        training): the first field of each stack and the RGB frame index (0-based, ``< n_flow + 1``).
    """
    for name, value in (("n_flow", n_flow), ("num_segments", num_segments), ("new_length", new_length),
                        ("num_clips", num_clips)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            extra = " (a video needs at least 2 frames for one flow field)" if name == "n_flow" else ""
            raise ValueError(f"{name} must be a positive int{extra}, got {value!r}")
    n_out = 1 if train else num_clips
    starts_possible = n_flow - new_length + 1  # M
    if starts_possible < 1:
        starts = np.zeros((n_out, num_segments), dtype=np.int64)
    elif train:
        g = _need_rng(rng, "tsn_stack_indices")
        if starts_possible >= num_segments:
            starts = tsn_indices(starts_possible, num_segments, train=True, rng=g)
        else:
            starts = np.sort(g.integers(0, starts_possible, size=num_segments))[None, :]
    else:
        k = np.arange(num_segments, dtype=np.float64)[None, :]
        c = (np.arange(num_clips, dtype=np.float64)[:, None] + 0.5) / num_clips
        starts = np.floor((k + c) * starts_possible / num_segments)
        starts = np.minimum(starts, starts_possible - 1)
    starts = starts.astype(np.int64)
    rgb = np.minimum(starts + new_length // 2, n_flow)
    return starts, rgb.astype(np.int64)


def stack_field_indices(starts: np.ndarray, new_length: int, n_flow: int) -> np.ndarray:
    """The flow fields of each stack: ``start + arange(L)``, clamped to ``n_flow - 1`` (TSN convention: a stack
    that runs past the last field repeats it; only happens when ``n_flow < L``).

    Shape:
        ``starts [...]`` -> int64 ``[..., new_length]``.
    """
    if new_length < 1 or n_flow < 1:
        raise ValueError(f"new_length and n_flow must be >= 1, got {new_length} and {n_flow}")
    fields = np.asarray(starts, dtype=np.int64)[..., None] + np.arange(new_length, dtype=np.int64)
    return np.minimum(fields, n_flow - 1)
