"""Notebook parameters: flat papermill primitives -> a validated frozen dataclass.

papermill injects parameters as a cell after the one tagged ``parameters`` and only *warns* about names
the notebook does not declare. STIA-Kit notebooks therefore validate them::

    # first code cell (imports)
    from stia_kit.params import from_notebook, snapshot
    _names_before = snapshot(globals())

    # cell tagged "parameters"
    epochs = 3
    dataset = "synth"

    # (papermill's injected-parameters cell lands here)

    # next cell
    P = from_notebook(QuickstartParams, globals(), _names_before)

:func:`from_notebook` raises :class:`ParameterError` for a name that is not a field of the dataclass
(a typo like ``epoch=5`` would otherwise be silently ignored) and for a value of the wrong type.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

P = TypeVar("P")


class ParameterError(ValueError):
    """A notebook / CLI parameter is unknown or has the wrong type."""


def snapshot(namespace: Mapping[str, Any]) -> frozenset[str]:
    """Names defined before the parameters cell (imports etc.); see :func:`from_notebook`."""
    return frozenset(namespace)


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` (ints accepted for floats) or raise ParameterError naming the parameter."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ParameterError(f"parameter {name!r} must be one of {list(allowed)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(annotation):
            try:
                return _check_type(name, value, arg)
            except ParameterError as e:
                errors.append(str(e))
        raise ParameterError(f"parameter {name!r}: {value!r} matches none of {annotation}")
    if annotation is type(None):
        if value is not None:
            raise ParameterError(f"parameter {name!r} must be None, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"parameter {name!r} must be a float, got {type(value).__name__} {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"parameter {name!r} must be an int, got {type(value).__name__} {value!r}")
        return value
    if annotation in (str, bool):
        if not isinstance(value, annotation):
            raise ParameterError(f"parameter {name!r} must be a {annotation.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"parameter {name!r}: unsupported annotation {annotation!r} (keep parameters flat primitives)")


def from_mapping(cls: type[P], values: Mapping[str, Any]) -> P:
    """Build dataclass ``cls`` from ``values``; unknown names and wrong types raise ParameterError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {unknown} for {cls.__name__}; valid parameters: {sorted(fields)}"
        )
    checked = {k: _check_type(k, v, hints[k]) for k, v in values.items()}
    return cls(**checked)


def from_notebook(cls: type[P], namespace: Mapping[str, Any], before: frozenset[str]) -> P:
    """Collect the names defined after ``before`` (parameters cell + papermill's injection) into ``cls``."""
    values = {k: v for k, v in namespace.items() if k not in before and not k.startswith("_")}
    return from_mapping(cls, values)


def add_arguments(parser: "argparse.ArgumentParser", cls: type,
                  choices: Mapping[str, Sequence[Any]] | None = None) -> None:
    """Add one ``--field-name`` option per dataclass field (the CLI mirror of a notebook's parameters).

    ``Literal`` fields get their values as choices; ``choices`` adds choices for other fields (e.g. registry
    names for a ``model: str`` field, from :meth:`stia_kit.registry.Registry.names`).
    """
    hints = typing.get_type_hints(cls)
    extra = dict(choices or {})
    for f in dataclasses.fields(cls):
        ann = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if ann is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=f"(default: {default})")
            continue
        origin = typing.get_origin(ann)
        choices = list(typing.get_args(ann)) if origin is typing.Literal else extra.get(f.name)
        args = [a for a in typing.get_args(ann) if a is not type(None)] if origin in (typing.Union, types.UnionType) else [ann]
        conv = args[0] if args and args[0] in (int, float, str) else str
        if choices and origin is typing.Literal:
            conv = type(choices[0])
        parser.add_argument(flag, dest=f.name, type=conv, choices=choices, default=argparse.SUPPRESS,
                            help=f"(default: {default})")


def from_args(cls: type[P], namespace: "argparse.Namespace") -> P:
    """Build ``cls`` from the options :func:`add_arguments` added (only the ones given on the command line)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return from_mapping(cls, {k: v for k, v in vars(namespace).items() if k in names})


def parameters_cell_source(cls: type, *notes: str) -> str:
    """Source of a notebook's ``parameters`` cell: one ``name = default`` line per field of ``cls``.

    Notebook builders (``notebooks/src/build_*.py``) generate the cell from the params dataclass, so a
    notebook's defaults cannot drift from the library's; ``notes`` become comment lines on top.
    """
    lines = ["# Parameters (papermill). Validated in the next cell: unknown names and wrong types are errors."]
    lines += [f"# {note}" for note in notes]
    lines += [f"{f.name} = {f.default!r}" for f in dataclasses.fields(cls)]
    return "\n".join(lines)


def notebook_parameters(source: str) -> dict[str, Any]:
    """``name -> value`` of the literal assignments in a parameters cell's source (inverse of the above)."""
    import ast

    tree = ast.parse(source)
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
