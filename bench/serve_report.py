"""Printing what ``serve_bench.py`` measured: tables per size and query set, the ratios issues 3 and 12
name, and where the systems' answers disagree.

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
         "virtuoso": "Virtuoso", "rdflib-endpoint": "rdflib-ep", "lodpub-oxigraph": "lodpub→ox",
         "lodpub-virtuoso": "lodpub→virt"}


@dataclass
class SetFigures:
    """What was measured for one system on one query set."""

    counts: dict[str, int | str] = field(default_factory=dict)  # solutions or triples of each answer
    first_ms: dict[str, float] = field(default_factory=dict)  # each query's first request after start
    latency: dict[str, float | str | None] = field(default_factory=dict)
    server_ms: dict[str, float] = field(default_factory=dict)  # lodpub: the same runs, by its access log
    mix: dict[int, dict] = field(default_factory=dict)


@dataclass
class SystemFigures:
    """What was measured for one system at one size; ``status`` says why a system is missing."""

    key: str
    label: str
    status: str = "ok"
    ready_s: float | None = None
    load_s: float | None = None
    workers_ready: str | None = None  # lodpub: what /health said of its workers before the first queries
    notes: list[str] = field(default_factory=list)
    sanity: dict[str, int | str] = field(default_factory=dict)
    sets: dict[str, SetFigures] = field(default_factory=dict)
    ask: dict | str | None = None
    memory: dict | None = None

    def of(self, name: str) -> SetFigures:
        return self.sets.setdefault(name, SetFigures())


@dataclass
class SizeFigures:
    size: int
    triples: int | None
    build_s: float
    systems: dict[str, SystemFigures] = field(default_factory=dict)
    inprocess: dict[str, dict[str, dict]] = field(default_factory=dict)  # set → store → figures
    cold_start: float | str | None = None  # lodpub serve with dist/store (and its other caches) missing
    reference: str = ""  # the system whose answers the others are compared with
    answers: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)  # set → query → system
    fronts: dict[str, dict] = field(default_factory=dict)  # lodpub before a store: the ASK with one and two fronts

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
        notes = list(s.notes)
        if s.workers_ready is not None:
            notes.insert(0, f"/health: {s.workers_ready}")
        print(f"{s.label:<34} {_num(s.load_s):>7} {_num(s.ready_s, 2):>19}  {'; '.join(notes)}")


def print_counts(figures: SizeFigures, qs: str, sanity: bool = True) -> list[str]:
    """The size of every answer of the set on every system (solutions, or triples); returns the mismatches."""
    systems = [s for s in figures.systems.values() if s.status == "ok" and qs in s.sets and s.sets[qs].counts]
    if not systems:
        return []
    names = list(systems[0].sets[qs].counts) + (list(systems[0].sanity) if sanity else [])
    print(f"\nanswer sizes, set {qs} (solutions or triples; each query once, right after start)")
    print(f"{'query':<26}" + "".join(f"{SHORT.get(s.key, s.key):>13}" for s in systems))
    mismatches = []
    for name in names:
        values = [s.sets[qs].counts.get(name, s.sanity.get(name, "–")) for s in systems]
        flag = "" if len({str(v) for v in values}) == 1 else "   <-- MISMATCH"
        print(f"{name:<26}" + "".join(f"{str(v)[:12]:>13}" for v in values) + flag)
        if flag:
            mismatches.append(f"{name}: " + ", ".join(f"{SHORT.get(s.key, s.key)} {v}" for s, v in zip(systems, values,
                                                                                                    strict=True)))
    for line in mismatches:
        print(f"!!! COUNT MISMATCH at {figures.size:,} measures, set {qs} — {line}")
    return mismatches


MARK = {"same": "=", "same values": "= values", "vars": "VARS", "order": "ORDER", "differs": "DIFFERS",
        "describe": "describe≠", "error": "ERROR"}


def print_answers(figures: SizeFigures, qs: str) -> None:
    """Every system's answers against the reference's, and a line for each disagreement."""
    table = figures.answers.get(qs)
    if not table:
        return
    keys = [k for k in next(iter(table.values()))]
    ref = SHORT.get(figures.reference, figures.reference)
    print(f"\nanswers of set {qs} compared with {ref}'s (terms, datatypes and languages; solutions as multisets,"
          " order where the query has ORDER BY; graphs as sets of triples)")
    print(f"{'query':<26}" + "".join(f"{SHORT.get(k, k):>13}" for k in keys))
    details = []
    for query, row in table.items():
        print(f"{query:<26}" + "".join(f"{MARK.get(row[k][0], row[k][0]):>13}" for k in keys))
        details += [f"  {query} / {SHORT.get(k, k)}: {row[k][0]}: {row[k][1]}" for k in keys
                    if row[k][0] != "same" or row[k][1]]
    print("\n".join(details) if details else "  every answer the same as the reference's")
    print("  '= values': the same values with numbers of another datatype or lexical form; 'VARS': the same"
          " solutions, the variables in another order; 'describe≠': DESCRIBE, whose answer SPARQL leaves to each"
          " implementation (reported, not a failure)")


def disagreements(figures: SizeFigures) -> list[str]:
    """One line per answer that is not the same as the reference's (DESCRIBE included, marked)."""
    out = []
    for qs, table in figures.answers.items():
        for query, row in table.items():
            out += [f"{qs}/{query} {SHORT.get(k, k)}: {status}: {detail}" for k, (status, detail) in row.items()
                    if status != "same"]
    return out


