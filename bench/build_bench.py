#!/usr/bin/env python3
"""Build-stage benchmark: seconds and peak memory per stage at 1,000 / 10,000 / 100,000 measures (or any sizes).

Each size runs in a fresh process (so peak memory is that build's alone) on a
table from the shared generator, built and validated exactly as ``lodpub build``
does. Figures are printed, never asserted; "cpu s" is the building process's own
CPU time (its threads, not its validation workers, whose CPU time is printed
with the total), a figure that other work on the machine disturbs less than the
wall-clock seconds, and the load average is printed after each size so that a
disturbed run can be told.

    python bench/build_bench.py [--sizes 1000 10000 100000 1000000] [--workers N] [--tables DIR]

``--tables DIR`` keeps the generated tables in DIR and reuses them (a table of
1,000,000 measures is 400 MB and takes half a minute to generate).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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


def table(directory: Path, size: int) -> Path:
    source = directory / f"m{size}.txt"
    if not source.exists():
        generator = SHARED / "bench" / "gen_measures.py"
        subprocess.run([sys.executable, str(generator), "--measures", str(size), "--strategies", "8",
                        "--seed", "42", "-o", str(source)], check=True)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--tables", type=Path, default=None, help="keep and reuse the generated tables here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_build(*args.child, args.workers)
        return
    print(f"{'measures':>9} {'triples':>10} {'stage':>9} {'seconds':>8} {'cpu s':>7} {'peak MiB':>9} "
          f"{'worker MiB':>10}")
    with tempfile.TemporaryDirectory(dir=args.tables) as tmp:
        for size in args.sizes:
            if args.tables:
                args.tables.mkdir(parents=True, exist_ok=True)
            source = table(args.tables or Path(tmp), size)
            command = [sys.executable, __file__, "--child", str(source), str(Path(tmp) / f"dist{size}")]
            if args.workers:
                command += ["--workers", str(args.workers)]
            started = time.perf_counter()
            figures = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            elapsed = time.perf_counter() - started
            total = cpu = 0.0
            for stage in figures["stages"]:
                total += stage["seconds"]
                cpu += stage.get("cpu_seconds", 0.0)
                print(f"{figures['measures']:>9,} {figures['triples']:>10,} {stage['name']:>9} "
                      f"{stage['seconds']:>8.2f} {stage.get('cpu_seconds', 0.0):>7.1f} {stage['peak_mib']:>9.0f} "
                      f"{stage['workers_peak_mib']:>10.0f}")
            peak = max(s["peak_mib"] for s in figures["stages"])
            workers = max(s["workers_peak_mib"] for s in figures["stages"])
            workers_cpu = sum(s.get("workers_cpu_seconds", 0.0) for s in figures["stages"])
            print(f"{figures['measures']:>9,} {figures['triples']:>10,} {'total':>9} {total:>8.2f} {cpu:>7.1f} "
                  f"{peak:>9.0f} {workers:>10.0f}   ({total / figures['measures'] * 1e6:.0f} µs per measure; "
                  f"{elapsed:.1f} s with the process's start and exit; validation workers' CPU {workers_cpu:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f})", flush=True)
            subprocess.run(["rm", "-rf", str(Path(tmp) / f"dist{size}"), str(Path(tmp) / f"dist{size}.cache")])


if __name__ == "__main__":
    main()
