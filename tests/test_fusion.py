"""Score- and feature-level fusion (stia_kit.models.fusion): the spec's AWF hand checks (vertex solution, LP ==
closed form, a disagreeing sample, ties = late average), fixed-weight fusion, the linear one-vs-rest SVM."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stia_kit.models.fusion import (LinearSVM, awf_coefficients, awf_fuse, awf_predict, concat_features,
                                    early_fusion_svm, fit_awf, late_average, stack_stream_scores, weighted_fusion)

SOLVERS = ("linprog", "closed_form")

# Two classes, two streams, one training sample per class (scores [S, n, C]):
#   x0 (class 0): stream 0 [0.9, 0.1], stream 1 [0.6, 0.4];  x1 (class 1): stream 0 [0.4, 0.6], stream 1 [0.1, 0.9]
HAND_SCORES = np.array([[[0.9, 0.1], [0.4, 0.6]],
                        [[0.6, 0.4], [0.1, 0.9]]])
HAND_LABELS = np.array([0, 1])


def random_scores(rng: np.random.Generator, streams: int, n: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.dirichlet(np.ones(classes), size=(streams, n)), rng.integers(0, classes, size=n)


# ----------------------------------------------------------------------------------------------------- AWF
def test_awf_coefficients_by_hand() -> None:
    """c_n(y) = a_n(y) - lambda b_n(y) (Eq. (5)-(7)): lambda = 0.5 ->
    class 0: stream 0 0.9 - 0.5 * 0.4 = 0.7, stream 1 0.6 - 0.5 * 0.1 = 0.55;
    class 1: stream 0 0.6 - 0.5 * 0.1 = 0.55, stream 1 0.9 - 0.5 * 0.4 = 0.7."""
    np.testing.assert_allclose(awf_coefficients(HAND_SCORES, HAND_LABELS, lam=0.5), [[0.7, 0.55], [0.55, 0.7]])
    np.testing.assert_allclose(awf_coefficients(HAND_SCORES, HAND_LABELS, lam=0.0), [[0.9, 0.6], [0.6, 0.9]])


@pytest.mark.parametrize("solver", SOLVERS)
def test_awf_vertex_each_class_prefers_a_different_stream(solver: str) -> None:
    """The spec's hand check: each class prefers a different stream -> W = [[1, 0], [0, 1]] (lambda < 1: at
    lambda = 1 two softmax classes cannot prefer different streams, next test)."""
    for lam in (0.0, 0.5):
        w = fit_awf(HAND_SCORES, HAND_LABELS, lam=lam, solver=solver)
        np.testing.assert_allclose(w, [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_awf_two_softmax_classes_at_lambda_1_pick_the_same_stream(seed: int) -> None:
    """b_n(0) = m_1 - a_n(1) for two-class softmax scores, so at lambda = 1 the stream differences of c(0) and
    c(1) are equal: both rows of W are the same (the hand example above is then a tie: late average)."""
    rng = np.random.default_rng(seed)
    scores, labels = random_scores(rng, 2, 20, 2)
    c = awf_coefficients(scores, labels, lam=1.0)
    np.testing.assert_allclose(c[0, 0] - c[0, 1], c[1, 0] - c[1, 1], atol=1e-12)
    w = fit_awf(scores, labels, lam=1.0)
    np.testing.assert_allclose(w[0], w[1])
    np.testing.assert_array_equal(fit_awf(HAND_SCORES, HAND_LABELS, lam=1.0), np.full((2, 2), 0.5))


@pytest.mark.parametrize("seed", range(40))
def test_awf_linprog_equals_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    streams, classes = (2, 3)[seed % 2], int(rng.integers(2, 8))
    scores, labels = random_scores(rng, streams, int(rng.integers(5, 40)), classes)
    lam = (0.0, 0.1, 1.0, 10.0)[seed % 4]
    lp, closed = fit_awf(scores, labels, lam, solver="linprog"), fit_awf(scores, labels, lam, solver="closed_form")
    np.testing.assert_allclose(lp, closed, atol=1e-9)
    np.testing.assert_allclose(lp.sum(axis=1), 1.0)
    assert (lp >= 0).all()
    # the optimum: no simplex point beats the solution's P_y - lambda M_y (checked on random simplex points)
    c = awf_coefficients(scores, labels, lam)
    others = rng.dirichlet(np.ones(streams), size=200)  # [200, S]
    assert ((c * lp).sum(axis=1)[:, None] >= c @ others.T - 1e-9).all()


def test_awf_prediction_of_disagreeing_samples_by_hand() -> None:
    """Eq. (9) argmax_x W_x S_t Y_x. Three classes, W = [stream 0, stream 1, stream 0] one-hot rows; a test
    sample whose streams disagree (stream 0 says class 0, stream 1 says class 1):
    S_0 = [0.6, 0.05, 0.35], S_1 = [0.05, 0.5, 0.45] -> AWF scores [0.6, 0.5, 0.35] -> class 0, while the
    late average [0.325, 0.275, 0.4] says class 2."""
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    s = np.array([[[0.6, 0.05, 0.35]], [[0.05, 0.5, 0.45]]])  # [S=2, n=1, C=3]
    np.testing.assert_allclose(awf_fuse(s, w), [[0.6, 0.5, 0.35]])
    assert awf_predict(s, w).tolist() == [0]
    assert late_average(s[0], s[1]).argmax(axis=1).tolist() == [2]
    # the two-class fitted example (W = identity at lambda = 0.5): [0.7, 0.3] vs [0.2, 0.8] -> scores [0.7, 0.8]
    w2 = fit_awf(HAND_SCORES, HAND_LABELS, lam=0.5)
    s2 = np.array([[[0.7, 0.3]], [[0.2, 0.8]]])
    np.testing.assert_allclose(awf_fuse(s2, w2), [[0.7, 0.8]])
    assert awf_predict(s2, w2).tolist() == [1]


@pytest.mark.parametrize("solver", SOLVERS)
def test_awf_tied_streams_give_exactly_late_average(solver: str) -> None:
    rng = np.random.default_rng(0)
    one, labels = random_scores(rng, 1, 30, 4)
    scores = np.concatenate([one, one])  # two identical streams: every class is a tie
    w = fit_awf(scores, labels, lam=1.0, solver=solver)
    np.testing.assert_array_equal(w, np.full((4, 2), 0.5))
    test = rng.dirichlet(np.ones(4), size=(1, 10))
    test = np.concatenate([test, rng.dirichlet(np.ones(4), size=(1, 10))])  # different test scores per stream
    np.testing.assert_array_equal(awf_fuse(test, w), late_average(test[0], test[1]))
    # a tie between two of three streams: equal weights over the tied two only
    third = one * 0.5  # strictly lower a, equal-or-lower score mass
    w3 = fit_awf(np.concatenate([one, one, third]), labels, lam=0.0, solver=solver)
    np.testing.assert_array_equal(w3, np.tile([0.5, 0.5, 0.0], (4, 1)))


def test_awf_validation_and_stacking() -> None:
    with pytest.raises(ValueError, match="streams, samples, classes"):
        fit_awf(np.zeros((2, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="labels must be integers in"):
        fit_awf(HAND_SCORES, np.array([0, 2]))
    with pytest.raises(ValueError, match="lam"):
        fit_awf(HAND_SCORES, HAND_LABELS, lam=-1.0)
    with pytest.raises(ValueError, match="solver"):
        fit_awf(HAND_SCORES, HAND_LABELS, solver="simplex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights \\[C, S\\]"):
        awf_fuse(HAND_SCORES, np.ones((2, 3)))
    heads = {"spatial": torch.tensor(HAND_SCORES[0]), "temporal": HAND_SCORES[1], "logits": np.zeros((2, 2))}
    np.testing.assert_array_equal(stack_stream_scores(heads), HAND_SCORES)
    with pytest.raises(KeyError, match="temporal"):
        stack_stream_scores({"spatial": HAND_SCORES[0]})


# -------------------------------------------------------------------------------------- fixed-weight fusion
def test_late_average_numpy_and_torch() -> None:
    a, b = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    np.testing.assert_allclose(late_average(a, b), [[0.4, 0.6]])
    out = late_average(torch.tensor(a), torch.tensor(b))
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.tensor([[0.4, 0.6]], dtype=out.dtype))
    with pytest.raises(ValueError, match="one shape"):
        late_average(a, np.ones((2, 2)))


def test_weighted_fusion_one_to_three_on_probs_and_logits() -> None:
    """T-STAM's RGB : flow = 1 : 3 is 0.25 softmax(rgb) + 0.75 softmax(flow); ``on="logits"`` sums logits."""
    torch.manual_seed(0)
    rgb, flow = torch.randn(4, 5), torch.randn(4, 5)
    fused = weighted_fusion({"rgb": rgb, "flow": flow}, {"rgb": 1, "flow": 3})
    torch.testing.assert_close(fused, 0.25 * rgb.softmax(-1) + 0.75 * flow.softmax(-1))
    torch.testing.assert_close(fused.sum(-1), torch.ones(4))
    torch.testing.assert_close(weighted_fusion({"rgb": rgb, "flow": flow}, {"rgb": 1, "flow": 3}, on="logits"),
                               0.25 * rgb + 0.75 * flow)
    np_fused = weighted_fusion({"rgb": rgb.numpy(), "flow": flow.numpy()}, {"rgb": 0.25, "flow": 0.75})
    assert isinstance(np_fused, np.ndarray)
    np.testing.assert_allclose(np_fused, fused.numpy(), rtol=1e-6)
    only_flow = weighted_fusion({"rgb": rgb, "flow": flow}, {"rgb": 0.0, "flow": 2.0})
    torch.testing.assert_close(only_flow, flow.softmax(-1))
    torch.testing.assert_close(weighted_fusion({"rgb": rgb, "flow": flow}, {"rgb": 1, "flow": 3}, on="logits",
                                               normalize=False), rgb + 3 * flow)
    # log-probabilities on="logits" keep the argmax of fused logits
    lp = weighted_fusion({"rgb": rgb.log_softmax(-1), "flow": flow.log_softmax(-1)}, {"rgb": 1, "flow": 3}, on="logits")
    assert torch.equal(lp.argmax(-1), (0.25 * rgb + 0.75 * flow).argmax(-1))


