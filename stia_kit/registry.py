"""One small registry type for everything built by name: models, datasets, enhancers.

After torchvision's ``register_model``: a family file decorates a keyword-only builder, users build by name,
and the CLI takes its ``choices`` from :meth:`Registry.names` (so a new entry is offered everywhere at once)::

    MODELS = Registry("model")

    @MODELS.register("r3d_18")
    def r3d_18(*, num_classes: int, **cfg) -> nn.Module: ...

    MODELS.build("r3d_18", num_classes=11)
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, Literal, TypeVar

T = TypeVar("T")

#: The one size convention of the kit: every model builder and every experiment takes ``preset``.
#: ``"paper"`` = the sizes (and, for experiments, the recipe) the paper prints; ``"teaching"`` = the small
#: sizes that train in minutes on a 2-core CPU. Model builders default to ``"paper"`` (a registry name
#: means what it says); experiments default to ``"teaching"`` (a notebook runs in minutes).
Preset = Literal["paper", "teaching"]
PRESETS: tuple[str, ...] = ("paper", "teaching")


def check_preset(preset: str, who: str = "preset") -> None:
    """Raise a ValueError naming ``who`` unless ``preset`` is one of :data:`PRESETS`."""
    if preset not in PRESETS:
        raise ValueError(f"{who} must be one of {list(PRESETS)}, got {preset!r}")
Builder = Callable[..., T]


class Registry(Generic[T]):
    """Name -> builder. Names are unique; an unknown name raises a ``KeyError`` listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # what is registered ("model", "dataset", "enhancer"), used in error messages
        self._builders: dict[str, Builder[T]] = {}

    def register(self, name: str) -> Callable[[Builder[T]], Builder[T]]:
        """Decorator adding ``fn`` under ``name``."""

        def wrapper(fn: Builder[T]) -> Builder[T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {self._builders[name].__module__})")
            self._builders[name] = fn
            return fn

        return wrapper

    def names(self) -> list[str]:
        """Registered names, sorted (use these as CLI choices)."""
        return sorted(self._builders)

    def get(self, name: str) -> Builder[T]:
        """The builder registered under ``name``."""
        if name not in self._builders:
            raise KeyError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._builders[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> T:
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._builders)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
