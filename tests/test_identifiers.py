"""IRIs never change: reordering, inserting, renaming through the register, withdrawing."""

from __future__ import annotations

import shutil

import pyoxigraph as ox

from lodpub.register import Register

from conftest import BASE, ROOT, SEED, build_text, lodpub, row, table


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
