"""A second engine in the worker: maplib (SPARQL over Polars), a candidate whose answers are checked.

pyoxigraph evaluates row by row; maplib evaluates column by column, as Virtuoso
does. At 100,000 measures, in one process (CPU milliseconds per query, answer
written): the aggregates over every measure took 15 against pyoxigraph's 608
(h1, GROUP BY/HAVING), 9 against 189 (h2, NOT EXISTS), 4 against 45 (count per
bureau); the deep page 132 against 1,510, the text union 69 against 727, the
CONSTRUCT of a bureau 11 against 204; but the property path 125 against 114, and
a lookup of one measure through VALUES, UNION and a path 120 against 0.3. It
loads in 14 s (pyoxigraph 4.6 s) and holds 340-470 MiB resident, 750-870 MiB
of VmData (what RLIMIT_DATA counts), against 550 and 520. And it differs from
SPARQL 1.1 in places (wrong: AVG typed xsd:integer, MIN/MAX of language-tagged
strings unbound, GROUP_CONCAT of them garbled, SUM over no solutions unbound,
1/2 an xsd:double 0.0, zero-length paths between two variables missing; other
lexical forms: "1.500000000000" for 1.5), so it is only a *candidate*: pyoxigraph stays the
reference, and a candidate answer is used for a request only once
``agree.differs`` found it the same as the reference's. This module answers as
``worker.evaluate`` does (same ``Request``, same ``Outcome``, same row cap
declared the same way, same byte limit, same error messages), so that the two
answers can be compared and the candidate's sent in its place:

- The query is first prepared by pyoxigraph on an empty store (cheap, and kept
  per query text): its parser gives the reference's syntax errors word for
  word, its query form, and ``head.vars`` in projection order (maplib lists
  them in an order of its own).
- maplib writes SPARQL JSON (or, for CONSTRUCT, Turtle) in Rust; pyoxigraph
  parses that and writes the answer with the writers the reference uses: its
  own serialisers, or ``results.select`` for an answer past the row cap, on the
  same rule as ``worker._solutions`` (so equal solutions in the same order give
  the same bytes, blank node labels aside).
- maplib types COUNT as ``xsd:unsignedInt`` (SPARQL says ``xsd:integer``); where
  neither the dump nor the query names ``unsignedInt``, every such literal in an
  answer is one maplib computed, and is typed ``xsd:integer``. The answer is
  compared as rewritten, so a wrong rewrite can only make the candidate disagree.

What maplib cannot do raises ``Unsupported``, before maplib sees the query
where it is known: ASK and DESCRIBE ("Query type not supported"), SERVICE,
GRAPH and FROM (all three panic in maplib 0.20). A panic (pyo3's
``PanicException``, a ``BaseException``) poisons the lock inside maplib's model:
every later query on it panics too, so after one the module refuses every
request with ``Broken`` until ``load`` is called again (or the worker is
replaced).
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import pyoxigraph as ox

from lodpub import results
from lodpub.serving.sparql_guard import QUERY_KEYWORDS, tokens, unescape
from lodpub.serving.worker import (
    MIN_ROW_BYTES,
    NATIVE,
    NATIVE_BYTES_PER_ROW,
    NATIVE_MIN_BYTES,
    Outcome,
    Request,
    _first_line,
    _sized,
    count_rows,
    most_rows,
)

KIND = "columnar"  # Outcome.store of an answer from here

_MODEL: list = []  # the maplib Model of the edition, once loaded
_STATE: dict[str, object] = {"unsigned_in_data": True, "broken": ""}

XSD = "http://www.w3.org/2001/XMLSchema#"
_UNSIGNED = f'"datatype":"{XSD}unsignedInt"'
_INTEGER = f'"datatype":"{XSD}integer"'
_JSON_HEAD = '{"head":{"vars":['

# Words after which maplib 0.20 panics (and so poisons its model) or has no answer: refused beforehand.
_REFUSED_WORDS = {"SERVICE": "SERVICE (maplib panics on it)",
                  "GRAPH": "GRAPH patterns (maplib panics on them)",
                  "FROM": "dataset clauses (maplib panics on them)"}
_REFUSED_FORMS = {"ASK": "ASK (maplib has no ASK)", "DESCRIBE": "DESCRIBE (maplib has no DESCRIBE)"}


class Unsupported(Exception):
    """maplib cannot answer this request (the reference has to): the reason is the message."""


class Broken(Exception):
    """The model is unusable (a panic poisoned it, or nothing was loaded): load it again or replace the worker.
    Says nothing about the request."""


def load(dump: str, beside: Sequence[str] = ()) -> None:
    """Load the edition's N-Triples ``dump``, and the Turtle files ``beside`` it that its disk store holds too
    (the description), into the model this worker answers from (replacing any)."""
    import maplib  # here, so that a process that never loads a model never imports Polars

    model = maplib.Model()
    model.read(dump, format="ntriples")
    for path in beside:
        model.read(path, format="turtle")
    unsigned = False
    for path in (dump, *beside):
        with open(path, "rb") as file:
            try:
                with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    unsigned = unsigned or data.find(b"XMLSchema#unsignedInt") >= 0
            except ValueError:  # an empty file cannot be mapped
                pass
    _MODEL[:] = [model]
    _STATE.update(unsigned_in_data=unsigned, broken="")


def usable() -> bool:
    """Whether a model is loaded and no panic has poisoned it."""
    return bool(_MODEL) and not _STATE["broken"]


@dataclass(frozen=True)
class _Prepared:
    error: str = ""  # the reference's message for a query it cannot parse
    refused: str = ""  # why maplib is not asked
    form: str = ""
    variables: tuple[str, ...] = ()
    names_unsigned: bool = False


_EMPTY = ox.Store()
_CACHED_QUERY_MAX = 16_384  # as engine.COST_QUERY_MAX: 1,024 texts of 16 KB at most are kept


def _prepare(query: str) -> _Prepared:
    return _prepared(query) if len(query) <= _CACHED_QUERY_MAX else _prepared.__wrapped__(query)


@lru_cache(maxsize=1024)
def _prepared(query: str) -> _Prepared:
    words = [token.text.upper() for token in tokens(query) if token.kind == "name"]
    form = next((word for word in words if word in QUERY_KEYWORDS), "")
    refused = _REFUSED_FORMS.get(form) or next((_REFUSED_WORDS[w] for w in words if w in _REFUSED_WORDS), "")
    if refused:  # before pyoxigraph sees it too: even on an empty store it would fetch a SERVICE
        return _Prepared(refused=refused, form=form)
    try:
        answer = _EMPTY.query(query, default_graph=ox.DefaultGraph())
    except SyntaxError as exc:
        return _Prepared(error=_first_line(str(exc)))
    except (OSError, ValueError, TypeError) as exc:
        return _Prepared(error=f"the query could not be evaluated: {_first_line(str(exc))}")
    # The query form as the reference's parser read it (the words only tell CONSTRUCT from DESCRIBE).
    if isinstance(answer, ox.QueryBoolean):
        return _Prepared(refused=_REFUSED_FORMS["ASK"], form="ASK")
    if isinstance(answer, ox.QueryTriples):
        if form != "CONSTRUCT":
            return _Prepared(refused=_REFUSED_FORMS["DESCRIBE"], form="DESCRIBE")
        return _Prepared(form=form, names_unsigned="unsignedint" in unescape(query).lower())
    if form != "SELECT":
        return _Prepared(refused=f"a query form read as {form or 'nothing'} but answered as SELECT", form=form)
    return _Prepared(form=form, variables=tuple(v.value for v in answer.variables),
                     names_unsigned="unsignedint" in unescape(query).lower())


def evaluate(request: Request) -> Outcome:
    """Evaluate one query with maplib and serialise the answer as ``worker.evaluate`` would. Raises
    Unsupported for what maplib cannot answer, Broken when the model is unusable."""
    if not _MODEL:
        raise Broken("no model loaded")
    if _STATE["broken"]:
        raise Broken(f"an earlier panic poisoned the model ({_STATE['broken']})")
    prepared = _prepare(request.query)
    if prepared.error:
        return Outcome(b"", error=prepared.error, store=KIND)
    if prepared.refused:
        raise Unsupported(prepared.refused)
    text = _query(request.query)
    if not isinstance(text, str):
        raise Unsupported(f"maplib answered with a {type(text).__name__}, not text")
    if prepared.form == "CONSTRUCT":
        try:
            triples = ox.parse(_turtle(text, prepared), ox.RdfFormat.TURTLE)
            triples, truncated = results.capped((quad.triple for quad in triples), request.max_rows)
        except SyntaxError as exc:
            raise Unsupported(f"maplib wrote a graph pyoxigraph cannot read: {_first_line(str(exc))}") from exc
        body = results.graph(triples, request.fmt, results.used_prefixes(triples, dict(request.prefixes)))
        return replace(_sized(body, truncated, request), store=KIND)
    return replace(_solutions(_json(text, prepared), prepared.variables, request), store=KIND)


def _query(query: str) -> str:
    try:
        return _MODEL[0].query(query, return_json=True)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # MaplibException: not implemented, or a query it cannot read
        raise Unsupported(f"maplib: {_first_line(str(exc))}") from exc
    except BaseException as exc:  # a Rust panic: the model's lock is poisoned from now on
        _STATE["broken"] = _first_line(str(exc), 100) or type(exc).__name__
        raise Unsupported(f"maplib panicked: {_first_line(str(exc))}") from None


def _json(text: str, prepared: _Prepared) -> bytes:
    """maplib's SPARQL JSON with the variables in projection order and COUNT typed as SPARQL types it."""
    if not text.startswith(_JSON_HEAD):
        raise Unsupported("maplib's answer is not the SPARQL JSON expected")
    end = text.index("]", len(_JSON_HEAD))  # a variable name holds no ] and no quote
    listed = json.loads(text[len(_JSON_HEAD) - 1:end + 1])
    if sorted(listed) != sorted(prepared.variables):
        raise Unsupported(f"maplib's variables {listed} are not the query's {list(prepared.variables)}")
    text = _JSON_HEAD[:-1] + json.dumps(list(prepared.variables), ensure_ascii=False) + text[end + 1:]
    if _counts_typed(prepared):  # '"datatype":"' cannot occur inside an (escaped) JSON string
        text = text.replace(_UNSIGNED, _INTEGER)
    return text.encode()


