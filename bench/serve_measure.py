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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from serve_systems import JSON_RESULTS, ROOT, http_get

SHARED = Path(os.environ.get("LODPUB_SHARED", ROOT.parent / "shared"))
LOAD_PY = SHARED / "bench" / "load.py"
QUERIES = ROOT / "bench" / "queries"  # the first set; a set is any folder of .rq files under bench/
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
            server_pid: int | None = None, repeat: int = 5, timeout: float = 120.0,
            queries: Path = QUERIES) -> dict:
        """One run of ``load.py`` over the query set ``queries``; its JSON figures. Its printed table is
        kept in LOG_DIR/label.txt."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = self.log_dir / f"{label}.json"
        out.unlink(missing_ok=True)
        command = [str(self.python), str(LOAD_PY), endpoint, "--queries", str(queries), "--mode", mode,
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


# ------------------------------------------------------------------ answers, compared across systems

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
RDF_LANG_STRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
NUMERIC = {XSD + t for t in ("integer", "decimal", "float", "double", "int", "long", "short", "byte",
                             "nonNegativeInteger", "positiveInteger", "negativeInteger", "nonPositiveInteger",
                             "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte")}
CONCAT_HINT = re.compile(r'#\s*bench:\s*compare \?(\w+) as a set of its "([^"]*)"-separated parts')
Term = tuple[str, ...]  # ("uri", iri) | ("bnode", "") | ("lit", lexical form, datatype, language)


@dataclass
class Query:
    """One query of a set, with what comparing its answers needs to know."""

    name: str
    text: str
    form: str  # SELECT, ASK, CONSTRUCT or DESCRIBE
    ordered: bool  # the query fixes the order of its solutions (ORDER BY)
    concat: dict[str, str]  # variable → separator of a GROUP_CONCAT whose parts are compared as a set
    order_vars: list[str] = field(default_factory=list)  # the variables its (last) ORDER BY sorts on

    @property
    def accept(self) -> str:
        return "text/turtle" if self.form in ("CONSTRUCT", "DESCRIBE") else JSON_RESULTS


def _code(text: str) -> str:
    """The query without its comments, prefix declarations and the text of its strings and IRIs."""
    text = re.sub(r"(?is)\b(PREFIX|BASE)\b\s*[^\s<]*\s*<[^>\s]*>", " ", text)
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"|<[^<>"{}|^`\\\s]*>', '""', text)
    return re.sub(r"(?m)#[^\n]*", " ", text)


def load_set(folder: Path) -> list[Query]:
    """The queries of ``folder`` (``*.rq``) in the driver's order (sorted by file name)."""
    queries = []
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        code = _code(text)
        form = re.search(r"(?i)\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", code)
        order = re.split(r"(?i)\bORDER\s+BY\b", code)
        keys = re.split(r"(?i)\b(?:LIMIT|OFFSET)\b|}", order[-1])[0] if len(order) > 1 else ""
        queries.append(Query(path.stem, text, form.group(1).upper() if form else "SELECT", len(order) > 1,
                             dict(CONCAT_HINT.findall(text)), re.findall(r"[?$](\w+)", keys)))
    return queries


@dataclass
class Answer:
    """One system's answer to one query, its terms normalised for comparison."""

    status: int | str  # HTTP status, or the error that stopped the request
    ms: float  # the whole request as the client saw it
    vars: list[str] = field(default_factory=list)
    rows: list[tuple[Term, ...]] = field(default_factory=list)  # SELECT: solutions in the order sent
    boolean: bool | None = None  # ASK
    triples: list[tuple[Term, Term, Term]] = field(default_factory=list)  # CONSTRUCT / DESCRIBE
    body: bytes = b""  # a graph's Turtle, kept for an isomorphism check when it has blank nodes
    error: str = ""

    @property
    def size(self) -> int | str:
        if self.error:
            return self.error[:40]
        if self.boolean is not None:
            return int(self.boolean)
        return len(self.rows) if self.vars or self.rows else len(set(self.triples))


def _json_term(binding: dict) -> Term:
    kind = binding.get("type")
    if kind == "uri":
        return ("uri", binding["value"])
    if kind == "bnode":
        return ("bnode", "")
    lang = binding.get("xml:lang") or binding.get("lang") or ""
    datatype = binding.get("datatype") or (RDF_LANG_STRING if lang else XSD_STRING)  # RDF 1.1: plain = xsd:string
    return ("lit", binding["value"], datatype, lang.lower())  # language tags are case-insensitive


