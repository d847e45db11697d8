#!/usr/bin/env python3
"""Build-stage benchmark: seconds and peak memory per stage at 1,000 / 10,000 / 100,000 measures.

Each size runs in a fresh process (so peak memory is that build's alone) on a
table from the shared generator, built and validated exactly as ``lodpub build``
does. Figures are printed, never asserted.

    python bench/build_bench.py [--sizes 1000 10000 100000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))


def one_build(source: str, out: str, workers: int | None) -> None:
    """Run in the child: build, then print the stage figures as JSON."""
    from lodpub.pipeline.build import build
    from lodpub.register import Register
    from lodpub.settings import Settings

    result = build([Path(source)], Path(out), Settings(), Register(), workers=workers)
    print(json.dumps({"measures": result.measures, "triples": result.triples,
                      "stages": [vars(s) for s in result.stages]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_build(*args.child, args.workers)
        return
    generator = SHARED / "bench" / "gen_measures.py"
    print(f"{'measures':>9} {'triples':>10} {'stage':>9} {'seconds':>8} {'peak MiB':>9} {'worker MiB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            source = Path(tmp) / f"m{size}.txt"
            subprocess.run([sys.executable, str(generator), "--measures", str(size), "--strategies", "8",
                            "--seed", "42", "-o", str(source)], check=True)
            command = [sys.executable, __file__, "--child", str(source), str(Path(tmp) / f"dist{size}")]
            if args.workers:
                command += ["--workers", str(args.workers)]
            figures = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            total = 0.0
            for stage in figures["stages"]:
                total += stage["seconds"]
                print(f"{figures['measures']:>9,} {figures['triples']:>10,} {stage['name']:>9} "
                      f"{stage['seconds']:>8.2f} {stage['peak_mib']:>9.0f} {stage['workers_peak_mib']:>10.0f}")
            peak = max(s["peak_mib"] for s in figures["stages"])
            workers = max(s["workers_peak_mib"] for s in figures["stages"])
            print(f"{figures['measures']:>9,} {figures['triples']:>10,} {'total':>9} {total:>8.2f} {peak:>9.0f} "
                  f"{workers:>10.0f}   ({total / figures['measures'] * 1e6:.0f} µs per measure)")


if __name__ == "__main__":
    main()
