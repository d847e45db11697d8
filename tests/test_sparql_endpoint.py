"""The SPARQL 1.1 Protocol at /sparql, spoken to a real server by real clients."""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote

import httpx
import pytest
import rdflib

from lodpub.serving import negotiation

from conftest import BASE

# Every test that takes `server` runs against the embedded server, lodpub in front of Oxigraph's server and
# lodpub in front of Virtuoso (conftest.py); those about the embedded engine itself say so (embedded_only).
pytestmark = pytest.mark.every_store

PREFIX = f"PREFIX lp: <{BASE}def/lodpub#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
COUNT = PREFIX + "SELECT (COUNT(?m) AS ?n) WHERE { ?m a lp:Measure }"
# By STR(?name): SPARQL orders simple literals by code point, and leaves the order of language-tagged ones to the
# store (Virtuoso sorts the Japanese names in its own collation), so this order is the same from every store.
NAMES = PREFIX + "SELECT ?m ?name WHERE { ?m a lp:Measure ; rdfs:label ?name } ORDER BY STR(?name)"
CONSTRUCT = PREFIX + "CONSTRUCT { ?m rdfs:label ?name } WHERE { ?m a lp:Measure ; rdfs:label ?name }"
RESULTS = "{http://www.w3.org/2005/sparql-results#}"


def count_of(response: httpx.Response) -> int:
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


# ------------------------------------------------------------------ the three request forms

def test_get_post_form_and_post_query_give_the_same_answer(server):
    get = httpx.get(f"{server.url}/sparql", params={"query": COUNT})
    form = httpx.post(f"{server.url}/sparql", data={"query": COUNT})
    direct = httpx.post(f"{server.url}/sparql", content=COUNT.encode(),
                        headers={"Content-Type": "application/sparql-query"})
    for response in (get, form, direct):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/sparql-results+json"
        assert count_of(response) == 19  # 20 rows, one withdrawn


def test_default_graph_uri_naming_the_dataset_is_accepted_and_others_refused(server):
    ok = httpx.get(f"{server.url}/sparql", params={"query": COUNT, "default-graph-uri": f"{BASE}data/measures"})
    assert count_of(ok) == 19
    refused = httpx.get(f"{server.url}/sparql", params={"query": COUNT, "named-graph-uri": "file:///etc/passwd"})
    assert refused.status_code == 400
    assert "<file:///etc/passwd> is not served here and nothing is fetched" in refused.text


# ------------------------------------------------------------------ formats, parsed back

@pytest.mark.parametrize("accept", ["application/sparql-results+json", "application/sparql-results+xml",
                                    "text/csv", "text/tab-separated-values"])
