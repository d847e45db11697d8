"""Problems found in the input, reported to a person as ``file:line:column``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    file: str
    line: int
    column: int  # 1-based field number in a table; 0 when the whole line is meant
    field: str  # the column's header, e.g. 連絡先; empty when no column is meant
    message: str
    severity: Severity = Severity.ERROR
    sheet: str = ""  # a workbook's sheet: then ``line`` is its row, and a cell is named as in Excel (B12)

    @property
    def where(self) -> str:
        """``file:line:column``, or in a workbook ``file:sheet!B12`` (``file:sheet:12`` for a whole row)."""
        if self.sheet:
            return f"{self.file}:{self.sheet}" + (f"!{column_letter(self.column)}{self.line}" if self.column
                                                  else f":{self.line}")
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")

    def __str__(self) -> str:
        what = f" {self.field}:" if self.field else ""
        return f"{self.where}: {self.severity.value}:{what} {self.message}"


def column_letter(column: int) -> str:
    """A 1-based column number as a spreadsheet names it: 1 → A, 27 → AA."""
    letters = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


class InputError(Exception):
    """The input cannot be published; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is Severity.ERROR]
