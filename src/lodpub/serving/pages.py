"""HTML pages for people: Jinja2 templates, readable property labels, links both ways."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pyoxigraph as ox
from markupsafe import Markup, escape

from lodpub.iris import national
from lodpub.vocab import STANDARD_PREFIXES

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Labels for the standard terms our data uses (our own terms are labelled by the ontology).
STANDARD_LABELS: dict[str, dict[str, str]] = {
    STANDARD_PREFIXES["rdf"] + "type": {"ja": "種類", "en": "type"},
    STANDARD_PREFIXES["rdfs"] + "label": {"ja": "名称", "en": "label"},
    STANDARD_PREFIXES["org"] + "unitOf": {"ja": "上位組織", "en": "unit of"},
    STANDARD_PREFIXES["org"] + "FormalOrganization": {"ja": "公式組織", "en": "formal organization"},
    STANDARD_PREFIXES["skos"] + "notation": {"ja": "番号", "en": "notation"},
    STANDARD_PREFIXES["skos"] + "hiddenLabel": {"ja": "旧名称", "en": "former name"},
    STANDARD_PREFIXES["dcterms"] + "replaces": {"ja": "引き継ぎ元", "en": "replaces"},
    STANDARD_PREFIXES["dcterms"] + "isReplacedBy": {"ja": "引き継ぎ先", "en": "replaced by"},
    STANDARD_PREFIXES["dcterms"] + "spatial": {"ja": "地域", "en": "spatial coverage"},
    STANDARD_PREFIXES["dcterms"] + "title": {"ja": "題名", "en": "title"},
    STANDARD_PREFIXES["dcat"] + "byteSize": {"ja": "バイト数", "en": "size in bytes"},
}


@dataclass(frozen=True)
class Alternate:
    label: str
    media_type: str
    href: str


# What JSON inside an inline <script> must not hold as itself. "<" could open "<!--" or "</script>" (the
# first puts the tokenizer in its double-escaped state, where the block's own </script> no longer ends
# it); ">" and "&" are escaped with it, as HTML's own advice has it; U+2028/U+2029 end a line in older
# JavaScript. Inside JSON strings each \uXXXX reads back as the same character.
SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                "\u2028": "\\u2028", "\u2029": "\\u2029"})
SAC = STANDARD_PREFIXES["sac"]  # e-Stat's standard area codes: shown with their code, linked out
# Schemes a page may link to; anything else (javascript:, data:, vbscript:, file:, …) is shown as text.
LINK_SCHEMES = frozenset({"http", "https", "tel", "mailto"})


def script_json(data: Any) -> Markup:
    """``data`` as JSON that can stand inside any inline <script> block: the one place pages make it."""
    return Markup(json.dumps(data, ensure_ascii=False).translate(SCRIPT_ESCAPES))


def area_code(iri: str) -> str:
    """``http://data.e-stat.go.jp/lod/sac/C13207`` → ``13207``, the code people know."""
    return iri[len(SAC):].removeprefix("C")


def linkable(href: str) -> bool:
    """Whether ``href`` may be a live link: one of our own paths, or a URL of a scheme in LINK_SCHEMES."""
    if href.startswith("/") and not href.startswith("//"):
        return True
    try:  # urlsplit drops leading controls and spaces and any tab or line break, as a browser does
        return urlsplit(href).scheme.lower() in LINK_SCHEMES
    except ValueError:
        return False


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = script_json  # the templates' JSON is made where schema.org's is
    return env


def pick(labels: dict[str, str] | None, lang: str) -> str:
    """The label in ``lang``, else Japanese, else any."""
    if not labels:
        return ""
    return labels.get(lang) or labels.get("ja") or labels.get("") or next(iter(labels.values()))


def short(iri: str) -> str:
    for prefix, namespace in STANDARD_PREFIXES.items():
        if iri.startswith(namespace):
            return f"{prefix}:{iri[len(namespace):]}"
    return iri.rsplit("#", 1)[-1] if "#" in iri else iri


class Renderer:
    """Turns triples into labelled rows; ``local`` maps an IRI to the path that serves it, if ours."""

    def __init__(self, term_labels: dict[str, dict[str, str]], lang: str, local: Callable[[str], str | None]):
        self.term_labels = {**STANDARD_LABELS, **term_labels}
        self.lang = lang
        self.local = local
        self.telephones: dict[str, str] = {}  # contact point IRI → its tel: IRI, to offer a call link

    def term(self, iri: str) -> str:
        return pick(self.term_labels.get(iri), self.lang) or short(iri)

    def value(self, term, labels: dict[str, dict[str, str]]) -> Markup:
        if isinstance(term, ox.NamedNode):
            iri = term.value
            if iri.startswith("tel:"):
                return Markup('<a href="{}">{}</a>').format(iri, national(iri))
            text = pick(labels.get(iri), self.lang) or (self.term(iri) if iri in self.term_labels else iri)
            href = self.local(iri) or iri
            if not linkable(href):  # the build keeps such URLs as text; this holds whatever the data says
                return Markup('<span class="iri">{}</span>').format(text)
            link = Markup('<a href="{}">{}</a>').format(href, text)
            if iri.startswith(SAC) and text != iri:  # a place: its name, then its code (e-Stat's, linked)
                link += Markup(' <span class="code">{}</span>').format(area_code(iri))
            if iri in self.telephones:
                call = "電話する" if self.lang == "ja" else "call"
                link += Markup(' (<a href="{}">{}</a>)').format(self.telephones[iri], call)
            return link
        if isinstance(term, ox.Literal):
            if term.language:
                return Markup('<span lang="{}">{}</span>').format(term.language, term.value)
            return escape(term.value)
        return escape(str(term))

    def rows(self, triples: Sequence[ox.Triple], labels, position: str = "object") -> list[dict]:
        """Rows of (property label, values), values in the given position, properties in reading order."""
        grouped: dict[str, list] = {}
        for t in triples:
            grouped.setdefault(t.predicate.value, []).append(t.object if position == "object" else t.subject)
        ordered = sorted(grouped.items(), key=lambda item: _reading_rank(item[0]))
        return [{"iri": p, "label": self.term(p), "values": [self.value(v, labels) for v in values]}
                for p, values in ordered]


# What a reader looks for first; the source texts and provenance come last.
READING_ORDER = ("type", "label", "summary", "strategy", "responsibleUnit", "bureau", "contactPoint", "telephone",
                 "unit", "unitOf", "url", "remarks", "startDate", "endDate", "level", "notation")


def _reading_rank(iri: str) -> tuple[int, str]:
    local = iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
    return (READING_ORDER.index(local) if local in READING_ORDER else len(READING_ORDER), local)
