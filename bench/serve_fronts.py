"""lodpub in front of a peer (issue 13 part 4): ``lodpub serve --store`` reading the same running Oxigraph or
Virtuoso instance that ``serve_bench.py`` measures directly, so that what lodpub adds is read from one run.

The peer holds the edition in its named graph (``serve_systems.edition_graph``), which the front names in
``default-graph-uri`` on every query; queried directly the peer reads its default graph, the same triples
(Oxigraph: loaded twice; Virtuoso: the union of its graphs). The front runs with its result cache off.
Besides, the trivial ASK through wrk against one front and against two front processes on different
ports before the same peer: two wrk processes either way (one thread, half the connections each), summed.
"""

from __future__ import annotations

import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serve_measure import MeasureError, run_wrk, wait_idle
from serve_report import SizeFigures, SystemFigures
from serve_systems import Server, StartContext, Unavailable, start_lodpub

FRONTS = {"lodpub-oxigraph": "oxigraph", "lodpub-virtuoso": "virtuoso"}  # front → the peer it reads
LABELS = {"lodpub-oxigraph": "lodpub → Oxigraph (cache off)", "lodpub-virtuoso": "lodpub → Virtuoso (cache off)"}
LATENCY_TARGET = 1.3  # each query through lodpub within 1.3× of the store queried directly
MIX_TARGET = 0.9  # the mixes within 10 % of the store's own QPS


def front_env(peer: Server) -> dict[str, str]:
    """The settings of a front before ``peer``: its endpoint as the store, the result cache off."""
    env = {"LODPUB_STORE": peer.endpoint, "LODPUB_RESULT_CACHE_MB": "0"}
    if peer.key == "virtuoso":  # Virtuoso takes a time limit per query, in ms (README, Remote stores)
        env["LODPUB_STORE_TIMEOUT_PARAMETER"] = "timeout"
    return env


def start_front(ctx: StartContext, key: str, servers: dict[str, Server], name: str = "") -> Server:
    """``lodpub serve --store`` before the running peer of ``key``; Unavailable if that peer is not up."""
    peer = servers.get(FRONTS[key])
    if peer is None or peer.proc.poll() is not None:
        raise Unavailable(f"its store ({FRONTS[key]}) is not running")
    front = start_lodpub(ctx, name or key, LABELS[key], front_env(peer))
    front.store_pid = peer.pid
    return front


def _wrk_pair(urls: list[str], connections: int, seconds: float, log: Path) -> dict:
    """Two wrk processes at once (one thread and half the connections each), against ``urls``; rps summed."""
    half = max(1, connections // 2)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda i: run_wrk(urls[i], half, seconds, log.with_name(f"{log.stem}-{i}.txt"),
                                               threads=1), range(2)))
    return {"rps": sum(r["rps"] for r in runs), "each": [r["rps"] for r in runs],
            "non_2xx": sum(r["non_2xx"] for r in runs)}


def two_fronts_ask(ctx: StartContext, key: str, servers: dict[str, Server], connections: int, seconds: float,
                   runs: int, log_dir: Path, tag: str) -> dict:
    """The trivial ASK against one front and against two (a second started here, stopped after), alternating
    runs; the median of each. ``servers[key]`` is the first front; wrk's output goes to LOG_DIR/TAG-…"""
    first = servers[key]
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        second = start_front(ctx, key, servers, f"{key}-second")
    except Unavailable as exc:
        return {"error": f"second front: {exc}"}
    one, two = [], []
    try:
        for run in range(1, runs + 1):
            for target, urls in ((one, [first.ask_url] * 2), (two, [first.ask_url, second.ask_url])):
                for pid in (first.pid, second.pid, first.store_pid):
                    if pid:
                        wait_idle(pid, 30)
                label = "one" if target is one else "two"
                target.append(_wrk_pair(urls, connections, seconds, log_dir / f"{tag}-ask-{label}-{run}.txt"))
    except (MeasureError, OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    finally:
        ctx.procs.stop(second.proc)
    return {"connections": connections, "one": statistics.median(r["rps"] for r in one),
            "two": statistics.median(r["rps"] for r in two), "one_runs": one, "two_runs": two}


def _ms(value: object) -> float | None:
    return float(value) if isinstance(value, float | int) else None


def _qps(s: SystemFigures, qs: str, clients: int) -> float | None:
    run = s.of(qs).mix.get(clients, {})
    return run["overall"]["qps"] if "overall" in run else None


def print_fronts(figures: SizeFigures, clients: list[int]) -> None:
    """Per query and per mix, lodpub in front of each peer against the peer queried directly, with the targets."""
    for key, peer_key in FRONTS.items():
        front, peer = figures.systems.get(key), figures.systems.get(peer_key)
        if not front or not peer or front.status != "ok" or peer.status != "ok":
            continue
        print(f"\n---- {front.label} against {peer.label} queried directly, {figures.size:,} measures"
              f" (targets: each query ≤ {LATENCY_TARGET}×, each mix ≥ {MIX_TARGET:.0%} of the store's QPS) ----")
        for qs in front.sets:
            print(f"\nset {qs}: single-query medians, ms{'':<14}{'direct':>10} {'front':>10} {'ratio':>7}"
                  f" {'added ms':>9}  {'lodpub log':>10}")
            met = 0
            latency = front.of(qs).latency
            for query, mine in latency.items():
                direct, through = _ms(peer.of(qs).latency.get(query)), _ms(mine)
                logged = front.of(qs).server_ms.get(query)
                if direct is None or through is None:
                    print(f"  {query:<40} {str(peer.of(qs).latency.get(query))[:10]:>10} {str(mine)[:10]:>10}")
                    continue
                ratio = through / direct if direct else float("inf")
                met += ratio <= LATENCY_TARGET
                flag = "" if ratio <= LATENCY_TARGET else "  <-- over"
                print(f"  {query:<40} {direct:>10,.1f} {through:>10,.1f} {ratio:>6.2f}× {through - direct:>+9.1f}"
                      f"  {'–' if logged is None else f'{logged:,.1f}':>10}{flag}")
            print(f"  within {LATENCY_TARGET}×: {met} of {len(latency)} queries")
            for c in clients:
                direct, through = _qps(peer, qs, c), _qps(front, qs, c)
                if direct and through is not None:
                    ratio = through / direct
                    verdict = "met" if ratio >= MIX_TARGET else "NOT met"
                    print(f"  mix c={c}: {through:,.2f} / {direct:,.2f} QPS = {ratio:.2f} [≥ {MIX_TARGET}] {verdict}")
        ask = figures.fronts.get(key)
        if isinstance(ask, dict) and "one" in ask:
            direct = peer.ask.get("rps") if isinstance(peer.ask, dict) else None
            print(f"  ASK {{}} via wrk, {ask['connections']} connections in all: one front {ask['one']:,.0f} req/s,"
                  f" two fronts {ask['two']:,.0f} req/s ({ask['two'] / ask['one']:.2f}×); {peer.label} directly"
                  f" {direct or 0:,.0f} req/s (one wrk, 2 threads)")
        elif ask:
            print(f"  ASK {{}} with two fronts: {ask}")
