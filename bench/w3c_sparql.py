"""Run the W3C SPARQL query evaluation tests (w3c/rdf-tests, copied under bench/w3c/rdf-tests) on each engine.

    .venv/bin/python bench/w3c_sparql.py [--engines pyoxigraph,maplib,oxigraph-server,virtuoso] [--verbose]
        [--timeout 10] [--only SUBSTRING] [--suite sparql11|sparql10|all] [--json OUT.json]

Every ``mf:QueryEvaluationTest`` (and ``mf:CSVResultFormatTest``) of the copied manifests is run on each
engine: the test's dataset (``qt:data`` into the default graph, ``qt:graphData`` and the query's own
``FROM``/``FROM NAMED`` files into named graphs called by their IRIs) is loaded into a fresh store, the query
is evaluated with the query file's IRI as base, and the answer is compared with the expected one as the W3C
harnesses do: SELECT as a multiset of solutions up to blank node renaming, in order when the expected
results carry ``rs:index``, as a set when the test has ``mf:LaxCardinality`` (REDUCED); ASK as a boolean;
CONSTRUCT/DESCRIBE as graph isomorphism; CSV results (lossy by design) as strings; variables as sets. Terms
are compared as terms (``"01"^^xsd:integer`` is not ``"1"^^xsd:integer``), language tags without regard to
case; an answer equal only once numeric and boolean literals are compared by value (as Oxigraph's own harness
compares) counts apart, as "pass by value".

Each engine runs in a worker process of its own; a test that has not answered within ``--timeout`` seconds
counts as an error and its worker is killed and started again, as is one that died (a panic that aborts).

Engines:
- ``pyoxigraph``: in-process memory ``Store`` (the engine lodpub uses), in this interpreter.
- ``maplib``: a ``maplib.Model`` per test, ``Model.read`` for the data and ``Model.query(..., return_json=True)``
  for the answer (SPARQL JSON results for SELECT, N-Triples/Turtle text for CONSTRUCT); the query gets a
  ``BASE``. It runs in the first interpreter of ``--maplib-python``, this one, or ``/tmp/w3c-venv/bin/python``
  that can import it (``pip install maplib``).
- ``oxigraph-server``: Oxigraph's HTTP server (``oxigraph serve`` from PyPI's ``oxigraph``, in the interpreter
  that has it) on a fresh in-memory store on a loopback port; each test clears it, loads its files through
  the graph store protocol and sends the query with ``BASE`` prepended.
- ``virtuoso``: Virtuoso 7 (Debian's ``virtuoso-t``) on a database of its own in a temporary directory, loopback
  ports; each test drops the previous test's graphs, inserts its files with SPARQL Update, and names its
  dataset with the protocol's ``default-graph-uri`` / ``named-graph-uri`` (unless the query has FROM).

An engine that cannot be started is skipped with its reason printed. Output: pass / pass by value / fail /
error counts per engine, per manifest and per suite, and the kinds of failure; ``--verbose`` lists every test
that did not pass with a one-line reason; ``--json`` writes every outcome. Exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE / "w3c" / "rdf-tests"
BASE = "https://w3c.github.io/rdf-tests/"  # IRI of SUITE (the suite's published location)

MF = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#"
QT = "http://www.w3.org/2001/sw/DataAccess/tests/test-query#"
RS = "http://www.w3.org/2001/sw/DataAccess/tests/result-set#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DAWGT = "http://www.w3.org/2001/sw/DataAccess/tests/test-dawg#"
XSD_STRING = XSD + "string"
LANG_STRING = RDF + "langString"

RUN_TYPES = {MF + "QueryEvaluationTest", MF + "CSVResultFormatTest"}
RDF_FORMATS = {".ttl": "turtle", ".nt": "ntriples", ".rdf": "rdf/xml", ".n3": "turtle"}
OTHER_PYTHONS = [Path("/tmp/w3c-venv/bin/python")]

# Parts of w3c/rdf-tests' SPARQL tree not copied here, and why (their tests are counted in the README).
NOT_COPIED = {
    "sparql11 update (add, basic-update, clear, copy, delete*, drop, move, update-silent)": "update tests",
    "sparql11/entailment": "entailment regimes (RDFS, OWL, D-entailment), not plain query evaluation",
    "sparql11/service": "federated query (SERVICE) needs remote endpoints",
    "sparql11 protocol, http-rdf-update, graph-store-protocol, service-description": "HTTP protocol tests",
    "sparql11/syntax-*, sparql10/syntax-sparql1..5": "syntax tests, not evaluation tests",
}


# ------------------------------------------------------------------ terms
# A term is a tuple: ("I", iri), ("B", label) or ("L", lexical form, datatype IRI, language or "").
# Plain literals get xsd:string, language-tagged ones rdf:langString; language tags are lower-cased.


def lit(lex: str, datatype: str | None = None, lang: str | None = None) -> tuple:
    if lang:
        return ("L", lex, LANG_STRING, lang.lower())
    return ("L", lex, datatype or XSD_STRING, "")


def from_json_term(t: list | None) -> tuple | None:
    """A term as a worker sends it: ["I", iri] | ["B", label] | ["L", lex, datatype, lang]."""
    if t is None:
        return None
    if t[0] == "L":
        return lit(t[1], t[2], t[3])
    return (t[0], t[1])


def show(t: tuple | None) -> str:
    if t is None:
        return "UNBOUND"
    if t[0] == "V":
        return f"{t[2]}^^{t[1].replace(XSD, 'xsd:')}(by value)"
    if t[0] == "I":
        return f"<{t[1]}>"
    if t[0] == "B":
        return f"_:{t[1]}"
    text = json.dumps(t[1], ensure_ascii=False)
    if t[3]:
        return f"{text}@{t[3]}"
    if t[2] == XSD_STRING:
        return text
    short = t[2].replace(XSD, "xsd:")
    return f"{text}^^{short if short != t[2] else '<' + t[2] + '>'}"


def ox_term(t) -> tuple:
    """A pyoxigraph term (NamedNode, BlankNode, Literal) as a term tuple."""
    import pyoxigraph as ox

    if isinstance(t, ox.NamedNode):
        return ("I", t.value)
    if isinstance(t, ox.BlankNode):
        return ("B", t.value)
    if isinstance(t, ox.Literal):
        return lit(t.value, t.datatype.value, t.language)
    return ("I", f"<<unsupported term {t}>>")


def json_term(t: tuple | None) -> list | None:
    if t is None:
        return None
    return list(t)


# ------------------------------------------------------------------ results


@dataclass
class Result:
    kind: str  # "boolean" | "solutions" | "graph"
    boolean: bool | None = None
    variables: list[str] = field(default_factory=list)
    rows: list[dict[str, tuple]] = field(default_factory=list)
    triples: list[tuple] = field(default_factory=list)
    ordered: bool = False
    csv: bool = False  # rows hold CSV cells (strings) instead of terms


def parse_rdf_file(path: Path, base: str) -> list[tuple]:
    import pyoxigraph as ox

    fmt = ox.RdfFormat.from_extension(path.suffix.lstrip(".")) or ox.RdfFormat.TURTLE
    return [(ox_term(t.subject), ox_term(t.predicate), ox_term(t.object))
            for t in ox.parse(path=str(path), format=fmt, base_iri=base)]


def result_from_rdf(triples: list[tuple]) -> Result | None:
    """A result set written in the rs: vocabulary, or None when the triples are not one (then a graph)."""
    sets = [s for s, p, o in triples if p == ("I", RDF + "type") and o == ("I", RS + "ResultSet")]
    if not sets:
        return None
    by_sp: dict[tuple, list] = defaultdict(list)
    for s, p, o in triples:
        by_sp[(s, p[1])].append(o)
    rs = sets[0]
    if by_sp.get((rs, RS + "boolean")):
        return Result("boolean", boolean=by_sp[(rs, RS + "boolean")][0][1] in ("true", "1"))
    variables = [o[1] for o in by_sp.get((rs, RS + "resultVariable"), [])]
    rows, indexes = [], []
    for sol in by_sp.get((rs, RS + "solution"), []):
        row = {}
        for b in by_sp.get((sol, RS + "binding"), []):
            var, value = by_sp[(b, RS + "variable")][0][1], by_sp[(b, RS + "value")][0]
            row[var] = value
        rows.append(row)
        index = by_sp.get((sol, RS + "index"))
        indexes.append(int(index[0][1]) if index else None)
    ordered = any(i is not None for i in indexes)
    if ordered:
        rows = [r for _, r in sorted(zip(indexes, rows, strict=True), key=lambda x: (x[0] is None, x[0] or 0))]
    return Result("solutions", variables=variables, rows=rows, ordered=ordered)


def read_expected(path: Path, base: str) -> Result:
    import pyoxigraph as ox

    suffix = path.suffix.lower()
    if suffix in (".srx", ".srj", ".tsv"):
        fmt = {".srx": ox.QueryResultsFormat.XML, ".srj": ox.QueryResultsFormat.JSON,
               ".tsv": ox.QueryResultsFormat.TSV}[suffix]
        parsed = ox.parse_query_results(path=str(path), format=fmt)
        if isinstance(parsed, ox.QueryBoolean):
            return Result("boolean", boolean=bool(parsed))
        variables = [v.value for v in parsed.variables]
        rows = [{v: ox_term(s[v]) for v in variables if s[v] is not None} for s in parsed]
        return Result("solutions", variables=variables, rows=rows)
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        variables = table[0] if table else []
        rows = [{v: c for v, c in zip(variables, r, strict=False) if c != ""} for r in table[1:]]
        return Result("solutions", variables=variables, rows=rows, csv=True)
    triples = parse_rdf_file(path, base)
    return result_from_rdf(triples) or Result("graph", triples=triples)


def result_from_worker(answer: dict) -> Result:
    if answer["kind"] == "boolean":
        return Result("boolean", boolean=bool(answer["boolean"]))
    if answer["kind"] == "graph":
        return Result("graph", triples=[tuple(from_json_term(t) for t in tr) for tr in answer["triples"]])
    variables = answer["variables"]
    rows = [{v: from_json_term(t) for v, t in zip(variables, r, strict=True) if t is not None}
            for r in answer["rows"]]
    return Result("solutions", variables=variables, rows=rows)


def csv_cell(t: tuple) -> str:
    if t[0] == "B":
        return "_:" + t[1]
    return t[1]


# ------------------------------------------------------------------ comparison


def row_key(row: dict) -> frozenset:
    return frozenset(row.items())


def is_blank(value) -> bool:
    return (isinstance(value, tuple) and value[:1] == ("B",)) or (isinstance(value, str) and value.startswith("_:"))


def iso_rows(expected: list[dict], actual: list[dict]) -> bool:
    """Multisets of solutions equal up to a one-to-one renaming of blank nodes."""
    if len(expected) != len(actual):
        return False
    fixed_e = Counter(row_key(r) for r in expected if not any(is_blank(v) for v in r.values()))
    fixed_a = Counter(row_key(r) for r in actual if not any(is_blank(v) for v in r.values()))
    if fixed_e != fixed_a:
        return False
    rest_e = [r for r in expected if any(is_blank(v) for v in r.values())]
    rest_a = [r for r in actual if any(is_blank(v) for v in r.values())]
    if not rest_e and not rest_a:
        return True
    # Blank nodes: encode the rows as a graph (a fresh node per row) and ask rdflib for an isomorphism.
    from rdflib import BNode, Graph, Literal, URIRef
    from rdflib.compare import isomorphic

    def graph_of(rows: list[dict]) -> Graph:
        g = Graph()
        for i, row in enumerate(rows):
            node = BNode(f"row{i}")
            g.add((node, URIRef("urn:w3c:row"), Literal("row")))
            for var, value in row.items():
                obj = BNode("v" + (value[1] if isinstance(value, tuple) else value[2:])) if is_blank(value) \
                    else Literal(repr(value))
                g.add((node, URIRef("urn:w3c:var:" + var), obj))
        return g

    return isomorphic(graph_of(rest_e), graph_of(rest_a))


def ordered_rows(expected: list[dict], actual: list[dict]) -> bool:
    """Sequences of solutions equal position by position, blank nodes renamed one-to-one."""
    if len(expected) != len(actual):
        return False
    forward: dict = {}
    backward: dict = {}
    for e, a in zip(expected, actual, strict=True):
        if e.keys() != a.keys():
            return False
        for var, ev in e.items():
            av = a[var]
            if is_blank(ev) and is_blank(av):
                if forward.setdefault(ev, av) != av or backward.setdefault(av, ev) != ev:
                    return False
            elif ev != av:
                return False
    return True


def iso_graphs(expected: list[tuple], actual: list[tuple]) -> bool:
    from rdflib import BNode, Graph, Literal, URIRef
    from rdflib.compare import isomorphic

    def node(t: tuple):
        if t[0] == "B":
            return BNode(t[1])
        if t[0] == "I":
            return URIRef(t[1])
        return Literal(repr(t))

    def graph_of(triples: list[tuple]) -> Graph:
        g = Graph()
        for s, p, o in triples:
            g.add((node(s), node(p), node(o)))
        return g

    return isomorphic(graph_of(expected), graph_of(actual))


NUMERIC = {XSD + n for n in ("integer", "decimal", "float", "double", "int", "long", "short", "byte",
                             "unsignedInt", "unsignedLong", "unsignedShort", "unsignedByte", "nonNegativeInteger",
                             "positiveInteger", "negativeInteger", "nonPositiveInteger")}
INTEGERS = NUMERIC - {XSD + "decimal", XSD + "float", XSD + "double"}


def by_value(t):
    """A numeric or boolean literal as its datatype and value; any other term as it is.

    Oxigraph's own harness compares this way: it passes expected and actual results through a store, which
    keeps such literals by value (``"1.0"^^xsd:decimal`` comes back as ``"1"^^xsd:decimal``)."""
    if isinstance(t, tuple) and t[0] == "L":
        if t[2] in NUMERIC:
            try:
                return ("V", t[2], str(Decimal(t[1]).normalize()))
            except (InvalidOperation, ValueError):
                return t
        if t[2] == XSD + "boolean" and t[1] in ("true", "false", "1", "0"):
            return ("V", t[2], "true" if t[1] in ("true", "1") else "false")
    return t


def integer_typed(t):
    """Any integer type as xsd:integer (maplib types COUNT as xsd:unsignedInt)."""
    t = by_value(t)
    if isinstance(t, tuple) and t[0] == "V" and t[1] in INTEGERS:
        return ("V", XSD + "integer", t[2])
    return t


def untyped_number(t):
    """A number as its value alone, whatever its numeric type."""
    t = by_value(t)
    if isinstance(t, tuple) and t[0] == "V" and t[1] in NUMERIC:
        return ("V", "number", t[2])
    return t


def mapped(r: Result, f) -> Result:
    return Result(r.kind, boolean=r.boolean, variables=r.variables, ordered=r.ordered, csv=r.csv,
                  rows=[{k: f(v) for k, v in row.items()} for row in r.rows],
                  triples=[tuple(f(x) for x in t) for t in r.triples])


def rows_equal(expected: Result, actual_rows: list[dict], lax: bool) -> bool:
    e_rows = expected.rows
    if lax:  # REDUCED: any number of duplicates may go; compare the sets of solutions
        e_rows = list({row_key(r): r for r in e_rows}.values())
        actual_rows = list({row_key(r): r for r in actual_rows}.values())
    if expected.ordered:
        return ordered_rows(e_rows, actual_rows)
    return iso_rows(e_rows, actual_rows)


def equal(expected: Result, actual: Result, lax: bool) -> bool:
    if expected.kind != actual.kind:
        return False
    if expected.kind == "boolean":
        return expected.boolean == actual.boolean
    if expected.kind == "graph":
        return iso_graphs(expected.triples, actual.triples)
    return set(expected.variables) == set(actual.variables) and rows_equal(expected, actual.rows, lax)


def difference(expected: Result, actual: Result, lax: bool, hints: bool = True) -> str:
    """One line on how ``actual`` differs from ``expected``; ``hints``: say which relaxation makes them equal."""
    if expected.kind != actual.kind:
        return f"expected a {expected.kind} result, got a {actual.kind} one"
    if expected.kind == "boolean":
        return f"expected {str(expected.boolean).lower()}, got {str(actual.boolean).lower()}"
    if expected.kind == "graph":
        e = {tuple(show(x) for x in t) for t in expected.triples}
        a = {tuple(show(x) for x in t) for t in actual.triples}
        missing, extra = sorted(e - a), sorted(a - e)
        return (f"graphs not isomorphic: {len(expected.triples)} triples expected, {len(actual.triples)} got"
                + (f"; missing e.g. {' '.join(missing[0])}" if missing else "")
                + (f"; unexpected e.g. {' '.join(extra[0])}" if extra else ""))
    if set(expected.variables) != set(actual.variables):
        same = rows_equal(expected, actual.rows, lax)
        return (f"variables differ: expected {sorted(expected.variables)}, got {sorted(actual.variables)}"
                + (" (solutions otherwise equal)" if same else ""))
    why = ""
    if not hints:
        why = "lexical forms differ: "
    elif expected.ordered and not lax and iso_rows(expected.rows, actual.rows):
        why = "same solutions in another order (ORDER BY): "
    else:
        for label, f in (("with every integer type read as xsd:integer", integer_typed),
                         ("with numbers compared by value whatever their type", untyped_number)):
            if rows_equal(mapped(expected, f), mapped(actual, f).rows, lax):
                why = f"equal {label}: "
                break
    e_set = Counter(row_key(r) for r in expected.rows)
    a_set = Counter(row_key(r) for r in actual.rows)

    def fmt(key: frozenset) -> str:
        return "{" + ", ".join(f"?{k}={show(v) if isinstance(v, tuple) else json.dumps(v)}"
                               for k, v in sorted(key)) + "}"

    missing = sorted(((e_set - a_set).elements()), key=fmt)
    extra = sorted(((a_set - e_set).elements()), key=fmt)

    return (why + f"{len(expected.rows)} solutions expected, {len(actual.rows)} got"
            + (f"; missing e.g. {fmt(missing[0])}" if missing else "")
            + (f"; unexpected e.g. {fmt(extra[0])}" if extra else ""))


def compare(expected: Result, actual: Result, lax: bool) -> tuple[str, str]:
    """("pass" | "value" | "fail", reason).

    "pass": equal term for term. "value": equal only once numeric and boolean literals are compared by value
    (as Oxigraph's harness compares); the reason says what differed as terms. "fail": not equal either way."""
    if expected.csv:
        actual = Result("solutions", variables=actual.variables,
                        rows=[{k: csv_cell(v) for k, v in r.items()} for r in actual.rows])
    if equal(expected, actual, lax):
        return "pass", ""
    if equal(mapped(expected, by_value), mapped(actual, by_value), lax):
        return "value", difference(expected, actual, lax, hints=False)
    return "fail", difference(mapped(expected, by_value), mapped(actual, by_value), lax)


# ------------------------------------------------------------------ manifests


@dataclass
class Test:
    iri: str
    name: str
    manifest: str  # e.g. "sparql11/aggregates"
    query: Path
    query_base: str
    result: Path | None
    data: list[Path] = field(default_factory=list)
    graph_data: list[Path] = field(default_factory=list)
    lax: bool = False
    form: str = "?"
    projection: list[str] = field(default_factory=list)  # a SELECT's projection list, in order
    requires: list[str] = field(default_factory=list)
    approval: str = ""


def to_path(iri: str) -> Path:
    if not iri.startswith(BASE):
        raise ValueError(f"{iri} is outside the suite")
    return SUITE / urllib.parse.unquote(iri[len(BASE):])


def to_iri(path: Path) -> str:
    return BASE + urllib.parse.quote(path.resolve().relative_to(SUITE.resolve()).as_posix())


def read_manifest(path: Path) -> tuple[list[Test], Counter]:
    """The runnable tests of one manifest, and a count of its other entries by type."""
    triples = parse_rdf_file(path, to_iri(path))
    by_sp: dict[tuple, list] = defaultdict(list)
    for s, p, o in triples:
        by_sp[(s, p[1])].append(o)

    def one(s, p):
        values = by_sp.get((s, p))
        return values[0] if values else None

    def items(node) -> list:
        out = []
        while node and node != ("I", RDF + "nil"):
            out.append(one(node, RDF + "first"))
            node = one(node, RDF + "rest")
        return out

    group = path.parent.resolve().relative_to((SUITE / "sparql").resolve()).as_posix()
    tests, other = [], Counter()
    manifests = [s for s, p, o in triples if p == ("I", RDF + "type") and o == ("I", MF + "Manifest")]
    for entries in [e for m in manifests for e in by_sp.get((m, MF + "entries"), [])]:
        for entry in items(entries):
            types = {t[1] for t in by_sp.get((entry, RDF + "type"), [])}
            run = types & RUN_TYPES
            if not run:
                other[" ".join(sorted(t.split("#")[-1] for t in types))] += 1
                continue
            action = one(entry, MF + "action")
            query = one(action, QT + "query") if action and action[0] == "B" else action
            result = one(entry, MF + "result")
            name = one(entry, MF + "name")
            tests.append(Test(
                iri=entry[1], name=name[1] if name else entry[1].rsplit("#", 1)[-1], manifest=group,
                query=to_path(query[1]), query_base=query[1],
                result=to_path(result[1]) if result else None,
                data=[to_path(d[1]) for d in by_sp.get((action, QT + "data"), [])] if action[0] == "B" else [],
                graph_data=[to_path(d[1]) for d in by_sp.get((action, QT + "graphData"), [])]
                if action[0] == "B" else [],
                lax=one(entry, MF + "resultCardinality") == ("I", MF + "LaxCardinality"),
                requires=[r[1].split("#")[-1] for r in by_sp.get((entry, MF + "requires"), [])],
                approval=(one(entry, DAWGT + "approval") or ("I", ""))[1].split("#")[-1],
            ))
    return tests, other


FORM_RE = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)


