"""IRIs never change: reordering, inserting, renaming through the register, withdrawing."""

from __future__ import annotations

import shutil

import httpx
import pyoxigraph as ox
import pytest

from lodpub.register import Register

from conftest import BASE, ROOT, SEED, Server, build_text, lodpub, row, table


def names_to_iris(dist) -> dict[str, str]:
    store = ox.Store()
    store.load(path=str(dist / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
    query = f"SELECT ?m ?name {{ ?m a <{BASE}def/lodpub#Measure> ; <http://www.w3.org/2000/01/rdf-schema#label> ?name }}"
    return {s["name"].value: s["m"].value for s in store.query(query)}


def seed_lines() -> tuple[list[str], list[str]]:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    return lines[:5], lines[5:]


def test_reordered_and_inserted_rows_keep_every_iri(tmp_path):
    path = tmp_path / "register.tsv"
    head, rows = seed_lines()
    first = build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="one")
    assert first.measures == 20
    before = names_to_iris(tmp_path / "one")
    reordered = [*rows[::-1]]
    reordered.insert(7, row(name="新しい施策"))
    build_text(tmp_path, "\n".join(head + reordered), Register.load(path), out="two")
    after = names_to_iris(tmp_path / "two")
    assert {name: after[name] for name in before} == before
    assert after["新しい施策"] == f"{BASE}id/measure/21"


def test_a_measure_renamed_in_the_register_keeps_its_iri(tmp_path):
    path = tmp_path / "register.tsv"
    head, rows = seed_lines()
    build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="one")
    old, new = "まちづくり推進コンシェルジュ", "まちづくり相談コンシェルジュ"
    iri = names_to_iris(tmp_path / "one")[old]
    path.write_text(path.read_text(encoding="utf-8").replace(f"\t{old}\t", f"\t{new}\t"), encoding="utf-8")
    build_text(tmp_path, "\n".join(head + [r.replace(old, new) for r in rows]), Register.load(path), out="two")
    assert names_to_iris(tmp_path / "two")[new] == iri


def test_a_removed_measure_is_withdrawn_and_comes_back_with_its_iri(tmp_path):
    path = tmp_path / "register.tsv"
    head, rows = seed_lines()
    build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="one")
    build_text(tmp_path, "\n".join(head + rows[:2] + rows[3:]), Register.load(path), out="two")
    register = Register.load(path)
    assert register.withdrawn("measure") == [3]
    assert "measure\t3\twithdrawn\tまちづくり推進コンシェルジュ" in (tmp_path / "two" / "register.tsv").read_text()
    build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="three")
    assert Register.load(path).withdrawn("measure") == []
    assert names_to_iris(tmp_path / "three") == names_to_iris(tmp_path / "one")