def print_mix(figures: SizeFigures, qs: str) -> None:
    print(f"\nmixed query set {qs} (load.py --mode mix); lodpub rows with the result cache off unless 'repeated'")
    print(f"{'system':<34} {'c':>2} {'QPS':>9} {'p50 ms':>9} {'p99 ms':>9} {'ok':>7} {'err':>4} {'canc':>4}"
          f" {'driver CPU':>10} {'server CPU':>10} {'other CPU':>9}")
    for s in figures.systems.values():
        if s.status != "ok" or qs not in s.sets:
            continue
        for clients, run in sorted(s.sets[qs].mix.items()):
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


def _overall(s: SystemFigures | None, qs: str, clients: int) -> dict | None:
    if s is None or s.status != "ok" or "overall" not in s.of(qs).mix.get(clients, {}):
        return None
    return s.sets[qs].mix[clients]["overall"]


def _fastest_peer(figures: SizeFigures, qs: str, clients: int) -> tuple[str, dict] | None:
    runs = [(s.label, o) for s in figures.up(PEERS) if (o := _overall(s, qs, clients))]
    return max(runs, key=lambda r: r[1]["qps"]) if runs else None


def print_ratios(figures: SizeFigures, qs: str, clients: list[int]) -> None:
    print(f"\nratios, set {qs} (targets of issues 3 and 12 in brackets)")
    for c in clients:
        fastest = _fastest_peer(figures, qs, c)
        rdflib = _overall(figures.systems.get("rdflib-endpoint"), qs, c)
        for key in (LODPUB, LODPUB_DISK):
            mine = _overall(figures.systems.get(key), qs, c)
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
        cached = _overall(figures.systems.get(LODPUB_CACHE), qs, c)
        if cached and fastest:
            print(f"  c={c} repeated lodpub (cache on) / fastest peer ({fastest[0]}): {cached['qps']:.2f} /"
                  f" {fastest[1]['qps']:.2f} = {_ratio(cached['qps'], fastest[1]['qps'])} [≥ 10]")
    _print_latency_verdict(figures, qs)
    _print_first_runs(figures, qs)
    _print_overhead(figures, qs)


