"""What a query worker does: open its store (or load its copy), then evaluate each request sent to it.

A worker is a process of ``pool.ProcessPool`` started by the engine (``engine.py``), which kills it at
the time limit; ``start`` caps what it may allocate. SELECT answers are written by pyoxigraph's own
serialisers (4–8x faster than writing them row by row in Python); only an answer that may pass the row
cap is counted, and one that does is evaluated again and written capped, with the truncation declared.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import resource
import time
from dataclasses import dataclass, replace

import pyoxigraph as ox

from lodpub import formats, results

DISK = "disk"
MEMORY = "memory"
COLUMNAR = "columnar"  # maplib's model of the dump: a candidate, checked against the others (engine.py)
CANDIDATES = frozenset((COLUMNAR,))
_STORE: list[ox.Store] = []
_KIND: list[str] = []
# An exit status the pool reads as "replace me": the candidate's model is unusable (a panic poisoned it).
BROKEN_EXIT = 70


def start(kind: str, path: str, memory: int = 0, beside: tuple[str, ...] = ()) -> None:
    """Open the store this worker reads: ``path`` is the disk store, or the dump to load a copy from, with the
    files ``beside`` it that the disk store holds too (the description: ``store.queried``); limit what it may
    allocate to ``memory`` bytes (0: no limit)."""
    if memory:
        # RLIMIT_DATA bounds private writable memory (heap and anonymous maps), not the store's files mapped
        # read-only. An allocation past it makes pyoxigraph (Rust) abort: the pool reports OutOfMemory.
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (memory if hard == resource.RLIM_INFINITY else min(memory, hard),
                                                  hard))
    if kind == COLUMNAR:
        # One thread: as fast per query here (its CPU time was the same), and it leaves the other cores to the
        # reference's workers. Set before Polars is imported, which reads it once.
        os.environ["POLARS_MAX_THREADS"] = "1"
        from lodpub.serving import columnar  # only here: the other workers never import Polars
        columnar.load(path, beside)
        _KIND.append(kind)
        return
    if kind == MEMORY:
        store = ox.Store()
        for file in (path, *beside):
            store.bulk_load(path=file, format=formats.READABLE[os.path.splitext(file)[1]])
    else:
        store = ox.Store.read_only(path)
    _STORE.append(store)
    _KIND.append(kind)


class Declined(Exception):
    """The candidate cannot answer this request (the reference must): the message says why."""


@dataclass(frozen=True)
class Request:
    query: str
    fmt: str  # a format name from negotiation
    max_rows: int
    max_bytes: int
    truncated_link: str
    prefixes: tuple[tuple[str, str], ...] = ()
    gzip: bool = False  # the client accepts a gzipped answer


@dataclass(frozen=True)
class Outcome:
    body: bytes
    truncated: bool = False
    error: str = ""  # a parse or evaluation error, for a 400
    too_large: bool = False
    gzipped: bool = False
    seconds: float = 0.0  # how long evaluating, writing and compressing it took
    store: str = DISK  # the kind of store that answered


NATIVE = {f.name: f.writer for f in formats.SOLUTIONS}
# Bytes of the answer written natively before it is taken to be too big for that route: not a limit on
# answers (those may be up to max_bytes, written capped), only where re-evaluating becomes the cheaper way.
NATIVE_BYTES_PER_ROW = 512
NATIVE_MIN_BYTES = 4 << 20
# The fewest bytes a row can take in each format ({} plus a comma, a line, <result></result>), so that a
# short answer is known to be within the row cap without counting.
MIN_ROW_BYTES = {"json": 3, "xml": 17, "csv": 2, "tsv": 1}


# An answer at least this long goes gzipped to a client that accepts it: answers of 1–2 MB become 13–16x
# smaller for 3–5 ms of compressing (level 1), done here, off the event loop.
GZIP_MIN_BYTES = 4096
GZIP_LEVEL = 1


def run(request: Request) -> Outcome:
    """The outcome of one query against the worker's store (raises Declined from a candidate that cannot
    answer it)."""
    if _KIND[0] == COLUMNAR:
        return _candidate(request)
    return replace(answer_from(_STORE[0], request), store=_KIND[0])


def _candidate(request: Request) -> Outcome:
    from lodpub.serving import columnar
    started = time.perf_counter()
    try:
        outcome = columnar.evaluate(request)
    except columnar.Unsupported as exc:
        raise Declined(str(exc)) from None
    except columnar.Broken:
        os._exit(BROKEN_EXIT)  # nothing more this worker can answer: the pool replaces it
    return _finish(outcome, request, started)


def answer_from(store: ox.Store, request: Request) -> Outcome:
    """The query evaluated against ``store``, its answer written, compressed if asked, and timed."""
    started = time.perf_counter()
    return _finish(evaluate(store, request), request, started)


def _finish(outcome: Outcome, request: Request, started: float) -> Outcome:
    """Compressed if asked and long enough, and timed from ``started``."""
    if request.gzip and len(outcome.body) >= GZIP_MIN_BYTES:
        outcome = replace(outcome, body=gzip.compress(outcome.body, GZIP_LEVEL, mtime=0), gzipped=True)
    return replace(outcome, seconds=time.perf_counter() - started)


def evaluate(store: ox.Store, request: Request) -> Outcome:
    """Evaluate one query against ``store`` and serialise the answer."""
    try:
        answer = store.query(request.query, default_graph=ox.DefaultGraph())
        if isinstance(answer, ox.QueryBoolean):
            return Outcome(results.boolean(bool(answer), request.fmt))
        if isinstance(answer, ox.QueryTriples):
            triples, truncated = results.capped(answer, request.max_rows)
            body = results.graph(triples, request.fmt, results.used_prefixes(triples, dict(request.prefixes)))
            return _sized(body, truncated, request)
        return _solutions(store, answer, request)
    except SyntaxError as exc:
        return Outcome(b"", error=_first_line(str(exc)))
    except (OSError, ValueError, TypeError) as exc:
        return Outcome(b"", error=f"the query could not be evaluated: {_first_line(str(exc))}")


class _Overflow(Exception):
    pass


class _Sink(io.BytesIO):
    """What pyoxigraph writes, stopping it once ``limit`` bytes have come."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.limit:
            raise _Overflow
        return super().write(data)


