"""/metrics: what an operator's Prometheus reads, counted where things happen, and only for operators."""

from __future__ import annotations

import re

import httpx
import pytest

from lodpub.serving import metrics

from conftest import Server

COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://lodpub.example/def/lodpub#Measure> }"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text format (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(part in (match.group(1) or "").split(",") for part in wanted.split(",") if part):
            return float(match.group(2))
    return 0.0


def test_requests_queries_cache_events_and_the_edition_are_counted(server):
    before = httpx.get(f"{server.url}/metrics").text
    assert httpx.get(f"{server.url}/doc/measure/1").status_code == 200
    for _ in range(2):  # the second from the result cache
        assert httpx.get(f"{server.url}/sparql", params={"query": COUNT + " # metrics"}).status_code == 200
    health = httpx.get(f"{server.url}/health").json()
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")  # the Prometheus text format
    after = response.text
    doc = {"route": "/doc/{kind}/{ident}", "status": "200"}
    assert sample(after, "lodpub_requests_total", **doc) == sample(before, "lodpub_requests_total", **doc) + 1
    sparql = {"route": "/sparql", "status": "200"}
    assert sample(after, "lodpub_requests_total", **sparql) >= sample(before, "lodpub_requests_total", **sparql) + 2
    assert sample(after, "lodpub_response_bytes_total", route="/doc/{kind}/{ident}") > \
        sample(before, "lodpub_response_bytes_total", route="/doc/{kind}/{ident}")
    ran = sum(sample(after, "lodpub_query_seconds_count", kind=k) for k in ("disk", "memory", "inline"))
    ran_before = sum(sample(before, "lodpub_query_seconds_count", kind=k) for k in ("disk", "memory", "inline"))
    assert ran == ran_before + 1  # evaluated once, then answered from the cache
    assert sample(after, "lodpub_answer_cache_total", result="hit") >= \
        sample(before, "lodpub_answer_cache_total", result="hit") + 1
    assert sample(after, "lodpub_edition_info", edition=health["edition"], issued=health["issued"]) == 1
    assert sample(after, "lodpub_workers_ready", kind="disk") >= 1
    assert sample(after, "process_open_fds") > 0  # the server process's own, from the default registry


def test_a_timeout_is_counted_as_an_event(server):
    cartesian = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } # metrics"
    before = sample(httpx.get(f"{server.url}/metrics").text, "lodpub_events_total", event="query_timeout")
    assert httpx.get(f"{server.url}/sparql", params={"query": cartesian}, timeout=30).status_code == 503
    after = sample(httpx.get(f"{server.url}/metrics").text, "lodpub_events_total", event="query_timeout")
    assert after == before + 1


def test_metrics_can_be_switched_off(served_dist):
    quiet = Server(served_dist, {"LODPUB_METRICS": "off", "LODPUB_WORKERS": "1"})
    try:
        response = httpx.get(f"{quiet.url}/metrics")
        assert response.status_code == 404
        assert "lodpub_" not in response.text
    finally:
        quiet.stop()


@pytest.mark.parametrize(("setting", "client", "allowed"), [
    ("loopback", "127.0.0.1", True), ("loopback", "::1", True), ("loopback", "127.8.9.1", True),
    ("loopback", "192.0.2.7", False), ("loopback", "2001:db8::1", False), ("loopback", None, False),
    ("loopback", "not an address", False), ("open", "192.0.2.7", True), ("off", "127.0.0.1", False)])
def test_who_may_read_the_metrics(setting, client, allowed):
    assert metrics.allowed(setting, client) is allowed
