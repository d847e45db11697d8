"""Measuring a running server: the shared load driver, wrk, idleness, counts and memory.

Everything here reads what the operating system or the tools report; nothing
asserts. Failures come back as text in the figures, so a report can show them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from serve_systems import ROOT, http_get

SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
LOAD_PY = SHARED / "bench" / "load.py"
QUERIES = ROOT / "bench" / "queries"
TICKS = os.sysconf("SC_CLK_TCK")
SANITY = {
    "measures": "PREFIX lp: <https://lodpub.example/def/lodpub#> SELECT (COUNT(?m) AS ?n) WHERE { ?m a lp:Measure }",
    "triples": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
}


class MeasureError(Exception):
    """A measurement could not be taken; the message says why."""


@dataclass
class Driver:
    """The shared load driver, run with a Python that has httpx (and psutil, for the server's CPU)."""

    python: Path
    log_dir: Path

    def run(self, label: str, endpoint: str, mode: str, *, clients: int = 1, seconds: float = 10.0,
            server_pid: int | None = None, repeat: int = 5, timeout: float = 120.0) -> dict:
        """One run of ``load.py``; its JSON figures. Its printed table is kept in LOG_DIR/label.txt."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = self.log_dir / f"{label}.json"
        out.unlink(missing_ok=True)
        command = [str(self.python), str(LOAD_PY), endpoint, "--queries", str(QUERIES), "--mode", mode,
                   "-c", str(clients), "-d", str(seconds), "--timeout", str(timeout), "--repeat", str(repeat),
                   "--label", label, "--json", str(out)]
        if server_pid:
            command += ["--server-pid", str(server_pid)]
        bound = seconds + 300 if mode == "mix" else 8 * (repeat + 1) * timeout + 60
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=bound)
        except subprocess.TimeoutExpired:
            raise MeasureError(f"load.py did not finish in {bound:.0f} s") from None
        (self.log_dir / f"{label}.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise MeasureError(f"load.py failed ({done.returncode}): {tail[0][:200]}")
        return json.loads(out.read_text(encoding="utf-8"))


def result_counts(driver: Driver, label: str, endpoint: str, timeout: float) -> dict[str, int | str]:
    """Each query of the set once (the driver's latency mode with no repeats): its result count or error."""
    figures = driver.run(label, endpoint, "latency", repeat=0, timeout=timeout)
    return {name: (q["error"] or q["results"]) for name, q in figures["queries"].items()}


def sanity_counts(endpoint: str, timeout: float, graph: str | None = None) -> dict[str, int | str]:
    """The number of measures and of triples the endpoint sees without a dataset clause.

    With ``graph`` (Virtuoso, whose default graph is the union of all its graphs, its own
    system graphs included) the triples are counted in that graph, and over all graphs too.
    """
    queries = dict(SANITY)
    if graph:
        queries["triples"] = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        queries["triples, all graphs"] = SANITY["triples"]
    counts: dict[str, int | str] = {}
    for name, query in queries.items():
        try:
            status, body = http_get(endpoint + "?query=" + urllib.parse.quote(query), timeout=timeout)
            if status != 200:
                counts[name] = f"HTTP {status}"
                continue
            counts[name] = int(json.loads(body)["results"]["bindings"][0]["n"]["value"])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            counts[name] = type(exc).__name__
    return counts


def run_wrk(url: str, connections: int, seconds: float, log: Path, threads: int = 2) -> dict:
    """Requests per second of one fixed GET with Debian's wrk."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise MeasureError("wrk not found: apt-get install wrk")
    status = http_get(url)[0]
    if status != 200:
        raise MeasureError(f"the ASK URL answers HTTP {status}")
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
               "-H", "Accept: application/sparql-results+json", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or not rps:
        raise MeasureError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[:200]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    socket_errors = re.search(r"Socket errors:([^\n]*)", done.stdout)
    latency = re.search(r"Latency\s+(\S+)", done.stdout)
    return {"rps": float(rps.group(1)), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else "",
            "latency_avg": latency.group(1) if latency else ""}


# ------------------------------------------------------------------ processes

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the state on; the name may hold spaces


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def wait_idle(pid: int, bound: float, threshold: float = 0.05, interval: float = 0.5) -> float | None:
    """Wait until the process tree uses under ``threshold`` of a core for two intervals in a row.

    Returns the seconds waited, or None if it was still busy after ``bound`` seconds.
    """
    t0 = time.perf_counter()
    quiet = 0
    while time.perf_counter() - t0 < bound:
        tree = descendants(pid)
        before = cpu_seconds(tree)
        time.sleep(interval)
        busy = (cpu_seconds(tree) - before) / interval
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= 2:
            return time.perf_counter() - t0
    return None


def _rollup(pid: int) -> dict[str, float]:
    figures = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                figures[name.lower()] = int(rest.split()[0]) / 1024  # kB → MiB
    except OSError:
        pass
    return figures


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def lodpub_memory(pid: int) -> dict:
    """RSS of lodpub's main process and RSS/PSS of its forkserver and each query worker (MiB)."""
    tree = descendants(pid)
    pooled = [p for p in tree if "forkserver import main" in _cmdline(p)]
    parents = {p: int(fields[1]) for p in pooled if (fields := _stat(p))}
    processes = []
    for p in pooled:
        role = "worker" if parents.get(p) in parents else "forkserver"
        processes.append({"pid": p, "role": role, **_rollup(p)})
    return {"main_rss": _rollup(pid).get("rss"), "processes": processes}
