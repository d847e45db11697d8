"""SHACL validation with pyshacl, in parallel chunks, reported in a data steward's words.

SHACL checks each focus node against its neighbourhood, so the graph can be cut
into pieces that are validated independently: every piece holds the shared
resources (government, strategies, units, contacts, sources) and a slice of the
measures with their source rows. Pieces run in worker processes, sent to them as
N-Triples one at a time (a build sends each as soon as the mapping has written
it, so that validation runs beside the mapping and no stage holds the graph);
findings about the shared resources, seen by every piece, are counted once.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import resource
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyoxigraph as ox
import rdflib
from pyshacl import validate as pyshacl_validate
from rdflib.namespace import RDF as R_RDF
from rdflib.namespace import RDFS as R_RDFS
from rdflib.namespace import SH as R_SH

from lodpub.resources import ONTOLOGY, SHAPES, resource_path
from lodpub.vocab import RDF, SH, XSD

CHUNK_MEASURES = 4000


@dataclass(frozen=True, order=True)
class Finding:
    """One SHACL result, with every term as N-Triples text so it travels between processes."""

    severity: str  # Violation, Warning, Info
    focus: str
    path: str
    value: str
    component: str
    shape: str
    message_ja: str
    message_en: str

    @property
    def is_violation(self) -> bool:
        return self.severity == "Violation"


# ---------------------------------------------------------------- term conversion

_XSD_STRING = XSD.string.value


def to_rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple,
              cache: dict[str, rdflib.URIRef]) -> rdflib.term.Identifier:
    if isinstance(term, ox.NamedNode):
        return _iri(term.value, cache)
    if isinstance(term, ox.Literal):
        if term.language:
            return rdflib.Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        if datatype == _XSD_STRING:
            return rdflib.Literal(term.value)
        return rdflib.Literal(term.value, datatype=_iri(datatype, cache))
    if isinstance(term, ox.BlankNode):
        return rdflib.BNode(term.value)
    raise TypeError(f"a quoted triple has no place in lodpub's data: {term}")


def _iri(value: str, cache: dict[str, rdflib.URIRef]) -> rdflib.URIRef:
    node = cache.get(value)
    if node is None:
        node = cache[value] = rdflib.URIRef(value)
    return node


def rdflib_graph(triples: Iterable[ox.Triple], extra: Iterable[tuple] = ()) -> rdflib.Graph:
    graph = rdflib.Graph()
    cache: dict[str, rdflib.URIRef] = {}
    literals: dict[tuple[str, str | None, str], rdflib.Literal] = {}
    add = _bulk_adder(graph)
    for t in triples:
        o = t.object
        if isinstance(o, ox.Literal):  # many recur (department and telephone texts, remarks, dates)
            key = (o.value, o.language, o.datatype.value)
            term = literals.get(key)
            if term is None:
                term = literals[key] = to_rdflib(o, cache)
        else:
            term = to_rdflib(o, cache)
        add((to_rdflib(t.subject, cache), to_rdflib(t.predicate, cache), term))
    for extra_triple in extra:
        add(extra_triple)
    return graph


_MEMORY = ("_Memory__spo", "_Memory__pos", "_Memory__osp", "_Memory__contextTriples", "_Memory__tripleContexts",
           "_Memory__all_contexts", "_Memory__defaultContexts")


def _bulk_adder(graph: rdflib.Graph) -> Callable[[tuple], None]:
    """What adds a triple to a new, empty ``graph`` the way ``graph.add`` does, without what ``add`` does per
    triple that a graph built once for a validation does not need (an event sent to no one, the bookkeeping of
    contexts other than the graph itself): building the graph cost pyshacl's piece more than validating it.
    rdflib's in-memory store is filled as its own ``add`` fills it; where it is not that store (another rdflib),
    ``graph.add`` itself."""
    store = graph.store
    if type(store).__name__ != "Memory" or not all(hasattr(store, name) for name in _MEMORY) or len(graph):
        return graph.add
    spo, pos, osp = store._Memory__spo, store._Memory__pos, store._Memory__osp  # type: ignore[attr-defined]
    context = store._Memory__ctx_to_str(graph)  # type: ignore[attr-defined]
    store._Memory__all_contexts.add(graph)  # type: ignore[attr-defined]
    if store._Memory__defaultContexts is None:  # type: ignore[attr-defined]
        store._Memory__defaultContexts = {context: False, None: False}  # type: ignore[attr-defined]
    if store._Memory__defaultContexts != {context: False, None: False}:  # type: ignore[attr-defined]
        return graph.add
    in_default = store._Memory__contextTriples[None]  # type: ignore[attr-defined]
    in_graph = store._Memory__contextTriples.setdefault(context, set())  # type: ignore[attr-defined]

    def add(triple: tuple) -> None:
        s, p, o = triple
        objects = spo.setdefault(s, {}).setdefault(p, {})
        if o in objects:
            return
        objects[o] = 1
        pos.setdefault(p, {}).setdefault(o, {})[s] = 1
        osp.setdefault(o, {}).setdefault(s, {})[p] = 1
        in_default.add(triple)
        in_graph.add(triple)
    return add


# ---------------------------------------------------------------- shapes

def load_turtle_text(text: str, base: str) -> rdflib.Graph:
    """Parse our Turtle files, whose IRIs are relative to the base IRI."""
    graph = rdflib.Graph()
    graph.parse(data=text, format="turtle", publicID=base)
    return graph


class Rules:
    """The shapes, and the subclass links among our classes that ``sh:class`` needs to see."""

    def __init__(self, shapes_text: str, ontology_text: str, base: str):
        self.texts = (shapes_text, ontology_text, base)
        self.shapes = load_turtle_text(shapes_text, base)
        ontology = load_turtle_text(ontology_text, base)
        self.axioms = [(s, R_RDFS.subClassOf, o) for s, o in ontology.subject_objects(R_RDFS.subClassOf)
                       if isinstance(o, rdflib.URIRef)]

    @classmethod
    def load(cls, base: str) -> Rules:
        return cls(resource_path(*SHAPES).read_text(encoding="utf-8"),
                   resource_path(*ONTOLOGY).read_text(encoding="utf-8"), base)

    def check(self, triples: Iterable[ox.Triple]) -> list[Finding]:
        return run_pyshacl(rdflib_graph(triples, self.axioms), self.shapes)


# ---------------------------------------------------------------- running pyshacl

def run_pyshacl(data: rdflib.Graph, shapes: rdflib.Graph) -> list[Finding]:
    _, results, _ = pyshacl_validate(
        data, shacl_graph=shapes, inference="none", allow_warnings=True,
        advanced=False, meta_shacl=False, js=False, debug=False, inplace=True,
    )
    findings = []
    for result in results.subjects(R_RDF.type, R_SH.ValidationResult):
        term = {p: results.value(result, p) for p in (R_SH.focusNode, R_SH.resultPath, R_SH.value,
                                                     R_SH.sourceConstraintComponent, R_SH.sourceShape)}
        text = {p: "" if v is None or (isinstance(v, rdflib.BNode) and p != R_SH.value) else v.n3()
                for p, v in term.items()}
        messages = {m.language: str(m) for m in results.objects(result, R_SH.resultMessage)
                    if isinstance(m, rdflib.Literal)}
        severity = results.value(result, R_SH.resultSeverity)
        findings.append(Finding(
            severity=str(severity).rsplit("#", 1)[-1], focus=text[R_SH.focusNode],
            path=text[R_SH.resultPath], value=text[R_SH.value],
            component=text[R_SH.sourceConstraintComponent], shape=text[R_SH.sourceShape],
            message_ja=messages.get("ja", ""),
            message_en=messages.get("en", messages.get(None, "")),
        ))
    return findings


# A worker process parses the rules once, then validates pieces sent to it as N-Triples:
# small messages, and no copy of the parent's whole graph in every worker.
_WORKER_RULES: list[Rules] = []


def _start_worker(shapes_text: str, ontology_text: str, base: str) -> None:
    _WORKER_RULES.append(Rules(shapes_text, ontology_text, base))


def _check_piece(core: bytes, piece: bytes) -> tuple[list[Finding], float]:
    """Findings for one piece, and this worker's peak memory (MiB) so far."""
    findings = _WORKER_RULES[0].check(_parsed(core, piece))
    return findings, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _check_task(task: tuple[bytes, bytes]) -> tuple[list[Finding], float, int, float]:
    """``_check_piece``, and which worker answered and the CPU time it has taken so far."""
    findings, peak = _check_piece(*task)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return findings, peak, os.getpid(), usage.ru_utime + usage.ru_stime


