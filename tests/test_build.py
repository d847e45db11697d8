"""Building dist/: counts, the dumps and their agreement, metadata, reproducibility, atomicity, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic

from lodpub.pipeline import jsonld, publish
from lodpub.pipeline.build import build
from lodpub.problems import InputError
from lodpub.register import Register
from lodpub.settings import Settings, load_settings

from conftest import BASE, ROOT, SEED, build_text, files_of, lodpub, row, table

DUMPS = ("measures.ttl", "measures.nt", "measures.jsonld")


def source_rows(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.count("\t") == 5 and not line.startswith("施策\t")]


def store_of(dist: Path) -> ox.Store:
    store = ox.Store()
    store.load(path=str(dist / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)
    return store


def select(store: ox.Store, query: str) -> list[tuple]:
    prefix = f"PREFIX lp: <{BASE}def/lodpub#> PREFIX org: <http://www.w3.org/ns/org#> " \
             "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
    return [tuple(None if v is None else v.value for v in solution) for solution in store.query(prefix + query)]


# ------------------------------------------------------------------ counts

def test_the_seed_converts_with_the_counts_of_the_source(seed_build):
    dist, result = seed_build
    rows = source_rows(SEED)
    paths = {" ".join(r[2].split()) for r in rows}
    units = {" ".join(p.split()[:depth]) for p in paths for depth in range(1, len(p.split()) + 1)}
    contacts = {(" ".join(r[2].split()), r[3]) for r in rows}
    assert (result.measures, result.units, result.contacts, result.strategies) == (20, len(units), len(contacts), 1)
    assert (len(units), len(contacts)) == (14, 9)
    store = store_of(dist)
    [(measures,)] = select(store, "SELECT (COUNT(*) AS ?n) { ?m a lp:Measure }")
    [(sections,)] = select(store, "SELECT (COUNT(*) AS ?n) { ?s a lp:Section }")
    assert (int(measures), int(sections)) == (20, 7)
    assert result.triples == len((dist / "measures.nt").read_text(encoding="utf-8").splitlines())


def test_a_section_shared_by_two_measures_is_one_node_and_a_contact_is_one_per_unit_and_phone(seed_build):
    store = store_of(seed_build[0])
    units = select(store, 'SELECT DISTINCT ?u { ?m lp:responsibleUnit ?u . ?u rdfs:label "振興企画課"@ja }')
    assert len(units) == 1
    phones = select(store, 'SELECT ?tel { ?c lp:unit ?u ; lp:telephone ?tel . ?u rdfs:label "振興企画課"@ja } ORDER BY ?tel')
    assert phones == [("tel:+81-3-5388-2406",), ("tel:+81-3-5388-2443",)]


def test_the_unit_chain_reaches_the_government(seed_build):
    store = store_of(seed_build[0])
    chain = select(store, """SELECT ?label ?level { ?m rdfs:label "産業サポートスクエア・TAMA"@ja ;
        lp:responsibleUnit/org:unitOf* ?u . ?u rdfs:label ?label ; lp:level ?level . FILTER(lang(?label) = "ja") }
        ORDER BY ?level""")
    assert chain == [("産業労働局", "1"), ("商工部", "2"), ("創業支援課", "3")]
    [(top,)] = select(store, 'SELECT ?g { ?b a lp:Bureau ; rdfs:label "産業労働局"@ja ; org:unitOf ?g }')
    assert top == f"{BASE}id/org/tmg"


def test_provenance_gives_file_line_and_column_of_each_value(seed_build):
    store = store_of(seed_build[0])
    rows = select(store, """SELECT ?line ?column ?file {
        ?m rdfs:label "産業サポートスクエア・TAMA"@ja ; lp:source ?row .
        ?row lp:line ?line ; lp:table ?t . ?t lp:file/<http://purl.org/dc/terms/title> ?file ;
           lp:column [ lp:property lp:telephoneText ; lp:columnNumber ?column ] }""")
    assert rows == [("25", "4", SEED.name)]
    assert SEED.read_text(encoding="utf-8").splitlines()[24].split("\t")[3] == "03-5320-4761"


# ------------------------------------------------------------------ the dumps

def test_turtle_ntriples_and_jsonld_are_the_same_graph(seed_build):
    dist, _ = seed_build
    turtle = rdflib.Graph().parse(dist / "measures.ttl", format="turtle")
    ntriples = rdflib.Graph().parse(dist / "measures.nt", format="nt")
    document = json.loads((dist / "measures.jsonld").read_text(encoding="utf-8"))
    from_jsonld = rdflib.Graph()
    for t in jsonld.to_triples(document, BASE):  # pyld, with the published context
        from_jsonld.add(tuple(rdflib.util.from_n3(str(term)) for term in (t.subject, t.predicate, t.object)))
    assert len(turtle) == len(ntriples) == len(from_jsonld) > 400
    assert isomorphic(turtle, ntriples)
    assert isomorphic(turtle, from_jsonld)
    for name in DUMPS:
        assert gzip.decompress((dist / f"{name}.gz").read_bytes()) == (dist / name).read_bytes()


def test_the_dump_carries_the_published_context_inline(seed_build):
    dist, _ = seed_build
    document = json.loads((dist / "measures.jsonld").read_text(encoding="utf-8"))
    published = json.loads((dist / "context.jsonld").read_text(encoding="utf-8"))
    assert document["@context"] == published["@context"] == jsonld.context(BASE)["@context"]


def test_jsonld_is_readable_without_rdf_tools(seed_build):
    document = json.loads((seed_build[0] / "measures.jsonld").read_text(encoding="utf-8"))
    measures = [node for node in document["@graph"] if node["type"] == "Measure"]
    assert len(measures) == 20
    m = next(node for node in measures if node["label"]["ja"] == "多摩イノベーションエコシステム促進事業")
    chain = [m["responsibleUnit"]["label"]["ja"], m["responsibleUnit"]["unitOf"]["label"]["ja"],
             m["responsibleUnit"]["unitOf"]["unitOf"]["label"]["ja"]]
    assert chain == ["調整課", "商工部", "産業労働局"]
    assert m["responsibleUnit"]["unitOf"]["unitOf"]["label"]["en"] == "Bureau of Industrial and Labor Affairs"
    assert [c["telephone"] for c in m["contactPoint"]] == ["tel:+81-3-5320-5982"]
    assert (m["remarks"], m["endDate"]) == ("令和6年度まで", "2025-03-31")
    assert m["strategy"]["label"]["ja"] == "持続的な成長を生み、活力にあふれる拠点を形成"
    assert m["source"]["line"] == 23


def test_ntriples_are_sorted_and_turtle_is_prefixed(seed_build):
    dist, _ = seed_build
    lines = (dist / "measures.nt").read_bytes().splitlines()
    assert lines == sorted(lines)
    turtle = (dist / "measures.ttl").read_text(encoding="utf-8")
    assert "@prefix lp: <https://lodpub.example/def/lodpub#> ." in turtle
    assert "measure:1 a lp:Measure" in turtle


def test_ontology_shapes_and_report_are_published(seed_build):
    dist, _ = seed_build
    ontology = rdflib.Graph().parse(dist / "ontology.ttl", format="turtle")
    assert (rdflib.URIRef(f"{BASE}def/lodpub#Measure"), rdflib.RDFS.subClassOf,
            rdflib.URIRef("http://purl.org/vocab/cpsv#PublicService")) in ontology
    shapes = rdflib.Graph().parse(dist / "shapes.ttl", format="turtle")
    assert (None, rdflib.URIRef("http://www.w3.org/ns/shacl#targetClass"),
            rdflib.URIRef(f"{BASE}def/lodpub#Measure")) in shapes
    report = rdflib.Graph().parse(dist / "shacl-report.ttl", format="turtle")
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    assert list(report.objects(None, sh.conforms)) == [rdflib.Literal(True)]


# ------------------------------------------------------------------ metadata

def test_the_dataset_description_tells_the_truth_about_every_file(seed_build):
    dist, result = seed_build
    void = rdflib.Graph().parse(dist / "void.ttl", format="turtle")
    DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
    VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
    SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
    DCT = rdflib.namespace.DCTERMS
    dataset = rdflib.URIRef(f"{BASE}data/measures")
    assert int(void.value(dataset, VOID.triples)) == result.triples
    assert str(void.value(dataset, VOID.uriSpace)) == f"{BASE}id/"
    assert void.value(dataset, VOID.sparqlEndpoint) == rdflib.URIRef(f"{BASE}sparql")
    # The licence the settings name, as the EU's authority table has it (DCAT-AP: tests/test_catalogue.py).
    assert void.value(dataset, DCT.license) == rdflib.URIRef(
        "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0")
    assert {t.language for t in void.objects(dataset, DCT.title)} == {"ja", "en"}
    assert str(void.value(dataset, DCT.issued)) == Settings().issued
    distributions = set(void.objects(dataset, DCAT.distribution))
    names = {str(d).rsplit("/", 1)[-1] for d in distributions}
    assert names >= {"measures.ttl", "measures.nt", "measures.jsonld", "measures.nt.gz", "context.jsonld",
                     "ontology.ttl", "shapes.ttl", "shacl-report.ttl", "quality.ttl"}
    for d in distributions:
        path = dist / str(d).rsplit("/", 1)[-1]
        assert int(void.value(d, DCAT.byteSize)) == path.stat().st_size
        checksum = void.value(void.value(d, SPDX.checksum), SPDX.checksumValue)
        assert str(checksum) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert void.value(d, DCAT.mediaType) is not None
    [source] = void.objects(dataset, rdflib.Namespace("http://www.w3.org/ns/prov#").wasDerivedFrom)
    assert str(void.value(void.value(source, SPDX.checksum), SPDX.checksumValue)) == \
        hashlib.sha256(SEED.read_bytes()).hexdigest()


def test_dates_come_from_source_date_epoch_never_the_clock(tmp_path):
    build([SEED], tmp_path / "a", Settings(), Register(), environ={"SOURCE_DATE_EPOCH": "1735689600"}, workers=1)
    void = (tmp_path / "a" / "void.ttl").read_text(encoding="utf-8")
    assert '"2025-01-01"^^xsd:date' in void


def test_the_licence_is_a_setting(tmp_path):
    result = lodpub("build", str(SEED), "--out", str(tmp_path / "out"),
                    env={"LODPUB_LICENSE": "https://example.org/licence"})
    assert result.returncode == 0, result.stderr
    assert "<https://example.org/licence>" in (tmp_path / "out" / "void.ttl").read_text(encoding="utf-8")


# ------------------------------------------------------------------ reproducible and atomic

def test_a_fresh_build_reproduces_the_committed_dist_byte_for_byte(tmp_path):
    register = tmp_path / "register.tsv"
    shutil.copy(ROOT / "data" / "register.tsv", register)
    settings = load_settings(ROOT / "lodpub.toml", environ={})
    build(sorted((ROOT / "data").glob("*.txt")), tmp_path / "dist", settings, Register.load(register),
          environ={}, workers=1)
    committed = files_of(ROOT / "dist")
    assert sorted(files_of(tmp_path / "dist")) == sorted(committed)
    for name, content in committed.items():
        assert files_of(tmp_path / "dist")[name] == content, name
    assert register.read_bytes() == (ROOT / "data" / "register.tsv").read_bytes()
    assert not (tmp_path / "dist" / "store").exists()  # the server's caches live outside the published tree
    assert (tmp_path / "dist.cache").is_dir()


def test_two_builds_give_identical_trees(tmp_path):
    build([SEED], tmp_path / "one", Settings(), Register(), workers=1)
    build([SEED], tmp_path / "two", Settings(), Register(), workers=1)
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")
    assert len(files_of(tmp_path / "one")) == 1 + 15 + 15  # the pointer, an edition of 15 files, 15 links


def test_bad_input_leaves_the_previous_dist_untouched(tmp_path):
    build_text(tmp_path, table(row()))
    before = files_of(tmp_path / "dist")
    with pytest.raises(InputError):
        build_text(tmp_path, table(row(name="")))
    assert files_of(tmp_path / "dist") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dist-new")] == []


def test_a_build_interrupted_while_writing_leaves_the_previous_dist_untouched(tmp_path, monkeypatch):
    build_text(tmp_path, table(row()))
    before = files_of(tmp_path / "dist")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(publish, "gzip_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_text(tmp_path, table(row(), row(name="追加")))
    assert files_of(tmp_path / "dist") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dist-new")] == []


# ------------------------------------------------------------------ the command line

def test_build_prints_progress_and_a_summary(tmp_path):
    result = lodpub("build", str(SEED), "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    edition = os.readlink(tmp_path / "out" / "current")
    assert result.stdout == f"built {tmp_path}/out/: edition {edition}, the first: 20 measures, 14 units, " \
                            f"9 contacts, 1 strategies, 676 triples, 0 warnings\n" \
                            f"machine-readability: 2 findings of 2 rules (1-11, 1-12); see {tmp_path}/out/quality.ttl\n"
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["read", "map", "validate", "write", "changes", "index"]


def test_building_the_project_uses_data_and_its_register(tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copy(SEED, project / "data")
    result = lodpub("build", "-q", cwd=project)
    assert result.returncode == 0, result.stderr
    assert (project / "dist" / "measures.ttl").exists()
    register = (project / "data" / "register.tsv").read_text(encoding="utf-8")
    assert register == (ROOT / "data" / "register.tsv").read_text(encoding="utf-8")


def test_usage_errors_exit_2(tmp_path):
    assert lodpub("build", "--no-such-flag").returncode == 2
    assert lodpub().returncode == 2
    assert lodpub("build", cwd=tmp_path).returncode == 2  # no tables in data/


def test_a_missing_file_is_a_clear_error(tmp_path):
    result = lodpub("build", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{tmp_path}/nope.txt:0: error: cannot read the file: No such file or directory"


def test_position_by_name_pages_a_listing_exactly_as_order_by_name_does(seed_build):
    store = store_of(seed_build[0])
    ordered = select(store, "SELECT ?m { ?m a lp:Measure ; rdfs:label ?name } ORDER BY ?name ?m")
    ranged = select(store, "SELECT ?m { ?m lp:nameOrder ?n } ORDER BY ?n")
    assert ranged == ordered and len(ranged) == 20
    page = select(store, "SELECT ?m { ?m lp:nameOrder ?n FILTER(?n > 5 && ?n <= 10) } ORDER BY ?n")
    assert page == ordered[5:10]


def test_serve_says_what_to_do_when_nothing_is_built(tmp_path):
    result = lodpub("serve", "--dist", str(tmp_path / "nothing"), "--port", "0")
    assert result.returncode == 1
    assert result.stderr == f"lodpub: {tmp_path}/nothing has no current edition; run 'lodpub build' first\n"
