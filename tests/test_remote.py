"""Serving from a store that runs elsewhere: real Oxigraph and Virtuoso servers on loopback, each holding the
edition as the named graph of its IRI, behind ``lodpub serve --store``. Every answer is compared with the
embedded store's.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pyoxigraph as ox
import pytest
import rdflib
import rdflib.compare

import stores
from lodpub import metadata, published
from lodpub.settings import Settings
from stores import OXIGRAPH, free_port

from conftest import Server

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://lodpub.example/def/lodpub#Measure> }"
NAMES = ("SELECT ?m ?name WHERE { ?m a <https://lodpub.example/def/lodpub#Measure> ; "
         "<http://www.w3.org/2000/01/rdf-schema#label> ?name } ORDER BY ?name ?m")
CONSTRUCT = "CONSTRUCT { ?m ?p ?o } WHERE { ?m a <https://lodpub.example/def/lodpub#Measure> ; ?p ?o }"


@pytest.fixture(scope="module", params=stores.KINDS)
def store(request):
    """A real store on loopback holding the served edition as the named graph of its IRI (started once per session,
    shared with the suites that run against every store): its query URL and the settings lodpub needs for it."""
    return request.getfixturevalue(f"store_{request.param}")


@pytest.fixture(scope="module")
def fronted(served_dist, store):
    """lodpub in front of the store; an embedded lodpub to compare with; and the store's own answers."""
    url, extra = store
    settings = {"LODPUB_QUERY_TIMEOUT": "5", "LODPUB_MAX_ROWS": "100", "LODPUB_PAGE_SIZE": "5",
                "LODPUB_RESULT_CACHE_MB": "0"}
    remote = Server(served_dist, {**settings, **extra, "LODPUB_STORE": url})
    embedded = Server(served_dist, {**settings, "LODPUB_WORKERS": "1", "LODPUB_COLUMNAR_WORKERS": "0"})
    graph = f"{Settings().dataset_iri}/{published.current(served_dist)}"

    def direct(query: str, accept: str = "application/sparql-results+json") -> httpx.Response:
        return httpx.get(url, params={"query": query, "default-graph-uri": graph}, headers={"Accept": accept})
    yield remote, embedded, direct
    remote.stop()
    embedded.stop()


def solutions(response: httpx.Response) -> list[dict]:
    return json.loads(response.content)["results"]["bindings"]


def terms(answer) -> list[list]:
    """Solutions as pyoxigraph reads them, whatever the format (XML or JSON; lists of terms, in order)."""
    return [list(solution) for solution in answer]


@pytest.mark.parametrize("query", [COUNT, NAMES])
def test_a_select_through_lodpub_is_the_stores_own_answer_and_the_embedded_one(fronted, store, query):
    remote, embedded, direct = fronted
    ours, theirs = httpx.get(f"{remote.url}/sparql", params={"query": query}), direct(query)
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"].startswith("application/sparql-results+json")
    read = [terms(ox.parse_query_results(a.content, ox.QueryResultsFormat.JSON)) for a in (ours, theirs)]
    assert read[0] == read[1]  # lodpub passes the store's answer on: the same terms, in the same order
    embedded_answer = solutions(httpx.get(f"{embedded.url}/sparql", params={"query": query}))
    if query is COUNT or store[0].endswith("/query"):  # Oxigraph orders Japanese names as pyoxigraph does;
        assert solutions(ours) == embedded_answer       # Virtuoso in its own collation (SPARQL leaves it open)
    else:
        assert sorted(map(json.dumps, solutions(ours))) == sorted(map(json.dumps, embedded_answer))


@pytest.mark.parametrize("accept", ["text/csv", "text/tab-separated-values", "application/sparql-results+xml"])
def test_every_results_format_through_lodpub_is_written_as_the_embedded_engine_writes_it(fronted, accept):
    remote, embedded, _ = fronted
    ours, theirs = (httpx.get(f"{s.url}/sparql", params={"query": COUNT}, headers={"Accept": accept})
                    for s in (remote, embedded))
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content  # the same writers, the same bytes


def test_a_construct_through_lodpub_is_the_stores_graph(fronted):
    remote, embedded, direct = fronted
    one = "CONSTRUCT { <https://lodpub.example/id/measure/1> ?p ?o } WHERE { <https://lodpub.example/id/measure/1> ?p ?o }"
    graphs = []
    for answer in (httpx.get(f"{remote.url}/sparql", params={"query": one}, headers={"Accept": "text/turtle"}),
                   httpx.get(f"{embedded.url}/sparql", params={"query": one}, headers={"Accept": "text/turtle"}),
                   direct(one, "text/turtle")):
        assert answer.status_code == 200
        graphs.append(rdflib.Graph().parse(data=answer.text, format="turtle"))
    assert len(graphs[0]) > 10 and all(rdflib.compare.isomorphic(graphs[0], g) for g in graphs[1:])


def test_the_row_cap_is_lodpubs_and_declared_whatever_the_store_returns(fronted):
    remote, _, _ = fronted
    answer = httpx.get(f"{remote.url}/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert answer.status_code == 200
    assert len(solutions(answer)) == 100 and answer.headers["x-sparql-maxrows"] == "100"


def test_the_policy_stays_in_front_of_the_store(fronted):
    remote, _, _ = fronted
    for query, status in (("INSERT DATA { <a:b> <a:c> <a:d> }", 403),
                          ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }", 403),
                          ("SELECT * WHERE { ?s ?p }", 400)):
        answer = httpx.get(f"{remote.url}/sparql", params={"query": query})
        assert answer.status_code == status, (query, answer.text)
        assert "Traceback" not in answer.text


