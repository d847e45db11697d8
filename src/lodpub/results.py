"""Writing query answers in the SPARQL results formats, stopping at a row cap that is always declared.

pyoxigraph's own serialisers write every solution; a public endpoint has to stop
at a limit and say that it did, so a SELECT answer that passes the row cap is
written here, row by row (``engine`` sends every other one as pyoxigraph wrote it).
A truncated answer carries a ``link`` to ``…/sparql#truncated`` in its head
(JSON and XML, as the formats allow) besides the HTTP headers the server adds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox

from lodpub import formats
from lodpub.vocab import RDF, XSD

XSD_STRING = XSD.string.value
RESULTS_NS = "http://www.w3.org/2005/sparql-results#"


def capped(items: Iterable, limit: int) -> tuple[list, bool]:
    """At most ``limit`` items, and whether there were more."""
    out: list = []
    for item in items:
        if len(out) == limit:
            return out, True
        out.append(item)
    return out, False


def _json_term(term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": str(term)}


def _xml_term(term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def _plain(term) -> str:
    if isinstance(term, ox.BlankNode):
        return "_:" + term.value
    return term.value if hasattr(term, "value") else str(term)


def select(variables: Sequence[str], rows: Sequence[Sequence], fmt: str, truncated: bool, link: str) -> bytes:
    """SELECT results in ``fmt`` (json, xml, csv, tsv); ``rows`` are term tuples, None where unbound."""
    if fmt == "json":
        head: dict = {"vars": list(variables)}
        if truncated:
            head["link"] = [link]
        bindings = [{v: _json_term(t) for v, t in zip(variables, r, strict=True) if t is not None} for r in rows]
        return json.dumps({"head": head, "results": {"bindings": bindings}}, ensure_ascii=False).encode()
    if fmt == "xml":
        return "".join(_xml_select(variables, rows, truncated, link)).encode()
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(variables)
        writer.writerows([["" if t is None else _plain(t) for t in r] for r in rows])
        return text.getvalue().encode()
    lines = ["\t".join("?" + v for v in variables)]
    lines += ["\t".join("" if t is None else str(t) for t in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _xml_select(variables, rows, truncated: bool, link: str) -> Iterator[str]:
    yield f'<?xml version="1.0"?>\n<sparql xmlns="{RESULTS_NS}"><head>'
    yield "".join(f"<variable name={quoteattr(v)}/>" for v in variables)
    if truncated:
        yield f"<link href={quoteattr(link)}/>"
    yield "</head><results>"
    for r in rows:
        yield "<result>" + "".join(f"<binding name={quoteattr(v)}>{_xml_term(t)}</binding>"
                                   for v, t in zip(variables, r, strict=True) if t is not None) + "</result>"
    yield "</results></sparql>\n"


def boolean(value: bool, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value}).encode()
    if fmt == "xml":
        return (f'<?xml version="1.0"?>\n<sparql xmlns="{RESULTS_NS}"><head/>'
                f"<boolean>{str(value).lower()}</boolean></sparql>\n").encode()
    if fmt == "csv":
        return f"_askResult\r\n{str(value).lower()}\r\n".encode()
    return f"?_askResult\n{str(value).lower()}\n".encode()


GRAPH_FORMATS = {f.name: f.writer for f in formats.GRAPH}


# Datatypes Turtle writes without naming them ("text", "text"@ja, 5, 1.5, 1.0E0, true).
_UNNAMED_DATATYPES = {XSD[name].value for name in ("string", "integer", "decimal", "double", "boolean")} | \
    {RDF.langString.value}


def used_prefixes(triples: Iterable[ox.Triple], candidates: dict[str, str]) -> dict[str, str]:
    """Only the prefixes that shorten some IRI in ``triples`` (a subject, predicate, object or datatype), so
    Turtle stays short: a prefix is used for an IRI whose rest has no ``/`` or ``#``."""
    namespaces = set()
    for triple in triples:
        for term in (triple.subject, triple.predicate, triple.object):
            if isinstance(term, ox.Literal):
                term = term.datatype
                if term.value in _UNNAMED_DATATYPES:
                    continue
            if isinstance(term, ox.NamedNode):
                iri = term.value
                namespaces.add(iri[:max(iri.rfind("/"), iri.rfind("#")) + 1])
    return {prefix: ns for prefix, ns in candidates.items() if ns in namespaces}


def graph(triples: Sequence[ox.Triple], fmt: str, prefixes: dict[str, str] | None = None) -> bytes:
    used = prefixes if fmt in ("ttl", "rdf") else None
    return ox.serialize(triples, format=GRAPH_FORMATS[fmt], prefixes=used) or b""
