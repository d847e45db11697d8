"""One edition as the server reads it, and the switch from one edition to the next while serving.

Every read a request makes — SPARQL, pages, downloads, search — goes through the ``Edition`` that was current
when it arrived (``Editions.enter``), so an answer never mixes two editions. Publishing a new edition moves
the pointer in the published tree (``published.py``); the server notices (the pointer is watched, and SIGHUP
asks it to look), opens the new edition beside the old one, starts its workers, and then replaces the
current object. Requests already under way finish on the old edition; its workers stop once its last query
has been answered (a long download of its files does not keep them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from lodpub import metadata, published, sparql_store
from lodpub.serving import downloads, pages, sparql_endpoint
from lodpub.serving.dataset import Dataset, open_dataset
from lodpub.serving.events import event
from lodpub.serving.sparql_endpoint import EDITION_KEY
from lodpub.settings import Settings
from lodpub.store import cache_root
from lodpub.vocab import DCTERMS, RDFS, VOID

log = logging.getLogger("lodpub")
FILE_INDEXES_KEPT = 16  # earlier editions whose file lists are kept, for /data/<edition>/FILE
# What a new edition answers before it is switched to, and for how long at most (its copy in memory loads
# meanwhile: ~5 s at 100,000 measures when idle; it waits for that three quarters of the time at most).
WARM_REQUESTS, WARM_SECONDS = 64, 8.0
POLL = 2.0  # seconds between looks at the pointer where the tree cannot be watched


@dataclass(frozen=True)
class Files:
    """The files of one edition, as downloads serve them."""

    edition: str
    files: dict[str, downloads.DistFile]
    last_modified: str  # an HTTP date: when the edition was issued

    @classmethod
    def read(cls, dist: Path, name: str, settings: Settings, void: list[ox.Triple] | None = None,
             ref: metadata.EditionRef | None = None) -> Files:
        void = metadata.read_description(dist / name) if void is None else void
        ref = ref or metadata.read_edition(void, settings)
        index = downloads.index(dist / name, metadata.described_files(void, settings.base, name))
        return cls(name, index, downloads.http_date(ref.issued))


class Edition:
    """Everything the server reads of one edition: its files and description, its data (``dataset.py``),
    and the answers cached for it."""

    def __init__(self, dist: Path, name: str, settings: Settings, templates):
        self.name = name
        self.path = dist / name
        self.settings = settings
        self.base = settings.base
        self.templates = templates
        self.void = metadata.read_description(self.path)
        self.ref = metadata.read_edition(self.void, settings)
        self.downloads = Files.read(dist, name, settings, self.void, self.ref)
        dataset = ox.NamedNode(settings.dataset_iri)
        about = {t.predicate.value: t.object.value for t in self.void if t.subject == dataset}
        self.triples = int(about[VOID.triples.value])  # the dataset's (its dumps')
        # What /sparql holds by default: the dataset and its description (a store is given both by publish --to).
        self.graph_triples = metadata.endpoint_triples(self.void, settings) or self.triples
        self.modified = about[DCTERMS.modified.value]
        self.class_counts = {t.subject.value.rsplit("-", 1)[-1]: int(t.object.value)
                             for t in self.void if t.predicate == VOID.entities}
        self.data: Dataset = open_dataset(self.path, cache_root(dist, settings.cache_dir) / name, settings, name,
                                          sparql_store.edition_graph(settings, name))
        self.vocabulary = [q.triple for file in ("ontology.ttl", "shapes.ttl")
                           for q in ox.parse(path=str(self.path / file), format=ox.RdfFormat.TURTLE)]
        self.term_labels: dict[str, dict[str, str]] = {}
        for t in self.vocabulary:
            if t.predicate == RDFS.label and isinstance(t.subject, ox.NamedNode):
                self.term_labels.setdefault(t.subject.value, {})[t.object.language or ""] = t.object.value
        self.browse_lists: dict[str, list[dict[str, Any]]] = {}  # filled on first view (web.browse)
        self.answers = sparql_endpoint.AnswerCache(settings.result_cache_mb * 1024 * 1024)
        self.active = 0  # queries at /sparql reading this edition now (pages and files do not need its workers)
        self._idle = asyncio.Event()
        self._idle.set()

    def knows(self, name: str) -> bool:
        """Whether ``name`` is this edition or one before it (kept in the tree or not)."""
        return name == self.name or any(e.name == name for e in self.ref.history)

    def local(self, iri: str) -> str | None:
        return "/" + iri[len(self.base):] if iri.startswith(self.base) else None

    def enter(self) -> None:
        self.active += 1
        self._idle.clear()

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._idle.set()

    async def start(self) -> None:
        await self.data.start()

    async def retire(self) -> None:
        """Stop this edition's workers once no query may need them any more."""
        await self._idle.wait()
        await self.data.stop()


