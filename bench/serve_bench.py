#!/usr/bin/env python3
"""Serving benchmark (issues 3 and 12): lodpub's SPARQL endpoint beside Oxigraph, Virtuoso and rdflib-endpoint.

For each size a generated table is built with ``lodpub build``; every system is
started on a free loopback port with lodpub's own ``measures.nt``. Each query set
(``bench/queries``: the researcher queries written with the build's shortcuts;
``bench/queries2``: questions written with the vocabulary as documented) is sent
once to every system, right after start (lodpub once ``/health`` says every
worker is ready), and every system's answers are compared with lodpub's: the
same variables, the same solutions as multisets of terms (datatypes and
languages included), in the same order where the query has ORDER BY; graphs as
sets of triples (DESCRIBE reported, not judged). Then, one system at a time, the
shared driver (``../shared/bench/load.py``) measures single-query latency and
the mixed set at each client count for each query set, and wrk the trivial ASK.
lodpub also runs in front of Oxigraph and Virtuoso (``lodpub serve --store``, the
same peer instance that is measured directly, right after it; ``serve_fronts.py``),
with the ratios to the peer queried directly and the ASK with two fronts against one.
lodpub runs three times: result cache off (as it is set up by default: one
worker on a copy in memory, the other on the disk store), result cache off with
every worker on the disk store, and cache on for the "repeated" figures. Its
floor is the same queries run in-process on pyoxigraph (on each store, and the
faster of the two per query, which is what lodpub's routing reaches for).
Figures are printed, never asserted; raw driver output is kept under
``bench/out/serve/``.

    python bench/serve_bench.py [--sizes 1000 100000] [--clients 1 8] [--seconds 10] [--sets queries queries2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
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

from serve_fronts import FRONTS, LABELS, print_fronts, start_front, two_fronts_ask
from serve_measure import (
    SHARED,
    Answer,
    Driver,
    MeasureError,
    Query,
    compare_answers,
    fetch_answer,
    load_set,
    lodpub_memory,
    run_wrk,
    sanity_counts,
    wait_idle,
)
from serve_report import (
    LODPUB,
    LODPUB_CACHE,
    LODPUB_DISK,
    SizeFigures,
    SystemFigures,
    print_answers,
    print_counts,
    print_size,
)
from serve_systems import (
    LODPUB_BIN,
    OUT,
    ROOT,
    Processes,
    Server,
    StartContext,
    Unavailable,
    edition_graph,
    ensure_venv,
    http_get,
    start_lodpub,
    start_oxigraph,
    start_rdflib_endpoint,
    start_virtuoso,
)

BENCH = ROOT / "bench"
LODPUB_KEYS = (LODPUB, LODPUB_DISK, LODPUB_CACHE)
# The caches of an edition live outside its tree; where the module that knows is depends on src/'s layout.
CACHE_ROOT_MODULES = ("lodpub.store", "lodpub.serving.store", "lodpub.pipeline.store", "lodpub.shared.store")


def cache_root(dist: Path) -> Path | None:
    """lodpub's own answer to where ``dist``'s caches are, or None if no module of lodpub says."""
    for name in CACHE_ROOT_MODULES:
        try:
            return importlib.import_module(name).cache_root(dist)
        except (ImportError, AttributeError):
            continue
    return None

SYSTEMS = {  # key: label; started in this order (lodpub first, on a quiet machine)
    LODPUB: "lodpub (cache off)",
    LODPUB_DISK: "lodpub (disk only, cache off)",
    LODPUB_CACHE: "lodpub repeated (cache on)",
    "oxigraph": "Oxigraph",
    "virtuoso": "Virtuoso",
    "rdflib-endpoint": "rdflib-endpoint",
    **LABELS,  # started after the peers they read
}
# Each front right after its peer, which keeps running until the front is measured.
MEASURE_ORDER = [LODPUB, LODPUB_DISK, LODPUB_CACHE, "oxigraph", "lodpub-oxigraph", "virtuoso", "lodpub-virtuoso",
                 "rdflib-endpoint"]


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
    parser.add_argument("--sets", nargs="+", default=["queries", "queries2"],
                        help="query sets: folders of .rq files under bench/ (default: both)")
    parser.add_argument("--at", metavar="COMMIT",
                        help="measure lodpub as committed at COMMIT (a snapshot of its src/ under --out, put first"
                             " on PYTHONPATH), not the work tree, e.g. while others edit src/")
    parser.add_argument("--ready-timeout", type=float, default=180.0,
                        help="longest wait for lodpub's /health to report every worker ready")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds for a server to answer")
    parser.add_argument("--rdflib-start-timeout", type=float, default=300.0,
                        help="seconds for rdflib-endpoint to parse the dump and answer")
    parser.add_argument("--query-timeout", type=float, default=60.0, help="client timeout of one query")
    parser.add_argument("--idle-timeout", type=float, default=90.0, help="longest wait for a server to go idle")
    parser.add_argument("--out", type=Path, default=OUT / "serve", help="work and log directory")
    parser.add_argument("--reuse-build", action="store_true", help="keep an existing build of a size")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the in-process pyoxigraph floor (minutes of loading at 1,000,000 measures)")
    parser.add_argument("--no-cold-start", action="store_true",
                        help="skip lodpub's cold start (it removes and rebuilds the edition's caches)")
    args = parser.parse_args()
    for name in args.sets:
        if not list((BENCH / name).glob("*.rq")):
            parser.error(f"--sets: bench/{name} holds no .rq file")
    return args


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


def starters(ctx: StartContext, args: argparse.Namespace,
             servers: dict[str, Server]) -> dict[str, Callable[[], Server]]:
    no_cache = {"LODPUB_RESULT_CACHE_MB": "0"}
    return {
        LODPUB: lambda: start_lodpub(ctx, LODPUB, SYSTEMS[LODPUB], no_cache),
        LODPUB_DISK: lambda: start_lodpub(ctx, LODPUB_DISK, SYSTEMS[LODPUB_DISK],
                                          {**no_cache, "LODPUB_MEMORY_WORKERS": "0"}),
        LODPUB_CACHE: lambda: start_lodpub(ctx, LODPUB_CACHE, SYSTEMS[LODPUB_CACHE], {}),
        "oxigraph": lambda: start_oxigraph(ctx),
        "virtuoso": lambda: start_virtuoso(ctx),
        "rdflib-endpoint": lambda: start_rdflib_endpoint(ctx, args.rdflib_start_timeout),
        **{key: (lambda key=key: start_front(ctx, key, servers)) for key in FRONTS},
    }


def start_all(ctx: StartContext, args: argparse.Namespace, figures: SizeFigures) -> dict[str, Server]:
    """Start every chosen system in turn; one that cannot start is recorded with the reason."""
    servers: dict[str, Server] = {}
    for key, start in starters(ctx, args, servers).items():
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


def workers_ready(server: Server, bound: float) -> str:
    """When lodpub's /health says every worker is ready (the copy in memory loads in the background)."""
    health = server.endpoint.rsplit("/", 1)[0] + "/health"
    t0 = time.perf_counter()
    last = "no answer"
    while time.perf_counter() - t0 < bound:
        try:
            status, body = http_get(health, accept="application/json", timeout=5)
            state = json.loads(body) if status == 200 else {}
            ready = state.get("ready") or {}
            last = f"ready {ready} of {state.get('workers')} workers"
            if state.get("workers") and sum(ready.values()) >= state["workers"]:
                waited = time.perf_counter() - t0
                return (f"every worker ready ({', '.join(f'{n} {k}' for k, n in ready.items())}) when asked,"
                        f" {time.perf_counter() - server.started:.0f} s after its start"
                        + (f" (waited {waited:.1f} s)" if waited >= 0.1 else ""))
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return f"not every worker ready after {bound:.0f} s more ({last})"


