"""The history of the data, served: what changed in each edition, and every resource's earlier versions.

- ``/changes`` lists the editions newest first with what changed in each; ``/changes/<edition>`` one edition's
  changes in full (HTML, its ``changes.ttl``, or JSON); ``/changes.atom`` the feed of editions.
- Memento (RFC 7089) for resource documents: ``/doc/<kind>/<n>`` is the original resource; its TimeGate
  ``/timegate/<kind>/<n>`` answers ``Accept-Datetime`` with a 302 to the version then current, its TimeMap
  ``/timemap/<kind>/<n>`` lists every version (``application/link-format``), and each version is a memento
  ``/memento/<edition>/<kind>/<n>`` (HTML or RDF) that never changes. A version is an edition in which the
  resource first appeared or changed; it is read from that edition's sorted dump (``snapshots.py``), so any
  edition the tree keeps can be read without a store of its own. A memento holds the resource's own
  statements as that edition published them (what linked to it is not kept per edition).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from lodpub import changes, formats, iris, snapshots
from lodpub.metadata import moment
from lodpub.serving import caching, downloads, negotiation, pages, web
from lodpub.serving.edition import Edition, Editions, edition_of
from lodpub.serving.linked_data import Description, LinkedData
from lodpub.serving.responses import document_format, edition_gone_or_missing, rdf, split_extension
from lodpub.snapshots import Snapshot

IMMUTABLE = caching.IMMUTABLE
LINK_FORMAT = "application/link-format"
KEPT = 64  # editions whose changes are kept in memory


@dataclass(frozen=True)
class Version:
    edition: str
    issued: str
    type: str  # how it came to be: added, renamed, changed, or "kept" (unchanged since an edition not kept)

    @property
    def http_date(self) -> str:
        return format_datetime(moment(self.issued), usegmt=True)


class History:
    """The changes of each edition the tree keeps, and the versions of each resource, for one server."""

    def __init__(self, editions: Editions):
        self.editions = editions
        self._changes: OrderedDict[str, list[changes.Change]] = OrderedDict()
        self._index: tuple[str, dict[str, list[tuple[str, str]]]] | None = None

    def kept(self, edition: Edition) -> list[tuple[str, str]]:
        """(name, issued) of every edition up to ``edition`` that the tree still holds, oldest first."""
        chain = [*edition.ref.history, edition.ref]
        return [(e.name, e.issued) for e in chain if (self.editions.dist / e.name).is_dir()]

    def changes_of(self, name: str) -> list[changes.Change]:
        found = self._changes.get(name)
        if found is None:
            found = changes.read(self.editions.dist / name / "changes.ttl", self.editions.settings.base)
            self._changes[name] = found
            if len(self._changes) > KEPT:
                self._changes.popitem(last=False)
        return found

    def versions(self, edition: Edition, iri: str) -> list[Version]:
        """The editions in which ``iri`` took the form it had in each (oldest first), as far as kept."""
        index = self._resource_index(edition)
        changed = dict(index.get(iri, []))
        out: list[Version] = []
        present_before = False
        for name, issued in self.kept(edition):
            kind = changed.get(name)
            if kind == "withdrawn":
                present_before = False
                continue
            if kind in ("added", "renamed", "changed"):
                out.append(Version(name, issued, kind))
                present_before = True
            elif not present_before and self._has(name, iri):
                out.append(Version(name, issued, "kept"))
                present_before = True
        return out

    def _has(self, name: str, iri: str) -> bool:
        return any(t.predicate.value == changes.TYPE for t in snapshots.statements(self.dump(name), iri))

    def dump(self, name: str) -> Path:
        return self.editions.dist / name / "measures.nt"

    def statements(self, name: str, iri: str) -> list:
        """What edition ``name`` stated about ``iri`` and its parts."""
        return snapshots.statements(self.dump(name), iri, parts=True)

    def _resource_index(self, edition: Edition) -> dict[str, list[tuple[str, str]]]:
        if self._index is None or self._index[0] != edition.name:
            index: dict[str, list[tuple[str, str]]] = {}
            for name, _ in self.kept(edition):
                for change in self.changes_of(name):
                    index.setdefault(change.iri, []).append((name, change.type))
            self._index = (edition.name, index)
        return self._index[1]


router = APIRouter()


def _history(request: Request) -> History:
    return request.app.state.history


@router.api_route("/changes", methods=["GET", "HEAD"])
async def editions_page(request: Request) -> Response:
    """Every edition the tree keeps, newest first, with what changed in each."""
    edition, history = edition_of(request), _history(request)
    lang = web.language(request)
    listed = []
    for name, issued in reversed(await run_in_threadpool(history.kept, edition)):
        found = await run_in_threadpool(history.changes_of, name)
        listed.append({"name": name, "issued": issued, "href": f"/changes/{name}", "counts": changes.counts(found),
                       "changes": _items(edition, found[:10], lang), "more": max(0, len(found) - 10),
                       "first": name == edition.ref.first})
    if _wants_json(request):
        return JSONResponse({"editions": [{k: v for k, v in e.items() if k != "changes"} for e in listed]},
                            headers={"Vary": "Accept"})
    return web.render(edition, request, "changes.html", title="版と変更" if lang == "ja" else "Editions and changes",
                      editions=listed, alternates=_feed_link())


@router.api_route("/changes/{name}", methods=["GET", "HEAD"])
async def edition_changes(request: Request, name: str) -> Response:
    edition, history = edition_of(request), _history(request)
    files = history.editions.files_of(name) if edition.knows(name) else None
    if files is None:
        return edition_gone_or_missing(edition, request, name, f"{edition.base}changes/{name}")
    fmt = negotiation.choose_or_first((formats.HTML, formats.GRAPH[0], formats.JSON),
                                      request.headers.get("accept"), request.query_params.get("format"))
    if fmt.name == "ttl":
        return downloads.serve(request, files, "changes.ttl", versioned=True, negotiated=True)
    found = await run_in_threadpool(history.changes_of, name)
    lang = web.language(request)
    if fmt.name == "json":
        return JSONResponse({"edition": name, "counts": changes.counts(found), "changes": [
            {"iri": c.iri, "kind": c.kind, "type": c.type, "label": c.label, "successors": list(c.successors),
             "properties": [{"property": p.predicate, "old": [v.value for v in p.old], "new": [v.value for v in p.new]}
                            for p in c.properties]} for c in found]}, headers={"Vary": "Accept"})
    size = edition.settings.page_size
    page = web.page_number(request)
    issued = next((i for n, i in history.kept(edition) if n == name), "")
    return web.render(edition, request, "changes.html", title=f"{'版' if lang == 'ja' else 'Edition'} {name}",
                      editions=[{"name": name, "issued": issued, "href": f"/changes/{name}",
                                 "counts": changes.counts(found), "first": name == edition.ref.first, "more": 0,
                                 "changes": _items(edition, found[(page - 1) * size:page * size], lang)}],
                      page=page, pages=max(1, math.ceil(len(found) / size)), alternates=_feed_link())


@router.api_route("/changes.atom", methods=["GET", "HEAD"])
async def atom(request: Request) -> Response:
    return downloads.serve(request, edition_of(request).downloads, "changes.atom")


def _items(edition: Edition, found: list[changes.Change], lang: str) -> list[dict]:
    """Changes as a page lists them: the kind in words, a link, each property's old and new values."""
    renderer = pages.Renderer(edition.term_labels, lang, edition.local)
    return [{"type": c.type, "word": changes.WORDS[c.type][lang != "ja"], "href": edition.local(c.iri),
             "label": c.label or c.iri, "kind": c.kind, "successors": [edition.local(s) or s for s in c.successors],
             "properties": [{"label": renderer.term(p.predicate), "old": [renderer.value(v, {}) for v in p.old],
                             "new": [renderer.value(v, {}) for v in p.new]} for p in c.properties]} for c in found]


