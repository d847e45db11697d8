"""What a query worker answers: every format whole below the row cap, capped and declared above it.

Answers are written by pyoxigraph and only counted when they might pass the cap,
so the values here are the ones that could fool a count: markup, quotes, line
breaks, tabs and commas inside literals.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pyoxigraph as ox
import pytest

from lodpub.serving import engine, routing, worker

NASTY = ['<result>', 'a "quoted" },{"x":{"type":"uri"', "line\nbreak", "cr\r\nlf", "tab\there", "comma, \"csv\"",
         '}},{"v":', "<results><result></result>", "plain"]
ROWS = len(NASTY) + 3  # three more rows with nothing bound but ?s
QUERY = "SELECT ?s ?v WHERE { ?s <http://example.org/p> ?o OPTIONAL { ?s <http://example.org/v> ?v } }"


def fill(data: ox.Store) -> None:
    p, v = ox.NamedNode("http://example.org/p"), ox.NamedNode("http://example.org/v")
    for i in range(ROWS):
        s = ox.NamedNode(f"http://example.org/s{i}")
        data.add(ox.Quad(s, p, ox.Literal(str(i))))
        if i < len(NASTY):
            data.add(ox.Quad(s, v, ox.Literal(NASTY[i], language="ja" if i % 2 else None)))


@pytest.fixture(autouse=True)
def store():
    data = ox.Store()
    fill(data)
    worker._STORE[:] = [data]
    worker._KIND[:] = [engine.MEMORY]
    yield
    worker._STORE.clear()
    worker._KIND.clear()


def ask(fmt: str, max_rows: int, max_bytes: int = 10_000_000, query: str = QUERY) -> worker.Outcome:
    return worker.run(worker.Request(query=query, fmt=fmt, max_rows=max_rows, max_bytes=max_bytes,
                                     truncated_link="http://example.org/sparql#truncated"))


def parsed_rows(body: bytes, fmt: str) -> list[dict]:
    """The solutions, read back by an independent parser for each format."""
    if fmt == "json":
        return json.loads(body)["results"]["bindings"]
    if fmt == "xml":
        ns = "{http://www.w3.org/2005/sparql-results#}"
        return [{b.get("name"): "".join(b.itertext()) for b in r} for r in ET.fromstring(body).iter(ns + "result")]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    return [dict(zip(["s", "v"], line.split("\t"), strict=True)) for line in body.decode().split("\n")[1:-1]]


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_an_answer_within_the_cap_is_whole_and_not_marked(fmt):
    for cap in (ROWS, ROWS + 1, 10_000):
        outcome = ask(fmt, cap)
        assert not outcome.truncated and not outcome.error
        assert len(parsed_rows(outcome.body, fmt)) == ROWS
        assert worker.count_rows(outcome.body, fmt) == ROWS


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_an_answer_over_the_cap_is_cut_to_the_cap_and_says_so(fmt):
    for cap in (ROWS - 1, 3, 0):
        outcome = ask(fmt, cap)
        assert outcome.truncated
        assert len(parsed_rows(outcome.body, fmt)) == cap
    if fmt == "json":
        assert json.loads(ask(fmt, 3).body)["head"]["link"] == ["http://example.org/sparql#truncated"]


def test_literal_values_survive_the_native_writers():
    bindings = json.loads(ask("json", 100).body)["results"]["bindings"]
    assert sorted(b["v"]["value"] for b in bindings if "v" in b) == sorted(NASTY)
    assert {b["v"].get("xml:lang") for b in bindings if "v" in b} == {"ja", None}


def test_an_answer_over_the_byte_limit_is_refused_not_cut():
    outcome = ask("json", 100, max_bytes=200)
    assert outcome.too_large and outcome.body == b""


def test_a_query_error_comes_back_as_a_message():
    outcome = ask("json", 100, query="SELECT ?s WHERE { ?s ")
    assert outcome.error and outcome.body == b""


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_the_cheap_bound_on_rows_is_never_below_the_count(fmt):
    body = ask(fmt, 10_000).body
    assert worker.most_rows(body, fmt) >= worker.count_rows(body, fmt) == ROWS
    empty = ask(fmt, 10_000, query="SELECT ?s WHERE { ?s <http://example.org/none> ?o }").body
    assert worker.most_rows(empty, fmt) >= worker.count_rows(empty, fmt) == 0


# ------------------------------------------------------------------ cheap requests stay in the server

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f . ?g ?s ?h }"  # every 4-tuple of triples: milliseconds


@pytest.fixture
def on_disk(tmp_path) -> Path:
    path = tmp_path / "store"
    data = ox.Store(str(path))
    fill(data)
    data.flush()
    del data
    return path


def request(query: str) -> engine.Request:
    return engine.Request(query=query, fmt="json", max_rows=1000, max_bytes=10_000_000, truncated_link="")


def with_engine(path: Path, scenario):
    """``scenario(engine)`` against one worker and the server's own store, the worker's first query done
    (a fresh process's first query pays for starting up, and would not be measured cheap)."""
    async def main():
        queries = engine.Engine(path, path / "none.nt", 1, 0, 30, local=ox.Store.read_only(str(path)))
        await queries.start()
        try:
            await queries.answer(request("ASK { ?s ?p ?o }"))
            assert queries.stats["inline"] == 0
            return await scenario(queries)
        finally:
            await queries.stop()
    return asyncio.run(main())


def answers(path: Path, queries: list[str]) -> tuple[list[bytes], list[int]]:
    """Each query's answer, and how many requests the server's own store had answered after each."""
    async def scenario(queries_engine):
        bodies, inline = [], []
        for query in queries:
            bodies.append((await queries_engine.answer(request(query))).body)
            inline.append(queries_engine.stats["inline"])
        return bodies, inline
    return with_engine(path, scenario)


def test_a_request_answered_quickly_is_answered_again_in_the_server_the_same(on_disk):
    bodies, inline = answers(on_disk, [QUERY] * 6)
    assert inline[0] == 0  # the first answer comes from a worker, which measures it
    assert inline[-1] >= 3  # (a run the machine happened to interrupt may be measured slow once or twice)
    assert len(set(bodies)) == 1
    assert len(json.loads(bodies[0])["results"]["bindings"]) == ROWS


def test_a_request_that_takes_longer_stays_with_the_workers_and_their_time_limit(on_disk):
    bodies, inline = answers(on_disk, [SLOW] * 3)
    assert inline == [0, 0, 0]
    assert json.loads(bodies[-1])["results"]["bindings"][0]["n"]["value"] == str((ROWS + len(NASTY)) ** 4)


def test_a_long_request_is_not_remembered_so_it_always_goes_to_the_workers(on_disk):
    long_query = QUERY + "\n# " + "x" * engine.COST_QUERY_MAX  # however cheap: its text alone is too big to keep
    bodies, inline = answers(on_disk, [long_query] * 4)
    assert inline == [0, 0, 0, 0]
    assert len(json.loads(bodies[-1])["results"]["bindings"]) == ROWS


# ------------------------------------------------------------------ workers on disk and in memory

@pytest.fixture
def dump(tmp_path, on_disk) -> Path:
    path = tmp_path / "measures.nt"
    ox.Store.read_only(str(on_disk)).dump(path, format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
    return path


def with_two_kinds(path: Path, dump: Path, scenario, ready: int = 2, timeout: float = 30):
    """``scenario(engine)`` against a worker on the disk store and one on a copy in memory, once ``ready``
    workers are."""
    async def main():
        queries = engine.Engine(path, dump, 2, 1, timeout)
        await queries.start()
        try:
            for _ in range(100):
                if sum(queries.stats["ready"].values()) == ready:
                    break
                await asyncio.sleep(0.1)
            return await scenario(queries)
        finally:
            await queries.stop()
    return asyncio.run(main())


def test_a_request_runs_once_on_each_kind_of_store_then_stays_on_the_faster(on_disk, dump):
    async def scenario(queries):
        assert queries.ready  # both kinds loaded
        return [await queries.answer(request(QUERY)) for _ in range(4)]
    outcomes = with_two_kinds(on_disk, dump, scenario)
    assert [o.store for o in outcomes[:2]] == ["disk", "memory"]  # on disk first: see the next tests
    assert outcomes[2].store == outcomes[3].store  # the fastest run so far only gets faster
    # The same solutions; without ORDER BY each store lists them in its own order.
    solutions = [sorted(json.dumps(b, sort_keys=True) for b in json.loads(o.body)["results"]["bindings"])
                 for o in outcomes]
    assert all(s == solutions[0] for s in solutions) and len(solutions[0]) == ROWS


def test_a_copy_that_cannot_be_loaded_leaves_the_disk_worker_answering(on_disk, tmp_path, caplog):
    broken = tmp_path / "broken.nt"
    broken.write_text("<http://example.org/s> <http://example.org/p> .\n")
    async def scenario(queries):
        outcomes = [await queries.answer(request(QUERY)) for _ in range(2)]
        for _ in range(100):  # the copy is tried in the background
            if "did not start" in caplog.text:
                break
            await asyncio.sleep(0.1)
        return outcomes, queries.stats["ready"], queries.ready
    outcomes, ready, all_loaded = with_two_kinds(on_disk, broken, scenario, ready=1)
    assert ready == {"memory": 0, "disk": 1}
    assert not all_loaded  # /health says "starting" (503) while the disk worker answers
    assert "worker (memory) did not start (SyntaxError: " in caplog.text and "broken.nt, line 1" in caplog.text
    assert [o.store for o in outcomes] == ["disk", "disk"]
    assert len(json.loads(outcomes[0].body)["results"]["bindings"]) == ROWS


def test_one_worker_always_reads_the_disk_store(on_disk, dump):
    assert engine.Engine(on_disk, dump, 1, 1, 30).memory_workers == 0
    assert engine.Engine(on_disk, dump, 4, 9, 30).memory_workers == 3


def test_copies_are_loaded_only_while_they_take_at_most_half_the_memory_available():
    dump = 100 << 20  # a copy of it takes ~300 MB
    assert engine.copies_that_fit(1, dump, available=600 << 20) == 1
    assert engine.copies_that_fit(1, dump, available=599 << 20) == 0
    assert engine.copies_that_fit(3, dump, available=1300 << 20) == 2
    assert engine.copies_that_fit(2, dump, available=None) == 2  # not Linux: nothing to go by


def test_a_request_that_timed_out_on_disk_never_costs_the_copy_in_memory_and_is_refused_after(on_disk, dump):
    endless = "SELECT (COUNT(*) AS ?n) WHERE { " + " ".join(f"?a{i} ?p{i} ?o{i} ." for i in range(8)) + " }"
    async def scenario(queries):
        with pytest.raises(engine.QueryTimeout) as stopped:
            await queries.answer(request(endless))
        for _ in range(100):  # both kinds idle again: the choice is the engine's, not what was left
            if queries.stats["ready"] == {"memory": 1, "disk": 1}:
                break
            await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(engine.TooLong):
            await queries.answer(request(endless))
        return stopped.value.kind, time.monotonic() - started, queries.stats
    kind, refused_after, stats = with_two_kinds(on_disk, dump, scenario, timeout=0.5)
    assert kind == "disk"
    assert refused_after < 0.05  # at once: it would only have taken another worker for its whole limit
    assert (stats["timeouts"], stats["replaced"], stats["too_long"]) == (1, 1, 1)


def test_a_request_that_needs_more_memory_than_a_worker_may_use_ends_it_and_is_refused_after(on_disk):
    # Six triples of 21 joined: 8.6 x 10^7 rows, whose text concatenated passes a 256 MiB cap in a second or two.
    greedy = ("SELECT (GROUP_CONCAT(CONCAT(STR(?a), STR(?b), STR(?c))) AS ?x) WHERE { "
              + " ".join(f"?{v} ?p{v} ?o{v} ." for v in "abcdef") + " }")
    async def scenario(queries):
        with pytest.raises(engine.OutOfMemory):  # not QueryTimeout: the cap, not the limit, ended it
            await queries.answer(request(greedy))
        with pytest.raises(engine.OutOfMemory):  # refused without running: it would only end another worker
            await queries.answer(request(greedy))
        answered = await queries.answer(request(QUERY))  # the worker was replaced
        return answered, queries.stats
    async def main():
        queries = engine.Engine(on_disk, on_disk / "none.nt", 1, 0, 300, worker_memory=256 << 20)
        await queries.start()
        try:
            return await scenario(queries)
        finally:
            await queries.stop()
    answered, stats = asyncio.run(main())
    assert len(json.loads(answered.body)["results"]["bindings"]) == ROWS
    assert (stats["replaced"], stats["too_big"], stats["timeouts"]) == (1, 1, 0)


def test_a_request_stopped_after_a_wait_runs_again_only_with_its_whole_limit_ahead(on_disk, dump):
    endless = "SELECT (COUNT(*) AS ?n) WHERE { " + " ".join(f"?a{i} ?p{i} ?o{i} ." for i in range(8)) + " }"
    async def scenario(queries):
        loop = asyncio.get_running_loop()
        with pytest.raises(engine.QueryTimeout) as first:  # as if it had waited 0.8 s of its 1 s
            await queries.answer(request(endless), arrived=loop.time() - 0.8)
        started = time.monotonic()
        with pytest.raises(engine.Waited):  # 0.7 s left: not enough to show what it costs
            await queries.answer(request(endless), arrived=loop.time() - 0.3)
        told_after = time.monotonic() - started
        for _ in range(100):  # the stopped worker replaced
            if queries.stats["ready"] == {"memory": 1, "disk": 1}:
                break
            await asyncio.sleep(0.1)
        with pytest.raises(engine.QueryTimeout):  # its whole limit: it runs to the end of it
            await queries.answer(request(endless))
        with pytest.raises(engine.TooLong):  # and is not run again
            await queries.answer(request(endless))
        return first.value.ran, told_after, queries.stats["timeouts"]
    ran, told_after, timeouts = with_two_kinds(on_disk, dump, scenario, timeout=1)
    assert ran < 0.5 and told_after < 0.05 and timeouts == 2


def test_a_request_is_tried_on_another_kind_only_while_that_cannot_cost_it_its_answer():
    kinds = ["memory", "disk"]
    assert routing.preferred_kind(kinds, {}, timeout=10) == "disk"
    assert routing.preferred_kind(kinds, {"disk": 0.2}, timeout=10) == "memory"
    assert routing.preferred_kind(kinds, {"disk": 3.0}, timeout=10) == "disk"  # 4x that would not fit
    assert routing.preferred_kind(kinds, {"memory": 0.2, "disk": 0.1}, timeout=10) == "disk"
    assert routing.preferred_kind(kinds, {"disk": 10}, timeout=10) == "disk"  # a timeout counts as the limit
    assert routing.preferred_kind(["disk"], {"disk": 0.5}, timeout=10) == "disk"


def test_only_a_request_known_to_fit_may_take_a_copy_in_memory_when_the_disk_workers_are_busy():
    kinds = ["memory", "disk"]
    assert routing.allowed_kinds(kinds, {}, timeout=10) == ("disk",)  # never run: it may be pathological
    assert routing.allowed_kinds(kinds, {"disk": 0.2}, timeout=10) is None  # known to fit with room to spare
    assert routing.allowed_kinds(kinds, {"disk": 2.5}, timeout=10) == ("disk",)  # 4x that would not fit
    assert routing.allowed_kinds(["memory"], {}, timeout=10) is None  # no disk worker: nothing to keep it to


def test_requests_wait_in_the_lane_of_their_fastest_run():
    assert routing.lane({}) == "new"
    assert routing.lane({}, stopped=0.4) == "new"  # stopped early (its wait took its time): still unknown
    assert routing.lane({}, stopped=2.0) == "heavy"
    assert routing.lane({"disk": 0.01, "memory": 2.0}) == "cheap"
    assert routing.lane({"disk": 0.3}) == "normal"
    assert routing.lane({"disk": 1.5}) == "heavy"


# ------------------------------------------------------------------ a candidate engine, checked against the reference

def with_candidate(path: Path, dump: Path, scenario):
    """``scenario(engine)`` against a disk worker (the reference) and a columnar one (maplib), once both are."""
    async def main():
        queries = engine.Engine(path, dump, 1, 0, 30, columnar_workers=1)
        await queries.start()
        try:
            for _ in range(300):
                if queries.stats["ready"].get("columnar"):
                    break
                await asyncio.sleep(0.1)
            assert queries.stats["ready"] == {"disk": 1, "columnar": 1}
            return await scenario(queries)
        finally:
            await queries.stop()
    return asyncio.run(main())


async def checked(queries, query: str) -> list[engine.Outcome]:
    """The request answered once, then again once the candidate was checked on it (and a few times more)."""
    first = await queries.answer(request(query))
    for _ in range(200):
        if not queries._checking:
            break
        await asyncio.sleep(0.05)
    return [first] + [await queries.answer(request(query)) for _ in range(4)]


def test_a_candidate_is_trusted_for_a_request_only_once_it_gave_the_reference_answer(on_disk, dump):
    same = "SELECT ?s (COUNT(?o) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s ORDER BY ?s"
    async def scenario(queries):
        outcomes = await checked(queries, same)
        known = queries._known[request(same)]
        return outcomes, known.trusted, dict(known.runs), queries.stats["candidates"]
    outcomes, trusted, runs, candidates = with_candidate(on_disk, dump, scenario)
    assert outcomes[0].store == "disk"  # nothing unchecked reaches a client
    assert trusted == {"columnar": True} and "columnar" in runs and candidates["agreed"] == 1
    # Trusted, it answers whenever it was the faster; whoever answers, the answer is the reference's.
    assert {o.store for o in outcomes[1:]} <= {"disk", "columnar"}
    assert all(o.body == outcomes[0].body for o in outcomes)


def test_a_request_the_candidate_cannot_answer_or_answers_differently_stays_on_the_reference(on_disk, dump):
    cannot = "ASK { ?s ?p ?o }"  # maplib has no ASK
    # maplib gives REDUCED one row; pyoxigraph keeps every distinct one (as REDUCED allows both: not the same)
    differs = "SELECT REDUCED ?p WHERE { ?s ?p ?o } ORDER BY ?p"
    async def scenario(queries):
        asked = await checked(queries, cannot)
        other = await checked(queries, differs)
        return asked, other, queries._known[request(cannot)].trusted, queries._known[request(differs)].trusted, \
            queries.stats["candidates"]
    asked, other, cannot_trusted, differs_trusted, candidates = with_candidate(on_disk, dump, scenario)
    assert cannot_trusted == {"columnar": False} and differs_trusted == {"columnar": False}
    assert candidates["declined"] == 1 and candidates["differed"] == 1 and candidates["answered"] == 0
    assert {o.store for o in asked + other} == {"disk"}
    assert len({o.body for o in other}) == 1
