"""The dataset of one edition, as serving reads it: the one seam every read goes through.

Routes and pages never open a store: SPARQL, resource documents and pages, browse
lists and counts, a resource's neighbourhood and search all ask a ``Dataset``.
``Embedded`` is the one lodpub builds: pyoxigraph's read-only store beside the
published tree (pattern lookups in the server's process, microseconds each),
the engine's worker processes for SPARQL (time limits, memory caps, lanes) and
the SQLite search index. Another implementation (a remote SPARQL store) answers
the same questions its own way; callers cannot tell which they have.

Terms cross the seam as pyoxigraph terms (``ox.NamedNode``, ``ox.Triple``): values,
not a store. IRIs taken from a URL are only ever used as terms, in pattern lookups
or bound into a fixed query, never pasted into query text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import pyoxigraph as ox

from lodpub import sparql_store
from lodpub.search import Hit, Search
from lodpub.serving.engine import Engine, Outcome, Request
from lodpub.serving.linked_data import Description, LinkedData, read_withdrawn
from lodpub.settings import Settings
from lodpub.store import ensure_caches, ensure_search, queried
from lodpub.vocab import RDF

# Counted by pyoxigraph's query engine: counting 100,000 links in Python took 0.5 s. The predicate is ours,
# never a visitor's (written as a term, in N-Triples syntax), so it may stand in the query text.
LINKED_COUNTS = "SELECT ?item (COUNT(*) AS ?n) WHERE {{ ?measure {link} ?item }} GROUP BY ?item"


class Dataset(Protocol):
    """What serving may ask of an edition's data. SPARQL raises the engine's exceptions (``engine.TooLong``,
    ``QueryTimeout``, ``Busy``, ``Waited``, ``WorkerLost``, ``OutOfMemory``, ``ClientGone``, ``QueryFailed``)."""

    withdrawn: dict[str, list[str]]  # IRIs withdrawn (410), each with its successors

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    @property
    def ready(self) -> bool: ...  # everything loaded that loads in the background (it answers meanwhile)
    @property
    def stats(self) -> dict[str, object]: ...

    async def query(self, request: Request, gone: Callable[[], bool] | None = None,
                    arrived: float | None = None) -> Outcome: ...
    def recent(self, count: int) -> list[tuple[Request, float]]: ...
    async def warm(self, requests: Sequence[tuple[Request, float]], seconds: float) -> int: ...

    def exists(self, iri: str) -> bool: ...
    def describe(self, iri: str, limit: int = 1000, offset: int = 0) -> Description: ...
    def labels(self, iris: Iterable[str]) -> dict[str, dict[str, str]]: ...
    def objects(self, iri: str, predicate: ox.NamedNode) -> list[str]: ...
    def instances(self, cls: ox.NamedNode) -> list[str]: ...
    def linked_counts(self, link: ox.NamedNode) -> dict[str, int]: ...
    def search(self, text: str, size: int, offset: int) -> tuple[list[Hit], int]: ...


def open_dataset(path: Path, cache: Path, settings: Settings, name: str, graph: str) -> Dataset:
    """The dataset of the edition ``name``: in the store ``settings.store`` names (as the graph ``graph``), or
    embedded."""
    if not settings.store:
        return Embedded(path, cache, settings, name)
    from lodpub.serving.remote import Remote
    ensure_search(path, cache, settings.base, name)  # search answers here; the store answers everything else
    auth, headers = sparql_store.credentials(settings)
    return Remote(settings.store, graph, settings.base, Search(cache / "search.sqlite"),
                  read_withdrawn(path / "register.tsv", settings.base), settings.query_timeout, auth, headers,
                  settings.store_timeout_parameter)


class Embedded(LinkedData):
    """The edition's own caches (``store.py``) and query workers: lodpub's embedded dataset."""

    def __init__(self, path: Path, cache: Path, settings: Settings, name: str):
        """``path``: the published edition; ``cache``: where its query store and search index are kept."""
        store = ensure_caches(path, cache, settings.base, name)
        super().__init__(store, settings.base, read_withdrawn(path / "register.tsv", settings.base))
        self.local = store
        self.index = Search(cache / "search.sqlite")
        self.engine = Engine(cache / "store", path / "measures.nt", settings.workers, settings.memory_workers,
                             settings.query_timeout, local=store, queue_per_worker=settings.queue_per_worker,
                             worker_memory=settings.worker_memory_mb << 20,
                             columnar_workers=settings.columnar_workers, kept=cache / "recent.json",
                             warm_seconds=settings.warm_seconds, beside=queried(path)[1:])

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()

    @property
    def ready(self) -> bool:
        return self.engine.ready

    @property
    def stats(self) -> dict[str, object]:
        return {"workers": self.engine.workers, **self.engine.stats}

    async def query(self, request: Request, gone: Callable[[], bool] | None = None,
                    arrived: float | None = None) -> Outcome:
        return await self.engine.answer(request, gone, arrived)

    def recent(self, count: int) -> list[tuple[Request, float]]:
        return self.engine.recent(count)

    async def warm(self, requests: Sequence[tuple[Request, float]], seconds: float) -> int:
        return await self.engine.warm(requests, seconds)

    def instances(self, cls: ox.NamedNode) -> list[str]:
        return [q.subject.value for q in self.local.quads_for_pattern(None, RDF.type, cls)]

    def linked_counts(self, link: ox.NamedNode) -> dict[str, int]:
        counted = self.local.query(LINKED_COUNTS.format(link=link))
        assert isinstance(counted, ox.QuerySolutions)
        return {row["item"].value: int(row["n"].value) for row in counted}

    def search(self, text: str, size: int, offset: int) -> tuple[list[Hit], int]:
        return self.index.find(text, size, offset)
