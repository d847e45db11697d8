#!/usr/bin/env python3
"""Serving benchmark (issue 3): lodpub's SPARQL endpoint beside Oxigraph, Virtuoso and rdflib-endpoint.

For each size a generated table is built with ``lodpub build``; every system is
started on a free loopback port with lodpub's own ``measures.nt``; the result
count of every query in ``bench/queries`` is compared across systems; then, one
system at a time, the shared driver (``../shared/bench/load.py``) measures
single-query latency and the mixed set at each client count, and wrk the
trivial ASK. lodpub runs three times: result cache off (as it is set up by
default: one worker on a copy in memory, the other on the disk store), result
cache off with every worker on the disk store, and cache on for the "repeated"
figures. Its floor is the same queries run in-process on pyoxigraph (on each
store, and the faster of the two per query, which is what lodpub's routing
reaches for). Figures are printed, never asserted; raw driver output is kept
under ``bench/out/serve/``.

    python bench/serve_bench.py [--sizes 1000 100000] [--clients 1 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from lodpub.store import cache_root
from serve_measure import SHARED, Driver, MeasureError, lodpub_memory, result_counts, run_wrk, sanity_counts, wait_idle
from serve_report import (
    LODPUB,
    LODPUB_CACHE,
    LODPUB_DISK,
    SizeFigures,
    SystemFigures,
    print_counts,
    print_size,
)
from serve_systems import (
    GRAPH,
    LODPUB_BIN,
    OUT,
    ROOT,
    Processes,
    Server,
    StartContext,
    Unavailable,
    ensure_venv,
    start_lodpub,
    start_oxigraph,
    start_rdflib_endpoint,
    start_virtuoso,
)

SYSTEMS = {  # key: label; started in this order (lodpub first, on a quiet machine)
    LODPUB: "lodpub (cache off)",
    LODPUB_DISK: "lodpub (disk only, cache off)",
    LODPUB_CACHE: "lodpub repeated (cache on)",
    "oxigraph": "Oxigraph",
    "virtuoso": "Virtuoso",
    "rdflib-endpoint": "rdflib-endpoint",
}
MEASURE_ORDER = [LODPUB, LODPUB_DISK, LODPUB_CACHE, "oxigraph", "virtuoso", "rdflib-endpoint"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000], help="measures per table")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients of the mix")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each mix run (max 60)")
    parser.add_argument("--ask-seconds", type=float, default=10.0, help="duration of the wrk ASK run")
    parser.add_argument("--ask-connections", type=int, default=8)
    parser.add_argument("--ask-runs", type=int, default=3,
                        help="wrk runs per system; the median is reported (single runs vary by ±20 %%)")
    parser.add_argument("--repeat", type=int, default=5, help="latency runs per query after a warm-up")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds for a server to answer")
    parser.add_argument("--rdflib-start-timeout", type=float, default=300.0,
                        help="seconds for rdflib-endpoint to parse the dump and answer")
    parser.add_argument("--query-timeout", type=float, default=60.0, help="client timeout of one query")
    parser.add_argument("--idle-timeout", type=float, default=90.0, help="longest wait for a server to go idle")
    parser.add_argument("--out", type=Path, default=OUT / "serve", help="work and log directory")
    parser.add_argument("--reuse-build", action="store_true", help="keep an existing build of a size")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    return parser.parse_args()


def build_table(size: int, out: Path, reuse: bool) -> tuple[Path, int | None, float]:
    """Generate and build a table of ``size`` measures; its dist directory, triples and build seconds."""
    table, dist = out / f"m{size}.txt", out / f"dist{size}"
    summary = out / f"build{size}.txt"
    t0 = time.perf_counter()
    if not (reuse and (dist / "measures.nt").exists() and summary.exists()):
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen_measures.py"), "--measures", str(size),
                        "--strategies", "8", "--seed", "42", "-o", str(table)], check=True)
        done = subprocess.run([str(LODPUB_BIN), "build", str(table), "--out", str(dist), "-q"],
                              check=True, capture_output=True, text=True)
        summary.write_text(done.stdout)
    found = re.search(r"([\d,]+) triples", summary.read_text())
    return dist, int(found.group(1).replace(",", "")) if found else None, time.perf_counter() - t0


def starters(ctx: StartContext, args: argparse.Namespace) -> dict[str, Callable[[], Server]]:
    no_cache = {"LODPUB_RESULT_CACHE_MB": "0"}
    return {
        LODPUB: lambda: start_lodpub(ctx, LODPUB, SYSTEMS[LODPUB], no_cache),
        LODPUB_DISK: lambda: start_lodpub(ctx, LODPUB_DISK, SYSTEMS[LODPUB_DISK],
                                          {**no_cache, "LODPUB_MEMORY_WORKERS": "0"}),
        LODPUB_CACHE: lambda: start_lodpub(ctx, LODPUB_CACHE, SYSTEMS[LODPUB_CACHE], {}),
        "oxigraph": lambda: start_oxigraph(ctx),
        "virtuoso": lambda: start_virtuoso(ctx),
        "rdflib-endpoint": lambda: start_rdflib_endpoint(ctx, args.rdflib_start_timeout),
    }


def start_all(ctx: StartContext, args: argparse.Namespace, figures: SizeFigures) -> dict[str, Server]:
    """Start every chosen system in turn; one that cannot start is recorded with the reason."""
    servers: dict[str, Server] = {}
    for key, start in starters(ctx, args).items():
        if key not in args.systems:
            continue
        print(f"  starting {SYSTEMS[key]} ...", flush=True)
        before = list(ctx.procs.running)
        try:
            server = start()
        except Unavailable as exc:
            figures.systems[key] = SystemFigures(key, SYSTEMS[key], status=str(exc))
            print(f"  {SYSTEMS[key]}: NOT MEASURED: {exc}", flush=True)
            for proc in [p for p in ctx.procs.running if p not in before]:
                ctx.procs.stop(proc)
            continue
        servers[key] = server
        label = server.label if key not in (LODPUB, LODPUB_DISK, LODPUB_CACHE) else SYSTEMS[key]
        figures.systems[key] = SystemFigures(key, label, ready_s=server.ready_s, load_s=server.load_s,
                                             notes=server.notes)
    return servers


def check_counts(driver: Driver, servers: dict[str, Server], figures: SizeFigures, timeout: float) -> None:
    for key, server in servers.items():
        s = figures.systems[key]
        try:
            s.counts = result_counts(driver, f"{figures.size}-{key}-counts", server.endpoint, timeout)
        except MeasureError as exc:
            s.counts = {"error": str(exc)}
        s.sanity = sanity_counts(server.endpoint, timeout, GRAPH if key == "virtuoso" else None)
        if "triples, all graphs" in s.sanity:
            s.notes.append(f"{s.sanity.pop('triples, all graphs')} triples over all graphs (its system graphs too)")
    print_counts(figures)


def idle(server: Server, s: SystemFigures, bound: float) -> None:
    if wait_idle(server.pid, bound) is None:
        s.notes.append(f"still busy {bound:.0f} s after a run")


def server_side_medians(log: Path, start: int, run: dict) -> dict[str, float]:
    """Median milliseconds per query of a latency run, as lodpub's access log timed them (no client in it).

    The run sends each query once to warm up, then ``runs`` times, one after another, in order."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[start:]
    times = [json.loads(line)["ms"] for line in lines if line.startswith('{"method"') and '"/sparql"' in line]
    out, at = {}, 0
    for query, result in run["queries"].items():
        taken = times[at + 1:at + 1 + result["runs"]]
        at += 1 + result["runs"]
        if result["runs"] and len(taken) == result["runs"]:
            out[query] = statistics.median(taken)
    return out if at == len(times) else {}  # anything else in the log: do not guess