def query_form(text: str) -> str:
    """SELECT, ASK, CONSTRUCT or DESCRIBE: the first such keyword outside comments, strings and IRIs."""
    text = re.sub(r"<[^<>\s]*>|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", " ", text)
    text = re.sub(r"#[^\n]*", "", text)
    m = FORM_RE.search(text)
    return m.group(1).upper() if m else "?"


def projection(text: str) -> list[str]:
    """The variables of the outer SELECT's projection list, in order ([] for SELECT * or another form)."""
    text = re.sub(r"<[^<>\s]*>|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", " ", text)
    text = re.sub(r"#[^\n]*", "", text)
    m = re.search(r"\bSELECT\s+(?:DISTINCT\s+|REDUCED\s+)?", text, re.IGNORECASE)
    if not m or query_form(text) != "SELECT":
        return []
    out, depth, after_as = [], 0, False
    for tok in re.finditer(r"[()]|[?$][A-Za-z0-9_\u00b7-\U000effff]+|\bAS\b|\bWHERE\b|\{|\bFROM\b|\*|\S",
                           text[m.end():], re.IGNORECASE):
        word = tok.group(0)
        if depth == 0 and (word == "{" or word.upper() in ("WHERE", "FROM") or word == "*"):
            break
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif word.upper() == "AS":
            after_as = True
        elif word[0] in "?$" and (depth == 0 or (depth == 1 and after_as)):
            out.append(word[1:])
            after_as = False
    return out


