"""The web server: the SPARQL endpoint, dereferenceable IRIs, pages, and the dumps of dist/.

It reads only what ``lodpub build`` wrote to dist/. One event loop answers HTTP;
queries run in the engine's worker processes; resource lookups are pattern
matches on a read-only handle of the same store.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from contextlib import asynccontextmanager
from json.encoder import encode_basestring as quote  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from . import downloads, negotiation, pages, results, sparql_endpoint, web
from .engine import Engine
from .linked_data import KINDS, LinkedData, read_withdrawn
from .search import Search
from .settings import Settings
from .store import ensure_search_index, ensure_store, open_read_only
from .vocab import DCAT, DCTERMS, RDFS, SPDX, VOID, prefixes

IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXTENSIONS = {"ttl": "ttl", "nt": "nt", "jsonld": "jsonld", "rdf": "rdf", "html": "html"}
DOC_FORMATS = (negotiation.HTML, *negotiation.GRAPH)


class Site:
    """What the server knows about dist/, read once at start."""

    def __init__(self, dist: Path, settings: Settings):
        self.dist = dist
        self.settings = settings
        self.base = settings.base
        self.void = [q.triple for q in ox.parse(path=str(dist / "void.ttl"), format=ox.RdfFormat.TURTLE)]
        self.files = downloads.index(dist, described_files(self.void, self.base))
        version = self.files["measures.nt"].sha256  # what the store and search index are keyed on
        ensure_store(dist, version)
        self.store = open_read_only(dist)
        self.ld = LinkedData(self.store, self.base, read_withdrawn(dist / "register.tsv", self.base))
        dataset = ox.NamedNode(settings.dataset_iri)
        about = {t.predicate.value: t.object.value for t in self.void if t.subject == dataset}
        self.triples = int(about[VOID.triples.value])
        self.modified = about[DCTERMS.modified.value]
        self.last_modified = downloads.http_date(self.modified)
        self.class_counts = {t.subject.value.rsplit("-", 1)[-1]: int(t.object.value)
                             for t in self.void if t.predicate == VOID.entities}
        self.search = Search(ensure_search_index(dist, self.store, self.base, version))
        self.version = self.files["measures.nt"].version
        vocabulary = [q.triple for name in ("ontology.ttl", "shapes.ttl")
                      for q in ox.parse(path=str(dist / name), format=ox.RdfFormat.TURTLE)]
        self.vocabulary = vocabulary
        self.term_labels: dict[str, dict[str, str]] = {}
        for t in vocabulary:
            if t.predicate == RDFS.label and isinstance(t.subject, ox.NamedNode):
                self.term_labels.setdefault(t.subject.value, {})[t.object.language or ""] = t.object.value
        self.templates = pages.environment()
        self.browse_lists: dict[str, list[dict[str, Any]]] = {}  # filled on first view (web.browse)
        self.engine = Engine(dist / "store", dist / "measures.nt", settings.workers, settings.memory_workers,
                             settings.query_timeout, local=self.store)
        self.answers = sparql_endpoint.AnswerCache(settings.result_cache_mb * 1024 * 1024)

    def local(self, iri: str) -> str | None:
        return "/" + iri[len(self.base):] if iri.startswith(self.base) else None

    def rdf(self, triples: list[ox.Triple], fmt: negotiation.Format, headers: dict[str, str]) -> Response:
        body = results.graph(triples, fmt.name, results.used_prefixes(triples, prefixes(self.base)))
        media = fmt.media_type + ("; charset=utf-8" if fmt.media_type.startswith("text/") else "")
        return Response(body, media_type=media, headers=headers)


def described_files(void: list[ox.Triple], base: str) -> dict[str, tuple[int, str]]:
    """File name → (size, SHA-256) as the dataset description states them."""
    prefix = f"{base}data/"
    sizes = {t.subject.value[len(prefix):]: int(t.object.value) for t in void
             if t.predicate == DCAT.byteSize and t.subject.value.startswith(prefix)}
    sums = {t.subject.value[len(prefix):].removesuffix("#sha256"): t.object.value for t in void
            if t.predicate == SPDX.checksumValue and t.subject.value.startswith(prefix)}
    return {name: (size, sums[name]) for name, size in sizes.items() if name in sums}


def message(site: Site, request: Request, status: int, title: str, text: str, iri: str = "") -> Response:
    """An error or notice: HTML for a browser, plain text for everyone else."""
    if "text/html" in request.headers.get("accept", ""):
        return web.render(site, request, "message.html", status, title=title, message=text, iri=iri)
    return sparql_endpoint.text(status, f"{title}: {text}")


def create_app(dist: Path, settings: Settings) -> sparql_endpoint.Endpoint:
    """The whole server: SPARQL queries on their own fast path, everything else through FastAPI."""
    site = Site(dist, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await site.engine.start()
        yield
        await site.engine.stop()

    app = FastAPI(title="lodpub", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = site

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        logging.getLogger("lodpub").exception("internal error on %s", request.url.path)
        return sparql_endpoint.text(500, "internal error: the request could not be answered")

    @app.exception_handler(sparql_endpoint.ProtocolError)
    async def protocol_error(request: Request, exc: sparql_endpoint.ProtocolError) -> Response:
        return sparql_endpoint.text(exc.status, str(exc), exc.headers)

    @app.api_route("/sparql", methods=["GET", "HEAD"])
    async def sparql(request: Request) -> Response:
        """What the query endpoint (sparql_endpoint.Endpoint) passes on: no query, or a browser's link."""
        if "query" in request.query_params:
            return web.query_editor(site, request)  # a browser following a link to a query
        return service_description(request)

    @app.get("/search")
    async def search(request: Request) -> Response:
        return await run_in_threadpool(web.search, site, request)

    @app.get("/browse/{kind}")
    async def browse(request: Request, kind: str) -> Response:
        if kind not in ("strategies", "bureaus"):
            return not_found(request, 404, f"{site.base}browse/{kind}")
        return await run_in_threadpool(web.browse, site, request, kind)

    def service_description(request: Request) -> Response:
        if "update" in request.query_params:
            raise sparql_endpoint.ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
        try:
            fmt = negotiation.choose(DOC_FORMATS, request.headers.get("accept"), request.query_params.get("format"))
        except negotiation.NotAcceptable as exc:
            raise sparql_endpoint.ProtocolError(406, str(exc)) from None
        if fmt is negotiation.HTML:
            return web.query_editor(site, request)
        return site.rdf(sparql_endpoint.service_description(settings, site.triples), fmt, {"Vary": "Accept"})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "dataset": site.version, "triples": site.triples,
                             "workers": site.engine.workers, **site.engine.stats, "cache": site.answers.stats()})

    @app.api_route("/id/{kind}/{ident}", methods=["GET", "HEAD"])
    async def identifier(request: Request, kind: str, ident: str) -> Response:
        iri = f"{site.base}id/{kind}/{ident}"
        status = await run_in_threadpool(resource_status, kind, ident, iri)
        if status == 200:
            return RedirectResponse(f"/doc/{kind}/{ident}", status_code=303, headers={"Vary": "Accept"})
        return not_found(request, status, iri)

    def resource_status(kind: str, ident: str, iri: str) -> int:
        if kind not in KINDS or not IDENT.match(ident):
            return 404
        if iri in site.ld.withdrawn:
            return 410
        return 200 if site.ld.exists(iri) else 404

    def not_found(request: Request, status: int, iri: str) -> Response:
        if status == 410:
            return message(site, request, 410, "Gone", "この資源は取り下げられました。 This resource has been "
                           "withdrawn; its IRI will never be reused.", iri)
        return message(site, request, 404, "Not Found", "この IRI は当データセットにありません。 No such "
                       "resource in this dataset.", iri)

    @app.api_route("/doc/{kind}/{ident}", methods=["GET", "HEAD"])
    async def document(request: Request, kind: str, ident: str) -> Response:
        stem, _, ext = ident.rpartition(".") if "." in ident and ident.rsplit(".", 1)[1] in EXTENSIONS \
            else (ident, "", "")
        iri = f"{site.base}id/{kind}/{stem}"
        status = await run_in_threadpool(resource_status, kind, stem, iri)
        if status != 200:
            return not_found(request, status, iri)
        fmt = _negotiate(request, ext)
        path = f"/doc/{kind}/{stem}"
        headers = {"Vary": "Accept", "Content-Location": f"{path}.{fmt.name}"}
        if fmt is negotiation.HTML:
            asked = request.query_params.get("page", "1")
            page = max(1, int(asked)) if asked.isdigit() else 1
            size = settings.page_size
            description = await run_in_threadpool(site.ld.describe, iri, size, (page - 1) * size)
            response = web.resource_page(site, request, description, page, path)
            response.headers.update(headers)
            return response
        description = await run_in_threadpool(site.ld.describe, iri)
        return site.rdf(description.all_triples(), fmt, headers)

    def _negotiate(request: Request, ext: str) -> negotiation.Format:
        try:
            return negotiation.choose(DOC_FORMATS, request.headers.get("accept"),
                                      EXTENSIONS.get(ext) or request.query_params.get("format"))
        except negotiation.NotAcceptable as exc:
            raise sparql_endpoint.ProtocolError(406, str(exc)) from None

    @app.api_route("/def/{name}", methods=["GET", "HEAD"])
    async def vocabulary(request: Request, name: str) -> Response:
        stem, _, ext = name.partition(".")
        source = {"lodpub": "ontology.ttl", "shapes": "shapes.ttl"}.get(stem)
        if source is None:
            return not_found(request, 404, f"{site.base}def/{name}")
        fmt = _negotiate(request, ext)
        headers = {"Vary": "Accept", "Content-Location": f"/def/{stem}.{fmt.name}"}
        if fmt is negotiation.HTML:
            return web.vocabulary_page(site, request, stem)
        if fmt.name == "ttl":
            return downloads.serve(request, site.files, source, site.last_modified)
        triples = [q.triple for q in ox.parse(path=str(dist / source), format=ox.RdfFormat.TURTLE)]
        return site.rdf(triples, fmt, headers)

    @app.api_route("/", methods=["GET", "HEAD"])
    @app.api_route("/data/measures", methods=["GET", "HEAD"])
    @app.api_route("/.well-known/void", methods=["GET", "HEAD"])
    async def dataset(request: Request) -> Response:
        ext = request.query_params.get("format", "")
        fmt = _negotiate(request, ext)
        if fmt is negotiation.HTML:
            return web.landing(site, request)
        if fmt.name == "ttl":
            return downloads.serve(request, site.files, "void.ttl", site.last_modified)
        return site.rdf(site.void, fmt, {"Vary": "Accept"})

    @app.api_route("/data/{name}", methods=["GET", "HEAD"])
    async def download(request: Request, name: str) -> Response:
        if name not in site.files:
            return not_found(request, 404, f"{site.base}data/{name}")
        return downloads.serve(request, site.files, name, site.last_modified)

    @app.api_route("/data/{version}/{name}", methods=["GET", "HEAD"])
    async def versioned_download(request: Request, version: str, name: str) -> Response:
        found = site.files.get(name)
        if found is None or found.version != version:
            return not_found(request, 404, f"{site.base}data/{version}/{name}")
        return downloads.serve(request, site.files, name, site.last_modified, versioned=True)

    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                       allow_methods=["GET", "POST", "HEAD", "OPTIONS"], allow_headers=["*"],
                       expose_headers=["X-SPARQL-MaxRows", "Warning", "Content-Location", "ETag"])
    logged = AccessLog(app)
    return sparql_endpoint.Endpoint(settings, site.engine, site.answers, logged, wants_editor, logged.record)


