"""Whether a candidate engine's answer is the reference's: the check before a candidate answer is used.

A candidate (``columnar``) answers a request for clients only once its answer
was found the same as pyoxigraph's here. Same means what SPARQL 1.1 says an
answer is, not the same bytes: the same variables in the same (projection)
order; the same solutions as a multiset, each with the same terms (IRIs;
literals with their lexical form, datatype and language; blank nodes up to a
consistent renaming, since labels are local to one answer); in the same order
when the query fixes it; the same boolean; isomorphic graphs. Answers are
parsed with pyoxigraph in every format the engine writes, except CSV, which
pyoxigraph refuses to read (it carries no datatypes, languages or term kinds):
there the check is on what a CSV client sees, the cells as text, blank nodes
(``_:`` cells) renamed consistently. A declared truncation (the ``link`` in a
JSON or XML head) must be in both or neither.

Blank nodes are matched by colour refinement (each is coloured by the terms of
the solutions it occurs in, again and again until the colours settle), then one
choice at a time among nodes still alike, within a budget; a match is only
accepted after it is verified on every solution, so the search can fail to find
a renaming (and report a difference) but never accept a wrong one.
Every doubt makes ``differs`` report a difference: that costs a speed-up,
never a wrong answer.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

import pyoxigraph as ox

from lodpub.results import GRAPH_FORMATS
from lodpub.serving.sparql_guard import tokens

RESULT_FORMATS = {"json": ox.QueryResultsFormat.JSON, "xml": ox.QueryResultsFormat.XML,
                  "tsv": ox.QueryResultsFormat.TSV}
# Choices tried among blank nodes that colour refinement cannot tell apart, before giving up.
SEARCH_BUDGET = 64
SHOWN = 160  # characters of a differing solution in a reason

Item = tuple  # a solution (terms, None where unbound) or a triple (subject, predicate, object)


class _Unreadable(Exception):
    pass


def differs(fmt: str, reference: bytes, candidate: bytes, ordered: bool) -> str | None:
    """None when ``candidate`` is the same answer as ``reference`` (both written in ``fmt``), else why not, in
    one line; ``ordered``: the query fixes the order of its solutions (``fixes_order``). Either body may be
    gzipped (``Outcome.gzipped``)."""
    if reference == candidate:  # the same bytes are the same answer (the usual case when the order is fixed)
        return None
    try:
        ref = _read(fmt, reference, "the reference")
        cand = _read(fmt, candidate, "the candidate")
    except _Unreadable as exc:
        return str(exc)
    if fmt in GRAPH_FORMATS:
        return _same_items(ref, cand, ordered=False, what="triple")
    if isinstance(ref, bool) or isinstance(cand, bool):
        if type(ref) is not type(cand):
            return "a boolean against solutions"
        return None if ref == cand else f"the boolean is {cand}, not {ref}"
    (ref_vars, ref_rows, ref_cut), (cand_vars, cand_rows, cand_cut) = ref, cand
    if ref_vars != cand_vars:
        return f"the variables are {_show(cand_vars)}, not {_show(ref_vars)}"
    if ref_cut != cand_cut:
        return "only one of them declares a truncation"
    return _same_items(ref_rows, cand_rows, ordered, "solution")


def _read(fmt: str, body: bytes, who: str):
    """A graph as a set of triples; a boolean; or (variables, solutions, truncation declared)."""
    try:
        if body[:2] == b"\x1f\x8b":  # as worker.answer_from may have sent it
            body = gzip.decompress(body)
        if fmt in GRAPH_FORMATS:
            return list({(quad.subject, quad.predicate, quad.object) for quad in ox.parse(body, GRAPH_FORMATS[fmt])})
        if fmt == "csv":
            return _read_csv(body)
        if fmt not in RESULT_FORMATS:
            raise _Unreadable(f"no comparison for the format {fmt!r}")
        answer = ox.parse_query_results(body, RESULT_FORMATS[fmt])
        if isinstance(answer, ox.QueryBoolean):
            return bool(answer)
        return [v.value for v in answer.variables], [tuple(s) for s in answer], _declares_truncation(fmt, body)
    except (SyntaxError, ValueError, OSError, EOFError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Unreadable(f"{who} cannot be read as {fmt}: {_first_line(str(exc))}") from exc


def _read_csv(body: bytes):
    records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    if not records:
        raise _Unreadable("an empty CSV answer")
    return records[0], [tuple(_csv_cell(cell) for cell in record) for record in records[1:]], False


def _csv_cell(cell: str):
    if cell.startswith("_:"):
        try:
            return ox.BlankNode(cell[2:])
        except ValueError:
            pass
    return cell


_JSON_LINK = re.compile(rb'"link"\s*:')  # a key: in the vars list a name is followed by , or ]


def _declares_truncation(fmt: str, body: bytes) -> bool:
    if fmt == "json":
        end = body.find(b'"results"')
        return bool(_JSON_LINK.search(body, 0, end if end >= 0 else len(body)))
    if fmt == "xml":
        end = body.find(b"<results")
        return body.find(b"<link", 0, end if end >= 0 else len(body)) >= 0
    return False  # TSV and CSV have no place for it


def _same_items(ref: Sequence[Item], cand: Sequence[Item], ordered: bool, what: str) -> str | None:
    if len(ref) != len(cand):
        return f"{len(cand)} {what}s, not {len(ref)}"
    if not _has_blank(ref) and not _has_blank(cand):
        return _first_difference(ref, cand, ordered, what)
    erased = _first_difference([_erase(i) for i in ref], [_erase(i) for i in cand], ordered, what)
    if erased:
        return erased
    if ordered:
        return _ordered_renaming(ref, cand, what)
    mapping = _renaming(ref, cand)
    if mapping is None:
        return f"no renaming of blank nodes makes the {what}s the same"
    return None


def _first_difference(ref: Sequence[Item], cand: Sequence[Item], ordered: bool, what: str) -> str | None:
    if ordered:
        for number, (a, b) in enumerate(zip(ref, cand, strict=True), 1):
            if a != b:
                return f"{what} {number} is {_show(b)}, not {_show(a)}"
        return None
    missing = Counter(ref)
    missing.subtract(Counter(cand))
    lost = next((item for item, n in missing.items() if n > 0), None)
    if lost is not None:
        extra = next(item for item, n in missing.items() if n < 0)
        return f"the {what} {_show(lost)} is missing (and {_show(extra)} is extra)"
    return None


def _is_blank(term) -> bool:
    return isinstance(term, ox.BlankNode)


def _has_blank(items: Sequence[Item]) -> bool:
    return any(_is_blank(term) for item in items for term in item)


_BLANK = "\x00blank"  # stands for any blank node (no term equals a str of this kind here)


def _erase(item: Item) -> Item:
    return tuple(_BLANK if _is_blank(term) else term for term in item)


def _ordered_renaming(ref: Sequence[Item], cand: Sequence[Item], what: str) -> str | None:
    forward: dict = {}
    backward: dict = {}
    for number, (a, b) in enumerate(zip(ref, cand, strict=True), 1):
        for x, y in zip(a, b, strict=True):
            if _is_blank(x) and (forward.setdefault(x, y) != y or backward.setdefault(y, x) != x):
                return f"{what} {number}: its blank nodes do not correspond to the reference's"
    return None


def _renaming(ref: Sequence[Item], cand: Sequence[Item]) -> dict | None:
    """A bijection of blank nodes under which ``ref`` is ``cand`` as a multiset, or None if none was found."""
    ref_blanks = {t for item in ref for t in item if _is_blank(t)}
    cand_blanks = {t for item in cand for t in item if _is_blank(t)}
    if len(ref_blanks) != len(cand_blanks):
        return None
    budget = [SEARCH_BUDGET]
    target = Counter(cand)

    def search(ref_colour: dict, cand_colour: dict, depth: int) -> dict | None:
        ref_colour = _refine(ref, ref_colour)
        cand_colour = _refine(cand, cand_colour)
        if Counter(ref_colour.values()) != Counter(cand_colour.values()):
            return None
        ref_classes, cand_classes = _classes(ref_colour), _classes(cand_colour)
        open_classes = [c for c, members in ref_classes.items() if len(members) > 1]
        if not open_classes:
            mapping = {members[0]: cand_classes[c][0] for c, members in ref_classes.items()}
            renamed = Counter(tuple(mapping.get(t, t) if _is_blank(t) else t for t in item) for item in ref)
            return mapping if renamed == target else None
        colour = min(open_classes, key=lambda c: (len(ref_classes[c]), c))
        chosen = ref_classes[colour][0]
        fresh = hash(("chosen", depth, colour))
        for other in cand_classes[colour]:
            if budget[0] <= 0:
                return None
            budget[0] -= 1
            found = search({**ref_colour, chosen: fresh}, {**cand_colour, other: fresh}, depth + 1)
            if found is not None:
                return found
        return None

    return search(dict.fromkeys(ref_blanks, 0), dict.fromkeys(cand_blanks, 0), 0)


def _refine(items: Sequence[Item], colour: dict) -> dict:
    """Colour each blank node by its colour and the items it occurs in (other blank nodes by their colours),
    until the number of colours stops growing."""
    count = len(set(colour.values()))
    while True:
        seen: dict = defaultdict(list)
        for item in items:
            shape = tuple(("b", colour[t]) if _is_blank(t) else ("t", t) for t in item)
            for position, term in enumerate(item):
                if _is_blank(term):
                    seen[term].append(hash((position, shape)))
        refined = {b: hash((c, tuple(sorted(seen[b])))) for b, c in colour.items()}
        refined_count = len(set(refined.values()))
        if refined_count == count:
            return colour
        colour, count = refined, refined_count


def _classes(colour: dict) -> dict:
    classes: dict = defaultdict(list)
    for blank, c in colour.items():
        classes[c].append(blank)
    for members in classes.values():
        members.sort(key=lambda b: b.value)
    return classes


def _show(value) -> str:
    text = str(list(value) if isinstance(value, list) else tuple(value))
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0][:200] if lines else "unreadable"


def fixes_order(query: str) -> bool:
    """Whether the query fixes the order of its solutions: its outermost query has ORDER BY.

    Read token by token (``sparql_guard.tokens``: strings, IRIs and comments skipped whole, ``\\u`` escapes
    decoded): an ORDER outside every brace is the outer query's, one inside braces a subquery's (which fixes
    nothing outside it). The answer may err only towards True: True compares the order too, so a wrong True
    can only make an equal candidate answer count as different (a lost speed-up), while a wrong False would let
    a candidate's answer in another order pass for a query whose client relies on it. So anything the reading
    cannot place (unbalanced braces) counts as ordered."""
    depth = 0
    for token in tokens(query):
        if token.kind == "other":
            depth += (token.text == "{") - (token.text == "}")
            if depth < 0:
                return True
        elif token.kind == "name" and depth == 0 and token.text.upper() == "ORDER":
            return True
    return depth != 0


# Where SPARQL leaves the answer itself open, not only its order: a candidate that agreed once could answer
# otherwise next time (maplib's parallel group-by orders GROUP_CONCAT's parts as its threads finish, and
# picks SAMPLE's and an unordered LIMIT's rows the same way), so one check proves nothing for the next run.
OPEN_FUNCTIONS = frozenset(("GROUP_CONCAT", "SAMPLE", "RAND", "UUID", "STRUUID", "BNODE", "NOW"))


def settled(query: str) -> str | None:
    """None when the same data always give this query the same answer (its order aside, where it does not fix
    one), else what leaves it open: a function whose value SPARQL leaves to the engine, or LIMIT/OFFSET with no
    ORDER BY at the same level of the query. Read like ``fixes_order``; unbalanced braces count as open."""
    ordered: list[bool] = [False]  # per brace depth: that level's query has ORDER BY
    for token in tokens(query):
        text = token.text.upper()
        if token.kind == "other":
            if text == "{":
                ordered.append(False)
            elif text == "}":
                ordered.pop()
                if not ordered:
                    return "unbalanced braces"
        elif token.kind == "name":
            if text in OPEN_FUNCTIONS:
                return text
            if text == "ORDER":
                ordered[-1] = True
            elif text in ("LIMIT", "OFFSET") and not ordered[-1]:  # a subquery's modifiers follow its WHERE's
                return f"{text} without ORDER BY"                    # braces, at the level that holds it
    return None if len(ordered) == 1 else "unbalanced braces"
