"""Score-level and feature-level fusion of two-stream (or S-stream) predictions, shared by STILT and T-STAM.

Equation and table numbers are those of the STILT paper (Liu et al., "Spatial-temporal interaction learning
based two-stream network for action recognition", Information Sciences 2022; ``shared/papers/001_stilt.txt``)
unless a T-STAM number is named. Every choice is labelled "paper", "reading" or "TSN convention" as in
``shared/specs/two_stream.md``.

- :func:`late_average`: the mean of two streams' softmax scores (STILT "Late Ave", Tables 4 and 5; paper).
- :func:`weighted_fusion`: a fixed weighted sum of stream scores, on probabilities or on logits (T-STAM's
  RGB : flow = 1 : 3; reading: probabilities by default, logits one switch away).
- Adaptively weighted fusion (AWF, STILT section 3.3, Eq. (4)-(9)): :func:`stack_stream_scores`,
  :func:`awf_coefficients`, :func:`fit_awf` (LP via :func:`scipy.optimize.linprog` (HiGHS) or its closed
  form), :func:`awf_fuse`, :func:`awf_predict`.
- Early fusion (Table 5 "Early"): :class:`LinearSVM` (linear one-vs-rest SVM, C = 1) and
  :func:`early_fusion_svm` on concatenated features.

AWF in short. For class ``y`` and stream ``n`` let (softmax scores of the *training* samples, Eq. (4))::

    a_n(y) = sum over samples x of class y        of S_x,n[y]      (Eq. (6): P_y = sum_n w_yn a_n(y))
    b_n(y) = sum over samples x of any class k!=y of S_x,n[y]      (Eq. (7): M_y = sum_n w_yn b_n(y))
    c_n(y) = a_n(y) - lambda b_n(y)                                 (Eq. (5): maximise P_y - lambda M_y)

The paper maximises ``P_y - lambda M_y`` "by linear programming" but gives no constraint, so as printed the
LP is unbounded (scale ``W_y`` up). Reading (spec): each class's weights lie on the simplex
(``sum_n w_yn = 1``, ``w_yn >= 0``). The LP's optimum is then a vertex: AWF gives class ``y`` entirely to
the stream with the largest ``c_n(y)``. When several streams tie, every point of the face they span is
optimal; we return its centre (equal weights over the tied streams), so two tied streams give
``(0.5, 0.5)`` = late average. ``lambda`` is not given (reading: default 1.0; sweep {0, 0.1, 1, 10}).
Prediction (Eq. (8)-(9)): ``argmax_x W_x S_t Y_x`` = ``argmax_x sum_n w_xn S_t,n[x]``.

Note for teaching (follows from the definitions, checked in ``tests/test_fusion.py``): with two classes and
softmax scores, ``b_n(0) = m_1 - a_n(1)``, so ``c_n(0) - c_n'(0) = [a_n(0) - a_n'(0)] + lambda [a_n(1) -
a_n'(1)]`` and symmetrically for class 1; at ``lambda = 1`` both classes always prefer the *same* stream
(a two-class example in which each class prefers a different stream needs ``lambda < 1``, or more classes).

Training-set scores of a network that fits its data are near one-hot, so ``c_n(y)``
hardly separates the streams; fit on a held-out slice of the training split instead (the spec's
``fit_on = "holdout"``), which is the caller's choice of ``scores``.
"""
from __future__ import annotations

from typing import Literal, Mapping, Sequence, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.optimize import linprog, minimize

ScoreT = TypeVar("ScoreT", np.ndarray, torch.Tensor)
FuseOn = Literal["probs", "logits"]
AWFSolver = Literal["linprog", "closed_form"]

_FUSE_ON = ("probs", "logits")
_SOLVERS = ("linprog", "closed_form")


# ------------------------------------------------------------------------------------------ fixed weights
def late_average(p_a: ScoreT, p_b: ScoreT) -> ScoreT:
    """Late average fusion (paper, STILT Tables 4-5 "Late Ave": "averages the softmax prediction scores of
    the spatial and the temporal stream"): ``(p_a + p_b) / 2``.

    Works on numpy arrays and torch tensors alike (only arithmetic, the type is kept).

    Shape:
        ``[..., C], [..., C] -> [..., C]`` (equal shapes).
    """
    if tuple(p_a.shape) != tuple(p_b.shape):
        raise ValueError(f"late_average needs scores of one shape, got {tuple(p_a.shape)} and {tuple(p_b.shape)}")
    return (p_a + p_b) / 2