def _solutions(store: ox.Store, answer: ox.QuerySolutions, request: Request) -> Outcome:
    sink = _Sink(min(request.max_bytes, max(NATIVE_MIN_BYTES, request.max_rows * NATIVE_BYTES_PER_ROW)))
    try:
        answer.serialize(sink, format=NATIVE[request.fmt])
    except _Overflow:
        return _capped_solutions(store, request)
    body = sink.getvalue()
    if len(body) >= MIN_ROW_BYTES[request.fmt] * (request.max_rows + 1) and \
            most_rows(body, request.fmt) > request.max_rows and count_rows(body, request.fmt) > request.max_rows:
        return _capped_solutions(store, request)
    return Outcome(body)


def most_rows(body: bytes, fmt: str) -> int:
    """An upper bound on the solutions in an answer pyoxigraph wrote, at the cost of counting bytes.

    JSON: every solution and every term object closes with a brace, and "type": (its quote unescaped)
    occurs once per term object and never inside a string; braces inside strings only raise the bound.
    CSV: every record ends a line, and quoted line breaks only raise the bound."""
    if fmt == "json":
        return body.count(b"}") - body.count(b'"type":') - 3  # and head, results, the whole
    if fmt == "csv":
        return body.count(b"\n") - 1
    return count_rows(body, fmt)  # exact and as cheap


def count_rows(body: bytes, fmt: str) -> int:
    """Solutions in an answer pyoxigraph wrote (markup cannot occur inside its escaped values)."""
    if fmt == "tsv":
        return body.count(b"\n") - 1
    if fmt == "xml":
        return body.count(b"<result>")
    if fmt == "csv":
        return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8"), newline=""))) - 1
    parsed = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
    return 1 if isinstance(parsed, ox.QueryBoolean) else sum(1 for _ in parsed)


def _capped_solutions(store: ox.Store, request: Request) -> Outcome:
    """The first ``max_rows`` solutions, written here so that the truncation is declared in the answer."""
    answer = store.query(request.query, default_graph=ox.DefaultGraph())
    assert isinstance(answer, ox.QuerySolutions)
    variables = [v.value for v in answer.variables]
    rows, truncated = results.capped((tuple(solution) for solution in answer), request.max_rows)
    return _sized(results.select(variables, rows, request.fmt, truncated, request.truncated_link), truncated, request)


def _sized(body: bytes, truncated: bool, request: Request) -> Outcome:
    if len(body) > request.max_bytes:
        return Outcome(b"", truncated, too_large=True)
    return Outcome(body, truncated)


def _first_line(message: str, limit: int = 200) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "invalid query"
    return line if len(line) <= limit else line[:limit] + "…"