def measure(driver: Driver, server: Server, s: SystemFigures, args: argparse.Namespace, size: int,
            log: Path | None = None) -> None:
    """Latency, ASK and the mix for one system (the cached lodpub: the mix and ASK only)."""
    tag = f"{size}-{server.key}"
    if server.proc.poll() is not None:
        s.notes.append(f"server had exited with status {server.proc.returncode} before its measurements")
        return
    if server.key != LODPUB_CACHE:
        idle(server, s, args.idle_timeout)
        try:
            start = len(log.read_text(encoding="utf-8", errors="replace").splitlines()) if log else 0
            run = driver.run(f"{tag}-latency", server.endpoint, "latency", repeat=args.repeat,
                             timeout=args.query_timeout)
            s.latency = {q: (r["median_ms"] if r["median_ms"] is not None else (r["error"] or "–"))
                         for q, r in run["queries"].items()}
            if log is not None:
                time.sleep(0.2)  # the access log is written once per turn of the server's event loop
                s.server_ms = server_side_medians(log, start, run)
        except MeasureError as exc:
            s.notes.append(f"latency: {exc}")
    try:
        runs = []
        for run_number in range(1, args.ask_runs + 1):
            idle(server, s, args.idle_timeout)
            runs.append(run_wrk(server.ask_url, args.ask_connections, args.ask_seconds,
                                driver.log_dir / f"{tag}-ask-{run_number}.txt"))
        runs.sort(key=lambda run: run["rps"])
        s.ask = {**runs[len(runs) // 2], "runs": [run["rps"] for run in runs]}  # the median run
    except (MeasureError, OSError, subprocess.TimeoutExpired) as exc:
        s.ask = str(exc)
    for clients in args.clients:
        idle(server, s, args.idle_timeout)
        try:
            run = driver.run(f"{tag}-mix-c{clients}", server.endpoint, "mix", clients=clients,
                             seconds=args.seconds, server_pid=server.pid)
            run["codes"] = {q: r["codes"] for q, r in run["queries"].items() if r["codes"]}
            s.mix[clients] = run
        except MeasureError as exc:
            s.mix[clients] = {"error": str(exc)}
        if server.key in (LODPUB, LODPUB_DISK) and clients == max(args.clients):
            s.memory = lodpub_memory(server.pid)
        print(f"    {s.label} c={clients}: {s.mix[clients].get('overall', s.mix[clients])}", flush=True)
    if server.proc.poll() is not None:
        s.notes.append(f"SERVER EXITED with status {server.proc.returncode} during its measurements")


def inprocess(dist: Path, repeat: int) -> dict[str, dict]:
    """Single-query medians in-process on pyoxigraph, on both kinds of store lodpub can serve from."""
    figures = {}
    for store in ("disk", "memory"):
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "inprocess_queries.py"),
                               str(dist), "--store", store, "--repeat", str(repeat)],
                              capture_output=True, text=True, timeout=1800)
        figures[store] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-300:]}
    return with_best(figures)


