"""agree.differs: the same answer in SPARQL's sense, whatever the bytes; fixes_order errs only towards True."""

from __future__ import annotations

import csv
import gzip
import io

import pyoxigraph as ox
import pytest

from lodpub import results
from lodpub.serving import agree

XSD = "http://www.w3.org/2001/XMLSchema#"
RESULT_FORMATS = ["json", "xml", "csv", "tsv"]
NATIVE = {"json": ox.QueryResultsFormat.JSON, "xml": ox.QueryResultsFormat.XML,
          "csv": ox.QueryResultsFormat.CSV, "tsv": ox.QueryResultsFormat.TSV}


def answer(query: str, fmt: str) -> bytes:
    """The answer pyoxigraph writes for ``query`` (over no data: the solutions come from VALUES)."""
    out = ox.Store().query(query)
    if isinstance(out, ox.QueryTriples):
        return ox.serialize(list(out), format=results.GRAPH_FORMATS[fmt])
    return out.serialize(format=NATIVE[fmt])


def values(rows: str, variables: str = "?a ?b") -> str:
    return f"SELECT {variables} WHERE {{ VALUES (?a ?b) {{ {rows} }} }}"


ROWS = '(<http://x/1> "一"@ja) (<http://x/2> 2) (<http://x/3> UNDEF) (<http://x/1> "一"@ja)'


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_the_same_answer_written_by_another_writer(fmt):
    solutions = ox.Store().query(values(ROWS))
    variables = [v.value for v in solutions.variables]
    rows = [tuple(s) for s in solutions]
    if fmt == "csv":  # results.select writes pyoxigraph's bytes there: quote every cell instead
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(
            [variables] + [["" if t is None else t.value for t in row] for row in rows])
        rewritten = text.getvalue().encode()
    else:
        rewritten = results.select(variables, rows, fmt, False, "")
    assert rewritten != answer(values(ROWS), fmt)  # other bytes (spacing, quoting, line ends)...
    assert agree.differs(fmt, answer(values(ROWS), fmt), rewritten, ordered=True) is None  # ...the same answer


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_reordered_solutions_differ_only_when_the_order_is_fixed(fmt):
    reordered = '(<http://x/3> UNDEF) (<http://x/1> "一"@ja) (<http://x/2> 2) (<http://x/1> "一"@ja)'
    reference, candidate = answer(values(ROWS), fmt), answer(values(reordered), fmt)
    assert agree.differs(fmt, reference, candidate, ordered=False) is None
    assert "solution 1 is" in agree.differs(fmt, reference, candidate, ordered=True)


@pytest.mark.parametrize("fmt", ["json", "xml", "tsv"])
def test_another_datatype_differs(fmt):
    def typed(datatype: str) -> bytes:  # (pyoxigraph's VALUES would make "2"^^xsd:unsignedInt an xsd:integer)
        row = (ox.NamedNode("http://x/1"), ox.Literal("2", datatype=ox.NamedNode(XSD + datatype)))
        return results.select(["a", "b"], [row], fmt, False, "")

    assert agree.differs(fmt, typed("integer"), typed("integer"), ordered=False) is None
    assert "unsignedInt" in agree.differs(fmt, typed("integer"), typed("unsignedInt"), ordered=False)


def test_csv_compares_what_a_csv_client_sees():
    """CSV writes no datatype or language: "2"^^xsd:integer and "2" are the same cell there."""
    assert agree.differs("csv", answer(values("(<http://x/1> 2)"), "csv"),
                         answer(values('(<http://x/1> "2"@ja)'), "csv"), ordered=True) is None
    assert agree.differs("csv", answer(values("(<http://x/1> 2)"), "csv"),
                         answer(values("(<http://x/1> 3)"), "csv"), ordered=True)


