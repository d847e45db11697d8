"""How a source table meets the Ministry of Internal Affairs' rules for machine-readable tables.

総務省「統計表における機械判読可能なデータの表記方法の統一ルール」(2020,
https://www.soumu.go.jp/main_content/000723626.pdf) numbers its checks チェック項目 1-1 … 1-15. Only those
that apply to a table of measures read by name are checked here; the others are the readers' business
(1-1 file format, 1-4 merged cells, 1-7 formulas: refused or read by ``tables.py`` and ``workbook.py``) or
do not apply (1-3 numbers, 1-9 units: the table holds no figures). A finding is advice, never an error:
the build publishes the table as it is (and converts what it can, e.g. an era year into a date).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from lodpub.pipeline import places
from lodpub.pipeline.cells import telephones
from lodpub.pipeline.source import SourceFile
from lodpub.problems import Problem

SOURCE = "https://www.soumu.go.jp/main_content/000723626.pdf"


@dataclass(frozen=True)
class Rule:
    number: str  # the Ministry's チェック項目 number
    slug: str  # stable, for IRIs and machines
    ja: str  # the Ministry's wording
    en: str


RULES: dict[str, Rule] = {r.number: r for r in (
    Rule("1-2", "one-datum-per-cell", "1セル1データとなっているか", "One datum per cell"),
    Rule("1-5", "no-layout-spaces", "スペースや改行等で体裁を整えていないか",
         "No spaces or line breaks to lay values out"),
    Rule("1-6", "named-columns", "項目名等を省略していないか", "Every column named"),
    Rule("1-10", "no-platform-dependent-characters", "機種依存文字を使用していないか",
         "No platform-dependent characters"),
    Rule("1-11", "western-years", "e-Statの時間軸コードの表記、西暦表記又は和暦に西暦の併記がされているか",
         "Years in the western calendar, or a Japanese era's year with its western year"),
    Rule("1-12", "area-codes", "地域コード又は地域名称が表記されているか", "Places named with their area codes"),
)}


@dataclass(frozen=True, order=True)
class Finding:
    """One place where the table does not meet a rule, located as a problem is (``problems.Problem``)."""

    file: str
    line: int
    column: int
    field: str
    rule: str  # a number of RULES
    message: str
    sheet: str = ""

    def __str__(self) -> str:
        where = Problem(self.file, self.line, self.column, "", "", sheet=self.sheet).where
        what = f" {self.field}:" if self.field else ""
        return f"{where}: rule {self.rule} ({RULES[self.rule].slug}):{what} {self.message}"


# 機種依存文字: what CP932 adds to JIS X 0208 (NEC's row 13, IBM's extensions) and half-width katakana,
# which other systems show otherwise or not at all.
DEPENDENT = re.compile("[\u2460-\u2473\u2160-\u217f\u3200-\u32ff\u3300-\u33ff\u2116\u2121\u2211\u221f\u22bf"
                       "\uff61-\uff9f]+")
ERAS = {"明治": 1868, "大正": 1912, "昭和": 1926, "平成": 1989, "令和": 2019}
ERA_YEAR = re.compile(r"(明治|大正|昭和|平成|令和)\s*(\d+|元)\s*(年度?)")
WESTERN_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
SPACE = "[ \u3000]"
EDGE_SPACE = re.compile(rf"^{SPACE}+|{SPACE}+$")
BREAK = re.compile("[\r\n\u2028\u2029\u0085\v\f]")
URL = re.compile(r"https?://", re.IGNORECASE)
SPACED = re.compile(rf"(?<!\S)[^\sA-Za-z0-9](?:{SPACE}+[^\sA-Za-z0-9])+(?!\S)")
PLACE_FIELDS = ("name", "summary")  # where places.py reads the places a measure names


def check(sources: Iterable[SourceFile]) -> list[Finding]:
    """Every finding in the tables read, in the order of the file, its lines and columns."""
    found: list[Finding] = []
    mentions = places.gazetteer().find
    for source in sources:
        for table in source.tables:
            for column, header in enumerate(table.headers, start=1):
                if not header.strip():
                    found.append(Finding(table.file, table.header_line, column, "", "1-6",
                                         "this column has no name in the header row; name it or remove it",
                                         table.sheet))
        fields = {t: {c: k for k, c in t.columns.items()} for t in source.tables}
        for row in source.rows:
            table = row.table
            for column, cell in enumerate(row.cells, start=1):
                if not cell.strip():
                    continue
                name = table.headers[column - 1].strip() if column <= len(table.headers) else ""
                key = fields[table].get(column, "")
                for rule, message in _cell(cell, key, mentions):
                    found.append(Finding(table.file, row.line, column, name, rule, message, table.sheet))
    return sorted(found)


def _cell(cell: str, key: str, mentions: Callable[[str], list[places.Place]]) -> Iterator[tuple[str, str]]:
    """(rule, message) for each rule one cell does not meet; ``key`` is its column's field, ``mentions`` the
    places a text names (``places.py``'s rules: no place inside a proper name or a longer word)."""
    if key == "phone" and len(numbers := telephones(cell)[0]) > 1:
        shown = ", ".join(n.removeprefix("tel:") for n in numbers)
        yield "1-2", f"{len(numbers)} telephone numbers in one cell ({shown}); write one number per cell"
    if key == "url" and len(URL.findall(cell)) > 1:
        yield "1-2", "several web addresses in one cell; write one address per cell"
    if EDGE_SPACE.search(cell):
        yield "1-5", "the value starts or ends with spaces; remove them (indent nothing with spaces)"
    spaced = _spaced_out(cell)
    if spaced:
        yield "1-5", (f"「{spaced}」 is spaced out character by character; write it without the spaces "
                      f"({re.sub(SPACE, '', spaced)})")
    if BREAK.search(cell):
        yield "1-5", "the value holds a line break; write it on one line"
    dependent = DEPENDENT.findall(cell)
    if dependent:
        pairs = ", ".join(f"{d} → {unicodedata.normalize('NFKC', d)}" for d in dict.fromkeys(dependent))
        yield "1-10", f"platform-dependent characters ({pairs}); write what follows each arrow instead"
    text = cell if unicodedata.is_normalized("NFKC", cell) else unicodedata.normalize("NFKC", cell)
    yield from _era_years(text)
    if key in PLACE_FIELDS:
        named = [p for p in mentions(text) if p.code and p.kind == "municipality" and p.name in text]
        if named:  # by its own name: an alias (日野キャンパス) names a campus, not the place
            shown = "、".join(f"{p.name} ({p.code})" for p in named)
            yield "1-12", (f"{shown} named without an area code (全国地方公共団体コード): this layout has no "
                           "column for one; a table that names places gives each one's code beside it")


def _spaced_out(cell: str) -> str:
    """The first run of single characters (not Latin letters or digits) separated by spaces, like 総　務　局."""
    match = SPACED.search(cell)
    return match.group() if match else ""


def _era_years(text: str) -> Iterator[tuple[str, str]]:
    """``text``: a cell after NFKC (㍻ is 平成 then, full-width digits are digits)."""
    western = {int(y) for y in WESTERN_YEAR.findall(text)}
    for match in ERA_YEAR.finditer(text):
        era, year = match.group(1), match.group(2)
        gregorian = ERAS[era] - 1 + (1 if year == "元" else int(year))
        if gregorian not in western:
            said, unit = match.group(), match.group(3)
            yield "1-11", (f"{said} is a Japanese era's year without its western year; write "
                           f"{gregorian}{unit} or {said}（{gregorian}{unit}）")


def summary(findings: list[Finding], report: str = "") -> str:
    """One line about them (a build's names the ``report`` it published)."""
    see = f"; see {report}" if report else ""
    if not findings:
        return f"machine-readability: no findings ({len(RULES)} rules checked){see}"
    rules = sorted({f.rule for f in findings}, key=lambda n: tuple(int(p) for p in n.split("-")))
    return (f"machine-readability: {len(findings)} finding{'s' if len(findings) != 1 else ''} of "
            f"{len(rules)} rule{'s' if len(rules) != 1 else ''} ({', '.join(rules)}){see}")