def with_best(figures: dict[str, dict]) -> dict[str, dict]:
    """Adds "best": per query, the faster of the two stores (lodpub runs each request on the faster)."""
    disk, memory = (figures.get(k, {}).get("median_ms") for k in ("disk", "memory"))
    if disk and memory:
        figures["best"] = {"store": "best", "median_ms": {q: min(ms, memory[q]) for q, ms in disk.items()}}
    return figures


def bracketed(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict]:
    """Per store and query, the mean of the floor measured before and after lodpub's runs."""
    out = {}
    for store, first in before.items():
        second = after.get(store, {})
        if "median_ms" not in first or "median_ms" not in second:
            out[store] = first
            continue
        out[store] = {**first, "median_ms": {q: round((ms + second["median_ms"][q]) / 2, 2)
                                             for q, ms in first["median_ms"].items()},
                      "before_ms": first["median_ms"], "after_ms": second["median_ms"]}
    return with_best(out)


def cold_start(ctx: StartContext) -> float | str:
    """Seconds from ``lodpub serve`` to its first answer when the caches derived from the dump are missing."""
    shutil.rmtree(cache_root(ctx.dist), ignore_errors=True)  # lodpub's caches of each edition
    try:
        server = start_lodpub(ctx, "lodpub-cold", "lodpub cold start", {"LODPUB_RESULT_CACHE_MB": "0"})
    except Unavailable as exc:
        return str(exc)
    ctx.procs.stop(server.proc)
    return server.ready_s


