"""Classification metrics: top-k accuracy, confusion matrix, per-class accuracy, multi-view averaging, and the
accumulator ``fit``/``evaluate`` use (also loss-only, for unlabelled data).

Conventions: logits/probabilities are ``[N, C]``; targets are ``[N]`` int class indices; the
confusion matrix is ``[C, C]`` int64 with **rows = true class, columns = predicted class**.
``k`` in top-k is clipped to the number of classes (top-5 of a 3-class problem is top-3 = 100%).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import default_collate

from .device import DistInfo, all_gather_objects, all_reduce_sum


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[int, int]:
    """Number of samples whose true class is among the top-``k`` scores, for every requested ``k``."""
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(f"topk_correct: expected logits [N, C] and target [N], got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    ks = list(ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"topk_correct: every k must be >= 1, got {ks}")
    if logits.shape[0] == 0:
        return {k: 0 for k in ks}
    num_classes = logits.shape[1]
    kmax = min(max(ks), num_classes)
    top = logits.topk(kmax, dim=1).indices  # [N, kmax]
    hits = top.eq(target.to(top.device).view(-1, 1))  # [N, kmax]
    return {k: int(hits[:, : min(k, num_classes)].any(dim=1).sum()) for k in ks}


def topk_accuracy(logits: torch.Tensor, target: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in [0, 1] for every ``k`` (``k`` clipped to the number of classes)."""
    n = target.shape[0]
    if n == 0:
        raise ValueError("topk_accuracy: no samples")
    return {k: c / n for k, c in topk_correct(logits, target, ks).items()}


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[num_classes, num_classes]`` int64 counts, rows = true class, columns = predicted class."""
    pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"confusion_matrix: {name} has values outside [0, {num_classes})")
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Recall of every class (diagonal / row sum); ``nan`` for classes without samples."""
    conf = torch.as_tensor(confusion).double()
    support = conf.sum(dim=1)
    acc = conf.diagonal() / support
    return [float("nan") if s == 0 else float(a) for a, s in zip(acc, support)]


#: The batch key :func:`collate_views` adds when samples carry different numbers of views.
NUM_VIEWS_KEY = "num_views"


def collate_views(samples: Sequence[Mapping[str, Any]]) -> Any:
    """``default_collate``, except that sample tensors with different numbers of views are padded.

    A sample tensor is either multi-view ``[V_i, *rest]`` or single-view ``[*rest]`` (read as ``V_i = 1``; what
    :class:`~stia_kit.data.VideoDataset` returns for a one-window video with ``DataConfig.test_windows``).
    When every sample's tensors have the same shape this is exactly ``default_collate``. Otherwise each such key
    is zero-padded to ``[B, max V_i, *rest]`` and the batch gains ``"num_views"``: int64 ``[B]`` = ``V_i``
    (every padded key must give the same ``V_i``). :func:`fold_views` / :func:`mean_view_probs` drop the
    padding, so each sample's score is the mean softmax over its own views only. The training loop's loaders
    use it; a caller's own ``DataLoader`` over such a dataset needs ``collate_fn=collate_views``.

    Shape:
        per-sample ``[V_i, C, T, H, W]`` (or ``[C, T, H, W]``) -> ``[B, max V_i, C, T, H, W]`` + ``num_views [B]``.
    """
    if not samples or not all(isinstance(s, Mapping) for s in samples):
        return default_collate(list(samples))  # type: ignore[arg-type]
    ragged = [k for k, v in samples[0].items() if isinstance(v, torch.Tensor)
              and any(not isinstance(s.get(k), torch.Tensor) or s[k].shape != v.shape for s in samples)]
    if not ragged:
        return default_collate(list(samples))  # type: ignore[arg-type]
    if NUM_VIEWS_KEY in samples[0]:
        raise ValueError(f"collate_views: samples already carry a {NUM_VIEWS_KEY!r} key")
    counts: torch.Tensor | None = None
    padded: dict[str, torch.Tensor] = {}
    for key in ragged:
        tensors = [s[key] for s in samples]
        ndim = max(t.ndim for t in tensors)
        views = [t if t.ndim == ndim else t.unsqueeze(0) for t in tensors]  # single view -> [1, *rest]
        rest = {tuple(t.shape[1:]) for t in views}
        if len(rest) != 1 or any(t.ndim != ndim for t in views):
            shapes = sorted({tuple(t.shape) for t in tensors})
            raise ValueError(f"collate_views: {key!r} tensors differ beyond their number of views: {shapes[:4]}")
        n = torch.tensor([t.shape[0] for t in views], dtype=torch.int64)  # [B]
        if counts is not None and not torch.equal(n, counts):
            raise ValueError(f"collate_views: {key!r} has other view counts than {ragged[0]!r}")
        counts = n
        out = views[0].new_zeros((len(views), int(n.max()), *views[0].shape[1:]))  # [B, max V, *rest]
        for i, t in enumerate(views):
            out[i, : t.shape[0]] = t
        padded[key] = out
    rest_batch = default_collate([{k: v for k, v in s.items() if k not in padded} for s in samples])
    return {**rest_batch, **padded, NUM_VIEWS_KEY: counts}


