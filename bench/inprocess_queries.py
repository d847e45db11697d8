#!/usr/bin/env python3
"""The researcher queries run in-process on pyoxigraph: the floor under any HTTP endpoint's latency.

Each query is evaluated and its answer serialized as an endpoint would send it
(SPARQL JSON for SELECT/ASK, Turtle for CONSTRUCT), once to warm up, then
``--repeat`` times; prints the median milliseconds per query as JSON. Run it
with lodpub's own Python, so the pyoxigraph is the one lodpub serves with.

    python bench/inprocess_queries.py DIST [--store disk|memory] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pyoxigraph as ox

from lodpub.published import current
from lodpub.store import STORE_DIR, cache_root

QUERIES = Path(__file__).resolve().parent / "queries"


def open_store(dist: Path, kind: str) -> ox.Store:
    """The store lodpub build wrote for the current edition (read-only), or an in-memory copy of the dump."""
    if kind == "disk":
        return ox.Store.read_only(str(cache_root(dist) / str(current(dist)) / STORE_DIR))
    store = ox.Store()
    store.bulk_load(path=str(dist / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
    return store


def answer(store: ox.Store, query: str) -> bytes:
    """Evaluate and serialize, as an endpoint must."""
    result = store.query(query)
    if isinstance(result, ox.QueryTriples):
        return result.serialize(format=ox.RdfFormat.TURTLE) or b""
    return result.serialize(format=ox.QueryResultsFormat.JSON) or b""


def median_ms(store: ox.Store, query: str, repeat: int, slow_s: float) -> float:
    t = time.perf_counter()
    answer(store, query)
    first = time.perf_counter() - t
    if first > slow_s:
        return first * 1000
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        answer(store, query)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path)
    parser.add_argument("--store", choices=["disk", "memory"], default="disk")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow-seconds", type=float, default=15.0)
    args = parser.parse_args()
    t = time.perf_counter()
    store = open_store(args.dist, args.store)
    opened = time.perf_counter() - t
    medians = {path.stem: round(median_ms(store, path.read_text(encoding="utf-8"), args.repeat, args.slow_seconds), 2)
               for path in sorted(QUERIES.glob("*.rq"))}
    print(json.dumps({"store": args.store, "open_s": round(opened, 2), "median_ms": medians}))


if __name__ == "__main__":
    main()
