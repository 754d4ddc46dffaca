"""Models: a registry plus one file per model family (importing a family registers its builders)."""
from .registry import build_model, list_models, register_model
from . import c3d, r3d  # noqa: F401  (registration side effect)
from . import slowfast, stin  # noqa: F401  (registration: slowfast_r50, stin)

__all__ = ["build_model", "list_models", "register_model"]
