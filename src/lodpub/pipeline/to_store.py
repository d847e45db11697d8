"""``lodpub publish --to URL``: an edition loaded into a SPARQL store elsewhere, as its own named graph.

The edition's sorted N-Triples dump is streamed to the store's Graph Store Protocol
endpoint (``PUT URL?graph=<dataset>/<edition>``), replacing that graph whole if it was
there; the other editions' graphs are left as they are. The store then holds the new
edition beside the one being served, and a server reading it (``lodpub serve
--store``) switches with the published tree's pointer, which this command touches
once the graph is whole (a server that found the graph missing tries again then):
readers never see half an edition. Where the store's query endpoint is known
(setting ``store``), the graph's triples are counted against the edition's own count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx

from lodpub import formats, metadata, published, sparql_store
from lodpub.settings import Settings
from lodpub.vocab import VOID

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=None, write=None)  # a large graph may take the store minutes to take in


class StoreError(Exception):
    """The store did not take the edition: the message names the store and says why, in one line."""


def load(dist: Path, settings: Settings, url: str, edition: str | None = None) -> tuple[str, str, int]:
    """Load ``edition`` (default: the current one) of the tree ``dist`` into the store whose Graph Store
    Protocol endpoint is ``url``; returns the edition, its graph and its triples. Raises StoreError."""
    name = edition or published.current(dist)
    if name is None:
        raise StoreError(f"{dist} has no current edition; run 'lodpub build' first")
    path = dist / name
    dump = path / "measures.nt"
    if not dump.exists():
        raise StoreError(f"{dump} does not exist: not an edition of {dist}")
    void = metadata.read_description(path)
    expected = next(int(t.object.value) for t in void if t.predicate == VOID.triples
                    and t.subject.value == settings.dataset_iri)
    graph = sparql_store.edition_graph(settings, name)
    auth, headers = sparql_store.credentials(settings)
    with httpx.Client(auth=auth, headers=headers, timeout=TIMEOUT) as client:
        try:
            response = client.put(url, params={"graph": graph}, content=_chunks(dump),
                                  headers={"Content-Type": formats.N_TRIPLES.media_type})
        except httpx.HTTPError as exc:
            raise StoreError(f"{url}: the store could not be reached ({type(exc).__name__}: {exc})") from None
        if response.status_code not in (200, 201, 204):
            reason = response.text.strip().splitlines()[0][:200] if response.text.strip() else "no reason given"
            raise StoreError(f"{url}: the store refused the edition ({response.status_code}: {reason})")
        if settings.store:
            found = _count(client, settings.store, graph)
            if found != expected:
                raise StoreError(f"{settings.store}: the graph <{graph}> holds {found:,} triples, not the "
                                 f"edition's {expected:,}; load it again")
    with published.writing(dist):
        published.point(dist, published.current(dist) or name)  # the same pointer, anew: servers look again
    return name, graph, expected


def _chunks(dump: Path) -> Iterator[bytes]:
    with dump.open("rb") as file:
        while block := file.read(CHUNK):
            yield block


def _count(client: httpx.Client, endpoint: str, graph: str) -> int:
    response = client.get(endpoint, params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                                            "default-graph-uri": graph},
                          headers={"Accept": formats.JSON_RESULTS.media_type})
    if response.status_code != 200:
        raise StoreError(f"{endpoint}: the store answered {response.status_code} to a count of its triples")
    return int(response.json()["results"]["bindings"][0]["n"]["value"])
