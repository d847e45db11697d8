"""The SPARQL 1.1 Protocol at /sparql: request forms, limits, negotiation, caching and clear errors.

Queries are the server's hot path, so they are answered here as a plain ASGI
app in front of the framework (its routing and middleware cost more than a
cached answer does); everything else at /sparql (the service description, the
query editor, CORS preflight) goes on to the framework.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pyoxigraph as ox
from starlette.responses import Response

from lodpub import formats
from lodpub.serving import caching, engine, http_limits, negotiation, sparql_guard
from lodpub.serving.dataset import Dataset
from lodpub.serving.metrics import CACHE_HIT, CACHE_MISS
from lodpub.serving.remote import StoreFailed
from lodpub.settings import Settings
from lodpub.vocab import DCTERMS, RDF, SD, VOID, XSD, prefixes

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
EDITION_KEY = "lodpub.edition"  # where a request's edition (edition.Edition) is kept in its ASGI scope

# The response headers a script on another origin may read (CORS); the framework's routes expose the same.
EXPOSED = b"X-SPARQL-MaxRows, Warning, Content-Location, ETag, Lodpub-Edition"
log = logging.getLogger("lodpub")


class ProtocolError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.headers = headers or {}
        super().__init__(message)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def of(cls, status: int, body: bytes, media_type: str, headers: dict[str, str] | None = None) -> Reply:
        raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", EXPOSED)]
        raw += [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
        return cls(status, raw, body)

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def plain(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A message; an error is never stored by a cache (``caching.py``)."""
    if status >= 400:
        headers = {**(headers or {}), "Cache-Control": caching.NO_STORE}
    return Reply.of(status, (message.rstrip() + "\n").encode(), "text/plain; charset=utf-8", headers)


def text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The same plain-text message, for the framework's routes."""
    return Response(message.rstrip() + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                    headers=headers)


RequestKey = tuple  # what identifies a request's answer: query string, POST body and type, Accept, Accept-Encoding


def request_size(key: RequestKey) -> int:
    return sum(len(part) for part in key if part)


