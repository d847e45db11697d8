"""A remote store's SELECT answer, as lodpub writes it on: parsed once when it is too short to pass the row cap,
and then the same bytes as pyoxigraph writes; counted and cut, the cut declared, when it may pass it."""

from __future__ import annotations

import json

import pyoxigraph as ox
import pytest

from lodpub.serving.remote import Remote
from lodpub.serving.worker import NATIVE, Request

QUERY = "SELECT ?s ?label WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY ?s"


def store_answer(rows: int) -> bytes:
    """What a SPARQL store sends for QUERY over ``rows`` labelled resources: SPARQL JSON, written by pyoxigraph."""
    store = ox.Store()
    label = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
    for i in range(rows):
        store.add(ox.Quad(ox.NamedNode(f"urn:x:{i:02}"), label, ox.Literal(f"名前 {i}", language="ja")))
    answer = store.query(QUERY)
    assert isinstance(answer, ox.QuerySolutions)
    return answer.serialize(format=ox.QueryResultsFormat.JSON) or b""


def request(fmt: str, max_rows: int) -> Request:
    return Request(QUERY, fmt, max_rows, 1 << 20, "https://lodpub.example/sparql")


@pytest.mark.parametrize("fmt", ["json", "xml", "csv", "tsv"])
def test_an_answer_under_the_cap_is_written_as_pyoxigraph_writes_it(fmt: str) -> None:
    body = store_answer(5)
    outcome = Remote._written(body, False, request(fmt, 10_000))
    expected = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
    assert isinstance(expected, ox.QuerySolutions)
    assert not outcome.truncated
    assert outcome.body == expected.serialize(format=NATIVE[fmt])


@pytest.mark.parametrize(("rows", "cap", "truncated"), [(5, 3, True), (3, 3, False), (40, 39, True)])
def test_a_short_answer_past_the_cap_is_still_cut_and_the_cut_declared(rows: int, cap: int, truncated: bool) -> None:
    """Bodies of a few hundred bytes with caps of a few rows: a bound on rows taken from the body's length must
    not let any of them through uncounted."""
    outcome = Remote._written(store_answer(rows), False, request("json", cap))
    written = json.loads(outcome.body)
    assert outcome.truncated is truncated
    assert len(written["results"]["bindings"]) == min(rows, cap)
    assert [b["s"]["value"] for b in written["results"]["bindings"]] == [f"urn:x:{i:02}" for i in range(min(rows,
                                                                                                          cap))]
