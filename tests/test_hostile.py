"""Hostile text in every page: cells holding markup, comment openers, </script>, quotes of every kind,
javascript: and data: URLs, bidi controls and line separators are built, served and opened in real Chromium.

Every kind of page must show each value exactly as the cell held it, stay whole (header, main, footer), run
no script of the data's (no dialog, no console error, no element the data spelled), link no URL of an unsafe
scheme, and embed JSON-LD that parses and holds the exact value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
import pytest

from lodpub.pipeline.source import parse
from lodpub.problems import Problem
from lodpub.serving.pages import Renderer, linkable, script_json

from conftest import BASE, Server, build_text, row, table

LS, PS = "\u2028", "\u2029"  # line and paragraph separators: JavaScript line ends before ES2019
RLO, PDF, LRI, PDI = "\u202e", "\u202c", "\u2066", "\u2069"  # bidi controls, kept verbatim
QUOTES = "\"'`"
STRATEGY = f"<b>戦略</b>{LS}<!--<script>&amp;{QUOTES}"
NAME = f"<!--<script>施策</script>{QUOTES}&amp;{LS}改{RLO}逆{PDF}{LRI}隔{PDI}"
SUMMARY = f"<img src=x onerror=alert(1)>概要{PS}</script><script>alert(2)</script>"
SUMMARY_NEW = f"<!--<script>書き換え</script>{QUOTES}&amp;{RLO}"
REMARKS = f"<script>alert(3)</script>{LS}&amp;{QUOTES} 令和6年度まで"
NAME_2 = "<script>alert(4)</script>施策二"
NAME_2_NEW = f"</script><!--<script>改名{QUOTES}"
NAME_3 = f"<svg onload=alert(5)>施策{LS}三"  # inside: a cell is stripped of edge whitespace
# Department levels split on spaces, so none holds one; each level's name decides its class.
BUREAU, DIVISION, SECTION = "<b>局</b>&amp;", f"{QUOTES}<i>x</i>部", "<!--<script>課"
DEPARTMENT = f"{BUREAU} {DIVISION} {SECTION}"
JAVASCRIPT, DATA, VBSCRIPT = "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)"
QUERY = f"<!--<script>施策</script>{QUOTES}&amp;"  # the start of NAME: echoed back, and it finds it
MISSING = f"<img src=x onerror=alert(6)>{QUOTES}&amp;{LS}{RLO}"  # a path segment (a "/" would match no route)
SPARQL = ('SELECT ?name WHERE { ?m <http://www.w3.org/2000/01/rdf-schema#label> ?name '
          'FILTER(CONTAINS(?name, "<!--<script>")) } # </script><!--<script>' + QUOTES)
SAFE_PROTOCOLS = {"http:", "https:", "tel:", "mailto:"}
# Elements the data spells; our pages use none of them (the query editor's own icons are outside its answers).
ELEMENTS_SPELLED = ("img", "svg", "b", "i", "iframe", "object", "embed")


def first_table() -> str:
    return table(row(name=NAME, summary=SUMMARY, department=DEPARTMENT, url=JAVASCRIPT, remarks=REMARKS),
                 row(name=NAME_2, summary="二", department=DEPARTMENT, url=DATA, remarks=f"{RLO}備考"),
                 row(name=NAME_3, summary="三", department=DEPARTMENT, url=VBSCRIPT),
                 heading=f"【戦略1】 {STRATEGY}")


def second_table() -> str:
    """The first edited: measure 1's summary rewritten, measure 2 renamed, measure 3 gone."""
    return table(row(name=NAME, summary=SUMMARY_NEW, department=DEPARTMENT, url=JAVASCRIPT, remarks=REMARKS),
                 row(name=NAME_2_NEW, summary="二", department=DEPARTMENT, url=DATA, remarks=f"{RLO}備考"),
                 heading=f"【戦略1】 {STRATEGY}")


# ------------------------------------------------------------------ fast: the pieces, without a browser

def test_json_for_a_script_block_holds_nothing_html_reads_and_reads_back_exactly():
    data = {"name": NAME, "more": [SUMMARY, REMARKS, STRATEGY, "</SCRIPT >", "<!--", "-->", PS, "a & b > c"]}
    text = str(script_json(data))
    assert not set(text) & set("<>&" + LS + PS)
    assert json.loads(text) == data
    assert "施策" in text  # Japanese stays readable: only what HTML or JavaScript reads is escaped
    assert str(script_json("<&>\u2028\u2029")) == '"\\u003c\\u0026\\u003e\\u2028\\u2029"'


