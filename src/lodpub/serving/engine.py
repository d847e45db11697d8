"""The query engine: pyoxigraph in worker processes, killed and replaced when a query runs too long.

pyoxigraph has no timeout and a thread cannot be stopped, so each query runs in
a process of a ``pool.ProcessPool``; past the time limit that process is killed
and a fresh one started, while the other workers go on answering.

Where the workers read (setting ``memory_workers``):

- the disk store: a worker opens the store that ``lodpub build`` wrote to
  its edition's cache read-only. The data lives once, in the operating system's page
  cache, so memory does not multiply with the number of workers.
- an in-memory copy, loaded from ``measures.nt`` (and ``void.ttl``, as the store holds it) by ``memory_workers`` of the
  workers (default one): 2–3x faster on most larger queries at 100,000
  measures (every string read from the disk store costs a few microseconds),
  slower on a few (a count over all measures), at ~500 MB per copy there.
  pyoxigraph's reads dirty the pages of a copy, so a copy cannot be shared
  by forking; a fixed number of copies keeps memory from multiplying instead.
  These workers join the pool once loaded; a replacement loads again.

Each request goes to an idle worker of the kind it ran fastest on: once on each
kind (an edition does not change, so the same request does the same work), then
on the faster one, whichever worker is idle when that one is busy. A kind is
tried only while that cannot cost the request its answer (``preferred_kind``).

What a worker does with each request is ``worker.py``.

A request that has once been answered within ``INLINE_SECONDS`` is answered
again in the server's own process, on its read-only store, without the hand-off
to a worker (~0.25 ms here, most of a small query's time). The dataset does not
change while it is served, so the same request does the same work: its fastest
run is its cost (slower ones met cold caches or a busy machine), and one that
cost little cannot hold the event loop for long. Every other request, and every
request seen for the first time, goes to the workers and their time limit. (The
server's own store is on disk: a request measured cheap only in memory is run
there once, and measured again.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from lodpub.serving import agree, pool, recall
from lodpub.serving.events import event
from lodpub.serving.metrics import CANDIDATE_CHECKS, QUERY_SECONDS
from lodpub.serving.routing import allowed_kinds, lane, preferred_kind
from lodpub.serving.worker import CANDIDATES, COLUMNAR, DISK, MEMORY, Outcome, Request, answer_from, run, start

# ---------------------------------------------------------------- in the server

QueryTimeout = pool.TimedOut
ClientGone = pool.Abandoned
WorkerLost = pool.WorkerLost
OutOfMemory = pool.OutOfMemory  # also raised, without running it, for a request that ran out of memory before
QueryFailed = pool.WorkerFailed
Waited = pool.Waited
Busy = pool.QueueFull


@dataclass
class Known:
    """What the engine has measured of one request."""

    runs: dict[str, float] = field(default_factory=dict)  # its fastest completed run on each kind of worker
    stopped: float = 0.0  # its longest run that was stopped at its limit: it needs more than that
    outgrew: bool = False  # a run of it needed more memory than a worker may use
    # Each candidate kind (worker.CANDIDATES) checked against the reference: True once its answer was the same
    # (its runs then count like any kind's), False for good once it differed or could not answer.
    trusted: dict[str, bool] = field(default_factory=dict)
    checking: set[str] = field(default_factory=set)  # candidate kinds asked it now

    @property
    def need(self) -> float:
        """Seconds it is known to need at least."""
        return min(self.runs.values()) if self.runs else self.stopped


class TooLong(Exception):
    """The request ran past the time limit on every kind of worker it may use, in this edition: it is not
    run again (the data do not change, so it would only cost another worker), as Virtuoso refuses a query
    whose estimated time exceeds its limit."""

# A request that has run this fast is answered in the server's process from then on: a few times what the
# hand-off to a worker costs, and too short a hold on the event loop for other clients to notice.
INLINE_SECONDS = 0.001
# A run stopped after this share of the limit counts as one that could not finish within it.
FULL_RUN = 0.9
# Requests whose cost is remembered, and the longest query text among them: a query may be 100 KB, and
# 1,024 of those would hold 100 MB; at 16 KB at most, 16 MB (most share their text with a prepared request).
COSTS_KEPT = 1024
COST_QUERY_MAX = 16_384
# A copy in memory takes ~2.6 times the size of the N-Triples it is loaded from (564 MiB for 221 MB at
# 100,000 measures); copies are only loaded while they would take at most half the memory available.
COPY_PER_DUMP_BYTE = 3
# maplib's model of a dump, against pyoxigraph's copy of it: 745-866 MiB of data against 524 at 100,000 measures.
MODEL_PER_COPY = 2
# The requests an edition answered last, kept when its server stops to be warmed by the next (recall.py).
KEPT_REQUESTS = 64
log = logging.getLogger("lodpub")


def available_memory() -> int | None:
    """Bytes of memory available to this process's new allocations (Linux), or None when unknown."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    available = next((int(line.split()[1]) * 1024 for line in meminfo.splitlines()
                      if line.startswith("MemAvailable:")), None)
    try:  # a container's own limit (cgroup v2), when there is one
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and available is not None:
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def copies_that_fit(wanted: int, dump_bytes: int, available: int | None) -> int:
    """How many of ``wanted`` copies of a dump of ``dump_bytes`` to load with ``available`` bytes free."""
    if available is None or wanted == 0:
        return wanted
    return max(0, min(wanted, available // 2 // (COPY_PER_DUMP_BYTE * max(dump_bytes, 1))))


class Engine:
    def __init__(self, store: Path, dump: Path, workers: int, memory_workers: int, timeout: float,
                 local: ox.Store | None = None, queue_per_worker: int = 0, worker_memory: int = 0,
                 columnar_workers: int = 0, kept: Path | None = None,
                 warm_seconds: float = 0.0, beside: Sequence[Path] = ()):
        """``memory_workers`` of the ``workers`` (0: one per core) query an in-memory copy of ``dump``, the
        others ``store``, at least one of them; ``local``: the server's own read-only store, for requests
        known to be cheap (None: never inline); at most ``queue_per_worker`` requests per worker wait for
        one (0: no bound); each worker may allocate ``worker_memory`` bytes besides its copy (0: no limit);
        ``columnar_workers`` more answer from maplib's model of ``dump``, as a candidate (``_check``);
        ``kept``: where the requests answered last are kept when it stops, and answered for nobody from for
        up to ``warm_seconds`` at start, before it is ``ready`` (``recall.py``); ``beside``: the files the
        copies and models load after ``dump``, as ``store`` holds them (``store.queried``)."""
        self.store = store
        self.dump = dump
        self.beside = tuple(map(str, beside))
        self.workers = workers or os.cpu_count() or 1
        # A worker on disk starts at once and is there while a copy loads again after a timeout.
        self.memory_workers = max(0, min(memory_workers, self.workers - 1))
        if self.memory_workers:
            size = dump.stat().st_size
            fit = copies_that_fit(self.memory_workers, size, available_memory())
            if fit < self.memory_workers:
                log.warning("loading %d of %d in-memory copies of %s (~%d MB each): that is what fits in half "
                            "the memory available; set memory_workers lower to silence this", fit,
                            self.memory_workers, dump.name, COPY_PER_DUMP_BYTE * size >> 20)
                self.memory_workers = fit
        self.columnar_workers = columnar_workers
        if columnar_workers:
            # In what the copies leave of the same half of the memory available.
            size = dump.stat().st_size
            left = available_memory()
            if left is not None:
                left -= 2 * self.memory_workers * COPY_PER_DUMP_BYTE * size
            fit = copies_that_fit(columnar_workers, size * MODEL_PER_COPY, left)
            if fit < columnar_workers:
                log.warning("loading %d of %d columnar models of %s: that is what fits in half the memory "
                            "available; set columnar_workers lower to silence this", fit, columnar_workers, dump.name)
                self.columnar_workers = fit
        self.checks: dict[str, int] = {"agreed": 0, "differed": 0, "declined": 0, "failed": 0, "answered": 0}
        self._checking: set[asyncio.Task] = set()
        self.timeout = timeout
        self.worker_memory = worker_memory
        self.too_big = 0
        self.local = local
        self.max_waiting = queue_per_worker * self.workers
        self.too_long = 0
        self.pool: pool.ProcessPool | None = None
        self._loaded = False
        self.kept = kept
        self.warm_seconds = warm_seconds
        self._warming: asyncio.Task | None = None
        self.warmed_at_start = 0  # runs made for nobody before ready, from the requests kept last time
        self.inline = 0
        # What is known of each recent request's cost, newest last.
        self._known: OrderedDict[Request, Known] = OrderedDict()

    async def start(self) -> None:
        context: multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
        else:
            context = multiprocessing.get_context("spawn")
        kinds = tuple(kind for kind in (
            # Copies load for seconds at 100,000 measures: the disk workers answer meanwhile.
            pool.Kind(MEMORY, self.memory_workers,
                      (MEMORY, str(self.dump), self._memory_limit(MEMORY), self.beside), background=True),
            pool.Kind(DISK, self.workers - self.memory_workers, (DISK, str(self.store), self._memory_limit(DISK))),
            pool.Kind(COLUMNAR, self.columnar_workers,
                      (COLUMNAR, str(self.dump), self._memory_limit(COLUMNAR), self.beside),
                      background=True, dedicated=True))
            if kind.size)
        self.pool = pool.ProcessPool(kinds, run, start, context, max_waiting=self.max_waiting)
        await self.pool.start()
        kept = recall.load(self.kept) if self.kept is not None and self.warm_seconds > 0 else []
        if kept:
            self._warming = asyncio.get_running_loop().create_task(self._warm_kept(kept))

    @property
    def ready(self) -> bool:
        """Whether everything that loads or warms in the background is done: every kind of worker loaded
        (``loaded``) and the requests kept from the last run warmed on them."""
        return self.loaded and (self._warming is None or self._warming.done())

    @property
    def loaded(self) -> bool:
        """Whether every kind of worker has had all its workers ready at once, since start: the copies in memory
        and the candidate's model load in the background, answering meanwhile on disk. (Once true it stays
        true: a copy reloading after a timeout does not make the server unready.)"""
        if not self._loaded and self.pool is not None:
            ready = self.pool.ready
            self._loaded = all(ready.get(kind.name, 0) >= kind.size for kind in self.pool.kinds)
        return self._loaded

    async def _warm_kept(self, requests: list[tuple[Request, float]]) -> None:
        """Answer, for nobody, the requests the last server of this edition answered most recently, once the
        workers have loaded: each runs on the reference and then on the candidate, which is checked against
        it as for a client, so that their first client meets the kind that answers it fastest."""
        while not self.loaded:
            await asyncio.sleep(0.05)
        self.warmed_at_start = await self.warm(requests, self.warm_seconds)
        if self._checking:
            await asyncio.wait(set(self._checking), timeout=self.timeout)
        event("warmed", logging.INFO, requests=len(requests), runs=self.warmed_at_start,
              trusted=sum(1 for known in self._known.values() if any(known.trusted.values())))

    def _memory_limit(self, kind: str) -> int:
        """What a worker of ``kind`` may allocate (0: no limit): ``worker_memory``, besides the copy it loads."""
        if not self.worker_memory:
            return 0
        copy = COPY_PER_DUMP_BYTE * self.dump.stat().st_size if kind == MEMORY and self.memory_workers else 0
        if kind == COLUMNAR and self.columnar_workers:
            copy = MODEL_PER_COPY * COPY_PER_DUMP_BYTE * self.dump.stat().st_size
        return self.worker_memory + copy

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        for task in list(self._checking):
            task.cancel()
        if self.kept is not None and self._known:
            await asyncio.to_thread(recall.save, self.kept, self.recent(KEPT_REQUESTS))
        if self.pool is not None:
            await self.pool.stop()
            self.pool = None

    @property
    def stats(self) -> dict[str, object]:
        workers = self.pool
        if workers is None:
            return {"running": 0, "waiting": 0, "timeouts": 0, "waited_out": 0, "refused": 0, "too_long": 0,
                    "too_big": 0, "abandoned": 0, "replaced": 0, "inline": self.inline, "ready": {},
                    "candidates": dict(self.checks), "warmed_at_start": self.warmed_at_start}
        return {"running": workers.running, "waiting": workers.waiting, "timeouts": workers.timeouts,
                "waited_out": workers.waited_out, "refused": workers.refused, "too_long": self.too_long,
                "too_big": self.too_big, "abandoned": workers.abandoned, "replaced": workers.replaced,
                "inline": self.inline, "ready": workers.ready, "candidates": dict(self.checks),
                "warmed_at_start": self.warmed_at_start}

    async def answer(self, request: Request, gone: Callable[[], bool] | None = None,
                     arrived: float | None = None) -> Outcome:
        """The outcome of ``request`` within the time limit counted from ``arrived`` (the event loop's time;
        default now); if ``gone()`` turns true first, the query is stopped (its worker killed and replaced) so
        that a client that went away does not keep a worker busy. Raises TooLong, Busy, Waited, QueryTimeout,
        ClientGone, WorkerLost (OutOfMemory when it needs more memory than a worker may use) or QueryFailed."""
        assert self.pool is not None, "the engine is not started"
        known = self._known.get(request) or Known()
        runs = known.runs
        # The server's own store is on disk: what a copy in memory answers quickly may take it longer.
        if self.local is not None and runs and runs.get(DISK, min(runs.values())) <= INLINE_SECONDS:
            self.inline += 1
            try:
                outcome = answer_from(self.local, request)
            except Exception as exc:  # as a worker reports what escaped the handler
                raise QueryFailed(f"{type(exc).__name__}: {exc}") from exc
            QUERY_SECONDS.labels("inline").observe(outcome.seconds)
        else:
            if not runs and known.stopped >= self.timeout * FULL_RUN:
                self.too_long += 1
                event("query_refused", reason="ran past the limit before")
                raise TooLong
            if known.outgrew:  # the data do not change: it would only cost another worker
                self.too_big += 1
                event("query_refused", reason="needed more memory than a worker may use before")
                raise OutOfMemory("refused: it needed more memory than a worker may use before")
            # A candidate answers a request only once its answer to it was found the same as the reference's.
            names = [k for k in self.pool.names if k not in CANDIDATES or known.trusted.get(k)]
            kind = preferred_kind(names, runs, self.timeout)
            # A query stopped before (and never completed) runs again only with almost its whole limit ahead
            # of it: it either finishes and is known, or runs its full limit and is not run again. (Run with
            # what was left after a wait, a pathological query took a worker again and again, and a
            # researcher's query that had waited was never given the time to show that it is cheap.)
            need = known.need if runs else self.timeout * FULL_RUN if known.stopped else 0.0
            try:
                outcome = await self.pool.run(request, self.timeout, gone, kind, lane(runs, known.stopped), arrived,
                                              allowed_kinds(names, runs, self.timeout) or tuple(names), need)
            except (QueryFailed, WorkerLost) as failed:
                if kind not in CANDIDATES or isinstance(failed, OutOfMemory):
                    if isinstance(failed, OutOfMemory):
                        known.outgrew = True
                        self._remember(request, known, kind, 0.0, stopped=True)
                    raise
                # A trusted candidate that fails now is never trusted again; the reference answers instead.
                self._distrust(request, known, kind, "failed", failed)
                return await self.answer(request, gone, arrived)
            except QueryTimeout as stopped:  # it needs more than it ran (its wait may have taken the rest)
                self._remember(request, known, stopped.kind, stopped.ran, stopped=True)
                raise
            QUERY_SECONDS.labels(outcome.store).observe(outcome.seconds)
            if outcome.store in CANDIDATES:
                self.checks["answered"] += 1
                CANDIDATE_CHECKS.labels(outcome.store, "answered").inc()
        self._remember(request, known, outcome.store, outcome.seconds)
        if outcome.store not in CANDIDATES:
            self._maybe_check(request, known, outcome)
        return outcome

    def _maybe_check(self, request: Request, known: Known, reference: Outcome) -> None:
        """Ask an idle candidate the request the reference just answered, unless it was asked before: the
        client has its answer already, and a busy candidate is asked another time."""
        if reference.error or reference.too_large or len(request.query) > COST_QUERY_MAX or self.pool is None:
            return
        for kind in CANDIDATES:
            if kind in known.trusted or kind in known.checking or not self.pool.idle(kind):
                continue
            left_open = agree.settled(request.query)
            if left_open is not None:  # an answer that may differ from run to run cannot be checked once for all
                self._distrust(request, known, kind, "declined", f"SPARQL leaves its answer open ({left_open})")
                continue
            known.checking.add(kind)
            task = asyncio.get_running_loop().create_task(self._check(request, known, kind, reference))
            self._checking.add(task)
            task.add_done_callback(self._checking.discard)

    async def _check(self, request: Request, known: Known, kind: str, reference: Outcome) -> None:
        """Run ``request`` on the candidate ``kind`` under the same limits, and trust it for this request only
        if its answer is the reference's: the same variables in projection order, the same solutions with
        the same terms and datatypes, in the same order where the query fixes it (``agree.differs``)."""
        assert self.pool is not None
        try:
            candidate = await self.pool.run(request, self.timeout, None, kind, pool.NORMAL, None, (kind,), 0.0)
        except (QueryFailed, WorkerLost, QueryTimeout, Busy, Waited) as failed:
            declined = isinstance(failed, QueryFailed) and str(failed).startswith("Declined:")
            self._distrust(request, known, kind, "declined" if declined else "failed", failed)
            return
        finally:
            known.checking.discard(kind)
        reason = agree.differs(request.fmt, reference.body, candidate.body, agree.fixes_order(request.query))
        if reason is None and candidate.truncated == reference.truncated and not candidate.error:
            known.trusted[kind] = True
            self.checks["agreed"] += 1
            CANDIDATE_CHECKS.labels(kind, "agreed").inc()
            self._remember(request, known, kind, candidate.seconds)
        else:
            self._distrust(request, known, kind, "differed", reason or candidate.error or "truncated differently")

    def _distrust(self, request: Request, known: Known, kind: str, verdict: str, why: object) -> None:
        known.trusted[kind] = False
        known.runs.pop(kind, None)
        self.checks[verdict] += 1
        CANDIDATE_CHECKS.labels(kind, verdict).inc()
        event("candidate_" + verdict, logging.INFO, kind=kind, reason=str(why)[:200], query=request.query[:200])

    def recent(self, count: int) -> list[tuple[Request, float]]:
        """The requests answered most recently, newest first, each with its fastest run so far (none that was
        only ever stopped at its limit: warming never runs one of those again)."""
        return [(request, known.need) for request, known in reversed(self._known.items()) if known.runs][:count]

    async def warm(self, requests: Sequence[tuple[Request, float]], seconds: float) -> int:
        """Make the workers ready for ``requests`` within about ``seconds``: wait for the copies in memory and
        the candidate's model to load (a bounded part of the time), then answer each request (for nobody) once
        on each kind of worker while its known cost fits in what is left, so that the first clients meet
        neither a cold worker nor a first try of their request on another kind; returns how many runs were
        made. The cheapest come first, so that the most fit; each waits for the candidate's checks of the one
        before, so that it finds the candidate idle and is checked too (a client's request is checked only when
        a candidate is idle). (A query is never cut short: stopping one costs its worker.)"""
        assert self.pool is not None, "the engine is not started"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.loaded and loop.time() < deadline - seconds / 4:  # the copies, the candidate's model
            await asyncio.sleep(0.05)
        done = 0
        for _ in self.pool.names:
            for request, cost in sorted(requests, key=lambda kept: kept[1]):
                if self._checking:
                    await asyncio.wait(set(self._checking), timeout=max(0.0, deadline - loop.time()))
                if loop.time() + cost * 2 > deadline:
                    continue
                with contextlib.suppress(QueryTimeout, WorkerLost, QueryFailed, TooLong, Busy, Waited):
                    await self.answer(request)
                    done += 1
        return done

    def _remember(self, request: Request, known: Known, kind: str, seconds: float, stopped: bool = False) -> None:
        """Record a run of ``seconds`` on ``kind``: its fastest completed run on each kind is its cost; a
        stopped run says only that it needs more than it ran."""
        if len(request.query) <= COST_QUERY_MAX:
            self._known.pop(request, None)  # and put back as the newest
            if stopped:
                known.stopped = max(known.stopped, seconds)
            else:
                known.runs[kind] = min(known.runs.get(kind, seconds), seconds)
            self._known[request] = known
            if len(self._known) > COSTS_KEPT:
                self._known.popitem(last=False)
