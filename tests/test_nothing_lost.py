"""Nothing is lost: from the published graph alone, rebuild the source table and compare it cell by cell."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import phonenumbers
import pyoxigraph as ox
import pytest

from lodpub.pipeline.build import build
from lodpub.register import Register
from lodpub.settings import Settings

from conftest import BASE, SEED, generated_table

LP = f"{BASE}def/lodpub#"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
UNIT_OF = "http://www.w3.org/ns/org#unitOf"
NOTATION = "http://www.w3.org/2004/02/skos/core#notation"


def graph_of(dist: Path) -> dict[str, dict[str, list[ox.NamedNode | ox.Literal]]]:
    graph: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for quad in ox.parse(path=str(dist / "measures.nt"), format=ox.RdfFormat.N_TRIPLES):
        graph[quad.subject.value][quad.predicate.value].append(quad.object)
    return graph


def one(node: dict, predicate: str, default: str = "") -> str:
    values = node.get(predicate, [])
    assert len(values) <= 1, (predicate, values)
    return values[0].value if values else default


def japanese_label(node: dict) -> str:
    [label] = [v.value for v in node[LABEL] if v.language == "ja"]
    return label


def rebuild(dist: Path) -> tuple[dict[int, str], dict[int, str]]:
    """Line number → the row's text, and line number → its strategy heading, from the graph alone."""
    graph = graph_of(dist)
    rows: dict[int, str] = {}
    headings: dict[int, str] = {}
    measures = [s for s, node in graph.items() if ox.NamedNode(LP + "Measure") in node[
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"]]
    for iri in measures:
        m = graph[iri]
        unit, chain = one(m, LP + "responsibleUnit"), []
        while unit in graph and LP + "level" in graph[unit]:
            chain.append(japanese_label(graph[unit]))
            unit = one(graph[unit], UNIT_OF)
        phones = []
        for contact in m.get(LP + "contactPoint", []):
            tel = one(graph[contact.value], LP + "telephone")
            phones.append(phonenumbers.format_number(phonenumbers.parse(tel[4:]),
                                                     phonenumbers.PhoneNumberFormat.NATIONAL))
        department = " ".join(reversed(chain))
        written_department = one(m, LP + "departmentText")
        assert " ".join(written_department.split()) == department  # the units say what the cell said
        written_phone = one(m, LP + "telephoneText")
        assert "、".join(phones) == unicodedata.normalize("NFKC", written_phone)  # so do the contact points
        cells = [
            one(m, LP + "nameText") or japanese_label(m),
            one(m, LP + "summaryText") or one(m, LP + "summary"),
            written_department,
            written_phone,
            one(m, LP + "urlText") or one(m, LP + "url"),
            one(m, LP + "remarksText") or one(m, LP + "remarks"),
        ]
        line = int(one(graph[one(m, LP + "source")], LP + "line"))
        assert line not in rows, f"two measures claim line {line}"
        rows[line] = "\t".join(cells)
        strategy = graph[one(m, LP + "strategy")]
        headings[line] = f"【{one(strategy, NOTATION)}】 {japanese_label(strategy)}"
        end = one(m, LP + "endDate")
        if end:
            year = int(re.search(r"令和(\d+)年度まで", cells[5]).group(1))
            assert end == f"{2019 + year}-03-31"
    return rows, headings


def assert_same_as_source(source: Path, dist: Path) -> int:
    rows, headings = rebuild(dist)
    lines = source.read_text(encoding="utf-8").splitlines()
    expected = {n: text for n, text in enumerate(lines, start=1) if text.count("\t") == 5 and
                not text.startswith("施策\t")}
    assert len(rows) == len(expected)
    for n, text in expected.items():
        assert rows.get(n) == text, f"line {n}"
        heading = next(lines[k] for k in range(n - 1, -1, -1) if lines[k].startswith("【"))
        assert headings[n] == heading, f"line {n}"
    return len(rows)


def test_the_seed_table_comes_back_cell_for_cell(seed_build):
    assert assert_same_as_source(SEED, seed_build[0]) == 20


@pytest.mark.slow
def test_a_generated_table_of_10000_rows_comes_back_cell_for_cell(tmp_path):
    source = generated_table(tmp_path, 10_000)
    result = build([source], tmp_path / "dist", Settings(), Register())
    assert result.measures == 10_000
    assert assert_same_as_source(source, tmp_path / "dist") == 10_000
