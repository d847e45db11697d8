"""Excel workbooks (.xlsx, .xlsm): one sheet read into the table layout, with its merged cells and formulas.

Read with openpyxl rather than python-calamine: calamine is faster, but the release that can be pinned here
(0.9) cannot tell a formula from a value, so a formula saved without its value (as programs write them) would
read as an empty cell without a word; openpyxl gives each formula and, in a second reading, the value the
spreadsheet saved for it, and the merged ranges; and the tests write their workbooks with it. Its full
mode (which the merged ranges need) holds the sheet in memory: right for the thousands of rows a sheet of
measures holds; a national-scale table is better given as TSV or CSV.

What is read: the sheet named by ``--sheet``, else the only visible one, else the only one holding a
【戦略N】 heading. A cell is read as the text the spreadsheet shows: a date as ISO 8601 (2025-03-31), a
whole number without ``.0``, a number formatted with digit placeholders (``00-0000-0000``) as formatted, so
that a telephone number typed as a number keeps its leading 0 (one shown without it is said to have lost
it). A formula is read as the value the spreadsheet saved for it (never its text; none saved is an empty
result); one whose value was never computed (the file asks to be recalculated when opened, as files written
by programs do) is refused, naming the cell. A merged range is refused, naming it, except across one row of
a heading: a merged cell holds its value in its first cell only, so a merged 担当部署 would silently apply
to several measures. A problem names the sheet and the cell.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.worksheet.worksheet import Worksheet

from lodpub.pipeline.source import HEADING, Row, SourceFile, parse_rows
from lodpub.problems import Problem, Severity, column_letter

# The workbook asks to be recalculated when opened: its formulas' saved values, if any, were never computed.
RECALCULATE = re.compile(rb"<(?:\w+:)?calcPr\b[^>]*\bfullCalcOnLoad=\"(?:1|true)\"")
PLACEHOLDER_FORMAT = re.compile(r"^[0#\-() ]*0[0#\-() ]*$")  # digits and the punctuation of phone numbers


class WorkbookError(ValueError):
    """The file cannot be read as a workbook, or no sheet of it can be chosen; the message says what to do."""


def read(path: Path, problems: list[Problem], sheet: str | None = None, name: str | None = None) -> SourceFile:
    """Read the chosen sheet of one workbook. Raises :class:`WorkbookError`."""
    data = path.read_bytes()
    label = name or str(path)
    found: list[Problem] = []  # the cells' own problems, whose columns are named once the header rows are known
    book = _open(data, data_only=False)
    ws = choose(book, sheet)
    values = None  # the values the spreadsheet saved for its formulas, read only when there are formulas
    recalculate = bool(RECALCULATE.search(_part(data, "xl/workbook.xml")))
    grid: list[list[str]] = []
    numbers: set[tuple[int, int]] = set()  # cells holding a number shown without a leading 0
    for cells in ws.iter_rows(min_row=1, min_col=1, max_row=ws.max_row, max_col=ws.max_column):
        row: list[str] = []
        for cell in cells:
            if isinstance(cell, MergedCell) or cell.value is None:
                row.append("")
                continue
            if cell.data_type == "f":
                if recalculate:
                    found.append(_at(label, ws, cell, f"the cell holds the formula {_formula(cell)} whose value "
                                        "was never computed (the file asks to be recalculated when opened, as files "
                                        "written by programs do); open and save it in a spreadsheet, or write the "
                                        "value itself"))
                    row.append("")
                    continue
                if values is None:
                    values = _open(data, data_only=True)[ws.title]
                saved = values.cell(cell.row, cell.column)
                row.append(_text(saved, label, ws, found) if saved.value is not None else "")
                continue
            row.append(_text(cell, label, ws, found))
            if cell.data_type == "n" and not cell.is_date and not row[-1].startswith("0"):
                numbers.add((cell.row, cell.column))
        grid.append(row)
    _merged(ws, grid, label, found)
    lines = ((number, "\t".join(cells), cells) for number, cells in enumerate(grid, start=1))
    tables, rows = parse_rows(lines, label, problems, sheet=ws.title)
    problems += _name_fields(found, rows)
    problems += [Problem(label, r.line, r.table.columns["phone"], "連絡先", "the cell holds a number, not text: "
                         "a spreadsheet drops a telephone number's leading 0; format the column as text (文字列) "
                         "and write the number again, e.g. 03-5320-7622", Severity.WARNING, ws.title)
                 for r in rows if (r.line, r.table.columns.get("phone")) in numbers]
    return SourceFile(label, hashlib.sha256(data).hexdigest(), "xlsx", len(data), tables, rows)


def _open(data: bytes, data_only: bool) -> openpyxl.Workbook:
    try:
        with warnings.catch_warnings():  # openpyxl warns of parts it does not keep (validation, slicers…)
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(io.BytesIO(data), data_only=data_only)
    except Exception as exc:  # whatever a broken or foreign file makes openpyxl raise is the file's fault
        raise WorkbookError(f"this is not an Excel workbook (.xlsx) that can be read ({exc}); save it from "
                            "the spreadsheet as an Excel Workbook (.xlsx) without a password") from None


def _part(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            return archive.read(name)
        except KeyError:
            return b""


def choose(book: openpyxl.Workbook, sheet: str | None) -> Worksheet:
    """The sheet named, else the only visible one, else the only one holding a heading."""
    names = ", ".join(book.sheetnames)
    if sheet is not None:
        if sheet not in book.sheetnames or not isinstance(book[sheet], Worksheet):
            raise WorkbookError(f"the workbook has no worksheet named {sheet!r}; its sheets are {names}")
        return book[sheet]
    visible = [ws for ws in book.worksheets if ws.sheet_state == "visible"]
    if len(visible) == 1:
        return visible[0]
    holding = [ws for ws in visible if _has_heading(ws)]
    if len(holding) == 1:
        return holding[0]
    which = "none" if not holding else f"{len(holding)} ({', '.join(ws.title for ws in holding)})"
    raise WorkbookError(f"the workbook has {len(visible)} visible sheets ({', '.join(ws.title for ws in visible)}) "
                        f"and {which} of them hold a 【戦略N】 heading; choose one with --sheet NAME")


def _has_heading(ws: Worksheet) -> bool:
    return any(isinstance(value, str) and HEADING.match(unicodedata.normalize("NFKC", value))
               for row in ws.iter_rows(values_only=True) for value in row)


def _at(label: str, ws: Worksheet, cell: Cell, message: str) -> Problem:
    return Problem(label, cell.row, cell.column, "", message, sheet=ws.title)


def _formula(cell: Cell) -> str:
    value = cell.value
    return str(getattr(value, "text", None) or value)


def _text(cell: Cell, label: str, ws: Worksheet, problems: list[Problem]) -> str:
    """The text the spreadsheet shows for a cell's value."""
    value: Any = cell.value
    if cell.data_type == "e":
        problems.append(_at(label, ws, cell, f"the cell holds the error {value}; correct its formula or write "
                                             "the value"))
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number(value, cell.number_format)
    return str(value)


