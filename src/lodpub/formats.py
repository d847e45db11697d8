"""Every format lodpub reads or writes, in one registry: negotiation, the writers, the service
description, the download list and ``lodpub validate`` all read it.

A format has a short name (``format=`` and the file extension), its media type and
the other names clients send for it, the pyoxigraph format that writes it, and its
IRI under ``http://www.w3.org/ns/formats/`` (what the SPARQL service description
and DCAT name it by).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph as ox

W3C = "http://www.w3.org/ns/formats/"


@dataclass(frozen=True)
class Format:
    name: str  # the short name used in ``format=`` and file extensions
    media_type: str
    aliases: tuple[str, ...] = ()  # other media types and names that mean the same
    writer: ox.RdfFormat | ox.QueryResultsFormat | None = None  # pyoxigraph's, where it writes this format
    w3c: str = ""  # its name under W3C's format IRIs ("" for none)
    charset: bool = False  # text whose media type names its charset when served as a file

    def matches(self, media_type: str) -> bool:
        return media_type == self.media_type or media_type in self.aliases

    @property
    def iri(self) -> str | None:
        return W3C + self.w3c if self.w3c else None


JSON_RESULTS = Format("json", "application/sparql-results+json", ("application/json",),
                      ox.QueryResultsFormat.JSON, "SPARQL_Results_JSON")
XML_RESULTS = Format("xml", "application/sparql-results+xml", ("application/xml", "text/xml"),
                     ox.QueryResultsFormat.XML, "SPARQL_Results_XML")
CSV = Format("csv", "text/csv", (), ox.QueryResultsFormat.CSV, "SPARQL_Results_CSV", charset=True)
TSV = Format("tsv", "text/tab-separated-values", (), ox.QueryResultsFormat.TSV, "SPARQL_Results_TSV", charset=True)
TURTLE = Format("ttl", "text/turtle", ("application/x-turtle", "turtle"), ox.RdfFormat.TURTLE, "Turtle",
                charset=True)
N_TRIPLES = Format("nt", "application/n-triples", ("text/plain", "ntriples", "n-triples"), ox.RdfFormat.N_TRIPLES,
                   "N-Triples")
JSON_LD = Format("jsonld", "application/ld+json", ("application/json", "json-ld"), ox.RdfFormat.JSON_LD, "JSON-LD")
RDF_XML = Format("rdf", "application/rdf+xml", ("application/xml", "text/xml", "rdfxml", "xml"), ox.RdfFormat.RDF_XML,
                 "RDF_XML")
HTML = Format("html", "text/html", ("application/xhtml+xml",))
JSON = Format("json", "application/json")  # a page's content for scripts: search hits, lists of changes
ATOM = Format("atom", "application/atom+xml")
GZIP = Format("gz", "application/gzip")

# What the server can answer, by kind of answer (the first is the default).
SOLUTIONS = (JSON_RESULTS, XML_RESULTS, CSV, TSV)
GRAPH = (TURTLE, N_TRIPLES, JSON_LD, RDF_XML)
# The formats of files in an edition, by extension.
FILES = {f".{f.name}": f for f in (TURTLE, N_TRIPLES, JSON_LD, TSV, ATOM, GZIP)}
# What ``lodpub validate`` parses, by extension (JSON-LD goes through pyld, with our context).
READABLE = {".ttl": ox.RdfFormat.TURTLE, ".nt": ox.RdfFormat.N_TRIPLES, ".rdf": ox.RdfFormat.RDF_XML,
            ".owl": ox.RdfFormat.RDF_XML, ".xml": ox.RdfFormat.RDF_XML, ".n3": ox.RdfFormat.N3}


def by_name(name: str, among: tuple[Format, ...]) -> Format:
    """The format named ``name`` among ``among`` (KeyError if none)."""
    for fmt in among:
        if fmt.name == name:
            return fmt
    raise KeyError(name)


def of_file(filename: str) -> Format | None:
    """The format of a published file, by its extension (``measures.nt.gz`` is gzip)."""
    _, dot, extension = filename.rpartition(".")
    return FILES.get("." + extension) if dot else None