def bench_size(size: int, args: argparse.Namespace, driver: Driver, procs: Processes) -> SizeFigures:
    out = args.out / str(size)
    out.mkdir(parents=True, exist_ok=True)
    print(f"\n### {size:,} measures: building ...", flush=True)
    dist, triples, build_s = build_table(size, out, args.reuse_build)
    figures = SizeFigures(size, triples, build_s)
    procs.prefix = f"{size}-"
    ctx = StartContext(procs, dist, out, args.start_timeout, not args.no_install)
    servers = start_all(ctx, args, figures)
    try:
        check_counts(driver, servers, figures, args.query_timeout)
        print("  in-process pyoxigraph baseline ...", flush=True)
        before = inprocess(dist, args.repeat)
        figures.inprocess = before
        for key in MEASURE_ORDER:
            if key in servers:
                print(f"  measuring {figures.systems[key].label} ...", flush=True)
                log = procs.log(key) if key in (LODPUB, LODPUB_DISK) else None
                measure(driver, servers[key], figures.systems[key], args, size, log)
                procs.stop(servers.pop(key).proc)
            if key == LODPUB_DISK:  # the machine's speed drifts: bracket lodpub's runs with the floor
                print("  in-process pyoxigraph baseline again ...", flush=True)
                figures.inprocess = bracketed(before, inprocess(dist, args.repeat))
    finally:
        for server in servers.values():
            procs.stop(server.proc)
    if LODPUB in args.systems:
        print("  lodpub cold start ...", flush=True)
        figures.cold_start = cold_start(ctx)
    (out / "figures.json").write_text(json.dumps(asdict(figures), indent=1, ensure_ascii=False))
    return figures


def driver_for(install: bool) -> tuple[Driver, str]:
    """The driver's Python: a venv with httpx, psutil and pyoxigraph; else lodpub's own (no server CPU)."""
    try:
        python = ensure_venv("driver", ["httpx", "psutil", "pyoxigraph"], install) / "python"
        return Driver(python, OUT / "serve" / "logs"), ""
    except Unavailable as exc:
        return Driver(ROOT / ".venv" / "bin" / "python", OUT / "serve" / "logs"), f"driver venv: {exc}"


def revision() -> str:
    """The commit lodpub was measured at, and whether src/ had changes not yet committed."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    changed = len(dirty.stdout.splitlines())
    return head.stdout.strip() + (f" + {changed} uncommitted change(s) in src/" if changed else "")


def main() -> None:
    args = parse_args()
    args.out = args.out.resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops every server
    args.out.mkdir(parents=True, exist_ok=True)
    driver, note = driver_for(not args.no_install)
    driver.log_dir = args.out / "logs"
    if note:
        print(f"note: {note}; using lodpub's Python, without server CPU figures")
    procs = Processes(args.out / "logs")
    t0 = time.perf_counter()
    results = []
    try:
        for size in args.sizes:
            results.append(bench_size(size, args, driver, procs))
    finally:
        procs.stop_all()
    print(f"\n\n######## python bench/serve_bench.py {' '.join(sys.argv[1:])}".rstrip()
          + f"  ({time.perf_counter() - t0:.0f} s; lodpub at {revision()})")
    for figures in results:
        print_counts(figures)
        print_size(figures, args.clients)


if __name__ == "__main__":
    main()
