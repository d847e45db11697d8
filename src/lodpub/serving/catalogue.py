"""The dataset's description and its files: the landing page, DCAT/VoID, and every download.

``/`` (also ``/data/measures`` and ``/.well-known/void``) is the landing page for a browser and the
description in RDF for everyone else; ``/data/<file>`` the current edition's files, ``/data/<edition>/<file>``
one edition's, immutable for as long as the tree keeps it (``downloads.py``: ETags, ranges, gzip).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from lodpub import formats
from lodpub.serving import downloads, quality_page, web
from lodpub.serving.edition import edition_of
from lodpub.serving.responses import document_format, edition_gone_or_missing, not_found, rdf

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"])
@router.api_route("/data/measures", methods=["GET", "HEAD"])
@router.api_route("/.well-known/void", methods=["GET", "HEAD"])
async def dataset(request: Request) -> Response:
    edition = edition_of(request)
    fmt = document_format(request, "")
    if fmt is formats.HTML:
        return web.landing(edition, request)
    if fmt is formats.TURTLE:
        return downloads.serve(request, edition.downloads, "void.ttl", negotiated=True)
    return rdf(edition, edition.void, fmt, {"Vary": "Accept"})


@router.api_route("/quality", methods=["GET", "HEAD"])
async def quality(request: Request) -> Response:
    """The machine-readability report on the source tables, as a page (its data: /data/quality.ttl)."""
    return quality_page.page(edition_of(request), request)


@router.api_route("/data/{name}", methods=["GET", "HEAD"])
async def download(request: Request, name: str) -> Response:
    edition = edition_of(request)
    if name not in edition.downloads.files:
        return not_found(request, 404, f"{edition.base}data/{name}")
    return downloads.serve(request, edition.downloads, name)


@router.api_route("/data/{version}/{name}", methods=["GET", "HEAD"])
async def versioned_download(request: Request, version: str, name: str) -> Response:
    """A file of one edition, for as long as the tree keeps it: its bytes never change."""
    edition = edition_of(request)
    files = request.app.state.editions.files_of(version)
    if files is None:
        return edition_gone_or_missing(edition, request, version, f"{edition.base}data/{version}/{name}",
                                       f"The current files are at /data/{name}.")
    if name not in files.files:
        return not_found(request, 404, f"{edition.base}data/{version}/{name}")
    return downloads.serve(request, files, name, versioned=True)