def test_only_safe_schemes_and_our_own_paths_are_links():
    for href in ("/doc/measure/1", "https://example.jp/", "HTTP://example.jp/", "tel:+81-3-5388-2443",
                 "mailto:a@example.jp"):
        assert linkable(href), href
    for href in (JAVASCRIPT, DATA, VBSCRIPT, "file:///etc/passwd", " javascript:alert(1)", "java\tscript:x",
                 "JaVaScRiPt:alert(1)", "//evil.example/", "ftp://example.jp/", "relative/path", ""):
        assert not linkable(href), href
    renderer = Renderer({}, "ja", lambda iri: None)
    for iri in (JAVASCRIPT, "data:text/html,x", "file:///etc/passwd"):
        shown = str(renderer.value(ox.NamedNode(iri), {}))
        assert "<a" not in shown and "href" not in shown, shown


@pytest.mark.parametrize("separator", [LS, PS, "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"])
def test_a_line_separator_in_a_cell_does_not_split_its_row(separator):
    cells = (f"施策{separator}名", f"概要{separator}", "総務局 行政部 振興企画課", "03-5388-2443", "", f"{separator}備考")
    problems: list[Problem] = []
    _, rows = parse(table("\t".join(cells), row(name="次の行")), "t.txt", problems)
    assert problems == []
    assert [r.cells for r in rows] == [cells, tuple(row(name="次の行").split("\t"))]
    assert [r.line for r in rows] == [5, 6]


# ------------------------------------------------------------------ built, served, and opened in Chromium

@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Any]:
    """Two editions of the hostile table, served."""
    tmp = tmp_path_factory.mktemp("hostile")
    first = build_text(tmp, first_table())
    second = build_text(tmp, second_table())  # reads the register the first edition published
    server = Server(tmp / "dist", {"LODPUB_WORKERS": "1"})
    yield {"server": server, "first": first, "second": second, "dist": tmp / "dist"}
    server.stop()


