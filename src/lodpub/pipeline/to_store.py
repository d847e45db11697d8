"""``lodpub publish --to URL``: an edition loaded into a SPARQL store elsewhere, as its own named graph.

The edition's sorted N-Triples dump is streamed to the store's Graph Store Protocol
endpoint (``PUT URL?graph=<dataset>/<edition>``), replacing that graph whole if it was
there, and its description (``void.ttl``: the catalogue, the dataset, its files) is
added to the same graph (``POST``), so that the store holds what the embedded
endpoint holds; the load touches no other edition's graph. The store then holds the new
edition beside the one being served, and a server reading it (``lodpub serve
--store``) switches with the published tree's pointer, which this command touches
once the graph is whole (a server that found the graph missing tries again then):
readers never see half an edition. Where the store's query endpoint is known
(setting ``store``), the graph's triples are counted against the count the description
states for the endpoint (the dump's and the description's, each triple once).

Retention mirrors the published tree's (``keep_editions``): once the pointer has been
touched, the graphs of editions the tree no longer holds are deleted (``DELETE
URL?graph=…``), never those of the current edition, the one before it (a server may
still be reading it until it switches) or the one just loaded. A load that fails
stops before anything is deleted: the store's graphs are then as they were. Only
graphs lodpub named (the editions in the current edition's history) are ever deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyoxigraph as ox

from lodpub import formats, metadata, published, sparql_store
from lodpub.settings import Settings
from lodpub.vocab import VOID

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=None, write=None)  # a large graph may take the store minutes to take in
EXISTING = 200  # edition graphs asked about per query when the store's query endpoint is known


class StoreError(Exception):
    """The store did not take the edition: the message names the store and says why, in one line."""


@dataclass
class Loaded:
    """What ``load`` did: the edition and its graph, and which editions' graphs the store keeps and lost."""

    edition: str
    graph: str
    triples: int
    kept: list[str] = field(default_factory=list)  # editions whose graphs stay, newest first
    dropped: list[str] = field(default_factory=list)  # editions whose graphs were deleted
    problems: list[str] = field(default_factory=list)  # graphs that could not be deleted, a line each


def load(dist: Path, settings: Settings, url: str, edition: str | None = None) -> Loaded:
    """Load ``edition`` (default: the current one) of the tree ``dist`` into the store whose Graph Store
    Protocol endpoint is ``url``, then drop the graphs of editions the tree no longer keeps. Raises
    StoreError (and then has deleted nothing)."""
    name = edition or published.current(dist)
    if name is None:
        raise StoreError(f"{dist} has no current edition; run 'lodpub build' first")
    path = dist / name
    dump = path / "measures.nt"
    if not dump.exists():
        raise StoreError(f"{dump} does not exist: not an edition of {dist}")
    void = metadata.read_description(path)
    expected = metadata.endpoint_triples(void, settings) or next(
        int(t.object.value) for t in void if t.predicate == VOID.triples and t.subject.value == settings.dataset_iri)
    graph = sparql_store.edition_graph(settings, name)
    auth, headers = sparql_store.credentials(settings)
    sent = sparql_store.given(settings)
    with httpx.Client(auth=auth, headers=headers, timeout=TIMEOUT) as client:
        try:
            # Credentials first, with nothing sent: a store that refuses them answers before the dump streams.
            # On a connection of its own: Oxigraph's server answers a HEAD for a missing graph with a body.
            _authorised(client.head(url, params={"graph": graph}, headers={"Connection": "close"}), url, sent)
            response = client.put(url, params={"graph": graph}, content=_chunks(dump),
                                  headers={"Content-Type": formats.N_TRIPLES.media_type})
            _taken(response, url, sent, "the edition")
            response = client.post(url, params={"graph": graph}, content=_description(path),
                                   headers={"Content-Type": formats.N_TRIPLES.media_type})
            _taken(response, url, sent, "the edition's description")
        except httpx.HTTPError as exc:
            raise StoreError(sparql_store.unreachable(url, exc, settings)) from None
        if settings.store:
            found = _count(client, settings, graph, sent)
            if found != expected:
                raise StoreError(f"{sparql_store.shown(settings.store)}: the graph <{graph}> holds {found:,} "
                                 f"triples, not the edition's {expected:,}; load it again")
        with published.writing(dist):
            current = published.current(dist) or name
            published.point(dist, current)  # the same pointer, anew: servers look again
            chain = _chain(dist, current, settings)
            held = set(published.editions(dist))
        done = Loaded(name, graph, expected)
        done.kept, gone = retained(chain, held, name)
        for old in _existing(client, settings, [sparql_store.edition_graph(settings, e) for e in gone], sent):
            dropped, problem = _drop(client, url, old)
            if dropped:
                done.dropped.append(old.rsplit("/", 1)[-1])
            if problem is not None:
                done.problems.append(problem)
    return done


