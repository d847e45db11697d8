"""Linked Data: every thing's IRI, its document in each format, and the vocabulary.

``/id/<kind>/<n>`` answers 303 to ``/doc/<kind>/<n>`` (``iris.py``), which answers HTML
or RDF by extension, ``format=`` or ``Accept``; a withdrawn thing answers 410 naming
its successors, an unknown one 404. Every read goes through the edition's dataset.
"""

from __future__ import annotations

import pyoxigraph as ox
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lodpub import formats, iris
from lodpub.serving import caching, downloads, history, web
from lodpub.serving.edition import Edition, edition_of
from lodpub.serving.responses import document_format, not_found, rdf, settings_of, split_extension

router = APIRouter()


def status_of(edition: Edition, kind: str, ident: str, iri: str) -> int:
    """200 for a thing this edition has, 410 for a withdrawn one, else 404."""
    if not iris.ours(kind, ident):
        return 404
    if iri in edition.data.withdrawn:
        return 410
    return 200 if edition.data.exists(iri) else 404


@router.api_route("/id/{kind}/{ident}", methods=["GET", "HEAD"])
async def thing(request: Request, kind: str, ident: str) -> Response:
    iri = iris.thing(settings_of(request).base, kind, ident)
    status = await run_in_threadpool(status_of, edition_of(request), kind, ident, iri)
    if status == 200:
        return RedirectResponse(iris.document(kind, ident), status_code=303,
                                headers={"Vary": "Accept", "Link": history.links(request, kind, ident)})
    return not_found(request, status, iri)


@router.api_route("/doc/{kind}/{ident}", methods=["GET", "HEAD"])
async def document(request: Request, kind: str, ident: str) -> Response:
    edition = edition_of(request)
    stem, ext = split_extension(ident)
    iri = iris.thing(edition.base, kind, stem)
    status = await run_in_threadpool(status_of, edition, kind, stem, iri)
    if status != 200:
        return not_found(request, status, iri)
    fmt = document_format(request, ext)
    path = iris.document(kind, stem)
    headers = {"Vary": "Accept", "Content-Location": f"{path}.{fmt.name}", "Link": history.links(request, kind, stem)}
    if fmt is formats.HTML:
        page = web.page_number(request)
        size = edition.settings.page_size
        description = await run_in_threadpool(edition.data.describe, iri, size, (page - 1) * size)
        versions = await run_in_threadpool(request.app.state.history.versions, edition, iri)
        response = web.resource_page(edition, request, description, page, path, timemap=iris.timemap(kind, stem),
                                     versions=history.page_versions(versions, kind, stem, web.language(request)))
        caching.add_vary(headers, *response.headers["vary"].split(","))  # a page varies by language too
        response.headers.update(headers)
        return response
    description = await run_in_threadpool(edition.data.describe, iri)
    return rdf(edition, description.all_triples(), fmt, headers)


@router.api_route("/def/{name}", methods=["GET", "HEAD"])
async def vocabulary(request: Request, name: str) -> Response:
    edition = edition_of(request)
    stem, _, ext = name.partition(".")
    source = {"lodpub": "ontology.ttl", "shapes": "shapes.ttl"}.get(stem)
    if source is None:
        return not_found(request, 404, f"{edition.base}def/{name}")
    fmt = document_format(request, ext)
    headers = {"Vary": "Accept", "Content-Location": f"/def/{stem}.{fmt.name}"}
    if fmt is formats.HTML:
        return web.vocabulary_page(edition, request, stem)
    if fmt is formats.TURTLE:
        return downloads.serve(request, edition.downloads, source, negotiated=True)
    triples = [q.triple for q in ox.parse(path=str(edition.path / source), format=ox.RdfFormat.TURTLE)]
    return rdf(edition, triples, fmt, headers)
