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

FRAME = struct.Struct("!Q")  # the length of the pickle that follows
START_TIMEOUT = 300.0  # seconds a new worker may take to get ready (an in-memory copy loads slowly)
POLL = 0.5  # seconds between checks that the caller still wants the answer
RETRY_MAX = 60.0  # the longest pause between attempts to start a worker
log = logging.getLogger("lodpub")


class TimedOut(Exception):
    """The call ran past its limit; its worker, of kind ``kind``, was killed."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class Abandoned(Exception):
    """The caller went away; its worker was killed."""


class WorkerLost(Exception):
    """The worker ended before answering (killed from outside, out of memory, or shutting down)."""


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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def expect(self) -> asyncio.Future[bytes]:
        self.reply = asyncio.get_running_loop().create_future()
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
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(WorkerLost("the worker process ended"))


@dataclass(frozen=True)
class Kind:
    """``size`` workers that each run ``initializer(*initargs)`` once: e.g. those that read one store."""

    name: str
    size: int
    initargs: tuple
    background: bool = False  # start() does not wait for these; each joins the pool once it is ready


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


@dataclass
class ProcessPool:
    """Processes of each kind that run their ``initializer(*kind.initargs)`` once, then ``handler(request)``
    per call."""

    kinds: tuple[Kind, ...]
    handler: Callable[[Any], Any]
    initializer: Callable[..., None]
    context: multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext
    running: int = 0
    timeouts: int = 0
    abandoned: int = 0
    replaced: int = 0
    _idle: deque[_Worker] = field(default_factory=deque)
    _waiting: deque[asyncio.Future[_Worker]] = field(default_factory=deque)
    _all: set[_Worker] = field(default_factory=set)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(kind.name for kind in self.kinds)  # the engine asks on every call

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
        for task in list(self._tasks):
            task.cancel()
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
                  prefer: str = "") -> Any:
        """``handler(request)`` in a worker, of kind ``prefer`` if one is idle; raises TimedOut, Abandoned
        (when ``gone()`` turns true), WorkerLost or WorkerFailed."""
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        worker = await self._acquire(prefer)
        self.running += 1
        try:
            reply = worker.call(payload)
            deadline = asyncio.get_running_loop().time() + timeout
            while not reply.done():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    self.timeouts += 1
                    raise TimedOut(worker.kind.name)
                await asyncio.wait((reply,), timeout=min(remaining, POLL))
                if not reply.done() and gone is not None and gone():
                    self.abandoned += 1
                    raise Abandoned
            ok, value = pickle.loads(reply.result())
        except BaseException:  # a timeout, a caller that left, a lost worker: this worker cannot be reused
            self._replace(worker)
            raise
        finally:
            self.running -= 1
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

    async def _acquire(self, prefer: str) -> _Worker:
        for index in range(len(self._idle) - 1, -1, -1):
            if self._idle[index].kind.name == prefer:
                worker = self._idle[index]
                del self._idle[index]
                return worker
        if self._idle:
            return self._idle.pop()  # the most recently used: its caches are warm
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed over just as the caller left
            raise

    def _release(self, worker: _Worker) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

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
                log.warning("a query worker (%s) did not start (%s); trying again in %.0f s", kind.name, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
