"""Namespaces: the standard vocabularies, and our own (which lives under the base IRI)."""

from __future__ import annotations

from functools import lru_cache

from pyoxigraph import NamedNode

from lodpub import iris


class Namespace:
    """``NS.term`` / ``NS["term"]`` give a (cached) :class:`NamedNode`; ``str(NS)`` the IRI."""

    __slots__ = ("iri",)

    def __init__(self, iri: str):
        self.iri = iri

    def __getattr__(self, name: str) -> NamedNode:
        if name.startswith("__"):
            raise AttributeError(name)
        return _node(self.iri + name)

    def __getitem__(self, name: str) -> NamedNode:
        return _node(self.iri + name)

    def __str__(self) -> str:
        return self.iri

    def __repr__(self) -> str:
        return f"Namespace({self.iri!r})"


@lru_cache(maxsize=4096)
def _node(iri: str) -> NamedNode:
    return NamedNode(iri)


RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
ORG = Namespace("http://www.w3.org/ns/org#")
CPSV = Namespace("http://purl.org/vocab/cpsv#")
CV = Namespace("http://data.europa.eu/m8g/")
SCHEMA = Namespace("https://schema.org/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
IC = Namespace("http://imi.go.jp/ns/core/rdf#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
VOID = Namespace("http://rdfs.org/ns/void#")
PROV = Namespace("http://www.w3.org/ns/prov#")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
SH = Namespace("http://www.w3.org/ns/shacl#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
SAC = Namespace("http://data.e-stat.go.jp/lod/sac/")
DCATAP = Namespace("http://data.europa.eu/r5r/")
ADMS = Namespace("http://www.w3.org/ns/adms#")
DQV = Namespace("http://www.w3.org/ns/dqv#")  # the machine-readability report (quality.ttl)
OA = Namespace("http://www.w3.org/ns/oa#")

STANDARD_PREFIXES: dict[str, str] = {name: ns.iri for name, ns in {
    "rdf": RDF, "rdfs": RDFS, "owl": OWL, "xsd": XSD, "dcterms": DCTERMS, "skos": SKOS,
    "org": ORG, "cpsv": CPSV, "cv": CV, "schema": SCHEMA, "vcard": VCARD, "ic": IC,
    "dcat": DCAT, "void": VOID, "prov": PROV, "foaf": FOAF, "sh": SH, "sd": SD,
    "spdx": SPDX, "sac": SAC,
}.items()}


def lodpub(base: str) -> Namespace:
    """Our ontology's namespace for a base IRI (ending in ``/``)."""
    return Namespace(iris.vocabulary(base))


def prefixes(base: str) -> dict[str, str]:
    """Prefixes for readable Turtle: ours and the data's, then the standard ones."""
    return {"lp": lodpub(base).iri, **STANDARD_PREFIXES}
