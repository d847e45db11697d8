"""CSV as Excel writes it: RFC 4180 quoting, in UTF-8 (with or without a BOM) or Shift_JIS (CP932).

Excel's 「CSV (コンマ区切り)」 is CP932 on a Japanese Windows and 「CSV UTF-8」 is UTF-8 with a BOM; both quote a
cell that holds a comma, a quote (written twice) or a line break (Alt+Enter, an LF), and end rows with CRLF. So
a row may span several lines of the file: it is located by the line it starts on. Decoding is the TSV's
(``source.decode``: UTF-8 first, CP932 only when certain), and so is the layout (``source.parse_rows``); only
what separates and quotes cells differs. Outside quotes, rows end at LF or CRLF only, as in TSV.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from lodpub.pipeline.source import Row, SourceFile, Table, decode, parse_rows
from lodpub.problems import Problem

LINES = re.compile(r"[^\n]*\n|[^\n]+$")  # the file's lines with their ends: only LF ends one
# What the csv module says when the quoting is broken, and what to tell a person instead.
QUOTING = {
    "unexpected end of data": "a quoted cell that starts here is never closed; add its closing quote (\")",
    "expected after": "a quote (\") inside a quoted cell must be written twice (\"\"), and a quoted cell ends "
                      "with a quote just before the comma or the end of the row",
    "new-line character seen in unquoted field": "a carriage return (CR) inside a cell that is not quoted; quote "
                                                 "the cell (rows end at LF or CRLF only)",
}


def delimiter_of(text: str) -> str:
    """A comma, unless the header row is plainly tab-separated (a TSV saved under a .csv name)."""
    return "\t" if "施策\t" in text and "施策," not in text and '"施策",' not in text else ","


def rows_of(text: str, path: str, problems: list[Problem]) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, text, cells)`` for each row, ``line`` being where the row starts; broken quoting is reported
    (and that row skipped) without losing the rows after it."""
    separator = delimiter_of(text)
    reader = csv.reader((m.group() for m in LINES.finditer(text)), dialect="excel", delimiter=separator,
                        strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            said = next((told for known, told in QUOTING.items() if known in str(exc)),
                        f"the row cannot be read as CSV ({exc}); a cell holding a comma, a quote or a line "
                        "break is quoted, and a quote inside it written twice")
            problems.append(Problem(path, start, 0, "", said))
            start = reader.line_num + 1
            continue
        yield start, "\t".join(cells), cells
        start = reader.line_num + 1


def parse(text: str, path: str, problems: list[Problem]) -> tuple[list[Table], list[Row]]:
    """Split CSV text into tables and rows; layout problems go to ``problems``."""
    separated = "tabs" if delimiter_of(text) == "\t" else "commas"
    return parse_rows(rows_of(text, path, problems), path, problems, separated=separated)


def read(path: Path, problems: list[Problem], encoding: str | None = None, name: str | None = None) -> SourceFile:
    """Read one CSV file. Raises ``source.EncodingError`` when it cannot be decoded."""
    data = path.read_bytes()
    label = name or str(path)
    text, used = decode(data, label, encoding)
    tables, rows = parse(text, label, problems)
    return SourceFile(label, hashlib.sha256(data).hexdigest(), used, len(data), tables, rows)
