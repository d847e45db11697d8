"""Reading tables: layouts, encodings, notation, and every kind of bad input with its exact message."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lodpub.pipeline.build import read_sources
from lodpub.pipeline.cells import fiscal_dates, telephones
from lodpub.problems import InputError, Problem, Severity

from conftest import SEED, build_text, lodpub, row, table, write


def read_text(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "t.txt"):
    problems: list[Problem] = []
    sources, measures = read_sources([write(tmp_path / name, text, encoding)], None, problems)
    return sources, measures, sorted(problems)


def messages(problems) -> list[str]:
    return [str(p) for p in problems]


# ------------------------------------------------------------------ the seed

def test_the_seed_reads_as_one_strategy_of_twenty_measures(tmp_path):
    problems: list[Problem] = []
    sources, measures = read_sources([SEED], None, problems)
    assert problems == []
    [source] = sources
    assert [t.strategy.number for t in source.tables] == [1]
    assert source.tables[0].strategy.title == "持続的な成長を生み、活力にあふれる拠点を形成"
    assert len(measures) == 20
    first = measures[0]
    assert first.name == "地域を主体とするスマート東京先進事例創出事業"
    assert first.department == ("デジタルサービス局", "デジタルサービス推進部", "デジタルサービス推進課")
    assert first.phones == ("tel:+81-3-5320-7622",)
    assert first.row.line == 6
    ending = [m for m in measures if m.remarks]
    assert [(m.remarks, m.end) for m in ending] == [("令和6年度まで", date(2025, 3, 31))]


# ------------------------------------------------------------------ layout and encodings

def test_bom_and_crlf_read_exactly_like_plain_utf8(tmp_path):
    text = table(row(), row(name="二つ目"))
    _, plain, _ = read_text(tmp_path, text, name="a.txt")
    _, crlf, problems = read_text(tmp_path, "\ufeff" + text.replace("\n", "\r\n"), name="b.txt")
    assert problems == []
    assert [(m.name, m.row.line, m.phones) for m in crlf] == [(m.name, m.row.line, m.phones) for m in plain]


def test_shift_jis_is_detected_when_certain_and_gives_no_mojibake(tmp_path):
    text = SEED.read_text(encoding="utf-8")
    sources, measures, problems = read_text(tmp_path, text, encoding="cp932")
    assert problems == []
    assert sources[0].encoding == "cp932"
    assert measures[0].name == "地域を主体とするスマート東京先進事例創出事業"


def test_an_undecidable_encoding_is_an_error_that_says_use_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("施策 café".encode()[:-1] + b"\xe9\n")  # not UTF-8, no landmarks
    result = lodpub("build", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{path}:1: error: the file is not UTF-8 and its encoding cannot be told for certain; " \
           "name it with --encoding (e.g. --encoding cp932 for Shift_JIS)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_explicit_encoding_is_used(tmp_path):
    path = write(tmp_path / "sjis.txt", table(row()), "cp932")
    result = lodpub("build", str(path), "--encoding", "cp932", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "測定施策" in (tmp_path / "out" / "measures.ttl").read_text(encoding="utf-8")


def test_columns_are_found_by_name_in_any_order(tmp_path):
    header = "備考\t連絡先\t施策\tURL\t担当部署\t施策概要"
    line = "\t".join(("令和7年度まで", "03-5320-7622", "並べ替え施策", "", "総務局 総務課", "概要。"))
    _, [measure], problems = read_text(tmp_path, table(line, header=header))
    assert problems == []
    assert (measure.name, measure.department, measure.remarks) == ("並べ替え施策", ("総務局", "総務課"), "令和7年度まで")
    assert measure.end == date(2026, 3, 31)


def test_several_strategies_each_with_their_own_rows(tmp_path):
    text = table(row(name="一")) + table(row(name="二"), row(name="三"), heading="【戦略２】 第二の戦略")
    sources, measures, problems = read_text(tmp_path, text)
    assert problems == []
    assert [(m.name, m.row.table.strategy.number) for m in measures] == [("一", 1), ("二", 2), ("三", 2)]
    assert sources[0].tables[1].strategy.title == "第二の戦略"


def test_notation_is_normalised_and_the_source_text_kept(tmp_path):
    line = row(name=" 余白のある施策 ", department="総務局\u3000行政部　 振興企画課", phone="０３－５３８８－２４４３")
    _, [m], problems = read_text(tmp_path, table(line))
    assert problems == []
    assert m.name == "余白のある施策"
    assert m.department == ("総務局", "行政部", "振興企画課")
    assert m.phones == ("tel:+81-3-5388-2443",)
    assert m.texts == {"name": " 余白のある施策 ", "department": "総務局\u3000行政部　 振興企画課",
                       "phone": "０３－５３８８－２４４３"}


def test_departments_of_other_depths_work(tmp_path):
    _, measures, problems = read_text(tmp_path, table(row(department="総務局"), row(department="総務局 総務部 総務課 文書担当")))
    assert problems == []
    assert [m.department for m in measures] == [("総務局",), ("総務局", "総務部", "総務課", "文書担当")]


def test_a_cell_may_hold_several_phones(tmp_path):
    _, [m], problems = read_text(tmp_path, table(row(phone="03-5388-2443、042-506-2097")))
    assert problems == []
    assert m.phones == ("tel:+81-3-5388-2443", "tel:+81-42-506-2097")


# ------------------------------------------------------------------ bad input, exact messages

def test_a_row_before_any_heading(tmp_path):
    _, _, problems = read_text(tmp_path, table(row()).replace("【戦略1】 テスト戦略", "") + table(row(name="後")))
    assert messages(problems) == [
        f"{tmp_path}/t.txt:4: error: this row comes before any 【戦略N】 heading; add the strategy heading above it",
        f"{tmp_path}/t.txt:5: error: this row comes before any 【戦略N】 heading; add the strategy heading above it",
    ]


def test_a_row_missing_its_trailing_empty_cells_is_read_as_if_they_were_empty(tmp_path):
    short = "\t".join(row(url="", remarks="").split("\t")[:4])  # as exporters write it: URL and 備考 dropped
    _, measures, problems = read_text(tmp_path, table(row(name="一つ目"), short))
    assert messages(problems) == [f"{tmp_path}/t.txt:6: warning: the row has 4 cells but the header row at line 4 "
                                  "has 6: the missing cells at its end (URL, 備考) are read as empty"]
    assert [(m.name, m.row.line, m.phones, m.url, m.row.cells[4:]) for m in measures][1] == \
        ("測定施策", 6, ("tel:+81-3-5388-2443",), None, ("", ""))


def test_a_row_with_too_many_cells(tmp_path):
    _, measures, problems = read_text(tmp_path, table(row() + "\t余分"))
    assert measures == []
    assert messages(problems) == [f"{tmp_path}/t.txt:5: error: the row has 7 cells but the header row at line 4 "
                                  "has 6; cells are separated by tabs"]


def test_a_measure_without_a_name(tmp_path):
    _, measures, problems = read_text(tmp_path, table(row(name="")))
    assert measures == []
    assert messages(problems) == [f"{tmp_path}/t.txt:5:1: error: 施策: the measure has no name; every row needs its 施策"]


def test_a_phone_that_is_not_a_phone(tmp_path):
    _, _, problems = read_text(tmp_path, table(row(phone="担当者まで")))
    assert messages(problems) == [f"{tmp_path}/t.txt:5:4: error: 連絡先: '担当者まで' is not a telephone number; "
                                  "write a Japanese number such as 03-5320-7622"]


def test_an_empty_department(tmp_path):
    _, _, problems = read_text(tmp_path, table(row(department=" ")))
    assert messages(problems) == [f"{tmp_path}/t.txt:5:3: error: 担当部署: the responsible department is empty; "
                                  "write it as 'bureau division section' separated by spaces"]


def test_an_unknown_and_a_missing_column(tmp_path):
    _, measures, problems = read_text(tmp_path, table("a\tb\tc\td", "e\tf\tg\th", header="施策\t施策概要\t予算\t連絡先"))
    assert measures == []
    assert messages(problems) == [
        f"{tmp_path}/t.txt:4: error: 2 rows below this header (lines 5–6) could not be read; fix the header row",
        f"{tmp_path}/t.txt:4: error: the header row has no 担当部署 column",
        f"{tmp_path}/t.txt:4:3: error: 予算: unknown column '予算'; the columns are 施策, 施策概要, 担当部署, 連絡先, URL, 備考",
    ]


def test_a_value_under_a_column_without_header(tmp_path):
    _, _, problems = read_text(tmp_path, table(row() + "\t余分な値"))
    assert messages(problems) == [f"{tmp_path}/t.txt:5: error: the row has 7 cells but the header row at line 4 "
                                  "has 6; cells are separated by tabs"]


def test_a_heading_without_a_title_and_a_number_reused_with_another_title(tmp_path):
    text = table(row(), heading="【戦略1】") + table(row(), heading="【戦略1】 別の題名")
    _, _, problems = read_text(tmp_path, text)
    assert messages(problems) == [
        f"{tmp_path}/t.txt:2: error: the strategy heading has no title; write it after 】",
        f"{tmp_path}/t.txt:7: error: strategy 1 was already headed '' at line 2; use a new number or the same title",
    ]


def test_every_error_in_a_file_is_reported_in_one_run_and_nothing_is_published(tmp_path):
    text = table(row(name=""), row(phone="不明"), row(), row() + "\t余分")
    out = tmp_path / "out"
    result = lodpub("build", str(write(tmp_path / "bad.txt", text)), "--out", str(out))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{tmp_path}/bad.txt:5:1: error: 施策: the measure has no name; every row needs its 施策",
        f"{tmp_path}/bad.txt:6:4: error: 連絡先: '不明' is not a telephone number; write a Japanese number such as "
        "03-5320-7622",
        f"{tmp_path}/bad.txt:8: error: the row has 7 cells but the header row at line 4 has 6; cells are "
        "separated by tabs",
        "lodpub: 3 errors; nothing was published",
    ]
    assert not out.exists()


def test_warnings_do_not_stop_the_build_and_lose_nothing(tmp_path):
    result = build_text(tmp_path, table(row(url="www.example.jp/page", phone="03-5388-2443（内線12）")))
    assert messages(result.warnings) == [
        f"{tmp_path}/table.txt:5:4: warning: 連絡先: '(内線12)' beside the number is kept only as text",
        f"{tmp_path}/table.txt:5:5: warning: URL: 'www.example.jp/page' is not a usable web address "
        "(http:// or https://…); it is kept as text only",
    ]
    turtle = (tmp_path / "dist" / "measures.ttl").read_text(encoding="utf-8")
    assert 'lp:urlText "www.example.jp/page"' in turtle
    assert 'lp:telephoneText "03-5388-2443（内線12）"' in turtle


def test_every_row_is_published_or_reported(tmp_path):
    rows = [row(name=f"施策{i}") for i in range(30)]
    rows[7] = row(name="")
    rows[21] = "壊れた行"
    with pytest.raises(InputError) as failure:
        build_text(tmp_path, table(*rows))
    assert sorted(p.line for p in failure.value.problems if p.severity is Severity.ERROR) == [12, 26]


# ------------------------------------------------------------------ cell values

@pytest.mark.parametrize(("remarks", "start", "end"), [
    ("令和6年度まで", None, date(2025, 3, 31)),
    ("令和元年度まで", None, date(2020, 3, 31)),
    ("令和６年度から", date(2024, 4, 1), None),
    ("平成30年度から令和2年度まで", date(2018, 4, 1), date(2021, 3, 31)),
    ("2027年度まで", None, date(2028, 3, 31)),
    ("新規", None, None),
])
def test_fiscal_years_in_remarks(remarks, start, end):
    assert fiscal_dates(remarks) == (start, end)


def test_telephones_keep_what_is_beside_them():
    assert telephones("03-5320-7622（代表）") == (("tel:+81-3-5320-7622",), "(代表)")
    assert telephones("０４２－５０６－２０９７") == (("tel:+81-42-506-2097",), "")


def test_a_wrong_encoding_is_refused_rather_than_published_as_mojibake(tmp_path):
    path = write(tmp_path / "utf8.txt", table(row()))
    result = lodpub("build", str(path), "--encoding", "latin-1", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{path}:1: error: no 【戦略N】 heading found; is this a measures table (and is the encoding right)?" \
        in result.stderr
    assert not (tmp_path / "out").exists()
