"""The SPARQL 1.1 Protocol at /sparql: request forms, limits, negotiation, and clear errors."""

from __future__ import annotations

from urllib.parse import parse_qs

import pyoxigraph as ox
from starlette.requests import Request
from starlette.responses import Response

from . import negotiation, sparql_guard
from .engine import ClientGone, Engine, QueryTimeout, WorkerLost
from .engine import Request as QueryRequest
from .settings import Settings
from .vocab import DCTERMS, RDF, SD, VOID, XSD, prefixes

FORMATS_NS = "http://www.w3.org/ns/formats/"
RESULT_FORMATS = ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                  "Turtle", "N-Triples", "JSON-LD", "RDF_XML")


class ProtocolError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.headers = headers or {}
        super().__init__(message)


def text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message.rstrip() + "\n", status_code=status, media_type="text/plain; charset=utf-8",
                    headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise ProtocolError(413, f"the request is larger than the {limit:,}-byte limit for a query")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ProtocolError(413, f"the request is larger than the {limit:,}-byte limit for a query")
    return bytes(body)


async def protocol_request(request: Request, settings: Settings) -> tuple[str | None, dict[str, list[str]]]:
    """The query text and the protocol parameters, from GET, POST form or POST sparql-query."""
    params = parse_qs(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await read_body(request, settings.max_query_bytes)
        if media == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, []).extend(values)
        elif media == "application/sparql-query":
            params["query"] = [body.decode("utf-8", errors="replace")]
        elif media == "application/sparql-update":
            raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
        else:
            raise ProtocolError(415, "send the query as application/sparql-query, or as the 'query' field of "
                                     "application/x-www-form-urlencoded, or as ?query= in the URL")
    if "update" in params:
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    queries = params.get("query", [])
    if len(queries) > 1:
        raise ProtocolError(400, "give exactly one 'query' parameter")
    query = queries[0] if queries else None
    if query is not None and len(query.encode("utf-8")) > settings.max_query_bytes:
        raise ProtocolError(413, f"the query is larger than the {settings.max_query_bytes:,}-byte limit")
    return query, params


async def answer(request: Request, settings: Settings, engine: Engine, dataset_iri: str) -> Response:
    """Evaluate a protocol request; ``None`` query is the caller's to answer (service description)."""
    query, params = await protocol_request(request, settings)
    if query is None or not query.strip():
        raise ProtocolError(400, "no query given: send it as ?query=, as the 'query' form field, "
                                 "or as an application/sparql-query body")
    allowed = {dataset_iri}
    try:
        sparql_guard.check_graphs(params.get("default-graph-uri", []) + params.get("named-graph-uri", []), allowed)
        form = sparql_guard.check(query, allowed)
    except sparql_guard.QueryRefused as refused:
        raise ProtocolError(refused.status, str(refused)) from None
    offered = negotiation.GRAPH if form in ("CONSTRUCT", "DESCRIBE") else negotiation.SOLUTIONS
    try:
        fmt = negotiation.choose(offered, request.headers.get("accept"), _one(params, "format"))
    except negotiation.NotAcceptable as exc:
        raise ProtocolError(406, str(exc)) from None
    job = QueryRequest(query=query, form=form, fmt=fmt.name, max_rows=settings.max_rows,
                       max_bytes=settings.max_response_bytes, truncated_link=f"{settings.base}sparql#truncated",
                       prefixes=tuple(prefixes(settings.base).items()))
    try:
        outcome = await engine.answer(job, request.is_disconnected)
    except ClientGone:
        return text(499, "the client closed the connection; the query was stopped")  # nobody reads this
    except QueryTimeout:
        raise ProtocolError(503, f"the query ran longer than the {settings.query_timeout:g}-second limit and was "
                                 "stopped; make it more specific or add a LIMIT", {"Retry-After": "1"}) from None
    except WorkerLost:
        raise ProtocolError(503, "the query's worker stopped before answering (the server may be shutting down, "
                                 "or the query needed too much memory); it was not completed",
                            {"Retry-After": "1"}) from None
    if outcome.error:
        raise ProtocolError(400, f"the query is not valid SPARQL: {outcome.error}")
    if outcome.too_large:
        raise ProtocolError(422, f"the answer is larger than the {settings.max_response_bytes:,}-byte limit; "
                                 "add a LIMIT or select fewer variables")
    headers = {"Vary": "Accept"}
    if outcome.truncated:
        headers["X-SPARQL-MaxRows"] = str(settings.max_rows)
        headers["Warning"] = f'199 lodpub "results truncated to the first {settings.max_rows} rows"'
    media = fmt.media_type + ("; charset=utf-8" if fmt.media_type.startswith("text/") else "")
    return Response(outcome.body, media_type=media, headers=headers)


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
    out += [ox.Triple(service, SD.resultFormat, ox.NamedNode(FORMATS_NS + name)) for name in RESULT_FORMATS]
    return out
