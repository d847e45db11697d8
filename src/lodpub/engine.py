"""The query engine: pyoxigraph in worker processes, killed and replaced when a query runs too long.

pyoxigraph has no timeout and a thread cannot be stopped, so each query runs in
a process of a pebble pool; past the time limit pebble kills that process and
starts a fresh one, while the other workers go on answering.

Where the workers read (setting ``query_store``):

- ``disk`` (default): each worker opens the store that ``lodpub build`` wrote to
  ``dist/store`` read-only. The data lives once, in the operating system's page
  cache, so memory does not multiply with the number of workers.
- ``memory``: each worker queries an in-memory copy, 3–5x faster on the larger
  researcher queries at 100,000 measures, at the price of ~500 MB per worker
  there. The copy is loaded once in the forkserver (this module is its preload,
  ``LODPUB_ENGINE_PRELOAD`` names the dump) and workers are forked from it, so
  a replacement worker is ready at once; pyoxigraph's reads dirty the shared
  pages, though, so each worker soon holds most of a copy of its own.

Answers are cached by request: the dataset cannot change while the server runs,
so a cached answer is always correct.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import pebble
import pyoxigraph as ox

from . import results

# ---------------------------------------------------------------- in the worker

PRELOAD_VARIABLE = "LODPUB_ENGINE_PRELOAD"
_STORE: list[ox.Store] = []


def _load(dump: str) -> ox.Store:
    store = ox.Store()
    store.bulk_load(path=dump, format=ox.RdfFormat.N_TRIPLES)
    return store


if os.environ.get(PRELOAD_VARIABLE):  # set by Engine.start only for the forkserver it starts
    _STORE.append(_load(os.environ[PRELOAD_VARIABLE]))  # once, for every worker forked from it


def _start_worker(store: str, dump: str) -> None:
    # pebble stops a worker with SIGTERM and waits 3 s before SIGKILL; its Python handler cannot
    # run while pyoxigraph is inside a query, so let SIGTERM end the process at once instead.
    # Nothing is lost: the worker only reads.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _STORE:  # the forkserver's preloaded in-memory copy
        return
    _STORE.append(_load(dump) if dump else ox.Store.read_only(store))


@dataclass(frozen=True)
class Request:
    query: str
    form: str  # SELECT, ASK, CONSTRUCT, DESCRIBE
    fmt: str  # a format name from negotiation
    max_rows: int
    max_bytes: int
    truncated_link: str
    prefixes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    body: bytes
    rows: int
    truncated: bool
    error: str = ""  # a parse or evaluation error, for a 400
    too_large: bool = False


def run(request: Request) -> Outcome:
    """Evaluate one query against the worker's store and serialise the answer."""
    try:
        answer = _STORE[0].query(request.query, default_graph=ox.DefaultGraph())
        if isinstance(answer, ox.QueryBoolean):
            return Outcome(results.boolean(bool(answer), request.fmt), 1, False)
        if isinstance(answer, ox.QueryTriples):
            triples, truncated = results.capped(answer, request.max_rows)
            body = results.graph(triples, request.fmt, results.used_prefixes(triples, dict(request.prefixes)))
            return _sized(body, len(triples), truncated, request)
        variables = [v.value for v in answer.variables]
        rows, truncated = results.capped((tuple(solution) for solution in answer), request.max_rows)
        body = results.select(variables, rows, request.fmt, truncated, request.truncated_link)
        return _sized(body, len(rows), truncated, request)
    except SyntaxError as exc:
        return Outcome(b"", 0, False, error=_first_line(str(exc)))
    except (OSError, ValueError, TypeError) as exc:
        return Outcome(b"", 0, False, error=f"the query could not be evaluated: {_first_line(str(exc))}")


def _sized(body: bytes, rows: int, truncated: bool, request: Request) -> Outcome:
    if len(body) > request.max_bytes:
        return Outcome(b"", rows, truncated, too_large=True)
    return Outcome(body, rows, truncated)


def _first_line(message: str, limit: int = 200) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "invalid query"
    return line if len(line) <= limit else line[:limit] + "…"


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- in the server

ABANDON_CHECK = 0.5  # seconds between checks that the client is still there


class QueryTimeout(Exception):
    pass


class ClientGone(Exception):
    pass


class WorkerLost(Exception):
    pass


class ResultCache:
    """A bounded LRU of answers by request; bytes-limited so large answers cannot crowd memory."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict[Request, Outcome] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Request) -> Outcome | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return found

    def put(self, key: Request, value: Outcome) -> None:
        if self.max_bytes <= 0 or len(value.body) > self.max_bytes // 4:
            return
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.size += len(value.body)
            while self.size > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.size -= len(old.body)


class Engine:
    def __init__(self, store: Path, dump: Path, in_memory: bool, workers: int, timeout: float, cache_bytes: int):
        self.store = store
        self.dump = dump
        self.in_memory = in_memory
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.cache = ResultCache(cache_bytes)
        self.pool: pebble.ProcessPool | None = None
        self.running = 0
        self.timeouts = 0
        self.abandoned = 0

    def start(self) -> None:
        context: multiprocessing.context.BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            forkserver = multiprocessing.get_context("forkserver")
            if self.in_memory:
                os.environ[PRELOAD_VARIABLE] = str(self.dump)  # read by the forkserver's import of this module
                forkserver.set_forkserver_preload([__name__])
            context = forkserver
        else:
            context = multiprocessing.get_context("spawn")
        dump = str(self.dump) if self.in_memory else ""
        self.pool = pebble.ProcessPool(max_workers=self.workers, initializer=_start_worker,
                                       initargs=(str(self.store), dump), context=context)
        # Start every worker now, so the first real query does not pay for it.
        for future in [self.pool.schedule(_peak_rss) for _ in range(self.workers)]:
            future.result()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
            self.pool.join(timeout=5)
            self.pool = None

    async def answer(self, request: Request,
                     abandoned: Callable[[], Awaitable[bool]] | None = None) -> Outcome:
        """The outcome of ``request``; if ``abandoned()`` turns true first, the query is stopped (its
        worker killed and replaced) so that a client that went away does not keep a worker busy."""
        cached = self.cache.get(request)
        if cached is not None:
            return cached
        assert self.pool is not None, "the engine is not started"
        future = self.pool.schedule(run, args=(request,), timeout=self.timeout)
        self.running += 1
        try:
            waiting = asyncio.wrap_future(future)
            while abandoned is not None:
                done, _ = await asyncio.wait({waiting}, timeout=ABANDON_CHECK)
                if done:
                    break
                if await abandoned():
                    future.cancel()
                    self.abandoned += 1
                    raise ClientGone
            outcome = await waiting
        except FutureTimeout:
            self.timeouts += 1
            raise QueryTimeout from None
        except pebble.ProcessExpired as exc:
            raise WorkerLost(str(exc)) from None
        finally:
            self.running -= 1
        if not outcome.error:
            self.cache.put(request, outcome)
        return outcome
