"""The web server: the application put together from its parts.

It reads only what ``lodpub build`` published, one edition at a time (``edition.py``), and each
edition's data only through its dataset (``dataset.py``). Requests pass, outermost first: ``Guard``
(``http_limits.py``: bad bytes, traversal), the access log, ``EditionScope`` (the edition a request
reads), the SPARQL endpoint's fast path (``sparql_endpoint.py``), CORS, then the routes by area:
``site`` (search, browse, the query editor, health and metrics), ``documents`` (IRIs and their
documents), ``catalogue`` (the description and the files) and ``history`` (changes and Memento).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from lodpub import formats
from lodpub.serving import catalogue, documents, history, http_limits, metrics, negotiation, site, sparql_endpoint
from lodpub.serving.access_log import AccessLog
from lodpub.serving.caching import Policy
from lodpub.serving.edition import EDITION_KEY, Editions
from lodpub.serving.events import event
from lodpub.serving.history import History
from lodpub.serving.responses import not_found
from lodpub.settings import Settings


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
    app.state.settings = settings
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

    for area in (site, documents, catalogue, history):
        app.include_router(area.router)
    app.mount("/static", PackageFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                       allow_methods=["GET", "POST", "HEAD", "OPTIONS"], allow_headers=["*"],
                       expose_headers=[name.strip() for name in sparql_endpoint.EXPOSED.decode().split(",")])
    logged = AccessLog(Policy(app, settings, lambda scope: scope[EDITION_KEY].name))
    app.state.endpoint = sparql_endpoint.Endpoint(settings, logged, wants_editor, logged.record)
    metrics.register(lambda: serving_state(editions))
    scoped = EditionScope(app.state.endpoint, editions)
    return http_limits.Guard(scoped, logged.record)


EDITION_HEADER = b"lodpub-edition"


class PackageFiles(StaticFiles):
    """The package's own files (``/static``), without the ETag and Last-Modified starlette makes of their
    mtime, which two installs of one release do not share: ``caching.Policy`` gives them the rule's ETag."""

    def file_response(self, full_path, stat_result, scope, status_code: int = 200) -> Response:
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        del response.headers["etag"]
        del response.headers["last-modified"]
        return response


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
                # A new list: the message's may be one an answer keeps (a cached reply sends the same list each
                # time; appending to it grew a cached answer's head by a header per hit, past what clients read).
                message = {**message, "headers": [*message.get("headers", ()), (EDITION_HEADER, name)]}
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
        return negotiation.choose((*formats.SOLUTIONS, formats.HTML), accept) is formats.HTML
    except negotiation.NotAcceptable:
        return False


def serving_state(editions: Editions) -> dict[str, object]:
    """What /metrics reads at each scrape."""
    edition = editions.current
    return {"edition": edition.name, "issued": edition.ref.issued, "triples": edition.triples,
            **edition.data.stats}
