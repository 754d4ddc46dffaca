"""The course layer: the catalogue (``catalog``), ``stia course assign`` (``assign``), ``stia grade`` (``grade``)
and ``stia course build`` (``book``). Only ``catalog`` is imported here: otter-grader is an optional extra."""
from .catalog import EXERCISES, NOTEBOOKS, CourseNotebook, Exercise, exercise

__all__ = ["EXERCISES", "NOTEBOOKS", "CourseNotebook", "Exercise", "exercise"]