def wants_editor(accept: str | None, requested_format: str | None) -> bool:
    """A browser asks for HTML first; SPARQL clients never do, and ``format=`` always wins."""
    if requested_format:
        return False
    try:
        return negotiation.choose((*negotiation.SOLUTIONS, negotiation.HTML), accept) is negotiation.HTML
    except negotiation.NotAcceptable:
        return False


class AccessLog:
    """One JSON line per request on standard error: method, path, status, bytes, milliseconds.

    It wraps the framework's app; the SPARQL endpoint in front of it records its own
    requests through ``record``. Lines are written together once per turn of the event
    loop, so that under load the log costs one system call per batch, not one per request.
    """

    def __init__(self, app):
        self.app = app
        self.pending: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        seen = {"status": 0, "bytes": 0}

        async def sending(event):
            if event["type"] == "http.response.start":
                seen["status"] = event["status"]
                headers = event.setdefault("headers", [])
                if not any(name.lower() == b"access-control-allow-origin" for name, _ in headers):
                    headers.append((b"access-control-allow-origin", b"*"))  # every answer is public
            elif event["type"] == "http.response.body":
                seen["bytes"] += len(event.get("body", b""))
            await send(event)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.record(scope, seen["status"], seen["bytes"], start)

    def record(self, scope, status: int, size: int, start: float) -> None:
        """Log one request that began at ``start`` (``time.perf_counter()``)."""
        client = scope.get("client") or ("", 0)
        # Written out rather than json.dumps(dict): this runs for every request, and only the strings
        # need JSON's escaping.
        line = (f'{{"method": {quote(scope["method"])}, "path": {quote(scope["path"])}, '
                f'"query": {quote(scope.get("query_string", b"").decode("latin-1")[:200])}, '
                f'"status": {status}, "bytes": {size}, '
                f'"ms": {(time.perf_counter() - start) * 1000:.1f}, "client": {quote(str(client[0]))}}}')
        self.pending.append(line)
        if len(self.pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
