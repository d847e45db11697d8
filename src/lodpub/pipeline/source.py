"""Reading a measures table: bytes → text → strategies, header rows and rows.

The table is the Tokyo Metropolitan Government's layout: a heading line
``【戦略N】 title`` starts a strategy, the next non-blank line is the header row
(columns found by name, in any order), and rows follow. Nothing is interpreted
here beyond the layout; cell values keep their source text. The layout is read
from rows of cells, whatever gave them: tab-separated text here, CSV
(``delimited.py``) or a workbook's sheet (``workbook.py``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lodpub.problems import Problem, Severity

# Header text (after NFKC and trimming) → the field it holds.
HEADERS: dict[str, str] = {
    "施策": "name",
    "施策名": "name",
    "施策概要": "summary",
    "担当部署": "department",
    "連絡先": "phone",
    "電話番号": "phone",
    "URL": "url",
    "備考": "remarks",
}
FIELDS = ("name", "summary", "department", "phone", "url", "remarks")
REQUIRED_FIELDS = ("name", "department")
CANONICAL_HEADER = {"name": "施策", "summary": "施策概要", "department": "担当部署",
                    "phone": "連絡先", "url": "URL", "remarks": "備考"}

HEADING = re.compile(r"^\s*【\s*戦略\s*(\d+)\s*】\s*(.*?)\s*$")
# Rows end at LF or CRLF, nothing else: a lone CR, like U+2028, U+2029, U+0085, VT, FF and U+001C–U+001E
# (where str.splitlines() would split), is a character of its cell and is published as it is.
LINE_BREAK = re.compile(r"\r?\n")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text" is tab-separated UTF-16 with a BOM
# What only a measures table decoded rightly holds: a heading, or the header's first cell and its separator.
LANDMARKS = ("【戦略", "施策\t", "施策,", '"施策",')


@dataclass(frozen=True)
class Strategy:
    number: int
    title: str
    file: str
    line: int


@dataclass(frozen=True)
class Table:
    """One strategy block: its heading and the header row that names its columns."""

    file: str
    index: int  # 1-based position of the block in its file
    strategy: Strategy
    header_line: int
    headers: tuple[str, ...]  # header cells as written
    columns: dict[str, int] = field(hash=False)  # field → 1-based column number
    sheet: str = ""  # the workbook's sheet it is on (then lines are the sheet's row numbers); "" for text

    @property
    def where(self) -> str:
        """The file, and the sheet when there is one, as a person would look for the table."""
        return f"{self.file} sheet {self.sheet}" if self.sheet else self.file


@dataclass(frozen=True)
class Row:
    table: Table
    line: int
    cells: tuple[str, ...]  # as written, one per header column

    def cell(self, name: str) -> str:
        column = self.table.columns.get(name)
        return self.cells[column - 1] if column else ""


@dataclass
class SourceFile:
    path: str
    sha256: str
    encoding: str
    size: int
    tables: list[Table]
    rows: list[Row]


class EncodingError(ValueError):
    """The bytes cannot be decoded with certainty; ``line`` is where the trouble starts."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def decode(data: bytes, path: str, encoding: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding)``, never guessing where a wrong guess gives mojibake.

    UTF-8 (with or without BOM) is tried first, strictly. Shift_JIS (CP932) is
    accepted without being asked for only when the bytes decode cleanly *and*
    the result contains the table's own landmarks, which mojibake would not.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError:
            raise EncodingError(0, f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise EncodingError(line, f"the bytes are not valid {encoding} ({exc.reason}); "
                                      "check the file's encoding") from None
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise EncodingError(data[:exc.start].decode("utf-16", "replace").count("\n") + 1,
                                f"the file starts as UTF-16 but is not valid UTF-16 ({exc.reason})") from None
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        text = ""
    if any(landmark in text for landmark in LANDMARKS):
        return text, "cp932"
    raise EncodingError(
        data.count(b"\n", 0, utf8_error.start) + 1,
        "the file is not UTF-8 and its encoding cannot be told for certain; "
        "name it with --encoding (e.g. --encoding cp932 for Shift_JIS)")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def parse(text: str, path: str, problems: list[Problem]) -> tuple[list[Table], list[Row]]:
    """Split tab-separated text into tables and rows; layout problems go to ``problems``."""
    lines = ((number, raw, raw.split("\t")) for number, raw in enumerate(LINE_BREAK.split(text), start=1))
    return parse_rows(lines, path, problems)


def parse_rows(lines: Iterable[tuple[int, str, list[str]]], path: str, problems: list[Problem], *,
               sheet: str = "", separated: str = "tabs") -> tuple[list[Table], list[Row]]:
    """Split rows of cells into tables and rows; layout problems go to ``problems``.

    Each of ``lines`` is ``(line, text, cells)``: where the row starts (a sheet's row number in a workbook),
    its text (headings are found in it; blank text is a blank row) and its cells. ``separated`` says what
    separates cells, for the message about a row with more of them than its header; on a ``sheet`` the
    cells are a grid, where a value beyond the header is one in a column without a header."""
    word = "row" if sheet else "line"
    tables: list[Table] = []
    rows: list[Row] = []
    strategy: Strategy | None = None
    table: Table | None = None
    seen: dict[int, Strategy] = {}
    broken: list[int] = []  # a header row with errors, then the lines of the rows it leaves unread

    def report(line: int, message: str, column: int = 0, name: str = "",
               severity: Severity = Severity.ERROR) -> None:
        problems.append(Problem(path, line, column, name, message, severity, sheet))

    for number, raw, cells in lines:
        if not raw.strip():
            continue
        heading = HEADING.match(unicodedata.normalize("NFKC", raw))
        if heading and strategy is not None and table is None and not broken:
            report(strategy.line, f"strategy {strategy.number} has no header row and no measures")
        if heading or (broken and _is_header(cells)):
            _unread(broken, report, word)
        if heading:
            title = raw.split("】", 1)[1].strip() if "】" in raw else heading.group(2)
            strategy = Strategy(int(heading.group(1)), title, path, number)
            table = None
            if not title:
                report(number, "the strategy heading has no title; write it after 】")
            earlier = seen.get(strategy.number)
            if earlier and earlier.title != title:
                report(number, f"strategy {strategy.number} was already headed "
                               f"{earlier.title!r} at {word} {earlier.line}; use a new number or the same title")
            seen.setdefault(strategy.number, strategy)
            continue
        if broken and not _is_header(cells):
            broken.append(number)
            continue
        if strategy is None:
            report(number, "this row comes before any 【戦略N】 heading; "
                           "add the strategy heading above it")
            continue
        if table is None or _is_header(cells):
            if not _is_header(cells):
                report(number, "expected the header row (施策, 施策概要, 担当部署, 連絡先, URL, 備考) "
                               f"after the heading at {word} {strategy.line}")
                continue
            table = _header(cells, path, len(tables) + 1, strategy, number, report, sheet)
            if table is not None:
                tables.append(table)
            else:
                broken = [number]
            continue
        width = len(table.headers)
        if len(cells) > width and (sheet or not any(c.strip() for c in cells[width:])):
            for column, cell in enumerate(cells[width:], start=width + 1):
                if cell.strip():
                    report(number, "this cell is in a column whose header is empty; "
                                   "name the column or move the value", column)
            cells = cells[:width]
        if len(cells) > width:
            report(number, f"the row has {len(cells)} cells but the header row at {word} "
                           f"{table.header_line} has {width}; cells are separated by {separated}")
            continue
        if len(cells) < width:  # an exporter that drops a row's trailing empty cells (Excel's CSV does)
            missing = ", ".join(h.strip() for h in table.headers[len(cells):] if h.strip())
            report(number, f"the row has {len(cells)} cell{'s' if len(cells) != 1 else ''} but the header row at "
                           f"{word} {table.header_line} has {width}: the missing cells at its end"
                           f"{f' ({missing})' if missing else ''} are read as empty", severity=Severity.WARNING)
            cells = [*cells, *[""] * (width - len(cells))]
        named = table.columns.values()
        for column, cell in enumerate(cells, start=1):
            if cell.strip() and column not in named:
                report(number, "this cell is in a column whose header is empty; "
                               "name the column or move the value", column)
        rows.append(Row(table, number, tuple(cells)))
    header_failed = bool(broken)
    _unread(broken, report, word)
    if strategy is not None and table is None and not header_failed:
        report(strategy.line, f"strategy {strategy.number} has no header row and no measures")
    if not seen:
        report(1, "no 【戦略N】 heading found; is this a measures table (and is the encoding right)?")
    return tables, rows


def _unread(broken: list[int], report: Callable[..., None], word: str) -> None:
    """Say how many rows a faulty header row kept from being read; then forget it."""
    if len(broken) > 1:
        rows = len(broken) - 1
        report(broken[0], f"{rows} row{'s' if rows > 1 else ''} below this header ({word}s {broken[1]}–{broken[-1]}) "
                          "could not be read; fix the header row")
    broken.clear()


def _is_header(cells: list[str]) -> bool:
    """A header names the 施策 column and at least one other column we know."""
    names = [_norm(c) for c in cells if c.strip()]
    return "施策" in names and sum(1 for n in names if n in HEADERS) >= 2


def _header(cells: list[str], path: str, index: int, strategy: Strategy, line: int,
            report: Callable[..., None], sheet: str) -> Table | None:
    columns: dict[str, int] = {}
    ok = True
    for column, cell in enumerate(cells, start=1):
        name = _norm(cell)
        if not name:
            continue
        key = HEADERS.get(name)
        if key is None:
            report(line, f"unknown column {name!r}; the columns are "
                         f"{', '.join(CANONICAL_HEADER.values())}", column, name)
            ok = False
            continue
        if key in columns:
            report(line, f"column {CANONICAL_HEADER[key]} appears twice "
                         f"(columns {columns[key]} and {column})", column, name)
            ok = False
        columns[key] = column
    for key in REQUIRED_FIELDS:
        if key not in columns:
            report(line, f"the header row has no {CANONICAL_HEADER[key]} column", 0, "")
            ok = False
    width = max(columns.values(), default=0)
    headers = tuple(cells[:width])
    return Table(path, index, strategy, line, headers, columns, sheet) if ok else None


def read(path: Path, problems: list[Problem], encoding: str | None = None,
         name: str | None = None) -> SourceFile:
    """Read one table file. Raises :class:`EncodingError` when it cannot be decoded."""
    data = path.read_bytes()
    label = name or str(path)
    text, used = decode(data, label, encoding)
    tables, rows = parse(text, label, problems)
    return SourceFile(label, hashlib.sha256(data).hexdigest(), used, len(data), tables, rows)
