"""Optimizer and per-iteration learning-rate schedule.

Weight decay policy: decay is applied only to weight matrices/kernels. Parameters of normalisation
layers (BatchNorm/GroupNorm/LayerNorm/InstanceNorm), every ``bias``, and any other parameter with
``ndim <= 1`` (scales, gates) are put in a second parameter group with ``weight_decay=0`` — decaying
them shrinks the normalisation scale and biases towards zero for no regularisation benefit.
``TrainConfig.weight_decay_all`` puts every parameter in one decayed group instead (in ``model.parameters()``
order), which is what recipes such as the official Zero-DCE code (``Adam(net.parameters(), weight_decay=...)``) do.

The schedule is a ``LambdaLR`` stepped once per *iteration*: a linear warm-up over
``warmup_epochs * iters_per_epoch`` iterations, then cosine / step / constant.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .config import TrainConfig

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def split_decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Return ``(decay, no_decay)`` trainable parameters following the module's weight-decay policy."""
    no_decay_ids: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, _NORM_TYPES) or name.endswith("bias") or param.ndim <= 1:
                no_decay_ids.add(id(param))
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if id(param) in no_decay_ids else decay).append(param)
    return decay, no_decay


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW over ``model``'s trainable parameters, without decay on norm/bias params
    (unless ``cfg.weight_decay_all``)."""
    if cfg.weight_decay_all:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": params, "weight_decay": cfg.weight_decay}] if params else []
    else:
        decay, no_decay = split_decay_params(model)
        groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise ValueError("build_optimizer: the model has no trainable parameters")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    betas = (cfg.momentum, 0.999)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas)
    raise ValueError(f"build_optimizer: unknown optimizer {cfg.optimizer!r}")


def lr_multiplier(cfg: TrainConfig, iters_per_epoch: int) -> Callable[[int], float]:
    """The per-iteration multiplier of ``cfg.lr`` (iteration 0 is the first optimizer step).

    Warm-up: ``(it + 1) / warmup_iters`` for ``it < warmup_iters``. Afterwards with ``p`` the fraction
    of post-warm-up iterations done: cosine ``min + (1 - min) * (1 + cos(pi * p)) / 2`` (reaching
    ``min_lr_ratio`` after the last iteration), step ``gamma ** (#milestones passed)`` on epoch
    boundaries, constant ``1``.
    """
    if iters_per_epoch < 1:
        raise ValueError(f"lr_multiplier: iters_per_epoch must be >= 1, got {iters_per_epoch}")
    total = cfg.epochs * iters_per_epoch
    warmup = int(round(cfg.warmup_epochs * iters_per_epoch))
    milestones = list(cfg.milestones) if cfg.milestones is not None else None

    def multiplier(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "cosine":
            progress = min(1.0, (it - warmup) / max(1, total - warmup))
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        epoch = it // iters_per_epoch
        drops = sum(epoch >= m for m in milestones) if milestones is not None else epoch // cfg.step_size
        return cfg.step_gamma ** drops

    return multiplier


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, iters_per_epoch: int) -> LambdaLR:
    """A ``LambdaLR`` to be stepped after every optimizer step (see :func:`lr_multiplier`)."""
    return LambdaLR(optimizer, lr_multiplier(cfg, iters_per_epoch))