def check_answers(servers: dict[str, Server], figures: SizeFigures, sets: dict[str, list[Query]],
                  args: argparse.Namespace, graph: str) -> None:
    """Every query of every set once on every system, right after start; the answers compared with lodpub's."""
    for key, server in servers.items():
        if key in LODPUB_KEYS:  # measure the first runs on a server that says it is ready, as a client would
            figures.systems[key].workers_ready = workers_ready(server, args.ready_timeout)
    answers: dict[str, dict[str, dict[str, Answer]]] = {}
    for key, server in servers.items():
        s = figures.systems[key]
        for name, queries in sets.items():
            got = answers.setdefault(name, {})
            for query in queries:
                answer = fetch_answer(server.endpoint, query, args.query_timeout)
                got.setdefault(query.name, {})[key] = answer
                s.of(name).counts[query.name] = answer.size
                s.of(name).first_ms[query.name] = round(answer.ms, 2)
        s.sanity = sanity_counts(server.endpoint, args.query_timeout, graph if key == "virtuoso" else None)
        if "triples, all graphs" in s.sanity:
            s.notes.append(f"{s.sanity.pop('triples, all graphs')} triples over all graphs (its system graphs too)")
    reference = next((k for k in (LODPUB, LODPUB_DISK, LODPUB_CACHE, *servers) if k in servers), "")
    figures.reference = reference
    for name, queries in sets.items():
        table = figures.answers.setdefault(name, {})
        for query in queries:
            got = answers[name][query.name]
            table[query.name] = {key: list(compare_answers(query, got[reference], answer))
                                 for key, answer in got.items() if key != reference}
        print_counts(figures, name, sanity=name == next(iter(sets)))
        print_answers(figures, name)