def _parsed(core: bytes, piece: bytes) -> Iterator[ox.Triple]:
    return (q.triple for data in (core, piece) for q in ox.parse(data, format=ox.RdfFormat.N_TRIPLES))


def split(triples: Sequence[ox.Triple], chunked_prefix: str, size: int) -> tuple[list, list[list]]:
    """Shared triples, and the chunked resources' triples in pieces of ``size`` resources."""
    core: list[ox.Triple] = []
    owners: dict[str, list[ox.Triple]] = {}
    for t in triples:
        subject = t.subject.value if isinstance(t.subject, ox.NamedNode) else ""
        if subject.startswith(chunked_prefix):
            owners.setdefault(subject.split("#", 1)[0], []).append(t)
        else:
            core.append(t)
    groups = list(owners.values())
    pieces = [[t for g in groups[i:i + size] for t in g] for i in range(0, len(groups), size)]
    return core, pieces or [[]]


def _nt(part: Sequence[ox.Triple]) -> bytes:
    return ox.serialize(part, format=ox.RdfFormat.N_TRIPLES) or b""  # bytes, as no output is given


def validate(triples: Sequence[ox.Triple], rules: Rules, chunked_prefix: str, workers: int | None = None,
             size: int = CHUNK_MEASURES, stats: dict[str, float] | None = None) -> list[Finding]:
    """All findings for the graph, sorted and without duplicates.

    ``stats``, when given, receives ``workers_peak_mib``: the largest worker's peak memory.
    """
    core, pieces = split(triples, chunked_prefix, size)
    if (workers or os.cpu_count() or 1) <= 1 or len(pieces) <= 1:
        return sorted({f for piece in pieces for f in rules.check(itertools.chain(core, piece))})
    return check(_nt(core), _Serialized(pieces), rules, workers, stats)


