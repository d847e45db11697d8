"""Metrics for operators, in the Prometheus text format at /metrics (``prometheus-client``).

Counted where things happen, for the life of the process (an edition switch does not reset them):
requests by route and status and the bytes sent (the access log), query durations by where the query
ran (the engine: a worker on disk or in memory, or inline in the server), answers from the cache, and
every event of ``events.py`` (timeouts, refusals, workers lost and replaced, edition switches). Read at
each scrape: the edition served, its workers ready and queries running or waiting. The default registry
also has the server process's own memory, CPU and open files (the query workers are separate processes:
``bench/soak.py`` samples those).

Who may read it is a setting (``metrics``): loopback only by default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter("lodpub_requests", "HTTP requests answered, by route and status", ["route", "status"])
BYTES = Counter("lodpub_response_bytes", "Bytes of response bodies sent, by route", ["route"])
QUERY_SECONDS = Histogram("lodpub_query_seconds", "Time to evaluate and write a SPARQL answer, by where it ran "
                          "(disk, memory: a worker; inline: the server's own store)", ["kind"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
CACHE = Counter("lodpub_answer_cache", "SPARQL answers looked up in the result cache", ["result"])
CANDIDATE_CHECKS = Counter("lodpub_candidate_checks", "Requests a candidate engine was checked on, or answered once "
                           "trusted, by verdict: agreed (trusted for that request), differed, declined (it cannot "
                           "answer it), failed", ["kind", "verdict"])
CACHE_HIT, CACHE_MISS = CACHE.labels("hit"), CACHE.labels("miss")
EVENTS = Counter("lodpub_events", "Events logged (events.py): query_timeout, query_refused, queue_full, "
                 "query_waited_out, worker_lost, worker_replaced, worker_start_failed, edition, ...", ["event"])


class Serving(Collector):
    """What is true at the moment of a scrape: the edition served and the state of its workers."""

    def __init__(self, state: Callable[[], dict[str, Any]]):
        self.state = state  # the current edition's name, issued date, triples and engine stats

    def collect(self) -> Iterator[Any]:
        now = self.state()
        yield InfoMetricFamily("lodpub_edition", "The edition served", value={
            "edition": now["edition"], "issued": now["issued"]})
        yield GaugeMetricFamily("lodpub_triples", "Triples in the edition served", value=now["triples"])
        ready = GaugeMetricFamily("lodpub_workers_ready", "Query workers ready, by kind", labels=["kind"])
        for kind, count in now["ready"].items():
            ready.add_metric([kind], count)
        yield ready
        yield GaugeMetricFamily("lodpub_queries_running", "Queries running in workers", value=now["running"])
        yield GaugeMetricFamily("lodpub_queries_waiting", "Queries waiting for a worker", value=now["waiting"])


def register(state: Callable[[], dict[str, Any]]) -> Serving:
    """Add the serving state to the registry (once per server; a second call replaces the first)."""
    for collector in [c for c in list(REGISTRY._collector_to_names) if isinstance(c, Serving)]:
        REGISTRY.unregister(collector)
    collector = Serving(state)
    REGISTRY.register(collector)
    return collector


def allowed(setting: str, client: str | None) -> bool:
    """Whether ``client`` (its address) may read the metrics under the ``metrics`` setting."""
    if setting == "open":
        return True
    if setting != "loopback" or not client:
        return False
    try:
        return ipaddress.ip_address(client).is_loopback
    except ValueError:
        return False


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its media type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
