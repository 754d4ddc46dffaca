"""Training and evaluation: ``fit``/``evaluate``, metrics, checkpoints, optimizers, devices/DDP.

Typical use::

    from stia_kit.train import TrainConfig, fit, evaluate
    cfg = TrainConfig(epochs=30, lr=0.05, warmup_epochs=2, out_dir="runs/r3d")
    result = fit(model, train_set, val_set, cfg)          # resumes from runs/r3d/last.pt if present
    report = evaluate(model, test_set, batch_size=8, num_classes=101, return_scores=True)
    load_best(model, result)                              # best validation epoch (val_set must not be the test split)
"""

from .checkpoint import CheckpointError, capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import TrainConfig
from .device import (AmpSettings, DistInfo, all_reduce_sum, autocast, cleanup_distributed, maybe_init_distributed,
                     resolve_amp, select_device, to_device, unwrap, wrap_ddp)
from .loop import (EvalResult, FitResult, LossFn, NonFiniteLossError, TooManyFailedSamplesError,
                   configure_determinism, evaluate, fit, load_best, seed_everything)
from .metrics import (MetricAccumulator, collate_views, confusion_matrix, fold_views, mean_view_probs, multiview_probs,
                      per_class_accuracy, topk_accuracy, topk_correct)
from .optim import build_optimizer, build_scheduler, lr_multiplier, split_decay_params

__all__ = [
    "AmpSettings", "CheckpointError", "DistInfo", "EvalResult", "FitResult", "LossFn", "MetricAccumulator",
    "NonFiniteLossError", "TooManyFailedSamplesError", "TrainConfig", "all_reduce_sum", "autocast",
    "build_optimizer", "build_scheduler", "capture_rng_state", "cleanup_distributed", "configure_determinism",
    "confusion_matrix", "evaluate", "fit", "fold_views", "load_best", "load_checkpoint", "lr_multiplier",
    "maybe_init_distributed", "collate_views", "mean_view_probs", "multiview_probs", "per_class_accuracy", "resolve_amp",
    "restore_rng_state", "save_checkpoint", "seed_everything", "select_device", "split_decay_params", "to_device",
    "topk_accuracy", "topk_correct", "unwrap", "wrap_ddp",
]
