"""The tables a build reads: which reader each file needs, and every row of them read as a measure.

The format is told by the file's name: ``.xlsx``/``.xlsm`` a workbook (``workbook.py``), ``.csv`` CSV
(``delimited.py``), anything else tab-separated text (``source.py``). What would be read wrongly under its
name is refused, saying how to save it instead: an old binary or OpenDocument workbook, or a workbook's bytes
under a text name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lodpub.pipeline import delimited, source, workbook
from lodpub.pipeline.cells import Measure, interpret
from lodpub.pipeline.mapping import source_slug
from lodpub.pipeline.source import EncodingError, SourceFile, Strategy
from lodpub.problems import Problem

WORKBOOKS = (".xlsx", ".xlsm")
SAVE_AS = "save it from the spreadsheet as an Excel Workbook (.xlsx) or as CSV"
REFUSED = {
    ".xls": f"an Excel 97–2003 workbook (.xls) is not read; {SAVE_AS}",
    ".xlsb": f"an Excel binary workbook (.xlsb) is not read; {SAVE_AS}",
    ".ods": f"an OpenDocument spreadsheet (.ods) is not read; {SAVE_AS}",
}
ZIP, OLE = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # how an .xlsx and an .xls file begin


def read(path: Path, problems: list[Problem], encoding: str | None = None,
         sheet: str | None = None) -> SourceFile | None:
    """Read one table with the reader its name says; ``None`` when it cannot be read (the reason is reported).
    Raises ``OSError`` when the file cannot be opened."""
    suffix = path.suffix.lower()
    label = str(path)
    try:
        if suffix in WORKBOOKS:
            return workbook.read(path, problems, sheet)
        if suffix in REFUSED:
            problems.append(Problem(label, 0, 0, "", REFUSED[suffix]))
            return None
        with path.open("rb") as fh:
            start = fh.read(len(OLE))
        if start.startswith((ZIP, OLE)):
            problems.append(Problem(label, 0, 0, "", "this file is a workbook, not text: name it .xlsx if it is "
                                                     f"one, or {SAVE_AS}"))
            return None
        reader = delimited.read if suffix == ".csv" else source.read
        return reader(path, problems, encoding)
    except EncodingError as exc:
        problems.append(Problem(label, exc.line, 0, "", str(exc)))
    except workbook.WorkbookError as exc:
        problems.append(Problem(label, 0, 0, "", str(exc)))
    return None


def read_sources(paths: Sequence[Path], encoding: str | None, problems: list[Problem],
                 sheet: str | None = None) -> tuple[list[SourceFile], list[Measure]]:
    """Every table at ``paths`` and the measures of their rows; every problem goes to ``problems``."""
    sources: list[SourceFile] = []
    measures: list[Measure] = []
    for path in paths:
        try:
            found = read(path, problems, encoding, sheet)
        except OSError as exc:
            problems.append(Problem(str(path), 0, 0, "", f"cannot read the file: {exc.strerror}"))
            continue
        if found is None:
            continue
        sources.append(found)
        for row in found.rows:
            measure = interpret(row, problems)
            if measure is not None:
                measures.append(measure)
    _check_strategies_agree(sources, problems)
    _check_names_differ(sources, problems)
    return sources, measures


def _check_strategies_agree(sources: Sequence[SourceFile], problems: list[Problem]) -> None:
    first: dict[int, Strategy] = {}
    for found in sources:
        for table in found.tables:
            s = table.strategy
            other = first.setdefault(s.number, s)
            if other.title != s.title and other.file != s.file:
                problems.append(Problem(s.file, s.line, 0, "", f"strategy {s.number} is titled "
                                        f"{other.title!r} in {other.file}; one number, one title", sheet=table.sheet))


def _check_names_differ(sources: Sequence[SourceFile], problems: list[Problem]) -> None:
    """A source file's IRI is made from its name without the extension: two files must not share one."""
    seen: dict[str, str] = {}
    for found in sources:
        other = seen.setdefault(source_slug(found.path), found.path)
        if other != found.path:
            problems.append(Problem(found.path, 0, 0, "", f"this file and {other} have the same name but for the "
                                    "extension, which their provenance cannot tell apart; rename one"))