def _view_mask(num_views: torch.Tensor, b: int, v: int) -> torch.Tensor:
    """``[B, V]`` bool: True for the real (unpadded) views."""
    counts = torch.as_tensor(num_views).reshape(-1)
    if counts.shape[0] != b or int(counts.min()) < 1 or int(counts.max()) > v:
        raise ValueError(f"num_views must be {b} counts in [1, {v}], got {counts.tolist()}")
    return torch.arange(v, device=counts.device)[None, :] < counts[:, None]


def fold_views(inputs: torch.Tensor | Mapping[str, torch.Tensor],
               num_views: torch.Tensor | None = None) -> tuple[Any, int, int]:
    """``[B, V, ...]`` (or a dict of such) -> ``([B * V, ...], B, V)``: the views folded into the batch.

    With ``num_views`` (int ``[B]``, from :func:`collate_views`) the padding views are dropped: the folded
    tensor is ``[sum(num_views), ...]``, sample by sample.
    """
    first = next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs
    if not isinstance(first, torch.Tensor) or first.ndim < 3:
        raise ValueError(f"fold_views: expected [B, V, ...] input, got {getattr(first, 'shape', type(first))}")
    b, v = first.shape[:2]
    if num_views is not None:
        mask = _view_mask(num_views, b, v).to(first.device)
        if isinstance(inputs, Mapping):
            return {k: t[mask] for k, t in inputs.items()}, b, v  # [sum V_i, ...]
        return inputs[mask], b, v  # [sum V_i, ...]
    if isinstance(inputs, Mapping):
        return {k: t.reshape(b * v, *t.shape[2:]) for k, t in inputs.items()}, b, v
    return inputs.reshape(b * v, *inputs.shape[2:]), b, v


