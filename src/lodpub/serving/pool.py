"""Worker processes for the event loop: each call runs in a process that is killed and replaced when it
passes its time limit or its caller goes away.

A thread cannot be stopped, so a query that must end at its limit runs in a process. Requests and answers
travel as length-prefixed pickles over a socket pair that the event loop reads directly: no thread sits
between the loop and a worker. Measured on this machine in a tight loop, a round trip costs ~11–50 µs
that way against ~240 µs through pebble's thread-fed pool and ~140 µs through ``anyio.to_process``. (A
worker asleep between requests takes longer to wake, ~0.25 ms per small query end to end; the engine
keeps requests it knows to be cheap out of the pool altogether.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from lodpub.serving.events import event

FRAME = struct.Struct("!Q")  # the length of the pickle that follows
START_TIMEOUT = 300.0  # seconds a new worker may take to get ready (an in-memory copy loads slowly)
POLL = 0.5  # seconds between checks that the caller still wants the answer
LOST_JOIN_SECONDS = 1.0  # how long a worker that ended mid-call is waited for, to read its exit status
RETRY_MAX = 60.0  # the longest pause between attempts to start a worker
log = logging.getLogger("lodpub")


class TimedOut(Exception):
    """The call ran past its limit; its worker, of kind ``kind``, was killed after ``ran`` seconds on it."""

    def __init__(self, kind: str, ran: float = 0.0):
        super().__init__(kind)
        self.kind = kind
        self.ran = ran


class Waited(Exception):
    """The call's limit passed while it waited for a worker: it never ran, and no worker was lost."""


class QueueFull(Exception):
    """As many calls as the pool lets wait are waiting already: this one was not queued."""


class Abandoned(Exception):
    """The caller went away; its worker was killed."""


class WorkerLost(Exception):
    """The worker ended before answering (killed from outside, out of memory, or shutting down)."""


class OutOfMemory(WorkerLost):
    """The worker aborted during the call: Rust's answer to an allocation its memory limit refused."""


class WorkerFailed(Exception):
    """The handler raised in the worker; the worker itself goes on."""


# ---------------------------------------------------------------- in the worker

def _serve(sock: socket.socket, handler: Callable[[Any], Any], initializer: Callable[..., None],
           initargs: tuple) -> None:
    # Stopping a worker must not wait for the handler (pyoxigraph cannot be interrupted), and a
    # terminal's Ctrl-C (or hang-up) is the server's to handle: the worker ends when its socket closes.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the server's to read: it asks it to look for a new edition
    incoming = sock.makefile("rb")
    try:
        try:
            initializer(*initargs)
        except Exception as exc:  # said once, in the server's log, rather than as a trace from each attempt
            _send(sock, (False, f"{type(exc).__name__}: {exc}"))
            return
        _send(sock, (True, None))  # ready
        while True:
            header = incoming.read(FRAME.size)
            if len(header) < FRAME.size:
                return  # the server closed the socket
            request = pickle.loads(incoming.read(FRAME.unpack(header)[0]))
            try:
                reply = (True, handler(request))
            except Exception as exc:
                reply = (False, f"{type(exc).__name__}: {exc}")
            _send(sock, reply)
    except (BrokenPipeError, ConnectionResetError):
        return  # the server went away (stopped, or gave up on this worker while it started)


def _send(sock: socket.socket, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) < 1 << 20:
        sock.sendall(FRAME.pack(len(data)) + data)  # one write: the server wakes once, for the whole reply
    else:
        sock.sendall(FRAME.pack(len(data)))
        sock.sendall(data)


# ---------------------------------------------------------------- in the server

def _start(process: BaseProcess, theirs: socket.socket) -> None:
    """Start ``process`` and close the server's copy of the socket it was given, only once it has been
    handed over (closing it earlier, when a start is abandoned, would leave the new process without one)."""
    try:
        process.start()
    finally:
        theirs.close()


