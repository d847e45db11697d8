"""Looking up what the dataset says about one IRI: its triples, what links to it, and labels.

IRIs taken from a URL are only ever used as pyoxigraph terms, in pattern lookups
or bound into a fixed query, never pasted into query text, so a path cannot
inject SPARQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import pyoxigraph as ox

from lodpub import iris
from lodpub.register import WITHDRAWN, Register
from lodpub.snapshots import Snapshot
from lodpub.vocab import RDF, RDFS

# Counted by pyoxigraph's query engine: a strategy's or bureau's thousands of incoming links, counted in Python, took
# 80-95 ms at 100,000 measures; this takes 4-6 ms.
INCOMING = "SELECT ?node (COUNT(*) AS ?n) WHERE { ?s ?p ?node } GROUP BY ?node"


@dataclass
class Description:
    iri: str
    outgoing: list[ox.Triple] = field(default_factory=list)  # the resource's own triples and its #parts'
    incoming: list[ox.Triple] = field(default_factory=list)  # one page of what links to it
    incoming_total: int = 0

    def all_triples(self) -> list[ox.Triple]:
        return self.outgoing + self.incoming


def _reading_order(t: ox.Triple, iri: str) -> tuple:
    """The resource first, then its parts; type and label before the other properties."""
    p = t.predicate
    return (t.subject.value != iri, t.subject.value, p != RDF.type, p != RDFS.label, p.value, str(t.object))


def read_withdrawn(register: Path, base: str) -> dict[str, list[str]]:
    """IRIs the register marks withdrawn (they answer 410 Gone, not 404), each with its successors' IRIs."""
    return {iris.thing(base, e.kind, e.id): [iris.thing(base, e.kind, n) for n in e.replaced_by]
            for entries in Register.load(register).entries.values() for e in entries if e.status == WITHDRAWN}


class LinkedData:
    def __init__(self, store: ox.Store | Snapshot, base: str, withdrawn: dict[str, list[str]]):
        """``store``: the edition's query store, or a snapshot of an earlier edition (lookups by subject)."""
        self.store = store
        self.base = base
        self.withdrawn = withdrawn

    def exists(self, iri: str) -> bool:
        node = ox.NamedNode(iri)
        return next(iter(self.store.quads_for_pattern(node, None, None)), None) is not None

    def describe(self, iri: str, limit: int = 1000, offset: int = 0) -> Description:
        node = ox.NamedNode(iri)
        out = Description(iri)
        parts: list[ox.NamedNode] = []
        for quad in self.store.quads_for_pattern(node, None, None):
            out.outgoing.append(quad.triple)
            o = quad.object
            if isinstance(o, ox.NamedNode) and o.value.startswith(iri + "#"):
                parts.append(o)
        for part in parts:
            out.outgoing.extend(q.triple for q in self.store.quads_for_pattern(part, None, None))
        linking = self.store.quads_for_pattern(None, None, node)
        out.incoming = [q.triple for q in islice(linking, offset, offset + limit)]
        counted = self.store.query(INCOMING, substitutions={ox.Variable("node"): node})
        assert isinstance(counted, ox.QuerySolutions)
        out.incoming_total = next((int(row["n"].value) for row in counted), 0)
        out.outgoing.sort(key=lambda t: _reading_order(t, iri))
        return out

    def labels(self, iris: Iterable[str]) -> dict[str, dict[str, str]]:
        """rdfs:label of each IRI by language ('' for none)."""
        found: dict[str, dict[str, str]] = {}
        for iri in set(iris):
            for quad in self.store.quads_for_pattern(ox.NamedNode(iri), RDFS.label, None):
                found.setdefault(iri, {})[getattr(quad.object, "language", None) or ""] = quad.object.value
        return found

    def types(self, iri: str) -> list[str]:
        return self.objects(iri, RDF.type)

    def objects(self, iri: str, predicate: ox.NamedNode) -> list[str]:
        """The values of ``predicate`` on ``iri`` (IRIs or lexical forms)."""
        return [q.object.value for q in self.store.quads_for_pattern(ox.NamedNode(iri), predicate, None)]