class AnswerCache:
    """A bounded LRU of answers by request. Answers and the requests that key them count towards the
    bound, so neither large answers nor large POST bodies can crowd memory."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict[RequestKey, Reply] = OrderedDict()  # used from the event loop only
        self.hits = self.misses = 0

    def get(self, key: RequestKey) -> Reply | None:
        if self.max_bytes <= 0:
            return None
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
            self.hits += 1
            CACHE_HIT.inc()
        else:
            self.misses += 1
            CACHE_MISS.inc()
        return found

    def put(self, key: RequestKey, value: Reply) -> None:
        size = len(value.body) + request_size(key)
        if self.max_bytes <= 0 or size > self.max_bytes // 4:
            return
        if key in self.items:
            return
        self.items[key] = value
        self.size += size
        while self.size > self.max_bytes:
            old_key, old = self.items.popitem(last=False)
            self.size -= len(old.body) + request_size(old_key)

    def stats(self) -> dict[str, int]:
        return {"entries": len(self.items), "bytes": self.size, "hits": self.hits, "misses": self.misses}


PREPARED_ENTRIES = 1024
PREPARED_MAX_BYTES = 16_384  # a request larger than this is read afresh each time; together at most ~32 MB


@dataclass(frozen=True)
class Prepared:
    job: engine.Request
    media_type: str
    what: bytes = b""  # the answer's identity within an edition, for its ETag (caching.representation)


class Disconnected:
    """Whether the client has gone, asked without waiting; the pool asks only while a query runs long."""

    def __init__(self, receive: Receive):
        self.receive = receive
        self.task: asyncio.Future | None = None

    def __call__(self) -> bool:
        if self.task is not None and self.task.done():
            if self.task.result()["type"] == "http.disconnect":
                return True
            self.task = None  # a GET's empty body, never read: the next message is the one that matters
        if self.task is None:
            self.task = asyncio.ensure_future(self.receive())
        return False

    def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


class Endpoint:
    """Answers SPARQL queries sent to /sparql; hands every other request to ``framework``."""

    def __init__(self, settings: Settings, framework: ASGIApp, wants_editor: Callable[[str | None, str | None], bool],
                 record: Callable[[Scope, int, int, float], None]):
        """Each request's edition (its engine and cached answers) is in its scope as ``lodpub.edition``."""
        self.settings = settings
        self.record = record  # the access log, which the framework's requests reach through ``framework``
        self.framework = framework
        self.wants_editor = wants_editor
        self.allowed = {settings.dataset_iri}
        self.prefixes = tuple(prefixes(settings.base).items())
        # Requests already parsed, checked and negotiated, like an engine's prepared statements: researchers
        # send the same queries again and again, and reading one costs more than a small query takes.
        self.prepared: OrderedDict[RequestKey, Prepared] = OrderedDict()
        self.clients: dict[str, int] = {}  # queries running or waiting, by connecting address
        self.tags = caching.Tags(settings)
        self.turned_away = 0  # requests refused (429) because their client had its share already

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or scope["path"] != "/sparql" or method not in ("GET", "HEAD", "POST"):
            return await self.framework(scope, receive, send)
        edition = scope[EDITION_KEY]
        edition.enter()  # the edition's workers stop only once no request that may query them is left
        try:
            await self._request(scope, receive, send, edition)
        finally:
            edition.leave()

    async def _request(self, scope: Scope, receive: Receive, send: Send, edition: Any) -> None:
        method = scope["method"]
        start = time.perf_counter()
        arrived = asyncio.get_running_loop().time()  # the time limit counts from here
        cache = edition.answers
        headers = {name: value for name, value in scope["headers"]
                   if name in (b"accept", b"content-type", b"content-length", b"accept-encoding", b"if-none-match")}
        accept = headers.get(b"accept", b"").decode("latin-1")
        encodings = headers.get(b"accept-encoding", b"")
        try:
            if method == "POST":
                body = await read_body(receive, headers.get(b"content-length"), self.settings.max_query_bytes)
                key: RequestKey = (scope["query_string"], headers.get(b"content-type"), body, accept, encodings)
            else:
                body, key = b"", (scope["query_string"], accept, encodings)
            # GET and HEAD answers carry an ETag that any front computes alike (caching.py), and a 304 may come
            # before the query runs; a POST's answer is not one a cache keeps.
            condition = headers.get(b"if-none-match", b"").decode("latin-1") if method != "POST" else ""
            cached = cache.get(key)
            if cached is not None:
                cached = _conditional(cached, condition)
                await cached.send(send)
                return self.record(scope, cached.status, len(cached.body) if method != "HEAD" else 0, start)
            prepared = self.prepared.get(key)
            if prepared is None:
                params = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                if method != "POST" and ("query" not in params or
                                         self.wants_editor(accept, _one(params, "format"))):
                    return await self.framework(scope, _replay(body, receive), send)
                if method == "POST":
                    _add_body(params, body, headers.get(b"content-type", b"").decode("latin-1"))
                prepared = self.prepare(params, accept, negotiation.accepts_gzip(encodings.decode("latin-1")))
                self._remember(key, prepared)
            tagged = {} if method == "POST" else {"ETag": self.tags.etag(edition.name, prepared.what),
                                                  "Cache-Control": caching.CURRENT}
            if condition and tagged and caching.matches(condition, tagged["ETag"], star=False):
                reply = _conditional(Reply.of(200, b"", prepared.media_type, {**tagged, "Vary": caching.NEGOTIATED}),
                                     condition)  # not run: the same edition gives the same answer
            else:
                reply = await self.answer(edition.data, prepared, Disconnected(receive), arrived,
                                          (scope.get("client") or ("",))[0], tagged)
                if reply.status == 200:
                    cache.put(key, reply)
                reply = _conditional(reply, condition)
        except ProtocolError as exc:
            reply = plain(exc.status, str(exc), exc.headers)
        except Exception:
            log.exception("internal error on /sparql")
            reply = plain(500, "internal error: the request could not be answered")
        await reply.send(send)
        self.record(scope, reply.status, len(reply.body) if method != "HEAD" else 0, start)  # HEAD: no body sent

    def prepare(self, params: dict[str, list[str]], accept: str, gzip: bool) -> Prepared:
        """The query that ``params`` carry, checked against the policy, with the format to answer in."""
        settings = self.settings
        query = _query(params, settings.max_query_bytes)
        try:
            sparql_guard.check_graphs(params.get("default-graph-uri", []) + params.get("named-graph-uri", []),
                                      self.allowed)
            form = sparql_guard.check(query, self.allowed)
        except sparql_guard.QueryRefused as refused:
            raise ProtocolError(refused.status, str(refused)) from None
        offered = formats.GRAPH if form in ("CONSTRUCT", "DESCRIBE") else formats.SOLUTIONS
        try:
            fmt = negotiation.choose(offered, accept, _one(params, "format"))
        except negotiation.NotAcceptable as exc:
            raise ProtocolError(406, str(exc)) from None
        job = engine.Request(query=query, fmt=fmt.name, max_rows=settings.max_rows,
                             max_bytes=settings.max_response_bytes,
                             truncated_link=f"{settings.base}sparql#truncated", prefixes=self.prefixes, gzip=gzip)
        media_type = fmt.media_type + ("; charset=utf-8" if fmt.media_type.startswith("text/") else "")
        return Prepared(job, media_type, caching.representation("/sparql", params, media_type,
                                                                "gzip" if gzip else "identity"))

    def _remember(self, key: RequestKey, prepared: Prepared) -> None:
        if request_size(key) > PREPARED_MAX_BYTES:
            return
        self.prepared[key] = prepared
        if len(self.prepared) > PREPARED_ENTRIES:
            self.prepared.popitem(last=False)

    async def answer(self, data: Dataset, prepared: Prepared, gone: Disconnected,
                     arrived: float | None = None, client: str = "", tagged: dict[str, str] | None = None) -> Reply:
        """Evaluate a prepared query in a worker within the time limit counted from ``arrived``, at most
        ``client_queries`` at once for one ``client``, and turn what comes back into a reply (+ ``tagged``)."""
        settings = self.settings
        held = self.clients.get(client, 0)
        if settings.client_queries and held >= settings.client_queries:
            self.turned_away += 1
            gone.close()
            raise ProtocolError(429, f"this client has {held} queries running or waiting already, its share of "
                                     "the endpoint; send the next once one is answered", {"Retry-After": "1"})
        self.clients[client] = held + 1
        limit = f"{settings.query_timeout:g}-second limit"
        try:
            outcome = await data.query(prepared.job, gone, arrived)
        except engine.ClientGone:
            return plain(499, "the client closed the connection; the query was stopped")  # nobody reads this
        except engine.QueryTimeout:
            raise ProtocolError(503, f"the query ran longer than the {limit} and was stopped; make it more "
                                     "specific or add a LIMIT", {"Retry-After": "1"}) from None
        except engine.TooLong:
            raise ProtocolError(503, f"the query ran longer than the {limit} when it was tried before, and the "
                                     "data have not changed since: it was not run again; make it more specific "
                                     "or add a LIMIT") from None
        except engine.Waited:
            raise ProtocolError(503, f"the server is busy: no worker was free for this query within its {limit}"
                                     "; try again shortly", {"Retry-After": "2"}) from None
        except engine.Busy:
            raise ProtocolError(503, "the server is busy: as many queries as it lets wait are waiting; try again "
                                     "shortly", {"Retry-After": "2"}) from None
        except engine.OutOfMemory:
            raise ProtocolError(503, "the query needed more memory than a worker may use "
                                     f"({settings.worker_memory_mb:,} MiB), and the data have not changed since: it "
                                     "is not run again; make it more specific or add a LIMIT") from None
        except StoreFailed as exc:
            raise ProtocolError(503, f"the store behind this endpoint failed: {exc}", {"Retry-After": "2"}) from None
        except engine.WorkerLost:
            raise ProtocolError(503, "the query's worker stopped before answering (the server may be shutting "
                                     "down, or the query needed too much memory); it was not completed",
                                {"Retry-After": "1"}) from None
        finally:
            gone.close()
            left = self.clients[client] - 1
            if left:
                self.clients[client] = left
            else:
                del self.clients[client]
        if outcome.error:
            raise ProtocolError(400, f"the query is not valid SPARQL: {outcome.error}")
        if outcome.too_large:
            raise ProtocolError(422, f"the answer is larger than the {settings.max_response_bytes:,}-byte limit; "
                                     "add a LIMIT or select fewer variables")
        headers = {"Vary": caching.NEGOTIATED, **(tagged or {})}
        if outcome.gzipped:
            headers["Content-Encoding"] = "gzip"
        if outcome.truncated:
            headers["X-SPARQL-MaxRows"] = str(settings.max_rows)
            headers["Warning"] = f'199 lodpub "results truncated to the first {settings.max_rows} rows"'
        return Reply.of(200, outcome.body, prepared.media_type, headers)


