"""pyproject.toml, requirements/constraints.txt and environment.yml must pin the same versions."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            out[canonical(m.group(1))] = m.group(2)
    return out


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        deps += extra
    unpinned = [d for d in deps if "==" not in d]
    assert not unpinned, f"pyproject.toml has unpinned dependencies: {unpinned}"
    return pins(deps)


def test_three_files_agree() -> None:
    project = pyproject_pins()
    constraints = pins((ROOT / "requirements" / "constraints.txt").read_text().splitlines())
    env_lines = (ROOT / "environment.yml").read_text().splitlines()
    conda = pins([l for l in env_lines if "==" in l])
    assert "torch" in project and project["torch"] == "2.13.0", "torch must stay pinned to 2.13.0 (CPU wheel)"
    for name, version in project.items():
        assert constraints.get(name) == version, f"{name}: pyproject {version} vs constraints {constraints.get(name)}"
        assert conda.get(name) == version, f"{name}: pyproject {version} vs environment.yml {conda.get(name)}"
    extra = set(conda) - set(project)
    assert not extra, f"environment.yml pins packages pyproject.toml does not declare: {sorted(extra)}"


def test_installed_versions_match_pins() -> None:
    from importlib.metadata import PackageNotFoundError, version

    for name, pinned in pyproject_pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is pinned but not installed")
        assert installed.split("+")[0] == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_no_torchvision_dependency() -> None:
    text = (ROOT / "requirements" / "constraints.txt").read_text()
    assert "torchvision" not in text
