"""The pages people read: landing, browse, search, resources, vocabulary, and the query editor.

Server-rendered, semantic HTML that works without JavaScript (only the query
editor needs it), in Japanese by default and English on request, each page
embedding schema.org JSON-LD for dataset search engines and linking its RDF.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import pyoxigraph as ox
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from lodpub import formats, iris
from lodpub.iris import national
from lodpub.serving import negotiation, pages
from lodpub.serving.examples import EXAMPLES, prologue
from lodpub.vocab import DCTERMS, ORG, RDF, SKOS, lodpub

if TYPE_CHECKING:
    from lodpub.serving.edition import Edition
    from lodpub.serving.linked_data import LinkedData

LANGUAGES = ("ja", "en")
# How a link reads from the other end: "a unit of this" is a sub-unit, and so on.
INVERSE_LABELS = {
    ORG.unitOf.value: {"ja": "下位組織", "en": "sub-units"},
    "responsibleUnit": {"ja": "担当する施策", "en": "measures it is responsible for"},
    "bureau": {"ja": "局の施策（すべて）", "en": "all measures of the bureau"},
    "strategy": {"ja": "この戦略の施策", "en": "measures of this strategy"},
    "unit": {"ja": "連絡先", "en": "contact points"},
    "contactPoint": {"ja": "この連絡先の施策", "en": "measures with this contact"},
    "table": {"ja": "行", "en": "rows"},
    "file": {"ja": "表", "en": "tables"},
}


def language(request: Request) -> str:
    """``?lang=``, then the choice remembered in a cookie, then ``Accept-Language``; Japanese by default."""
    for asked in (request.query_params.get("lang"), request.cookies.get("lang")):
        if asked in LANGUAGES:
            return asked
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        for lang in LANGUAGES:
            if tag.startswith(lang):
                return lang
    return "ja"


MAX_PAGE = 1_000_000  # far past the end of any listing; a larger ?page= asks for this one


def page_number(request: Request) -> int:
    """``?page=`` as a page from 1. Only ASCII digits count (``"²".isdigit()`` holds, yet ``int("²")``
    raises, and int() refuses more than 4,300 digits), and the page is at most MAX_PAGE, so that its
    offset fits SQLite's integers."""
    asked = request.query_params.get("page", "1")
    if not (asked.isascii() and asked.isdigit()):
        return 1
    return MAX_PAGE if len(asked) > len(str(MAX_PAGE)) else min(MAX_PAGE, max(1, int(asked)))


def switch_url(request: Request, lang: str) -> str:
    """This page in ``lang``. The path arrives decoded, so it is quoted again (a ``?`` or ``#`` in it would
    change what the link means) and kept one path on this server (``//host`` would leave it)."""
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    params["lang"] = lang
    return f"/{quote(request.url.path.lstrip('/'), safe='/')}?{urlencode(params)}"