def test_a_query_past_the_limit_is_stopped_and_refused_with_503(fronted, store):
    remote, _, _ = fronted
    endless = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    started = time.monotonic()
    answer = httpx.get(f"{remote.url}/sparql", params={"query": endless}, timeout=60)
    assert answer.status_code == 503 and "longer than the 5-second limit" in answer.text, answer.text
    # Whichever stopped first (Virtuoso, told its share of the limit, with its partial "anytime" answer, or lodpub
    # at the limit itself on a busy machine), the client is told of its limit, as from any store.
    assert httpx.get(f"{remote.url}/health").json()["timeouts"] >= 1
    assert time.monotonic() - started < 30  # lodpub's 5-second limit, not the store's 30


def test_virtuosos_partial_anytime_answer_is_recognised_as_incomplete(store_virtuoso, served_dist):
    """Asked with its own time limit far inside lodpub's, Virtuoso answers what it had (S1TAT): the remote dataset
    raises Incomplete on it, so it is never written on as an answer (timing-free: lodpub's limit is a minute)."""
    import asyncio

    from lodpub.serving.remote import JSON, Incomplete, Remote
    url, _ = store_virtuoso
    graph = f"{Settings().dataset_iri}/{published.current(served_dist)}"
    endless = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"

    async def ask() -> None:
        remote = Remote(url, graph, "https://lodpub.example/", None, {}, 60.0, timeout_parameter="timeout")
        await remote.start()
        try:
            await remote._fetch({"query": endless, "default-graph-uri": graph, "timeout": "500"}, JSON, 1 << 20)
        finally:
            await remote.stop()
    with pytest.raises(Incomplete):
        asyncio.run(ask())


def test_pages_and_documents_read_through_the_store(fronted, store):
    remote, embedded, _ = fronted
    for path, accept in (("/doc/measure/1", "text/turtle"), ("/doc/unit/7", "application/n-triples")):
        graphs = [rdflib.Graph().parse(data=httpx.get(f"{s.url}{path}", headers={"Accept": accept}).text,
                                       format="turtle" if "turtle" in accept else "nt") for s in fronted[:2]]
        assert len(graphs[0]) > 0 and rdflib.compare.isomorphic(graphs[0], graphs[1]), path
    pages = [httpx.get(f"{s.url}/doc/measure/1", headers={"Accept": "text/html"}) for s in fronted[:2]]
    headings = [re.search(r"<h1[^>]*>(.*?)</h1>", page.text, re.S) for page in pages]
    assert [p.status_code for p in pages] == [200, 200] and headings[0] and headings[0][1] == headings[1][1]
    assert httpx.get(f"{remote.url}/browse/bureaus").text.count("<li") == \
        httpx.get(f"{embedded.url}/browse/bureaus").text.count("<li")
    assert httpx.get(f"{remote.url}/id/measure/999999").status_code == 404
    health = httpx.get(f"{remote.url}/health").json()
    assert health["status"] == "ok" and health["store"] == store[0]


@pytest.fixture
def writable(tmp_path):
    """Oxigraph's server on an empty database it may write (Graph Store Protocol at /store)."""
    port = free_port()
    process = subprocess.Popen([str(OXIGRAPH), "serve", "--location", str(tmp_path / "db"), "--bind",
                                f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{root}/query", params={"query": "ASK {}"})
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield root
    process.terminate()
    process.wait(timeout=10)


def test_publish_to_loads_the_edition_as_its_own_graph_and_a_server_reads_it(served_dist, writable, tmp_path):
    from conftest import lodpub
    name = published.current(served_dist)
    graph = f"{Settings().dataset_iri}/{name}"
    other = "https://lodpub.example/data/measures/an-earlier-edition"
    assert httpx.put(f"{writable}/store", params={"graph": other}, content=b"<a:s> <a:p> <a:o> .\n",
                     headers={"Content-Type": "application/n-triples"}).status_code in (201, 204)
    done = lodpub("publish", "--to", f"{writable}/store", "--dist", str(served_dist),
                  env={"LODPUB_STORE": f"{writable}/query"})
    assert done.returncode == 0, done.stderr
    triples = metadata.endpoint_triples(metadata.read_description(served_dist / name), Settings())
    assert triples > sum(1 for line in (served_dist / name / "measures.nt").read_bytes().splitlines() if line.strip())
    assert done.stdout.splitlines() == [f"loaded edition {name} into <{graph}> at {writable}/store: {triples:,} triples",
                                        f"the store keeps editions {name}; dropped: none"]
    counts = {g: int(httpx.get(f"{writable}/query", params={
        "query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "default-graph-uri": g},
        headers={"Accept": "application/sparql-results+json"}).json()["results"]["bindings"][0]["n"]["value"])
        for g in (graph, other)}
    assert counts == {graph: triples, other: 1}  # the other edition's graph is as it was
    server = Server(served_dist, {"LODPUB_STORE": f"{writable}/query"})
    try:
        answer = httpx.get(f"{server.url}/sparql", params={"query": COUNT}).json()
    finally:
        server.stop()
    assert answer["results"]["bindings"][0]["n"]["value"] == "19"


def test_publish_to_a_store_that_is_not_there_says_so_in_a_line(served_dist):
    from conftest import lodpub
    done = lodpub("publish", "--to", f"http://127.0.0.1:{free_port()}/store", "--dist", str(served_dist))
    assert done.returncode == 1
    assert done.stderr.startswith("lodpub: http://127.0.0.1:") and "could not be reached" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
