"""Frame-index samplers: ranges, determinism, test-clip spacing, short-video rules."""

from __future__ import annotations

import numpy as np
import pytest

from stia_kit.data import clip_span, dense_indices, tsn_indices


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_dense_train_is_strided_in_range_and_reproducible() -> None:
    for seed in range(20):
        idx = dense_indices(100, 8, 4, train=True, rng=rng(seed))
        assert idx.shape == (1, 8) and idx.dtype == np.int64
        assert (np.diff(idx[0]) == 4).all() and idx.min() >= 0 and idx.max() < 100
    a = dense_indices(100, 8, 4, train=True, rng=rng(3))
    assert np.array_equal(a, dense_indices(100, 8, 4, train=True, rng=rng(3)))
    starts = {int(dense_indices(100, 8, 4, train=True, rng=rng(s))[0, 0]) for s in range(50)}
    assert len(starts) > 10 and max(starts) <= 100 - clip_span(8, 4)


def test_dense_test_clips_are_centred_and_evenly_spaced() -> None:
    one = dense_indices(100, 8, 2, train=False)
    assert one[0, 0] == (100 - 15) // 2
    many = dense_indices(100, 8, 2, train=False, num_clips=3)
    assert many.shape == (3, 8)
    assert many[0, 0] == 0 and many[-1, -1] == 99 and many[1, 0] == round(85 / 2)


def test_dense_exact_fit_uses_every_needed_frame() -> None:
    assert dense_indices(15, 8, 2, train=True, rng=rng()).tolist() == [list(range(0, 16, 2))]


@pytest.mark.parametrize("train", [True, False])
def test_short_video_loop_wraps(train: bool) -> None:
    idx = dense_indices(5, 8, 2, train=train, rng=rng(1), short_clip="loop")
    assert idx.shape == (1, 8) and idx.max() < 5
    start = idx[0, 0]
    assert idx[0].tolist() == [(start + 2 * k) % 5 for k in range(8)]
    if not train:
        assert start == 0


def test_short_video_repeat_last_pads_with_last_frame() -> None:
    idx = dense_indices(5, 8, 2, train=True, rng=rng(), short_clip="repeat_last")
    assert idx[0].tolist() == [0, 2, 4, 4, 4, 4, 4, 4]
    test = dense_indices(1, 4, 3, train=False, num_clips=2, short_clip="repeat_last")
    assert test.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_tsn_one_frame_per_segment() -> None:
    for seed in range(20):
        idx = tsn_indices(80, 8, train=True, rng=rng(seed))[0]
        assert ((idx // 10) == np.arange(8)).all()  # one index inside each 10-frame segment
    centre = tsn_indices(80, 8, train=False)[0]
    assert centre.tolist() == list(range(5, 80, 10))
    two = tsn_indices(80, 8, train=False, num_clips=2)
    assert two.shape == (2, 8) and two[0, 0] == 2 and two[1, 0] == 7


def test_tsn_uneven_and_short_videos() -> None:
    idx = tsn_indices(13, 4, train=False)[0]
    assert (np.diff(idx) > 0).all() and idx.max() < 13
    assert tsn_indices(3, 5, train=False, short_clip="loop")[0].tolist() == [0, 1, 2, 0, 1]
    assert tsn_indices(3, 5, train=False, short_clip="repeat_last")[0].tolist() == [0, 1, 2, 2, 2]


def test_sampler_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="num_frames"):
        dense_indices(0, 8, 2, train=False)
    with pytest.raises(ValueError, match="stride"):
        dense_indices(10, 8, 0, train=False)
    with pytest.raises(ValueError, match="short_clip"):
        tsn_indices(10, 4, train=False, short_clip="pad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rng"):
        dense_indices(100, 8, 2, train=True)


def test_tsn_bounds_in_integer_arithmetic() -> None:
    """floor(k F / K) computed in floats mis-rounds for some sizes (F=15, K=11 lost frame 14 in training)."""
    import numpy as np

    from stia_kit.data.sampling import tsn_indices

    rng = np.random.default_rng(0)
    seen = {int(i) for _ in range(300) for i in tsn_indices(15, 11, train=True, rng=rng)[0]}
    assert 14 in seen and max(seen) == 14
    assert tsn_indices(90, 1, train=False, num_clips=5)[:, 0].tolist() == [9, 27, 45, 63, 81]
