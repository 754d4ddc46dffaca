"""The core library and the CLI import without the optional course / cluster dependencies (otter, submitit)."""
from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("otter", "submitit"):
            raise ImportError(f"{name} blocked by the test")
sys.meta_path.insert(0, Block())
import stia_kit, stia_kit.cli, stia_kit.sweep, stia_kit.models, stia_kit.train, stia_kit.explain
import stia_kit.course.catalog
stia_kit.cli.build_parser()
print("ok")
"""


def test_core_imports_without_otter_and_submitit() -> None:
    r = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
