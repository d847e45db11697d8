"""The machine-readability report (総務省's rules for machine-readable tables): lodpub check, every build's
quality.ttl (W3C DQV), and its page through the real server."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import openpyxl
import pyoxigraph as ox

from lodpub.pipeline import readability
from lodpub.pipeline.tables import read_sources
from lodpub.vocab import DQV, OA, RDF, SKOS

from conftest import BASE, HEADER, SEED, lodpub, row, table, write

SEED_FINDINGS = [  # (line, column, rule): the seed's 令和6年度 (備考) and 昭島市 (施策概要)
    (23, 6, "1-11"),
    (25, 2, "1-12"),
]


def found(path: Path) -> list[tuple[int, int, str]]:
    problems: list = []
    sources, _ = read_sources([path], None, problems)
    return [(f.line, f.column, f.rule) for f in readability.check(sources)]


def test_lodpub_check_on_the_seed_names_line_column_and_rule_of_each_finding_and_exits_0():
    done = lodpub("check", str(SEED.relative_to(SEED.parents[1])))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "data/000_13cf6fe6c689b30c.txt:23:6: rule 1-11 (western-years): 備考: 令和6年度 is a Japanese era's year "
        "without its western year; write 2024年度 or 令和6年度（2024年度）",
        "data/000_13cf6fe6c689b30c.txt:25:2: rule 1-12 (area-codes): 施策概要: 昭島市 (13207) named without an area "
        "code (全国地方公共団体コード): this layout has no column for one; a table that names places gives each "
        "one's code beside it",
        "machine-readability: 2 findings of 2 rules (1-11, 1-12)",
    ]
    assert "Traceback" not in done.stderr


CRAFTED = [  # (what, the row's cells, the findings expected in it as (column, rule))
    ("a circled digit", row(name="①の事業"), [(1, "1-10")]),
    ("㈱", row(summary="㈱と連携する。"), [(2, "1-10")]),
    ("㍻ (an era in one character, and an era date)", row(summary="㍻30年度に開始。"), [(2, "1-10"), (2, "1-11")]),
    ("half-width katakana", row(summary="ｶﾀｶﾅで書いた概要。"), [(2, "1-10")]),
    ("two phones in a cell", row(phone="03-5320-7622、03-5388-2443"), [(4, "1-2")]),
    ("a layout space inside a value", row(department="総　務　局 行政部 振興企画課"), [(3, "1-5")]),
    ("a value indented with spaces", row(name="　字下げした施策"), [(1, "1-5")]),
    ("an era date", row(remarks="平成31年度まで"), [(6, "1-11")]),
    ("a place named", row(summary="八王子市と日野市で実施する。"), [(2, "1-12")]),
]


def test_each_rule_is_found_in_a_crafted_table_at_its_line_and_column(tmp_path):
    text = table(*(cells for _, cells, _ in CRAFTED))
    got = found(write(tmp_path / "crafted.txt", text))
    first = 5  # the blank line, the heading, a blank line and the header come first
    expected = sorted((first + n, column, rule) for n, (_, _, cells) in enumerate(CRAFTED) for column, rule in cells)
    assert got == expected


def test_what_meets_the_rules_is_not_a_finding(tmp_path):
    clean = [row(remarks="令和6年度（2024年度）まで"),  # the western year beside the era's
             row(summary="東京都立大学の日野キャンパスで、多摩川の流域を調べる。"),  # a proper name, an alias, a river
             row(summary="Tokyo Data Highway 計画（2025年度まで）。"),  # spaces between words, a western year
             row(department="総務局　行政部　振興企画課")]  # U+3000 between the levels is notation, not layout
    assert found(write(tmp_path / "clean.txt", table(*clean))) == []


def test_an_unnamed_column_is_a_finding_and_check_says_whether_the_table_can_be_built(tmp_path):
    header = HEADER.replace("\t担当部署", "\t\t担当部署")  # an empty header cell between 施策概要 and 担当部署
    cells = row().split("\t")
    empty = "\t".join([*cells[:2], "", *cells[2:]])
    path = write(tmp_path / "unnamed.txt", table(empty, header=header))
    done = lodpub("check", str(path))
    assert done.returncode == 0, done.stdout  # findings only: it can be built
    assert done.stdout.splitlines()[0] == (f"{path}:4:3: rule 1-6 (named-columns): this column has no name in "
                                           "the header row; name it or remove it")
    valued = "\t".join([*cells[:2], "値", *cells[2:]])
    done = lodpub("check", str(write(tmp_path / "valued.txt", table(valued, header=header))))
    assert done.returncode == 1  # a value in a column without a header stops a build: check says so
    assert ":5:3: error: this cell is in a column whose header is empty" in done.stdout
    assert done.stdout.splitlines()[-1] == "lodpub: 1 error: the table cannot be built as it is"


def test_a_finding_in_a_workbook_names_its_sheet_and_cell(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "施策一覧"
    for number, cells in enumerate([["【戦略1】 テスト戦略"], HEADER.split("\t"),
                                    row(summary="㈱と連携する。").split("\t")], start=1):
        for column, value in enumerate(cells, start=1):
            if value:
                sheet.cell(number, column, value)
    book.save(tmp_path / "book.xlsx")
    done = lodpub("check", str(tmp_path / "book.xlsx"))
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith(f"{tmp_path / 'book.xlsx'}:施策一覧!B3: rule 1-10")


def test_a_build_with_findings_succeeds_and_says_so_in_one_line(tmp_path):
    path = write(tmp_path / "t.txt", table(row(name="①の事業"), row(name="二つ目", remarks="令和2年度から")))
    done = lodpub("build", str(path), "--out", str(tmp_path / "dist"), "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == ("machine-readability: 2 findings of 2 rules (1-10, 1-11); "
                                            f"see {tmp_path / 'dist'}/quality.ttl")
    assert (tmp_path / "dist" / "quality.ttl").is_file()


def test_the_report_is_published_as_dqv_naming_the_rules_and_the_rows(seed_build):
    dist, result = seed_build
    assert [(f.line, f.column, f.rule) for f in result.readability] == SEED_FINDINGS
    store = ox.Store()
    store.load(path=str(dist / "current" / "quality.ttl"), format=ox.RdfFormat.TURTLE)
    notations = {str(q.object.value) for q in store.quads_for_pattern(None, SKOS.notation, None)}
    assert notations == set(readability.RULES)
    metric = ox.NamedNode(f"{BASE}data/quality.ttl#rule-1-11")
    assert ox.Quad(metric, RDF.type, DQV.Metric) in store
    counts = {row["rule"].value.split("#rule-")[1]: int(row["n"].value)
              for row in store.query(f"SELECT ?rule ?n {{ ?m a <{DQV.QualityMeasurement.value}> ; "
                                     f"<{DQV.isMeasurementOf.value}> ?rule ; <{DQV.value.value}> ?n }}")}
    assert counts == {number: (1 if number in ("1-11", "1-12") else 0) for number in readability.RULES}
    # The era finding is about the row of the measure with 令和6年度: its lp:SourceRow, which the data holds.
    [target] = [r["t"] for r in store.query(
        f"SELECT ?t {{ ?a a <{DQV.QualityAnnotation.value}> ; <{OA.hasTarget.value}> ?t ; <{OA.hasBody.value}> "
        f"<{metric.value}> }}")]
    data = ox.Store()
    data.load(path=str(dist / "current" / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
    lp = f"{BASE}def/lodpub#"
    assert bool(data.query(f"ASK {{ <{target.value}> a <{lp}SourceRow> ; <{lp}line> 23 . "
                           f"?m <{lp}source> <{target.value}> ; <{lp}remarks> \"令和6年度まで\" }}"))
    # The description lists it among the distributions and links it to the dataset.
    void = ox.Store()
    void.load(path=str(dist / "current" / "void.ttl"), format=ox.RdfFormat.TURTLE)
    assert bool(void.query(f"ASK {{ <{BASE}data/measures> <{DQV.hasQualityMetadata.value}> <{BASE}data/quality.ttl> ."
                           f" <{BASE}data/measures> <http://www.w3.org/ns/dcat#distribution> <{BASE}data/quality.ttl> }}"))


def test_the_report_page_is_linked_from_the_landing_page_and_lists_the_findings(server):
    landing = httpx.get(server.url + "/", headers={"Accept": "text/html"}).text
    assert '<a href="/quality">' in landing
    page = httpx.get(server.url + "/quality", headers={"Accept": "text/html", "Accept-Language": "en"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "1-11" in text and "e-Statの時間軸コードの表記、西暦表記又は和暦に西暦の併記がされているか" in text
    # The served table lacks the seed's line 8, so 令和6年度 is on line 22; its finding links its measure.
    [(href, said)] = re.findall(r'<a href="(/id/measure/\d+#source)">([^<]*rule 1-11[^<]*)</a>', text)
    assert said.startswith("seed.txt:22:6: rule 1-11 (western-years): 備考: 令和6年度")
    measure = httpx.get(server.url + href.split("#")[0], headers={"Accept": "text/html"}, follow_redirects=True)
    assert "多摩イノベーションエコシステム促進事業" in measure.text
