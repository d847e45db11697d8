"""The tables people have: CSV as Excel writes it and Excel workbooks, read like the TSV seed, with their
problems located by line, or by sheet and cell."""

from __future__ import annotations

import csv
import re
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
import rdflib
from rdflib.compare import isomorphic

from lodpub.pipeline.build import build, read_sources
from lodpub.problems import Problem
from lodpub.settings import Settings

from conftest import BASE, SEED, lodpub, row, table, write

SOURCE = f"{BASE}id/source/"
SEED_ROWS = [line.split("\t") for line in SEED.read_text(encoding="utf-8").split("\n")]
SHEET = "施策一覧"


def read(path: Path, sheet: str | None = None):
    problems: list[Problem] = []
    sources, measures = read_sources([path], None, problems, sheet)
    return sources, measures, [str(p) for p in sorted(problems)]


def excel_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    """A CSV file as the csv module writes Excel's dialect (CRLF, quoting where needed)."""
    with path.open("w", encoding=encoding, newline="") as out:
        csv.writer(out, dialect="excel").writerows(rows)
    return path


def workbook(path: Path, rows: list[list], title: str = SHEET, merge: tuple[str, ...] = (),
             others: tuple[str, ...] = ()) -> Path:
    """A workbook as openpyxl writes it: ``rows`` from A1 on its one sheet, ``merge``d ranges, and empty
    sheets named ``others`` before it."""
    book = openpyxl.Workbook()
    for name in others:
        book.create_sheet(name, 0)
    ws = book.worksheets[-1] if others else book.active
    ws.title = title
    for number, cells in enumerate(rows, start=1):
        for column, value in enumerate(cells, start=1):
            if value not in ("", None):
                ws.cell(number, column, value)
    for cells in merge:
        ws.merge_cells(cells)
    book.save(path)
    return path