def mean_view_probs(logits: torch.Tensor, b: int, v: int, num_views: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax of ``[B * V, C]`` logits averaged over the ``V`` views of each sample -> ``[B, C]`` (float32).

    With ``num_views`` (int ``[B]``) the logits are ``[sum(num_views), C]`` (:func:`fold_views` with the same
    counts) and sample ``i`` averages its own ``num_views[i]`` views.
    """
    probs = logits.float().softmax(dim=-1)
    if num_views is None:
        return probs.view(b, v, -1).mean(dim=1)
    counts = torch.as_tensor(num_views).reshape(-1).to(probs.device)
    _view_mask(counts, b, v)  # validates the counts
    if probs.shape[0] != int(counts.sum()):
        raise ValueError(f"mean_view_probs: {probs.shape[0]} logits rows for num_views summing to {int(counts.sum())}")
    owner = torch.repeat_interleave(torch.arange(b, device=probs.device), counts)  # [sum V_i]
    total = probs.new_zeros(b, probs.shape[1]).index_add_(0, owner, probs)  # [B, C]
    return total / counts.to(probs.dtype)[:, None]


def multiview_probs(model: nn.Module, inputs: torch.Tensor | Mapping[str, torch.Tensor],
                    num_views: torch.Tensor | None = None) -> torch.Tensor:
    """Average softmax over views: ``[B, V, C, T, H, W]`` (or a dict of such) -> probabilities ``[B, classes]``.

    The views are folded into the batch (one forward of ``B * V`` clips, or of the ``sum(num_views)`` real
    views of a padded batch from :func:`collate_views`); a model returning a dict contributes its ``"logits"``
    (the training loop also averages every ``"stream_logits"`` head the same way).
    """
    flat, b, v = fold_views(inputs, num_views)
    out = model(flat)
    logits = out["logits"] if isinstance(out, Mapping) else out
    return mean_view_probs(logits, b, v, num_views)


class MetricAccumulator:
    """Accumulates counts over batches (and ranks) and turns them into a metrics dict.

    ``update`` takes the batch logits (or probabilities — only the ranking matters), targets, the
    batch-mean total loss and optionally a dict of batch-mean loss terms (``{"loss_ce": ..}``) and the logits
    of every stream head (``heads={"rgb": [N, C]}``, counted as ``top1_<head>``). Losses are averaged per
    sample. ``compute()`` returns ``loss``, ``top1``, ``top5``, ``top1_<head>`` of every head, every loss term,
    ``num_samples``, ``per_class`` and ``confusion`` (a ``[C, C]`` tensor).

    ``num_classes=None`` makes a loss-only accumulator (unlabelled data, e.g. zero-reference curve training):
    ``update(None, None, loss, terms, n=batch_size)``; ``compute()`` then has no accuracy entries.
    """

    def __init__(self, num_classes: int | None, *, keep_predictions: bool = False) -> None:
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"MetricAccumulator: num_classes must be None or >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.keep_predictions = keep_predictions
        self.reset()

    @property
    def labelled(self) -> bool:
        """True when accuracies are accumulated (``num_classes`` given)."""
        return self.num_classes is not None

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.n = 0
        self.correct1 = 0
        self.correct5 = 0
        self.loss_sum = 0.0
        self.term_sums: dict[str, float] = {}
        self.head_correct1: dict[str, int] = {}
        c = self.num_classes or 0
        self.confusion = torch.zeros(c, c, dtype=torch.int64)
        self.predictions: list[int] = []

    def update(self, logits: torch.Tensor | None, target: torch.Tensor | None, loss: float | None = None,
               terms: Mapping[str, float] | None = None, *, heads: Mapping[str, torch.Tensor] | None = None,
               n: int | None = None) -> None:
        """Add one batch (``loss``/``terms`` are batch means, weighted here by the batch size ``n``, which
        defaults to the number of targets and is required for a loss-only accumulator)."""
        if self.num_classes is None:
            if logits is not None or heads:
                raise ValueError("MetricAccumulator: a loss-only accumulator (num_classes=None) takes no logits")
            if n is None or n < 0:
                raise ValueError(f"MetricAccumulator: a loss-only update needs n >= 0, got {n!r}")
        else:
            if logits is None or target is None:
                raise ValueError("MetricAccumulator: logits and target are required when num_classes is set")
            logits, target = logits.detach().float().cpu(), target.detach().long().cpu()
            if logits.ndim != 2 or logits.shape[1] != self.num_classes:
                raise ValueError(f"MetricAccumulator: expected logits [N, {self.num_classes}], "
                                 f"got {tuple(logits.shape)}")
            n = target.shape[0]
            counts = topk_correct(logits, target, (1, 5))
            self.correct1 += counts[1]
            self.correct5 += counts[5]
            pred = logits.argmax(dim=1)
            self.confusion += confusion_matrix(pred, target, self.num_classes)
            if self.keep_predictions:
                self.predictions.extend(int(p) for p in pred)
            for name, head in (heads or {}).items():
                hits = topk_correct(head.detach().float().cpu(), target, (1,))[1]
                self.head_correct1[name] = self.head_correct1.get(name, 0) + hits
        self.n += n
        if loss is not None:
            self.loss_sum += float(loss) * n
        for name, value in (terms or {}).items():
            self.term_sums[name] = self.term_sums.get(name, 0.0) + float(value) * n

    def all_reduce(self, info: DistInfo) -> None:
        """Sum counts over ranks (no-op when not distributed). Predictions stay per rank.

        Term and head names are first united over ranks (a rank that saw no batch has none), so every rank
        reduces the same vector.
        """
        if not info.enabled:
            return
        names = sorted({k for rank_names in all_gather_objects(sorted(self.term_sums), info) for k in rank_names})
        heads = sorted({k for rank_heads in all_gather_objects(sorted(self.head_correct1), info) for k in rank_heads})
        scalars = torch.tensor([self.n, self.correct1, self.correct5, self.loss_sum]
                               + [self.term_sums.get(k, 0.0) for k in names]
                               + [self.head_correct1.get(h, 0) for h in heads], dtype=torch.float64)
        all_reduce_sum(scalars, info)
        if self.num_classes is not None:
            all_reduce_sum(self.confusion, info)
        self.n, self.correct1, self.correct5 = (int(round(float(x))) for x in scalars[:3])
        self.loss_sum = float(scalars[3])
        self.term_sums = {k: float(v) for k, v in zip(names, scalars[4:4 + len(names)])}
        self.head_correct1 = {h: int(round(float(v))) for h, v in zip(heads, scalars[4 + len(names):])}

    def compute(self) -> dict[str, Any]:
        """Metrics so far; accuracies in [0, 1] (``nan`` when nothing was accumulated)."""
        n = self.n
        nan = float("nan")
        out: dict[str, Any] = {"loss": self.loss_sum / n if n else nan}
        if self.num_classes is not None:
            out["top1"] = self.correct1 / n if n else nan
            out["top5"] = self.correct5 / n if n else nan
            out.update({f"top1_{h}": c / n if n else nan for h, c in sorted(self.head_correct1.items())})
        out.update({k: v / n if n else nan for k, v in sorted(self.term_sums.items())})
        out["num_samples"] = n
        if self.num_classes is not None:
            out["per_class"] = per_class_accuracy(self.confusion)
            out["confusion"] = self.confusion.clone()
        return out
