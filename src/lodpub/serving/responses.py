"""The answers routes share: a notice or error (HTML for a browser, text for everyone else), 404 and 410,
RDF in the negotiated format, and a document's format from its extension or ``Accept``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyoxigraph as ox
from starlette.requests import Request
from starlette.responses import Response

from lodpub import formats, results
from lodpub.serving import negotiation, sparql_endpoint, web
from lodpub.vocab import prefixes

if TYPE_CHECKING:
    from lodpub.serving.edition import Edition
    from lodpub.settings import Settings

EXTENSIONS = {f.name for f in (*formats.GRAPH, formats.HTML)}  # a document's: /doc/measure/1.ttl
DOC_FORMATS = (formats.HTML, *formats.GRAPH)


def message(edition: Edition, request: Request, status: int, title: str, text: str, iri: str = "",
            links: list[str] | None = None) -> Response:
    """An error or notice: HTML for a browser, plain text for everyone else."""
    if "text/html" in request.headers.get("accept", ""):
        return web.render(edition, request, "message.html", status, title=title, message=text, iri=iri,
                          links=links or [])
    return sparql_endpoint.text(status, f"{title}: {text}")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def not_found(request: Request, status: int, iri: str) -> Response:
    """404 for what this dataset does not have; 410 for a withdrawn thing, naming its successors."""
    edition = request.scope[sparql_endpoint.EDITION_KEY]
    if status == 410:
        successors = edition.data.withdrawn.get(iri, [])
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


def edition_gone_or_missing(edition: Edition, request: Request, name: str, iri: str, then: str = "") -> Response:
    """410 for an edition the tree no longer keeps (``then``: where to go instead), 404 for an unknown one."""
    if edition.knows(name):
        return message(edition, request, 410, "Gone", f"版 {name} は保存期間を過ぎました。 Edition {name} is no "
                       f"longer kept.{' ' + then if then else ''}", iri)
    return message(edition, request, 404, "Not Found", "その版はありません。 No such edition.", iri)


def rdf(edition: Edition, triples: list[ox.Triple], fmt: formats.Format, headers: dict[str, str]) -> Response:
    body = results.graph(triples, fmt.name, results.used_prefixes(triples, prefixes(edition.base)))
    media = fmt.media_type + ("; charset=utf-8" if fmt.media_type.startswith("text/") else "")
    return Response(body, media_type=media, headers=headers)


def split_extension(ident: str) -> tuple[str, str]:
    """``4.ttl`` → (``4``, ``ttl``); an identifier without a known extension is returned whole."""
    if "." in ident and ident.rsplit(".", 1)[1] in EXTENSIONS:
        stem, _, ext = ident.rpartition(".")
        return stem, ext
    return ident, ""


def document_format(request: Request, ext: str) -> formats.Format:
    """The format a document is asked for in: its extension, ``format=``, or ``Accept``."""
    try:
        return negotiation.choose(DOC_FORMATS, request.headers.get("accept"),
                                  (ext if ext in EXTENSIONS else None) or request.query_params.get("format"))
    except negotiation.NotAcceptable as exc:
        raise sparql_endpoint.ProtocolError(406, str(exc)) from None