def render(edition: Edition, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    settings = edition.settings
    context.setdefault("alternates", [])
    context.setdefault("schema", None)
    html = edition.templates.get_template(template).render(
        lang=lang, site_title=settings.title_ja if lang == "ja" else settings.title_en,
        license=settings.license, switch={code: switch_url(request, code) for code in LANGUAGES},
        query=request.query_params.get("q", ""), **context)
    response = HTMLResponse(html, status_code=status, headers={"Vary": "Accept, Accept-Language, Cookie",
                                                               "Content-Language": lang})
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("lang", request.query_params["lang"], max_age=365 * 24 * 3600, samesite="lax")
    return response


def schema_script(data: dict[str, Any] | None) -> Markup | None:
    """schema.org JSON-LD for a <script> element, made safe there by pages.script_json."""
    if not data:
        return None
    return pages.script_json({"@context": "https://schema.org", **data})


# ------------------------------------------------------------------ landing and dataset

def landing(edition: Edition, request: Request) -> HTMLResponse:
    lang = language(request)
    settings = edition.settings
    names = {"Strategy": ("戦略", "strategies"), "Measure": ("施策", "measures"), "Bureau": ("局", "bureaus"),
             "Division": ("部", "divisions"), "Section": ("課", "sections"),
             "ContactPoint": ("連絡先", "contact points")}
    rows = [(names[k][0 if lang == "ja" else 1], edition.class_counts.get(k, 0)) for k in names]
    rows.append(("トリプル" if lang == "ja" else "triples", edition.triples))
    files = [{"name": f.name, "href": f"/data/{f.name}", "size": f.size, "sha256": f.sha256,
              "media_type": f.media_type.split(";")[0]} for f in edition.downloads.files.values()]
    examples = [{"title": e.title(lang), "href": "/sparql?" + urlencode({"query": e.text(edition.base)})}
                for e in EXAMPLES]
    title = settings.title_ja if lang == "ja" else settings.title_en
    description = settings.description_ja if lang == "ja" else settings.description_en
    schema = {"@type": "Dataset", "@id": settings.dataset_iri, "name": title, "description": description,
              "url": settings.dataset_iri, "license": settings.license, "inLanguage": "ja",
              "isAccessibleForFree": True, "dateModified": edition.modified,
              "publisher": {"@type": "GovernmentOrganization", "name": settings.publisher_ja},
              "distribution": [{"@type": "DataDownload", "name": f["name"], "encodingFormat": f["media_type"],
                                "contentUrl": f"{edition.base}data/{f['name']}", "contentSize": f"{f['size']} B"}
                               for f in files]}
    return render(edition, request, "landing.html", title=title,
                  subtitle=settings.title_en if lang == "ja" else None, description=description,
                  counts=rows, downloads=files, examples=examples, modified=edition.modified,
                  edition_name=edition.name, issued=edition.ref.issued,
                  schema=schema_script(schema),
                  alternates=[pages.Alternate("Turtle", "text/turtle", "/data/void.ttl")])


# ------------------------------------------------------------------ search

def search(edition: Edition, request: Request) -> Response:
    query = request.query_params.get("q", "").strip()[:200]
    page = page_number(request)
    size = edition.settings.page_size
    hits, total = edition.data.search(query, size, (page - 1) * size) if query else ([], 0)
    fmt = negotiation.choose_or_first((formats.HTML, formats.JSON), request.headers.get("accept"),
                                      request.query_params.get("format"))
    if fmt.name == "json":
        return JSONResponse({"query": query, "total": total, "page": page, "results": [
            {"iri": h.iri, "name": h.name, "summary": h.summary, "former": h.former.split(" / ") if h.former else [],
             "matched": "name" if h.in_name else "summary"} for h in hits]}, headers={"Vary": "Accept"})
    results = [{"href": edition.local(h.iri), "name": h.highlighted(query, h.name),
                "summary": h.highlighted(query, h.summary),
                "former": h.highlighted(query, h.former) if h.former else ""} for h in hits]
    return render(edition, request, "search.html", title="検索" if language(request) == "ja" else "Search",
                  results=results, total=total, page=page, pages=max(1, math.ceil(total / size)),
                  page_query=quote(query))


# ------------------------------------------------------------------ browse

def browse(edition: Edition, request: Request, kind: str) -> HTMLResponse:
    """The strategies, or the bureaus, with how many measures each has."""
    lang = language(request)
    if kind not in edition.browse_lists:  # an edition never changes: worked out once per edition
        edition.browse_lists[kind] = browse_list(edition, kind)
    items = [dict(item, label=pages.pick(item["labels"], lang)) for item in edition.browse_lists[kind]]
    title = {"strategies": ("戦略", "Strategies"), "bureaus": ("局", "Bureaus")}[kind][lang != "ja"]
    return render(edition, request, "browse.html", title=title, items=items)


def browse_list(edition: Edition, kind: str) -> list[dict[str, Any]]:
    lp = lodpub(edition.base)
    cls, link = (lp.Strategy, lp.strategy) if kind == "strategies" else (lp.Bureau, lp.bureau)
    data = edition.data
    counts = data.linked_counts(link)
    nodes = sorted(data.instances(cls), key=lambda iri: (len(iri), iri))
    labels = data.labels(nodes)
    return [{"href": edition.local(iri), "labels": labels.get(iri, {}), "count": counts.get(iri, 0),
             "notation": next(iter(data.objects(iri, SKOS.notation)), "")} for iri in nodes]


# ------------------------------------------------------------------ resources

def resource_page(edition: Edition, request: Request, description, page: int, path: str,
                  ld: LinkedData | None = None, **extra: Any) -> HTMLResponse:
    """A resource's page; ``ld``: where its links' labels are looked up (an earlier edition, for a memento),
    ``extra``: more for the template (its versions, or the edition a memento is from)."""
    lang = language(request)
    lp = lodpub(edition.base)
    ld = ld or edition.data
    renderer = pages.Renderer(edition.term_labels, lang, edition.local)
    iri = description.iri
    own = [t for t in description.outgoing if t.subject.value == iri]
    parts: dict[str, list[ox.Triple]] = {}
    for t in description.outgoing:
        if t.subject.value != iri:
            parts.setdefault(t.subject.value, []).append(t)
    types = {t.object.value for t in own if t.predicate == RDF.type}
    chain = unit_chain(ld, iri, own)
    named = [t.object.value for t in description.all_triples() if isinstance(t.object, ox.NamedNode)]
    named += [t.subject.value for t in description.incoming] + [iri] + [u for u, _ in chain]
    labels = ld.labels(named)
    phones = {c: tel for c in set(named) if c.startswith(iris.space(edition.base, "contact"))
              for tel in ld.objects(c, lp.telephone)}
    renderer.telephones = phones
    title = pages.pick(labels.get(iri), lang) or iri.rsplit("/", 1)[-1]
    alternates = [pages.Alternate(name, f.media_type, f"{path}.{f.name}")
                  for name, f in zip(("Turtle", "N-Triples", "JSON-LD", "RDF/XML"), formats.GRAPH, strict=True)]
    incoming = renderer.rows(description.incoming, labels, position="subject")
    for row in incoming:
        key = row["iri"] if row["iri"] in INVERSE_LABELS else row["iri"].rsplit("#", 1)[-1]
        if key in INVERSE_LABELS:
            row["label"] = INVERSE_LABELS[key][lang]
    return render(
        edition, request, "resource.html", title=title,
        subtitle=labels.get(iri, {}).get("en") if lang == "ja" else None, iri=iri, alternates=alternates,
        chain=[{"href": edition.local(u) or u, "label": pages.pick(labels.get(u), lang)} for u, _ in chain],
        properties=renderer.rows(own, labels),
        parts=[{"anchor": p.rsplit("#", 1)[-1], "title": part_title(renderer, p, t),
                "properties": renderer.rows(t, labels)} for p, t in parts.items()],
        incoming=incoming, incoming_total=description.incoming_total, page=page,
        pages=max(1, math.ceil(description.incoming_total / edition.settings.page_size)),
        schema=schema_script(schema_of(edition, iri, types, own, labels, chain, phones, lang)), **extra)


def part_title(renderer: pages.Renderer, iri: str, triples: list[ox.Triple]) -> str:
    """A #part of a resource (a measure's source row) is titled by its type: 出典行 (source)."""
    kind = next((t.object.value for t in triples if t.predicate == RDF.type), None)
    fragment = iri.rsplit("#", 1)[-1]
    return f"{renderer.term(kind)} ({fragment})" if kind else fragment


def unit_chain(ld: LinkedData, iri: str, own: list[ox.Triple]) -> list[tuple[str, int]]:
    """From the government down to this unit (or to a measure's responsible unit): (IRI, depth)."""
    lp = lodpub(ld.base)
    start = next((t.object.value for t in own if t.predicate == lp.responsibleUnit), None)
    if start is None and any(t.predicate == ORG.unitOf for t in own):
        start = iri
    chain: list[str] = []
    node = start
    while node and node not in chain and len(chain) < 12:
        chain.append(node)
        node = next(iter(ld.objects(node, ORG.unitOf)), None)
    return [(u, depth) for depth, u in enumerate(reversed(chain))]


def schema_of(edition: Edition, iri: str, types: set[str], own: list[ox.Triple], labels, chain, phones,
              lang: str) -> dict[str, Any] | None:
    """The resource in schema.org terms, for search engines."""
    lp = lodpub(edition.base)
    name = pages.pick(labels.get(iri), lang)

    def organisation(index: int) -> dict[str, Any] | None:
        if index < 0:
            return None
        unit, _ = chain[index]
        org: dict[str, Any] = {"@type": "GovernmentOrganization", "@id": unit,
                               "name": pages.pick(labels.get(unit), lang)}
        parent = organisation(index - 1)
        if parent:
            org["parentOrganization"] = parent
        return org

    if lp.Measure.value in types:
        places = [t.object.value for t in own if t.predicate == DCTERMS.spatial]
        out: dict[str, Any] = {"@type": "GovernmentService", "@id": iri, "name": name,
                               "areaServed": [area(p, labels, lang) for p in places]
                               or {"@type": "AdministrativeArea", "name": "東京都"}}
        summary = next((t.object.value for t in own if t.predicate == lp.summary), None)
        if summary:
            out["description"] = summary
        page = next((t.object.value for t in own if t.predicate == lp.url), None)
        if page:
            out["url"] = page
        if chain:
            out["provider"] = organisation(len(chain) - 1)
        contacts = [national(phones[t.object.value]) for t in own
                    if t.predicate == lp.contactPoint and t.object.value in phones]
        if contacts:
            out["availableChannel"] = {"@type": "ServiceChannel", "servicePhone": [
                {"@type": "ContactPoint", "telephone": phone} for phone in contacts]}
        return out
    if chain and chain[-1][0] == iri:
        return organisation(len(chain) - 1)
    if iri in phones:
        return {"@type": "ContactPoint", "@id": iri, "telephone": national(phones[iri])}
    return {"@type": "Thing", "@id": iri, "name": name} if name else None


def area(iri: str, labels, lang: str) -> dict[str, Any]:
    """A place a measure names, in schema.org terms: a municipality with its standard area code, or a group."""
    out: dict[str, Any] = {"@type": "AdministrativeArea", "@id": iri, "name": pages.pick(labels.get(iri), lang)}
    if iri.startswith(pages.SAC):
        out["identifier"] = pages.area_code(iri)
    return out


def vocabulary_page(edition: Edition, request: Request, stem: str) -> HTMLResponse:
    lang = language(request)
    renderer = pages.Renderer(edition.term_labels, lang, edition.local)
    namespace = f"{edition.base}def/{stem}"
    by_subject: dict[str, list[ox.Triple]] = {}
    for t in edition.vocabulary:
        if isinstance(t.subject, ox.NamedNode) and t.subject.value.startswith(namespace):
            by_subject.setdefault(t.subject.value, []).append(t)
    labels = {iri: edition.term_labels.get(iri, {}) for iri in by_subject}
    header = by_subject.pop(namespace, [])
    return render(
        edition, request, "resource.html", title=pages.pick(labels.get(namespace), lang) or stem, iri=namespace,
        alternates=[pages.Alternate("Turtle", "text/turtle", f"/def/{stem}.ttl")], chain=[],
        properties=renderer.rows(header, labels),
        parts=[{"anchor": iri.rsplit("#", 1)[-1],
                "title": f"{pages.pick(labels.get(iri), lang)} ({iri.rsplit('#', 1)[-1]})",
                "properties": renderer.rows(triples, labels)} for iri, triples in sorted(by_subject.items())],
        incoming=[], incoming_total=0, page=1, pages=1)


# ------------------------------------------------------------------ the query editor

def query_editor(edition: Edition, request: Request) -> HTMLResponse:
    lang = language(request)
    settings = edition.settings
    initial = request.query_params.get("query") or EXAMPLES[0].text(edition.base)
    examples = [{"title": e.title(lang), "query": e.text(edition.base)} for e in EXAMPLES]
    return render(edition, request, "sparql.html", title="SPARQL", initial=initial, examples=examples,
                  prologue=prologue(edition.base), timeout=settings.query_timeout, max_rows=settings.max_rows,
                  formats=[f.name for f in (*formats.SOLUTIONS, *formats.GRAPH)])


__all__ = ["browse", "landing", "query_editor", "render", "resource_page", "search", "vocabulary_page"]