def _ox_term(term: object) -> Term:
    import pyoxigraph as ox
    if isinstance(term, ox.NamedNode):
        return ("uri", term.value)
    if isinstance(term, ox.BlankNode):
        return ("bnode", "")
    language = term.language or ""  # type: ignore[attr-defined]
    return ("lit", term.value, term.datatype.value, language.lower())  # type: ignore[attr-defined]


def fetch_answer(endpoint: str, query: Query, timeout: float) -> Answer:
    """Send ``query`` once (GET, as the load driver does, without gzip) and read its answer."""
    import pyoxigraph as ox
    url = endpoint + "?query=" + urllib.parse.quote(query.text)
    t0 = time.perf_counter()
    try:
        status, body = http_get(url, accept=query.accept, timeout=timeout)
    except OSError as exc:
        return Answer(type(exc).__name__, (time.perf_counter() - t0) * 1000, error=f"{type(exc).__name__}: {exc}")
    answer = Answer(status, (time.perf_counter() - t0) * 1000)
    if status != 200:
        answer.error = f"HTTP {status}: {body[:120].decode('utf-8', 'replace')}"
        return answer
    try:
        if query.form in ("CONSTRUCT", "DESCRIBE"):
            answer.body = body
            answer.triples = [(_ox_term(t.subject), _ox_term(t.predicate), _ox_term(t.object))
                              for t in ox.parse(body, format=ox.RdfFormat.TURTLE)]
            return answer
        doc = json.loads(body)
        if "boolean" in doc:
            answer.boolean = bool(doc["boolean"])
            return answer
        answer.vars = list(doc["head"]["vars"])
        unbound: Term = ("unbound",)
        answer.rows = [tuple(_json_term(b[v]) if v in b else unbound for v in answer.vars)
                       for b in doc["results"]["bindings"]]
    except (ValueError, KeyError, TypeError, SyntaxError) as exc:
        answer.error = f"unreadable answer: {type(exc).__name__}: {str(exc)[:100]}"
    return answer


def _lenient(term: Term) -> Term:
    """A literal by its value: numbers as numbers whatever their type and lexical form."""
    if term[0] == "lit" and term[2] in NUMERIC:
        try:
            return ("num", str(Decimal(term[1]).normalize()))
        except (InvalidOperation, ValueError):
            return term
    return term


def _show(term: Term) -> str:
    if term[0] == "uri":
        return f"<{term[1].replace('https://lodpub.example/', '…/')}>"
    if term[0] == "lit":
        suffix = f"@{term[3]}" if term[3] else ("" if term[2] == XSD_STRING else f"^^{term[2].replace(XSD, 'xsd:')}")
        return f'"{term[1][:40]}"{suffix}'
    return term[0]


def _row(row: tuple[Term, ...]) -> str:
    return " ".join(_show(t) for t in row)


def _multiset_difference(mine: list, theirs: list) -> tuple[Counter, Counter]:
    a, b = Counter(mine), Counter(theirs)
    return a - b, b - a


def _describe(ref_only: Counter, other_only: Counter, show: Callable) -> str:
    parts = []
    if ref_only:
        parts.append(f"{sum(ref_only.values())} only in the reference, e.g. {show(next(iter(ref_only)))}")
    if other_only:
        parts.append(f"{sum(other_only.values())} only here, e.g. {show(next(iter(other_only)))}")
    return "; ".join(parts)


