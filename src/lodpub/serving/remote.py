"""An edition held by a SPARQL 1.1 store that runs elsewhere (Oxigraph's server, Virtuoso, any endpoint):
the same ``Dataset`` as the embedded one, read over the SPARQL 1.1 Protocol.

The edition is one named graph of the store, named by the edition's IRI
(``<dataset>/<edition>``): every query is sent with ``default-graph-uri`` naming it,
so each answer reads exactly one edition, and a store may hold the next one beside
it until lodpub switches. lodpub's policy stays in front: the endpoint has refused
updates, SERVICE and foreign datasets before anything is sent here. Then:

- GET stays GET towards the store (HTTP caches in between keep working);
- the time limit is the client's, counted from arrival: passed to the store in its
  own terms where it has them (Virtuoso's ``timeout``, in milliseconds; Oxigraph's
  is its server's ``--timeout-s``), and enforced here by dropping the request;
- the answer is read up to ``max_bytes`` and no further; rows past ``max_rows`` are
  cut here and the cut declared, with the same writers as the embedded engine
  (the store is asked for SPARQL JSON or N-Triples, parsed, and written in the
  format the client negotiated);
- an incomplete answer (Virtuoso's "anytime" partial results: HTTP 206, or
  ``X-SQL-State: S1TAT``) is never passed on as a success: past the limit lodpub
  gave the store, it is the client's timeout (the same 503 as from any store);
  otherwise it is refused as incomplete;
- a query is parsed here before it is sent: a malformed one gets lodpub's own 400
  with the parser's position, as from the embedded engine;
- the store's own errors become 400 (its first line) or 503, never its stack.

Credentials (``store_user`` and ``store_password``, or ``store_token`` for a bearer
token; from settings or ``LODPUB_STORE_*``) go to the store only, never to a log.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import time
from collections.abc import Callable, Iterable, Sequence

import httpx
import pyoxigraph as ox

from lodpub import formats, results, sparql_store
from lodpub.search import Hit, Search
from lodpub.serving import pool
from lodpub.serving.linked_data import Description
from lodpub.serving.worker import GZIP_LEVEL, GZIP_MIN_BYTES, MIN_ROW_BYTES, NATIVE, Outcome, Request
from lodpub.vocab import RDF, RDFS

KIND = "remote"
JSON = formats.JSON_RESULTS.media_type
NT = formats.N_TRIPLES.media_type
CHUNK = 1 << 16
POLL = 0.5  # seconds between checks that the client still wants the answer
STORE_SHARE = 0.8  # of the time left, what a store that takes a time limit is given
# An answer up to this size is written on the event loop: a hop to a thread and back costs more than writing it
# (two wake-ups, milliseconds on a busy machine), as the embedded engine answers cheap requests inline.
INLINE_BYTES = 8192


class StoreFailed(Exception):
    """The store did not answer (unreachable, an error of its own, or an incomplete answer): a 503."""


class Incomplete(StoreFailed):
    """The store stopped at a limit and returned what it had (Virtuoso's "anytime" answer)."""


class Remote:
    """The ``Dataset`` of an edition that a SPARQL store holds as the named graph ``graph``."""

    def __init__(self, url: str, graph: str, base: str, search: Search, withdrawn: dict[str, list[str]],
                 timeout: float, auth: httpx.Auth | None = None, headers: dict[str, str] | None = None,
                 timeout_parameter: str = ""):
        """``url``: the store's SPARQL query endpoint; ``timeout_parameter``: the name of the query parameter
        in which the store takes a time limit in milliseconds (Virtuoso: ``timeout``), "" for none."""
        self.url = url
        self.graph = graph
        self.base = base
        self.index = search
        self.withdrawn = withdrawn
        self.timeout = timeout
        self.timeout_parameter = timeout_parameter
        self._auth = auth
        self._headers = headers or {}
        self._client: httpx.AsyncClient | None = None
        self._lookups = httpx.Client(auth=auth, headers=self._headers, timeout=timeout)
        # As the embedded engine counts them (``/health``); nothing waits here for a worker, so none waits out.
        self.counts = {"queries": 0, "timeouts": 0, "failed": 0, "incomplete": 0, "abandoned": 0, "waited_out": 0}
        self.running = 0  # queries sent to the store and not yet answered
        self._ready = False

    # ------------------------------------------------------------------ the dataset's life

    async def start(self) -> None:
        self._client = httpx.AsyncClient(auth=self._auth, headers=self._headers, timeout=None)
        answer = await asyncio.to_thread(self._select, "ASK { ?s ?p ?o }")
        if answer is not True:
            raise StoreFailed(f"the store at {sparql_store.shown(self.url)} holds nothing in the graph "
                              f"<{self.graph}>: load the edition into it first (lodpub publish --to)")
        self._ready = True

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._lookups.close()

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def stats(self) -> dict[str, object]:
        return {"store": sparql_store.shown(self.url), "graph": self.graph, **self.counts, "running": self.running,
                "waiting": 0, "ready": {KIND: int(self._ready)}}

    def recent(self, count: int) -> list[tuple[Request, float]]:
        return []  # nothing to warm: the store's caches are its own

    async def warm(self, requests: Sequence[tuple[Request, float]], seconds: float) -> int:
        return 0

    # ------------------------------------------------------------------ SPARQL

    async def query(self, request: Request, gone: Callable[[], bool] | None = None,
                    arrived: float | None = None) -> Outcome:
        """The store's answer to ``request`` within the time limit counted from ``arrived``, cut to the row cap
        and written as the embedded engine writes it. Raises QueryTimeout (pool.TimedOut), ClientGone
        (pool.Abandoned) or StoreFailed."""
        assert self._client is not None, "the dataset is not started"
        error = syntax_error(request.query)
        if error:  # lodpub's own 400, with the position, as the embedded engine gives it: nothing is sent
            return Outcome(b"", error=error, store=KIND)
        loop = asyncio.get_running_loop()
        deadline = (loop.time() if arrived is None else arrived) + self.timeout
        self.counts["queries"] += 1
        started = time.perf_counter()
        graph_answer = request.fmt in {f.name for f in formats.GRAPH}
        params = {"query": request.query, "default-graph-uri": self.graph}
        if self.timeout_parameter:  # the store stops first, with room to say so, and frees what it held
            params[self.timeout_parameter] = str(max(1, int((deadline - loop.time()) * STORE_SHARE * 1000)))
        fetch = loop.create_task(self._fetch(params, NT if graph_answer else JSON, request.max_bytes))
        self.running += 1
        try:
            while not fetch.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self.counts["timeouts"] += 1
                    raise pool.TimedOut(KIND, time.perf_counter() - started)
                await asyncio.wait((fetch,), timeout=min(remaining, POLL))
                if not fetch.done() and gone is not None and gone():
                    self.counts["abandoned"] += 1
                    raise pool.Abandoned
            try:
                status, body, too_large = fetch.result()
            except Incomplete:
                if not self.timeout_parameter:
                    raise
                # It stopped at the share of the client's limit it was given: to the client, the query ran past
                # its limit, as it would have with any store (and the partial answer is never passed on).
                self.counts["timeouts"] += 1
                raise pool.TimedOut(KIND, time.perf_counter() - started) from None
        finally:
            self.running -= 1
            if not fetch.done():
                fetch.cancel()  # the connection is dropped: a store that watches it stops the query
        if too_large:
            return Outcome(b"", too_large=True, store=KIND)
        if status == 400:
            return Outcome(b"", error=f"the store refused the query: {_first_line(body)}", store=KIND)
        if len(body) <= INLINE_BYTES:
            outcome = self._written(body, graph_answer, request)
        else:
            outcome = await asyncio.to_thread(self._written, body, graph_answer, request)
        if request.gzip and len(outcome.body) >= GZIP_MIN_BYTES:
            outcome = Outcome(gzip.compress(outcome.body, GZIP_LEVEL, mtime=0), outcome.truncated, gzipped=True,
                              store=KIND)
        return Outcome(outcome.body, outcome.truncated, outcome.error, outcome.too_large, outcome.gzipped,
                       time.perf_counter() - started, KIND)

    async def _fetch(self, params: dict[str, str], accept: str, max_bytes: int) -> tuple[int, bytes, bool]:
        """The store's status and body, read up to ``max_bytes`` (True: there was more)."""
        assert self._client is not None
        try:
            async with self._client.stream("GET", self.url, params=params, headers={"Accept": accept}) as response:
                if response.status_code == 206 or response.headers.get("x-sql-state") == "S1TAT":
                    self.counts["incomplete"] += 1
                    raise Incomplete("the store's answer was incomplete (it stopped at its own limit and "
                                     "returned what it had): make the query more specific or add a LIMIT")
                if response.status_code >= 500 or response.status_code not in (200, 400):
                    self.counts["failed"] += 1
                    raise StoreFailed(sparql_store.refused(self.url, response.status_code, self._sent())
                                      or f"the store answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes(CHUNK):
                    body += chunk
                    if len(body) > max_bytes and response.status_code == 200:
                        return response.status_code, b"", True
                return response.status_code, bytes(body), False
        except httpx.HTTPError as exc:
            self.counts["failed"] += 1
            raise StoreFailed(f"the store could not be reached ({type(exc).__name__})") from None

    @staticmethod
    def _written(body: bytes, graph_answer: bool, request: Request) -> Outcome:
        """The store's answer in the negotiated format, cut to the row cap (declared) and the byte limit."""
        try:
            if graph_answer:
                triples, truncated = results.capped((q.triple for q in ox.parse(body, ox.RdfFormat.N_TRIPLES)),
                                                    request.max_rows)
                written = results.graph(triples, request.fmt, results.used_prefixes(triples, dict(request.prefixes)))
            else:
                answer = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
                if isinstance(answer, ox.QueryBoolean):
                    return Outcome(results.boolean(bool(answer), request.fmt), store=KIND)
                if len(body) < MIN_ROW_BYTES["json"] * request.max_rows:  # too short to hold more rows than the cap
                    return Remote._checked(answer.serialize(format=NATIVE[request.fmt]) or b"", False, request)
                variables = [v.value for v in answer.variables]
                rows, truncated = results.capped((tuple(solution) for solution in answer), request.max_rows)
                if truncated:  # written here, the cut declared, as the embedded engine writes a capped answer
                    written = results.select(variables, rows, request.fmt, truncated, request.truncated_link)
                else:  # written by pyoxigraph, as the embedded engine writes every other: the same bytes
                    whole = ox.parse_query_results(body, ox.QueryResultsFormat.JSON)
                    assert isinstance(whole, ox.QuerySolutions)
                    written = whole.serialize(format=NATIVE[request.fmt]) or b""
        except SyntaxError as exc:
            raise StoreFailed(f"the store's answer could not be read: {_first_line(str(exc).encode())}") from None
        return Remote._checked(written, truncated, request)

    @staticmethod
    def _checked(written: bytes, truncated: bool, request: Request) -> Outcome:
        if len(written) > request.max_bytes:
            return Outcome(b"", truncated, too_large=True, store=KIND)
        return Outcome(written, truncated, store=KIND)

    # ------------------------------------------------------------------ lookups for pages

    def _select(self, query: str) -> list[dict[str, ox.Term]] | bool:
        """A fixed query of ours (terms written by pyoxigraph, never a visitor's text), answered by the store."""
        params = {"query": query, "default-graph-uri": self.graph}
        try:
            response = self._lookups.get(self.url, params=params, headers={"Accept": JSON})
        except httpx.HTTPError as exc:
            raise StoreFailed(f"the store could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise StoreFailed(sparql_store.refused(self.url, response.status_code, self._sent())
                              or f"the store answered {response.status_code} to a lookup")
        answer = ox.parse_query_results(response.content, ox.QueryResultsFormat.JSON)
        if isinstance(answer, ox.QueryBoolean):
            return bool(answer)
        names = [v.value for v in answer.variables]
        return [{name: term for name, term in zip(names, solution, strict=True) if term is not None}
                for solution in answer]

    def _sent(self) -> str:
        """Which credentials go to the store, in words (``sparql_store.given``; never their values)."""
        if isinstance(self._auth, httpx.BasicAuth):
            return "basic credentials"
        return "a bearer token" if "Authorization" in self._headers else "no credentials"

    def _rows(self, query: str) -> list[dict[str, ox.Term]]:
        found = self._select(query)
        assert not isinstance(found, bool)
        return found

    def exists(self, iri: str) -> bool:
        return self._select(f"ASK {{ {ox.NamedNode(iri)} ?p ?o }}") is True

    def describe(self, iri: str, limit: int = 1000, offset: int = 0) -> Description:
        node = ox.NamedNode(iri)
        out = Description(iri)
        parts = set()
        for row in self._rows(f"SELECT ?p ?o WHERE {{ {node} ?p ?o }}"):
            out.outgoing.append(ox.Triple(node, row["p"], row["o"]))
            if isinstance(row["o"], ox.NamedNode) and row["o"].value.startswith(iri + "#"):
                parts.add(row["o"])
        for part in sorted(parts, key=lambda p: p.value):
            out.outgoing.extend(ox.Triple(part, row["p"], row["o"])
                                for row in self._rows(f"SELECT ?p ?o WHERE {{ {part} ?p ?o }}"))
        incoming = self._rows(f"SELECT ?s ?p WHERE {{ ?s ?p {node} }} ORDER BY ?s ?p LIMIT {int(limit)} "
                              f"OFFSET {int(offset)}")
        out.incoming = [ox.Triple(row["s"], row["p"], node) for row in incoming]
        counted = self._rows(f"SELECT (COUNT(*) AS ?n) WHERE {{ ?s ?p {node} }}")
        out.incoming_total = int(counted[0]["n"].value) if counted else 0
        out.outgoing.sort(key=lambda t: (t.subject.value != iri, t.subject.value, t.predicate != RDF.type,
                                         t.predicate != RDFS.label, t.predicate.value, str(t.object)))
        return out

    def labels(self, iris: Iterable[str]) -> dict[str, dict[str, str]]:
        wanted = sorted(set(iris))
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(wanted), 200):  # a VALUES block of at most 200 IRIs per request
            values = " ".join(str(ox.NamedNode(iri)) for iri in wanted[start:start + 200])
            for row in self._rows(f"SELECT ?s ?label WHERE {{ VALUES ?s {{ {values} }} ?s {RDFS.label} ?label }}"):
                label = row["label"]
                found.setdefault(row["s"].value, {})[getattr(label, "language", None) or ""] = label.value
        return found

    def objects(self, iri: str, predicate: ox.NamedNode) -> list[str]:
        return [row["o"].value for row in self._rows(f"SELECT ?o WHERE {{ {ox.NamedNode(iri)} {predicate} ?o }}")]

    def instances(self, cls: ox.NamedNode) -> list[str]:
        return [row["s"].value for row in self._rows(f"SELECT ?s WHERE {{ ?s {RDF.type} {cls} }}")]

    def linked_counts(self, link: ox.NamedNode) -> dict[str, int]:
        rows = self._rows(f"SELECT ?item (COUNT(*) AS ?n) WHERE {{ ?m {link} ?item }} GROUP BY ?item")
        return {row["item"].value: int(row["n"].value) for row in rows}

    def search(self, text: str, size: int, offset: int) -> tuple[list[Hit], int]:
        return self.index.find(text, size, offset)  # the edition's own index, built from its dump


# Empty and in memory: a query is parsed here before it is sent, so that a malformed one gets the parser's message
# and position, whatever the store would have said (on nothing, a SELECT or CONSTRUCT is only planned).
_PARSER = ox.Store()


@functools.lru_cache(maxsize=256)  # a query is asked again and again: parsed once (at most 100 KB each, 25 MB)
def syntax_error(query: str) -> str:
    """pyoxigraph's first line about what is wrong with ``query`` ("error at 1:24: ..."), "" if it parses."""
    try:
        _PARSER.query(query)
    except SyntaxError as exc:
        return _first_line(str(exc).encode())
    except (OSError, ValueError, TypeError):
        return ""  # it parsed: evaluating it is the store's business
    return ""


def _first_line(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    line = text.splitlines()[0] if text else "no reason given"
    return line if len(line) <= limit else line[:limit] + "…"
