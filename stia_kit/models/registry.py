"""A ~30-line model registry (after torchvision's ``register_model``).

Every model family file registers keyword-only builders::

    @register_model("r3d_18")
    def r3d_18(*, num_classes: int, **cfg) -> nn.Module: ...

and users build by name: ``build_model("r3d_18", num_classes=11, width=16)``.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]
_MODELS: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator adding ``fn`` to the registry under ``name`` (names are unique)."""

    def wrapper(fn: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered (by {_MODELS[name].__module__})")
        _MODELS[name] = fn
        return fn

    return wrapper


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, **cfg: Any) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs; ``cfg`` goes to the model's builder."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return _MODELS[name](num_classes=num_classes, **cfg)
