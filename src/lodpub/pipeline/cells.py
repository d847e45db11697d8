"""Interpreting a row's cells: names, departments, telephones, URLs, fiscal years.

Only notation is normalised (full-width digits and hyphens, U+3000 between
department levels, surrounding whitespace); when a published value differs from
the cell as written, the cell's text travels with it so nothing is lost.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
import pyoxigraph

from lodpub.pipeline.source import CANONICAL_HEADER, Row
from lodpub.problems import Problem, Severity

PHONE_SEPARATORS = re.compile(r"[\s,、，/／・;；]+")
# 令和6年度まで / 令和元年度から / 平成31年度 / 2025年度まで — the era table is the
# whole of the arithmetic: an era's year N starts in (first year - 1 + N).
ERAS = {"令和": 2019, "平成": 1989, "昭和": 1926}
FISCAL_YEAR = re.compile(r"(?:(令和|平成|昭和)\s*(\d+|元)|(\d{4}))\s*年度\s*(まで|から)")


@dataclass(frozen=True)
class Measure:
    """A row read as a measure; every value as published, plus its provenance."""

    row: Row
    name: str
    summary: str
    department: tuple[str, ...]  # unit names, bureau first
    phones: tuple[str, ...]  # RFC 3966 tel: IRIs
    url: str | None  # an IRI, when the cell is a usable URL
    remarks: str
    start: date | None
    end: date | None
    texts: dict[str, str]  # field → cell text, where it differs from the published value


def fiscal_year_of(match: re.Match[str]) -> int:
    era, year, western = match.group(1), match.group(2), match.group(3)
    if western:
        return int(western)
    return ERAS[era] - 1 + (1 if year == "元" else int(year))


def fiscal_dates(remarks: str) -> tuple[date | None, date | None]:
    """First and last day stated by ``…年度から`` / ``…年度まで`` (fiscal years run April–March)."""
    start = end = None
    for match in FISCAL_YEAR.finditer(unicodedata.normalize("NFKC", remarks)):
        year = fiscal_year_of(match)
        if match.group(4) == "から":
            start = date(year, 4, 1)
        else:
            end = date(year + 1, 3, 31)
    return start, end


@lru_cache(maxsize=1 << 16)  # a table repeats a few hundred numbers thousands of times
def telephones(text: str) -> tuple[tuple[str, ...], str]:
    """Every phone number in a cell as a ``tel:`` IRI, and any text left beside them."""
    normal = unicodedata.normalize("NFKC", text)
    found: list[str] = []
    rest: list[str] = []
    position = 0
    for match in phonenumbers.PhoneNumberMatcher(normal, "JP"):
        iri = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.RFC3966)
        if iri not in found:
            found.append(iri)
        rest.append(normal[position:match.start])
        position = match.end
    rest.append(normal[position:])
    leftover = PHONE_SEPARATORS.sub(" ", "".join(rest)).strip()
    return tuple(found), leftover


def usable_url(text: str) -> bool:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    try:
        pyoxigraph.NamedNode(text)
    except ValueError:
        return False
    return True


def interpret(row: Row, problems: list[Problem]) -> Measure | None:
    """Read one row as a measure; ``None`` (with an error reported) if it cannot be."""
    table = row.table
    failed = False

    def report(key: str, message: str, severity: Severity = Severity.ERROR) -> None:
        nonlocal failed
        failed = failed or severity is Severity.ERROR
        column = table.columns.get(key, 0)
        header = table.headers[column - 1].strip() if column else CANONICAL_HEADER[key]
        problems.append(Problem(table.file, row.line, column, header, message, severity, table.sheet))

    raw = {key: row.cell(key) for key in table.columns}
    value = {key: text.strip() for key, text in raw.items()}
    texts = {key: raw[key] for key in ("name", "summary", "remarks") if raw.get(key, "") != value.get(key, "")}

    name = value["name"]
    if not name:
        report("name", "the measure has no name; every row needs its 施策")
    summary = value.get("summary", "")
    if "summary" in table.columns and not summary:
        report("summary", "the summary (施策概要) is empty", Severity.WARNING)

    department = tuple(value["department"].split())
    if department:
        texts["department"] = raw["department"]
    else:
        report("department", "the responsible department is empty; "
                             "write it as 'bureau division section' separated by spaces")

    phones: tuple[str, ...] = ()
    if value.get("phone"):
        texts["phone"] = raw["phone"]
        phones, leftover = telephones(value["phone"])
        if not phones:
            report("phone", f"{value['phone']!r} is not a telephone number; "
                            "write a Japanese number such as 03-5320-7622")
        elif leftover:
            report("phone", f"{leftover!r} beside the number is kept only as text", Severity.WARNING)
    elif "phone" in table.columns:
        report("phone", "no telephone number: the measure will have no contact point", Severity.WARNING)

    url = value.get("url") or None
    if url and not usable_url(url):
        report("url", f"{url!r} is not a usable web address (http:// or https://…); "
                      "it is kept as text only", Severity.WARNING)
        texts["url"] = raw["url"]
        url = None
    elif url and url != raw["url"]:
        texts["url"] = raw["url"]

    remarks = value.get("remarks", "")
    start, end = fiscal_dates(remarks)
    if failed:
        return None
    return Measure(row, name, summary, department, phones, url, remarks, start, end, texts)
