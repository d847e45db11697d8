"""What a query worker answers: every format whole below the row cap, capped and declared above it.

Answers are written by pyoxigraph and only counted when they might pass the cap,
so the values here are the ones that could fool a count: markup, quotes, line
breaks, tabs and commas inside literals.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pyoxigraph as ox
import pytest

from lodpub import engine

NASTY = ['<result>', 'a "quoted" },{"x":{"type":"uri"', "line\nbreak", "cr\r\nlf", "tab\there", "comma, \"csv\"",
         '}},{"v":', "<results><result></result>", "plain"]
ROWS = len(NASTY) + 3  # three more rows with nothing bound but ?s
QUERY = "SELECT ?s ?v WHERE { ?s <http://example.org/p> ?o OPTIONAL { ?s <http://example.org/v> ?v } }"


@pytest.fixture(autouse=True)
def store():
    data = ox.Store()
    p, v = ox.NamedNode("http://example.org/p"), ox.NamedNode("http://example.org/v")
    for i in range(ROWS):
        s = ox.NamedNode(f"http://example.org/s{i}")
        data.add(ox.Quad(s, p, ox.Literal(str(i))))
        if i < len(NASTY):
            data.add(ox.Quad(s, v, ox.Literal(NASTY[i], language="ja" if i % 2 else None)))
    engine._STORE[:] = [data]
    yield
    engine._STORE.clear()


def ask(fmt: str, max_rows: int, max_bytes: int = 10_000_000, query: str = QUERY) -> engine.Outcome:
    return engine.run(engine.Request(query=query, fmt=fmt, max_rows=max_rows, max_bytes=max_bytes,
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
        assert engine.count_rows(outcome.body, fmt) == ROWS


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
    assert engine.most_rows(body, fmt) >= engine.count_rows(body, fmt) == ROWS
    empty = ask(fmt, 10_000, query="SELECT ?s WHERE { ?s <http://example.org/none> ?o }").body
    assert engine.most_rows(empty, fmt) >= engine.count_rows(empty, fmt) == 0