def _counts_typed(prepared: _Prepared) -> bool:
    """Whether an unsignedInt in an answer can only be one maplib computed (a COUNT): neither the dump nor
    the query names the type. (Whatever is rewritten, the answer is compared with the reference's.)"""
    return not prepared.names_unsigned and not _STATE["unsigned_in_data"]


def _turtle(text: str, prepared: _Prepared) -> bytes:
    if _counts_typed(prepared):
        text = text.replace(f"^^<{XSD}unsignedInt>", f"^^<{XSD}integer>")
    return text.encode()


def _solutions(body_json: bytes, variables: tuple[str, ...], request: Request) -> Outcome:
    """Written natively unless the answer may pass the row cap, on worker._solutions's rule, so that the
    reference and the candidate write the same solutions with the same writer."""
    try:
        body = ox.parse_query_results(body_json, ox.QueryResultsFormat.JSON).serialize(format=NATIVE[request.fmt])
    except SyntaxError as exc:
        raise Unsupported(f"maplib wrote an answer pyoxigraph cannot read: {_first_line(str(exc))}") from exc
    fmt = request.fmt
    limit = min(request.max_bytes, max(NATIVE_MIN_BYTES, request.max_rows * NATIVE_BYTES_PER_ROW))
    if len(body) <= limit and not (len(body) >= MIN_ROW_BYTES[fmt] * (request.max_rows + 1) and
                                   most_rows(body, fmt) > request.max_rows and
                                   count_rows(body, fmt) > request.max_rows):
        return Outcome(body)
    answer = ox.parse_query_results(body_json, ox.QueryResultsFormat.JSON)
    rows, truncated = results.capped((tuple(solution) for solution in answer), request.max_rows)
    return _sized(results.select(list(variables), rows, fmt, truncated, request.truncated_link), truncated, request)
