"""The shared registry type (stia_kit.registry), the model registry built on it, the preset mixin of model
configs and the input spec models declare."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import pytest
import torch
from torch import nn

from stia_kit.models import MODELS, InputSpec, PresetConfig, build_model, example_input, list_models, register_model
from stia_kit.registry import PRESETS, Registry, check_preset


def test_registry_registers_lists_builds_and_rejects() -> None:
    reg: Registry[str] = Registry("thing")

    @reg.register("b")
    def b(*, x: int = 1) -> str:
        return f"b{x}"

    reg.register("a")(lambda: "a")
    assert reg.names() == ["a", "b"] == list(reg) and len(reg) == 2
    assert "a" in reg and "c" not in reg and reg.get("b") is b
    assert reg.build("b", x=3) == "b3"
    assert repr(reg) == "Registry('thing': a, b)"
    with pytest.raises(KeyError, match="unknown thing 'c'; available: a, b"):
        reg.build("c")
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(lambda: "again")
    assert reg.build("a") == "a"  # the first registration is kept


def test_check_preset() -> None:
    assert PRESETS == ("paper", "teaching")
    for p in PRESETS:
        check_preset(p)
    with pytest.raises(ValueError, match=r"MyParams.preset must be one of \['paper', 'teaching'\], got 'full'"):
        check_preset("full", "MyParams.preset")


def test_model_registry_is_one_registry() -> None:
    assert isinstance(MODELS, Registry) and MODELS.kind == "model"
    assert list_models() == MODELS.names() and {"r3d_18", "r2d_18", "c3d", "slowfast_r50", "stin"} <= set(MODELS)
    with pytest.raises(ValueError, match="model 'r3d_18' is already registered"):
        register_model("r3d_18")(lambda **kw: nn.Identity())
    with torch.device("meta"):
        a = build_model("r3d_18", 7, preset="teaching")
        b = MODELS.build("r3d_18", num_classes=7, preset="teaching")
    assert a.cfg == b.cfg and a.head.fc.out_features == 7


@dataclass(frozen=True)
class _ToyConfig(PresetConfig):
    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 4}

    width: int = 64  # channels (paper: 64; teaching: 4)
    depth: int = 3  # blocks

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"_ToyConfig.width must be >= 1, got {self.width}")


def test_preset_config_mixin() -> None:
    assert _ToyConfig.paper() == _ToyConfig() == _ToyConfig(64, 3)
    assert _ToyConfig.teaching() == _ToyConfig(width=4)
    assert _ToyConfig.teaching(width=8, depth=1) == _ToyConfig(8, 1)  # overrides win
    assert _ToyConfig.from_preset("teaching", depth=2) == _ToyConfig(4, 2)
    assert _ToyConfig.from_preset("paper") == _ToyConfig()
    with pytest.raises(ValueError, match="_ToyConfig preset must be one of"):
        _ToyConfig.from_preset("big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="width must be >= 1"):
        _ToyConfig.teaching(width=0)  # validation still runs
    with pytest.raises(TypeError, match="colour"):
        _ToyConfig.paper(colour=1)


def test_input_spec_constraints_and_examples() -> None:
    spec = InputSpec(num_frames=32, size=224, min_frames=8, frames_multiple=8, min_size=32)
    assert spec.problems((3, 32, 224, 224)) == [] == spec.problems((5, 3, 16, 32, 40))
    assert spec.problems((1, 12, 16, 224)) == ["C=1 must be 3", "T=12 must be a multiple of 8 >= 8",
                                              "H, W = 16, 224 must be >= 32"]
    assert spec.problems((3, 0, 32, 32)) == ["T=0 must be a multiple of 8 >= 8"]
    assert "expected a clip" in spec.problems((3, 32, 32))[0]
    with pytest.raises(ValueError, match=r"stin cannot take clips of shape \[3, 4, 64, 64\]: T=4"):
        spec.check((3, 4, 64, 64), who="stin")
    assert spec.example_shape() == (3, 32, 224, 224)
    assert spec.example_shape(frames=9, size=8) == (3, 16, 32, 32)  # rounded up to what the model accepts
    assert InputSpec().problems((3, 1, 1, 1)) == []
    with pytest.raises(ValueError, match="InputSpec.frames_multiple must be >= 1"):
        InputSpec(frames_multiple=0)


def test_example_input_single_and_multi_input() -> None:
    x = example_input(InputSpec(num_frames=4, size=8), batch=3)
    assert isinstance(x, torch.Tensor) and x.shape == (3, 3, 4, 8, 8)
    d = example_input({"rgb": InputSpec(), "flow": InputSpec(channels=2)}, batch=1, frames=2, size=16)
    assert isinstance(d, dict) and d["rgb"].shape == (1, 3, 2, 16, 16) and d["flow"].shape == (1, 2, 2, 16, 16)
