"""Every IRI we mint answers: 303 to its document, which speaks HTML and RDF; 404 and 410 where due."""

from __future__ import annotations

import re

import httpx
import pytest
import rdflib

from conftest import BASE

# Every test that takes `server` runs against the embedded server, lodpub in front of Oxigraph's server and
# lodpub in front of Virtuoso (conftest.py); those about the embedded engine itself say so (embedded_only).
pytestmark = pytest.mark.every_store

RDF_TYPES = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/n-triples": "nt",
             "application/rdf+xml": "xml"}


@pytest.mark.parametrize(("path", "label"), [
    ("measure/1", "地域を主体とするスマート東京先進事例創出事業"),
    ("unit/7", "振興企画課"),
    ("contact/1", "03-5320-7622"),
    ("strategy/1", "持続的な成長を生み、活力にあふれる拠点を形成"),
])
def test_an_iri_answers_303_and_its_document_negotiates(server, path, label):
    response = httpx.get(f"{server.url}/id/{path}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/doc/{path}"
    for media, parser in RDF_TYPES.items():
        doc = httpx.get(f"{server.url}/doc/{path}", headers={"Accept": media})
        assert doc.status_code == 200
        assert doc.headers["content-type"].split(";")[0] == media
        assert "Accept" in doc.headers["vary"]
        extension = {"text/turtle": "ttl", "application/ld+json": "jsonld", "application/n-triples": "nt",
                     "application/rdf+xml": "rdf"}[media]
        assert doc.headers["content-location"] == f"/doc/{path}.{extension}"
        graph = rdflib.Graph().parse(data=doc.content, format=parser)
        assert (rdflib.URIRef(f"{BASE}id/{path}"), rdflib.RDFS.label, None) in graph
        assert label in {str(o) for o in graph.objects(rdflib.URIRef(f"{BASE}id/{path}"), rdflib.RDFS.label)}
        by_extension = httpx.get(f"{server.url}/doc/{path}.{extension}")
        assert by_extension.headers["content-type"].split(";")[0] == media
    page = httpx.get(f"{server.url}/doc/{path}", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert label in page.text


def test_a_measure_page_links_its_chain_contact_and_strategy(server):
    page = httpx.get(f"{server.url}/doc/measure/18", headers={"Accept": "text/html"}).text
    assert "<h1>多摩イノベーションエコシステム促進事業</h1>" in page
    for href, text in (("/id/unit/12", "調整課"), ("/id/unit/10", "産業労働局"), ("/id/strategy/1", "持続的な成長"),
                       ("/id/contact/", "03-5320-5982")):
        assert f'<a href="{href}' in page and text in page
    assert "担当部署" in page  # the responsible unit's label from the ontology, not its IRI
    assert 'href="/doc/measure/18.ttl"' in page and 'rel="alternate" type="text/turtle"' in page


def test_a_section_page_lists_its_measures(server):
    pages = "".join(httpx.get(f"{server.url}/doc/unit/7?page={n}", headers={"Accept": "text/html"}).text
                    for n in (1, 2, 3))
    assert "多摩の魅力発信プロジェクト" in pages and 'href="/id/measure/4"' in pages
    assert '<a href="/id/unit/6">行政部</a>' in pages  # its parent


def test_large_neighbourhoods_are_paged(server):
    # The test server lists 5 links a page; 振興企画課 is linked from 13 measures and 2 contact points.
    pages = [httpx.get(f"{server.url}/doc/unit/7?page={n}", headers={"Accept": "text/html"}).text for n in (1, 2, 3)]
    assert '<span>1 / 3</span>' in pages[0] and 'href="?page=2"' in pages[0] and 'rel="prev"' not in pages[0]
    assert 'href="?page=1"' in pages[1] and 'href="?page=3"' in pages[1]
    assert 'rel="next"' not in pages[2]
    linked = [set(re.findall(r'href="/id/(?:measure|contact)/(\d+)"', page)) for page in pages]
    assert all(len(links) <= 5 for links in linked)
    assert not (linked[0] & linked[1])


def test_unknown_iris_are_404_and_withdrawn_ones_410(server):
    assert httpx.get(f"{server.url}/id/measure/9999").status_code == 404
    assert httpx.get(f"{server.url}/id/nonsense/1").status_code == 404
    assert httpx.get(f"{server.url}/doc/measure/9999", headers={"Accept": "text/turtle"}).status_code == 404
    gone = httpx.get(f"{server.url}/id/measure/3")
    assert gone.status_code == 410
    assert httpx.get(f"{server.url}/doc/measure/3").status_code == 410
    html = httpx.get(f"{server.url}/id/measure/3", headers={"Accept": "text/html"})
    assert html.status_code == 410 and "取り下げ" in html.text


def test_a_path_cannot_inject_sparql(server):
    for path in ('/id/measure/1%3E%20%3Fp%20%3Fo%20%7D%20%23', "/id/measure/1'", "/doc/measure/..%2F..%2Fetc"):
        assert httpx.get(server.url + path).status_code == 404


def test_the_ontology_and_shapes_answer_at_their_iris(server):
    for stem, term in (("lodpub", "Measure"), ("shapes", "Measure-label")):
        turtle = httpx.get(f"{server.url}/def/{stem}", headers={"Accept": "text/turtle"})
        assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")
        graph = rdflib.Graph().parse(data=turtle.text, format="turtle")
        assert (rdflib.URIRef(f"{BASE}def/{stem}#{term}"), None, None) in graph
        html = httpx.get(f"{server.url}/def/{stem}", headers={"Accept": "text/html"})
        assert html.status_code == 200 and f'id="{term}"' in html.text


def test_a_path_no_route_has_is_the_sites_404_not_the_frameworks_json(server):
    plain = httpx.get(f"{server.url}/no/such/page")
    assert plain.status_code == 404
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text.startswith("Not Found: ") and "detail" not in plain.text
    page = httpx.get(f"{server.url}/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<main>" in page.text and "/no/such/page" in page.text
    wrong = httpx.delete(f"{server.url}/doc/measure/1")
    assert wrong.status_code == 405 and wrong.headers["content-type"].startswith("text/plain")
    assert "GET" in wrong.headers["allow"]