def failure_class(status: str, why: str, form: str) -> str:
    """A failure's reason without its particulars, to count failures of one kind together."""
    if status == "value":
        return "equal by value only (lexical forms of numbers differ)"
    if status == "error":
        text = re.sub(r"\d+", "N", why.split("\n")[0])
        text = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", "…", text)
        return f"error on {form}: {text[:90]}"
    for hint in ("variables differ", "same solutions in another order", "equal with every integer type",
                 "equal with numbers compared by value", "graphs not isomorphic", "expected a "):
        if why.startswith(hint):
            return f"{form}: {why.split(':')[0]}"
    if form == "ASK" or why.startswith("expected true") or why.startswith("expected false"):
        return f"{form}: wrong boolean"
    m = re.match(r"(\d+) solutions expected, (\d+) got", why)
    if m:
        return f"{form}: {'wrong number of solutions' if m.group(1) != m.group(2) else 'wrong values'}"
    return f"{form}: {why[:60]}"


FROM_RE = re.compile(r"\bFROM\s+(NAMED\s+)?<([^>]*)>", re.IGNORECASE)


def query_dataset(text: str, base: str) -> list[tuple[str, str]]:
    """(graph IRI, local file) for each FROM / FROM NAMED of the query whose file is in the suite."""
    text = re.sub(r"(?m)#[^\n<>\"']*$", "", text)
    out = []
    for m in FROM_RE.finditer(text):
        iri = urllib.parse.urljoin(base, m.group(2))
        with contextlib.suppress(ValueError):
            path = to_path(iri)
            if path.exists() and (iri, str(path)) not in out:
                out.append((iri, str(path)))
    return out


