"""The history of the data: what changed in each edition (as RDF, a page and an Atom feed), the editions as a
DCAT dataset series, and every resource's earlier versions through Memento (RFC 7089)."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from email.utils import format_datetime

import feedparser
import httpx
import pytest
import rdflib

from lodpub import changes
from test_editions import build_into, edition_of, seed_with

from conftest import BASE, SEED, Server, row

DAY = 86_400
START = 1_767_225_600  # 2026-01-01T00:00:00Z
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.namespace.DCTERMS


def seed_edited(**renames: str) -> str:
    text = SEED.read_text(encoding="utf-8")
    for old, new in renames.items():
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """Four editions a day apart: the seed; a rename, a rewritten summary, an added and an ended measure
    (and rows moved); one measure split in two; then the same tables again (nothing to publish)."""
    tmp = tmp_path_factory.mktemp("history")
    dist = tmp / "dist"
    names = [build_into(dist, seed_with(), epoch=START)]
    lines = seed_edited(多摩の魅力発信プロジェクト="多摩の魅力発信事業").splitlines()
    lines = [line.replace("市町村からの相談を一元的に受け付け", "市町村からの相談をまとめて受け付け") for line in lines
             if not line.startswith("東京都立多摩産業交流センターの管理\t")]
    lines[5:8] = reversed(lines[5:8])  # rows in another order: no change of their own
    second = "\n".join(lines) + "\n" + row(name="あたらしい移住支援") + "\n"
    names.append(build_into(dist, second, epoch=START + DAY))
    split = []
    for line in second.splitlines():
        if line.startswith("島しょ山村地域への定住促進サポート事業\t"):  # split in two, both renamed
            split += [line.replace("事業\t", "事業（就業）\t", 1), line.replace("事業\t", "事業（起業）\t", 1)]
        else:
            split.append(line)
    split = "\n".join(split) + "\n"
    names.append(build_into(dist, split, epoch=START + 2 * DAY))
    return dist, names


def test_each_change_is_found_and_nothing_else(editions):
    dist, (first, second, third) = editions
    found = changes.read(dist / second / "changes.ttl", BASE)
    assert {(c.type, c.label) for c in found if c.kind == "measure"} == {
        ("renamed", "多摩の魅力発信事業"), ("changed", "まちづくり推進コンシェルジュ"), ("added", "あたらしい移住支援"),
        ("withdrawn", "東京都立多摩産業交流センターの管理")}
    # the ended measure was the only one of its section, and of its contact point:
    assert {(c.kind, c.type, c.label) for c in found if c.kind != "measure"} == {
        ("unit", "withdrawn", "経営支援課"), ("contact", "withdrawn", "03-5320-4808")}
    renamed = next(c for c in found if c.type == "renamed")
    assert renamed.iri == f"{BASE}id/measure/4"
    assert [(p.predicate, [v.value for v in p.old], [v.value for v in p.new]) for p in renamed.properties] == \
        [(RDFS_LABEL, ["多摩の魅力発信プロジェクト"], ["多摩の魅力発信事業"])]
    rewritten = next(c for c in found if c.type == "changed")
    assert [p.predicate.rsplit("#", 1)[-1] for p in rewritten.properties] == ["summary"]
    # The added name sorts first, so every position by name moved: what the build computes (positions by name)
    # and where rows sit are not changes of the data.
    delta = changes.diff(dist / first / "measures.nt", dist / second / "measures.nt")
    assert changes.between(delta, dist / second / "measures.nt", BASE) == found
    split = changes.read(dist / third / "changes.ttl", BASE)
    [gone] = [c for c in split if c.type == "withdrawn"]
    assert gone.label == "島しょ山村地域への定住促進サポート事業"
    assert [s.rsplit("/", 1)[-1] for s in gone.successors] == ["22", "23"]
    assert sorted(c.label for c in split if c.type == "added") == \
        ["島しょ山村地域への定住促進サポート事業（就業）", "島しょ山村地域への定住促進サポート事業（起業）"]
    assert changes.read(dist / first / "changes.ttl", BASE) == []  # the first edition has nothing to compare


def test_the_editions_form_a_dcat_dataset_series(editions):
    dist, names = editions
    void = rdflib.Graph().parse(dist / names[-1] / "void.ttl", format="turtle")
    series = rdflib.URIRef(f"{BASE}data/measures")
    node = {name: rdflib.URIRef(f"{BASE}data/measures/{name}") for name in names}
    assert (series, rdflib.RDF.type, DCAT.DatasetSeries) in void
    assert void.value(series, DCAT.first) == node[names[0]] and void.value(series, DCAT.last) == node[names[-1]]
    for before, after in itertools.pairwise(names):
        assert void.value(node[after], DCAT.prev) == node[before]
        assert void.value(node[after], DCAT.inSeries) == series
    assert void.value(node[names[1]], DCT.issued).toPython() == datetime(2026, 1, 2, tzinfo=UTC)
    assert str(void.value(node[names[-1]], DCAT.version)) == names[-1]
    dumps = set(void.objects(node[names[-1]], DCAT.distribution))
    assert rdflib.URIRef(f"{BASE}data/{names[-1]}/measures.nt") in dumps


def test_the_feed_has_an_entry_per_edition_newest_first(editions):
    dist, names = editions
    feed = feedparser.parse((dist / "changes.atom").read_bytes())
    assert not feed.bozo, feed.bozo_exception
    assert [e.id for e in feed.entries] == [f"{BASE}data/measures/{n}" for n in reversed(names)]
    assert feed.entries[1].title == f"版 {names[1]}: 施策: 追加 1・名称変更 1・変更 1・取り下げ 1（ほか組織・連絡先 2）" \
                                    " / measures: 1 added, 1 renamed, 1 changed, 1 withdrawn"
    assert "多摩の魅力発信事業" in feed.entries[1].summary
    assert feed.entries[-1].title.endswith("最初の版 / the first edition")
    assert feed.entries[0].updated == "2026-01-03T00:00:00Z"


def test_an_edition_issued_before_the_one_it_follows_is_warned_about(tmp_path):
    from conftest import lodpub
    dist = tmp_path / "dist"
    build_into(dist, seed_with(), epoch=START + DAY)
    (tmp_path / "later.txt").write_text(seed_with(row(name="後の施策")), encoding="utf-8")
    result = lodpub("build", str(tmp_path / "later.txt"), "--out", str(dist), env={"SOURCE_DATE_EPOCH": str(START)})
    assert result.returncode == 0
    assert "lodpub.toml:0: warning: modified: this edition is issued at 2026-01-01T00:00:00Z, before the one " \
           "it follows (2026-01-02T00:00:00Z)" in result.stderr


@pytest.fixture(scope="module")
def served(editions):
    dist, names = editions
    server = Server(dist, {"LODPUB_WORKERS": "1"})
    yield server, names
    server.stop()


def test_the_changes_page_lists_the_editions_newest_first(served):
    server, names = served
    page = httpx.get(f"{server.url}/changes").text
    positions = [page.index(f'id="{name}"') for name in reversed(names)]
    assert positions == sorted(positions)
    assert '<del><span lang="ja">多摩の魅力発信プロジェクト</span></del> → <ins><span lang="ja">多摩の魅力発信事業</span></ins>' in page
    assert '<link rel="alternate" type="application/atom+xml" href="/changes.atom">' in page
    listed = httpx.get(f"{server.url}/changes", headers={"Accept": "application/json"}).json()
    assert [e["name"] for e in listed["editions"]] == list(reversed(names))
    one = httpx.get(f"{server.url}/changes/{names[1]}", params={"format": "json"}).json()
    assert one["counts"] == {"added": 1, "renamed": 1, "changed": 1, "withdrawn": 1, "other": 2}
    turtle = httpx.get(f"{server.url}/changes/{names[1]}", headers={"Accept": "text/turtle"})
    assert turtle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "cs:ChangeSet" in turtle.text
    feed = feedparser.parse(httpx.get(f"{server.url}/changes.atom").content)
    assert len(feed.entries) == 3 and httpx.get(f"{server.url}/changes.atom").headers["content-type"] == \
        "application/atom+xml"
    assert httpx.get(f"{server.url}/changes/0123456789ab").status_code == 404


def memento_date(day: int) -> str:
    return format_datetime(datetime.fromtimestamp(START + day * DAY, UTC), usegmt=True)


def test_a_resource_page_says_when_it_last_changed_and_links_its_versions(served):
    server, names = served
    page = httpx.get(f"{server.url}/doc/measure/4").text
    assert f'最後に変わったのは版 <a href="/changes/{names[1]}" class="iri">{names[1]}</a>' in page
    assert f'<a href="/memento/{names[0]}/measure/4">' in page and f'<a href="/memento/{names[1]}/measure/4">' in page
    assert f"/memento/{names[2]}/measure/4" not in page  # unchanged in the third edition: no version of its own
    document = httpx.get(f"{server.url}/doc/measure/4", headers={"Accept": "text/turtle"})
    assert f'<{BASE}timegate/measure/4>; rel="timegate"' in document.headers["link"]


def test_memento_timegate_timemap_and_mementos(served):
    server, names = served
    timemap = httpx.get(f"{server.url}/timemap/measure/4")
    assert timemap.headers["content-type"] == "application/link-format"
    assert timemap.text.splitlines()[3:] == [
        f'<{BASE}memento/{names[0]}/measure/4>;rel="first memento";datetime="{memento_date(0)}",',
        f'<{BASE}memento/{names[1]}/measure/4>;rel="last memento";datetime="{memento_date(1)}"']
    for asked, expected in ((memento_date(0), names[0]), ("Thu, 01 Jan 2026 12:00:00 GMT", names[0]),
                            (memento_date(1), names[1]), ("Sat, 01 Jan 2050 00:00:00 GMT", names[1]),
                            ("Mon, 01 Jan 1990 00:00:00 GMT", names[0]), (None, names[1])):
        gate = httpx.get(f"{server.url}/timegate/measure/4", headers={"Accept-Datetime": asked} if asked else {})
        assert gate.status_code == 302 and gate.headers["location"] == f"/memento/{expected}/measure/4", asked
        assert gate.headers["vary"].startswith("accept-datetime")
    old = httpx.get(f"{server.url}/memento/{names[0]}/measure/4", headers={"Accept": "text/turtle"})
    assert old.headers["memento-datetime"] == memento_date(0)
    assert "多摩の魅力発信プロジェクト" in old.text and "多摩の魅力発信事業" not in old.text
    assert f'<{BASE}doc/measure/4>; rel="original"' in old.headers["link"]
    assert old.headers["cache-control"] == "public, max-age=31536000, immutable"
    html = httpx.get(f"{server.url}/memento/{names[0]}/measure/4").text
    assert "<h1>多摩の魅力発信プロジェクト</h1>" in html and "現在の記述" in html
    assert httpx.get(f"{server.url}/timegate/measure/4", headers={"Accept-Datetime": "yesterday"}).status_code == 400
    assert httpx.get(f"{server.url}/memento/{names[2]}/measure/4").status_code == 404  # not a version of it
    gone = httpx.get(f"{server.url}/timemap/measure/19")  # ended in the second edition: one version remains
    assert gone.status_code == 200 and f"/memento/{names[0]}/measure/19" in gone.text
    assert httpx.get(f"{server.url}/timemap/measure/999").status_code == 404


def test_memento_links_name_the_configured_base_whatever_host_the_client_sent(served):
    """They are cached publicly (a TimeMap for 300 s, a memento for good): built from the Host a client sent,
    one client could make a shared cache hand everyone links to a host of its choosing."""
    server, names = served
    elsewhere = {"Host": "elsewhere.example", "X-Forwarded-Host": "elsewhere.example"}
    answers = [httpx.get(f"{server.url}{path}", headers=elsewhere) for path in (
        "/doc/measure/4", "/doc/measure/4.ttl", "/id/measure/4", "/timegate/measure/4", "/timemap/measure/4",
        f"/memento/{names[0]}/measure/4", f"/memento/{names[0]}/measure/4.ttl")]
    assert [a.status_code for a in answers] == [200, 200, 303, 302, 200, 200, 200]
    for answer in answers:
        said = answer.headers.get("link", "") + (answer.text if "link-format" in answer.headers.get("content-type", "") else "")
        assert "elsewhere" not in said and "127.0.0.1" not in said, answer.url
        assert f'<{BASE}timegate/measure/4>' in said, answer.url
    assert answers[4].text.count(f"<{BASE}memento/") == 2


def test_a_pruned_edition_is_gone_from_the_history_too(tmp_path):
    dist = tmp_path / "dist"
    names = [build_into(dist, seed_with(row(name=f"目印{n}")), epoch=START + n * DAY, keep_editions=2)
             for n in range(3)]
    assert edition_of(dist) == names[-1] and not (dist / names[0]).exists()
    server = Server(dist, {"LODPUB_WORKERS": "1"})
    try:
        assert httpx.get(f"{server.url}/changes/{names[0]}").status_code == 410
        assert httpx.get(f"{server.url}/memento/{names[0]}/measure/1").status_code == 410
        timemap = httpx.get(f"{server.url}/timemap/measure/1").text
        assert names[0] not in timemap and f"/memento/{names[1]}/measure/1" in timemap
    finally:
        server.stop()
    assert os.readlink(dist / "current") == names[-1]
