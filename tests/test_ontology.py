"""The ontology describes every term the data uses, in Japanese and English, aligned to the standards."""

from __future__ import annotations

import rdflib

from lodpub.resources import ONTOLOGY, resource_path

from conftest import BASE

LP = rdflib.Namespace(f"{BASE}def/lodpub#")
OWL, RDFS = rdflib.OWL, rdflib.RDFS


def ontology() -> rdflib.Graph:
    return rdflib.Graph().parse(resource_path(*ONTOLOGY), format="turtle", publicID=BASE)


def test_every_term_has_japanese_and_english_labels_and_comments():
    graph = ontology()
    terms = {s for s in graph.subjects() if isinstance(s, rdflib.URIRef) and s.startswith(str(LP))}
    assert len(terms) >= 35
    for term in terms:
        for predicate in (RDFS.label, RDFS.comment):
            languages = {o.language for o in graph.objects(term, predicate)}
            assert {"ja", "en"} <= languages, (term, predicate)
        assert (term, RDFS.isDefinedBy, rdflib.URIRef(f"{BASE}def/lodpub")) in graph


def test_every_term_the_data_uses_is_defined(seed_build):
    graph = ontology()
    data = rdflib.Graph().parse(seed_build[0] / "measures.nt", format="nt")
    used = {p for p in data.predicates() if p.startswith(str(LP))} | \
           {o for o in data.objects(None, rdflib.RDF.type) if o.startswith(str(LP))}
    defined = set(graph.subjects(rdflib.RDF.type, OWL.Class)) | set(graph.subjects(rdflib.RDF.type, OWL.ObjectProperty)) \
        | set(graph.subjects(rdflib.RDF.type, OWL.DatatypeProperty))
    assert used - defined == set()


def test_our_classes_are_aligned_to_what_other_portals_read():
    graph = ontology()
    expected = {
        LP.Measure: {"http://purl.org/vocab/cpsv#PublicService", "https://schema.org/GovernmentService"},
        LP.OrganizationalUnit: {"http://www.w3.org/ns/org#OrganizationalUnit", "http://imi.go.jp/ns/core/rdf#組織型"},
        LP.ContactPoint: {"http://data.europa.eu/m8g/ContactPoint", "http://imi.go.jp/ns/core/rdf#連絡先型"},
        LP.Strategy: {"http://www.w3.org/2004/02/skos/core#Concept", "http://purl.org/dc/terms/Policy"},
    }
    for cls, parents in expected.items():
        assert {str(o) for o in graph.objects(cls, RDFS.subClassOf)} >= parents
    assert (LP.telephone, RDFS.subPropertyOf, rdflib.URIRef("http://www.w3.org/2006/vcard/ns#hasTelephone")) in graph
