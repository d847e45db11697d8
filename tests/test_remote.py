"""Serving from a store that runs elsewhere: a real Oxigraph server on loopback, holding the edition as the
named graph of its IRI, behind ``lodpub serve --store``. Every answer is compared with the embedded store's.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import rdflib
import rdflib.compare

from lodpub import published
from lodpub.settings import Settings

from conftest import Server

OXIGRAPH = Path(sys.executable).with_name("oxigraph")
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://lodpub.example/def/lodpub#Measure> }"
NAMES = ("SELECT ?m ?name WHERE { ?m a <https://lodpub.example/def/lodpub#Measure> ; "
         "<http://www.w3.org/2000/01/rdf-schema#label> ?name } ORDER BY ?name ?m")
CONSTRUCT = "CONSTRUCT { ?m ?p ?o } WHERE { ?m a <https://lodpub.example/def/lodpub#Measure> ; ?p ?o }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def oxigraph(served_dist, tmp_path_factory):
    """Oxigraph's own server, read-only on a database holding the served edition in its named graph."""
    if not OXIGRAPH.exists():
        pytest.fail(f"{OXIGRAPH} is missing: `make test` installs the oxigraph server (PyPI oxigraph)")
    name = published.current(served_dist)
    graph = f"{Settings().dataset_iri}/{name}"
    location = tmp_path_factory.mktemp("oxigraph") / "db"
    subprocess.run([str(OXIGRAPH), "load", "--location", str(location), "--file",
                    str(served_dist / name / "measures.nt"), "--graph", graph], check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen([str(OXIGRAPH), "serve-read-only", "--location", str(location), "--bind",
                                f"127.0.0.1:{port}", "--timeout-s", "30"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    for _ in range(100):
        try:
            httpx.get(url, params={"query": "ASK {}"})
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="module")
def fronted(served_dist, oxigraph):
    """lodpub in front of the Oxigraph server; and an embedded lodpub to compare with."""
    settings = {"LODPUB_QUERY_TIMEOUT": "5", "LODPUB_MAX_ROWS": "100", "LODPUB_PAGE_SIZE": "5",
                "LODPUB_RESULT_CACHE_MB": "0"}
    remote = Server(served_dist, {**settings, "LODPUB_STORE": oxigraph})
    embedded = Server(served_dist, {**settings, "LODPUB_WORKERS": "1", "LODPUB_COLUMNAR_WORKERS": "0"})
    yield remote, embedded
    remote.stop()
    embedded.stop()


def solutions(response: httpx.Response) -> list[dict]:
    return json.loads(response.content)["results"]["bindings"]


@pytest.mark.parametrize("query", [COUNT, NAMES])
def test_a_select_through_the_store_gives_the_embedded_answer(fronted, query):
    remote, embedded = fronted
    ours, theirs = (httpx.get(f"{s.url}/sparql", params={"query": query}) for s in (remote, embedded))
    assert ours.status_code == theirs.status_code == 200
    assert solutions(ours) == solutions(theirs)
    assert ours.headers["content-type"].startswith("application/sparql-results+json")


@pytest.mark.parametrize("accept", ["text/csv", "text/tab-separated-values", "application/sparql-results+xml"])
def test_every_results_format_through_the_store_is_the_embedded_one(fronted, accept):
    remote, embedded = fronted
    ours, theirs = (httpx.get(f"{s.url}/sparql", params={"query": NAMES}, headers={"Accept": accept})
                    for s in (remote, embedded))
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content


def test_a_construct_through_the_store_is_the_same_graph(fronted):
    graphs = []
    for server in fronted:
        answer = httpx.get(f"{server.url}/sparql", params={"query": CONSTRUCT}, headers={"Accept": "text/turtle"})
        assert answer.status_code == 200
        graphs.append(rdflib.Graph().parse(data=answer.text, format="turtle"))
    assert len(graphs[0]) == len(graphs[1]) > 0 and rdflib.compare.isomorphic(graphs[0], graphs[1])


def test_the_row_cap_is_lodpubs_and_declared_whatever_the_store_returns(fronted):
    remote, _ = fronted
    answer = httpx.get(f"{remote.url}/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert answer.status_code == 200
    assert len(solutions(answer)) == 100 and answer.headers["x-sparql-maxrows"] == "100"


def test_the_policy_stays_in_front_of_the_store(fronted):
    remote, _ = fronted
    for query, status in (("INSERT DATA { <a:b> <a:c> <a:d> }", 403),
                          ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }", 403),
                          ("SELECT * WHERE { ?s ?p }", 400)):
        answer = httpx.get(f"{remote.url}/sparql", params={"query": query})
        assert answer.status_code == status, (query, answer.text)
        assert "Traceback" not in answer.text


def test_a_query_past_the_limit_is_stopped_and_refused_with_503(fronted):
    remote, _ = fronted
    endless = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    started = time.monotonic()
    answer = httpx.get(f"{remote.url}/sparql", params={"query": endless}, timeout=60)
    assert answer.status_code == 503 and "limit" in answer.text
    assert time.monotonic() - started < 30  # lodpub's 5-second limit, not the store's 30


def test_pages_and_documents_read_through_the_store(fronted):
    remote, embedded = fronted
    for path, accept in (("/doc/measure/1", "text/turtle"), ("/doc/unit/7", "application/n-triples")):
        graphs = [rdflib.Graph().parse(data=httpx.get(f"{s.url}{path}", headers={"Accept": accept}).text,
                                       format="turtle" if "turtle" in accept else "nt") for s in fronted]
        assert len(graphs[0]) > 0 and rdflib.compare.isomorphic(graphs[0], graphs[1]), path
    pages = [httpx.get(f"{s.url}/doc/measure/1", headers={"Accept": "text/html"}) for s in fronted]
    headings = [re.search(r"<h1[^>]*>(.*?)</h1>", page.text, re.S) for page in pages]
    assert [p.status_code for p in pages] == [200, 200] and headings[0] and headings[0][1] == headings[1][1]
    assert httpx.get(f"{remote.url}/browse/bureaus").text.count("<li") == \
        httpx.get(f"{embedded.url}/browse/bureaus").text.count("<li")
    assert httpx.get(f"{remote.url}/id/measure/999999").status_code == 404
    health = httpx.get(f"{remote.url}/health").json()
    assert health["status"] == "ok" and health["store"].endswith("/query")


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
    triples = sum(1 for line in (served_dist / name / "measures.nt").read_bytes().splitlines() if line.strip())
    assert done.stdout.strip() == f"loaded edition {name} into <{graph}> at {writable}/store: {triples:,} triples"
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