def test_select_in_every_results_format(server, accept):
    response = httpx.get(f"{server.url}/sparql", params={"query": NAMES}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == accept
    if accept.endswith("json"):
        names = [b["name"]["value"] for b in response.json()["results"]["bindings"]]
    elif accept.endswith("xml"):
        root = ET.fromstring(response.content)
        names = [b.find(f"{RESULTS}literal").text for b in root.iter(f"{RESULTS}binding") if b.get("name") == "name"]
    elif accept == "text/csv":
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == ["m", "name"]
        names = [r[1] for r in rows[1:]]
    else:
        lines = response.text.splitlines()
        assert lines[0] == "?m\t?name"
        names = [rdflib.util.from_n3(line.split("\t")[1]).value for line in lines[1:]]
    assert len(names) == 19
    assert names == sorted(names)
    assert "まちづくり推進コンシェルジュ" not in names  # the withdrawn one


@pytest.mark.parametrize(("accept", "parser"), [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                                ("application/ld+json", "json-ld"),
                                                ("application/rdf+xml", "xml")])
def test_construct_in_every_graph_format(server, accept, parser):
    response = httpx.get(f"{server.url}/sparql", params={"query": CONSTRUCT}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == accept
    graph = rdflib.Graph().parse(data=response.content, format=parser)
    assert len(graph) == 19


def test_ask(server):
    for accept, expected in (("application/sparql-results+json", '"boolean": true'),
                             ("application/sparql-results+xml", "<boolean>true</boolean>")):
        query = PREFIX + 'ASK { ?m rdfs:label "産業サポートスクエア・TAMA"@ja }'
        response = httpx.get(f"{server.url}/sparql", params={"query": query}, headers={"Accept": accept})
        assert expected in response.text


# ------------------------------------------------------------------ content negotiation

@pytest.mark.parametrize(("accept", "expected"), [
    ("", "application/sparql-results+json"),
    ("*/*", "application/sparql-results+json"),
    ("text/*", "text/csv"),
    ("text/csv;q=0.5, application/sparql-results+xml;q=0.9", "application/sparql-results+xml"),
    ("application/sparql-results+json;q=0.1, text/tab-separated-values", "text/tab-separated-values"),
    ("application/xhtml+xml;q=0.5, application/xml;q=0.9, */*;q=0.8", "application/sparql-results+xml"),
    ("application/json", "application/sparql-results+json"),
])
def test_content_negotiation_matrix(server, accept, expected):
    response = httpx.get(f"{server.url}/sparql", params={"query": COUNT}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize(("header", "gzipped"), [
    (None, False), ("", False), ("gzip", True), ("GZIP", True), ("gzip, deflate, br, zstd", True),
    ("identity", False), ("gzip;q=0", False), ("*", True), ("*;q=0", False), ("gzip;q=0, *", False),
    ("br;q=1, *;q=0.5", True), ("x-gzip", True),
])
def test_accept_encoding_is_read_with_its_q_values(header, gzipped):
    assert negotiation.accepts_gzip(header) is gzipped


def test_a_large_answer_goes_gzipped_to_a_client_that_accepts_it(server):
    params = {"query": "SELECT * WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 100", "format": "csv"}
    plain = httpx.get(f"{server.url}/sparql", params=params, headers={"Accept-Encoding": "identity"})
    zipped = httpx.get(f"{server.url}/sparql", params=params, headers={"Accept-Encoding": "gzip"})
    refused = httpx.get(f"{server.url}/sparql", params=params, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert len(plain.content) > 4096
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert zipped.headers["content-encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.content == plain.content == refused.content  # httpx decoded it
    assert zipped.num_bytes_downloaded < len(plain.content) / 3
    small = httpx.get(f"{server.url}/sparql", params={"query": "ASK {}"}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # not worth compressing


def test_nothing_acceptable_is_406_and_format_parameter_overrides(server):
    refused = httpx.get(f"{server.url}/sparql", params={"query": COUNT}, headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert "application/sparql-results+json" in refused.text
    chosen = httpx.get(f"{server.url}/sparql", params={"query": COUNT, "format": "csv"},
                       headers={"Accept": "image/png"})
    assert (chosen.status_code, chosen.text) == (200, "n\r\n19\r\n")


def test_service_description_for_an_rdf_client(server):
    response = httpx.get(f"{server.url}/sparql", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    sd = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (None, sd.endpoint, rdflib.URIRef(f"{BASE}sparql")) in graph
    assert (None, sd.supportedLanguage, sd.SPARQL11Query) in graph


def test_cors_on_read_endpoints(server):
    for path in ("/sparql?query=" + quote(COUNT), "/doc/measure/1", "/data/measures.nt", "/.well-known/void"):
        assert httpx.get(server.url + path).headers["access-control-allow-origin"] == "*"
    refused = httpx.get(server.url + "/sparql?query=" + quote("SELECT * WHERE {"))  # a page must read why
    assert refused.status_code == 400 and refused.headers["access-control-allow-origin"] == "*"
    preflight = httpx.options(f"{server.url}/sparql", headers={
        "Origin": "https://portal.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers


def test_sparqlwrapper_as_a_real_client(server):
    from SPARQLWrapper import JSON, SPARQLWrapper
    client = SPARQLWrapper(f"{server.url}/sparql")
    client.setQuery(COUNT)
    client.setReturnFormat(JSON)
    assert client.query().convert()["results"]["bindings"][0]["n"]["value"] == "19"
    client.setMethod("POST")
    assert client.query().convert()["results"]["bindings"][0]["n"]["value"] == "19"


# ------------------------------------------------------------------ errors and limits

def test_a_malformed_query_gets_400_with_the_position(server):
    response = httpx.get(f"{server.url}/sparql", params={"query": "SELECT * WHERE { ?s ?p "})
    assert response.status_code == 400
    assert response.text.startswith("the query is not valid SPARQL: error at 1:24:")
    assert "Traceback" not in response.text and "/work" not in response.text and "site-packages" not in response.text


def test_the_row_cap_truncates_visibly(server):
    query = "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"
    response = httpx.get(f"{server.url}/sparql", params={"query": query})
    body = response.json()
    assert len(body["results"]["bindings"]) == 100
    assert response.headers["x-sparql-maxrows"] == "100"
    assert "truncated" in response.headers["warning"]
    assert body["head"]["link"] == [f"{BASE}sparql#truncated"]
    small = httpx.get(f"{server.url}/sparql", params={"query": NAMES})
    assert "x-sparql-maxrows" not in small.headers


def test_a_query_missing_is_400_and_a_wrong_content_type_is_415(server):
    missing = httpx.post(f"{server.url}/sparql", data={"format": "json"})
    assert missing.status_code == 400
    assert missing.text.startswith("no query given")
    response = httpx.post(f"{server.url}/sparql", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/sparql-query" in response.text


@pytest.mark.embedded_only("the copy in memory and the disk workers are the embedded engine's")
def test_a_server_without_the_copy_in_memory_answers_the_same(served_dist, server):
    from conftest import Server
    disk_only = Server(served_dist, {"LODPUB_MEMORY_WORKERS": "0", "LODPUB_WORKERS": "1",
                                     "LODPUB_COLUMNAR_WORKERS": "0"})
    try:
        for query in (COUNT, NAMES, CONSTRUCT + " ORDER BY ?name"):
            a = httpx.get(f"{server.url}/sparql", params={"query": query}, headers={"Accept": "text/csv, */*"})
            b = httpx.get(f"{disk_only.url}/sparql", params={"query": query}, headers={"Accept": "text/csv, */*"})
            assert a.status_code == b.status_code == 200 and a.content == b.content
        assert httpx.get(f"{disk_only.url}/health").json()["ready"] == {"disk": 1}
    finally:
        disk_only.stop()
    ready = httpx.get(f"{server.url}/health").json()["ready"]
    assert (ready["memory"], ready["disk"]) == (1, 1)  # and the columnar candidate, once loaded


@pytest.mark.embedded_only("answers given in the server's own process, on the embedded store")
def test_a_small_query_asked_again_is_answered_by_the_server_itself_the_same(served_dist):
    from conftest import Server
    uncached = Server(served_dist, {"LODPUB_RESULT_CACHE_MB": "0", "LODPUB_WORKERS": "1"})
    try:
        # Its runs in a worker are measured until one takes under a millisecond (on a busy machine not every one
        # does); from then on it is answered inline.
        bodies = []
        for _ in range(60):
            bodies.append(httpx.get(f"{uncached.url}/sparql", params={"query": COUNT}).content)
            health = httpx.get(f"{uncached.url}/health").json()
            if health["inline"] >= 3:
                break
    finally:
        uncached.stop()
    assert len(set(bodies)) == 1 and json.loads(bodies[0])["results"]["bindings"][0]["n"]["value"] == "19"
    assert health["cache"]["hits"] == 0
    assert health["inline"] >= 3  # later ones skip the hand-off


def test_a_browser_following_a_query_link_gets_the_editor_with_the_query(server):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = httpx.get(f"{server.url}/sparql", params={"query": COUNT}, headers={"Accept": browser})
    assert response.headers["content-type"].startswith("text/html")
    assert '<div id="yasgui">' in response.text and "COUNT(?m)" in response.text
    forced = httpx.get(f"{server.url}/sparql", params={"query": COUNT, "format": "json"}, headers={"Accept": browser})
    assert count_of(forced) == 19


@pytest.mark.embedded_only("the answer cache's internals, tested on the class itself (no server to vary)")
def test_the_answer_cache_counts_requests_as_well_as_answers_towards_its_bound():
    from lodpub.serving.sparql_endpoint import AnswerCache, plain, request_size
    cache = AnswerCache(max_bytes=1_000_000)
    answer = plain(200, "true")
    for i in range(100):  # tiny answers to big POST bodies: the bodies must be what fills the cache
        cache.put((b"", b"application/sparql-query", f"ASK {{}} #{i}".encode() + b" " * 50_000, "*/*"), answer)
    assert cache.size <= 1_000_000
    assert cache.size == sum(len(a.body) + request_size(k) for k, a in cache.items.items())
    assert 15 <= len(cache.items) < 20  # ~50 kB each: the oldest went first
    assert cache.get((b"", b"application/sparql-query", b"ASK {} #0" + b" " * 50_000, "*/*")) is None
    assert cache.get((b"", b"application/sparql-query", b"ASK {} #99" + b" " * 50_000, "*/*")) is answer


def test_an_answer_from_the_cache_has_the_same_head_every_time(server):
    # The edition header was once appended to the list a cached answer keeps: one more per hit, until
    # clients refused the head (h11: "Receive buffer too long") after ~600 hits.
    query = "SELECT ?s WHERE { ?s a <https://lodpub.example/def/lodpub#Strategy> } # cached head"
    answers = [httpx.get(f"{server.url}/sparql", params={"query": query}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.headers.get_list("lodpub-edition") == [answers[0].headers["lodpub-edition"]] for a in answers)
    assert len({len(a.headers.multi_items()) for a in answers}) == 1


@pytest.mark.embedded_only("the columnar candidate checks the embedded engine's answers")
def test_the_columnar_candidate_answers_only_what_it_was_checked_on_and_health_counts_it(served_dist):
    from conftest import Server
    server = Server(served_dist, {"LODPUB_RESULT_CACHE_MB": "0", "LODPUB_COLUMNAR_WORKERS": "1"})
    try:
        for _ in range(600):  # the model loads in the background
            health = httpx.get(f"{server.url}/health").json()
            if health["ready"].get("columnar"):
                break
            time.sleep(0.1)
        assert health["ready"]["columnar"] == 1
        query = ("SELECT ?unit (COUNT(?m) AS ?n) WHERE { ?m <https://lodpub.example/def/lodpub#responsibleUnit> ?unit }"
                 " GROUP BY ?unit ORDER BY DESC(?n) ?unit")
        first = httpx.get(f"{server.url}/sparql", params={"query": query})
        for _ in range(200):
            candidates = httpx.get(f"{server.url}/health").json()["candidates"]
            if candidates["agreed"]:
                break
            time.sleep(0.05)
        again = [httpx.get(f"{server.url}/sparql", params={"query": query}) for _ in range(3)]
        ask = [httpx.get(f"{server.url}/sparql", params={"query": "ASK { ?s ?p ?o }"}) for _ in range(2)]
        time.sleep(0.5)
        health = httpx.get(f"{server.url}/health").json()
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    assert candidates["agreed"] == 1
    assert all(a.status_code == 200 and a.content == first.content for a in again)
    assert all(a.status_code == 200 and a.json()["boolean"] is True for a in ask)
    assert health["candidates"]["declined"] == 1  # ASK: maplib has none, so the reference answers it for good
    assert 'lodpub_candidate_checks_total{kind="columnar",verdict="agreed"} 1.0' in metrics