def _feed_link() -> list[pages.Alternate]:
    return [pages.Alternate("Atom", "application/atom+xml", "/changes.atom")]


def _wants_json(request: Request) -> bool:
    return negotiation.choose_or_first((formats.HTML, formats.JSON), request.headers.get("accept"),
                                       request.query_params.get("format")) is formats.JSON


# ------------------------------------------------------------------ Memento

WORDS = {**changes.WORDS, "kept": ("保存されている最も古い版", "the oldest edition kept")}  # how a version came


def page_versions(versions: list[Version], kind: str, ident: str, lang: str) -> list[dict]:
    """A resource's versions as its page lists them, each a link to its memento."""
    return [{"href": iris.memento(v.edition, kind, ident), "issued": v.issued, "edition": v.edition,
             "word": WORDS[v.type][lang != "ja"]} for v in versions]


def links(request: Request, kind: str, ident: str, versions: list[Version] | None = None) -> str:
    """The Memento ``Link`` header of a resource's original, TimeGate and TimeMap (and its mementos), under the
    configured base: never the Host the client sent, which a shared cache would hand to everyone."""
    root = edition_of(request).base.rstrip("/")
    out = [f'<{root}{iris.document(kind, ident)}>; rel="original"',
           f'<{root}{iris.timegate(kind, ident)}>; rel="timegate"',
           f'<{root}{iris.timemap(kind, ident)}>; rel="timemap"; type="{LINK_FORMAT}"']
    if versions:
        for rel, v in (("first memento", versions[0]), ("last memento", versions[-1])):
            out.append(f'<{root}{iris.memento(v.edition, kind, ident)}>; rel="{rel}"; datetime="{v.http_date}"')
    return ", ".join(out)


