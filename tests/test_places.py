"""Links to places (the fifth star): which rows name which places, no false links, the groups, the pages."""

from __future__ import annotations

import json
import re

import httpx
import pyoxigraph as ox
import pytest

from lodpub import iris
from lodpub.pipeline import validation
from lodpub.pipeline.places import gazetteer
from lodpub.vocab import DCTERMS, RDFS, SAC

from conftest import BASE

SPATIAL, HAS_PART = DCTERMS.spatial.value, DCTERMS.hasPart.value
TAMA, ISLANDS = iris.thing(BASE, "area", "tama"), iris.thing(BASE, "area", "islands")
HTML = {"Accept": "text/html"}

# Every row of the seed table, by name: the places it names (read from its name and its summary).
EXPECTED: dict[str, set[str]] = {
    "地域を主体とするスマート東京先進事例創出事業": set(),  # スマート東京 is a brand, not an extent
    "都のアセット開放等の取組の全国展開": {"tama"},  # 多摩地域に所在する…
    "まちづくり推進コンシェルジュ": set(),  # 市町村 names no place
    "多摩の魅力発信プロジェクト": {"tama"},  # 多摩 as a word of its own, and 多摩地域
    "島しょ山村地域への定住促進サポート事業": {"islands"},
    "スタートアップの創出・育成支援の強化及び産学公連携の推進": {"tama", "13212"},  # 日野キャンパス; TAMA-LEAP is none
    "東京都立大学における5G等を活用した最先端研究や社会実装の展開": {"13201", "13212"},  # the two campuses
    "多様な主体との連携活動促進補助金": {"tama"},
    "多摩・島しょ地域への移住・定住促進に向けた相談窓口": {"tama", "islands"},
    "島しょ山村地域への移住・定住サポート": {"islands"},
    "多摩島しょ移住・定住ポータルサイトの運営": {"tama", "islands"},
    "多摩・島しょ暮らし体験ツアー": {"tama", "islands"},
    "島しょ山村地域における移住体験住宅整備補助": {"islands"},
    "多摩・島しょ移住・定住フェア": {"tama", "islands"},
    "多摩島しょ移住・定住促進つながりネットワーク運営": {"tama", "islands"},  # the name; not the 「…会議」 in the summary
    "多摩・島しょ地域交流ワーケーション体験ツアー": {"tama", "islands"},
    "島しょ山村地域における地域交流コミュニティ創出・活性化補助": {"islands"},
    "多摩イノベーションエコシステム促進事業": {"tama"},  # from the summary (多摩地域で…), not the project's name
    "東京都立多摩産業交流センターの管理": {"tama"},  # from the summary; 東京都立 and the centre's name are none
    "産業サポートスクエア・TAMA": {"tama", "13207"},  # 多摩地域, and （昭島市） where the facility is
}

# The codes of VOCABULARY.md's "Places", written here once more: the gazetteer is checked against them.
TAMA_CODES = [str(c) for c in (*range(13201, 13216), *range(13218, 13226), 13227, 13228, 13229,
                               13303, 13305, 13307, 13308)]
ISLAND_CODES = [str(c) for c in (13361, 13362, 13363, 13364, 13381, 13382, 13401, 13402, 13421)]


def place_iri(short: str) -> str:
    return {"tama": TAMA, "islands": ISLANDS}.get(short) or f"{SAC.iri}C{short}"


