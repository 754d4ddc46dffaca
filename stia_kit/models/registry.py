"""The model registry (one :class:`~stia_kit.registry.Registry`), the preset convention of model configs, and
the input spec every model declares.

Every model family file registers keyword-only builders that take a ``preset`` and overrides of their
config's fields::

    @register_model("r3d_18")
    def r3d_18(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> nn.Module:
        return ResNet3D(ResNet3DConfig.from_preset(preset, **overrides), num_classes)

and users build by name: ``build_model("r3d_18", 400)`` is the published R3D-18,
``build_model("r3d_18", 11, preset="teaching")`` the small one, ``build_model("r3d_18", 11, width=32)`` the
published one with one field changed. A registry name means what it says.

Config classes derive from :class:`PresetConfig`: their dataclass defaults are the paper's sizes, so
``Config()`` == ``Config.paper()``, and ``Config.teaching(**overrides)`` applies the class's
``TEACHING`` sizes first.

Models declare the clips they accept as ``input_spec`` (an :class:`InputSpec`, or a dict of them keyed
like ``input_keys`` for multi-input models), so callers can check a clip geometry without running the model
and the registry-wide smoke test (``tests/test_models.py``) can build an input for every registered model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch
from torch import Tensor, nn

from ..registry import Preset, Registry, check_preset

MODELS: Registry[nn.Module] = Registry("model")
ModelBuilder = Callable[..., nn.Module]

C = TypeVar("C", bound="PresetConfig")


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator adding a builder ``fn(*, num_classes, preset="paper", **overrides)`` under ``name``."""
    return MODELS.register(name)


def list_models() -> list[str]:
    """Names of all registered models, sorted (``MODELS.names()``)."""
    return MODELS.names()


def build_model(name: str, num_classes: int, *, preset: Preset = "paper", **overrides: Any) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs at ``preset`` (``"paper"`` = the published network,
    ``"teaching"`` = the small one), with ``overrides`` of its config fields."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    check_preset(preset, f"build_model({name!r}) preset")
    return MODELS.build(name, num_classes=num_classes, preset=preset, **overrides)


class PresetConfig:
    """Mixin for frozen model-config dataclasses: ``paper()`` / ``teaching()`` / ``from_preset()``.

    The dataclass defaults are the paper's sizes; a subclass lists its teaching sizes in ``TEACHING``
    (field name -> value). Overrides always win, and ``__post_init__`` validates the result.
    """

    TEACHING: ClassVar[Mapping[str, Any]] = {}  # field -> value of the teaching preset (others: paper's)

    @classmethod
    def paper(cls: type[C], **overrides: Any) -> C:
        """The paper's sizes (the dataclass defaults), with ``overrides``."""
        return cls(**overrides)

    @classmethod
    def teaching(cls: type[C], **overrides: Any) -> C:
        """The teaching sizes (``TEACHING``; the paper's for every other field), with ``overrides``."""
        return cls(**{**cls.TEACHING, **overrides})

    @classmethod
    def from_preset(cls: type[C], preset: Preset, **overrides: Any) -> C:
        """``paper(**overrides)`` or ``teaching(**overrides)``; any other ``preset`` raises a ValueError."""
        check_preset(preset, f"{cls.__name__} preset")
        return cls.paper(**overrides) if preset == "paper" else cls.teaching(**overrides)


@dataclass(frozen=True)
class InputSpec:
    """The clips ``[C, T, H, W]`` a model accepts (batched: ``[B, C, T, H, W]``).

    ``num_frames`` and ``size`` are the geometry the model is built or published for (examples, FLOP
    counts); the constraints below are what the model actually requires.
    """

    channels: int = 3  # C: input channels (RGB)
    num_frames: int = 16  # T the model is built / published for
    size: int = 112  # H = W the model is published for
    min_frames: int = 1  # T must be at least this
    frames_multiple: int = 1  # T must be a multiple of this (e.g. the slow pathway's stride tau)
    min_size: int = 1  # H and W must be at least this

    def __post_init__(self) -> None:
        for name in ("channels", "num_frames", "size", "min_frames", "frames_multiple", "min_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"InputSpec.{name} must be >= 1, got {getattr(self, name)}")

    def problems(self, shape: tuple[int, ...] | torch.Size) -> list[str]:
        """What is wrong with clip ``shape`` (``[C, T, H, W]`` or ``[B, C, T, H, W]``); empty when it fits."""
        shape = tuple(shape)
        if len(shape) == 5:
            shape = shape[1:]
        if len(shape) != 4:
            return [f"expected a clip [C, T, H, W] or a batch [B, C, T, H, W], got shape {list(shape)}"]
        c, t, h, w = shape
        out = []
        if c != self.channels:
            out.append(f"C={c} must be {self.channels}")
        if t < self.min_frames or t % self.frames_multiple:
            need = f"a multiple of {self.frames_multiple}" if self.frames_multiple > 1 else "an integer"
            out.append(f"T={t} must be {need} >= {self.min_frames}")
        if min(h, w) < self.min_size:
            out.append(f"H, W = {h}, {w} must be >= {self.min_size}")
        return out

    def check(self, shape: tuple[int, ...] | torch.Size, who: str = "model") -> None:
        """Raise a ValueError naming ``who`` and every unmet constraint unless clip ``shape`` fits."""
        if problems := self.problems(shape):
            raise ValueError(f"{who} cannot take clips of shape {list(shape)}: {'; '.join(problems)}")

    def example_shape(self, *, frames: int | None = None, size: int | None = None) -> tuple[int, int, int, int]:
        """The smallest valid ``[C, T, H, W]`` with ``T >= frames`` and ``H = W >= size`` (defaults: the
        built-for ``num_frames`` and ``size``)."""
        t = max(frames if frames is not None else self.num_frames, self.min_frames)
        t = -(-t // self.frames_multiple) * self.frames_multiple  # round up to the multiple
        s = max(size if size is not None else self.size, self.min_size)
        return (self.channels, t, s, s)


InputSpecs = InputSpec | Mapping[str, InputSpec]  # one clip, or one per input key (multi-input models)


def example_input(spec: InputSpecs, *, batch: int = 2, frames: int | None = None, size: int | None = None,
                  device: str | torch.device | None = None) -> Tensor | dict[str, Tensor]:
    """Random input for a model with input spec ``spec``: ``[batch, C, T, H, W]`` (a dict of such for
    multi-input models), from :meth:`InputSpec.example_shape`."""
    if isinstance(spec, InputSpec):
        return torch.randn(batch, *spec.example_shape(frames=frames, size=size), device=device)
    return {k: torch.randn(batch, *s.example_shape(frames=frames, size=size), device=device) for k, s in spec.items()}