def test_a_url_of_an_unsafe_scheme_is_kept_as_text_with_a_warning_naming_its_cell(hostile):
    first = hostile["first"]
    assert first.measures == 3  # no row is dropped
    warned = {p.message.split(" is not")[0]: (p.line, p.column, p.field) for p in first.warnings
              if "usable web address" in p.message}
    assert warned == {repr(JAVASCRIPT): (5, 5, "URL"), repr(DATA): (6, 5, "URL"), repr(VBSCRIPT): (7, 5, "URL")}
    assert all(p.file.endswith("table.txt") for p in first.warnings)
    graph = ox.Store()
    graph.load(path=str(hostile["dist"] / "current" / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
    iris = {t.object.value for t in graph if isinstance(t.object, ox.NamedNode)}
    assert not [iri for iri in iris if iri.split(":")[0] in ("javascript", "data", "vbscript")]
    literals = {t.object.value for t in graph if isinstance(t.object, ox.Literal)}
    assert {NAME, SUMMARY_NEW, REMARKS, NAME_2_NEW, STRATEGY, BUREAU, DIVISION, SECTION, DEPARTMENT,
            JAVASCRIPT, DATA, NAME_2} <= literals  # exactly as the cells held them (NAME_2: a former name)


@pytest.fixture
def tab(browser, hostile, tmp_path):
    """A fresh tab that records every dialog, console error and page error."""
    context = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def ld_strings(value: Any) -> list[str]:
    """Every string in parsed JSON-LD, however deep."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in ld_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in ld_strings(v)]
    return []


def versions(hostile) -> tuple[str, str]:
    return hostile["first"].edition, hostile["second"].edition


# (path, values the visible text must hold, values the JSON-LD must hold, HTTP status)
PAGES: list[tuple[str, tuple[str, ...], tuple[str, ...], int]] = [
    ("/", (), (), 200),
    ("/browse/strategies", (STRATEGY,), (), 200),
    ("/browse/bureaus", (BUREAU,), (), 200),
    ("/doc/measure/1", (NAME, SUMMARY_NEW, REMARKS, JAVASCRIPT, BUREAU, DIVISION, SECTION, STRATEGY, DEPARTMENT),
     (NAME, SUMMARY_NEW, BUREAU, DIVISION, SECTION), 200),
    ("/doc/measure/2", (NAME_2_NEW, NAME_2, DATA, f"{RLO}備考"), (NAME_2_NEW,), 200),
    ("/doc/unit/1", (BUREAU, DIVISION), (BUREAU,), 200),
    ("/doc/unit/2", (DIVISION, BUREAU, SECTION), (DIVISION, BUREAU), 200),
    ("/doc/unit/3", (SECTION, DIVISION, NAME, NAME_2_NEW), (SECTION, DIVISION, BUREAU), 200),
    ("/doc/contact/1", (SECTION, NAME), (), 200),
    ("/doc/strategy/1", (STRATEGY, NAME, NAME_2_NEW), (STRATEGY,), 200),
    ("/def/lodpub", (), (), 200),
    ("/changes", (SUMMARY, SUMMARY_NEW, NAME_2, NAME_2_NEW, NAME_3), (), 200),
    ("/changes/{second}", (SUMMARY, SUMMARY_NEW, NAME_2, NAME_2_NEW, NAME_3), (), 200),
    ("/memento/{first}/measure/1", (NAME, SUMMARY, REMARKS, JAVASCRIPT), (NAME, SUMMARY), 200),
    ("/memento/{first}/measure/3", (NAME_3, VBSCRIPT), (NAME_3,), 200),
    (f"/search?q={quote(QUERY)}", (QUERY, NAME), (), 200),
    (f"/doc/measure/{quote(MISSING, safe='')}", (f"{BASE}id/measure/{MISSING}",), (), 404),
    ("/doc/measure/3", (), (), 410),
]


@pytest.mark.parametrize(("path", "shown", "embedded", "status"), PAGES, ids=[p[0][:40] for p in PAGES])
def test_every_page_shows_hostile_text_exactly_and_runs_none_of_it(tab, hostile, path, shown, embedded, status):
    first, second = versions(hostile)
    path = path.format(first=first, second=second)
    # Every page echoes the search box's query: a hostile one goes along (the search page's is its own).
    echoed = QUERY if path.startswith("/search") else NAME
    url = hostile["server"].url + path + ("" if "?" in path else f"?q={quote(echoed)}")
    response = tab.goto(url)
    assert response.status == status
    expected_errors = [] if status == 200 else [f"Failed to load resource: the server responded with a status of "
                                                f"{status} ({'Not Found' if status == 404 else 'Gone'})"]
    whole_and_inert(tab, expected_errors)
    assert tab.locator("#site-search").input_value() == echoed
    text = tab.evaluate("document.body.innerText")
    for value in shown:
        assert value in text, (value, text)
    blocks = tab.evaluate("[...document.querySelectorAll('script[type=\"application/ld+json\"]')]"
                          ".map(s => JSON.parse(s.textContent))")
    strings = ld_strings(blocks)
    for value in embedded:
        assert value in strings, (value, blocks)
    if path.startswith(("/doc/", "/memento/")) and status == 200:
        assert tab.title().startswith(tab.locator("h1").inner_text())


def test_the_query_editor_takes_a_hostile_query_exactly_and_shows_its_answers_inert(tab, hostile):
    tab.goto(hostile["server"].url + "/sparql?query=" + quote(SPARQL))
    tab.wait_for_selector(".yasqe .CodeMirror")
    assert tab.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()") == SPARQL
    tab.locator(".yasr table tbody tr").first.wait_for(timeout=15_000)
    answers = tab.locator(".yasr table tbody").inner_text()
    assert NAME_2_NEW in answers and "<!--<script>施策</script>" in answers
    # The examples come from the same JSON maker: each button still sets its query.
    tab.get_by_role("button", name="局ごとの施策数").click()
    assert "GROUP BY" in tab.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()")
    whole_and_inert(tab, [], scripts=2, within=".yasr tbody")


def whole_and_inert(tab, expected_errors: list[str], scripts: int = 0, within: str = "") -> None:
    """The page is whole, ran nothing of the data's, and links nothing of an unsafe scheme."""
    for part in ("header", "main", "footer"):
        assert tab.locator(part).count() == 1, part
    assert tab.locator("footer").inner_text().strip()  # the footer was reached, not swallowed by a block
    assert tab.dialogs == []
    assert [e for e in tab.errors if e not in expected_errors] == []
    spelled = ", ".join(f"{within} {element}".strip() for element in ELEMENTS_SPELLED)
    assert tab.locator(spelled).count() == 0, spelled
    assert tab.locator('script:not([type="application/ld+json"])').count() == scripts
    protocols = set(tab.evaluate("[...document.links].map(a => a.protocol)"))
    assert protocols <= SAFE_PROTOCOLS, protocols
    hrefs = tab.evaluate("[...document.querySelectorAll('[href], [src], [action]')]"
                         ".map(e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'))")
    assert not [h for h in hrefs if re.match(r"\s*(javascript|vbscript|data:text)", h, re.I)], hrefs


def test_the_hostile_table_reads_back_from_the_published_register(hostile):
    """The second build read the first's register, whose keys hold U+2028: each IRI stayed put."""
    text = (hostile["dist"] / "current" / "register.tsv").read_text(encoding="utf-8")
    assert NAME in text and LS in text
    assert Path(hostile["dist"] / "current" / "measures.nt").read_text(encoding="utf-8").count(
        f"<{BASE}id/measure/2> <http://www.w3.org/2004/02/skos/core#hiddenLabel>") == 1