async def _versions(request: Request, kind: str, ident: str) -> list[Version]:
    edition = edition_of(request)
    return await run_in_threadpool(_history(request).versions, edition, iris.thing(edition.base, kind, ident))


NO_VERSION = "no version of this resource is kept\n"


@router.api_route("/timegate/{kind}/{ident}", methods=["GET", "HEAD"])
async def timegate(request: Request, kind: str, ident: str) -> Response:
    versions = await _versions(request, kind, ident)
    if not versions:
        return PlainTextResponse(NO_VERSION, status_code=404)
    asked = request.headers.get("accept-datetime")
    chosen = versions[-1]
    if asked:
        try:
            when = parsedate_to_datetime(asked)
        except (TypeError, ValueError):
            return PlainTextResponse("Accept-Datetime must be an HTTP date, e.g. Thu, 01 Jan 2026 00:00:00 GMT\n",
                                     status_code=400)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        earlier = [v for v in versions if moment(v.issued) <= when]
        chosen = earlier[-1] if earlier else versions[0]
    return RedirectResponse(iris.memento(chosen.edition, kind, ident), status_code=302,
                            headers={"Vary": "accept-datetime", "Link": links(request, kind, ident, versions)})


@router.api_route("/timemap/{kind}/{ident}", methods=["GET", "HEAD"])
async def timemap(request: Request, kind: str, ident: str) -> Response:
    versions = await _versions(request, kind, ident)
    if not versions:
        return PlainTextResponse(NO_VERSION, status_code=404)
    root = edition_of(request).base.rstrip("/")  # the configured base, as in ``links``
    lines = [f'<{root}{iris.document(kind, ident)}>;rel="original"',
             f'<{root}{iris.timegate(kind, ident)}>;rel="timegate"',
             f'<{root}{iris.timemap(kind, ident)}>;rel="self";type="{LINK_FORMAT}";'
             f'from="{versions[0].http_date}";until="{versions[-1].http_date}"']
    for n, v in enumerate(versions):
        rel = "first memento" if n == 0 else "last memento" if n == len(versions) - 1 else "memento"
        if len(versions) == 1:
            rel = "first last memento"
        lines.append(f'<{root}{iris.memento(v.edition, kind, ident)}>;rel="{rel}";datetime="{v.http_date}"')
    return Response(",\n".join(lines) + "\n", media_type=LINK_FORMAT, headers={"Cache-Control": caching.CURRENT})


@router.api_route("/memento/{name}/{kind}/{ident}", methods=["GET", "HEAD"])
async def memento(request: Request, name: str, kind: str, ident: str) -> Response:
    """The resource's document as edition ``name`` published it."""
    edition, history = edition_of(request), _history(request)
    stem, ext = split_extension(ident)
    iri = iris.thing(edition.base, kind, stem)
    versions = await run_in_threadpool(history.versions, edition, iri)
    version = next((v for v in versions if v.edition == name), None)
    if version is None:
        if not (edition.path.parent / name).is_dir() and edition.knows(name):
            return edition_gone_or_missing(edition, request, name, f"{edition.base}changes/{name}")
        return PlainTextResponse("no such version of this resource\n", status_code=404)
    fmt = document_format(request, ext)
    own = await run_in_threadpool(history.statements, name, iri)
    ld = LinkedData(Snapshot(history.dump(name)), edition.base, {})  # the labels of its links, as then
    headers = {"Memento-Datetime": version.http_date, "Link": links(request, kind, stem, versions),
               "Cache-Control": IMMUTABLE, "Vary": "Accept",
               "Content-Location": f"{iris.memento(name, kind, stem)}.{fmt.name}"}
    if fmt is formats.HTML:
        description = Description(iri, outgoing=own)
        response = web.resource_page(edition, request, description, 1, iris.memento(name, kind, stem), ld=ld,
                                     memento={"edition": name, "issued": version.issued,
                                              "current": iris.document(kind, stem)})
        caching.add_vary(headers, *response.headers["vary"].split(","))  # a page varies by language too
        response.headers.update(headers)
        return response
    return rdf(edition, own, fmt, headers)