def idle(server: Server, s: SystemFigures, bound: float) -> None:
    """Wait for the server (and, for lodpub in front of a store, the store) to go idle before a run."""
    for pid in filter(None, (server.pid, server.store_pid)):
        if wait_idle(pid, bound) is None:
            s.notes.append(f"still busy {bound:.0f} s after a run" + (" (its store)" if pid != server.pid else ""))


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
    """Latency per set, ASK, and the mix per set for one system (the cached lodpub: the mix and ASK only)."""
    tag = f"{size}-{server.key}"
    if server.proc.poll() is not None:
        s.notes.append(f"server had exited with status {server.proc.returncode} before its measurements")
        return
    for name in args.sets if server.key != LODPUB_CACHE else []:
        idle(server, s, args.idle_timeout)
        figures = s.of(name)
        try:
            start = len(log.read_text(encoding="utf-8", errors="replace").splitlines()) if log else 0
            run = driver.run(f"{tag}-{name}-latency", server.endpoint, "latency", repeat=args.repeat,
                             timeout=args.query_timeout, queries=BENCH / name)
            figures.latency = {q: (r["median_ms"] if r["median_ms"] is not None else (r["error"] or "–"))
                               for q, r in run["queries"].items()}
            if log is not None:
                time.sleep(0.2)  # the access log is written once per turn of the server's event loop
                figures.server_ms = server_side_medians(log, start, run)
        except MeasureError as exc:
            s.notes.append(f"latency, set {name}: {exc}")
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
    for name in args.sets:
        mix = s.of(name).mix
        for clients in args.clients:
            idle(server, s, args.idle_timeout)
            try:
                run = driver.run(f"{tag}-{name}-mix-c{clients}", server.endpoint, "mix", clients=clients,
                                 seconds=args.seconds, server_pid=server.pid, queries=BENCH / name)
                run["codes"] = {q: r["codes"] for q, r in run["queries"].items() if r["codes"]}
                mix[clients] = run
            except MeasureError as exc:
                mix[clients] = {"error": str(exc)}
            print(f"    {s.label} {name} c={clients}: {mix[clients].get('overall', mix[clients])}", flush=True)
    if server.key in (LODPUB, LODPUB_DISK, *FRONTS):
        s.memory = lodpub_memory(server.pid)
    if server.proc.poll() is not None:
        s.notes.append(f"SERVER EXITED with status {server.proc.returncode} during its measurements")