def edition_of(request) -> Edition:
    """The edition a request reads: the one that was current when it arrived."""
    return request.scope[EDITION_KEY]


class Editions:
    """The edition being served, and the switch to each new one the published tree points to."""

    def __init__(self, dist: Path, settings: Settings):
        self.dist = dist.resolve()
        self.settings = settings
        self.templates = pages.environment()
        name = published.current(self.dist)
        if name is None:
            raise published.TreeError(f"{dist} has no current edition; run 'lodpub build' first")
        self.current = Edition(self.dist, name, settings, self.templates)
        self.switches = 0
        self._files: OrderedDict[str, Files] = OrderedDict()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._retiring: set[Edition] = set()

    # ------------------------------------------------------------ reading

    def files_of(self, name: str) -> Files | None:
        """The files of edition ``name``, the current one or any other still in the tree; None if gone."""
        if name == self.current.name:
            return self.current.downloads
        found = self._files.get(name)
        if found is None:
            # Only an edition that was published: one a killed build moved in but never pointed to is not.
            if not published.is_edition_name(name) or not self.current.knows(name) or not (self.dist / name).is_dir():
                return None
            try:
                found = Files.read(self.dist, name, self.settings)
            except (OSError, SyntaxError, ValueError, KeyError):
                return None  # removed while it was read
            self._files[name] = found
            if len(self._files) > FILE_INDEXES_KEPT:
                self._files.popitem(last=False)
        if not (self.dist / name).is_dir():  # removed by a later build's retention
            self._files.pop(name, None)
            return None
        return found

    # ------------------------------------------------------------ switching

    async def start(self) -> None:
        await self.current.start()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
            loop.add_signal_handler(signal.SIGHUP, lambda: self._track(self.refresh("SIGHUP")))
        if self.settings.follow_pointer:
            self._track(self._watch())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for edition in (self.current, *self._retiring):
            await edition.data.stop()

    async def refresh(self, reason: str = "the pointer moved") -> bool:
        """Switch to the edition the pointer names, if it is another; True if the server switched."""
        async with self._lock:
            try:
                name = published.current(self.dist)
            except published.TreeError as exc:
                event("edition_refused", logging.ERROR, message=f"not switching editions: {exc}")
                return False
            if name is None or name == self.current.name:
                return False
            try:
                new = await asyncio.to_thread(Edition, self.dist, name, self.settings, self.templates)
                await new.start()
                # The requests the old edition answered last, asked of the new one first: its workers and the
                # cost of each are warm before any client reaches it.
                warmed = await new.data.warm(self.current.data.recent(WARM_REQUESTS), WARM_SECONDS)
            except Exception as exc:  # a broken edition must not take the served one down with it
                event("edition_refused", logging.ERROR, edition=name, serving=self.current.name,
                      message=f"cannot serve edition {name} ({type(exc).__name__}: {exc}); still serving "
                              f"{self.current.name}")
                return False
            old, self.current = self.current, new
            self.switches += 1
            event("edition", logging.INFO, edition=name, previous=old.name, reason=reason, warmed=warmed)
            self._retiring.add(old)
            self._track(self._retire(old))
            return True

    async def _retire(self, old: Edition) -> None:
        try:
            await old.retire()
        finally:
            self._retiring.discard(old)

    async def _watch(self) -> None:
        import watchfiles
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it says "1 change detected" each time
        # The pointer is replaced by a rename in the tree's top directory: watching that one is enough.
        try:
            async for _ in watchfiles.awatch(self.dist, recursive=False, debounce=200, step=50,
                                             watch_filter=lambda change, path: Path(path).name == published.POINTER):
                await self.refresh()
        except (OSError, RuntimeError) as exc:  # e.g. no inotify watches left, or a file system without events
            log.warning("cannot watch %s (%s); looking at its pointer every %g s instead", self.dist, exc, POLL)
            while True:
                await asyncio.sleep(POLL)
                await self.refresh()

    def _track(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
