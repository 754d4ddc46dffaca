"""Device selection, host->device transfer, mixed precision and torch.distributed helpers.

Distributed training follows the ``torchrun`` convention: the launcher sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`maybe_init_distributed` reads them and
initialises the default process group (NCCL on CUDA, gloo on CPU). Only rank 0 logs, shows progress
bars and writes files; metric counts are summed over ranks with :func:`all_reduce_sum`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, ContextManager

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger("stia_kit.train")


# ---------------------------------------------------------------------------------------------- devices
def select_device(pref: str = "auto") -> torch.device:
    """Return the device to train on.

    ``"auto"`` picks CUDA (the current/local device) when available, else CPU. ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are honoured literally; asking for CUDA on a machine without it raises ``RuntimeError``.
    """
    if pref == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(pref)
    except RuntimeError as err:
        raise ValueError(f"select_device: cannot parse device {pref!r}: {err}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"select_device: {pref!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"select_device: {pref!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type != "cpu":
        raise ValueError(f"select_device: unsupported device {pref!r} (use 'auto', 'cpu', 'cuda' or 'cuda:N')")
    return device


def to_device(batch: Any, device: torch.device, *, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested) dict/list/tuple batch to ``device``.

    Copies are ``non_blocking`` when the source tensor is in pinned memory (the only case where that is
    safe and useful). With ``channels_last``, 5-D floating tensors become ``torch.channels_last_3d``.
    Non-tensor leaves (e.g. the ``failed`` strings) are returned unchanged.
    """
    if isinstance(batch, torch.Tensor):
        moved = batch.to(device, non_blocking=batch.is_pinned())
        if channels_last and moved.ndim == 5 and moved.is_floating_point():
            moved = moved.contiguous(memory_format=torch.channels_last_3d)
        return moved
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last=channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last=channels_last) for v in batch)
    return batch


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Store ``model``'s weights channels-last, in place: 5-D tensors (3D convolutions) as
    ``torch.channels_last_3d``, 4-D ones (2D convolutions, e.g. the two-stream backbones) as
    ``torch.channels_last``, so 2D, 3D and mixed models all take the option (``Module.to(memory_format=
    channels_last_3d)`` raises on a 4-D weight)."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.ndim == 5:
            t.data = t.data.contiguous(memory_format=torch.channels_last_3d)
        elif t.ndim == 4:
            t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model


# ---------------------------------------------------------------------------------------------- AMP
@dataclass(frozen=True)
class AmpSettings:
    """Resolved mixed-precision choice: autocast dtype (None = full precision) and whether to scale."""

    dtype: torch.dtype | None  # autocast dtype, None = autocast disabled
    use_scaler: bool  # GradScaler enabled (fp16 only)

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def resolve_amp(mode: str, device: torch.device) -> AmpSettings:
    """Turn ``TrainConfig.amp`` into an :class:`AmpSettings` for ``device``.

    * ``"auto"``: on CUDA bf16 when the GPU supports it, else fp16 with a GradScaler; off on CPU.
    * ``"bf16"``: bf16 autocast, no scaler (bf16 has fp32's exponent range); works on CPU too.
    * ``"fp16"``: fp16 autocast with a GradScaler; allowed on CPU (slow; useful to test the scaler path).
    * ``"off"``: full fp32.
    """
    if mode == "off":
        return AmpSettings(None, False)
    if mode == "bf16":
        return AmpSettings(torch.bfloat16, False)
    if mode == "fp16":
        return AmpSettings(torch.float16, True)
    if mode == "auto":
        if device.type == "cuda":
            if torch.cuda.is_bf16_supported():
                return AmpSettings(torch.bfloat16, False)
            return AmpSettings(torch.float16, True)
        return AmpSettings(None, False)
    raise ValueError(f"resolve_amp: amp must be 'auto', 'off', 'bf16' or 'fp16', got {mode!r}")


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager[Any]:
    """Autocast context for ``device`` (``nullcontext`` when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, amp: AmpSettings) -> torch.amp.GradScaler:
    """A GradScaler for ``device``; disabled (a transparent pass-through) unless fp16 is used."""
    return torch.amp.GradScaler(device.type, enabled=amp.use_scaler)


# ---------------------------------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly trivial) distributed run."""

    enabled: bool  # a default process group is in use
    rank: int  # global rank (0 when not distributed)
    world_size: int  # number of processes (1 when not distributed)
    local_rank: int  # rank on this node; picks the CUDA device
    initialized_here: bool = False  # maybe_init_distributed created the group (cleanup_distributed destroys it)

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0


def maybe_init_distributed(backend: str | None = None) -> DistInfo:
    """Initialise torch.distributed from the ``torchrun`` environment variables, if present.

    * Process group already initialised (by the caller): it is used as is.
    * ``WORLD_SIZE`` and ``RANK`` set: ``init_process_group(init_method="env://")`` with ``backend``
      (default NCCL when CUDA is available, else gloo); on CUDA the local device is made current.
    * Otherwise: a non-distributed :class:`DistInfo` (rank 0 of 1).
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        return DistInfo(True, rank, world, int(os.environ.get("LOCAL_RANK", rank)))
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return DistInfo(False, 0, 1, 0)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE/RANK are set but this torch build has no torch.distributed support")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"distributed run (WORLD_SIZE={world}) but environment variable {name} is not set")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    logger.info("initialised torch.distributed: backend=%s rank=%d/%d", backend, rank, world)
    return DistInfo(True, rank, world, local_rank, initialized_here=True)


def cleanup_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`maybe_init_distributed` created it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def device_for(info: DistInfo, pref: str = "auto") -> torch.device:
    """The device for this process: ``cuda:LOCAL_RANK`` in a distributed CUDA run, else :func:`select_device`."""
    device = select_device(pref)
    if info.enabled and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank)
    return device


def wrap_ddp(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel when distributed, else return it."""
    if not info.enabled:
        return model
    device_ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The underlying module of a DDP/DataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (no-op when not distributed) and return it.

    NCCL needs CUDA tensors, so the tensor is moved to the current device for the reduction and back.
    """
    if not info.enabled:
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        on_gpu = tensor.cuda()
        dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
        tensor.copy_(on_gpu.cpu())
    else:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Gather one picklable object per rank (``[obj]`` when not distributed)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank (no-op when not distributed).

    DDP broadcasts buffers only at the start of each training forward, so after an epoch's last step every rank
    holds running statistics updated by its own shard; syncing them makes validation, checkpoints and the
    returned model the same on every rank (rank 0's, which is what ``last.pt`` stores).
    """
    if not info.enabled:
        return
    for buf in module.buffers():
        if dist.get_backend() == "nccl" and buf.device.type != "cuda":
            on_gpu = buf.cuda()
            dist.broadcast(on_gpu, src=0)
            buf.copy_(on_gpu.cpu())
        else:
            dist.broadcast(buf, src=0)


def barrier(info: DistInfo) -> None:
    """Synchronise all ranks (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()
