"""The pages people read, over HTTP: landing, browse, search, language, embedded schema.org, weight."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from conftest import BASE

# Every test that takes `server` runs against the embedded server, lodpub in front of Oxigraph's server and
# lodpub in front of Virtuoso (conftest.py); those about the embedded engine itself say so (embedded_only).
pytestmark = pytest.mark.every_store

HTML = {"Accept": "text/html"}


def schema_of(page: str) -> dict:
    [block] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    return json.loads(block)


def test_the_landing_page_says_what_the_dataset_is(server):
    page = httpx.get(server.url + "/", headers=HTML).text
    assert "<h1>東京都 施策一覧</h1>" in page and "Tokyo Metropolitan Government: policy measures" in page
    for label, count in (("戦略", 1), ("施策", 19), ("局", 3), ("課", 7), ("連絡先", 9)):
        assert f'<th scope="row">{label}</th><td>{count}</td>' in page
    assert "measures.nt" in page and "creativecommons.org/licenses/by/4.0" in page
    assert 'href="/sparql?query=' in page and 'href="/def/lodpub"' in page and "shacl-report.ttl" in page
    dataset = schema_of(page)
    assert dataset["@type"] == "Dataset" and dataset["license"].startswith("https://creativecommons.org/")
    assert {d["name"] for d in dataset["distribution"]} >= {"measures.ttl", "measures.jsonld", "measures.nt"}


def test_every_example_query_on_the_landing_page_runs_and_finds_something(server):
    page = httpx.get(server.url + "/", headers=HTML).text
    links = [html.unescape(href) for href in re.findall(r'<a href="(/sparql\?query=[^"]+)"', page)]
    assert len(links) >= 5
    for link in links:
        answer = httpx.get(server.url + link, headers={"Accept": "application/sparql-results+json"})
        assert answer.status_code == 200, (link, answer.text)
        assert answer.json()["results"]["bindings"], link


def test_browse_from_strategies_and_from_bureaus(server):
    strategies = httpx.get(server.url + "/browse/strategies", headers=HTML).text
    assert '<a href="/id/strategy/1">戦略1 持続的な成長を生み、活力にあふれる拠点を形成</a>' in strategies
    assert "(19 施策)" in strategies
    bureaus = httpx.get(server.url + "/browse/bureaus", headers=HTML).text
    assert '<a href="/id/unit/5">総務局</a>' in bureaus and '<a href="/id/unit/10">産業労働局</a>' in bureaus
    bureau = httpx.get(server.url + "/doc/unit/10", headers=HTML).text
    assert "下位組織" in bureau and '<a href="/id/unit/11">商工部</a>' in bureau


def test_a_measure_page_has_its_chain_contact_and_schema(server):
    page = httpx.get(server.url + "/doc/measure/18", headers=HTML).text
    chain = re.search(r'<nav class="chain".*?</nav>', page, re.S).group()
    assert re.findall(r">([^<>]+)</a>", chain) == ["東京都", "産業労働局", "商工部", "調整課"]
    assert '<a href="tel:+81-3-5320-5982">' in page
    assert '<h2 id="source">出典行 (source)</h2>' in page
    service = schema_of(page)
    assert service["@type"] == "GovernmentService" and service["name"] == "多摩イノベーションエコシステム促進事業"
    assert service["provider"]["name"] == "調整課"
    assert service["provider"]["parentOrganization"]["parentOrganization"]["name"] == "産業労働局"
    assert service["availableChannel"]["servicePhone"][0]["telephone"] == "03-5320-5982"
    assert len(page.encode()) < 100_000


def test_language_follows_accept_language_and_the_switch_is_remembered(server):
    english = httpx.get(server.url + "/doc/unit/10", headers={"Accept": "text/html", "Accept-Language": "en-US,en"})
    assert '<html lang="en">' in english.text and "<h1>Bureau of Industrial and Labor Affairs</h1>" in english.text
    with httpx.Client(base_url=server.url, headers=HTML) as client:
        switched = client.get("/doc/unit/10?lang=en")
        assert "<h1>Bureau of Industrial and Labor Affairs</h1>" in switched.text
        assert client.get("/doc/unit/10").text.count("<h1>Bureau of Industrial and Labor Affairs</h1>") == 1
        back = client.get("/doc/unit/10?lang=ja")
        assert "<h1>産業労働局</h1>" in back.text


def test_search_finds_by_any_part_of_name_or_summary_names_first(server):
    page = httpx.get(server.url + "/search", params={"q": "移住"}, headers=HTML).text
    assert "<p>8 件</p>" in page
    assert "<mark>移住</mark>" in page
    matched = [r["matched"] for n in (1, 2) for r in httpx.get(
        server.url + "/search", params={"q": "移住", "page": n}, headers={"Accept": "application/json"}).json()["results"]]
    assert len(matched) == 8
    assert matched == sorted(matched)  # every name match before any summary-only match
    assert "summary" in matched and "name" in matched
    long = httpx.get(server.url + "/search", params={"q": "ワーケーション体験"}, headers={"Accept": "application/json"})
    assert [r["iri"] for r in long.json()["results"]] == [f"{BASE}id/measure/16"]
    nothing = httpx.get(server.url + "/search", params={"q": "存在しない語句"}, headers={"Accept": "application/json"})
    assert nothing.json()["total"] == 0


def test_every_page_is_light_and_loads_nothing_from_elsewhere(server):
    for path in ("/", "/browse/strategies", "/browse/bureaus", "/doc/measure/1", "/doc/unit/7", "/def/lodpub",
                 "/search?q=%E7%A7%BB%E4%BD%8F", "/sparql"):
        page = httpx.get(server.url + path, headers=HTML).text
        assert len(page.encode()) < 100_000, path
        loaded = re.findall(r'<(?:script|img|link rel="(?:stylesheet|icon)")[^>]*(?:src|href)="([^"]+)"', page)
        assert [url for url in loaded if url.startswith(("http:", "https:", "//"))] == [], path
        assert 'id="site-search"' in page


def test_search_results_are_paged_with_the_query_kept(server):
    page = httpx.get(server.url + "/search", params={"q": "移住"}, headers=HTML).text
    assert 'href="?q=%E7%A7%BB%E4%BD%8F&amp;page=2"' in page and "<span>1 / 2</span>" in page
    second = httpx.get(server.url + "/search", params={"q": "移住", "page": 2}, headers=HTML).text
    results = re.search(r'<ol class="results">.*?</ol>', second, re.S).group()
    assert results.count("<li>") == 3 and 'rel="prev"' in second


def test_a_search_asked_again_is_answered_from_what_the_edition_keeps(seed_build, tmp_path):
    import os
    import shutil
    import sqlite3

    from lodpub.search import Search
    dist, _ = seed_build
    index = tmp_path / "search.sqlite"
    shutil.copyfile(dist.parent / "dist.cache" / os.readlink(dist / "current") / "search.sqlite", index)
    search = Search(index)
    first = search.find("移住")
    assert first[1] > 0
    index.write_bytes(b"not a database any more")  # a second read of the index would fail now
    assert search.find("移住") == first
    with pytest.raises(sqlite3.DatabaseError):
        search.find("移住", offset=1)  # another page is another answer
