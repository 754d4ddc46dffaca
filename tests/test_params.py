"""Notebook parameter validation (papermill only warns about unknown names; we raise)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from stia_kit.params import ParameterError, from_mapping, from_notebook, snapshot


@dataclass(frozen=True)
class Demo:
    epochs: int = 2
    lr: float = 0.1
    dataset: Literal["synth", "ucf101"] = "synth"
    data_root: str | None = None
    amp: bool = False


def test_defaults_and_int_for_float() -> None:
    p = from_mapping(Demo, {"lr": 1})
    assert p.lr == 1.0 and isinstance(p.lr, float) and p.epochs == 2


def test_unknown_name_is_an_error_listing_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['epoch'\].*valid parameters"):
        from_mapping(Demo, {"epoch": 5})


@pytest.mark.parametrize(
    "values, msg",
    [({"epochs": "3"}, "'epochs' must be an int"), ({"epochs": True}, "'epochs' must be an int"),
     ({"lr": "fast"}, "'lr' must be a float"), ({"dataset": "kinetics"}, "'dataset' must be one of"),
     ({"amp": 1}, "'amp' must be a bool"), ({"data_root": 3}, "'data_root'")],
)
def test_wrong_types_name_the_parameter(values: dict, msg: str) -> None:
    with pytest.raises(ParameterError, match=msg):
        from_mapping(Demo, values)


def test_from_notebook_sees_only_names_after_snapshot() -> None:
    ns: dict = {"np": object(), "In": [], "_i1": ""}
    before = snapshot(ns)
    ns.update(epochs=4, data_root="/data", _private=1)
    p = from_notebook(Demo, ns, before)
    assert p == Demo(epochs=4, data_root="/data")
    ns["typo"] = 1
    with pytest.raises(ParameterError, match="typo"):
        from_notebook(Demo, ns, before)