class _Channel(asyncio.Protocol):
    """The server's end of one worker's socket: frames in, one awaited reply at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.reply: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.on_lost: Callable[[], None] | None = None  # told when the worker ends between calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def expect(self) -> asyncio.Future[bytes]:
        self.reply = asyncio.get_running_loop().create_future()
        if self.lost:
            self.reply.set_exception(WorkerLost("the worker process ended"))
        self._deliver()  # the frame may be here already (a worker's "ready")
        return self.reply

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._deliver()

    def _deliver(self) -> None:
        if len(self.buffer) < FRAME.size or self.reply is None or self.reply.done():
            return
        end = FRAME.size + FRAME.unpack_from(self.buffer)[0]
        if len(self.buffer) >= end:
            self.reply.set_result(bytes(memoryview(self.buffer)[FRAME.size:end]))
            del self.buffer[:end]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(WorkerLost("the worker process ended"))
        elif self.on_lost is not None:
            self.on_lost()


@dataclass(frozen=True)
class Kind:
    """``size`` workers that each run ``initializer(*initargs)`` once: e.g. those that read one store."""

    name: str
    size: int
    initargs: tuple
    background: bool = False  # start() does not wait for these; each joins the pool once it is ready
    dedicated: bool = False  # only calls that name this kind in ``kinds`` take these (a candidate engine)


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[_Worker]
    kinds: tuple[str, ...] | None  # the kinds of worker it may take (None: any)
    deadline: float  # the event loop's time when its limit ends
    need: float  # seconds it is known to need at least: it gives up its turn once less is left


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    channel: _Channel
    kind: Kind
    ready: bool = False

    def call(self, payload: bytes) -> asyncio.Future[bytes]:
        reply = self.channel.expect()
        assert self.channel.transport is not None
        self.channel.transport.write(FRAME.pack(len(payload)) + payload)
        return reply

    def kill(self) -> None:
        if self.channel.transport is not None:
            self.channel.transport.close()
        if self.process.is_alive():
            self.process.kill()


# Lanes of calls waiting for a worker, served in this order: calls known to be cheap never wait behind calls
# known to be heavy or never run (``NEW``), and those two lanes together hold at most all workers but one
# (``capped_slots``), so that one worker is always there for the calls known to finish.
CHEAP, NORMAL, NEW, HEAVY = "cheap", "normal", "new", "heavy"
LANES = (CHEAP, NORMAL, NEW, HEAVY)
CAPPED = frozenset((NEW, HEAVY))


@dataclass
class ProcessPool:
    """Processes of each kind that run their ``initializer(*kind.initargs)`` once, then ``handler(request)``
    per call; at most ``max_waiting`` calls of each lane wait for a worker (0: no bound)."""

    kinds: tuple[Kind, ...]
    handler: Callable[[Any], Any]
    initializer: Callable[..., None]
    context: multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext
    max_waiting: int = 0
    running: int = 0
    timeouts: int = 0
    waited_out: int = 0  # calls whose limit passed before a worker was free
    refused: int = 0  # calls not queued because the queue was full
    abandoned: int = 0
    replaced: int = 0
    capped_running: int = 0  # calls of the capped lanes holding a worker
    _stopping: bool = False
    _idle: deque[_Worker] = field(default_factory=deque)
    _waiting: dict[str, deque[_Waiter]] = field(
        default_factory=lambda: {lane: deque() for lane in LANES})
    _all: set[_Worker] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(kind.name for kind in self.kinds)  # the engine asks on every call
        self.capped_slots = max(1, sum(kind.size for kind in self.kinds if not kind.dedicated) - 1)

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    async def start(self) -> None:
        for kind in self.kinds:
            if kind.background:
                for _ in range(kind.size):
                    self._track(self._join(kind))
        awaited = [kind for kind in self.kinds for _ in range(kind.size) if not kind.background]
        for worker in await asyncio.gather(*(self._spawn(kind) for kind in awaited)):
            self._release(worker)

    @property
    def ready(self) -> dict[str, int]:
        """Workers ready, by kind (a busy one included)."""
        counts = dict.fromkeys((kind.name for kind in self.kinds), 0)
        for worker in self._all:
            counts[worker.kind.name] += worker.ready
        return counts

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for queue in self._waiting.values():
            for waiter in queue:
                if not waiter.future.done():
                    waiter.future.set_exception(WorkerLost("the server is stopping"))
        for worker in list(self._all):
            if worker in self._idle and worker.channel.transport is not None:
                worker.channel.transport.close()  # an idle worker reads end-of-file and returns
            else:
                worker.kill()  # a busy one would finish its query first, for nobody
        loop = asyncio.get_running_loop()
        for worker in list(self._all):
            await loop.run_in_executor(None, worker.process.join, 2)
            worker.kill()
        self._all.clear()
        self._idle.clear()

    async def run(self, request: Any, timeout: float, gone: Callable[[], bool] | None = None,
                  prefer: str = "", lane: str = NORMAL, arrived: float | None = None,
                  kinds: tuple[str, ...] | None = None, need: float = 0.0) -> Any:
        """``handler(request)`` in a worker (of kind ``prefer`` if one is idle; only of ``kinds`` if given),
        within ``timeout`` seconds of ``arrived`` (the event loop's time; default now), the wait for a worker
        included; a call known to need ``need`` seconds is not started with less left. Raises QueueFull,
        Waited, TimedOut, Abandoned (when ``gone()`` turns true), WorkerLost (OutOfMemory when the worker
        aborted) or WorkerFailed."""
        loop = asyncio.get_running_loop()
        deadline = (loop.time() if arrived is None else arrived) + timeout
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        worker = await self._acquire(prefer, lane, deadline, kinds, need)
        self.running += 1
        started = loop.time()
        try:
            reply = worker.call(payload)
            while not reply.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self.timeouts += 1
                    ran = loop.time() - started
                    event("query_timeout", kind=worker.kind.name, pid=worker.process.pid, ran=round(ran, 3),
                          waited=round(started - deadline + timeout, 3))
                    raise TimedOut(worker.kind.name, ran)
                await asyncio.wait((reply,), timeout=min(remaining, POLL))
                if not reply.done() and gone is not None and gone():
                    self.abandoned += 1
                    raise Abandoned
            ok, value = pickle.loads(reply.result())
        except WorkerLost:
            if self._stopping:
                self._replace(worker)
                raise
            # Its socket closed as it died: its exit status (reaped within moments) says whether it aborted.
            await loop.run_in_executor(None, worker.process.join, LOST_JOIN_SECONDS)
            aborted = worker.process.exitcode == -signal.SIGABRT
            event("worker_lost", kind=worker.kind.name, pid=worker.process.pid, running=True,
                  exitcode=worker.process.exitcode, message="a query worker ended during a query"
                  + (" (it needed more memory than it may use)" if aborted else "") + "; its client gets a 503")
            self._replace(worker)
            if aborted:
                raise OutOfMemory("the worker needed more memory than it may use") from None
            raise
        except BaseException:  # a timeout, a caller that left, a lost worker: this worker cannot be reused
            if not reply.done():
                reply.cancel()  # nobody will read it: the worker's end must not be reported as unretrieved
            self._replace(worker)
            raise
        finally:
            self.running -= 1
            if lane in CAPPED:
                self.capped_running -= 1
                for idle in list(self._idle):  # kept idle while the capped lanes had their share: now theirs?
                    self._idle.remove(idle)
                    self._release(idle)
        self._release(worker)
        if not ok:
            raise WorkerFailed(value)
        return value

    async def _spawn(self, kind: Kind) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self.context.Process(target=_serve, args=(theirs, self.handler, self.initializer, kind.initargs),
                                       daemon=True)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _start, process, theirs)
            _, channel = await loop.create_unix_connection(_Channel, sock=ours)
        except BaseException:  # e.g. the pool stopped meanwhile: a worker still starting finds its socket closed
            ours.close()
            if process.pid is not None:
                process.kill()
            raise
        worker = _Worker(process, channel, kind)
        self._all.add(worker)
        channel.on_lost = lambda: self._lost(worker)
        try:
            started, problem = pickle.loads(await asyncio.wait_for(channel.expect(), START_TIMEOUT))
            if not started:
                raise WorkerLost(problem)
        except BaseException:
            self._all.discard(worker)
            worker.kill()
            raise
        worker.ready = True
        return worker

    async def _acquire(self, prefer: str, lane: str, deadline: float, kinds: tuple[str, ...] | None,
                       need: float) -> _Worker:
        loop = asyncio.get_running_loop()
        if deadline - loop.time() < need:
            raise self._waited_out(lane)
        if lane not in CAPPED or self.capped_running < self.capped_slots:
            worker = self._idle_worker(prefer, kinds)
            if worker is not None:
                self.capped_running += lane in CAPPED
                return worker
        # Each lane has its own bound: a lane of heavy or new calls that is full turns away only its own.
        if self.max_waiting and len(self._waiting[lane]) >= self.max_waiting:
            self.refused += 1
            event("queue_full", lane=lane, waiting=self.waiting)
            raise QueueFull
        waiter = _Waiter(loop.create_future(), kinds, deadline, need)
        self._waiting[lane].append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise self._waited_out(lane) from None
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():  # handed over just as the caller left
                self.capped_running -= lane in CAPPED
                self._release(waiter.future.result())
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiting[lane].remove(waiter)

    def _waited_out(self, lane: str) -> Waited:
        """Count a call that cannot run within its limit, and the exception that tells its caller."""
        self.waited_out += 1
        event("query_waited_out", lane=lane, waiting=self.waiting)
        return Waited()

    def idle(self, kind: str) -> int:
        """Workers of ``kind`` idle now."""
        return sum(worker.kind.name == kind for worker in self._idle)

    def _idle_worker(self, prefer: str, kinds: tuple[str, ...] | None) -> _Worker | None:
        """An idle worker of kind ``prefer``, else the most recently used of ``kinds`` (its caches are warm)."""
        chosen = None
        for index in range(len(self._idle) - 1, -1, -1):
            name = self._idle[index].kind.name
            if name == prefer:
                chosen = index
                break
            if chosen is None and (name in kinds if kinds is not None else not self._idle[index].kind.dedicated):
                chosen = index
        if chosen is None:
            return None
        worker = self._idle[chosen]
        del self._idle[chosen]
        return worker

    def _release(self, worker: _Worker) -> None:
        """Hand ``worker`` to the first caller waiting in the first lane that may have it, or keep it idle."""
        for lane in LANES:
            if lane in CAPPED and self.capped_running >= self.capped_slots:
                continue
            queue = self._waiting[lane]
            now = asyncio.get_running_loop().time()
            for waiter in list(queue):
                if waiter.future.done() or (worker.kind.name not in waiter.kinds if waiter.kinds is not None
                                            else worker.kind.dedicated):
                    continue
                queue.remove(waiter)
                if waiter.deadline - now < waiter.need:  # it could no longer finish: told so now, not at its end
                    waiter.future.set_exception(self._waited_out(lane))
                    continue
                waiter.future.set_result(worker)
                self.capped_running += lane in CAPPED  # counted at once: the next release must see it
                return
        self._idle.append(worker)

    def _lost(self, worker: _Worker) -> None:
        """A worker ended while idle (killed from outside, out of memory): it is replaced at once, so that
        no call is sent to it."""
        if worker in self._idle and not self._stopping:
            self._idle.remove(worker)
            event("worker_lost", kind=worker.kind.name, pid=worker.process.pid, running=False,
                  message="a query worker ended while idle; starting another")
            self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)
        self.replaced += 1
        self._track(self._respawn(worker))

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respawn(self, old: _Worker) -> None:
        await asyncio.get_running_loop().run_in_executor(None, old.process.join)
        await self._join(old.kind)
        event("worker_replaced", logging.INFO, kind=old.kind.name, old=old.process.pid)

    async def _join(self, kind: Kind) -> None:
        """Start a worker of ``kind`` and add it to the pool, trying until it starts."""
        pause = 1.0
        while True:
            try:
                self._release(await self._spawn(kind))
                return
            except (TimeoutError, OSError, WorkerLost) as exc:
                # e.g. out of memory for the moment: the pool must come back, without a worker that cannot
                # start taking a core to try every second
                event("worker_start_failed", kind=kind.name, retry_seconds=pause,
                      message=f"a query worker ({kind.name}) did not start ({exc}); trying again in {pause:.0f} s")
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