# bench/inprocess_queries.py reads bench/queries; this runs it on another set by setting its QUERIES first.
INPROCESS = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("inprocess_queries", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.QUERIES = Path(sys.argv[2])
sys.argv = [sys.argv[1], *sys.argv[3:]]
module.main()
"""


def inprocess(dist: Path, repeat: int, queries: Path) -> dict[str, dict]:
    """Single-query medians of a set in-process on pyoxigraph, on both kinds of store lodpub can serve from."""
    figures = {}
    for store in ("disk", "memory"):
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", INPROCESS,
                               str(BENCH / "inprocess_queries.py"), str(queries), str(dist), "--store", store,
                               "--repeat", str(repeat)], capture_output=True, text=True, timeout=1800)
        figures[store] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-300:]}
    return with_best(figures)


def inprocess_sets(dist: Path, repeat: int, sets: list[str]) -> dict[str, dict[str, dict]]:
    return {name: inprocess(dist, repeat, BENCH / name) for name in sets}


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
    caches = cache_root(ctx.dist)
    if caches is None:
        return f"not measured: none of {', '.join(CACHE_ROOT_MODULES)} has cache_root (src/ moved?)"
    if not caches.resolve().is_relative_to(ctx.work.resolve()):
        return f"not measured: the caches {caches} are not the benchmark's own"
    shutil.rmtree(caches, ignore_errors=True)  # lodpub's caches of each edition
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
    sets = {name: load_set(BENCH / name) for name in args.sets}
    try:
        check_answers(servers, figures, sets, args, edition_graph(dist))
        floor = not args.no_floor
        if floor:
            print("  in-process pyoxigraph baseline ...", flush=True)
            before = inprocess_sets(dist, args.repeat, args.sets)
            figures.inprocess = before
        for key in MEASURE_ORDER:
            if key in servers:
                print(f"  measuring {figures.systems[key].label} ...", flush=True)
                log = procs.log(key) if key in (LODPUB, LODPUB_DISK, *FRONTS) else None
                measure(driver, servers[key], figures.systems[key], args, size, log)
                if key in FRONTS:
                    print(f"  ASK with two fronts before {FRONTS[key]} ...", flush=True)
                    figures.fronts[key] = two_fronts_ask(ctx, key, servers, args.ask_connections, args.ask_seconds,
                                                         args.ask_runs, driver.log_dir, f"{size}-{key}")
                    procs.stop(servers.pop(key).proc)
                    if FRONTS[key] in servers:
                        procs.stop(servers.pop(FRONTS[key]).proc)
                elif not any(peer == key and front in servers for front, peer in FRONTS.items()):
                    procs.stop(servers.pop(key).proc)  # a peer waits for its front
            if key == LODPUB_DISK and floor:  # the machine's speed drifts: bracket lodpub's runs with the floor
                print("  in-process pyoxigraph baseline again ...", flush=True)
                after = inprocess_sets(dist, args.repeat, args.sets)
                figures.inprocess = {name: bracketed(before[name], after[name]) for name in args.sets}
    finally:
        for server in servers.values():
            procs.stop(server.proc)
    if LODPUB in args.systems and not args.no_cold_start:
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


def revision(at: str | None = None) -> str:
    """The commit lodpub was measured at, and whether src/ had changes not yet committed."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", at or "HEAD"], capture_output=True,
                          text=True)
    if at:
        return f"{head.stdout.strip()} (a snapshot of that commit's src/, not the work tree)"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True)
    changed = len(dirty.stdout.splitlines())
    return head.stdout.strip() + (f" + {changed} uncommitted change(s) in src/" if changed else "")


def use_snapshot(at: str, out: Path) -> Path:
    """lodpub as committed at ``at``: its src/ and the files it ships, extracted under ``out``, first on the
    path of this process and of every lodpub process it starts (the venv's lodpub is an editable install
    of the work tree, which later entries of sys.path supply)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", at], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = out / f"lodpub-{commit}"
    if not (dest / "src" / "lodpub" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src", "ontology", "shapes", "data"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    src = str(dest / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.path.insert(0, src)
    return dest


def main() -> None:
    args = parse_args()
    args.out = args.out.resolve()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops every server
    args.out.mkdir(parents=True, exist_ok=True)
    if args.at:  # resolved once: HEAD may move while the benchmark runs
        args.at = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.at], capture_output=True,
                                 text=True, check=True).stdout.strip()
        print(f"lodpub at {revision(args.at)}, from {use_snapshot(args.at, args.out)}", flush=True)
    driver, note = driver_for(not args.no_install)
    driver.log_dir = args.out / "logs"
    if note:
        print(f"note: {note}; using lodpub's Python, without server CPU figures")
    procs = Processes(args.out / "logs")
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    results = []
    try:
        for size in args.sizes:
            results.append(bench_size(size, args, driver, procs))
    finally:
        procs.stop_all()
    print(f"\n\n######## python bench/serve_bench.py {' '.join(sys.argv[1:])}".rstrip()
          + f"  ({time.perf_counter() - t0:.0f} s; lodpub at {revision(args.at)})")
    print("load average (1, 5, 15 min) of the machine before the run: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}"
          .format(*load_before, *os.getloadavg()))
    for figures in results:
        for name in figures.answers:
            print_counts(figures, name, sanity=name == next(iter(figures.answers)))
        print_size(figures, args.clients)
        print_fronts(figures, args.clients)


if __name__ == "__main__":
    main()
