#!/usr/bin/env python3
"""The first run of each query after start, against its warm median: a cold start, then a restart (issue 12).

A copy of a built tree (and its caches) is served by ``lodpub serve`` as serve_bench.py
serves it (a 60 s limit, no row cap), the result cache off. Cold: once ``/health`` says
ready, each query of each set is sent once (its first run) and then ``--repeat`` times
(its warm median). The server is stopped with SIGTERM, as a deploy stops it, and
started again on the same copy: the first run and the warm median of each query again,
after ``/health`` says ready (which now includes warming the requests the first server
answered last, ``serving/recall.py``). Every answer of the restarted server is compared
with the cold one's. Figures are printed, never asserted.

    python bench/restart_bench.py --dist bench/out/serve/100000/dist100000 [--sets queries queries2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serve_measure import Query, compare_answers, fetch_answer, load_set
from serve_systems import LODPUB_BIN, OUT, ROOT, free_port, http_get


def serve(dist: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """``lodpub serve`` on ``dist``; returns it, its endpoint and the seconds until /health said ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_")}
    # As serve_bench.py serves lodpub: the peers' 60 s limit, no row cap, no per-address cap; no result cache.
    env.update({"LODPUB_RESULT_CACHE_MB": "0", "LODPUB_QUERY_TIMEOUT": "60", "LODPUB_MAX_ROWS": "1000000",
                "LODPUB_CLIENT_QUERIES": "0"})
    started = time.perf_counter()
    process = subprocess.Popen([str(LODPUB_BIN), "serve", "--dist", str(dist), "--port", str(port)], env=env,
                               stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            sys.exit(f"lodpub serve ended (status {process.returncode}); see {log}")
        try:
            if http_get(base + "/health", timeout=2)[0] == 200:
                return process, base + "/sparql", time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.1)


def measure(endpoint: str, queries: list[Query], repeat: int, timeout: float) -> dict[str, tuple[float, float, object]]:
    """Each query's first run (ms), its median over ``repeat`` more, and its first answer."""
    found = {}
    for query in queries:
        first = fetch_answer(endpoint, query, timeout)
        runs = [fetch_answer(endpoint, query, timeout).ms for _ in range(repeat)]
        found[query.name] = (first.ms, statistics.median(runs), first)
    return found


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, required=True, help="a built tree (its caches beside it are copied too)")
    parser.add_argument("--sets", nargs="+", default=["queries", "queries2"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=OUT / "restart")
    args = parser.parse_args()
    dist = args.dist.resolve()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    copy = args.out / "dist"
    shutil.copytree(dist, copy, symlinks=True)
    shutil.copytree(dist.with_name(dist.name + ".cache"), copy.with_name("dist.cache"), symlinks=True)
    for kept in copy.with_name("dist.cache").glob("*/recent.json"):
        kept.unlink()  # the copy starts cold whatever the tree's own servers kept
    sets = {name: load_set(ROOT / "bench" / name) for name in args.sets}
    load = os.getloadavg()
    print(f"# restart_bench: {dist}, sets {', '.join(args.sets)}, repeat {args.repeat}, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")

    figures: dict[str, dict[str, dict[str, tuple[float, float, object]]]] = {}
    for phase in ("cold", "restarted"):
        process, endpoint, ready = serve(copy, args.out / "lodpub.log")
        try:
            print(f"## {phase}: /health ready after {ready:.1f} s")
            figures[phase] = {name: measure(endpoint, queries, args.repeat, args.timeout)
                              for name, queries in sets.items()}
        finally:
            stop(process)

    for name, queries in sets.items():
        print(f"\n### set {name}: first run after /health said ready, ms, and against the warm median")
        print("| query | cold first | cold median | × | restarted first | restarted median | × | same answer |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        within = {"cold": 0, "restarted": 0}
        for query in queries:
            cells = []
            for phase in ("cold", "restarted"):
                first, median, _ = figures[phase][name][query.name]
                ratio = first / median if median else float("inf")
                within[phase] += ratio <= 2
                cells += [f"{first:,.1f}", f"{median:,.1f}", f"{ratio:.1f}×"]
            verdict, detail = compare_answers(query, figures["cold"][name][query.name][2],
                                              figures["restarted"][name][query.name][2])
            cells.append(verdict if not detail else f"{verdict}: {detail[:60]}")
            print(f"| {query.name} | " + " | ".join(cells) + " |")
        print(f"\nwithin 2× of the warm median: cold {within['cold']} of {len(queries)}, "
              f"restarted {within['restarted']} of {len(queries)}")


if __name__ == "__main__":
    main()
