"""What changed from one edition to the next: resources added, withdrawn, renamed and changed.

Both editions' N-Triples dumps are sorted, so the difference is one merge of two sorted files: only the lines
that differ are kept, grouped by the resource they describe. What the build derives rather than reads
(``lp:nameOrder``, a listing's positions, which move when any name is inserted) and the provenance of rows
(``#source`` lines, source files) are left out: a row that moved is not a changed measure. A resource whose
``rdf:type`` appears is added, one whose type goes is withdrawn (with the successors the register names), one
whose ``rdfs:label`` changed is renamed, any other is changed; each change lists its properties with their
old and new values. Published as change sets in the Changeset vocabulary (``changes.ttl``) and in the Atom
feed of editions (``changes.atom``).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from lodpub import iris, snapshots
from lodpub.vocab import DCTERMS, RDF, RDFS, SKOS, XSD, Namespace, lodpub

CS = Namespace("http://purl.org/vocab/changeset/schema#")
TYPE = RDF.type.value
KINDS = tuple(kind for kind in iris.KINDS if kind != "source")  # the resources whose changes are told, in that order
ORDER = {"added": 0, "renamed": 1, "changed": 2, "withdrawn": 3}
CHANGE_TYPES = {"added": "Added", "withdrawn": "Withdrawn", "renamed": "Renamed", "changed": "Changed"}
WORDS = {"added": ("追加", "added"), "renamed": ("名称変更", "renamed"), "changed": ("変更", "changed"),
         "withdrawn": ("取り下げ", "withdrawn")}  # each kind of change in Japanese and English


@dataclass(frozen=True)
class PropertyChange:
    predicate: str
    old: tuple[ox.NamedNode | ox.Literal, ...]
    new: tuple[ox.NamedNode | ox.Literal, ...]


@dataclass(frozen=True)
class Change:
    iri: str
    kind: str  # measure, unit, contact, strategy, org
    type: str  # added, withdrawn, renamed, changed
    label: str  # its name now (its last name, if withdrawn)
    properties: tuple[PropertyChange, ...] = ()
    successors: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        number = self.iri.rsplit("/", 1)[-1]
        return (KINDS.index(self.kind), ORDER[self.type], int(number) if number.isdigit() else 0, self.iri)


def _differing(old: Path, new: Path) -> Iterator[tuple[bool, bytes]]:
    """(is new, line) for each line in one sorted file and not in the other."""
    def lines(path: Path, tag: int) -> Iterator[tuple[bytes, int]]:
        with path.open("rb") as fh:
            for line in fh:
                yield line, tag
    previous: tuple[bytes, int] | None = None
    for line, tag in heapq.merge(lines(old, 0), lines(new, 1)):
        if previous is not None:
            if previous[0] == line:  # in both
                previous = None
                continue
            yield previous[1] == 1, previous[0]
        previous = (line, tag)
    if previous is not None:
        yield previous[1] == 1, previous[0]


@dataclass(frozen=True)
class Delta:
    """The lines of one dump that are not in the other: what an edition removed and added."""

    removed: list[bytes]
    added: list[bytes]

    def subjects(self, predicates: tuple[str, ...]) -> set[str]:
        """The subjects of the differing lines with one of ``predicates``."""
        wanted = tuple(f"> <{p}> ".encode() for p in predicates)
        return {line[1:line.index(b">")].decode() for line in (*self.removed, *self.added)
                if any(w in line for w in wanted)}


def diff(old: Path, new: Path) -> Delta:
    """Every line of the sorted dump ``old`` that is not in ``new``, and the other way round."""
    removed: list[bytes] = []
    added: list[bytes] = []
    for is_new, line in _differing(old, new):
        (added if is_new else removed).append(line)
    return Delta(removed, added)


def between(delta: Delta, new: Path, base: str) -> list[Change]:
    """The changes an edition made (``delta`` from the edition before; ``new``: its dump)."""
    ours = f"<{iris.space(base)}".encode()
    derived = f"<{lodpub(base).nameOrder.value}>".encode()
    removed: dict[str, list[bytes]] = defaultdict(list)
    added: dict[str, list[bytes]] = defaultdict(list)
    for is_new, line in [(False, line) for line in delta.removed] + [(True, line) for line in delta.added]:
        if not line.startswith(ours) or derived in line:
            continue
        subject = line[1:line.index(b">")].decode()
        if "#" in subject or subject.startswith(iris.space(base, "source")):
            continue  # provenance: rows, tables and files change place with every edit
        (added if is_new else removed)[subject].append(line)
    changes = []
    for iri in sorted(set(removed) | set(added)):
        gone, came = _triples(removed.get(iri, [])), _triples(added.get(iri, []))
        kind = iri[len(base) + 3:].split("/", 1)[0]
        type_gone = any(t.predicate.value == TYPE for t in gone)
        type_came = any(t.predicate.value == TYPE for t in came)
        if type_came and not type_gone:
            changes.append(Change(iri, kind, "added", _label(came)))
        elif type_gone and not type_came:
            successors = tuple(t.object.value for t in came if t.predicate == DCTERMS.isReplacedBy)
            changes.append(Change(iri, kind, "withdrawn", _label(gone), successors=successors))
        elif properties := _properties(gone, came):
            renamed = any(p.predicate == RDFS.label.value for p in properties)
            label = _label(came) or _label(snapshots.statements(new, iri))
            changes.append(Change(iri, kind, "renamed" if renamed else "changed", label, properties))
    return sorted((c for c in changes if c.kind in KINDS), key=lambda c: c.key)


def _triples(lines: list[bytes]) -> list[ox.Triple]:
    return [q.triple for q in ox.parse(b"".join(lines), format=ox.RdfFormat.N_TRIPLES)] if lines else []


def _label(triples: list[ox.Triple]) -> str:
    labels = {t.object.language if isinstance(t.object, ox.Literal) else None: t.object.value
              for t in triples if t.predicate == RDFS.label}
    return labels.get("ja") or labels.get(None) or next(iter(labels.values()), "")


def _properties(gone: list[ox.Triple], came: list[ox.Triple]) -> tuple[PropertyChange, ...]:
    """Property by property, old values against new; a former name recorded is bookkeeping, not a change."""
    old: dict[str, list] = defaultdict(list)
    new: dict[str, list] = defaultdict(list)
    for t in gone:
        old[t.predicate.value].append(t.object)
    for t in came:
        new[t.predicate.value].append(t.object)
    skip = {SKOS.hiddenLabel.value, DCTERMS.isReplacedBy.value}
    return tuple(PropertyChange(p, tuple(sorted(old.get(p, []), key=str)), tuple(sorted(new.get(p, []), key=str)))
                 for p in sorted(set(old) | set(new)) if p not in skip)


# ------------------------------------------------------------------ as data

def triples(changes: list[Change], edition: ox.NamedNode, issued: str, base: str) -> list[ox.Triple]:
    """The change sets of ``edition``, one per resource, with reified removals and additions."""
    lp = lodpub(base)
    when = ox.Literal(issued if "T" in issued else issued + "T00:00:00Z", datatype=XSD.dateTime)
    out: list[ox.Triple] = []
    add = out.append
    for change in changes:
        node = ox.NamedNode(f"{edition.value}#{change.kind}-{change.iri.rsplit('/', 1)[-1]}")
        subject = ox.NamedNode(change.iri)
        add(ox.Triple(node, RDF.type, CS.ChangeSet))
        add(ox.Triple(node, CS.subjectOfChange, subject))
        add(ox.Triple(node, lp.changeType, lp[CHANGE_TYPES[change.type]]))
        add(ox.Triple(node, DCTERMS.isPartOf, edition))
        add(ox.Triple(node, CS.createdDate, when))
        if change.label:
            add(ox.Triple(node, RDFS.label, ox.Literal(change.label, language="ja")))
        for successor in change.successors:
            add(ox.Triple(subject, DCTERMS.isReplacedBy, ox.NamedNode(successor)))
        n = 0
        for prop in change.properties:
            for link, values in ((CS.removal, prop.old), (CS.addition, prop.new)):
                for value in values:
                    n += 1
                    statement = ox.NamedNode(f"{node.value}-{n}")
                    add(ox.Triple(node, link, statement))
                    add(ox.Triple(statement, RDF.type, RDF.Statement))
                    add(ox.Triple(statement, RDF.subject, subject))
                    add(ox.Triple(statement, RDF.predicate, ox.NamedNode(prop.predicate)))
                    add(ox.Triple(statement, RDF.object, value))
    return out


def read(path: Path, base: str) -> list[Change]:
    """The changes an edition's ``changes.ttl`` states (the inverse of ``triples``)."""
    if not path.exists():
        return []
    lp = lodpub(base)
    types = {lp[name].value: key for key, name in CHANGE_TYPES.items()}
    about: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for quad in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
        about[quad.subject.value][quad.predicate.value].append(quad.object)
    about = dict(about)
    changes = []
    for props in about.values():
        if CS.ChangeSet not in props.get(TYPE, []):
            continue
        iri = props[CS.subjectOfChange.value][0].value
        kind = iri[len(base) + 3:].split("/", 1)[0]
        old: dict[str, list] = defaultdict(list)
        new: dict[str, list] = defaultdict(list)
        for link, into in ((CS.removal.value, old), (CS.addition.value, new)):
            for statement in props.get(link, []):
                s = about.get(statement.value, {})
                if RDF.predicate.value not in s:
                    continue
                into[s[RDF.predicate.value][0].value].append(s[RDF.object.value][0])
        properties = tuple(PropertyChange(p, tuple(sorted(old.get(p, []), key=str)),
                                          tuple(sorted(new.get(p, []), key=str))) for p in sorted(set(old) | set(new)))
        label = props.get(RDFS.label.value, [ox.Literal("")])[0].value
        successors = tuple(sorted(o.value for o in about.get(iri, {}).get(DCTERMS.isReplacedBy.value, [])))
        changes.append(Change(iri, kind, types[props[lp.changeType.value][0].value], label, properties, successors))
    return sorted((c for c in changes if c.kind in KINDS), key=lambda c: c.key)


def counts(changes: list[Change]) -> dict[str, int]:
    """How many measures were added, renamed, changed and withdrawn, and how many other resources changed."""
    out = dict.fromkeys(ORDER, 0)
    others = 0
    for c in changes:
        if c.kind == "measure":
            out[c.type] += 1
        else:
            others += 1
    return {**out, "other": others}
