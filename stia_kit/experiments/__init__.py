"""Experiments behind the notebooks: parameters dataclasses and runners (the notebooks only call these)."""
