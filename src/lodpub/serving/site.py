"""The rest of the site: search, browse lists, the query editor and service description, and what
operators read (``/health``, ``/metrics``)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodpub import formats
from lodpub.serving import caching, metrics, sparql_endpoint, web
from lodpub.serving.edition import edition_of
from lodpub.serving.responses import document_format, not_found, rdf, settings_of

router = APIRouter()


@router.api_route("/sparql", methods=["GET", "HEAD"])
async def sparql(request: Request) -> Response:
    """What the query endpoint (sparql_endpoint.Endpoint) passes on: no query, or a browser's link."""
    edition = edition_of(request)
    if "query" in request.query_params:
        return web.query_editor(edition, request)  # a browser following a link to a query
    if "update" in request.query_params:
        raise sparql_endpoint.ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    fmt = document_format(request, "")
    if fmt is formats.HTML:
        return web.query_editor(edition, request)
    description = sparql_endpoint.service_description(edition.settings, edition.graph_triples)
    return rdf(edition, description, fmt, {"Vary": "Accept"})


@router.api_route("/search", methods=["GET", "HEAD"])
async def search(request: Request) -> Response:
    return await run_in_threadpool(web.search, edition_of(request), request)


@router.api_route("/browse/{kind}", methods=["GET", "HEAD"])
async def browse(request: Request, kind: str) -> Response:
    edition = edition_of(request)
    if kind not in ("strategies", "bureaus"):
        return not_found(request, 404, f"{edition.base}browse/{kind}")
    return await run_in_threadpool(web.browse, edition, request, kind)


@router.api_route("/health", methods=["GET", "HEAD"])
async def health(request: Request) -> JSONResponse:
    """200 once everything that loads in the background has loaded (the copies in memory, the candidate's
    model), 503 ``starting`` before: a load balancer sends clients to a front once it is ready. The server
    answers meanwhile, from the disk store."""
    edition = edition_of(request)
    ready = edition.data.ready
    return JSONResponse({"status": "ok" if ready else "starting", "edition": edition.name,
                         "issued": edition.ref.issued, "dataset": edition.name, "triples": edition.triples,
                         "switches": request.app.state.editions.switches, **edition.data.stats,
                         "turned_away": request.app.state.endpoint.turned_away, "cache": edition.answers.stats()},
                        status_code=200 if ready else 503,
                        headers={"Cache-Control": caching.NO_STORE, **({} if ready else {"Retry-After": "1"})})


@router.get("/metrics")
async def prometheus(request: Request) -> Response:
    """For operators (setting ``metrics``): not there for anyone else."""
    settings = settings_of(request)
    if not metrics.allowed(settings.metrics, request.client.host if request.client else None):
        return not_found(request, 404, f"{settings.base}metrics")
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type, headers={"Cache-Control": caching.NO_STORE})
