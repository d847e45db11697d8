"""Printing what ``serve_bench.py`` measured: tables per size and the ratios issue 3 names.

Figures are printed, never judged by an assertion; each ratio line shows its
target beside it so a reader can see at once which are met.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

LODPUB = "lodpub"
LODPUB_DISK = "lodpub-disk"
LODPUB_CACHE = "lodpub-cache"
PEERS = ("oxigraph", "virtuoso", "rdflib-endpoint")
DRIVER_BOUND = 80  # percent of one core: past it the driver, not the server, limits the QPS
SHORT = {LODPUB: "lodpub", LODPUB_DISK: "lodpub disk", LODPUB_CACHE: "lodpub cache", "oxigraph": "Oxigraph",
         "virtuoso": "Virtuoso", "rdflib-endpoint": "rdflib-ep"}


@dataclass
class SystemFigures:
    """What was measured for one system at one size; ``status`` says why a system is missing."""

    key: str
    label: str
    status: str = "ok"
    ready_s: float | None = None
    load_s: float | None = None
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int | str] = field(default_factory=dict)
    sanity: dict[str, int | str] = field(default_factory=dict)
    latency: dict[str, float | str | None] = field(default_factory=dict)
    server_ms: dict[str, float] = field(default_factory=dict)  # lodpub: the same runs, by its access log
    mix: dict[int, dict] = field(default_factory=dict)
    ask: dict | str | None = None
    memory: dict | None = None


@dataclass
class SizeFigures:
    size: int
    triples: int | None
    build_s: float
    systems: dict[str, SystemFigures] = field(default_factory=dict)
    inprocess: dict[str, dict] = field(default_factory=dict)
    cold_start: float | str | None = None  # lodpub serve with dist/store (and its other caches) missing

    def up(self, keys: Iterable[str]) -> list[SystemFigures]:
        return [self.systems[k] for k in keys if k in self.systems and self.systems[k].status == "ok"]


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "–"
    if not b:
        return "∞ (the peer answered no query in the run)" if a else "–"
    return f"{a / b:.2f}×"


def print_setup(figures: SizeFigures) -> None:
    print(f"\n== {figures.size:,} measures ({figures.triples or '?':,} triples; built in {figures.build_s:.1f} s) ==")
    print(f"{'system':<34} {'load s':>7} {'start→1st answer s':>19}  notes")
    for s in figures.systems.values():
        if s.status != "ok":
            print(f"{s.label:<34} {'':>7} {'':>19}  NOT MEASURED: {s.status}")
            continue
        print(f"{s.label:<34} {_num(s.load_s):>7} {_num(s.ready_s, 2):>19}  {'; '.join(s.notes)}")


def print_counts(figures: SizeFigures) -> list[str]:
    """The result count of every query on every system; returns the mismatches, printed loudly too."""
    systems = [s for s in figures.systems.values() if s.status == "ok" and s.counts]
    if not systems:
        return []
    names = list(systems[0].counts) + list(systems[0].sanity)
    print("\nresult counts (each query once, before measuring)")
    print(f"{'query':<22}" + "".join(f"{SHORT.get(s.key, s.key):>13}" for s in systems))
    mismatches = []
    for name in names:
        values = [s.counts.get(name, s.sanity.get(name, "–")) for s in systems]
        flag = "" if len({str(v) for v in values}) == 1 else "   <-- MISMATCH"
        print(f"{name:<22}" + "".join(f"{str(v)[:12]:>13}" for v in values) + flag)
        if flag:
            mismatches.append(f"{name}: " + ", ".join(f"{SHORT.get(s.key, s.key)} {v}" for s, v in zip(systems, values,
                                                                                                    strict=True)))
    for line in mismatches:
        print(f"!!! COUNT MISMATCH at {figures.size:,} measures — {line}")
    return mismatches


def print_mix(figures: SizeFigures) -> None:
    print("\nmixed query set (load.py --mode mix); lodpub rows with the result cache off unless 'repeated'")
    print(f"{'system':<34} {'c':>2} {'QPS':>9} {'p50 ms':>9} {'p99 ms':>9} {'ok':>7} {'err':>4} {'canc':>4}"
          f" {'driver CPU':>10} {'server CPU':>10} {'other CPU':>9}")
    for s in figures.systems.values():
        if s.status != "ok":
            continue
        for clients, run in sorted(s.mix.items()):
            if "error" in run:
                print(f"{s.label:<34} {clients:>2} failed: {run['error']}")
                continue
            o = run["overall"]
            bound = "*" if (run.get("driver_cpu_pct") or 0) >= DRIVER_BOUND else " "
            print(f"{s.label:<34} {clients:>2} {o['qps']:>9,.2f} {_num(o['p50_ms']):>9} {_num(o['p99_ms']):>9}"
                  f" {o['ok']:>7} {o['errors']:>4} {o['cancelled']:>4} {_num(run.get('driver_cpu_pct'), 0):>8}%{bound}"
                  f" {_num(run.get('server_cpu_pct'), 0):>9}% {_num(run.get('other_cpu_pct'), 0):>8}%")
            if run.get("codes"):
                print(f"{'':<37}errors by query: {run['codes']}")
    print(f"  * the driver used ≥ {DRIVER_BOUND}% of a core: that QPS is a floor, limited by the driver (2 cores)."
          " 'canc': requests still running at the deadline; 'other CPU': the rest of the machine (noise).")


def _overall(s: SystemFigures | None, clients: int) -> dict | None:
    if s is None or s.status != "ok" or "overall" not in s.mix.get(clients, {}):
        return None
    return s.mix[clients]["overall"]


def _fastest_peer(figures: SizeFigures, clients: int) -> tuple[str, dict] | None:
    runs = [(s.label, o) for s in figures.up(PEERS) if (o := _overall(s, clients))]
    return max(runs, key=lambda r: r[1]["qps"]) if runs else None


def print_ratios(figures: SizeFigures, clients: list[int]) -> None:
    print("\nratios (targets of issue 3 in brackets)")
    for c in clients:
        fastest = _fastest_peer(figures, c)
        rdflib = _overall(figures.systems.get("rdflib-endpoint"), c)
        for key in (LODPUB, LODPUB_DISK):
            mine = _overall(figures.systems.get(key), c)
            if not mine:
                continue
            name = SHORT[key]
            if fastest:
                print(f"  c={c} {name} QPS / fastest peer ({fastest[0]}): {mine['qps']:.2f} / {fastest[1]['qps']:.2f}"
                      f" = {_ratio(mine['qps'], fastest[1]['qps'])} [≥ 1]; p99 {_num(mine['p99_ms'])} ms vs"
                      f" {_num(fastest[1]['p99_ms'])} ms [no worse]")
            if rdflib:
                print(f"  c={c} {name} QPS / rdflib-endpoint: {mine['qps']:.2f} / {rdflib['qps']:.2f}"
                      f" = {_ratio(mine['qps'], rdflib['qps'])} [≥ 20]")
        cached = _overall(figures.systems.get(LODPUB_CACHE), c)
        if cached and fastest:
            print(f"  c={c} repeated lodpub (cache on) / fastest peer ({fastest[0]}): {cached['qps']:.2f} /"
                  f" {fastest[1]['qps']:.2f} = {_ratio(cached['qps'], fastest[1]['qps'])} [≥ 10]")
    oxigraph = figures.systems.get("oxigraph")
    ox_rps = oxigraph.ask.get("rps") if oxigraph and isinstance(oxigraph.ask, dict) else None
    for key in (LODPUB, LODPUB_CACHE, LODPUB_DISK):
        s = figures.systems.get(key)
        if s and isinstance(s.ask, dict) and ox_rps:
            print(f"  ASK {{}} {SHORT[key]} rps / Oxigraph rps: {s.ask['rps']:,.0f} / {ox_rps:,.0f}"
                  f" = {_ratio(s.ask['rps'], ox_rps)} [≥ 0.5]")
    _print_latency_verdict(figures)
    _print_overhead(figures)


def _fastest_latency(figures: SizeFigures, query: str) -> tuple[str, float] | None:
    values = [(SHORT[s.key], v) for s in figures.up(PEERS) if isinstance(v := s.latency.get(query), float | int)]
    return min(values, key=lambda v: v[1]) if values else None


def _print_latency_verdict(figures: SizeFigures) -> None:
    if not any(s.latency for s in figures.up(PEERS)):
        return  # no peer measured: nothing to compare with
    for key in (LODPUB, LODPUB_DISK):
        s = figures.systems.get(key)
        if not s or s.status != "ok" or not s.latency:
            continue
        slower = []
        for query, mine in s.latency.items():
            best = _fastest_latency(figures, query)
            if best and (not isinstance(mine, float | int) or mine > best[1]):
                slower.append(f"{query[:1]} ({_num(mine if isinstance(mine, float | int) else None)} vs"
                              f" {best[0]} {_num(best[1])} ms)")
        print(f"  single-query medians, {SHORT[key]} no worse than the fastest peer on"
              f" {len(s.latency) - len(slower)} of {len(s.latency)} queries [all]"
              + (f"; slower on {', '.join(slower)}" if slower else ""))


def _print_overhead(figures: SizeFigures) -> None:
    for key, store in ((LODPUB, "best"), (LODPUB_DISK, "disk")):
        s = figures.systems.get(key)
        base = figures.inprocess.get(store, {}).get("median_ms")
        if not s or s.status != "ok" or not base:
            continue
        for what, medians in (("through the load driver", s.latency), ("in the server (its access log)",
                                                                         s.server_ms)):
            pairs = [(v, base[q]) for q, v in medians.items() if isinstance(v, float | int) and q in base]
            if pairs:
                over = sum(v for v, _ in pairs) / sum(b for _, b in pairs) - 1
                print(f"  HTTP overhead of {SHORT[key]} over in-process pyoxigraph ({store} store), summed "
                      f"single-query medians {what}: {over * 100:+.0f}% [≤ 10%]")


def print_latency(figures: SizeFigures) -> None:
    systems = [s for s in figures.up([LODPUB, LODPUB_DISK, *PEERS]) if s.latency]
    stores = [k for k in ("disk", "memory", "best") if figures.inprocess.get(k, {}).get("median_ms")]
    if not systems:
        return
    print("\nsingle-query median latency, ms (load.py --mode latency: median of 5 after a warm-up;"
          " a query slower than 15 s is run once)")
    print(f"{'query':<22}" + "".join(f"{SHORT[s.key]:>12}" for s in systems)
          + "".join(f"{'in-proc ' + k[:4]:>13}" for k in stores))
    for query in systems[0].latency:
        cells = []
        for s in systems:
            v = s.latency.get(query)
            cells.append(f"{v:>12,.1f}" if isinstance(v, float | int) else f"{str(v)[:11]:>12}")
        cells += [f"{figures.inprocess[k]['median_ms'].get(query, float('nan')):>13,.1f}" for k in stores]
        print(f"{query:<22}" + "".join(cells))
    for k in stores:
        floor = figures.inprocess[k]
        if "before_ms" in floor:
            print(f"  in-proc {k}: the mean of the floor measured before and after lodpub's runs (summed medians "
                  f"{sum(floor['before_ms'].values()):,.1f} and {sum(floor['after_ms'].values()):,.1f} ms)")
    for s in systems:
        if s.server_ms:
            print(f"  {SHORT[s.key]} in the server (its access log, same runs): "
                  + ", ".join(f"{q.split('_')[0]} {v:,.1f}" for q, v in s.server_ms.items()) + " ms")


def print_ask(figures: SizeFigures) -> None:
    rows = [s for s in figures.systems.values() if s.status == "ok" and s.ask is not None]
    if not rows:
        return
    print("\ntrivial ASK {} with wrk (8 connections, 2 threads, one fixed GET; the median run of those listed)")
    for s in rows:
        if isinstance(s.ask, dict):
            errors = f"  socket errors {s.ask['socket_errors']}" if s.ask["socket_errors"] else ""
            runs = ", ".join(f"{r:,.0f}" for r in s.ask.get("runs", []))
            print(f"  {s.label:<34} {s.ask['rps']:>9,.0f} req/s  avg latency {s.ask['latency_avg']:>8}"
                  f"  non-2xx {s.ask['non_2xx']}{errors}  runs: {runs}")
        else:
            print(f"  {s.label:<34} failed: {s.ask}")


def print_memory(figures: SizeFigures) -> None:
    for key in (LODPUB, LODPUB_DISK):
        s = figures.systems.get(key)
        if not s or s.status != "ok" or not s.memory:
            continue
        m = s.memory
        print(f"\n{s.label}: start to first answer {_num(s.ready_s, 2)} s [< 15 s at 100,000]; memory after the mix"
              f" run: main process RSS {_num(m['main_rss'], 0)} MiB")
        for p in m["processes"]:
            print(f"  {p['role']:<10} pid {p['pid']:<7} RSS {_num(p.get('rss'), 0):>6} MiB   PSS"
                  f" {_num(p.get('pss'), 0):>6} MiB")
    if figures.cold_start is not None:
        cold = figures.cold_start
        print("\nlodpub cold start (dist/store and search.sqlite removed, rebuilt by lodpub serve): "
              + (f"{cold:.2f} s to the first answer" if isinstance(cold, float) else f"failed: {cold}"))


def print_size(figures: SizeFigures, clients: list[int]) -> None:
    """Everything measured at one size, in the order a reader needs it."""
    print_setup(figures)
    print_mix(figures)
    print_ask(figures)
    print_latency(figures)
    print_memory(figures)
    print_ratios(figures, clients)
