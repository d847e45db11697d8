"""The query policy: refuse what writes or reaches outside, never what only mentions it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodpub.serving.sparql_guard import QueryRefused, check

DATASET = "https://lodpub.example/data/measures"


@pytest.mark.parametrize("query", [
    "SELECT * { ?s ?p ?o }",
    "PREFIX ex: <http://e/> SELECT * { ?s ex:SERVICE ?o } # SERVICE in a comment",
    'SELECT * { ?s ?p "SERVICE <http://x/>" }',
    "ASK { ?s ?p '''many\nSERVICE\nlines''' }",
    "SELECT ?service { ?service ?p ?o FILTER(?o < 3) }",
    f"SELECT * FROM <{DATASET}> {{ ?s ?p ?o }}",
    "PREFIX d: <https://lodpub.example/data/> SELECT * FROM NAMED d:measures { ?s ?p ?o }",
    "SELECT * { <http://example.org/INSERT> ?p ?o }",
])
def test_queries_that_only_mention_keywords_pass(query):
    assert check(query, [DATASET]) in ("SELECT", "ASK")


@pytest.mark.parametrize(("query", "status", "words"), [
    ("select * { service <http://127.0.0.1:1/> { ?s ?p ?o } }", 403, "SERVICE is not allowed"),
    ("SELECT * { ?s ?p ?o . SERVICE SILENT <http://x/> {} }", 403, "SERVICE is not allowed"),
    ("SELECT * { \\u0053ERVICE <http://x/> { ?s ?p ?o } }", 403, "SERVICE is not allowed"),
    ("INSERT DATA { <a:b> <a:c> <a:d> }", 403, "read-only: SPARQL Update (INSERT)"),
    ("PREFIX x: <y:> DELETE WHERE { ?s ?p ?o }", 403, "read-only: SPARQL Update (DELETE)"),
    ("LOAD <http://example.org/data.ttl>", 403, "read-only: SPARQL Update (LOAD)"),
    ("SELECT * FROM <file:///etc/passwd> { ?s ?p ?o }", 400, "<file:///etc/passwd> is not served here"),
    ("PREFIX e: <http://127.0.0.1/> SELECT * FROM NAMED e:g { ?s ?p ?o }", 400, "<http://127.0.0.1/g>"),
])
def test_what_writes_or_reaches_outside_is_refused(query, status, words):
    with pytest.raises(QueryRefused) as refused:
        check(query, [DATASET])
    assert refused.value.status == status
    assert words in str(refused.value)


@given(st.text(st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs",)), max_size=60))
def test_no_string_literal_makes_a_query_refused(text):
    assert check(f'SELECT * {{ ?s ?p "{text}" }}', [DATASET]) == "SELECT"


def test_nesting_deeper_than_a_person_writes_is_refused_before_the_parser_sees_it():
    deep = "SELECT * WHERE " + "{" * 101 + " ?s ?p ?o " + "}" * 101
    with pytest.raises(QueryRefused, match="more than 100 deep") as refused:
        check(deep, [])
    assert refused.value.status == 400
    assert check("SELECT * WHERE " + "{" * 99 + " ?s ?p ?o " + "}" * 99, []) == "SELECT"
    braces = 'SELECT * WHERE { ?s ?p "' + "{" * 500 + '" }'  # in a string they are text, not nesting
    assert check(braces, []) == "SELECT"