class _Serialized:
    def __init__(self, pieces: list[list[ox.Triple]]):
        self.pieces = pieces

    def __len__(self) -> int:
        return len(self.pieces)

    def __iter__(self) -> Iterator[bytes]:
        return (_nt(piece) for piece in self.pieces)


class Pieces(Protocol):
    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[bytes]: ...


def check(core: bytes, pieces: Pieces, rules: Rules, workers: int | None = None,
          stats: dict[str, float] | None = None, cancel: threading.Event | None = None) -> list[Finding]:
    """All findings for a graph given as N-Triples: ``core`` (the shared resources, validated with every piece)
    and ``pieces`` (read one at a time: a few are in flight, however many there are; they may still be being
    written), sorted and without duplicates. ``stats``, when given, receives ``workers_peak_mib`` (the largest
    worker's peak memory) and ``workers_cpu_seconds`` (the CPU time the workers took). ``cancel``, once set,
    stops it soon (with what was found so far)."""
    workers = min(workers or os.cpu_count() or 1, len(pieces))
    cancel = cancel or threading.Event()
    if workers <= 1:
        found_here: set[Finding] = set()
        for piece in pieces:
            if cancel.is_set():
                break
            found_here.update(rules.check(_parsed(core, piece)))
        return sorted(found_here)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    room = threading.Semaphore(2 * workers)  # pieces read and not yet answered
    stop = threading.Event()

    def tasks() -> Iterator[tuple[bytes, bytes]]:
        for piece in pieces:
            while not room.acquire(timeout=0.1):
                if stop.is_set() or cancel.is_set():
                    return
            if stop.is_set() or cancel.is_set():
                return
            yield core, piece

    found: set[Finding] = set()
    peak = 0.0
    cpu: dict[int, float] = {}
    with context.Pool(workers, initializer=_start_worker, initargs=rules.texts) as pool:
        try:
            for findings, worker_peak, pid, worker_cpu in pool.imap_unordered(_check_task, tasks()):
                room.release()
                found.update(findings)
                peak = max(peak, worker_peak)
                cpu[pid] = max(cpu.get(pid, 0.0), worker_cpu)
        finally:
            stop.set()  # the pool's feeder may wait for room that no answer will make now
    if stats is not None:
        stats["workers_peak_mib"] = peak
        stats["workers_cpu_seconds"] = sum(cpu.values())
    return sorted(found)


# ---------------------------------------------------------------- reporting

def describe_findings(findings: Sequence[Finding], describe: Callable[[str], str]) -> list[str]:
    """Each finding as a sentence: which resource (and source line), which field, what is wrong."""
    lines = []
    for f in findings:
        focus = describe(f.focus[1:-1] if f.focus.startswith("<") else f.focus)
        field = f.path.rsplit("#", 1)[-1].rsplit("/", 1)[-1].rstrip(">") if f.path else ""
        message = f.message_ja or f.message_en
        if f.message_en and f.message_ja:
            message = f"{f.message_ja} {f.message_en}"
        value = f" (value: {f.value})" if f.value else ""
        lines.append(f"{f.severity.lower()}: {focus}: {field}: {message}{value}")
    return lines


def report_triples(findings: Sequence[Finding]) -> list[ox.Triple]:
    """The SHACL validation report as RDF, with stable blank node labels."""
    report = ox.BlankNode("report")
    conforms = not any(f.is_violation for f in findings)
    out = [ox.Triple(report, RDF.type, SH.ValidationReport),
           ox.Triple(report, SH.conforms, ox.Literal(str(conforms).lower(), datatype=XSD.boolean))]
    for n, f in enumerate(findings, start=1):
        node = ox.BlankNode(f"result{n}")
        out += [ox.Triple(report, SH.result, node), ox.Triple(node, RDF.type, SH.ValidationResult),
                ox.Triple(node, SH.resultSeverity, SH[f.severity])]
        for predicate, text in ((SH.focusNode, f.focus), (SH.resultPath, f.path), (SH.value, f.value),
                                (SH.sourceConstraintComponent, f.component), (SH.sourceShape, f.shape)):
            if text and not text.startswith("_:"):
                out.append(ox.Triple(node, predicate, _parse_term(text)))
        for text, language in ((f.message_ja, "ja"), (f.message_en, "en")):
            if text:
                out.append(ox.Triple(node, SH.resultMessage, ox.Literal(text, language=language)))
    return out


def _parse_term(text: str) -> ox.NamedNode | ox.Literal:
    try:
        return next(ox.parse(f"<x:s> <x:p> {text} .".encode(), format=ox.RdfFormat.TURTLE)).object
    except (SyntaxError, ValueError, StopIteration):
        return ox.Literal(text)