def saved_by_a_spreadsheet(path: Path, cell: str, value: str) -> Path:
    """What Excel does to a workbook openpyxl wrote: the formula of ``cell`` gets its computed value saved
    beside it, and the workbook no longer asks to be recalculated when opened. By hand, in the XML."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet, found = re.subn(rf'<c r="{cell}"><f>(.*?)</f><v></v></c>',
                           lambda m: f'<c r="{cell}" t="str"><f>{m.group(1)}</f><v>{value}</v></c>', sheet)
    assert found == 1
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def statements(dist: Path) -> set[str]:
    """The built graph's N-Triples, but for what only the file's format changes: its name, bytes, sheet."""
    varies = ("/terms/title>", "lodpub#sha256>", "dcat#byteSize>", "lodpub#sheet>")
    lines = (dist / "measures.nt").read_text(encoding="utf-8").splitlines()
    return {line for line in lines if not (line.startswith(f"<{SOURCE}measures") and any(v in line for v in varies))}


# ------------------------------------------------------------------ every format gives the seed's graph

@pytest.fixture(scope="module")
def seed_statements(tmp_path_factory) -> set[str]:
    directory = tmp_path_factory.mktemp("tsv")
    (directory / "measures.txt").write_bytes(SEED.read_bytes())
    build([directory / "measures.txt"], directory / "dist", Settings(), workers=1)
    return statements(directory / "dist")


def seed_workbook(path: Path) -> Path:
    """The seed as a workbook: each line a row (so rows are lines), its heading merged across the columns as
    people lay headings out."""
    return workbook(path, SEED_ROWS, merge=("A3:F3",))


@pytest.mark.parametrize(("name", "write_table", "encoding"), [
    ("utf-8 with BOM (Excel's CSV UTF-8)", lambda p: excel_csv(p / "measures.csv", SEED_ROWS, "utf-8-sig"), "utf-8"),
    ("utf-8 without BOM", lambda p: excel_csv(p / "measures.csv", SEED_ROWS, "utf-8"), "utf-8"),
    ("Shift_JIS (Excel's CSV on Japanese Windows)", lambda p: excel_csv(p / "measures.csv", SEED_ROWS, "cp932"),
     "cp932"),
    ("an openpyxl workbook", lambda p: seed_workbook(p / "measures.xlsx"), "xlsx"),
])
def test_every_format_builds_the_graph_of_the_tsv_seed(tmp_path, seed_statements, name, write_table, encoding):
    path = write_table(tmp_path)
    sources, _, problems = read(path)
    assert problems == []
    assert sources[0].encoding == encoding
    result = build([path], tmp_path / "dist", Settings(), workers=1)
    assert result.warnings == []
    assert statements(tmp_path / "dist") == seed_statements  # rows, lines and columns too
    nt = (tmp_path / "dist" / "measures.nt").read_text(encoding="utf-8")
    sheet = f'<{SOURCE}measures#table-1> <{BASE}def/lodpub#sheet> "{SHEET}" .'
    assert (sheet in nt) == (encoding == "xlsx")
    assert f'<{SOURCE}measures> <http://purl.org/dc/terms/title> "{path.name}" .' in nt
    jsonld = rdflib.Graph().parse(tmp_path / "dist" / "measures.jsonld", format="json-ld")  # lp:sheet too
    assert isomorphic(jsonld, rdflib.Graph().parse(tmp_path / "dist" / "measures.nt", format="nt"))


# ------------------------------------------------------------------ CSV written by hand

def test_a_csv_cell_may_hold_quotes_commas_and_line_breaks_and_a_row_is_found_by_its_first_line(tmp_path):
    text = ("【戦略1】 テスト戦略,,,,,\r\n"
            "施策,施策概要,担当部署,連絡先,URL,備考\r\n"
            '"改行のある施策","一行目\n二行目",総務局 行政部 振興企画課,03-5388-2443,https://example.jp/,'
            '"「引用」と""二重引用符"", そしてコンマ"\r\n'
            "次の施策,概要,総務局 行政部 振興企画課,03-5388-2443,,令和6年度まで\r\n")
    _, measures, problems = read(write(tmp_path / "hand.csv", text))
    assert problems == []
    first, second = measures
    assert (first.name, first.summary, first.remarks, first.row.line) == \
        ("改行のある施策", "一行目\n二行目", '「引用」と"二重引用符", そしてコンマ', 3)
    assert (second.name, second.row.line, second.end.isoformat()) == ("次の施策", 5, "2025-03-31")


def test_a_csv_row_missing_its_trailing_empty_cells_is_read_with_a_warning_naming_its_line(tmp_path):
    text = ("【戦略1】 テスト戦略,,,,,\r\n"
            "施策,施策概要,担当部署,連絡先,URL,備考\r\n"
            "全部ある施策,概要,総務局 行政部 振興企画課,03-5388-2443,https://example.jp/,\r\n"
            "短い施策,概要,総務局 行政部 振興企画課,03-5388-2443\r\n")
    path = write(tmp_path / "short.csv", text)
    _, measures, problems = read(path)
    assert problems == [f"{path}:4: warning: the row has 4 cells but the header row at line 2 has 6: the missing "
                        "cells at its end (URL, 備考) are read as empty"]
    assert [(m.name, m.url, m.remarks, m.row.cells) for m in measures][1] == \
        ("短い施策", None, "", ("短い施策", "概要", "総務局 行政部 振興企画課", "03-5388-2443", "", ""))


def test_broken_csv_quoting_is_reported_by_line_and_the_rows_after_it_still_read(tmp_path):
    text = ("【戦略1】 テスト戦略\r\n"
            "施策,施策概要,担当部署,連絡先,URL,備考\r\n"
            '"引用"のあと,概要,総務局 行政部 振興企画課,03-5388-2443,,\r\n'
            "読める施策,概要,総務局 行政部 振興企画課,03-5388-2443,,\r\n"
            '"閉じない施策,概要,総務局 行政部 振興企画課,03-5388-2443,,\r\n')
    path = write(tmp_path / "broken.csv", text)
    _, measures, problems = read(path)
    assert problems == [
        f'{path}:3: error: a quote (") inside a quoted cell must be written twice (""), and a quoted cell ends '
        "with a quote just before the comma or the end of the row",
        f'{path}:5: error: a quoted cell that starts here is never closed; add its closing quote (")',
    ]
    assert [m.name for m in measures] == ["読める施策"]


def test_tables_saved_as_excel_s_unicode_text_are_read(tmp_path):
    path = write(tmp_path / "unicode.txt", "\ufeff" + table(row()).replace("\n", "\r\n"), "utf-16-le")
    sources, measures, problems = read(path)
    assert problems == []
    assert (sources[0].encoding, [m.name for m in measures]) == ("utf-16", ["測定施策"])


# ------------------------------------------------------------------ workbooks

HEADER_ROW = ["施策", "施策概要", "担当部署", "連絡先", "URL", "備考"]


def rows_of(*measures: list) -> list[list]:
    return [["【戦略1】 テスト戦略"], [], HEADER_ROW, *measures]


def measure(name: str = "測定施策", department: str = "総務局 行政部 振興企画課", phone: object = "03-5388-2443",
            remarks: object = "") -> list:
    return [name, "概要。", department, phone, "https://example.jp/", remarks]


def test_a_problem_in_a_workbook_names_the_file_the_sheet_and_the_cell(tmp_path):
    path = workbook(tmp_path / "book.xlsx", [["表の題"], *rows_of(measure(), measure(phone="不明"))])
    _, _, problems = read(path)
    assert problems == [
        f"{path}:{SHEET}:1: error: this row comes before any 【戦略N】 heading; add the strategy heading above it",
        f"{path}:{SHEET}!D6: error: 連絡先: '不明' is not a telephone number; write a Japanese number such as "
        "03-5320-7622",
    ]


def test_a_merged_heading_is_read_and_a_merged_cell_in_the_measures_is_refused_by_name(tmp_path):
    rows = rows_of(measure("一つ目"), measure("二つ目"), measure("三つ目"))
    path = workbook(tmp_path / "merged.xlsx", rows, merge=("A1:F1", "C4:C5"))
    _, measures, problems = read(path)
    assert problems == [
        f"{path}:{SHEET}!C4: error: 担当部署: the cells C4:C5 are merged across rows: a merged cell keeps its value "
        "in its first row only, and would silently apply to several measures; unmerge them and write the value in "
        "every row",
    ]
    assert [m.name for m in measures] == ["一つ目", "二つ目", "三つ目"]  # only the merge is reported


def test_a_formula_is_read_as_the_value_the_spreadsheet_saved_and_refused_when_none_was_computed(tmp_path):
    rows = rows_of(measure(remarks='="令和"&6&"年度まで"'), measure(remarks='=IF(A5="","x","")'))
    path = workbook(tmp_path / "formula.xlsx", rows)
    _, measures, problems = read(path)
    assert problems == [
        f'{path}:{SHEET}!F4: error: 備考: the cell holds the formula ="令和"&6&"年度まで" whose value was never '
        "computed (the file asks to be recalculated when opened, as files written by programs do); open and "
        "save it in a spreadsheet, or write the value itself",
        f'{path}:{SHEET}!F5: error: 備考: the cell holds the formula =IF(A5="","x","") whose value was never '
        "computed (the file asks to be recalculated when opened, as files written by programs do); open and "
        "save it in a spreadsheet, or write the value itself",
    ]
    _, measures, problems = read(saved_by_a_spreadsheet(path, "F4", "令和6年度まで"))
    assert problems == []  # and F5's formula, saved by a spreadsheet with no value, has an empty result
    assert [(m.remarks, m.end and m.end.isoformat()) for m in measures] == \
        [("令和6年度まで", "2025-03-31"), ("", None)]


def test_workbook_cells_read_as_the_spreadsheet_shows_them(tmp_path):
    path = tmp_path / "typed.xlsx"
    workbook(path, rows_of(measure(phone=353882443, remarks=datetime(2025, 3, 31)), measure(name=2024),
                           measure(name="番号", phone=353882443)))
    book = openpyxl.load_workbook(path)
    book[SHEET]["D4"].number_format = "00-0000-0000"  # a phone typed as a number keeps its leading 0
    book.save(path)
    _, measures, problems = read(path)
    assert problems == [  # unless its format shows it: then it is said why it has none
        f"{path}:{SHEET}!D6: error: 連絡先: '353882443' is not a telephone number; write a Japanese number such "
        "as 03-5320-7622",
        f"{path}:{SHEET}!D6: warning: 連絡先: the cell holds a number, not text: a spreadsheet drops a telephone "
        "number's leading 0; format the column as text (文字列) and write the number again, e.g. 03-5320-7622",
    ]
    assert [(m.name, m.phones, m.remarks) for m in measures] == [
        ("測定施策", ("tel:+81-3-5388-2443",), "2025-03-31"),  # a date as ISO 8601
        ("2024", ("tel:+81-3-5388-2443",), ""),  # a whole number without ".0"
    ]


def test_the_sheet_is_the_only_one_holding_a_heading_or_the_one_named(tmp_path):
    path = workbook(tmp_path / "cover.xlsx", rows_of(measure()), others=("表紙",))
    sources, measures, problems = read(path)
    assert (problems, sources[0].tables[0].sheet, len(measures)) == ([], SHEET, 1)

    book = openpyxl.load_workbook(path)
    book.copy_worksheet(book[SHEET]).title = "別の表"
    book.save(path)
    _, _, problems = read(path)
    assert problems == [f"{path}:0: error: the workbook has 3 visible sheets (表紙, {SHEET}, 別の表) and 2 "
                        f"({SHEET}, 別の表) of them hold a 【戦略N】 heading; choose one with --sheet NAME"]
    _, _, problems = read(path, "ない")
    assert problems == [f"{path}:0: error: the workbook has no worksheet named 'ない'; its sheets are 表紙, "
                        f"{SHEET}, 別の表"]

    out = tmp_path / "out"
    result = lodpub("build", str(path), "--sheet", "別の表", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert '"別の表"' in (out / "measures.ttl").read_text(encoding="utf-8")


def test_what_would_be_read_wrongly_under_its_name_is_refused_saying_how_to_save_it(tmp_path):
    old = write(tmp_path / "old.xls", "")
    disguised = workbook(tmp_path / "book.txt", rows_of(measure()))
    result = lodpub("build", str(old), str(disguised), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{disguised}:0: error: this file is a workbook, not text: name it .xlsx if it is one, or save it from the "
        "spreadsheet as an Excel Workbook (.xlsx) or as CSV",
        f"{old}:0: error: an Excel 97–2003 workbook (.xls) is not read; save it from the spreadsheet as an Excel "
        "Workbook (.xlsx) or as CSV",
        "lodpub: 2 errors; nothing was published",
    ]
