"""The graph is written as it is mapped, a batch of measures at a time: every file is byte for byte what the
whole graph held in memory gives, the validation pieces are those of the graph in memory, and the sorted
dump is the same however many runs its sort takes."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyoxigraph as ox
import pytest

from lodpub import iris, metadata
from lodpub.pipeline import jsonld, publish, validation
from lodpub.pipeline.build import read_sources
from lodpub.pipeline.mapping import Collected, Mapper
from lodpub.register import Register
from lodpub.vocab import prefixes

from conftest import BASE, SEED, generated_table, row, table

MEASURES = iris.space(BASE, "measure")
NAMES = prefixes(BASE) | {kind: iris.space(BASE, kind) for kind in iris.REGISTERED}


def mapped(paths: list[Path], sink, batch: int, register: Register | None = None):
    sources, measures = read_sources(paths, None, [])
    return Mapper(BASE, register or Register()).map(sources, measures, sink, batch)


def streamed(tmp_path: Path, paths: list[Path], batch: int, register: Register | None = None) -> publish.Dumps:
    (tmp_path / "edition").mkdir()
    (tmp_path / "scratch").mkdir()
    dumps = publish.Dumps(tmp_path / "edition", tmp_path / "scratch", BASE, NAMES, MEASURES, batch)
    mapped(paths, dumps, batch, register)
    dumps.close()
    return dumps


def withdrawn_register(tmp_path: Path) -> Path:
    """A register in which measures 1 and 2 were withdrawn in favour of others: their tombstones are
    resources of the pieces that come after every batch."""
    first = tmp_path / "first.txt"
    first.write_text(table(row(name="消える施策", summary="一"), row(name="もう一つ消える施策", summary="二")),
                     encoding="utf-8")
    register = Register()
    mapped([first], Collected(), 5, register)
    for ident in (1, 2):
        register.get("measure", ident).replaced_by = (3,)
    register.save(tmp_path / "register.tsv")
    return tmp_path / "register.tsv"


@pytest.mark.parametrize("batch", [1, 3, 7, 4000])
def test_the_dumps_written_batch_by_batch_are_those_of_the_whole_graph(tmp_path, batch):
    paths = [SEED, generated_table(tmp_path, 23)]
    register = withdrawn_register(tmp_path)
    whole = Collected()
    graph = mapped(paths, whole, batch, Register.load(register))
    dumps = streamed(tmp_path, paths, batch, Register.load(register))
    assert any(t.predicate.value.endswith("isReplacedBy") for t in whole.triples)
    assert dumps.triples == len(whole.triples) == len(graph)

    turtle = tmp_path / "whole.ttl"
    publish.write_turtle(turtle, whole.triples, NAMES)
    assert (tmp_path / "edition" / "measures.ttl").read_bytes() == turtle.read_bytes()
    document = io.StringIO()
    jsonld.write_document(document, whole.triples, BASE)
    assert (tmp_path / "edition" / "measures.jsonld").read_text(encoding="utf-8") == document.getvalue()
    sorted_nt = tmp_path / "whole.nt"
    publish.write_sorted_ntriples(sorted_nt, whole.triples)
    publish.sort_lines(dumps.nt_parts, tmp_path / "streamed.nt", tmp_path / "scratch", run_bytes=4096)
    assert (tmp_path / "streamed.nt").read_bytes() == sorted_nt.read_bytes()
    assert dumps.counts == metadata.Counts.of(whole.triples)


@pytest.mark.parametrize("size", [1, 4, 5, 40])
def test_the_pieces_read_back_are_those_of_the_graph_in_memory(tmp_path, size):
    register = withdrawn_register(tmp_path)
    paths = [generated_table(tmp_path, 18)]
    whole = Collected()
    mapped(paths, whole, size, Register.load(register))
    dumps = streamed(tmp_path, paths, size, Register.load(register))
    core, pieces = validation.split(whole.triples, MEASURES, size)

    def lines(data: bytes) -> list[bytes]:
        return sorted(data.splitlines(keepends=True))
    assert lines(dumps.core()) == lines(ox.serialize(core, format=ox.RdfFormat.N_TRIPLES) or b"")
    read = list(dumps.pieces())
    assert len(read) == len(dumps.pieces()) == len(pieces)
    assert [lines(p) for p in read] == [lines(ox.serialize(p, format=ox.RdfFormat.N_TRIPLES) or b"") for p in pieces]
    assert any(b"isReplacedBy" in p for p in read)  # the withdrawn measures are in the pieces too


def test_validating_the_pieces_finds_what_validating_the_graph_finds(tmp_path):
    paths = [generated_table(tmp_path, 18)]
    whole = Collected()
    mapped(paths, whole, 5)
    dumps = streamed(tmp_path, paths, 5)
    rules = validation.Rules.load(BASE)
    broken = [t for t in whole.triples if not (t.subject.value.endswith("/measure/4") and t.predicate.value ==
                                                "http://www.w3.org/2000/01/rdf-schema#label")]
    expected = validation.validate(broken, rules, MEASURES, workers=1, size=100)
    assert [f.focus for f in expected if f.is_violation] == [f"<{MEASURES}4>"]
    assert validation.check(dumps.core(), dumps.pieces(), rules, workers=2) == \
        validation.validate(whole.triples, rules, MEASURES, workers=1, size=100)


@pytest.mark.parametrize("run_bytes", [1, 100, 10_000, 1 << 30])
def test_the_external_sort_orders_lines_as_sorting_them_in_memory_does(tmp_path, run_bytes):
    spread = random.Random(run_bytes)
    sources = []
    everything: list[bytes] = []
    for n in range(3):
        lines = [f"<x:{spread.randrange(1000)}> <p:{spread.choice('abc')}> \"{spread.random()}\" .\n".encode()
                 for _ in range(spread.randrange(0, 300))] + [b"<x:1> <p:a> \"dup\" .\n"] * 2
        everything += lines
        path = tmp_path / f"part-{n}.nt"
        path.write_bytes(b"".join(lines))
        sources.append(path)
    assert publish.sort_lines(sources, tmp_path / "sorted.nt", tmp_path, run_bytes) == len(everything)
    assert (tmp_path / "sorted.nt").read_bytes() == b"".join(sorted(everything))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0.nt", "part-1.nt", "part-2.nt", "sorted.nt"]


def test_the_search_index_read_from_the_dump_is_the_one_read_from_the_store(tmp_path, seed_build):
    import sqlite3

    from lodpub.search import Search, build_index
    from lodpub.store import build_store, open_read_only

    dist, _ = seed_build
    lines = (dist / "current" / "measures.nt").read_bytes().splitlines(keepends=True)
    hidden = "http://www.w3.org/2004/02/skos/core#hiddenLabel"
    lines += [f'<{MEASURES}3> <{hidden}> "{name}"@ja .\n'.encode() for name in ("旧い名前", "もっと旧い名前")]
    lines += [f'<{MEASURES}3#source> <{hidden}> "行の名前ではない"@ja .\n'.encode()]
    written = tmp_path / "measures.nt"
    written.write_bytes(b"".join(sorted(lines)))
    build_store(written, tmp_path / "cache")
    store = open_read_only(tmp_path / "cache")
    for name, dump in (("from-store", None), ("from-dump", written)):
        (tmp_path / name).mkdir()
        build_index(tmp_path / name, store, BASE, "v", dump=dump)

    def rows(path: Path) -> list[tuple]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT id, iri, name, summary, former FROM measure ORDER BY id").fetchall()
    assert rows(tmp_path / "from-dump" / "search.sqlite") == rows(tmp_path / "from-store" / "search.sqlite")
    assert len(rows(tmp_path / "from-dump" / "search.sqlite")) == 20
    assert rows(tmp_path / "from-dump" / "search.sqlite")[2][4] == "もっと旧い名前 / 旧い名前"
    for query in ("移住", "魅力発信プロジェクト", "相談", "多摩", "旧い名前"):
        assert Search(tmp_path / "from-dump" / "search.sqlite").find(query) == \
            Search(tmp_path / "from-store" / "search.sqlite").find(query)


def test_the_graph_validation_builds_is_the_one_rdflib_builds(seed_build):
    import rdflib

    triples = [q.triple for q in ox.parse(path=str(seed_build[0] / "current" / "measures.nt"),
                                         format=ox.RdfFormat.N_TRIPLES)]
    triples += triples[:5]  # a triple twice is there once
    fast = validation.rdflib_graph(triples, validation.Rules.load(BASE).axioms)
    slow = rdflib.Graph()
    cache: dict = {}
    for t in triples:
        slow.add(tuple(validation.to_rdflib(term, cache) for term in (t.subject, t.predicate, t.object)))
    for axiom in validation.Rules.load(BASE).axioms:
        slow.add(axiom)
    assert len(fast) == len(slow) == len(set(triples)) + len(validation.Rules.load(BASE).axioms)
    assert set(fast) == set(slow)
    label = rdflib.URIRef("http://www.w3.org/2000/01/rdf-schema#label")
    measure = rdflib.URIRef(f"{MEASURES}3")
    for pattern in ((measure, None, None), (None, label, None), (None, None, measure)):
        assert sorted(fast.triples(pattern)) == sorted(slow.triples(pattern))
    assert [len(list(fast.store.contexts(t))) for t in list(fast)[:50]] == \
        [len(list(slow.store.contexts(t))) for t in list(fast)[:50]]


def test_validated_beside_the_mapping_in_small_pieces_a_build_gives_the_same_tree(tmp_path, monkeypatch):
    from lodpub.pipeline.build import build
    from lodpub.settings import Settings

    from conftest import files_of

    build([SEED], tmp_path / "one", Settings(), Register(), workers=1)
    monkeypatch.setattr(validation, "CHUNK_MEASURES", 3)  # seven pieces, in two worker processes
    build([SEED], tmp_path / "many", Settings(), Register(), workers=2)
    assert files_of(tmp_path / "many") == files_of(tmp_path / "one")


def test_a_violation_found_beside_the_mapping_publishes_nothing_and_names_every_row(tmp_path, monkeypatch):
    from lodpub.pipeline.build import GraphInvalid, build
    from lodpub.settings import Settings

    label = "http://www.w3.org/2000/01/rdf-schema#label"
    original = publish.Dumps.measures

    def losing_labels(self, triples, rows, count):
        kept = [t for t in triples if not (t.predicate.value == label and t.subject.value in (
            f"{MEASURES}3", f"{MEASURES}17"))]
        return original(self, kept, rows, count)

    monkeypatch.setattr(publish.Dumps, "measures", losing_labels)
    monkeypatch.setattr(validation, "CHUNK_MEASURES", 4)
    with pytest.raises(GraphInvalid) as failure:
        build([SEED], tmp_path / "dist", Settings(), Register(), workers=2)
    assert [line.split(" 「")[0] for line in failure.value.lines] == ["violation: measure 17", "violation: measure 3"]
    assert f"({SEED} line 8)" in failure.value.lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dist.lock"]  # no edition, no staging, no scratch