def request_of(test: Test) -> dict:
    text = test.query.read_text(encoding="utf-8")
    graphs = [(to_iri(p), str(p)) for p in test.graph_data]
    own = query_dataset(text, test.query_base)
    for iri, path in own:
        if (iri, path) not in graphs:
            graphs.append((iri, path))
    return {"query": text, "base": test.query_base, "form": test.form, "query_dataset": bool(own),
            "data": [(str(p), to_iri(p)) for p in test.data], "graphs": graphs}


# ------------------------------------------------------------------ workers (one process per engine)


def worker_main(engine: str, out_fd: int) -> None:
    """Answer requests read from stdin, one JSON object a line, on fd ``out_fd`` (stdout goes to stderr)."""
    out = os.fdopen(out_fd, "w", encoding="utf-8", buffering=1)
    try:
        run, version = ENGINE_SETUP[engine]()
    except BaseException as e:
        out.write(json.dumps({"unavailable": f"{type(e).__name__}: {e}"}) + "\n")
        return
    out.write(json.dumps({"ready": version, "servers": SERVER_PIDS}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        t0 = time.perf_counter()
        try:
            answer = run(req)
        except BaseException as e:
            answer = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
        answer["ms"] = round((time.perf_counter() - t0) * 1000, 2)
        out.write(json.dumps(answer) + "\n")


def setup_pyoxigraph():
    import pyoxigraph as ox

    def fmt(path: str):
        return ox.RdfFormat.from_extension(Path(path).suffix.lstrip(".")) or ox.RdfFormat.TURTLE

    def run(req: dict) -> dict:
        store = ox.Store()
        for path, base in req["data"]:
            store.load(path=path, format=fmt(path), base_iri=base)
        for name, path in req["graphs"]:
            store.load(path=path, format=fmt(path), base_iri=name, to_graph=ox.NamedNode(name))
        r = store.query(req["query"], base_iri=req["base"])
        if isinstance(r, ox.QueryBoolean):
            return {"kind": "boolean", "boolean": bool(r)}
        if isinstance(r, ox.QuerySolutions):
            variables = [v.value for v in r.variables]
            rows = [[json_term(ox_term(s[v])) if s[v] is not None else None for v in variables] for s in r]
            return {"kind": "solutions", "variables": variables, "rows": rows}
        return {"kind": "graph", "triples": [[json_term(ox_term(x)) for x in (t.subject, t.predicate, t.object)]
                                             for t in r]}

    return run, f"pyoxigraph {ox.__version__}"


def results_json_term(b: dict) -> list:
    """A term of SPARQL JSON results (``typed-literal``, Virtuoso's and SPARQL 1.0's, included)."""
    kind = b.get("type")
    if kind == "uri":
        return ["I", b["value"]]
    if kind == "bnode":
        return ["B", b["value"]]
    lang = b.get("xml:lang") or b.get("lang")
    return ["L", b["value"], LANG_STRING if lang else b.get("datatype") or XSD_STRING, (lang or "").lower()]


def answer_from_results_json(text: str | bytes) -> dict:
    doc = json.loads(text)
    if "boolean" in doc:
        return {"kind": "boolean", "boolean": bool(doc["boolean"])}
    variables = doc["head"].get("vars", [])
    rows = [[results_json_term(b[v]) if v in b else None for v in variables] for b in doc["results"]["bindings"]]
    return {"kind": "solutions", "variables": variables, "rows": rows}


def with_base(req: dict) -> str:
    """The query with a BASE for engines that take no base IRI, unless it has one (Virtuoso takes only one)."""
    if re.search(r"(?im)^\s*BASE\s*<", req["query"]):
        return req["query"]
    return f"BASE <{req['base']}>\n{req['query']}"


def parse_triples_terms(text: str, fmt: str = "N_TRIPLES") -> list[list]:
    import pyoxigraph as ox

    return [[json_term(ox_term(x)) for x in (t.subject, t.predicate, t.object)]
            for t in ox.parse(text, format=getattr(ox.RdfFormat, fmt))]


def setup_maplib():
    import importlib.metadata

    import maplib

    def run(req: dict) -> dict:
        m = maplib.Model()
        for path, base in req["data"]:
            m.read(path, format=RDF_FORMATS.get(Path(path).suffix, "turtle"), base_iri=base)
        for name, path in req["graphs"]:
            m.read(path, format=RDF_FORMATS.get(Path(path).suffix, "turtle"), base_iri=name, graph=name)
        r = m.query(with_base(req), return_json=True)
        if isinstance(r, list):
            r = "\n".join(x if isinstance(x, str) else str(x) for x in r)
        text = r if isinstance(r, str) else str(r)
        if text.lstrip().startswith("{"):
            return answer_from_results_json(text)
        # N-Triples, mostly; with a BASE in the query maplib writes object lists ("s p o1 , o2 ."): read Turtle
        return {"kind": "graph", "triples": parse_triples_terms(text, "TURTLE")}

    return run, f"maplib {importlib.metadata.version('maplib')}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_PIDS: list[int] = []  # servers this worker started (the parent kills them too if the worker dies)


def start_server(command: list[str], cwd: str | None = None, remove: str | None = None) -> subprocess.Popen:
    """A server of this worker's own, in a process group of its own, killed when the worker ends or is ended;
    ``remove``: a directory of the server's to delete then."""
    import atexit

    server = subprocess.Popen(command, stdout=sys.stderr, stderr=sys.stderr, cwd=cwd, start_new_session=True)
    SERVER_PIDS.append(server.pid)

    def stop(*args) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        if remove:
            shutil.rmtree(remove, ignore_errors=True)
        if args:
            sys.exit(1)

    atexit.register(stop)
    signal.signal(signal.SIGTERM, stop)
    return server


def http(url: str, method: str = "GET", body: bytes | None = None, ctype: str | None = None,
         accept: str | None = None) -> tuple[str, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        text = " ".join(e.read().decode(errors="replace").split())
        raise RuntimeError(f"HTTP {e.code}: {text[:300]}") from None


def wait_for(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            http(url)
            return
        except (OSError, RuntimeError):
            if server.poll() is not None:
                raise RuntimeError(f"server exited with status {server.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from {url} in {seconds:g} s") from None
            time.sleep(0.1)


def ntriples_of(path: str, base: str) -> bytes:
    """A data file as N-Triples, parsed here with its base IRI (which an HTTP load cannot carry)."""
    import pyoxigraph as ox

    fmt = ox.RdfFormat.from_extension(Path(path).suffix.lstrip(".")) or ox.RdfFormat.TURTLE
    return ox.serialize(ox.parse(path=path, format=fmt, base_iri=base), format=ox.RdfFormat.N_TRIPLES) or b""


def setup_oxigraph_server():
    """Oxigraph's server on a fresh in-memory store, driven over HTTP from this worker."""
    binary = os.environ.get("W3C_OXIGRAPH_BIN") or shutil.which("oxigraph")
    if not binary:
        raise RuntimeError("no oxigraph binary (pip install oxigraph)")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    url = f"http://127.0.0.1:{free_port()}"
    server = start_server([binary, "serve", "--bind", url.removeprefix("http://")])
    wait_for(url + "/query?query=" + urllib.parse.quote("ASK {}"), server, 60)

    def run(req: dict) -> dict:
        http(url + "/update", "POST", b"DROP ALL", "application/sparql-update")
        for path, base in req["data"]:
            if nt := ntriples_of(path, base):
                http(url + "/store?default", "POST", nt, "application/n-triples")
        for name, path in req["graphs"]:
            if nt := ntriples_of(path, name):
                http(url + "/store?graph=" + urllib.parse.quote(name, safe=""), "POST", nt, "application/n-triples")
        ctype, body = http(url + "/query", "POST", with_base(req).encode(),
                           "application/sparql-query", "application/sparql-results+json, application/n-triples;q=0.9")
        if "json" in ctype:
            return answer_from_results_json(body)
        return {"kind": "graph", "triples": parse_triples_terms(body.decode())}

    return run, version or "oxigraph server"


VIRTUOSO_INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{isql_port}
DisableUnixSocket = 1
MaxClientConnections = 4
CheckpointInterval = 0
CaseMode = 2
DirsAllowed = .
NumberOfBuffers = 20000
MaxDirtyBuffers = 15000
MaxQueryMem = 256M
ThreadsPerQuery = 1
AsyncQueueMaxThreads = 2

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {db}
MaxClientConnections = 4
ServerThreads = 4
MaxKeepAlives = 4
KeepAliveTimeout = 10
Charset = UTF-8
EnabledGzipContent = 0

[SPARQL]
ResultSetMaxRows = 100000
MaxQueryExecutionTime = 60
"""
DEFAULT_GRAPH = "urn:w3c-sparql:default"  # the test's default graph, named in default-graph-uri
NO_GRAPH = "urn:w3c-sparql:none"  # named-graph-uri for a test without named graphs


def setup_virtuoso():
    """Virtuoso 7 (Debian's virtuoso-t) on a database of its own, driven over HTTP from this worker.

    The protocol's default-graph-uri / named-graph-uri give each query its test's dataset (Virtuoso reads the
    union of all its graphs otherwise), unless the query has FROM / FROM NAMED of its own; data goes in with
    SPARQL Update (INSERT DATA of the file as N-Triples), which the SPARQL account is granted once."""
    import tempfile

    binary, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt") or shutil.which("isql")
    if not binary or not isql:
        raise RuntimeError("virtuoso-t / isql-vt not found (apt-get install virtuoso-opensource)")
    version = subprocess.run([binary, "-?"], capture_output=True, text=True, timeout=30)
    version = next((line for line in (version.stdout + version.stderr).splitlines() if "Version" in line), "")
    db = tempfile.mkdtemp(prefix="w3c-virtuoso-")
    isql_port, http_port = free_port(), free_port()
    Path(db, "virtuoso.ini").write_text(VIRTUOSO_INI.format(db=db, isql_port=isql_port, http_port=http_port))
    server = start_server([binary, "+foreground", "+configfile", f"{db}/virtuoso.ini"], cwd=db, remove=db)
    url = f"http://127.0.0.1:{http_port}/sparql"
    wait_for(url + "?query=" + urllib.parse.quote("ASK {}"), server, 120)
    grant = subprocess.run([isql, f"127.0.0.1:{isql_port}", "dba", "dba", 'exec=GRANT SPARQL_UPDATE TO "SPARQL";'],
                           capture_output=True, text=True, timeout=60)
    if grant.returncode:
        raise RuntimeError(f"isql GRANT failed: {grant.stdout[-300:]} {grant.stderr[-300:]}")
    loaded: list[str] = []

    def update(text: str) -> None:
        http(url, "POST", urllib.parse.urlencode({"update": text}).encode(), "application/x-www-form-urlencoded",
             "*/*")

    def run(req: dict) -> dict:
        for graph in loaded:
            update(f"DROP SILENT GRAPH <{graph}>")
        loaded.clear()
        for target, path, base in ([(DEFAULT_GRAPH, p, b) for p, b in req["data"]]
                                   + [(n, p, n) for n, p in req["graphs"]]):
            if target not in loaded:
                loaded.append(target)
            if nt := ntriples_of(path, base).decode():
                # not INSERT DATA: Virtuoso refuses blank nodes there ("not allowed in a constant clause")
                update(f"INSERT {{ GRAPH <{target}> {{\n{nt}\n}} }} WHERE {{}}")
        params = [("query", with_base(req))]
        if not req.get("query_dataset"):
            params.append(("default-graph-uri", DEFAULT_GRAPH))
            params += [("named-graph-uri", n) for n, _ in req["graphs"]] or [("named-graph-uri", NO_GRAPH)]
        graph_form = req.get("form") in ("CONSTRUCT", "DESCRIBE")
        ctype, body = http(url, "POST", urllib.parse.urlencode(params).encode(), "application/x-www-form-urlencoded",
                           "application/n-triples" if graph_form else "application/sparql-results+json")
        if "json" in ctype and not graph_form:
            return answer_from_results_json(body)
        return {"kind": "graph", "triples": parse_triples_terms(body.decode(), "TURTLE")}

    return run, version.strip() or "Virtuoso"


ENGINE_SETUP = {"pyoxigraph": setup_pyoxigraph, "maplib": setup_maplib, "oxigraph-server": setup_oxigraph_server,
                "virtuoso": setup_virtuoso}
ENGINE_MODULE = {"pyoxigraph": "pyoxigraph", "maplib": "maplib", "oxigraph-server": "pyoxigraph",
                 "virtuoso": "pyoxigraph"}


class Unavailable(Exception):
    pass


class Worker:
    """An engine's worker process; a request that takes longer than ``timeout`` kills and restarts it."""

    def __init__(self, engine: str, python: str, timeout: float, threads: int, log: Path) -> None:
        self.engine, self.python, self.timeout, self.threads, self.log_path = engine, python, timeout, threads, log
        self.proc: subprocess.Popen | None = None
        self.version = ""
        self.restarts = 0
        self.start()

    def start(self) -> None:
        env = dict(os.environ, POLARS_MAX_THREADS=str(self.threads), RAYON_NUM_THREADS=str(self.threads),
                   RUST_BACKTRACE="0", PYTHONUNBUFFERED="1")
        self.log = self.log_path.open("ab")
        r, w = os.pipe()
        self.proc = subprocess.Popen([self.python, str(Path(__file__).resolve()), "--worker", self.engine,
                                      "--out-fd", str(w)], stdin=subprocess.PIPE, stdout=self.log,
                                     stderr=self.log, pass_fds=(w,), text=True, encoding="utf-8", env=env)
        os.close(w)
        self.answers: queue.Queue = queue.Queue()
        reader = os.fdopen(r, "r", encoding="utf-8")
        threading.Thread(target=self._read, args=(reader, self.answers), daemon=True).start()
        try:
            hello = self.answers.get(timeout=120)
        except queue.Empty:
            self.kill()
            raise Unavailable("worker did not start within 120 s") from None
        if hello is None or "unavailable" in (hello or {}):
            self.kill()
            raise Unavailable((hello or {}).get("unavailable", "worker exited at start"))
        self.version = hello["ready"]
        self.servers = hello.get("servers", [])

    @staticmethod
    def _read(reader, answers: queue.Queue) -> None:
        for line in reader:
            answers.put(json.loads(line))
        answers.put(None)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # a worker with a server kills it on SIGTERM
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in getattr(self, "servers", []):  # in case the worker could not
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.servers = []
        self.log.close()

    def ask(self, req: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            answer = self.answers.get(timeout=self.timeout)
        except (BrokenPipeError, queue.Empty) as e:
            answer = {"error": f"timeout after {self.timeout:g} s"} if isinstance(e, queue.Empty) else None
        if answer is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            answer = {"error": f"worker died (exit status {self.proc.returncode})"}
        if "error" in answer and (not self.alive() or answer["error"].startswith("timeout")):
            self.kill()
            self.restarts += 1
            self.start()
        return answer

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def python_for(engine: str, override: str | None) -> str:
    candidates = ([override] if override else []) + [sys.executable] + [str(p) for p in OTHER_PYTHONS if p.exists()]
    module = ENGINE_MODULE[engine]
    for python in candidates:
        probe = f"import {module}"
        if engine == "oxigraph-server":
            probe += "; import shutil, sys, os; b = os.path.join(os.path.dirname(sys.executable), 'oxigraph'); " \
                     "assert os.path.exists(b) or shutil.which('oxigraph')"
        done = subprocess.run([python, "-c", probe], capture_output=True, timeout=120)
        if done.returncode == 0:
            return python
    raise Unavailable(f"no interpreter among {candidates} can import {module}"
                      + (" and run the oxigraph binary" if engine == "oxigraph-server" else ""))


# ------------------------------------------------------------------ the run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default="pyoxigraph,maplib,oxigraph-server,virtuoso")
    ap.add_argument("--suite", choices=["sparql11", "sparql10", "all"], default="all")
    ap.add_argument("--only", help="run only tests whose manifest/name contains this")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per test before it counts as an error")
    ap.add_argument("--threads", type=int, default=1, help="POLARS_MAX_THREADS / RAYON_NUM_THREADS of workers")
    ap.add_argument("--maplib-python", help="interpreter that has maplib (default: this one or /tmp/w3c-venv)")
    ap.add_argument("--oxigraph-python", help="interpreter whose bin/ has the oxigraph server binary")
    ap.add_argument("--verbose", "-v", action="store_true", help="list every test that did not pass, with why")
    ap.add_argument("--json", type=Path, help="write every test's outcome to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out-fd", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        os.dup2(2, 1)
        worker_main(args.worker, args.out_fd)
        return 0

    suites = ["sparql11", "sparql10"] if args.suite == "all" else [args.suite]
    tests: list[Test] = []
    not_run: Counter = Counter()
    for suite in suites:
        for manifest in sorted((SUITE / "sparql" / suite).glob("*/manifest.ttl")):
            found, other = read_manifest(manifest)
            tests += found
            for kind, n in other.items():
                not_run[f"{suite}: {kind}"] += n
    for t in tests:
        t.form = query_form(t.query.read_text(encoding="utf-8"))
        t.projection = projection(t.query.read_text(encoding="utf-8"))
    if args.only:
        tests = [t for t in tests if args.only in f"{t.manifest}/{t.name}" or args.only in t.iri]
    commit = ""
    readme = SUITE / "README.md"
    if readme.exists():
        m = re.search(r"\b([0-9a-f]{40})\b", readme.read_text())
        commit = m.group(1) if m else ""
    print(f"W3C SPARQL query evaluation tests from w3c/rdf-tests {commit[:12]}: {len(tests)} tests "
          f"in {len({t.manifest for t in tests})} manifests ({', '.join(suites)})")
    for kind, n in sorted(not_run.items()):
        print(f"  not run (not an evaluation test): {n} {kind}")
    for part, why in NOT_COPIED.items():
        print(f"  not copied: {part}: {why}")

    expected: dict[str, Result | str] = {}
    for t in tests:
        try:
            expected[t.iri] = read_expected(t.result, to_iri(t.result)) if t.result else "no mf:result"
        except Exception as e:
            expected[t.iri] = f"expected results unreadable: {type(e).__name__}: {e}"

    outcomes: dict[str, dict[str, tuple[str, str, float]]] = {}
    skipped_engines: dict[str, str] = {}
    versions: dict[str, str] = {}
    projected: Counter = Counter()  # answers to a SELECT with a projection list (not SELECT *)
    out_of_order: dict[str, list[str]] = defaultdict(list)  # ... whose head lists the variables in another order
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "w3c-sparql-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        if engine not in ENGINE_SETUP:
            skipped_engines[engine] = "unknown engine"
            continue
        try:
            override = args.maplib_python if engine == "maplib" else args.oxigraph_python
            python = python_for(engine, override)
            if engine == "oxigraph-server" and not os.environ.get("W3C_OXIGRAPH_BIN"):
                binary = Path(python).parent / "oxigraph"
                if binary.exists():
                    os.environ["W3C_OXIGRAPH_BIN"] = str(binary)
            worker = Worker(engine, python, args.timeout, args.threads, log_dir / f"{engine}.log")
        except (Unavailable, OSError, subprocess.TimeoutExpired) as e:
            skipped_engines[engine] = f"unavailable: {e}"
            continue
        print(f"\n{engine}: {worker.version} ({python}); worker log {log_dir / (engine + '.log')}", flush=True)
        versions[engine] = worker.version
        results: dict[str, tuple[str, str, float]] = {}
        t0 = time.perf_counter()
        for t in tests:
            exp = expected[t.iri]
            if isinstance(exp, str):
                results[t.iri] = ("harness", exp, 0.0)
                continue
            answer = worker.ask(request_of(t))
            ms = answer.get("ms", args.timeout * 1000)
            if "error" in answer:
                results[t.iri] = ("error", answer["error"], ms)
                continue
            try:
                actual = result_from_worker(answer)
                status, why = compare(exp, actual, t.lax)
            except Exception as e:
                status, why = "error", f"answer unreadable: {type(e).__name__}: {e}"
            results[t.iri] = (status, why, ms)
            if status != "error" and actual.kind == "solutions" and t.projection:
                projected[engine] += 1
                if set(t.projection) == set(actual.variables) and t.projection != actual.variables:
                    out_of_order[engine].append(t.iri)
        worker.kill()
        outcomes[engine] = results
        counts = Counter(v[0] for v in results.values())
        print(f"  {len(tests)} tests in {time.perf_counter() - t0:.1f} s: pass {counts['pass']}, pass by value "
              f"{counts['value']}, fail {counts['fail']}, error {counts['error']}"
              + (f", harness {counts['harness']}" if counts["harness"] else "")
              + f"; worker restarted {worker.restarts} times", flush=True)

    for engine, why in skipped_engines.items():
        print(f"\n{engine}: skipped: {why}")
    if not outcomes:
        return 0

    engines = list(outcomes)
    print("\nPer manifest, each engine's pass / pass by value / fail / error (pass: equal term for term; by value:"
          "\nequal once numeric and boolean literals are compared by value, as Oxigraph's own harness compares):")
    header = f"{'manifest':32} {'tests':>5} " + " ".join(f"{e:>18}" for e in engines)
    print(header)
    by_manifest: dict[str, list[Test]] = defaultdict(list)
    for t in tests:
        by_manifest[t.manifest].append(t)

    def cell(engine: str, group: list[Test]) -> str:
        c = Counter(outcomes[engine][t.iri][0] for t in group)
        return f"{c['pass']}/{c['value']}/{c['fail']}/{c['error']}"

    for manifest in sorted(by_manifest, key=lambda m: (m.split("/")[0] != "sparql11", m)):
        group = by_manifest[manifest]
        print(f"{manifest:32} {len(group):>5} " + " ".join(f"{cell(e, group):>18}" for e in engines))
    for suite in suites:
        group = [t for t in tests if t.manifest.startswith(suite + "/")]
        print(f"{'TOTAL ' + suite:32} {len(group):>5} " + " ".join(f"{cell(e, group):>18}" for e in engines))
    if len(suites) > 1:
        print(f"{'TOTAL':32} {len(tests):>5} " + " ".join(f"{cell(e, tests):>18}" for e in engines))

    for engine in engines:
        classes = Counter(failure_class(status, why, t.form) for t in tests
                          for status, why, _ms in [outcomes[engine][t.iri]] if status not in ("pass", "harness"))
        print(f"\n{engine}: kinds of failure (tests)")
        if projected[engine]:
            print(f"  (not a failure: {len(out_of_order[engine])} of {projected[engine]} answers to a SELECT with a "
                  "projection list name the variables in another order than the projection)")
        for kind, n in classes.most_common():
            print(f"  {n:4}  {kind}")
    if args.verbose:
        for engine in engines:
            bad = [(t, outcomes[engine][t.iri]) for t in tests if outcomes[engine][t.iri][0] != "pass"]
            print(f"\n{engine}: {len(bad)} not passed")
            for t, (status, why, _ms) in bad:
                extra = f" [requires {', '.join(t.requires)}]" if t.requires else ""
                extra += "" if t.approval == "Approved" else f" [{t.approval or 'no dawgt:approval'}]"
                print(f"  {status:5} {t.manifest}/{t.name} ({t.form}){extra}: {why}")
    if args.json:
        args.json.write_text(json.dumps({
            "commit": commit, "engines": versions,
            "skipped_engines": skipped_engines,
            "tests": [{"iri": t.iri, "manifest": t.manifest, "name": t.name, "form": t.form, "requires": t.requires,
                       "approval": t.approval,
                       **{e: {"status": outcomes[e][t.iri][0], "why": outcomes[e][t.iri][1],
                              "ms": outcomes[e][t.iri][2]} for e in engines}} for t in tests],
        }, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