@pytest.fixture(scope="module")
def graph(seed_build) -> list[ox.Triple]:
    dist, _ = seed_build
    return [q.triple for q in ox.parse(path=str(dist / "current" / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)]


def test_every_seed_row_links_the_places_it_names_and_no_other(graph):
    names = {t.subject.value: t.object.value for t in graph
             if t.predicate == RDFS.label and t.subject.value.startswith(iris.space(BASE, "measure"))}
    linked: dict[str, set[str]] = {name: set() for name in names.values()}
    for t in graph:
        if t.predicate.value == SPATIAL and t.subject.value in names:
            linked[names[t.subject.value]].add(t.object.value)
    assert set(linked) == set(EXPECTED)
    for name, places in EXPECTED.items():
        assert linked[name] == {place_iri(p) for p in places}, name


@pytest.mark.parametrize(("text", "expected"), [
    ("多摩川の河川敷を清掃する。", set()),  # a river: 多摩 at the start of a longer word
    ("多摩信用金庫と連携する。", set()),  # an organisation's name
    ("都立多摩産業交流センターを運営する。", set()),  # a facility's name, after 都立
    ("多摩イノベーションエコシステム促進事業", set()),  # a project's name alone
    ("西多摩地域の山間部で実施する。", set()),  # a part of 多摩, not the whole
    ("奥多摩町で実施する。", {"13308"}),  # not 多摩市 nor 多摩地域
    ("多摩市と多摩地域で実施する。", {"13224", "tama"}),
    ("多摩で、実施する。", {"tama"}),
    ("府中市で実施する。", {"13206"}),
    ("府中刑務所の周辺で実施する。", set()),  # 府中 alone is no municipality
    ("広島県府中市と連携する。", set()),  # another prefecture's 府中市
    ("大島さんが担当する。", set()),  # a surname
    ("大島町と利島村で実施する。", {"13361", "13362"}),
    ("東京都が実施する。", set()),  # the government itself
    ("東京都立大学の研究を支援する。", set()),
    ("都内全域の中小企業を支援する。", {"13000"}),
    ("首都内の交通", set()),
    ("「多摩島しょ移住ネットワーク会議」を運営する。", set()),  # an organisation's name in brackets
    ("「交流拠点（町田市）」を運営する。", {"13209"}),  # where it is, noted inside the name
    ("日野キャンパスで実施する。", {"13212"}),  # an alias
    ("南大沢キャンパスで実施する。", {"13201"}),
])
def test_a_place_is_read_only_where_the_text_says_where_a_measure_acts(text, expected):
    found = {p.code or p.group for p in gazetteer().find(text)}
    assert found == expected


def test_the_groups_list_their_municipalities_by_code(graph):
    parts: dict[str, set[str]] = {}
    for t in graph:
        if t.predicate.value == HAS_PART:
            parts.setdefault(t.subject.value, set()).add(t.object.value)
    assert parts == {TAMA: {place_iri(c) for c in TAMA_CODES}, ISLANDS: {place_iri(c) for c in ISLAND_CODES}}
    labels = {(t.subject.value, t.object.value) for t in graph if t.predicate == RDFS.label}
    assert (place_iri("13207"), "昭島市") in labels and (TAMA, "多摩地域") in labels
    assert (ISLANDS, "島しょ地域") in labels and (place_iri("13000"), "東京都") in labels
    assert ox.Triple(ox.NamedNode(TAMA), DCTERMS.isPartOf, SAC.C13000) in set(graph)


def test_the_shapes_pass_the_seed_and_refuse_a_place_that_is_none(graph):
    rules = validation.Rules.load(BASE)
    space = iris.space(BASE, "measure")
    assert not [f for f in validation.validate(graph, rules, space) if f.is_violation]
    measure = next(t.subject for t in graph if t.predicate.value == SPATIAL)
    wrong = [*graph, ox.Triple(measure, DCTERMS.spatial, ox.NamedNode("http://example.org/somewhere"))]
    findings = [f for f in validation.validate(wrong, rules, space) if f.is_violation]
    assert len(findings) == 1 and "標準地域コード" in " ".join(validation.describe_findings(findings, str))


def measure_page(server, name: str) -> str:
    query = f'SELECT ?m WHERE {{ ?m <{RDFS.label.value}> "{name}"@ja }}'
    answer = httpx.get(server.url + "/sparql", params={"query": query},
                       headers={"Accept": "application/sparql-results+json"}).json()
    [binding] = answer["results"]["bindings"]
    kind, ident = iris.parse(BASE, binding["m"]["value"])
    return httpx.get(server.url + iris.document(kind, ident), headers=HTML).text


@pytest.mark.every_store  # the same from lodpub in front of each real store
def test_a_measure_page_shows_its_places_with_their_codes(server):
    page = measure_page(server, "産業サポートスクエア・TAMA")
    assert f'<a href="{SAC.iri}C13207">昭島市</a> <span class="code">13207</span>' in page  # linked out
    assert '<a href="/id/area/tama">多摩地域</a>' in page
    [block] = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    served = json.loads(block)["areaServed"]
    assert {"@type": "AdministrativeArea", "@id": f"{SAC.iri}C13207", "name": "昭島市",
            "identifier": "13207"} in served
    assert {"@type": "AdministrativeArea", "@id": TAMA, "name": "多摩地域"} in served


@pytest.mark.every_store  # the same from lodpub in front of each real store
def test_a_group_has_a_page_listing_its_municipalities_with_codes(server):
    assert httpx.get(server.url + "/id/area/islands").status_code == 303
    page = httpx.get(server.url + "/doc/area/islands", headers=HTML).text
    codes = re.findall(r'<a href="http://data\.e-stat\.go\.jp/lod/sac/C(\d+)">[^<]+</a> <span class="code">\1',
                       page)
    assert sorted(codes) == ["13000", *ISLAND_CODES]  # part of 東京都; its municipalities
