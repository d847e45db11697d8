"""JSON-LD for people without RDF tools: one object per measure, its context inline.

Written straight from the mapped triples with a hand-kept context, one node
object per line, so the file is readable with ``jq``, streamable, and fast to
write at 100,000 measures. Each measure embeds its strategy, its whole unit
chain up to the government, its contact points and its source row; the other
resources (strategies, source files and tables) follow as objects of their own.

The context is written into the document itself, not named by a URL: a downloaded
copy is read by pyld or jsonld.js offline, and wherever the publisher's host is not
(yet) serving it. The same context is published beside it as ``context.jsonld``, for
those who write their own documents with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import pyoxigraph as ox

from lodpub import iris
from lodpub.vocab import DCAT, DCTERMS, ORG, RDF, RDFS, SKOS, XSD, lodpub

# term → (property IRI (lp: local name, or prefixed standard), how values are written)
#   id: an IRI string; lang: a string in Japanese; langmap: {"ja": …, "en": …};
#   str: a plain string; int: a JSON number; typed:<xsd type>: a string of that type
TERMS: dict[str, tuple[str, str]] = {
    "label": ("rdfs:label", "langmap"),
    "summary": ("lp:summary", "lang"),
    "strategy": ("lp:strategy", "id"),
    "responsibleUnit": ("lp:responsibleUnit", "id"),
    "bureau": ("lp:bureau", "id"),
    "contactPoint": ("lp:contactPoint", "id-set"),
    "url": ("lp:url", "id"),
    "remarks": ("lp:remarks", "str"),
    "startDate": ("lp:startDate", "typed:date"),
    "endDate": ("lp:endDate", "typed:date"),
    "nameOrder": ("lp:nameOrder", "int"),
    "nameText": ("lp:nameText", "str"),
    "summaryText": ("lp:summaryText", "str"),
    "departmentText": ("lp:departmentText", "str"),
    "telephoneText": ("lp:telephoneText", "str"),
    "urlText": ("lp:urlText", "str"),
    "remarksText": ("lp:remarksText", "str"),
    "source": ("lp:source", "id"),
    "unitOf": ("org:unitOf", "id"),
    "level": ("lp:level", "int"),
    "telephone": ("lp:telephone", "id"),
    "unit": ("lp:unit", "id"),
    "notation": ("skos:notation", "str"),
    "spatial": ("dcterms:spatial", "id-set"),
    "hasPart": ("dcterms:hasPart", "id-set"),
    "isPartOf": ("dcterms:isPartOf", "id"),
    "title": ("dcterms:title", "str"),
    "sha256": ("lp:sha256", "typed:hexBinary"),
    "byteSize": ("dcat:byteSize", "typed:nonNegativeInteger"),
    "table": ("lp:table", "id"),
    "line": ("lp:line", "int"),
    "file": ("lp:file", "id"),
    "headerLine": ("lp:headerLine", "int"),
    "column": ("lp:column", "id-set"),
    "columnNumber": ("lp:columnNumber", "int"),
    "header": ("lp:header", "str"),
    "property": ("lp:property", "id-set"),
    "hiddenLabel": ("skos:hiddenLabel", "lang"),
    "replaces": ("dcterms:replaces", "id-set"),
    "isReplacedBy": ("dcterms:isReplacedBy", "id-set"),
}
CLASSES = ("Measure", "Strategy", "OrganizationalUnit", "Bureau", "Division", "Section", "ContactPoint",
           "SourceFile", "SourceTable", "SourceColumn", "SourceRow", "Area")
# What a referring object embeds rather than names: (property term) → embed?
EMBED = {"strategy", "responsibleUnit", "contactPoint", "source", "unitOf", "column"}
# Resources that live inside others and so get no top-level object of their own.
EMBEDDED_KINDS = ("unit", "contact")

_PREFIXES = {"rdfs": str(RDFS), "org": str(ORG), "skos": str(SKOS), "dcterms": str(DCTERMS),
             "dcat": str(DCAT), "xsd": str(XSD)}


def context(base: str) -> dict[str, Any]:
    """The published ``context.jsonld``."""
    lp = str(lodpub(base))
    ctx: dict[str, Any] = {"@version": 1.1, "id": "@id", "type": "@type", "lp": lp, **_PREFIXES,
                           "FormalOrganization": "org:FormalOrganization", "Location": "dcterms:Location"}
    for name in CLASSES:
        ctx[name] = "lp:" + name
    for term, (prop, kind) in TERMS.items():
        definition: dict[str, Any] = {"@id": prop}
        if kind.startswith("id"):
            definition["@type"] = "@id"
        if kind == "id-set":
            definition["@container"] = "@set"
        elif kind == "lang":
            definition["@language"] = "ja"
        elif kind == "langmap":
            definition["@container"] = "@language"
        elif kind.startswith("typed:"):
            definition["@type"] = "xsd:" + kind.split(":", 1)[1]
        ctx[term] = definition if len(definition) > 1 else prop
    return {"@context": ctx}


def _expand(prefixed: str, lp: str) -> str:
    prefix, local = prefixed.split(":", 1)
    return (lp if prefix == "lp" else _PREFIXES[prefix]) + local


class _Writer:
    """Renders node objects from the triples of the subjects it knows (all of them, or the shared ones and one
    batch of measures at a time)."""

    def __init__(self, base: str):
        self.lp = str(lodpub(base))
        self.base = base
        self.by_property = {_expand(prop, self.lp): (term, kind) for term, (prop, kind) in TERMS.items()}
        self.class_terms = {self.lp + name: name for name in CLASSES}
        self.class_terms[ORG.FormalOrganization.value] = "FormalOrganization"
        self.class_terms[DCTERMS.Location.value] = "Location"
        self.subjects: dict[str, list[ox.Triple]] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self.rdf_type = RDF.type.value
        self.measures = iris.space(base, "measure")
        self.embedded_prefixes = tuple(iris.space(base, kind) for kind in EMBEDDED_KINDS)
        self.compact_property = {self.lp: "lp:", **{v: k + ":" for k, v in _PREFIXES.items()}}

    def add(self, triples: Iterable[ox.Triple]) -> list[str]:
        """Know ``triples``; return the subjects first seen among them, in order."""
        new = []
        subjects = self.subjects
        for t in triples:
            s = t.subject.value
            own = subjects.get(s)
            if own is None:
                own = subjects[s] = []
                new.append(s)
            own.append(t)
        return new

    def shared(self, iri: str) -> bool:
        """Units, contacts, strategies and the government recur in many measures: rendered once."""
        return not iri.startswith(self.measures) and "#" not in iri

    def top(self, iri: str) -> bool:
        """Whether ``iri`` gets an object of its own at the top of the document."""
        own = self.subjects[iri]
        if "#" in iri and iri.startswith(self.measures):
            return False  # a source row, embedded in its measure
        first = own[0]
        if (iri.startswith(self.embedded_prefixes) and first.predicate.value == self.rdf_type) or "-column-" in iri:
            return False  # a unit or contact point, embedded where it is named (a withdrawn one stands alone)
        # the government, embedded at the top of every unit chain
        return not (first.predicate.value == self.rdf_type and first.object.value.endswith("FormalOrganization"))

    def node(self, iri: str) -> dict[str, Any]:
        if iri in self.done:
            return self.done[iri]
        out: dict[str, Any] = {"id": iri}
        rdf_type = self.rdf_type
        for t in self.subjects.get(iri, ()):
            p = t.predicate.value
            if p == rdf_type:
                self._put(out, "type", self.class_terms.get(t.object.value, t.object.value), many=False)
                continue
            o = t.object
            if p not in self.by_property:  # a property the context has no term for (lp:sheet, of workbooks only)
                self._put(out, self._compact(p), _value_object(o), many=False)
                continue
            term, kind = self.by_property[p]
            if kind.startswith("id"):
                value: Any = o.value
                if term == "property":
                    value = self._compact(value)
                elif term in EMBED and value in self.subjects:
                    value = self.node(value)
                self._put(out, term, value, many=kind == "id-set")
            elif kind == "langmap":
                out.setdefault(term, {})[o.language or "@none"] = o.value
            elif kind == "int":
                self._put(out, term, int(o.value), many=False)
            else:
                self._put(out, term, o.value, many=False)
        if self.shared(iri):
            self.done[iri] = out
        return out

    def _compact(self, iri: str) -> str:
        for ns, prefix in self.compact_property.items():
            if iri.startswith(ns):
                return prefix + iri[len(ns):]
        return iri

    @staticmethod
    def _put(out: dict[str, Any], term: str, value: Any, many: bool) -> None:
        if term not in out:
            out[term] = [value] if many else value
        elif isinstance(out[term], list):
            out[term].append(value)
        else:
            out[term] = [out[term], value]


def _value_object(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Any:
    """A term as JSON-LD says it without a context's help."""
    if isinstance(term, ox.Literal):
        if term.language:
            return {"@value": term.value, "@language": term.language}
        return term.value if term.datatype == XSD.string else {"@value": term.value, "@type": term.datatype.value}
    return {"@id": term.value if isinstance(term, ox.NamedNode) else f"_:{term.value}"}