def test_measures_sharing_a_name_keep_their_own_iris_when_swapped(tmp_path):
    path = tmp_path / "register.tsv"
    a = row(name="同名の施策", department="総務局 行政部 振興企画課")
    b = row(name="同名の施策", department="産業労働局 商工部 調整課", phone="03-5320-5982")
    build_text(tmp_path, table(a, b), Register.load(path), out="one")
    build_text(tmp_path, table(b, a), Register.load(path), out="two")

    def by_department(dist):
        store = ox.Store()
        store.load(path=str(dist / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
        query = f"SELECT ?m ?d {{ ?m <{BASE}def/lodpub#departmentText> ?d }}"
        return {s["d"].value: s["m"].value for s in store.query(query)}
    assert by_department(tmp_path / "one") == by_department(tmp_path / "two")


def test_units_and_contacts_keep_their_iris_when_rows_move(tmp_path):
    path = tmp_path / "register.tsv"
    head, rows = seed_lines()
    build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="one")
    build_text(tmp_path, "\n".join(head + rows[::-1]), Register.load(path), out="two")
    for kind in ("unit", "contact", "strategy"):
        one = sorted(line for line in (tmp_path / "one" / "measures.nt").read_text().splitlines() if f"/id/{kind}/" in
                     line.split(" ")[0])
        two = sorted(line for line in (tmp_path / "two" / "measures.nt").read_text().splitlines() if f"/id/{kind}/" in
                     line.split(" ")[0])
        assert one == two, kind


def test_building_another_table_never_touches_the_project_register(tmp_path):
    register = ROOT / "data" / "register.tsv"
    before = register.read_bytes()
    head, rows = seed_lines()
    other = tmp_path / "other.txt"
    other.write_text("\n".join(head + rows[::-1]) + "\n", encoding="utf-8")
    for out in ("a", "b"):
        result = lodpub("build", str(other), "--out", str(tmp_path / out), "-q")
        assert result.returncode == 0, result.stderr
    assert register.read_bytes() == before
    assert (tmp_path / "a" / "measures.nt").read_bytes() == (tmp_path / "b" / "measures.nt").read_bytes()
    # Without a register, IRIs are numbered in document order.
    last = [r for r in rows if r.strip()][-1]
    assert names_to_iris(tmp_path / "a")[last.split("\t")[0]] == f"{BASE}id/measure/1"


def test_an_explicit_register_is_created_and_then_honoured(tmp_path):
    register = tmp_path / "ids.tsv"
    head, rows = seed_lines()
    other = tmp_path / "other.txt"
    other.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    assert lodpub("build", str(other), "--out", str(tmp_path / "a"), "--register", str(register)).returncode == 0
    other.write_text("\n".join(head + rows[::-1]) + "\n", encoding="utf-8")
    assert lodpub("build", str(other), "--out", str(tmp_path / "b"), "--register", str(register)).returncode == 0
    assert names_to_iris(tmp_path / "a") == names_to_iris(tmp_path / "b")


def test_a_broken_register_is_reported_by_line(tmp_path):
    register = tmp_path / "ids.tsv"
    shutil.copy(ROOT / "data" / "register.tsv", register)
    with register.open("a", encoding="utf-8") as fh:
        fh.write("measure\tx\tactive\t名前\t\t\n")
        fh.write("measure\t1\tactive\t重複\t\t\n")
    result = lodpub("build", str(SEED), "--out", str(tmp_path / "out"), "--register", str(register))
    assert result.returncode == 1
    lines = register.read_text(encoding="utf-8").splitlines()
    first = lines.index(next(line for line in lines if line.startswith("measure\t1\t"))) + 1
    assert result.stderr.splitlines()[:2] == [
        f"{register}:{len(lines) - 1}:2: error: id: 'x' is not a number",
        f"{register}:{len(lines)}:2: error: id: measure 1 is already registered at line {first}",
    ]


# ------------------------------------------------------------------ edits between editions

COLUMN = {"name": 0, "summary": 1, "department": 2, "phone": 3, "url": 4, "remarks": 5}
SKOS_HIDDEN = "<http://www.w3.org/2004/02/skos/core#hiddenLabel>"
DCT = "http://purl.org/dc/terms/"


def edit(rows: list[str], which: str, **cells: str) -> list[str]:
    """The rows with the one named ``which`` changed in the given cells."""
    out = []
    for line in rows:
        parts = line.split("\t")
        if parts[0] == which:
            for key, value in cells.items():
                parts[COLUMN[key]] = value
        out.append("\t".join(parts))
    return out


def two_builds(tmp_path, after: list[str]):
    """The seed, then ``after`` (its rows edited), with one register; (second build, IRIs before, after)."""
    path = tmp_path / "register.tsv"
    head, rows = seed_lines()
    build_text(tmp_path, "\n".join(head + rows), Register.load(path), out="one")
    result = build_text(tmp_path, "\n".join(head + after), Register.load(path), out="two")
    return result, names_to_iris(tmp_path / "one"), names_to_iris(tmp_path / "two")


def test_a_measure_renamed_in_the_table_keeps_its_iri_and_its_former_name(tmp_path):
    _, rows = seed_lines()
    old, new = "多摩の魅力発信プロジェクト", "多摩の魅力発信事業"
    result, before, after = two_builds(tmp_path, edit(rows, old, name=new))
    assert after[new] == before[old] == f"{BASE}id/measure/4"
    assert result.warnings == []
    dump = (tmp_path / "two" / "measures.nt").read_text(encoding="utf-8")
    assert f'<{BASE}id/measure/4> {SKOS_HIDDEN} "{old}"@ja .' in dump
    assert f"measure\t4\tactive\t{new}\t" in (tmp_path / "register.tsv").read_text(encoding="utf-8")
    assert (tmp_path / "register.tsv").read_text(encoding="utf-8").count(f"\t{old}\n") == 1  # a former name


@pytest.mark.parametrize("change", [{"summary": "多摩地域の魅力を発信する。"},  # the summary rewritten
                                    {"department": "産業労働局 商工部 調整課"},  # moved to another section
                                    {"summary": "新しい概要。", "department": "産業労働局 商工部 調整課"}])
def test_a_rewritten_or_moved_measure_keeps_its_iri(tmp_path, change):
    _, rows = seed_lines()
    result, before, after = two_builds(tmp_path, edit(rows, "多摩の魅力発信プロジェクト", **change))
    assert after == before
    assert result.warnings == []


def test_a_measure_split_in_two_gets_new_iris_a_warning_and_successors(tmp_path):
    head, rows = seed_lines()
    old = "多摩の魅力発信プロジェクト"
    [line] = [r for r in rows if r.startswith(old + "\t")]
    halves = [line.replace(old, old + "（観光）", 1), line.replace(old, old + "（移住）", 1)]
    at = rows.index(line)
    result, before, after = two_builds(tmp_path, rows[:at] + halves + rows[at + 1:])
    assert (after[old + "（観光）"], after[old + "（移住）"]) == (f"{BASE}id/measure/21", f"{BASE}id/measure/22")
    assert {k: v for k, v in after.items() if "（" not in k} == {k: v for k, v in before.items() if k != old}
    lines = [5 + at + 1, 5 + at + 2]
    assert [(w.file, w.line, w.column, w.field) for w in result.warnings] == \
        [(str(tmp_path / "table.txt"), n, 1, "施策") for n in lines]
    first = str(result.warnings[0])
    assert f"「{old}（観光）」 has the same department and summary as measure 4 「{old}」" in first
    assert f"so does the row at line {lines[1]}" in first
    assert "run `lodpub register join measure 4 21` and build again" in first
    dump = (tmp_path / "two" / "measures.nt").read_text(encoding="utf-8")
    for n in (21, 22):
        assert f"<{BASE}id/measure/4> <{DCT}isReplacedBy> <{BASE}id/measure/{n}> ." in dump
        assert f"<{BASE}id/measure/{n}> <{DCT}replaces> <{BASE}id/measure/4> ." in dump
    assert "measure\t4\twithdrawn\t" in (tmp_path / "register.tsv").read_text(encoding="utf-8")

    # Joined by hand, the row takes the IRI it had; the IRI it was given for one edition is replaced by it.
    done = lodpub("register", "--register", str(tmp_path / "register.tsv"), "join", "measure", "4", "21")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{tmp_path / 'register.tsv'}: measure 21 is now measure 4 「{old}（観光）」")
    again = build_text(tmp_path, "\n".join(head + rows[:at] + halves + rows[at + 1:]),
                       Register.load(tmp_path / "register.tsv"), out="three")
    third = names_to_iris(tmp_path / "three")
    assert (third[old + "（観光）"], third[old + "（移住）"]) == (f"{BASE}id/measure/4", f"{BASE}id/measure/22")
    assert again.warnings == []
    dump = (tmp_path / "three" / "measures.nt").read_text(encoding="utf-8")
    assert f"<{BASE}id/measure/21> <{DCT}isReplacedBy> <{BASE}id/measure/4> ." in dump
    assert f'<{BASE}id/measure/4> {SKOS_HIDDEN} "{old}"@ja .' in dump


def test_a_split_that_keeps_one_half_as_it_was_keeps_the_iri_for_it(tmp_path):
    _, rows = seed_lines()
    old = "多摩の魅力発信プロジェクト"
    [line] = [r for r in rows if r.startswith(old + "\t")]
    other = line.replace(old, "多摩の物産発信事業", 1).split("\t")
    other[1] = "多摩の物産を発信する。"
    result, before, after = two_builds(tmp_path, [*rows, "\t".join(other)])
    assert after[old] == before[old] and after["多摩の物産発信事業"] == f"{BASE}id/measure/21"
    assert result.warnings == []


def test_a_renamed_unit_keeps_its_iri_and_its_contact_points_follow(tmp_path):
    _, rows = seed_lines()
    renamed = [r.replace("総務局 行政部 振興企画課", "総務局 行政部 企画振興課") for r in rows]
    result, before, after = two_builds(tmp_path, renamed)
    assert after == before and result.warnings == []

    def others(dist):
        return sorted(line for line in (dist / "measures.nt").read_text(encoding="utf-8").splitlines()
                      if "/id/contact/" in line.split(" ")[0] or "/id/unit/" in line.split(" ")[0])
    one, two = others(tmp_path / "one"), others(tmp_path / "two")
    assert [line for line in two if line not in one] == [
        f'<{BASE}id/unit/7> <http://www.w3.org/2000/01/rdf-schema#label> "企画振興課"@ja .',
        f'<{BASE}id/unit/7> {SKOS_HIDDEN} "振興企画課"@ja .']
    register = (tmp_path / "register.tsv").read_text(encoding="utf-8")
    assert "unit\t7\tactive\t総務局 行政部 企画振興課\t\t\t\t総務局 行政部 振興企画課\n" in register
    assert "contact\t3\tactive\t総務局 行政部 企画振興課 tel:+81-3-5388-2443\t" in register


def test_a_withdrawn_iri_links_its_successors_and_a_former_name_still_finds_its_measure(tmp_path):
    _, rows = seed_lines()
    old = "多摩の魅力発信プロジェクト"
    [line] = [r for r in rows if r.startswith(old + "\t")]
    at = rows.index(line)
    halves = [line.replace(old, old + "（観光）", 1), line.replace(old, old + "（移住）", 1)]
    after = edit(rows[:at] + halves + rows[at + 1:], "まちづくり推進コンシェルジュ", name="まちづくり相談窓口")
    two_builds(tmp_path, after)
    server = Server(tmp_path / "two", {"LODPUB_WORKERS": "1"})
    try:
        gone = httpx.get(f"{server.url}/id/measure/4")
        assert gone.status_code == 410
        assert gone.headers["link"] == (f'<{BASE}id/measure/21>; rel="successor-version", '
                                        f'<{BASE}id/measure/22>; rel="successor-version"')
        page = httpx.get(f"{server.url}/id/measure/4", headers={"Accept": "text/html"})
        assert '<a href="/id/measure/21" rel="successor-version">' in page.text
        found = httpx.get(f"{server.url}/search", params={"q": "推進コンシェルジュ", "format": "json"}).json()
        assert [(h["name"], h["former"]) for h in found["results"]] == [("まちづくり相談窓口", ["まちづくり推進コンシェルジュ"])]
        html = httpx.get(f"{server.url}/search", params={"q": "推進コンシェルジュ"}).text
        assert "旧名称: まちづくり<mark>推進コンシェルジュ</mark>" in html
        doc = httpx.get(f"{server.url}/doc/measure/21", headers={"Accept": "text/turtle"}).text
        assert "dcterms:replaces" in doc
    finally:
        server.stop()
