"""Mapping measures to RDF in our ontology: records → triples, in order, handed on as they are made.

Resources are emitted subject by subject in a fixed order (government,
strategies, units, contacts, measures, their source rows, sources; each by
register ID), so every serialisation downstream is deterministic without
sorting the whole graph. The triples go to a ``Sink`` (``publish.Dumps`` in a
build): first the shared resources, those before the measures and those after
them, then the measures in batches, each with its source rows; no batch but one
is ever held, so the memory a build takes hardly grows with its measures.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pyoxigraph import Literal, NamedNode, Triple

from lodpub import iris
from lodpub.iris import national
from lodpub.pipeline import matching
from lodpub.pipeline.cells import Measure
from lodpub.pipeline.matching import Assigned
from lodpub.pipeline.places import Gazetteer, gazetteer
from lodpub.pipeline.source import CANONICAL_HEADER, SourceFile, Strategy, Table
from lodpub.problems import Problem
from lodpub.register import WITHDRAWN, Register
from lodpub.vocab import DCAT, DCTERMS, ORG, RDF, RDFS, SAC, SKOS, XSD, Namespace, lodpub

GOVERNMENT_JA = "東京都"
GOVERNMENT_EN = "Tokyo Metropolitan Government"
SAFE_SLUG = iris.IDENT  # a source file's name is its ident when it is one


BATCH = 4000  # measures handed on at once (validation's pieces are made of whole batches)


class Sink(Protocol):
    """Where the graph goes. Publishing order is the head, the measures, their source rows, the tail; the
    tail is told at the start (before any measure) so that what validates a measure can be known from then on,
    and is placed after the source rows by the sink."""

    def begin(self, head: Sequence[Triple], tail: Sequence[Triple], measures: int) -> None:
        """The resources before the measures (the government, strategies, units and contact points), those
        after their source rows (source files and tables, withdrawn resources), and how many measures come."""

    def measures(self, triples: Sequence[Triple], rows: Sequence[Triple], count: int) -> None:
        """``count`` whole measures, and their source rows (which the order puts after the last measure)."""

    def end(self) -> None:
        """Every measure has come."""


class Collected:
    """A sink that keeps the whole graph as a list, in publishing order (for small graphs and tests)."""

    def __init__(self) -> None:
        self.triples: list[Triple] = []
        self._rows: list[Triple] = []
        self._tail: list[Triple] = []

    def begin(self, head: Sequence[Triple], tail: Sequence[Triple], measures: int) -> None:
        self.triples += head
        self._tail = list(tail)

    def measures(self, triples: Sequence[Triple], rows: Sequence[Triple], count: int) -> None:
        self.triples += triples
        self._rows += rows

    def end(self) -> None:
        self.triples += self._rows
        self.triples += self._tail
        self._rows, self._tail = [], []


@dataclass(frozen=True, slots=True)
class Record:
    """What a message about a measure names: its name, and the file and line of its row."""

    name: str
    file: str
    line: int


@dataclass
class Graph:
    """The mapped dataset: what it describes and how many triples it has (they went to the sink)."""

    triples: int = 0
    measures: int = 0
    units: int = 0
    contacts: int = 0
    strategies: int = 0
    records: dict[int, Record] = field(default_factory=dict)  # measure number → its row
    warnings: list[Problem] = field(default_factory=list)  # what matching rows to IRIs had to guess

    def __len__(self) -> int:
        return self.triples


def unit_class(lp: Namespace, path: Sequence[str]) -> NamedNode:
    """Top-level units are bureaus (局, 庁, 本部 …); below them the suffix decides."""
    if len(path) == 1:
        return lp.Bureau
    name = path[-1]
    if name.endswith("部"):
        return lp.Division
    if name.endswith(("課", "室")):
        return lp.Section
    return lp.OrganizationalUnit


def source_slug(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem if SAFE_SLUG.match(stem) else "f" + hashlib.sha256(name.encode()).hexdigest()[:12]


class Mapper:
    """Turns records into triples, minting IRIs through the register."""

    def __init__(self, base: str, register: Register, english: dict[str, str] | None = None,
                 places: Gazetteer | None = None):
        self.base = base
        self.places = places or gazetteer()
        self.lp = lodpub(base)
        self.register = register
        self.english = english or {}
        self.government = NamedNode(iris.government(base))
        self._predecessors: dict[tuple[str, int], list[int]] = {}

    def iri(self, kind: str, ident: int | str) -> NamedNode:
        return NamedNode(iris.thing(self.base, kind, ident))

    def map(self, sources: Sequence[SourceFile], measures: Sequence[Measure], sink: Sink,
            batch: int = BATCH) -> Graph:
        """Mint or look up every IRI, then describe each kind of resource in turn, handing the triples to
        ``sink`` (the measures ``batch`` at a time)."""
        reg = self.register
        strategies: dict[int, Strategy] = {}
        for source in sources:
            for table in source.tables:
                strategies.setdefault(table.strategy.number, table.strategy)
        units = [m.department[:depth] for m in measures for depth in range(1, len(m.department) + 1)]
        contacts = [(" ".join(m.department), tel) for m in measures for tel in m.phones]
        ids = matching.assign(reg, [str(n) for n in sorted(strategies)], units, contacts, measures)
        self._predecessors = defaultdict(list)
        for kind, entries in reg.entries.items():
            for e in sorted(entries, key=lambda e: e.id):
                if e.status == WITHDRAWN:
                    for successor in e.replaced_by:
                        self._predecessors[kind, successor].append(e.id)
        graph = Graph(warnings=ids.warnings)
        head = self.government_triples() + self.place_triples()
        self._strategies(head, graph, strategies, ids)
        unit_nodes = self._units(head, graph, set(units), ids)
        contact_nodes = self._contacts(head, graph, set(contacts), ids, unit_nodes)
        del units, contacts
        tail = [t for source in sources for t in self.source_triples(source)] + self.tombstones()
        sink.begin(head, tail, len(measures))
        graph.triples += len(head) + len(tail)
        self._measures(graph, sink, batch, sources, measures, ids, unit_nodes, contact_nodes)
        sink.end()
        return graph

    def history(self, kind: str, ident: int, name: str = "") -> list[Triple]:
        """What a resource was called before (``skos:hiddenLabel``: findable, never shown as its name) and
        the withdrawn resources it took over from (``dcterms:replaces``)."""
        entry = self.register.get(kind, ident)
        if entry is None:
            return []
        node = self.iri(kind, ident)
        out = []
        if kind in ("measure", "unit"):
            names = dict.fromkeys(key.rsplit(" ", 1)[-1] if kind == "unit" else key for key in entry.former)
            out += [Triple(node, SKOS.hiddenLabel, Literal(former, language="ja"))
                    for former in names if former != name]
        out += [Triple(node, DCTERMS.replaces, self.iri(kind, old))
                for old in self._predecessors.get((kind, ident), ())]
        return out

    def tombstones(self) -> list[Triple]:
        """A withdrawn resource that others took over from has ``dcterms:isReplacedBy`` and nothing else in the
        data (it answers 410 Gone, with a link to its successors)."""
        return [Triple(self.iri(kind, e.id), DCTERMS.isReplacedBy, self.iri(kind, successor))
                for kind, entries in self.register.entries.items()
                for e in sorted(entries, key=lambda e: e.id) if e.status == WITHDRAWN for successor in e.replaced_by]

    def _strategies(self, out: list[Triple], graph: Graph, strategies: dict[int, Strategy], ids: Assigned) -> None:
        add, lp = out.append, self.lp
        for number in sorted(strategies, key=lambda n: ids.strategy[str(n)]):
            node = self.iri("strategy", ids.strategy[str(number)])
            add(Triple(node, RDF.type, lp.Strategy))
            add(Triple(node, RDFS.label, Literal(strategies[number].title, language="ja")))
            add(Triple(node, SKOS.notation, Literal(f"戦略{number}")))
            out.extend(self.history("strategy", ids.strategy[str(number)]))
            graph.strategies += 1

    def _units(self, out: list[Triple], graph: Graph, units: set[tuple[str, ...]],
               ids: Assigned) -> dict[str, NamedNode]:
        """One node per unit path, parents before children (a parent's ID is always smaller)."""
        add, lp = out.append, self.lp
        nodes: dict[str, NamedNode] = {}
        for unit in sorted(units, key=lambda u: ids.unit[" ".join(u)]):
            key = " ".join(unit)
            node = nodes[key] = self.iri("unit", ids.unit[key])
            add(Triple(node, RDF.type, unit_class(lp, unit)))
            add(Triple(node, RDFS.label, Literal(unit[-1], language="ja")))
            if unit[-1] in self.english:
                add(Triple(node, RDFS.label, Literal(self.english[unit[-1]], language="en")))
            add(Triple(node, lp.level, Literal(str(len(unit)), datatype=XSD.integer)))
            add(Triple(node, ORG.unitOf, nodes[" ".join(unit[:-1])] if len(unit) > 1 else self.government))
            out.extend(self.history("unit", ids.unit[key], unit[-1]))
            graph.units += 1
        return nodes

    def _contacts(self, out: list[Triple], graph: Graph, contacts: set[tuple[str, str]], ids: Assigned,
                  unit_nodes: dict[str, NamedNode]) -> dict[tuple[str, str], NamedNode]:
        add, lp = out.append, self.lp
        nodes: dict[tuple[str, str], NamedNode] = {}
        for unit_path, tel in sorted(contacts, key=lambda c: ids.contact[f"{c[0]} {c[1]}"]):
            node = nodes[unit_path, tel] = self.iri("contact", ids.contact[f"{unit_path} {tel}"])
            add(Triple(node, RDF.type, lp.ContactPoint))
            add(Triple(node, RDFS.label, Literal(national(tel))))
            add(Triple(node, lp.telephone, NamedNode(tel)))
            add(Triple(node, lp.unit, unit_nodes[unit_path]))
            out.extend(self.history("contact", ids.contact[f"{unit_path} {tel}"]))
            graph.contacts += 1
        return nodes

    def _measures(self, graph: Graph, sink: Sink, batch: int, sources: Sequence[SourceFile],
                  measures: Sequence[Measure], ids: Assigned, unit_nodes: dict[str, NamedNode],
                  contact_nodes: dict[tuple[str, str], NamedNode]) -> None:
        """The measures, with their source rows, ``batch`` at a time; this loop emits most of the graph, so
        terms are local."""
        lp = self.lp
        tables = {(t.file, t.index): self.table_iri(t) for s in sources for t in s.tables}
        text_property = {key: lp[key + "Text"] for key in CANONICAL_HEADER}
        text_property["phone"] = lp.telephoneText
        a, label, summary, strategy, responsible, bureau, contact, url, remarks, start, end, source = (
            RDF.type, RDFS.label, lp.summary, lp.strategy, lp.responsibleUnit, lp.bureau, lp.contactPoint,
            lp.url, lp.remarks, lp.startDate, lp.endDate, lp.source)
        measure_class, date = lp.Measure, XSD.date
        row_class, in_table, line = lp.SourceRow, lp.table, lp.line
        strategy_nodes = {int(n): self.iri("strategy", i) for n, i in ids.strategy.items()}
        # A measure's position in a listing ordered by name, then IRI (what SPARQL's ORDER BY ?name ?m gives).
        named = [iris.thing(self.base, "measure", ident) for ident in ids.measure]
        by_name = sorted(range(len(measures)), key=lambda i: (measures[i].name, named[i]))
        named.clear()
        order = {ids.measure[i]: position for position, i in enumerate(by_name, start=1)}
        del by_name
        name_order, integer = lp.nameOrder, XSD.integer
        spatial, find = DCTERMS.spatial, self.places.find
        place_nodes = {p: NamedNode(p.iri(self.base)) for p in self.places.places}
        entries = {e.id: e for e in self.register.entries["measure"]}
        triples: list[Triple] = []
        rows: list[Triple] = []
        add, add_row = triples.append, rows.append
        in_batch = 0
        for m, ident in sorted(zip(measures, ids.measure, strict=True), key=lambda pair: pair[1]):
            node = self.iri("measure", ident)
            graph.records[ident] = Record(m.name, m.row.table.where, m.row.line)
            unit_path = " ".join(m.department)
            add(Triple(node, a, measure_class))
            add(Triple(node, label, Literal(m.name, language="ja")))
            add(Triple(node, name_order, Literal(str(order[ident]), datatype=integer)))
            if (e := entries.get(ident)) is not None and (e.former or ("measure", ident) in self._predecessors):
                triples.extend(self.history("measure", ident, m.name))
            if m.summary:
                add(Triple(node, summary, Literal(m.summary, language="ja")))
            add(Triple(node, strategy, strategy_nodes[m.row.table.strategy.number]))
            add(Triple(node, responsible, unit_nodes[unit_path]))
            add(Triple(node, bureau, unit_nodes[m.department[0]]))
            for tel in m.phones:
                add(Triple(node, contact, contact_nodes[unit_path, tel]))
            for place in find(m.name, m.summary):
                add(Triple(node, spatial, place_nodes[place]))
            if m.url:
                add(Triple(node, url, NamedNode(m.url)))
            if m.remarks:
                add(Triple(node, remarks, Literal(m.remarks)))
            if m.start:
                add(Triple(node, start, Literal(m.start.isoformat(), datatype=date)))
            if m.end:
                add(Triple(node, end, Literal(m.end.isoformat(), datatype=date)))
            for key, text in m.texts.items():
                add(Triple(node, text_property[key], Literal(text)))
            row = NamedNode(node.value + "#source")
            add(Triple(node, source, row))
            add_row(Triple(row, a, row_class))
            add_row(Triple(row, in_table, tables[m.row.table.file, m.row.table.index]))
            add_row(Triple(row, line, Literal(str(m.row.line), datatype=integer)))
            graph.measures += 1
            in_batch += 1
            if in_batch == batch:
                self._hand_on(graph, sink, triples, rows, in_batch)
                in_batch = 0
        if in_batch:
            self._hand_on(graph, sink, triples, rows, in_batch)

    @staticmethod
    def _hand_on(graph: Graph, sink: Sink, triples: list[Triple], rows: list[Triple], count: int) -> None:
        sink.measures(triples, rows, count)
        graph.triples += len(triples) + len(rows)
        triples.clear()
        rows.clear()

    def government_triples(self) -> list[Triple]:
        gov = self.government
        return [Triple(gov, RDF.type, ORG.FormalOrganization),
                Triple(gov, RDFS.label, Literal(GOVERNMENT_JA, language="ja")),
                Triple(gov, RDFS.label, Literal(GOVERNMENT_EN, language="en")),
                Triple(gov, DCTERMS.spatial, SAC.C13000)]

    def place_triples(self) -> list[Triple]:
        """The gazetteer's places: our nodes for 多摩地域 and 島しょ地域, listing their municipalities' e-Stat
        codes, and the names and codes of those (not ours: linked to, never served)."""
        out: list[Triple] = []
        add, g = out.append, self.places
        for place in g.places:
            node = NamedNode(place.iri(self.base))
            # a code is a dcterms:Location (what dcterms:spatial's range entails), a group one of ours
            add(Triple(node, RDF.type, self.lp.Area if place.kind == "group" else DCTERMS.Location))
            add(Triple(node, RDFS.label, Literal(place.name, language="ja")))
            if place.english:
                add(Triple(node, RDFS.label, Literal(place.english, language="en")))
            if place.code:
                add(Triple(node, SKOS.notation, Literal(place.code)))
            else:
                add(Triple(node, DCTERMS.isPartOf, NamedNode(g.prefecture.iri(self.base))))
                out.extend(Triple(node, DCTERMS.hasPart, NamedNode(m.iri(self.base))) for m in g.members(place))
        return out

    def source_iri(self, path: str) -> NamedNode:
        return NamedNode(iris.thing(self.base, "source", source_slug(path)))

    def table_iri(self, table: Table) -> NamedNode:
        return NamedNode(f"{self.source_iri(table.file).value}#table-{table.index}")

    def source_triples(self, source: SourceFile) -> Iterable[Triple]:
        lp = self.lp
        file_node = self.source_iri(source.path)
        yield Triple(file_node, RDF.type, lp.SourceFile)
        yield Triple(file_node, DCTERMS.title, Literal(source.path.replace("\\", "/").rsplit("/", 1)[-1]))
        yield Triple(file_node, lp.sha256, Literal(source.sha256, datatype=XSD.hexBinary))
        yield Triple(file_node, DCAT.byteSize, Literal(str(source.size), datatype=XSD.nonNegativeInteger))
        for table in source.tables:
            t = self.table_iri(table)
            yield Triple(t, RDF.type, lp.SourceTable)
            yield Triple(t, lp.file, file_node)
            yield Triple(t, lp.headerLine, Literal(str(table.header_line), datatype=XSD.integer))
            if table.sheet:  # a workbook's: its lines are the sheet's rows, its columns the sheet's (2 is B)
                yield Triple(t, lp.sheet, Literal(table.sheet))
            for key, number in sorted(table.columns.items(), key=lambda kv: kv[1]):
                column = NamedNode(f"{t.value}-column-{number}")
                yield Triple(t, lp.column, column)
                yield Triple(column, RDF.type, lp.SourceColumn)
                yield Triple(column, lp.columnNumber, Literal(str(number), datatype=XSD.integer))
                yield Triple(column, lp.header, Literal(table.headers[number - 1].strip()))
                for prop in COLUMN_PROPERTIES[key]:
                    yield Triple(column, lp.property, lp[prop] if ":" not in prop else RDFS.label)


# The properties whose values are read from each column.
COLUMN_PROPERTIES: dict[str, tuple[str, ...]] = {
    "name": ("rdfs:label", "nameText"),
    "summary": ("summary", "summaryText"),
    "department": ("responsibleUnit", "bureau", "departmentText"),
    "phone": ("contactPoint", "telephoneText"),
    "url": ("url", "urlText"),
    "remarks": ("remarks", "remarksText", "startDate", "endDate"),
}
