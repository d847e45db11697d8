"""JSON-LD for people without RDF tools: one object per measure, its context beside it.

Written straight from the mapped triples with a hand-kept context, one node
object per line, so the file is readable with ``jq``, streamable, and fast to
write at 100,000 measures. Each measure embeds its strategy, its whole unit
chain up to the government, its contact points and its source row; the other
resources (strategies, source files and tables) follow as objects of their own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
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
    "spatial": ("dcterms:spatial", "id"),
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
           "SourceFile", "SourceTable", "SourceColumn", "SourceRow")
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
                           "FormalOrganization": "org:FormalOrganization"}
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
    def __init__(self, triples: Sequence[ox.Triple], base: str):
        self.lp = str(lodpub(base))
        self.base = base
        self.by_property = {_expand(prop, self.lp): (term, kind) for term, (prop, kind) in TERMS.items()}
        self.class_terms = {self.lp + name: name for name in CLASSES}
        self.class_terms[ORG.FormalOrganization.value] = "FormalOrganization"
        self.subjects: dict[str, list[ox.Triple]] = defaultdict(list)
        for t in triples:
            self.subjects[t.subject.value].append(t)
        self.done: dict[str, dict[str, Any]] = {}
        # Units, contacts, strategies and the government recur in many measures: render them once.
        self.shared = {iri for iri in self.subjects
                       if not iri.startswith(iris.space(base, "measure")) and "#" not in iri}
        self.compact_property = {self.lp: "lp:", **{v: k + ":" for k, v in _PREFIXES.items()}}

    def node(self, iri: str) -> dict[str, Any]:
        if iri in self.done:
            return self.done[iri]
        out: dict[str, Any] = {"id": iri}
        for t in self.subjects.get(iri, ()):
            p = t.predicate.value
            if p == RDF.type.value:
                self._put(out, "type", self.class_terms.get(t.object.value, t.object.value), many=False)
                continue
            term, kind = self.by_property[p]
            o = t.object
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
        if iri in self.shared:
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


def write_document(out: TextIO, triples: Sequence[ox.Triple], base: str, context_url: str) -> None:
    """The JSON-LD document: header, one node object per line, footer."""
    writer = _Writer(triples, base)
    embedded_prefixes = tuple(iris.space(base, kind) for kind in EMBEDDED_KINDS)
    top = []
    for iri, own in writer.subjects.items():
        if "#" in iri and iri.startswith(iris.space(base, "measure")):
            continue  # a source row, embedded in its measure
        if (iri.startswith(embedded_prefixes) and own[0].predicate == RDF.type) or "-column-" in iri:
            continue  # a unit or contact point, embedded where it is named (a withdrawn one stands alone)
        if own and own[0].predicate == RDF.type and own[0].object.value.endswith("FormalOrganization"):
            continue  # the government, embedded at the top of every unit chain
        top.append(iri)
    out.write(f'{{\n"@context": {json.dumps(context_url)},\n"@graph": [\n')
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for n, iri in enumerate(top):
        out.write(encode(writer.node(iri)) + (",\n" if n < len(top) - 1 else "\n"))
    out.write("]\n}\n")


def to_triples(document: Any, base: str) -> list[ox.Triple]:
    """Parse a JSON-LD document with pyld, serving our own context without a network."""
    from pyld import jsonld as pyld  # type: ignore[import-untyped]

    local = {f"{base}data/context.jsonld": context(base)}

    def loader(url: str, options: dict | None = None) -> dict[str, Any]:
        if url in local:
            return {"contentType": "application/ld+json", "contextUrl": None,
                    "documentUrl": url, "document": local[url]}
        raise pyld.JsonLdError(f"lodpub loads no remote documents: {url}", "loading document failed")

    nquads = pyld.to_rdf(document, {"format": "application/n-quads", "documentLoader": loader})
    return [q.triple for q in ox.parse(nquads.encode("utf-8"), format=ox.RdfFormat.N_QUADS)]
