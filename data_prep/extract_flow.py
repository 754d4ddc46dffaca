"""Extract optical flow (+ RGB frames) of every video under SRC into DST, in the TSN frame-folder layout.

    python data_prep/extract_flow.py SRC DST [--method tvl1|farneback|dis] [--bound 20] [--workers 2]
                                     [--short-side N] [--no-rgb] [--max-frames N] [--limit N] [--quiet]

The same command as ``stia data flow`` (one definition of the options: :mod:`stia_kit.cli`; the work is
:func:`stia_kit.data.flow.extract_tree`). Resumable: run it again after an interruption. Exit code 1 when
any video failed (listed with the reason at the end and in DST/flow_summary.json).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
    from stia_kit.cli import main

    sys.exit(main(["data", "flow", *sys.argv[1:]]))