def _softmax(x: ScoreT) -> ScoreT:
    if isinstance(x, torch.Tensor):
        return torch.softmax(x, dim=-1)
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def weighted_fusion(scores: Mapping[str, ScoreT], weights: Mapping[str, float], *, on: FuseOn = "probs",
                    normalize: bool = True) -> ScoreT:
    """A fixed weighted sum of stream scores: ``sum_k w_k f(s_k)``.

    ``scores`` are each stream's *logits* ``[..., C]`` (numpy arrays or torch tensors, all of one type and
    shape). ``on="probs"`` fuses the softmax probabilities (``f = softmax``; T-STAM's "1/4 RGB + 3/4 flow";
    reading, the spec's default), ``on="logits"`` the logits themselves (``f = id``; the switch). Passing
    log-probabilities with ``on="logits"`` gives the same argmax as logits (each stream's row then only
    shifts by a constant).

    ``weights``: one non-negative weight per stream, the same keys as ``scores``; with ``normalize`` (the
    default) they are ratios divided by their sum, so ``{"rgb": 1, "flow": 3}`` is T-STAM's 1 : 3 = 0.25 /
    0.75 and a probability fusion stays a distribution. A weight 0 drops a stream (e.g. RGB only).

    Shape:
        ``{stream: [..., C]} -> [..., C]``.
    """
    if on not in _FUSE_ON:
        raise ValueError(f"weighted_fusion on must be one of {_FUSE_ON}, got {on!r}")
    if not scores:
        raise ValueError("weighted_fusion needs at least one stream's scores")
    if set(scores) != set(weights):
        raise ValueError(f"weighted_fusion weights must have the keys of scores {sorted(scores)}, "
                         f"got {sorted(weights)}")
    if any(not np.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError(f"weighted_fusion weights must be finite and >= 0, got {dict(weights)}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"weighted_fusion weights must not all be 0, got {dict(weights)}")
    shapes = {tuple(s.shape) for s in scores.values()}
    if len(shapes) != 1:
        raise ValueError(f"weighted_fusion needs scores of one shape, got {sorted(shapes)}")
    scale = 1.0 / total if normalize else 1.0
    out = None
    for name, s in scores.items():
        term = (_softmax(s) if on == "probs" else s) * (float(weights[name]) * scale)
        out = term if out is None else out + term
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- adaptively weighted fusion
def _check_scores_labels(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 3:
        raise ValueError(f"AWF scores must be [streams, samples, classes], got shape {list(s.shape)}")
    if not np.isfinite(s).all():
        raise ValueError("AWF scores must be finite")
    if y.ndim != 1 or y.shape[0] != s.shape[1]:
        raise ValueError(f"AWF labels must be [samples] = [{s.shape[1]}], got shape {list(y.shape)}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= s.shape[2]):
        raise ValueError(f"AWF labels must be integers in [0, {s.shape[2]}), got {y.dtype} in "
                         f"[{y.min()}, {y.max()}]")
    return s, y.astype(np.int64)


def stack_stream_scores(scores: Mapping[str, ArrayLike], heads: Sequence[str] = ("spatial", "temporal")) -> np.ndarray:
    """Stack per-head scores (e.g. ``evaluate(..., return_scores=True).scores``, torch or numpy ``[n, C]``)
    into the ``[S, n, C]`` array of the AWF functions, in the order of ``heads``."""
    missing = [h for h in heads if h not in scores]
    if missing:
        raise KeyError(f"stack_stream_scores: no scores for heads {missing} (have {sorted(scores)})")
    return np.stack([np.asarray(scores[h], dtype=np.float64) for h in heads])  # [S, n, C]


def awf_coefficients(scores: ArrayLike, labels: ArrayLike, lam: float = 1.0) -> np.ndarray:
    """The LP objective coefficients ``c_n(y) = a_n(y) - lambda b_n(y)`` of every class and stream (module
    docstring; Eq. (5)-(7), paper): ``P_y - lambda M_y = sum_n w_yn c_n(y)``.

    ``scores``: training-set softmax scores ``[S, n, C]`` (stream, sample, class; Eq. (4) stacks them per
    sample); ``labels``: ``[n]``.

    Shape:
        ``[S, n, C], [n] -> [C, S]``.
    """
    s, y = _check_scores_labels(scores, labels)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"AWF lam must be finite and >= 0, got {lam}")
    onehot = np.zeros((s.shape[1], s.shape[2]))  # [n, C]
    onehot[np.arange(y.size), y] = 1.0
    a = np.einsum("snc,nc->cs", s, onehot)  # Eq. (6): class-y scores of class-y samples, [C, S]
    b = np.einsum("snc,nc->cs", s, 1.0 - onehot)  # Eq. (7): class-y scores of the other classes' samples
    return a - lam * b


def _tie_tolerance(c: np.ndarray, tie_rtol: float) -> float:
    return tie_rtol * max(1.0, float(np.abs(c).max(initial=0.0)))


def _centre_of_best(c: np.ndarray, best: np.ndarray, tol: float) -> np.ndarray:
    """Equal weights over the streams whose ``c`` is within ``tol`` of ``best`` (per class), ``[C, S]``."""
    tied = c >= best[:, None] - tol  # [C, S]
    return tied / tied.sum(axis=1, keepdims=True)


def fit_awf(scores: ArrayLike, labels: ArrayLike, lam: float = 1.0, solver: AWFSolver = "linprog", *,
            tie_rtol: float = 1e-9) -> np.ndarray:
    """Fit the AWF weights ``W`` (STILT section 3.3, Eq. (4)-(7)), one row ``W_y`` per class.

    For each class ``y``: maximise ``sum_n w_yn c_n(y)`` (:func:`awf_coefficients`) over the simplex
    ``sum_n w_yn = 1, w_yn >= 0`` (reading: the paper states no constraint, so the printed LP is unbounded).

    - ``solver="linprog"`` (the paper: "learned by linear programming"): one :func:`scipy.optimize.linprog`
      call (HiGHS) on the ``C x S`` variables (the classes are independent blocks of one LP).
    - ``solver="closed_form"``: the optimum of a linear objective on a simplex is the vertex of the largest
      coefficient, ``W_y = e_argmax_n c_n(y)``.

    Ties: when several streams reach the optimum (within ``tie_rtol`` relative to the largest ``|c|``),
    the optimal set is the face they span; both solvers return its centre (equal weights over the tied
    streams; for the LP the tied set is read off its optimal value), so two tied streams give exactly
    ``(0.5, 0.5)`` = :func:`late_average`.

    Shape:
        ``scores [S, n, C]`` (training-set softmax scores per stream), ``labels [n]`` -> ``W [C, S]``.
    """
    if solver not in _SOLVERS:
        raise ValueError(f"fit_awf solver must be one of {_SOLVERS}, got {solver!r}")
    if not np.isfinite(tie_rtol) or tie_rtol < 0:
        raise ValueError(f"fit_awf tie_rtol must be finite and >= 0, got {tie_rtol}")
    c = awf_coefficients(scores, labels, lam)  # [C, S]
    num_classes, num_streams = c.shape
    tol = _tie_tolerance(c, tie_rtol)
    if solver == "closed_form":
        return _centre_of_best(c, c.max(axis=1), tol)
    # One LP over x = vec(W) (class-major): minimise -c.x s.t. sum_n W[y, n] = 1 for every y, 0 <= x <= 1.
    a_eq = np.kron(np.eye(num_classes), np.ones((1, num_streams)))  # [C, C*S]
    res = linprog(-c.ravel(), A_eq=a_eq, b_eq=np.ones(num_classes), bounds=(0.0, 1.0), method="highs")
    if res.status != 0:
        raise RuntimeError(f"AWF linprog failed: {res.message}")
    w = np.clip(res.x.reshape(num_classes, num_streams), 0.0, 1.0) + 0.0  # [C, S]; + 0.0 turns HiGHS' -0.0 into 0.0
    w = w / w.sum(axis=1, keepdims=True)
    best = (w * c).sum(axis=1)  # each block's optimal value P_y - lambda M_y
    tied = c >= best[:, None] - tol
    multi = tied.sum(axis=1) > 1  # classes whose optimum is a face, not a vertex
    w[multi] = _centre_of_best(c[multi], best[multi], tol)
    return w


def awf_fuse(scores: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Fused class scores ``F[x, y] = W_y S_x Y_y = sum_n w_yn S_x,n[y]`` (Eq. (8)-(9), paper).

    Shape:
        ``scores [S, n, C]`` (test softmax scores per stream), ``weights [C, S]`` -> ``[n, C]``.
    """
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if s.ndim != 3 or w.shape != (s.shape[2], s.shape[0]):
        raise ValueError(f"awf_fuse needs scores [S, n, C] and weights [C, S]; got {list(s.shape)} and "
                         f"{list(w.shape)}")
    return np.einsum("snc,cs->nc", s, w)  # Eq. (9): W_x S_t Y_x for every class x


def awf_predict(scores: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """AWF prediction ``argmax_x W_x S_t Y_x`` (Eq. (9), paper) of every sample.

    Shape:
        ``scores [S, n, C]``, ``weights [C, S]`` -> ``[n]`` class indices.
    """
    return awf_fuse(scores, weights).argmax(axis=1)


# ------------------------------------------------------------------------------------------ early fusion
Features = Mapping[str, ArrayLike] | Sequence[ArrayLike] | np.ndarray | torch.Tensor


def concat_features(features: Features) -> np.ndarray:
    """Concatenate per-stream features ``[n, D_s]`` along the feature axis (``[s^; t^]``, Table 5 "Early").

    A mapping is concatenated in its iteration order (e.g. ``{"spatial": ..., "temporal": ...}``); a single
    ``[n, D]`` array (or tensor) is taken as already concatenated.

    Shape:
        ``S x [n, D_s] -> [n, sum_s D_s]``.
    """
    if isinstance(features, (np.ndarray, torch.Tensor)):
        if features.ndim != 2:
            raise ValueError(f"concat_features needs a feature matrix [n, D], got shape {list(features.shape)}")
        return np.asarray(features, dtype=np.float64)
    parts = [np.asarray(f, dtype=np.float64) for f in (features.values() if isinstance(features, Mapping)
                                                        else features)]
    if not parts or any(p.ndim != 2 for p in parts) or len({p.shape[0] for p in parts}) != 1:
        raise ValueError(f"concat_features needs >= 1 feature matrices [n, D] with one n, got "
                         f"{[list(p.shape) for p in parts]}")
    return np.concatenate(parts, axis=1)


class LinearSVM:
    """Linear one-vs-rest SVM (reading for STILT Table 5's "SVM": linear, one-vs-rest, C = 1).

    ``c`` is the SVM's C. Each class ``k`` gets ``f_k(x) = w_k . x + b_k`` minimising the L2-regularised
    squared hinge loss
    ``1/2 (|w_k|^2 + b_k^2) + C sum_i max(0, 1 - y_ik f_k(x_i))^2`` with ``y_ik = +1`` for class ``k`` and
    ``-1`` otherwise: liblinear's L2-loss SVM, i.e. scikit-learn's ``LinearSVC`` defaults (squared hinge,
    C = 1, one-vs-rest, the intercept regularised like a weight on a constant feature 1). The problem is
    strictly convex and once differentiable; it is solved in the primal with L-BFGS (scipy), all classes as
    one separable problem. Prediction: ``argmax_k f_k(x)``.

    Implemented here on scipy rather than adding scikit-learn as a dependency for one baseline.
    ``standardize`` (not in the paper; default False) z-scores the features with the training statistics
    first.
    """

    def __init__(self, c: float = 1.0, *, standardize: bool = False, max_iter: int = 2000,
                 tol: float = 1e-8) -> None:
        if not np.isfinite(c) or c <= 0:
            raise ValueError(f"LinearSVM c (the SVM's C) must be finite and > 0, got {c}")
        if max_iter < 1:
            raise ValueError(f"LinearSVM max_iter must be >= 1, got {max_iter}")
        self.c, self.standardize, self.max_iter, self.tol = float(c), standardize, max_iter, tol
        self.coef_: np.ndarray | None = None  # [K, D] weights w_k
        self.intercept_: np.ndarray | None = None  # [K] biases b_k
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self.converged_ = False  # whether L-BFGS met its tolerance in fit()

    def _prep(self, x: np.ndarray) -> np.ndarray:
        if self.standardize and self._mean is not None and self._std is not None:
            return (x - self._mean) / self._std
        return x

    @staticmethod
    def _objective(params: np.ndarray, xa: np.ndarray, y: np.ndarray, c: float) -> tuple[float, np.ndarray]:
        """Summed primal objective of the ``K`` one-vs-rest problems and its gradient. ``params``: ``[K, D+1]``
        flattened (rows ``[w_k, b_k]``); ``xa``: features with a constant 1 appended ``[n, D+1]``; ``y``:
        ``+-1`` targets ``[n, K]``."""
        wb = params.reshape(y.shape[1], xa.shape[1])  # [K, D+1]
        active = np.maximum(1.0 - y * (xa @ wb.T), 0.0)  # [n, K] hinge margins max(0, 1 - y f)
        value = 0.5 * float((wb * wb).sum()) + c * float((active * active).sum())
        grad = wb - 2.0 * c * (active * y).T @ xa  # [K, D+1]
        return value, grad.ravel()

    def fit(self, x: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> "LinearSVM":
        """Fit on features ``x [n, D]`` and labels ``[n]`` (classes ``0 .. num_classes - 1``; default
        ``max(labels) + 1``)."""
        xs = np.asarray(x, dtype=np.float64)
        y = np.asarray(labels)
        if xs.ndim != 2 or y.shape != (xs.shape[0],) or xs.shape[0] == 0:
            raise ValueError(f"LinearSVM.fit needs x [n, D] and labels [n] with n >= 1, got {list(xs.shape)} "
                             f"and {list(y.shape)}")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError("LinearSVM labels must be non-negative integers")
        k = int(y.max()) + 1 if num_classes is None else num_classes
        if k < 2 or y.max() >= k:
            raise ValueError(f"LinearSVM needs num_classes >= 2 covering the labels, got {k}")
        if self.standardize:
            self._mean, std = xs.mean(axis=0), xs.std(axis=0)
            self._std = np.where(std > 0, std, 1.0)
        xa = np.concatenate([self._prep(xs), np.ones((xs.shape[0], 1))], axis=1)  # [n, D+1]: bias as feature 1
        targets = np.where(y[:, None] == np.arange(k)[None, :], 1.0, -1.0)  # [n, K] one-vs-rest +-1
        res = minimize(self._objective, np.zeros(k * xa.shape[1]), args=(xa, targets, self.c), jac=True,
                       method="L-BFGS-B", options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-15})
        if not np.isfinite(res.x).all():
            raise RuntimeError(f"LinearSVM optimisation diverged: {res.message}")
        self.converged_ = bool(res.success)  # False: stopped at max_iter or by the line search (iterate kept)
        wb = res.x.reshape(k, xa.shape[1])
        self.coef_, self.intercept_ = wb[:, :-1], wb[:, -1]
        return self

    def decision_function(self, x: ArrayLike) -> np.ndarray:
        """``f_k(x)`` for every class: ``[m, D] -> [m, K]``."""
        if self.coef_ is None or self.intercept_ is None:
            raise RuntimeError("LinearSVM is not fitted; call fit() first")
        xs = self._prep(np.asarray(x, dtype=np.float64))
        return xs @ self.coef_.T + self.intercept_

    def predict(self, x: ArrayLike) -> np.ndarray:
        """``argmax_k f_k(x)``: ``[m, D] -> [m]``."""
        return self.decision_function(x).argmax(axis=1)


def early_fusion_svm(train_features: Features, train_labels: ArrayLike, test_features: Features, *,
                     c: float = 1.0, num_classes: int | None = None, standardize: bool = False) -> np.ndarray:
    """STILT Table 5 "Early" (paper: "concatenates spatial features and temporal features and trains an SVM
    classifier"; reading: a linear one-vs-rest :class:`LinearSVM`, ``c`` = C = 1, on ``[s^; t^]``): fit on
    the training features, return the predicted class of every test sample. Features: per-stream matrices
    (a mapping or a sequence, concatenated by :func:`concat_features`) or one concatenated ``[n, D]`` array.
    For the decision scores use :class:`LinearSVM` directly.

    Shape:
        ``train S x [n, D_s]``, ``labels [n]``, ``test S x [m, D_s]`` -> ``[m]``.
    """
    svm = LinearSVM(c, standardize=standardize).fit(concat_features(train_features), train_labels, num_classes)
    return svm.predict(concat_features(test_features))
