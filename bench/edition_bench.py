#!/usr/bin/env python3
"""Editions at scale: the first build, a build that changes 1 % of the rows, disk per edition, and a server
moving to a new edition while clients read it.

    python bench/edition_bench.py [--measures 100000] [--changed 0.01] [--clients 4] [--out DIR]

1. A generated table (``../shared/bench/gen_measures.py``) is built as the first edition, then the same table
   with ``--changed`` of its rows edited (a quarter renamed, a quarter with a rewritten summary, a quarter
   removed, a quarter added) as the second; each build in a fresh process, seconds and peak memory per stage.
2. Disk: each edition's files, and the caches of each (query store, search index).
3. A server on the tree, ``--clients`` clients in a loop (researcher queries, resource pages, search, the
   dataset description), and a third edition built meanwhile: seconds from the pointer's swap to the first
   answer from the new edition and to ``/health`` naming it, requests by status, latencies before, during and
   after. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
QUERIES = sorted((ROOT / "bench" / "queries").glob("*.rq"))


def one_build(source: str, out: str) -> None:
    """Run in the child: build into ``out`` as ``lodpub build`` does (its own register), print the figures."""
    from lodpub.pipeline.build import build
    from lodpub.settings import Settings

    started = time.perf_counter()
    result = build([Path(source)], Path(out), Settings(), environ={"SOURCE_DATE_EPOCH": os.environ["EPOCH"]})
    print(json.dumps({"measures": result.measures, "triples": result.triples, "edition": result.edition,
                      "wall": time.perf_counter() - started, "changes": len(result.changes),
                      "stages": [vars(s) for s in result.stages]}))


def build(source: Path, out: Path, epoch: int) -> dict:
    command = [sys.executable, __file__, "--child", str(source), str(out)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, "EPOCH": str(epoch)})
    return json.loads(done.stdout.splitlines()[-1])


def edit(source: Path, target: Path, share: float, seed: int) -> dict[str, int]:
    """``source`` with ``share`` of its rows edited, written to ``target``; how many of each edit."""
    lines = source.read_text(encoding="utf-8").splitlines()
    rows = [i for i, line in enumerate(lines) if line.count("\t") == 5 and not line.startswith("施策\t")]
    rng = random.Random(seed)
    chosen = rng.sample(rows, max(4, int(len(rows) * share)))
    quarter = len(chosen) // 4
    done = {"renamed": 0, "rewritten": 0, "removed": 0, "added": 0}
    removed = set()
    for n, i in enumerate(chosen):
        cells = lines[i].split("\t")
        if n < quarter:
            cells[0] += f"（改{seed}）"
            done["renamed"] += 1
        elif n < 2 * quarter:
            cells[1] += f"（第{seed}版で改訂）"
            done["rewritten"] += 1
        elif n < 3 * quarter:
            removed.add(i)
            done["removed"] += 1
            continue
        else:
            lines[i] += "\n" + "\t".join([cells[0] + f"（新{seed}）", "新しい施策の概要。", *cells[2:]])
            done["added"] += 1
            continue
        lines[i] = "\t".join(cells)
    target.write_text("\n".join(line for i, line in enumerate(lines) if i not in removed) + "\n", encoding="utf-8")
    return done


def stage_table(label: str, figures: dict) -> None:
    stages = "  ".join(f"{s['name']} {s['seconds']:.1f}" for s in figures["stages"])
    peak = max(s["peak_mib"] for s in figures["stages"])
    print(f"{label:<16} {sum(s['seconds'] for s in figures['stages']):>7.1f} s   peak {peak:>6,.0f} MiB   {stages}")


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class Load:
    """Clients reading the server in a loop; each answer recorded with its time, status, latency, edition."""

    def __init__(self, url: str, clients: int, measures: int):
        self.url, self.stop = url, threading.Event()
        self.records: list[tuple[float, str, int, float, str]] = []  # (when, kind, status, seconds, edition)
        self.errors: list[str] = []
        self.queries = [q.read_text(encoding="utf-8") for q in QUERIES]
        self.threads = [threading.Thread(target=self.run, args=(i, measures), daemon=True) for i in range(clients)]

    def run(self, index: int, measures: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                kind = rng.choice(("sparql", "sparql", "page", "search", "void"))
                started = time.perf_counter()
                try:
                    if kind == "sparql":
                        r = client.post("/sparql", data={"query": rng.choice(self.queries)},
                                        headers={"Accept": "application/sparql-results+json, text/turtle"})
                    elif kind == "page":
                        r = client.get(f"/doc/measure/{rng.randint(1, measures)}", headers={"Accept": "text/html"})
                    elif kind == "search":
                        r = client.get("/search", params={"q": rng.choice(("移住", "多摩地域", "スタートアップ"))})
                    else:
                        r = client.get("/data/void.ttl")
                    self.records.append((time.time(), kind, r.status_code, time.perf_counter() - started,
                                         r.headers.get("lodpub-edition", "")))
                except httpx.HTTPError as exc:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")


def percentiles(values: list[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms ({len(ordered):,})"


def serve_through_a_switch(dist: Path, source: Path, clients: int, measures: int, epoch: int) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (dist.parent / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "lodpub", "serve", "--dist", str(dist), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).json()["ready"].get("memory", 1):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        old = httpx.get(url + "/health").json()["edition"]
        load = Load(url, clients, measures)
        for t in load.threads:
            t.start()
        time.sleep(20)
        swapped: list[float] = []

        def watch_pointer() -> None:
            while not swapped:
                if os.readlink(dist / "current") != old:
                    swapped.append(time.time())
                time.sleep(0.005)
        watcher = threading.Thread(target=watch_pointer, daemon=True)
        watcher.start()
        build_start = time.time()
        third = build(source, dist, epoch)
        watcher.join(5)
        health_seen = None
        while health_seen is None and time.time() - swapped[0] < 120:
            if httpx.get(url + "/health").json()["edition"] == third["edition"]:
                health_seen = time.time()
            time.sleep(0.02)
        time.sleep(20)
        load.stop.set()
        for t in load.threads:
            t.join(60)
        swap = swapped[0]
        first_new = min((w for w, _, _, _, e in load.records if e == third["edition"]), default=None)
        statuses: dict[int, int] = {}
        for _, _, status, _, _ in load.records:
            statuses[status] = statuses.get(status, 0) + 1
        print(f"\n## switching while serving ({clients} clients)")
        print(f"third build (another {third['changes']:,} changes): {third['wall']:.1f} s, pointer swapped "
              f"{swap - build_start:.1f} s after it started")
        print(f"pointer swap → first answer from the new edition: {first_new - swap:.2f} s" if first_new else
              "no answer from the new edition")
        print(f"pointer swap → /health names it: {health_seen - swap:.2f} s" if health_seen else "never named")
        print(f"requests: {len(load.records):,} answered, by status {dict(sorted(statuses.items()))}, "
              f"{len(load.errors)} failed in the client" + (f" (first: {load.errors[0]})" if load.errors else ""))
        for label, low, high in (("before the build", 0, build_start), ("during the build", build_start, swap),
                                 ("after the swap", swap, float("inf"))):
            for kind in ("sparql", "page", "search", "void"):
                times = [s for w, k, _, s, _ in load.records if low <= w < high and k == kind]
                print(f"  {label:<17} {kind:<7} {percentiles(times)}")
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measures", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="keep the tree here (default: a temporary one)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_build(*args.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        dist = work / "dist"
        first = work / "t0.txt"
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen_measures.py"), "--measures", str(args.measures),
                        "--strategies", "8", "--seed", "42", "-o", str(first)], check=True)
        print(f"## {args.measures:,} measures, {args.changed:.0%} of the rows changed per edition")
        one = build(first, dist, 1_767_225_600)
        stage_table("first edition", one)
        edits = edit(first, work / "t1.txt", args.changed, 1)
        two = build(work / "t1.txt", dist, 1_767_225_600 + 86_400)
        stage_table("1 % changed", two)
        ratio = sum(s["seconds"] for s in two["stages"]) / sum(s["seconds"] for s in one["stages"])
        print(f"{'':<16} edits {edits}; changes found: {two['changes']:,}; second / first: {ratio:.2f}")
        caches = dist.with_name(dist.name + ".cache")
        for figures in (one, two):
            name = figures["edition"]
            print(f"disk: edition {name} {size_of(dist / name) / 2**20:,.1f} MiB, its caches "
                  f"{size_of(caches / name) / 2**20:,.1f} MiB")
        edit(work / "t1.txt", work / "t2.txt", args.changed, 2)
        serve_through_a_switch(dist, work / "t2.txt", args.clients, args.measures, 1_767_225_600 + 2 * 86_400)


if __name__ == "__main__":
    main()
