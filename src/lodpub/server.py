"""The web server: the SPARQL endpoint, dereferenceable IRIs, pages, and the files of each edition.

It reads only what ``lodpub build`` published, one edition at a time (``edition.py``). One event loop
answers HTTP; queries run in the engine's worker processes; resource lookups are pattern matches on a
read-only handle of the same store.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path

import pyoxigraph as ox
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from . import downloads, history, http_limits, metrics, negotiation, sparql_endpoint, web
from .access_log import AccessLog
from .edition import EDITION_KEY, Edition, Editions, edition_of
from .events import event
from .history import History
from .linked_data import KINDS
from .responses import document_format, edition_gone_or_missing, message, rdf, split_extension
from .settings import Settings

IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def create_app(dist: Path, settings: Settings) -> http_limits.Guard:
    """The whole server: SPARQL queries on their own fast path, everything else through FastAPI, each
    request reading the edition that was current when it arrived."""
    editions = Editions(dist, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await editions.start()
        yield
        await editions.stop()

    # No redirect of /path/ to /path: starlette's names the host from the client's Host header (a redirect to
    # anywhere, for a cache that keys on the path alone), and no IRI here ends in a slash: such a path is a 404.
    app = FastAPI(title="lodpub", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)
    app.state.editions = editions
    app.state.history = History(editions)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logging.getLogger("lodpub").exception("internal error on %s", request.url.path)
        return sparql_endpoint.text(500, "internal error: the request could not be answered")

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A path no route has is a 404 like any other (a page or plain text), not the framework's JSON."""
        if exc.status_code == 404:
            return not_found(request, 404, settings.base + request.url.path.lstrip("/"))
        return sparql_endpoint.text(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(sparql_endpoint.ProtocolError)
    async def protocol_error(request: Request, exc: sparql_endpoint.ProtocolError) -> Response:
        return sparql_endpoint.text(exc.status, str(exc), exc.headers)

    @app.api_route("/sparql", methods=["GET", "HEAD"])
    async def sparql(request: Request) -> Response:
        """What the query endpoint (sparql_endpoint.Endpoint) passes on: no query, or a browser's link."""
        if "query" in request.query_params:
            return web.query_editor(edition_of(request), request)  # a browser following a link to a query
        return service_description(request)

    @app.api_route("/search", methods=["GET", "HEAD"])
    async def search(request: Request) -> Response:
        return await run_in_threadpool(web.search, edition_of(request), request)

    @app.api_route("/browse/{kind}", methods=["GET", "HEAD"])
    async def browse(request: Request, kind: str) -> Response:
        edition = edition_of(request)
        if kind not in ("strategies", "bureaus"):
            return not_found(request, 404, f"{edition.base}browse/{kind}")
        return await run_in_threadpool(web.browse, edition, request, kind)

    def service_description(request: Request) -> Response:
        if "update" in request.query_params:
            raise sparql_endpoint.ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
        fmt = document_format(request, "")
        edition = edition_of(request)
        if fmt is negotiation.HTML:
            return web.query_editor(edition, request)
        return rdf(edition, sparql_endpoint.service_description(settings, edition.triples), fmt, {"Vary": "Accept"})

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health(request: Request) -> JSONResponse:
        edition = edition_of(request)
        return JSONResponse({"status": "ok", "edition": edition.name, "issued": edition.ref.issued,
                             "dataset": edition.name, "triples": edition.triples, "switches": editions.switches,
                             "workers": edition.engine.workers, **edition.engine.stats,
                             "turned_away": request.app.state.endpoint.turned_away,
                             "cache": edition.answers.stats()})

    @app.api_route("/id/{kind}/{ident}", methods=["GET", "HEAD"])
    async def identifier(request: Request, kind: str, ident: str) -> Response:
        iri = f"{settings.base}id/{kind}/{ident}"
        status = await run_in_threadpool(resource_status, edition_of(request), kind, ident, iri)
        if status == 200:
            return RedirectResponse(f"/doc/{kind}/{ident}", status_code=303,
                                    headers={"Vary": "Accept", "Link": history.links(request, kind, ident)})
        return not_found(request, status, iri)

    def resource_status(edition: Edition, kind: str, ident: str, iri: str) -> int:
        if kind not in KINDS or not IDENT.match(ident):
            return 404
        if iri in edition.ld.withdrawn:
            return 410
        return 200 if edition.ld.exists(iri) else 404

    def not_found(request: Request, status: int, iri: str) -> Response:
        edition = edition_of(request)
        if status == 410:
            successors = edition.ld.withdrawn.get(iri, [])
            if not successors:
                return message(edition, request, 410, "Gone", "この資源は取り下げられました。 This resource has "
                               "been withdrawn; its IRI will never be reused.", iri)
            response = message(edition, request, 410, "Gone", "この資源は取り下げられ、次に引き継がれました。 This "
                               "resource has been withdrawn and replaced by: " + " ".join(successors), iri,
                               links=[edition.local(s) or s for s in successors])
            response.headers["Link"] = ", ".join(f'<{s}>; rel="successor-version"' for s in successors)
            return response
        return message(edition, request, 404, "Not Found", "この IRI は当データセットにありません。 No such "
                       "resource in this dataset.", iri)

    @app.api_route("/doc/{kind}/{ident}", methods=["GET", "HEAD"])
    async def document(request: Request, kind: str, ident: str) -> Response:
        edition = edition_of(request)
        stem, ext = split_extension(ident)
        iri = f"{settings.base}id/{kind}/{stem}"
        status = await run_in_threadpool(resource_status, edition, kind, stem, iri)
        if status != 200:
            return not_found(request, status, iri)
        fmt = document_format(request, ext)
        path = f"/doc/{kind}/{stem}"
        headers = {"Vary": "Accept", "Content-Location": f"{path}.{fmt.name}",
                   "Link": history.links(request, kind, stem)}
        if fmt is negotiation.HTML:
            page = web.page_number(request)
            size = settings.page_size
            description = await run_in_threadpool(edition.ld.describe, iri, size, (page - 1) * size)
            versions = await run_in_threadpool(app.state.history.versions, edition, iri)
            response = web.resource_page(edition, request, description, page, path, timemap=f"/timemap/{kind}/{stem}",
                                         versions=history.page_versions(versions, kind, stem, web.language(request)))
            response.headers.update(headers)
            return response
        description = await run_in_threadpool(edition.ld.describe, iri)
        return rdf(edition, description.all_triples(), fmt, headers)

    @app.api_route("/def/{name}", methods=["GET", "HEAD"])
    async def vocabulary(request: Request, name: str) -> Response:
        edition = edition_of(request)
        stem, _, ext = name.partition(".")
        source = {"lodpub": "ontology.ttl", "shapes": "shapes.ttl"}.get(stem)
        if source is None:
            return not_found(request, 404, f"{settings.base}def/{name}")
        fmt = document_format(request, ext)
        headers = {"Vary": "Accept", "Content-Location": f"/def/{stem}.{fmt.name}"}
        if fmt is negotiation.HTML:
            return web.vocabulary_page(edition, request, stem)
        if fmt.name == "ttl":
            return downloads.serve(request, edition.downloads, source)
        triples = [q.triple for q in ox.parse(path=str(edition.path / source), format=ox.RdfFormat.TURTLE)]
        return rdf(edition, triples, fmt, headers)

    @app.api_route("/", methods=["GET", "HEAD"])
    @app.api_route("/data/measures", methods=["GET", "HEAD"])
    @app.api_route("/.well-known/void", methods=["GET", "HEAD"])
    async def dataset(request: Request) -> Response:
        edition = edition_of(request)
        fmt = document_format(request, "")
        if fmt is negotiation.HTML:
            return web.landing(edition, request)
        if fmt.name == "ttl":
            return downloads.serve(request, edition.downloads, "void.ttl")
        return rdf(edition, edition.void, fmt, {"Vary": "Accept"})

    @app.api_route("/data/{name}", methods=["GET", "HEAD"])
    async def download(request: Request, name: str) -> Response:
        edition = edition_of(request)
        if name not in edition.downloads.files:
            return not_found(request, 404, f"{settings.base}data/{name}")
        return downloads.serve(request, edition.downloads, name)

    @app.api_route("/data/{version}/{name}", methods=["GET", "HEAD"])
    async def versioned_download(request: Request, version: str, name: str) -> Response:
        """A file of one edition, for as long as the tree keeps it: its bytes never change."""
        files = editions.files_of(version)
        if files is None:
            return edition_gone_or_missing(edition_of(request), request, version, f"{settings.base}data/{version}/"
                                           f"{name}", f"The current files are at /data/{name}.")
        if name not in files.files:
            return not_found(request, 404, f"{settings.base}data/{version}/{name}")
        return downloads.serve(request, files, name, versioned=True)

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        """For operators (setting ``metrics``): not there for anyone else."""
        if not metrics.allowed(settings.metrics, request.client.host if request.client else None):
            return not_found(request, 404, f"{settings.base}metrics")
        body, media_type = metrics.exposition()
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    app.include_router(history.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                       allow_methods=["GET", "POST", "HEAD", "OPTIONS"], allow_headers=["*"],
                       expose_headers=[name.strip() for name in sparql_endpoint.EXPOSED.decode().split(",")])
    logged = AccessLog(app)
    app.state.endpoint = sparql_endpoint.Endpoint(settings, logged, wants_editor, logged.record)
    metrics.register(lambda: serving_state(editions))
    scoped = EditionScope(app.state.endpoint, editions)
    return http_limits.Guard(scoped, logged.record)


EDITION_HEADER = b"lodpub-edition"


class EditionScope:
    """In front of everything: each HTTP request reads the edition current at its arrival, which every
    answer names in a ``Lodpub-Edition`` header. (Pages and files need nothing but the edition's read-only
    store and files, kept while any request holds it; its workers are held by the queries, in ``Endpoint``.)"""

    def __init__(self, app, editions: Editions):
        self.app = app
        self.editions = editions

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        edition = self.editions.current
        scope[EDITION_KEY] = edition
        name = edition.name.encode()

        started = False

        async def sending(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((EDITION_HEADER, name))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            # Stopping, uvicorn waits timeout_graceful_shutdown seconds for requests under way, then cancels
            # them: a request not yet answered is told why (not a 500 with a traceback); one whose answer had
            # begun (a long download) ends short of its Content-Length, which its client notices.
            event("request_stopped", path=scope["path"], answered=started,
                  message="the server is stopping: a request still under way was stopped")
            if not started:
                await sparql_endpoint.plain(503, "the server is stopping; try again in a moment",
                                            {"Retry-After": "5", "Connection": "close"}).send(send)


def wants_editor(accept: str | None, requested_format: str | None) -> bool:
    """A browser asks for HTML first; SPARQL clients never do, and ``format=`` always wins."""
    if requested_format:
        return False
    try:
        return negotiation.choose((*negotiation.SOLUTIONS, negotiation.HTML), accept) is negotiation.HTML
    except negotiation.NotAcceptable:
        return False


def serving_state(editions: Editions) -> dict[str, object]:
    """What /metrics reads at each scrape."""
    edition = editions.current
    return {"edition": edition.name, "issued": edition.ref.issued, "triples": edition.triples,
            **edition.engine.stats}