def print_ask_ratios(figures: SizeFigures) -> None:
    oxigraph = figures.systems.get("oxigraph")
    ox_rps = oxigraph.ask.get("rps") if oxigraph and isinstance(oxigraph.ask, dict) else None
    for key in (LODPUB, LODPUB_CACHE, LODPUB_DISK):
        s = figures.systems.get(key)
        if s and isinstance(s.ask, dict) and ox_rps:
            print(f"  ASK {{}} {SHORT[key]} rps / Oxigraph rps: {s.ask['rps']:,.0f} / {ox_rps:,.0f}"
                  f" = {_ratio(s.ask['rps'], ox_rps)} [≥ 0.5]")


def _fastest_latency(figures: SizeFigures, qs: str, query: str) -> tuple[str, float] | None:
    values = [(SHORT[s.key], v) for s in figures.up(PEERS) if isinstance(v := s.of(qs).latency.get(query), float | int)]
    return min(values, key=lambda v: v[1]) if values else None


def _print_latency_verdict(figures: SizeFigures, qs: str) -> None:
    if not any(s.of(qs).latency for s in figures.up(PEERS)):
        return  # no peer measured: nothing to compare with
    for key in (LODPUB, LODPUB_DISK):
        s = figures.systems.get(key)
        if not s or s.status != "ok" or not s.of(qs).latency:
            continue
        slower = []
        latency = s.sets[qs].latency
        for query, mine in latency.items():
            best = _fastest_latency(figures, qs, query)
            if best and (not isinstance(mine, float | int) or mine > best[1]):
                slower.append(f"{query.split('_')[0]} ({_num(mine if isinstance(mine, float | int) else None)} vs"
                              f" {best[0]} {_num(best[1])} ms)")
        print(f"  single-query medians, {SHORT[key]} no worse than the fastest peer on"
              f" {len(latency) - len(slower)} of {len(latency)} queries [all]"
              + (f"; slower on {', '.join(slower)}" if slower else ""))


def _print_first_runs(figures: SizeFigures, qs: str) -> None:
    s = figures.systems.get(LODPUB)
    if not s or s.status != "ok" or not s.of(qs).first_ms or not s.sets[qs].latency:
        return
    within, over = 0, []
    for query, first in s.sets[qs].first_ms.items():
        warm = s.sets[qs].latency.get(query)
        if not isinstance(warm, float | int):
            continue
        if first <= 2 * warm:
            within += 1
        else:
            over.append(f"{query.split('_')[0]} {first:,.1f} against {warm:,.1f} ms")
    print(f"  first run after start within 2× the warm median (lodpub, cache off): {within} of {within + len(over)}"
          " queries [all]" + (f"; not {', '.join(over)}" if over else ""))


def _print_overhead(figures: SizeFigures, qs: str) -> None:
    for key, store in ((LODPUB, "best"), (LODPUB_DISK, "disk")):
        s = figures.systems.get(key)
        base = figures.inprocess.get(qs, {}).get(store, {}).get("median_ms")
        if not s or s.status != "ok" or not base:
            continue
        for what, medians in (("through the load driver", s.of(qs).latency), ("in the server (its access log)",
                                                                                s.of(qs).server_ms)):
            pairs = [(v, base[q]) for q, v in medians.items() if isinstance(v, float | int) and q in base]
            if pairs:
                over = sum(v for v, _ in pairs) / sum(b for _, b in pairs) - 1
                print(f"  HTTP overhead of {SHORT[key]} over in-process pyoxigraph ({store} store), summed "
                      f"single-query medians {what}: {over * 100:+.0f}% [≤ 10%]")


