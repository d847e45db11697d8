"""Property-based tests of the reader: whatever the cells hold, the layout round-trips and notation is only notation."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lodpub.pipeline.cells import fiscal_dates, telephones
from lodpub.pipeline.source import parse
from lodpub.problems import Problem

from conftest import HEADER

# Cell text: anything but the layout's own separators, and not blank (a blank name is an error).
cell = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30) \
    .filter(lambda s: s.strip() and "\t" not in s and "【" not in s)
rows = st.lists(st.tuples(cell, cell, cell, cell, cell, cell), min_size=1, max_size=12)


@given(rows, st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=150, deadline=None)
def test_every_row_comes_back_with_its_cells_and_line(data, newline):
    lines = ["", "【戦略3】 性質", HEADER, *("\t".join(r) for r in data), ""]
    problems: list[Problem] = []
    tables, read_rows = parse(newline.join(lines), "p.txt", problems)
    assert problems == []
    assert [r.cells for r in read_rows] == data
    assert [r.line for r in read_rows] == list(range(4, 4 + len(data)))
    assert tables[0].strategy.number == 3


digit = st.sampled_from("0123456789")
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@given(st.sampled_from(["03", "042"]), st.text(digit, min_size=4, max_size=4), st.text(digit, min_size=4, max_size=4),
       st.booleans(), st.sampled_from(["-", "－", "ー"]))
@settings(max_examples=150, deadline=None)
def test_a_phone_is_the_same_iri_however_it_is_written(area, middle, last, full_width, hyphen):
    # Valid subscriber ranges: 03-5xxx-xxxx in the wards, 042-5xx-xxxx in Tama.
    middle = "5" + (middle[1:3] if area == "042" else middle[1:])
    plain = f"{area}-{middle}-{last}"
    written = plain.translate(FULL_WIDTH) if full_width else plain
    written = written.replace("-", hyphen) if hyphen != "ー" else written
    [iri], _ = telephones(plain)
    assert telephones(written)[0] == (iri,)
    assert iri == f"tel:+81-{area[1:]}-{middle}-{last}"


@given(st.integers(min_value=1, max_value=60))
def test_reiwa_fiscal_years_end_on_the_next_march_31(n):
    assert fiscal_dates(f"令和{n}年度まで") == (None, date(2019 + n, 3, 31))
    assert fiscal_dates(f"令和{n}年度から") == (date(2018 + n, 4, 1), None)


@given(st.lists(st.text(st.sampled_from("総務企画課部局室"), min_size=1, max_size=5), min_size=1, max_size=4),
       st.lists(st.sampled_from([" ", "\u3000", "  ", " \u3000"]), min_size=4, max_size=4))
def test_department_levels_split_on_any_spacing(levels, gaps):
    from lodpub.pipeline.cells import interpret

    from conftest import row, table
    text = "".join(level + gap for level, gap in zip(levels, gaps, strict=False))
    with tempfile.TemporaryDirectory() as tmp:
        problems: list[Problem] = []
        _, [read_row] = parse(table(row(department=text)), str(Path(tmp) / "t.txt"), problems)
        measure = interpret(read_row, problems)
    assert measure is not None and measure.department == tuple(levels)
    assert measure.texts["department"] == text
