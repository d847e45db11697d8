"""What the endpoint refuses before a query reaches the engine: updates, SERVICE, foreign datasets.

pyoxigraph evaluates ``SERVICE <iri>`` by making an HTTP request from the server
(an SSRF hole) and has no switch to turn that off, so queries are read token by
token here: strings, IRIs and comments are skipped as wholes, and the keywords
that would write data or reach outside are refused with a clear message. The
engine itself still parses the query; this is only the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n\r]*)
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*'''
               |"(?:[^"\\\n\r]|\\.)*"|'(?:[^'\\\n\r]|\\.)*')
  | (?P<variable>[?$][\w\u00B7\u0300-\u036F\u203F-\u2040]+)
  | (?P<name>(?:[^\W\d]|_)[\w.\-\u00B7\u0300-\u036F\u203F-\u2040]*(?::[^\s{}()\[\],;<>"']*)?|:[^\s{}()\[\],;<>"']*)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

UPDATE_KEYWORDS = {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH"}
QUERY_KEYWORDS = {"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"}
# SPARQL processes \u and \U escapes before the grammar, so a keyword may hide behind them.
CODEPOINT = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def unescape(query: str) -> str:
    return CODEPOINT.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), query)


class QueryRefused(Exception):
    """The request is refused by policy; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(query: str) -> Iterator[Token]:
    for match in TOKEN.finditer(unescape(query)):
        kind = match.lastgroup or "other"
        if kind not in ("space", "comment"):
            yield Token(kind, match.group())


def _resolve(token: Token, prefixes: dict[str, str]) -> str | None:
    if token.kind == "iri":
        return token.text[1:-1]
    if token.kind == "name" and ":" in token.text:
        prefix, local = token.text.split(":", 1)
        return prefixes[prefix] + local if prefix in prefixes else None
    return None


# pyoxigraph's parser recurses once per group and overflows its stack at ~2,200 nested braces (a 6 KB query
# killed its worker with SIGSEGV); no query a person writes nests a hundred deep.
MAX_NESTING = 100
OPENING, CLOSING = frozenset("{(["), frozenset("})]")


def check(query: str, allowed_graphs: Iterable[str]) -> str:
    """Refuse what lodpub never does; return the query form otherwise."""
    allowed = set(allowed_graphs)
    prefixes: dict[str, str] = {}
    items = list(tokens(query))
    form = ""
    depth = 0
    for i, token in enumerate(items):
        if token.kind == "other":
            depth += (token.text in OPENING) - (token.text in CLOSING)
            if depth > MAX_NESTING:
                raise QueryRefused(400, f"the query nests groups, brackets or parentheses more than {MAX_NESTING} "
                                        "deep; write it flatter")
        if token.kind != "name":
            continue
        word = token.text.upper()
        if word == "PREFIX" and i + 2 < len(items) and items[i + 2].kind == "iri":
            prefixes[items[i + 1].text.rstrip(":")] = items[i + 2].text[1:-1]
        elif not form and word in UPDATE_KEYWORDS:
            raise QueryRefused(403, f"this endpoint is read-only: SPARQL Update ({word}) is not accepted")
        elif not form and word in QUERY_KEYWORDS:
            form = word
        elif word == "SERVICE":
            raise QueryRefused(403, "SERVICE is not allowed: the endpoint never sends requests to other "
                                    "addresses; query this dataset only, or federate from your own client")
        elif word == "FROM":
            named = i + 1 < len(items) and items[i + 1].text.upper() == "NAMED"
            target = items[i + 2] if named and i + 2 < len(items) else items[i + 1] if i + 1 < len(items) else None
            iri = _resolve(target, prefixes) if target else None
            check_graphs([iri or (target.text if target else "")], allowed)
    return form


def check_graphs(iris: Iterable[str], allowed: set[str]) -> None:
    for iri in iris:
        if iri not in allowed:
            names = ", ".join(f"<{g}>" for g in sorted(allowed)) or "none"
            raise QueryRefused(400, f"the dataset <{iri}> is not served here and nothing is fetched from "
                                    f"elsewhere; the graphs this endpoint has: {names}")