def print_latency(figures: SizeFigures, qs: str) -> None:
    systems = [s for s in figures.up([LODPUB, LODPUB_DISK, *PEERS]) if s.of(qs).latency]
    inprocess = figures.inprocess.get(qs, {})
    stores = [k for k in ("disk", "memory", "best") if inprocess.get(k, {}).get("median_ms")]
    if not systems:
        return
    print(f"\nsingle-query median latency, set {qs}, ms (load.py --mode latency: median of the runs after a warm-up;"
          " a query slower than 15 s is run once)")
    print(f"{'query':<26}" + "".join(f"{SHORT[s.key]:>12}" for s in systems)
          + "".join(f"{'in-proc ' + k[:4]:>13}" for k in stores))
    for query in systems[0].sets[qs].latency:
        cells = []
        for s in systems:
            v = s.sets[qs].latency.get(query)
            cells.append(f"{v:>12,.1f}" if isinstance(v, float | int) else f"{str(v)[:11]:>12}")
        cells += [f"{inprocess[k]['median_ms'].get(query, float('nan')):>13,.1f}" for k in stores]
        print(f"{query:<26}" + "".join(cells))
    for k in stores:
        floor = inprocess[k]
        if "before_ms" in floor:
            print(f"  in-proc {k}: the mean of the floor measured before and after lodpub's runs (summed medians "
                  f"{sum(floor['before_ms'].values()):,.1f} and {sum(floor['after_ms'].values()):,.1f} ms)")
    for s in systems:
        if s.sets[qs].server_ms:
            print(f"  {SHORT[s.key]} in the server (its access log, same runs): "
                  + ", ".join(f"{q.split('_')[0]} {v:,.1f}" for q, v in s.sets[qs].server_ms.items()) + " ms")
    print_first_runs(figures, qs)


def print_first_runs(figures: SizeFigures, qs: str) -> None:
    systems = [s for s in figures.up([LODPUB, LODPUB_DISK, LODPUB_CACHE, *PEERS]) if s.of(qs).first_ms]
    if not systems:
        return
    print(f"\nfirst request of each query after start, set {qs}, ms (the answers compared; lodpub once /health said"
          " every worker ready), and its ratio to the warm median")
    print(f"{'query':<26}" + "".join(f"{SHORT[s.key]:>18}" for s in systems))
    for query in systems[0].sets[qs].first_ms:
        cells = []
        for s in systems:
            first, warm = s.sets[qs].first_ms.get(query), s.sets[qs].latency.get(query)
            ratio = f" ({first / warm:.1f}×)" if first is not None and isinstance(warm, float | int) and warm else ""
            cells.append(f"{_num(first) + ratio:>18}")
        print(f"{query:<26}" + "".join(cells))


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
    print_ask_ratios(figures)


def print_memory(figures: SizeFigures) -> None:
    for key in (LODPUB, LODPUB_DISK):
        s = figures.systems.get(key)
        if not s or s.status != "ok" or not s.memory:
            continue
        m = s.memory
        print(f"\n{s.label}: start to first answer {_num(s.ready_s, 2)} s [< 15 s at 100,000]; memory after its last"
              f" mix run: main process RSS {_num(m['main_rss'], 0)} MiB")
        for p in m["processes"]:
            print(f"  {p['role']:<10} pid {p['pid']:<7} RSS {_num(p.get('rss'), 0):>6} MiB   PSS"
                  f" {_num(p.get('pss'), 0):>6} MiB")
    if figures.cold_start is not None:
        cold = figures.cold_start
        print("\nlodpub cold start (dist/store and search.sqlite removed, rebuilt by lodpub serve): "
              + (f"{cold:.2f} s to the first answer" if isinstance(cold, float) else f"failed: {cold}"))


def print_size(figures: SizeFigures, clients: list[int]) -> None:
    """Everything measured at one size, in the order a reader needs it: per query set, then the rest."""
    print_setup(figures)
    for qs in figures.answers or sorted({q for s in figures.systems.values() for q in s.sets}):
        print(f"\n---- query set {qs} ----")
        print_answers(figures, qs)
        print_mix(figures, qs)
        print_latency(figures, qs)
        print_ratios(figures, qs, clients)
    print_ask(figures)
    print_memory(figures)
    lines = disagreements(figures)
    print(f"\ndisagreements with {SHORT.get(figures.reference, figures.reference)}'s answers at {figures.size:,}"
          " measures: " + ("none" if not lines else str(len(lines))))
    for line in lines:
        print("  " + line)