def compare_answers(query: Query, ref: Answer, other: Answer) -> tuple[str, str]:
    """How ``other`` differs from the reference answer: a status and a short explanation.

    Statuses: ``same``; ``same values`` (numbers of other datatypes or lexical forms); ``vars`` (the
    same solutions, the variables listed in another order); ``order`` (the same solutions in another
    order where the query fixes one; ties of its ORDER BY keys may come in any order); ``differs``;
    ``describe`` (DESCRIBE, which SPARQL leaves to the implementation); ``error`` (no answer)."""
    if other.error:
        return "error", other.error
    if ref.error:
        return "error", f"(the reference failed: {ref.error})"
    if query.form in ("CONSTRUCT", "DESCRIBE"):
        return _compare_graphs(query, ref, other)
    if ref.boolean is not None or other.boolean is not None:
        return ("same", "") if ref.boolean == other.boolean else ("differs", f"{other.boolean} against {ref.boolean}")
    notes = []
    if other.vars != ref.vars:
        if sorted(other.vars) != sorted(ref.vars):
            return "differs", f"variables {other.vars} against {ref.vars}"
        notes.append(f"variables in another order ({' '.join(other.vars)})")
    at = [other.vars.index(v) for v in ref.vars]
    concat = {ref.vars.index(v): sep for v, sep in query.concat.items() if v in ref.vars}

    def normal(row: tuple[Term, ...], reorder: list[int] | None, lenient: bool) -> tuple[Term, ...]:
        cells = [row[i] for i in reorder] if reorder else list(row)
        for i, sep in concat.items():
            if cells[i][0] == "lit":
                cells[i] = ("lit", sep.join(sorted(cells[i][1].split(sep))), *cells[i][2:])
        return tuple(_lenient(c) for c in cells) if lenient else tuple(cells)

    if concat:
        raw = Counter(ref.rows) - Counter(tuple(r[i] for i in at) for r in other.rows)
        moved = f", {sum(raw.values())} of its values with the parts in another order" if raw else ""
        notes.append(f"{', '.join('?' + ref.vars[i] for i in concat)} compared as a set of parts{moved}")
    if any(t[0] == "bnode" for r in ref.rows for t in r):
        notes.append("blank nodes compared as placeholders")
    for lenient in (False, True):
        mine = [normal(r, None, lenient) for r in ref.rows]
        theirs = [normal(r, at, lenient) for r in other.rows]
        ref_only, other_only = _multiset_difference(mine, theirs)
        if not ref_only and not other_only:
            break
    else:
        mine = [normal(r, None, False) for r in ref.rows]
        theirs = [normal(r, at, False) for r in other.rows]
        ref_only, other_only = _multiset_difference(mine, theirs)
        return "differs", "; ".join([f"{len(other.rows):,} rows against {len(ref.rows):,}",
                                     _describe(ref_only, other_only, _row), *notes])
    if lenient:
        example = next(((a, b) for a, b in zip(ref.rows, other.rows, strict=False)
                        if normal(a, None, False) != normal(b, at, False)), None)
        if example is None:  # the rows pair up only once sorted: find one literal that differs
            example = (ref.rows[0], other.rows[0]) if ref.rows and other.rows else None
        detail = _type_example(example[0], [example[1][i] for i in at]) if example else ""
        notes.insert(0, f"numbers of another datatype or lexical form{detail}")
    if query.ordered and mine != theirs:
        keys = [ref.vars.index(v) for v in query.order_vars if v in ref.vars]
        if keys and len(keys) == len(query.order_vars):  # ties may come in any order: compare the keys only
            mine, theirs = [[tuple(r[i] for i in keys) for r in rows] for rows in (mine, theirs)]
        if mine != theirs:
            first = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b)
            tie = "" if len(keys) == len(query.order_vars) else " (it sorts on a variable it does not project)"
            return "order", "; ".join([f"same solutions, another order from row {first + 1}{tie}", *notes])
        notes.append("ties in another order")
    if other.vars != ref.vars:
        return "vars", "; ".join(notes)
    return ("same values" if lenient else "same"), "; ".join(notes)


def _type_example(ref_row: tuple[Term, ...], other_row: list[Term]) -> str:
    for a, b in zip(ref_row, other_row, strict=False):
        if a != b and a[0] == b[0] == "lit":
            return f" (e.g. {_show(b)} against {_show(a)})"
    return ""


def _compare_graphs(query: Query, ref: Answer, other: Answer) -> tuple[str, str]:
    differs = "describe" if query.form == "DESCRIBE" else "differs"
    mine, theirs = set(ref.triples), set(other.triples)
    blank = any(t[0] == "bnode" for triple in mine | theirs for t in triple)
    if mine == theirs and not blank:
        return "same", ""
    if mine == theirs:  # blank nodes are placeholders here: only an isomorphism check can tell
        import rdflib
        from rdflib.compare import isomorphic
        graphs = [rdflib.Graph().parse(data=a.body.decode("utf-8"), format="turtle") for a in (ref, other)]
        return ("same", "isomorphic (blank nodes)") if isomorphic(*graphs) else (differs, "not isomorphic")
    lenient_mine = {tuple(_lenient(t) for t in triple) for triple in mine}
    lenient_theirs = {tuple(_lenient(t) for t in triple) for triple in theirs}
    if lenient_mine == lenient_theirs:
        return "same values", "numbers of another datatype or lexical form"
    ref_only, other_only = Counter(mine - theirs), Counter(theirs - mine)
    return differs, "; ".join([f"{len(theirs):,} triples against {len(mine):,}",
                               _describe(ref_only, other_only, _row)])
