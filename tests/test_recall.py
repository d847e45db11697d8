"""A restart forgets nothing it needs to be fast: the requests an edition answered last are kept when its server
stops, and the next server of that edition answers them for nobody before /health says ready — on the reference
first, then on the candidate, checked as for a client — so that their first client meets the fastest checked
kind (which kind that is depends on the size: at the seed's, pyoxigraph; bench/RESULTS.md has 100,000). Nothing kept is trusted, and nothing stopped at its limit is run again."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from lodpub import published
from lodpub.store import cache_root

from conftest import Server, served_tree

GROUPED = ("SELECT ?unit (COUNT(?m) AS ?n) WHERE { ?m <https://lodpub.example/def/lodpub#responsibleUnit> ?unit }"
           " GROUP BY ?unit ORDER BY DESC(?n) ?unit")
PATHOLOGICAL = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
SETTINGS = {"LODPUB_RESULT_CACHE_MB": "0", "LODPUB_COLUMNAR_WORKERS": "1", "LODPUB_WARM_SECONDS": "30",
            "LODPUB_QUERY_TIMEOUT": "2"}


@pytest.fixture
def tree(tmp_path):
    dist = served_tree(tmp_path)
    return dist, cache_root(dist) / published.current(dist) / "recent.json"


def health(server: Server) -> dict:
    return httpx.get(f"{server.url}/health").json()


def until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_restarted_server_checks_the_kept_requests_on_the_candidate_before_it_is_ready(tree):
    dist, kept = tree
    first = Server(dist, SETTINGS)
    try:
        answer = httpx.get(f"{first.url}/sparql", params={"query": GROUPED})
        until(lambda: health(first)["candidates"]["agreed"] == 1)
        assert health(first)["candidates"]["agreed"] == 1
    finally:
        first.stop()
    assert [r["query"] for r in json.loads(kept.read_text(encoding="utf-8"))["requests"]] == [GROUPED]

    second = Server(dist, SETTINGS)  # returns once /health says ready
    try:
        ready = health(second)
        again = httpx.get(f"{second.url}/sparql", params={"query": GROUPED})
        after = health(second)
    finally:
        second.stop()
    assert ready["status"] == "ok"
    assert ready["candidates"]["agreed"] == 1 and ready["warmed_at_start"] >= 1  # checked before any client came
    assert again.status_code == 200 and again.content == answer.content
    # Its first client found it known: no first try on the reference, no check to make then.
    assert sum(after["candidates"].values()) - after["candidates"]["answered"] == 1


def test_a_server_told_to_start_cold_warms_nothing(tree):
    dist, kept = tree
    first = Server(dist, SETTINGS)
    try:
        httpx.get(f"{first.url}/sparql", params={"query": GROUPED})
    finally:
        first.stop()
    assert kept.exists()
    cold = Server(dist, {**SETTINGS, "LODPUB_WARM_SECONDS": "0"})
    try:
        ready = health(cold)
    finally:
        cold.stop()
    assert ready["warmed_at_start"] == 0 and ready["candidates"]["agreed"] == 0


def test_a_request_stopped_at_its_limit_is_never_kept_to_be_run_again(tree):
    dist, kept = tree
    first = Server(dist, {**SETTINGS, "LODPUB_COLUMNAR_WORKERS": "0"})
    try:
        assert httpx.get(f"{first.url}/sparql", params={"query": PATHOLOGICAL}, timeout=30).status_code == 503
        assert httpx.get(f"{first.url}/sparql", params={"query": "ASK { ?s ?p ?o }"}).status_code == 200
    finally:
        first.stop()
    assert [r["query"] for r in json.loads(kept.read_text(encoding="utf-8"))["requests"]] == ["ASK { ?s ?p ?o }"]


@pytest.mark.parametrize("content", ["{not json", '{"version": 99, "requests": []}', '{"version": 1}'])
def test_a_kept_file_that_cannot_be_read_is_a_cold_start_never_a_failed_one(tree, content):
    dist, kept = tree
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(content, encoding="utf-8")
    server = Server(dist, SETTINGS)
    try:
        ready = health(server)
        asked = httpx.get(f"{server.url}/sparql", params={"query": "ASK { ?s ?p ?o }"})
    finally:
        server.stop()
    assert ready["status"] == "ok" and ready["warmed_at_start"] == 0
    assert asked.status_code == 200
