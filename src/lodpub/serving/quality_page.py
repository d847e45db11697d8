"""The machine-readability report as a page: the edition's ``quality.ttl`` read back, rule by rule.

The report is data first (``pipeline/quality.py``); this page is only a reading of it, so what a person
sees and what a machine harvests cannot differ. An edition never changes: each is read once.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox
from starlette.requests import Request
from starlette.responses import Response

from lodpub.metadata import QUALITY
from lodpub.pipeline.readability import RULES, SOURCE
from lodpub.serving import web
from lodpub.serving.responses import not_found
from lodpub.vocab import DQV, OA, RDF

if TYPE_CHECKING:
    from lodpub.serving.edition import Edition


def page(edition: Edition, request: Request) -> Response:
    file = edition.downloads.files.get(QUALITY)
    if file is None:  # an edition built before there was a report
        return not_found(request, 404, f"{edition.base}quality")
    counts, findings = _read(file.path, edition.base)
    lang = web.language(request)
    rules = [{"number": r.number, "slug": r.slug, "ja": r.ja, "en": r.en, "count": counts.get(r.number, 0)}
             for r in RULES.values()]
    for f in findings:
        f["href"] = edition.local(f["target"]) if "/id/measure/" in f["target"] else None  # a row: its measure
    title = "機械判読可能性レポート" if lang == "ja" else "Machine-readability report"
    return web.render(edition, request, "quality.html", title=title, rules=rules, findings=findings,
                      total=len(findings), ministry=SOURCE,
                      alternates=[web.pages.Alternate("Turtle", "text/turtle", f"/data/{QUALITY}")])


@lru_cache(maxsize=8)
def _read(path: Path, base: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Findings per rule (summed over the source files) and every finding: its rule, target and words."""
    store = ox.Store()
    store.bulk_load(path=str(path), format=ox.RdfFormat.TURTLE)
    prefix = f"{base}data/{QUALITY}#rule-"
    counts: dict[str, int] = {}
    for (rule, value) in store.query(f"SELECT ?rule ?n WHERE {{ ?m a <{DQV.QualityMeasurement.value}> ; "
                                     f"<{DQV.isMeasurementOf.value}> ?rule ; <{DQV.value.value}> ?n }}"):
        number = rule.value.removeprefix(prefix)
        counts[number] = counts.get(number, 0) + int(value.value)
    found = []
    for (rule, target, text) in store.query(
            f"SELECT ?rule ?target ?text WHERE {{ ?a a <{DQV.QualityAnnotation.value}> ; <{OA.hasTarget.value}> "
            f"?target ; <{OA.hasBody.value}> ?rule, ?body . ?body a <{OA.TextualBody.value}> ; "
            f"<{RDF.value.value}> ?text . FILTER(isIRI(?rule)) }}"):
        found.append({"rule": rule.value.removeprefix(prefix), "target": target.value, "text": text.value})
    found.sort(key=lambda f: _order(f["text"]))
    return counts, found


def _order(text: str) -> tuple:
    """file, line, column, as the text of a finding begins (``file:23:6: …`` or ``file:sheet!D12: …``)."""
    where = text.split(": ", 1)[0]
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in where.split(":"))