def retained(chain: list[str], held: set[str], loaded: str) -> tuple[list[str], list[str]]:
    """Of the editions in ``chain`` (the current one first, then its history, newest first), those whose graphs
    the store keeps (the tree's editions ``held``, the current and the previous one always, and the one
    ``loaded``) and those whose graphs it drops: both newest first."""
    kept = [e for i, e in enumerate(chain) if i < 2 or e in held or e == loaded]
    return ([] if loaded in kept else [loaded]) + kept, [e for e in chain if e not in kept and e != loaded]


def _chain(dist: Path, current: str, settings: Settings) -> list[str]:
    """The current edition and every one before it, newest first, as its description lists them (only the
    current one if the description cannot be read: then nothing is dropped)."""
    try:
        ref = metadata.read_edition(metadata.read_description(dist / current), settings)
    except (OSError, SyntaxError, ValueError, KeyError):
        return [current]
    return [ref.name, *(e.name for e in reversed(ref.history))]


def _taken(response: httpx.Response, url: str, sent: str, what: str) -> None:
    _authorised(response, url, sent)
    if response.status_code not in (200, 201, 204):
        reason = response.text.strip().splitlines()[0][:200] if response.text.strip() else "no reason given"
        raise StoreError(f"{sparql_store.shown(url)}: the store refused {what} ({response.status_code}: {reason})")


def _authorised(response: httpx.Response, url: str, sent: str) -> None:
    problem = sparql_store.refused(url, response.status_code, sent)
    if problem is not None:
        raise StoreError(problem)


def _existing(client: httpx.Client, settings: Settings, graphs: list[str], sent: str) -> list[str]:
    """Those of ``graphs`` the store holds, asked of its query endpoint (setting ``store``) a few hundred at a
    time; without one, all of them (each is then deleted, and one that was not there answers 404)."""
    if not settings.store or not graphs:
        return graphs
    found: set[str] = set()
    for start in range(0, len(graphs), EXISTING):
        values = " ".join(f"<{g}>" for g in graphs[start:start + EXISTING])
        query = f"SELECT ?g WHERE {{ VALUES ?g {{ {values} }} FILTER EXISTS {{ GRAPH ?g {{ ?s ?p ?o }} }} }}"
        try:
            response = client.post(settings.store, data={"query": query},
                                   headers={"Accept": formats.JSON_RESULTS.media_type})
        except httpx.HTTPError:
            return graphs  # asked otherwise: one DELETE each
        if response.status_code != 200:
            return graphs
        found.update(row["g"]["value"] for row in response.json()["results"]["bindings"])
    return [g for g in graphs if g in found]


def _drop(client: httpx.Client, url: str, graph: str) -> tuple[bool, str | None]:
    """Delete ``graph`` from the store: whether it was there and is gone, and what went wrong if anything did (a
    graph that was not there is no problem)."""
    try:
        response = client.delete(url, params={"graph": graph})
    except httpx.HTTPError as exc:
        return False, f"{sparql_store.shown(url)}: the graph <{graph}> could not be dropped ({type(exc).__name__})"
    if response.status_code in (200, 202, 204, 404):
        return response.status_code != 404, None
    return False, (f"{sparql_store.shown(url)}: the store answered {response.status_code} to dropping the graph "
                   f"<{graph}>")


def _description(edition: Path) -> bytes:
    """The edition's description as N-Triples: its Turtle abbreviates IRIs with escaped local names
    (``data:measures\\#class-Bureau``), valid Turtle 1.1 that Virtuoso 7's parser keeps backslash and all."""
    triples = (q.triple for q in ox.parse(path=str(edition / metadata.DESCRIPTION), format=ox.RdfFormat.TURTLE))
    return ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""


def _chunks(dump: Path) -> Iterator[bytes]:
    with dump.open("rb") as file:
        while block := file.read(CHUNK):
            yield block


def _count(client: httpx.Client, settings: Settings, graph: str, sent: str) -> int:
    endpoint = settings.store
    try:
        response = client.get(endpoint, params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                                                "default-graph-uri": graph},
                              headers={"Accept": formats.JSON_RESULTS.media_type})
    except httpx.HTTPError as exc:
        raise StoreError(sparql_store.unreachable(endpoint, exc, settings)) from None
    _authorised(response, endpoint, sent)
    if response.status_code != 200:
        raise StoreError(f"{sparql_store.shown(endpoint)}: the store answered {response.status_code} to a count "
                         "of its triples")
    return int(response.json()["results"]["bindings"][0]["n"]["value"])