def _number(value: float, number_format: str) -> str:
    """A number as shown: digit placeholders filled (``00-0000-0000`` → 03-5320-7622), else plainly."""
    whole = float(value).is_integer() and abs(value) < 1e15
    shape = number_format.split(";", 1)[0].replace("\\", "").replace('"', "")
    if whole and value >= 0 and PLACEHOLDER_FORMAT.match(shape):
        digits = list(str(int(value)))
        out: list[str] = []
        slots = [i for i, ch in enumerate(shape) if ch in "0#"]
        for i, ch in reversed(list(enumerate(shape))):
            if ch not in "0#":
                out.append(ch)
            elif i == slots[0]:  # the leftmost placeholder takes every digit left over
                out.append("".join(digits) or ("0" if ch == "0" else ""))
                digits = []
            else:
                out.append(digits.pop() if digits else ("0" if ch == "0" else ""))
        return "".join(reversed(out)).strip()
    if whole:
        return str(int(value))
    return format(value, ".15g")


def _merged(ws: Worksheet, grid: list[list[str]], label: str, problems: list[Problem]) -> None:
    """Refuse every merged range but one across a heading's row. A refused range's value is copied into the
    cells it covers, so that only the merge is reported, not the emptiness it leaves."""
    for merged in sorted(ws.merged_cells.ranges, key=lambda r: (r.min_row, r.min_col)):
        top, left, bottom, right = merged.min_row, merged.min_col, merged.max_row, merged.max_col
        text = "\t".join(grid[top - 1]) if top <= len(grid) else ""
        if top == bottom and HEADING.match(unicodedata.normalize("NFKC", text)):
            continue
        ref = f"{column_letter(left)}{top}:{column_letter(right)}{bottom}"
        if top == bottom:
            message = (f"the cells {ref} are merged; unmerge them and write each column's value in its own cell "
                       "(only a 【戦略N】 heading may span columns)")
        else:
            message = (f"the cells {ref} are merged across rows: a merged cell keeps its value in its first row "
                       "only, and would silently apply to several measures; unmerge them and write the value in "
                       "every row")
        problems.append(Problem(label, top, left, "", message, sheet=ws.title))
        anchor = grid[top - 1][left - 1] if top <= len(grid) and left <= len(grid[top - 1]) else ""
        for r in range(top, min(bottom, len(grid)) + 1):
            for c in range(left, min(right, len(grid[r - 1])) + 1):
                grid[r - 1][c - 1] = anchor


def _name_fields(found: list[Problem], rows: list[Row]) -> list[Problem]:
    """Each problem of a cell with its column's header (e.g. 担当部署), where the cell is in a table's row."""
    tables = {row.line: row.table for row in rows}
    named = []
    for problem in found:
        table = tables.get(problem.line)
        inside = table is not None and 0 < problem.column <= len(table.headers)
        header = table.headers[problem.column - 1].strip() if table is not None and inside else ""
        named.append(replace(problem, field=header) if header else problem)
    return named