@pytest.mark.parametrize("fmt", ["json", "xml", "tsv"])
def test_another_language_differs(fmt):
    reason = agree.differs(fmt, answer(values('(<http://x/1> "一"@ja)'), fmt),
                           answer(values('(<http://x/1> "一"@en)'), fmt), ordered=False)
    assert reason and "en" in reason


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_a_missing_solution_differs(fmt):
    fewer = '(<http://x/1> "一"@ja) (<http://x/2> 2) (<http://x/3> UNDEF)'
    assert agree.differs(fmt, answer(values(ROWS), fmt), answer(values(fewer), fmt), ordered=False) == \
        "3 solutions, not 4"
    # as many solutions, but one of the duplicates replaced: a multiset, not a set
    other = fewer + " (<http://x/2> 2)"
    assert "is missing" in agree.differs(fmt, answer(values(ROWS), fmt), answer(values(other), fmt), ordered=False)


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_variables_in_another_order_differ(fmt):
    reason = agree.differs(fmt, answer(values(ROWS), fmt), answer(values(ROWS, "?b ?a"), fmt), ordered=False)
    assert reason == "the variables are ['b', 'a'], not ['a', 'b']"


BLANKS = "SELECT ?s ?o WHERE { VALUES ?o { 1 2 3 } BIND(BNODE() AS ?s) }"  # fresh labels on every run


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_blank_nodes_renamed_are_the_same(fmt):
    reference, candidate = answer(BLANKS, fmt), answer(BLANKS, fmt)
    assert reference != candidate  # other labels
    assert agree.differs(fmt, reference, candidate, ordered=True) is None
    assert agree.differs(fmt, reference, candidate, ordered=False) is None
    shared = "SELECT ?s ?o WHERE { BIND(BNODE('same') AS ?s) VALUES ?o { 1 2 3 } }"  # one node in every row
    assert "blank" in agree.differs(fmt, answer(shared, fmt), candidate, ordered=False)
    assert "blank" in agree.differs(fmt, answer(shared, fmt), candidate, ordered=True)


def rows_of_blank_pairs(pairs: list[tuple[str, str]]) -> bytes:
    rows = [(ox.BlankNode(a), ox.BlankNode(b)) for a, b in pairs]
    return results.select(["x", "y"], rows, "json", False, "")


def test_blank_nodes_alike_until_one_is_chosen():
    """A cycle of six and two cycles of three: every node looks the same to colour refinement."""
    six = rows_of_blank_pairs([(f"a{i}", f"a{(i + 1) % 6}") for i in range(6)])
    six_renamed = rows_of_blank_pairs([(f"z{5 - i}", f"z{(5 - i + 1) % 6}") for i in range(6)][::-1])
    two_threes = rows_of_blank_pairs([(f"b{i}", f"b{(i + 1) % 3}") for i in range(3)] +
                                     [(f"c{i}", f"c{(i + 1) % 3}") for i in range(3)])
    assert agree.differs("json", six, six_renamed, ordered=False) is None
    assert "no renaming" in agree.differs("json", six, two_threes, ordered=False)


@pytest.mark.parametrize("fmt", RESULT_FORMATS)
def test_booleans(fmt):
    yes, no = results.boolean(True, fmt), results.boolean(False, fmt)
    assert agree.differs(fmt, yes, results.boolean(True, fmt), ordered=False) is None
    assert agree.differs(fmt, yes, no, ordered=False)
    assert agree.differs(fmt, yes, answer(values(ROWS), fmt), ordered=False)


GRAPH = """CONSTRUCT { <http://x/m> <http://x/p> ?o . ?o <http://x/q> _:b } WHERE {
             VALUES ?o { "一"@ja 2 <http://x/o> } }"""


@pytest.mark.parametrize("fmt", ["ttl", "nt", "jsonld", "rdf"])
def test_graphs_compare_as_graphs(fmt):
    reference, candidate = answer(GRAPH, fmt), answer(GRAPH, fmt)
    assert agree.differs(fmt, reference, candidate, ordered=True) is None  # blank nodes renamed; no order
    other = answer(GRAPH.replace('"一"@ja', '"一"@en'), fmt)
    assert agree.differs(fmt, reference, other, ordered=False)
    fewer = answer(GRAPH.replace("<http://x/o> ", ""), fmt)
    assert agree.differs(fmt, reference, fewer, ordered=False) == "2 triples, not 4"


