"""Measures of explanations (stia_kit.explain.measures): analytic cases on hand-built maps and masks,
SynthActions' action phases against rendered masks, deletion / insertion ordering on a toy model whose
logit is a region sum, and the cascading-randomisation sanity check on a tiny conv net."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from stia_kit.explain.measures import _gaussian_blur  # noqa: PLC2701  (private helper, tested directly)
from stia_kit.explain.measures import (Curve, SanityStep, action_phase, chance_energy, chance_pointing,
                                       deletion_curve, dilate_mask, energy_in_mask, forward_order, frame_mass,
                                       phase_mass, pointing_game, relevance_rank_accuracy, resize_mask,
                                       sanity_check, spearman)

T, H, W = 3, 8, 8


def box_mask(t_frames=(0, 1, 2), y=(2, 5), x=(2, 5)) -> np.ndarray:
    m = np.zeros((T, H, W), bool)
    for t in t_frames:
        m[t, y[0]:y[1], x[0]:x[1]] = True
    return m


def peak(t: int, y: int, x: int, value: float = 1.0) -> np.ndarray:
    s = np.zeros((T, H, W))
    s[t, y, x] = value
    return s


# ----------------------------------------------------------------------------------- pointing game
def test_pointing_hit_miss_and_tolerance() -> None:
    m = box_mask()  # rows/cols 2..4
    assert pointing_game(peak(1, 3, 3), m) == 1.0
    assert pointing_game(peak(1, 7, 7), m, tolerance=1) == 0.0
    # a near miss one pixel right of the box: a miss without tolerance, a hit with tolerance 1
    assert pointing_game(peak(1, 3, 5), m, tolerance=0) == 0.0
    assert pointing_game(peak(1, 3, 5), m, tolerance=1) == 1.0
    # diagonal neighbour of the corner is sqrt(2) away: Euclidean dilation needs tolerance 2
    assert pointing_game(peak(1, 5, 5), m, tolerance=1) == 0.0
    assert pointing_game(peak(1, 5, 5), m, tolerance=2) == 1.0
    # dilation is spatial only: the mask of frame 0 does not reach frame 1
    m0 = box_mask(t_frames=(0,))
    assert pointing_game(peak(1, 3, 3), m0, tolerance=3) == 0.0


def test_pointing_empty_mask_is_nan_and_per_frame_skips_empty_frames() -> None:
    empty = np.zeros((T, H, W), bool)
    assert math.isnan(pointing_game(peak(0, 3, 3), empty))
    assert math.isnan(pointing_game(peak(0, 3, 3), empty, per_frame=True))
    m = box_mask(t_frames=(0, 2))
    s = np.zeros((T, H, W))
    s[0, 3, 3] = 1.0  # hit in frame 0
    s[1, 0, 0] = 5.0  # frame 1 has no mask: skipped whatever the map
    s[2, 7, 0] = 1.0  # miss in frame 2
    assert pointing_game(s, m, per_frame=True, tolerance=0) == 0.5
    assert pointing_game(s, m, tolerance=0) == 0.0  # clip level: the global argmax is frame 1's


def test_constant_map_hits_with_the_dilated_mask_share() -> None:
    m = box_mask(t_frames=(1,))
    constant = np.full((T, H, W), 0.3)
    for tol in (0, 1):
        share = chance_pointing(m, tolerance=tol)
        assert share == pytest.approx(dilate_mask(m, tol).mean())
        hits = np.array([pointing_game(constant, m, tolerance=tol, rng=np.random.default_rng(i))
                         for i in range(3000)])
        assert abs(hits.mean() - share) < 4 * math.sqrt(share * (1 - share) / hits.size)
    assert share == pytest.approx((9 + 12) / (T * H * W))  # 3x3 box dilated by 1 (Euclidean): + 4 x 3 px
    # default rng is seeded: repeatable
    assert pointing_game(constant, m) == pointing_game(constant, m)


def test_pointing_uses_the_positive_part_only() -> None:
    m = box_mask()
    s = np.where(m, -0.5, -1.0)  # raw argmax inside the mask, but no positive relevance anywhere
    hits = np.mean([pointing_game(s, m, tolerance=0, rng=i) for i in range(2000)])
    assert abs(hits - m.mean()) < 0.05
    with pytest.raises(ValueError, match="NaN"):
        pointing_game(np.full((T, H, W), np.nan), m)
    with pytest.raises(ValueError, match="shape"):
        pointing_game(np.zeros((T, H, W + 1)), m)


# ----------------------------------------------------------------------------------- energy / rank
def test_energy_in_mask() -> None:
    m = box_mask()
    assert energy_in_mask(np.ones((T, H, W)), m) == pytest.approx(chance_energy(m)) == pytest.approx(m.mean())
    assert energy_in_mask(m.astype(float), m) == 1.0
    assert energy_in_mask((~m).astype(float), m) == 0.0
    assert energy_in_mask(np.where(m, 1.0, -5.0), m) == 1.0  # negative relevance ignored
    s = np.where(m, 1.0, 0.0)
    s[0, 0, 0] = 27.0  # 27 in the mask (3 frames x 9 px), 27 outside
    assert energy_in_mask(s, m) == pytest.approx(0.5)
    assert math.isnan(energy_in_mask(np.zeros((T, H, W)), m))
    assert math.isnan(energy_in_mask(np.ones((T, H, W)), np.zeros((T, H, W), bool)))


def test_relevance_rank_accuracy() -> None:
    m = box_mask()  # K = 27 of 192 positions
    assert relevance_rank_accuracy(m.astype(float), m) == 1.0
    assert relevance_rank_accuracy((~m).astype(float), m) == 0.0
    s = np.zeros((T, H, W))
    idx_in, idx_out = np.argwhere(m), np.argwhere(~m)
    for t, y, x in idx_in[:9]:
        s[t, y, x] = 2.0  # 9 of the top 27 inside
    for t, y, x in idx_out[:18]:
        s[t, y, x] = 2.0  # 18 of the top 27 outside
    assert relevance_rank_accuracy(s, m) == pytest.approx(9 / 27)
    scores = [relevance_rank_accuracy(np.ones((T, H, W)), m, rng=i) for i in range(300)]
    assert abs(np.mean(scores) - chance_energy(m)) < 0.02
    assert math.isnan(relevance_rank_accuracy(s, np.zeros((T, H, W), bool)))


# ----------------------------------------------------------------------------------- time
def test_frame_mass_and_phase_mass() -> None:
    s = np.zeros((T, H, W))
    s[0, 0, 0], s[1, 3, 3], s[1, 4, 4], s[2] = 1.0, 2.0, 1.0, -1.0  # frame 2 only negative
    np.testing.assert_allclose(frame_mass(s), [0.25, 0.75, 0.0])
    np.testing.assert_allclose(frame_mass(np.zeros((T, H, W))), [1 / 3] * 3)
    assert frame_mass(np.random.default_rng(0).random((T, H, W))).sum() == pytest.approx(1.0)
    assert phase_mass(s, np.array([False, True, True])) == pytest.approx(0.75)
    assert phase_mass(np.ones((T, H, W)), np.array([True, False, False])) == pytest.approx(1 / 3)
    assert math.isnan(phase_mass(s, np.zeros(T, bool)))
    with pytest.raises(ValueError, match="active"):
        phase_mass(s, np.ones(T + 1, bool))


def test_action_phase_matches_rendered_masks() -> None:
    from stia_kit.synth import SynthConfig, render_clip_with_meta

    n = 16
    cfg = SynthConfig(num_frames=n, size=32, camera_jitter=0.0, noise_std=0.0, distractors=0, clutter=0)
    for action in ("sit", "stand", "pick"):
        for seed in (0, 1, 2):
            clip = render_clip_with_meta(action, np.random.default_rng(seed), cfg)
            active = action_phase(clip.meta, n)
            assert 0 < active.sum() < n
            change = np.array([(clip.masks[k] != clip.masks[k + 1]).sum() for k in range(n - 1)])
            still = ~active[:-1] & ~active[1:]  # both frames outside the window (same side)
            moving = active[:-1] & active[1:]
            assert still.any() and (change[still] == 0).all(), (action, seed, active, change)
            assert (change[moving] > 0).mean() > 0.6, (action, seed, active, change)
    # stand's window is sit's mirrored; sampled indices pick from the full-clip phase
    meta = {"action": "sit", "speed": {"onset_frac": 0.1, "duration_frac": 0.3}}
    sit = action_phase(meta, 11)
    np.testing.assert_array_equal(sit, [False, True, True, True, True] + [False] * 6)
    np.testing.assert_array_equal(action_phase(dict(meta, action="stand"), 11), sit[::-1])
    np.testing.assert_array_equal(action_phase(meta, 11, np.array([0, 2, 4, 6])), [False, True, True, False])
    assert action_phase({"action": "walk", "speed": {"cycles_per_s": 1.0}}, 8, [1, 3]).tolist() == [True, True]
    with pytest.raises(ValueError, match="indices"):
        action_phase(meta, 11, [11])


def test_resize_mask() -> None:
    m = np.zeros((1, 8, 8), bool)
    m[0, :4, :4] = True
    small = resize_mask(m, (4, 4))
    assert small.shape == (1, 4, 4) and small[0, :2, :2].all() and small.sum() == 4
    assert resize_mask(m, (16, 16)).sum() == 64


# ----------------------------------------------------------------------------------- deletion / insertion
class RegionModel(nn.Module):
    """logit_0 = sum of the pixels in the top-left 2 x 2 of every frame, logit_1 = 0."""

    def __init__(self, dict_input: bool = False) -> None:
        super().__init__()
        self.dict_input = dict_input
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        flow_term = 0.0
        if self.dict_input:
            flow_term = (x["flow"].flatten(1).std(1) > 0).float() * 100.0
            x = x["rgb"]
        s = self.scale * x[:, :, :, :2, :2].sum((1, 2, 3, 4)) + flow_term
        return {"logits": torch.stack([s, torch.zeros_like(s)], dim=1)}


def test_deletion_and_insertion_ordering() -> None:
    torch.manual_seed(0)
    model = RegionModel().train()
    x = torch.full((1, 2, 2, 6, 6), 0.25)  # region sum 2 x 2 x 4 x 0.25 = 4 -> p = sigmoid(4)
    good = np.zeros((2, 6, 6))
    good[:, :2, :2] = 1.0
    bad = 1.0 - good
    d_good = deletion_curve(model, x, good, 0, steps=9)
    d_bad = deletion_curve(model, x, bad, 0, steps=9)
    assert isinstance(d_good, Curve) and d_good.scores.shape == d_good.fractions.shape == (10,)
    assert d_good.fractions[0] == 0.0 and d_good.fractions[-1] == 1.0
    assert d_good.scores[0] == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item(), abs=1e-6)
    assert d_good.scores[-1] == pytest.approx(0.5, abs=1e-6)  # all black
    assert d_good.scores[2] == pytest.approx(0.5, abs=1e-6)  # 8 of 72 positions = the whole region, gone
    assert d_good.auc < d_bad.auc - 0.2
    assert np.all(np.diff(d_good.scores) <= 1e-9)  # monotone for this model
    i_good = deletion_curve(model, x, good, 0, steps=9, mode="insertion")
    i_bad = deletion_curve(model, x, bad, 0, steps=9, mode="insertion")
    assert i_good.mode == "insertion" and i_good.scores[0] == pytest.approx(0.5, abs=1e-6)
    assert i_good.scores[-1] == pytest.approx(d_good.scores[0], abs=1e-6)
    assert i_good.auc > i_bad.auc + 0.2
    assert model.training  # mode restored
    # chunked forwards give the same curve; the model's mode and weights are untouched
    chunked = deletion_curve(model, x, good, 0, steps=9, batch_size=3)
    np.testing.assert_allclose(chunked.scores, d_good.scores, atol=1e-7)


def test_deletion_baselines_and_dict_inputs() -> None:
    model = RegionModel()
    x = torch.full((1, 2, 2, 6, 6), 0.25)
    sal = np.random.default_rng(0).random((2, 6, 6))
    blurred = deletion_curve(model, x, sal, 0, baseline="blur", steps=4)  # blur of a constant clip = itself
    np.testing.assert_allclose(blurred.scores, blurred.scores[0], atol=1e-6)
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float().expand(1, 1, 2, 16, 16)
    smooth = _gaussian_blur(checker, 2.0)
    assert smooth.shape == checker.shape and (smooth - 0.5).abs().max() < 1e-3
    half = deletion_curve(model, x, sal, 0, baseline=torch.tensor(0.125), steps=4)
    assert half.scores[-1] == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item(), abs=1e-6)
    # dict input: only `key` is modified, the other input reaches the model unchanged (constant flow)
    two = RegionModel(dict_input=True)
    inputs = {"rgb": x, "flow": torch.ones(1, 4, 2, 6, 6)}
    curve = deletion_curve(two, inputs, sal, 0, key="rgb", steps=4)
    np.testing.assert_allclose(curve.scores, deletion_curve(model, x, sal, 0, steps=4).scores, atol=1e-6)
    with pytest.raises(ValueError, match="key"):
        deletion_curve(two, inputs, sal, 0, steps=4)
    with pytest.raises(ValueError, match="saliency shape"):
        deletion_curve(model, x, sal[:1], 0)
    with pytest.raises(ValueError, match="baseline"):
        deletion_curve(model, x, sal, 0, baseline="grey")


# ----------------------------------------------------------------------------------- spearman
def test_spearman() -> None:
    a = np.arange(20.0).reshape(4, 5)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert math.isnan(spearman(a, np.ones_like(a)))
    b = a.copy()
    b[0, 0] = np.nan
    assert spearman(a, b) == pytest.approx(1.0)  # non-finite positions dropped
    rng = np.random.default_rng(1)
    u, v = rng.random(50), rng.random(50)
    from scipy.stats import spearmanr
    assert spearman(u, v) == pytest.approx(spearmanr(u, v).statistic)
    with pytest.raises(ValueError, match="equal size"):
        spearman(u, v[:10])


# ----------------------------------------------------------------------------------- sanity check
class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm3d(6)
        self.conv2 = nn.Conv3d(6, 6, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        z = torch.relu(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(self.pool(z).flatten(1))


def gradient_map(model: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    model.eval()
    x = x.clone().requires_grad_(True)
    model(x)[0, target].backward()
    return x.grad[0].abs().sum(0).numpy()


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    model = TinyNet()
    with torch.no_grad():  # non-trivial BN statistics so their reset matters
        model.bn1.running_mean.uniform_(-0.2, 0.2)
        model.bn1.running_var.uniform_(0.5, 2.0)
    return model, torch.randn(1, 3, 4, 8, 8)


def test_sanity_check_cascade(tiny) -> None:
    model, x = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    assert forward_order(model, x) == ["conv1", "bn1", "conv2", "fc"]
    steps = sanity_check(model, x, 1, gradient_map, seed=0)
    assert [s.layer for s in steps] == ["fc", "conv2", "conv1"]
    assert steps[-1].modules == ("conv1", "bn1")  # BatchNorm randomised with its conv
    assert all(isinstance(s, SanityStep) for s in steps)
    assert steps[0].spearman < 0.95  # the classifier alone changes the gradient map
    assert steps[-1].spearman < 0.5
    # the original model is untouched, bit for bit (weights and BN statistics), and so is the global RNG
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and torch.equal(rng_before, torch.get_rng_state())
    # seeded: repeatable; max_steps keeps the top layers; explicit layers
    again = sanity_check(model, x, 1, gradient_map, seed=0, max_steps=1)
    assert len(again) == 1 and again[0].spearman == pytest.approx(steps[0].spearman)
    named = sanity_check(model, x, 1, gradient_map, layers=["conv2"])
    assert [s.layer for s in named] == ["conv2"]
    with pytest.raises(ValueError, match="unknown"):
        sanity_check(model, x, 1, gradient_map, layers=["nope"])


def test_sanity_check_flags_a_model_independent_map(tiny) -> None:
    model, x = tiny
    edge = lambda m, inp, t: inp[0].abs().sum(0).numpy()  # noqa: E731  (ignores the weights)
    steps = sanity_check(model, x, 0, edge)
    assert all(s.spearman == pytest.approx(1.0) for s in steps)


def test_sanity_check_groups_functionally_used_submodules() -> None:
    class AttnNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            z = self.proj(x)
            return self.head(self.attn(z, z, z)[0].mean(1))

    torch.manual_seed(0)
    model = AttnNet()
    x = torch.randn(1, 5, 4)
    steps = sanity_check(model, x, 0, lambda m, inp, t: torch.autograd.grad(m(inp.requires_grad_())[0, t],
                                                                              inp)[0].abs().numpy())
    assert [s.modules for s in steps] == [("head",), ("attn", "attn.out_proj"), ("proj",)]