def _conditional(reply: Reply, condition: str) -> Reply:
    """``reply``, or its 304 where ``If-None-Match`` names its ETag (or is ``*``)."""
    kept = caching.revalidated(reply.status, reply.headers, condition)
    return reply if kept is None else Reply(304, kept, b"")


async def read_body(receive: Receive, length: bytes | None, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it passes ``limit`` bytes."""
    if length and length.isdigit() and int(length) > limit:
        raise ProtocolError(413, f"the request is larger than the {limit:,}-byte limit for a query")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProtocolError(400, "the client closed the connection before sending the whole query")
        body += message.get("body", b"")
        if len(body) > limit:
            raise ProtocolError(413, f"the request is larger than the {limit:,}-byte limit for a query")
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the framework, giving back the body this endpoint has already read."""
    sent = False

    async def replayed() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replayed


def _add_body(params: dict[str, list[str]], body: bytes, content_type: str) -> None:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/sparql-update":
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    if media not in ("application/x-www-form-urlencoded", "application/sparql-query"):
        raise ProtocolError(415, "send the query as application/sparql-query, or as the 'query' field of "
                                 "application/x-www-form-urlencoded, or as ?query= in the URL")
    try:  # strictly: a query is UTF-8 (SPARQL 1.1 Protocol), and a replaced byte would be searched for
        if media == "application/sparql-query":
            params["query"] = [http_limits.text_of(body, "query")]
            return
        for key, values in http_limits.form_of(body).items():
            params.setdefault(key, []).extend(values)
    except http_limits.BadText as exc:
        raise ProtocolError(400, str(exc)) from None


def _query(params: dict[str, list[str]], max_bytes: int) -> str:
    if "update" in params:
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    queries = params.get("query", [])
    if len(queries) > 1:
        raise ProtocolError(400, "give exactly one 'query' parameter")
    if not queries or not queries[0].strip():
        raise ProtocolError(400, "no query given: send it as ?query=, as the 'query' form field, "
                                 "or as an application/sparql-query body")
    if len(queries[0].encode("utf-8")) > max_bytes:
        raise ProtocolError(413, f"the query is larger than the {max_bytes:,}-byte limit")
    return queries[0]


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def service_description(settings: Settings, triples: int) -> list[ox.Triple]:
    """The SPARQL 1.1 Service Description of this endpoint."""
    service = ox.NamedNode(settings.sparql_endpoint + "#service")
    endpoint = ox.NamedNode(settings.sparql_endpoint)
    dataset = ox.BlankNode("dataset")
    graph = ox.BlankNode("defaultGraph")
    out = [
        ox.Triple(service, RDF.type, SD.Service),
        ox.Triple(service, SD.endpoint, endpoint),
        ox.Triple(service, SD.supportedLanguage, SD.SPARQL11Query),
        ox.Triple(service, SD.defaultEntailmentRegime, ox.NamedNode("http://www.w3.org/ns/entailment/Simple")),
        ox.Triple(service, DCTERMS.description, ox.Literal(
            f"Read-only. Each query stops after {settings.query_timeout:g} s; answers hold at most "
            f"{settings.max_rows} rows (truncation is signalled by X-SPARQL-MaxRows). SERVICE is refused.",
            language="en")),
        ox.Triple(service, SD.defaultDataset, dataset),
        ox.Triple(dataset, RDF.type, SD.Dataset),
        ox.Triple(dataset, DCTERMS.source, ox.NamedNode(settings.dataset_iri)),
        ox.Triple(dataset, SD.defaultGraph, graph),
        ox.Triple(graph, RDF.type, SD.Graph),
        ox.Triple(graph, VOID.triples, ox.Literal(str(triples), datatype=XSD.integer)),
    ]
    out += [ox.Triple(service, SD.resultFormat, ox.NamedNode(f.iri)) for f in (*formats.SOLUTIONS, *formats.GRAPH)
            if f.iri]
    return out