class Document:
    """The JSON-LD document, written as the graph comes in publishing order: header, one node object per line,
    footer. The shared resources (``shared``: all but the measures and their source rows) are kept to be
    embedded; each batch of whole measures with their source rows (``measures``) is written at once and
    forgotten, so the document takes the memory of one batch, whatever the number of measures. The objects
    come in the order their subjects first appear, as ``write_document`` gives them for the whole graph."""

    def __init__(self, out: TextIO, base: str):
        self.out = out
        self.writer = _Writer(base)
        self.pending: list[str] = []  # shared subjects to be written before whatever comes next
        self.first = True
        self.encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        inline = json.dumps(context(base)["@context"], ensure_ascii=False, separators=(",", ":"))
        out.write(f'{{\n"@context": {inline},\n"@graph": [\n')

    def shared(self, triples: Iterable[ox.Triple]) -> None:
        self.pending += self.writer.add(triples)

    def measures(self, triples: Iterable[ox.Triple]) -> int:
        """Write these measures (with their source rows); return how many subjects they have."""
        self._flush()
        new = self.writer.add(triples)
        self._write(new)
        for iri in new:
            del self.writer.subjects[iri]
        return len(new)

    def close(self) -> None:
        self._flush()
        self.out.write("\n]\n}\n" if not self.first else "]\n}\n")

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        self._write(pending)

    def _write(self, subjects: Sequence[str]) -> None:
        writer, write, encode = self.writer, self.out.write, self.encode
        for iri in subjects:
            if writer.top(iri):
                write(encode(writer.node(iri)) if self.first else ",\n" + encode(writer.node(iri)))
                self.first = False


def write_document(out: TextIO, triples: Sequence[ox.Triple], base: str) -> None:
    """The JSON-LD document of a whole graph held in memory."""
    document = Document(out, base)
    document.shared(triples)
    document.close()


def to_triples(document: Any, base: str) -> list[ox.Triple]:
    """Parse a JSON-LD document with pyld, without a network (our published context is served from here, for
    documents that name it)."""
    from pyld import jsonld as pyld  # type: ignore[import-untyped]

    local = {f"{base}data/context.jsonld": context(base)}

    def loader(url: str, options: dict | None = None) -> dict[str, Any]:
        if url in local:
            return {"contentType": "application/ld+json", "contextUrl": None,
                    "documentUrl": url, "document": local[url]}
        raise pyld.JsonLdError(f"lodpub loads no remote documents: {url}", "loading document failed")

    nquads = pyld.to_rdf(document, {"format": "application/n-quads", "documentLoader": loader})
    return [q.triple for q in ox.parse(nquads.encode("utf-8"), format=ox.RdfFormat.N_QUADS)]