def test_weighted_fusion_validation() -> None:
    s = {"rgb": np.zeros((2, 3)), "flow": np.zeros((2, 3))}
    with pytest.raises(ValueError, match="keys of scores"):
        weighted_fusion(s, {"rgb": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        weighted_fusion(s, {"rgb": -1.0, "flow": 1.0})
    with pytest.raises(ValueError, match="not all be 0"):
        weighted_fusion(s, {"rgb": 0.0, "flow": 0.0})
    with pytest.raises(ValueError, match="on must be one of"):
        weighted_fusion(s, {"rgb": 1.0, "flow": 1.0}, on="scores")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one shape"):
        weighted_fusion({"rgb": np.zeros((2, 3)), "flow": np.zeros((2, 4))}, {"rgb": 1.0, "flow": 1.0})


# ------------------------------------------------------------------------------------------ early fusion
def test_linear_svm_solution_by_hand() -> None:
    """Points x = +1 (class 1) and x = -1 (class 0), C = 1: by symmetry b = 0 and the squared-hinge primal
    1/2 w^2 + 2 (1 - w)^2 is minimal at w = 4C / (1 + 4C) = 0.8; the class-0 classifier is its mirror."""
    svm = LinearSVM(c=1.0).fit(np.array([[1.0], [-1.0]]), np.array([1, 0]))
    np.testing.assert_allclose(svm.coef_[:, 0], [-0.8, 0.8], atol=1e-6)
    np.testing.assert_allclose(svm.intercept_, [0.0, 0.0], atol=1e-6)
    assert svm.converged_
    np.testing.assert_allclose(svm.decision_function(np.array([[0.5]])), [[-0.4, 0.4]], atol=1e-6)
    svm10 = LinearSVM(c=10.0).fit(np.array([[1.0], [-1.0]]), np.array([1, 0]))
    np.testing.assert_allclose(svm10.coef_[1, 0], 40 / 41, atol=1e-6)


def test_early_fusion_needs_both_streams_features() -> None:
    """Four classes = the quadrant of (spatial feature, temporal feature): one stream alone separates two of
    them, the concatenation all four (one-vs-rest argmax of four linear functions)."""
    rng = np.random.default_rng(0)
    centres = np.array([[-3, -3], [-3, 3], [3, -3], [3, 3]], dtype=float)
    labels = np.repeat(np.arange(4), 25)
    pts = centres[labels] + rng.normal(scale=0.7, size=(100, 2))
    test_labels = np.repeat(np.arange(4), 10)
    test = centres[test_labels] + rng.normal(scale=0.7, size=(40, 2))
    train_f = {"spatial": pts[:, :1], "temporal": pts[:, 1:]}
    test_f = {"spatial": test[:, :1], "temporal": test[:, 1:]}
    pred = early_fusion_svm(train_f, labels, test_f)
    assert pred.shape == (40,) and (pred == test_labels).mean() == 1.0
    concatenated = early_fusion_svm(pts, labels, test, c=1.0)  # one already concatenated [n, D] matrix
    np.testing.assert_array_equal(concatenated, pred)
    svm = LinearSVM().fit(concat_features(train_f), labels)
    assert svm.coef_.shape == (4, 2) and svm.decision_function(test).shape == (40, 4)
    spatial_only = early_fusion_svm([train_f["spatial"]], labels, [test_f["spatial"]])
    assert (spatial_only == test_labels).mean() <= 0.6
    assert (early_fusion_svm(train_f, labels, test_f, standardize=True) == test_labels).mean() == 1.0


def test_svm_and_concat_validation() -> None:
    assert concat_features([np.zeros((3, 2)), np.ones((3, 4))]).shape == (3, 6)
    with pytest.raises(ValueError, match="one n"):
        concat_features([np.zeros((3, 2)), np.ones((4, 2))])
    with pytest.raises(ValueError, match="must be finite and > 0"):
        LinearSVM(c=0.0)
    with pytest.raises(ValueError, match="feature matrix"):
        concat_features(np.zeros(3))
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearSVM().predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="num_classes >= 2"):
        LinearSVM().fit(np.zeros((3, 2)), np.zeros(3, dtype=int))
