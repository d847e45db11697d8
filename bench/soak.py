#!/usr/bin/env python3
"""A soak: the real server for ``--minutes`` under a hostile but ordinary public load, every process watched.

    python bench/soak.py [--measures 100000] [--minutes 10] [--clients 32] [--heavy 0.03] [--out DIR]

A generated table (``../shared/bench/gen_measures.py``) is built once into ``--out`` (kept for the next run),
then ``lodpub serve`` runs on it with its default settings while ``--clients`` clients, each from its own
loopback address (127.0.0.2, 127.0.0.3, …: a client is an address to the per-client cap), send one request
after another, drawn from this mix:

    35 % SPARQL: the researcher queries (bench/queries)
    20 % pages: a measure's page, the bureaus, the landing page
    15 % searches
    15 % ranged downloads of measures.nt (httpx's default Accept-Encoding asks for gzip), checked byte for byte
    12 % malformed or refused queries (syntax errors, updates, SERVICE)
     3 % (``--heavy``) pathological queries: three-way cartesian COUNTs, a quarter of them made new by a comment

It prints requests by kind and status, p50/p99 per kind and per researcher query, the heavy queries' worst
time against their limit, client-side errors, the RSS of every process of the server's tree and its open
file descriptors every 10 s (growth after the first minute), and what the server logged (events, tracebacks).
Figures are printed, never asserted; ``bench/RESULTS.md`` records them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from serve_measure import descendants

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
LODPUB = Path(sys.executable).with_name("lodpub")
QUERIES = {p.stem: p.read_text(encoding="utf-8") for p in sorted((ROOT / "bench" / "queries").glob("*.rq"))}
WORDS = ("東京", "移住", "支援", "多摩", "子供", "環境", "防災", "産業", "デジタル", "観光", "医療", "教育")
MALFORMED = ("SELECT * WHERE { ?s ?p }", "SELEC ?s WHERE { ?s ?p ?o }", "INSERT DATA { <a:b> <a:c> <a:d> }",
             "SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }", "ASK {", "",
             "PREFIX : <x> SELECT * WHERE { ?s :p ?o ", "DELETE WHERE { ?s ?p ?o }")
HEAVY = tuple(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?a ?b ?c . ?d ?e ?f . ?g ?h ?i {extra}}}" for extra in
              ("", "FILTER(?a != ?d) ", "FILTER(isIRI(?g)) ", "OPTIONAL { ?c ?x ?y } ", "FILTER(?b = ?e) ",
               "FILTER(STRLEN(STR(?c)) > 3) "))
MIX = (("sparql", 35), ("page", 20), ("search", 15), ("range", 15), ("malformed", 12))
SAMPLE_SECONDS = 10.0


def build(measures: int, out: Path) -> Path:
    """The generated table built once into ``out``; its published tree."""
    dist = out / f"dist{measures}"
    if (dist / "current").exists():
        return dist
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"m{measures}.txt"
    subprocess.run([sys.executable, str(SHARED / "bench" / "gen_measures.py"), "--measures", str(measures),
                    "--strategies", "8", "--seed", "42", "-o", str(table)], check=True)
    subprocess.run([str(LODPUB), "build", str(table), "--out", str(dist), "--register", str(out / "register.tsv"),
                    "-q"], check=True)
    return dist


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the server's processes

def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS: the RSS and open descriptors of each process of the server's tree."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[dict] = []
        self.done = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.done.is_set():
            processes = {p: (rss_mib(p), open_fds(p)) for p in descendants(self.pid)}
            self.samples.append({"t": time.monotonic() - self.started, "processes": processes,
                                 "rss": sum(r for r, _ in processes.values()),
                                 "fds": sum(f for _, f in processes.values())})
            self.done.wait(SAMPLE_SECONDS)


# ------------------------------------------------------------------ the clients

class Tally:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.status: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.ms: dict[str, list[float]] = collections.defaultdict(list)
        self.steady: dict[str, list[float]] = collections.defaultdict(list)  # after the first minute
        self.steady_503: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.error_examples: dict[str, str] = {}  # the first message of each client-side error, and when
        self.heavy_over: list[float] = []  # heavy queries answered later than their limit plus 1 s

    def add(self, kind: str, status: int | str, ms: float) -> None:
        self.status[kind][status] += 1
        self.ms[kind].append(ms)
        if time.monotonic() - self.started >= 60:
            self.steady[kind].append(ms)
            self.steady_503[kind] += status == 503


async def client(index: int, base: str, deadline: float, tally: Tally, dump: bytes, measures: int,
                 heavy_share: float, new_heavy: float, limit: float, seed: int) -> None:
    rng = random.Random(seed * 1000 + index)
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + index}")
    kinds, weights = zip(*MIX, strict=True)
    unique = 0
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=60) as http:
        while time.monotonic() < deadline:
            kind = "heavy" if rng.random() < heavy_share else rng.choices(kinds, weights)[0]
            name, check = kind, None
            if kind == "sparql":
                name = rng.choice(list(QUERIES))
                request = http.build_request("GET", "/sparql", params={"query": QUERIES[name]},
                                             headers={"Accept": "text/turtle" if name.startswith("4_") else
                                                      "application/sparql-results+json"})
            elif kind == "page":
                path = rng.choice([f"/doc/measure/{rng.randint(1, measures)}"] * 8 + ["/browse/bureaus", "/"])
                request = http.build_request("GET", path, headers={"Accept": "text/html"})
            elif kind == "search":
                request = http.build_request("GET", "/search", params={"q": rng.choice(WORDS)})
            elif kind == "range":
                start = rng.randrange(0, len(dump) - 70_000)
                end = start + rng.randrange(1, 65_536)
                request = http.build_request("GET", "/data/measures.nt", headers={"Range": f"bytes={start}-{end}"})
                check = dump[start:end + 1]
            elif kind == "malformed":
                request = http.build_request("GET", "/sparql", params={"query": rng.choice(MALFORMED)})
            else:
                text = rng.choice(HEAVY)
                if rng.random() < new_heavy:
                    unique += 1
                    text += f" # client {index}, new {unique}"
                request = http.build_request("GET", "/sparql", params={"query": text})
            started = time.monotonic()
            try:
                response = await http.send(request)
                body = response.content
            except httpx.HTTPError as exc:
                tally.add(kind, type(exc).__name__, (time.monotonic() - started) * 1000)
                tally.errors[f"{kind}: {type(exc).__name__}"] += 1
                tally.error_examples.setdefault(f"{kind}: {type(exc).__name__}",
                                                f"{exc!r} at {time.monotonic() - tally.started:.0f} s ({name})")
                continue
            ms = (time.monotonic() - started) * 1000
            tally.add(kind, response.status_code, ms)
            if kind == "sparql":
                tally.add(f"sparql {name}", response.status_code, ms)
            if kind in ("page", "search") and response.status_code != 200:
                tally.errors[f"{kind}: {response.status_code}"] += 1
            if kind == "range" and (response.status_code != 206 or body != check):
                tally.errors[f"range: {response.status_code}, {'same' if body == check else 'other'} bytes"] += 1
            if kind == "heavy" and ms > (limit + 1) * 1000:
                tally.heavy_over.append(ms)
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))


async def load(base: str, minutes: float, clients: int, dump: bytes, measures: int, heavy: float,
               new_heavy: float, limit: float, seed: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + minutes * 60
    await asyncio.gather(*(client(i, base, deadline, tally, dump, measures, heavy, new_heavy, limit, seed)
                           for i in range(clients)))
    return tally


# ------------------------------------------------------------------ the report

def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def report(tally: Tally, sampler: Sampler, log: str, seconds: float, limit: float, server_code: int | None,
           driver_cpu: float) -> None:
    total = sum(sum(c.values()) for k, c in tally.status.items() if not k.startswith("sparql "))
    print(f"\n{total:,} requests in {seconds:.0f} s ({total / seconds:.0f}/s); the driver used "
          f"{driver_cpu:.0%} of a core")
    print("\n| kind | requests | by status | p50 ms | p99 ms | p99/p50 | after the 1st minute: p50, p99 ms, 503s |"
          "\n|---|---|---|---|---|---|---|")
    for kind in sorted(tally.status, key=lambda k: (k.startswith("sparql "), k)):
        counts, ms, steady = tally.status[kind], tally.ms[kind], tally.steady[kind]
        p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
        by = ", ".join(f"{s}: {n:,}" for s, n in sorted(counts.items(), key=lambda i: str(i[0])))
        print(f"| {kind} | {sum(counts.values()):,} | {by} | {p50:.1f} | {p99:.1f} | {p99 / max(p50, 0.001):.1f} | "
              f"{percentile(steady, 0.5):.1f}, {percentile(steady, 0.99):.1f}, {tally.steady_503[kind]} |")
    fives = {f"{k} {s}": n for k, c in tally.status.items() if not k.startswith("sparql ")
             for s, n in c.items() if isinstance(s, int) and s >= 500 and s != 503}
    print(f"\n5xx other than 503: {fives or 0}")
    print(f"client-side errors: {dict(tally.errors) or 0}")
    for error, example in tally.error_examples.items():
        print(f"  first {error}: {example}")
    heavy = tally.ms.get("heavy", [])
    print(f"heavy queries: {len(heavy)}, worst {max(heavy, default=0) / 1000:.1f} s against a limit of {limit:g} s; "
          f"{len(tally.heavy_over)} later than the limit plus 1 s")
    print(f"server still running at the end: {server_code is None} (exit status {server_code})")
    print("\nprocess tree every 10 s (MiB RSS total, open descriptors total, processes):")
    for s in sampler.samples:
        print(f"  {s['t']:6.0f} s  {s['rss']:8.0f} MiB  {s['fds']:5d} fds  {len(s['processes'])} processes")
    after = [s for s in sampler.samples if s["t"] >= 60]
    if after:
        # Growth is what stays: the last sample against the second minute's median (one sample may catch a
        # worker holding a pathological query's working memory, up to worker_memory_mb, until it is ended).
        base = statistics.median(s["rss"] for s in after if s["t"] < 120)
        top = max(after, key=lambda s: s["rss"])
        last = after[-1]["rss"]
        print(f"RSS after the first minute: {base:.0f} MiB (the second minute's median), last {last:.0f} MiB "
              f"(growth {last / base - 1:+.1%}); largest sample {top['rss']:.0f} MiB at {top['t']:.0f} s "
              f"({top['rss'] / base - 1:+.1%}); whole run peak {max(s['rss'] for s in sampler.samples):.0f} MiB")
        print(f"descriptors after the first minute: {after[0]['fds']} → last {after[-1]['fds']}, "
              f"max {max(s['fds'] for s in after)}")
    events = collections.Counter(json.loads(line)["event"] for line in log.splitlines()
                                 if line.startswith('{"event"'))
    print(f"\nserver log: events {dict(events)}; tracebacks {log.count('Traceback')}; "
          f"'never retrieved' {log.count('never retrieved')}; lines not JSON "
          f"{sum(1 for line in log.splitlines() if line and not line.startswith('{'))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measures", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--heavy", type=float, default=0.03, help="share of pathological queries")
    parser.add_argument("--new-heavy", type=float, default=0.25,
                        help="share of the pathological queries made new (never seen) by a comment")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/lodpub-soak"))
    args = parser.parse_args()
    dist = build(args.measures, args.out)
    dump = (dist / "current" / "measures.nt").read_bytes()
    port = free_port()
    log_path = args.out / "server.log"
    limit = 10.0  # the default query_timeout: the server runs with its defaults
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_")}
    with log_path.open("w") as log:
        server = subprocess.Popen([str(LODPUB), "serve", "--dist", str(dist), "--port", str(port)], stdout=log,
                                  stderr=subprocess.STDOUT, env=env, cwd=args.out)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    print(f"serving {dist} ({args.measures:,} measures) at {base}; {args.clients} clients for {args.minutes:g} min")
    sampler = Sampler(server.pid)
    sampler.start()
    started, cpu = time.monotonic(), time.process_time()
    tally = asyncio.run(load(base, args.minutes, args.clients, dump, args.measures, args.heavy, args.new_heavy,
                             limit, args.seed))
    seconds, driver_cpu = time.monotonic() - started, (time.process_time() - cpu) / (time.monotonic() - started)
    sampler.done.set()
    sampler.join()
    health = httpx.get(base + "/health", timeout=10).json()
    metrics = httpx.get(base + "/metrics", timeout=10).text
    code = server.poll()
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    log_text = log_path.read_text(errors="replace")
    report(tally, sampler, log_text, seconds, limit, code, driver_cpu)
    print(f"\n/health at the end: {json.dumps({k: health[k] for k in health if k != 'cache'})}")
    print("/metrics: " + "; ".join(line for line in metrics.splitlines()
                                   if re.match(r"lodpub_events_total|lodpub_answer_cache_total", line)))


if __name__ == "__main__":
    main()