def test_a_graph_written_twice_is_one_graph():
    triples = list(ox.Store().query(GRAPH.replace("_:b", "<http://x/b>")))
    twice = ox.serialize(triples + triples, format=ox.RdfFormat.N_TRIPLES)
    assert agree.differs("nt", ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES), twice, ordered=False) is None


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_truncation_must_be_declared_by_both(fmt):
    rows = [(ox.NamedNode("http://x/1"),)]  # a variable named link is not a link
    cut = results.select(["link"], rows, fmt, True, "http://x/sparql#truncated")
    whole = results.select(["link"], rows, fmt, False, "")
    assert agree.differs(fmt, cut, whole, ordered=False) == "only one of them declares a truncation"
    assert agree.differs(fmt, cut, cut, ordered=False) is None
    assert agree.differs(fmt, whole, answer("SELECT ?link WHERE { BIND(<http://x/1> AS ?link) }", fmt),
                         ordered=False) is None


def test_the_same_bytes_are_not_even_read():
    assert agree.differs("json", b"not json", b"not json", ordered=True) is None  # the client gets the same


def test_gzipped_and_unreadable_answers():
    body = answer(values(ROWS), "json")
    assert agree.differs("json", gzip.compress(body), body, ordered=True) is None
    assert agree.differs("json", body, b'{"head": ', ordered=False).startswith("the candidate cannot be read")
    assert agree.differs("ttl", b"<a> <b> .", answer(GRAPH, "ttl"), ordered=False).startswith(
        "the reference cannot be read")


@pytest.mark.parametrize(("query", "ordered"), [
    ("SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s", True),
    ("SELECT ?s WHERE { ?s ?p ?o } order by desc(?s) LIMIT 5", True),
    ("SELECT ?s WHERE { ?s ?p ?o }", False),
    ("SELECT ?s WHERE { { SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 5 } }", False),  # a subquery's order
    ('SELECT ?s WHERE { ?s ?p "ORDER BY" } # ORDER BY', False),
    ("PREFIX order: <http://x/> SELECT ?s WHERE { ?s order:by ?o }", False),
    ("SELECT ?order WHERE { ?order ?p ?o }", False),
    ("SELECT ?s WHERE { ?s ?p ?o } \\u004FRDER BY ?s", True),
    ("SELECT ?s WHERE { ?s ?p ?o } } ORDER", True),  # unbalanced: cannot tell, so ordered
    ("SELECT ?s WHERE { ?s ?p ?o ", True),
])
def test_fixes_order(query, ordered):
    assert agree.fixes_order(query) is ordered


@pytest.mark.parametrize(("query", "open_"), [
    ("SELECT * WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 5", None),
    ("SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ?p ?o } GROUP BY ?s", None),
    ("SELECT * WHERE { { SELECT ?s WHERE { ?s ?p ?o } ORDER BY ?s LIMIT 3 } }", None),
    ('SELECT * WHERE { ?s ?p "LIMIT 3, GROUP_CONCAT" }', None),  # words inside a string are no keywords
    ("SELECT * WHERE { ?s ?p ?o } LIMIT 5", "LIMIT without ORDER BY"),
    ("SELECT * WHERE { { SELECT ?s WHERE { ?s ?p ?o } LIMIT 3 } } ORDER BY ?s", "LIMIT without ORDER BY"),
    ("SELECT * WHERE { ?s ?p ?o } OFFSET 5", "OFFSET without ORDER BY"),
    ("SELECT (GROUP_CONCAT(?o) AS ?x) WHERE { ?s ?p ?o }", "GROUP_CONCAT"),
    ("SELECT (sample(?o) AS ?x) WHERE { ?s ?p ?o }", "SAMPLE"),
    ("SELECT * WHERE { ?s ?p ?o BIND(RAND() AS ?r) }", "RAND"),
    ("SELECT * WHERE { ?s ?p ?o ", "unbalanced braces"),
])
def test_a_query_whose_answer_sparql_leaves_open_is_never_settled(query, open_):
    assert agree.settled(query) == open_
