"""The catalogue a portal harvests (issue 14, part 2): each build's description passes the official DCAT-AP
3.0.1 shapes with no violation, names a catalogue, the SPARQL endpoint as a data service and every file with
its format, media type, size, checksum and licence as the profile's vocabularies have them, and is
queryable through /sparql, with the same answers from every kind of worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace

import httpx
import pyshacl
import pytest
import rdflib
from rdflib.namespace import DCTERMS, FOAF, RDF, SH

from lodpub import metadata, published, store
from lodpub.serving.dataset import Embedded
from lodpub.serving.engine import Request
from lodpub.settings import Settings

from conftest import BASE, ROOT, SEED, lodpub

SHAPES = ROOT / "data" / "standards" / "dcat-ap-3.0.1"
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
VCARD = rdflib.Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "http://www.iana.org/assignments/media-types/"
SERIES = rdflib.URIRef(f"{BASE}data/measures")
DUMPS = ("measures.ttl", "measures.nt", "measures.jsonld")
PREFIXES = "PREFIX dcat: <http://www.w3.org/ns/dcat#> "


def dcat_ap_shapes() -> rdflib.Graph:
    """The profile's shapes and class ranges together, as published, but for the property shapes they name
    and never define (README beside them: a SHACL engine refuses the shape naming one; none constrains)."""
    shapes = rdflib.Graph()
    for name in ("dcat-ap-SHACL.ttl", "ranges.ttl"):
        shapes.parse(SHAPES / name, format="turtle")
    for undefined in {o for o in shapes.objects(None, SH.property) if (o, SH.path, None) not in shapes}:
        shapes.remove((None, SH.property, undefined))
    return shapes


def described(dist) -> rdflib.Graph:
    return rdflib.Graph().parse(dist / "void.ttl", format="turtle")


@pytest.mark.parametrize("tree", ["seed_build", "served_dist"])  # a first edition, and one with a predecessor
def test_the_description_passes_the_dcat_ap_3_shapes_with_no_violation(tree, request):
    found = request.getfixturevalue(tree)
    dist = found[0] if isinstance(found, tuple) else found
    _, report, _ = pyshacl.validate(described(dist), shacl_graph=dcat_ap_shapes(), allow_warnings=True)
    violations = sorted(f"{report.value(r, SH.focusNode)} {report.value(r, SH.resultPath)}: "
                        f"{report.value(r, SH.resultMessage)}"
                        for r in report.subjects(SH.resultSeverity, SH.Violation))
    assert violations == [], f"{len(violations)} violations:\n" + "\n".join(violations)


def test_the_catalogue_and_the_data_service_are_there_with_what_the_profile_asks(seed_build):
    dist, _ = seed_build
    void = described(dist)
    edition = rdflib.URIRef(f"{SERIES}/{published.current(dist)}")
    [catalog] = void.subjects(RDF.type, DCAT.Catalog)
    assert {t.language for t in void.objects(catalog, DCTERMS.title)} == {"ja", "en"}
    assert {t.language for t in void.objects(catalog, DCTERMS.description)} == {"ja", "en"}
    assert void.value(catalog, DCTERMS.publisher) == rdflib.URIRef(f"{BASE}id/org/tmg")
    assert void.value(catalog, FOAF.homepage) == rdflib.URIRef(BASE)
    assert void.value(catalog, DCTERMS.license) == rdflib.URIRef(EU + "licence/CC_BY_4_0")
    assert rdflib.URIRef(EU + "language/JPN") in set(void.objects(catalog, DCTERMS.language))
    assert void.value(catalog, DCAT.themeTaxonomy) == rdflib.URIRef(EU + "data-theme")
    assert set(void.objects(catalog, DCAT.dataset)) == {SERIES, edition}

    [service] = void.objects(catalog, DCAT.service)
    assert (service, RDF.type, DCAT.DataService) in void
    assert void.value(service, DCAT.endpointURL) == rdflib.URIRef(f"{BASE}sparql")
    assert void.value(service, DCAT.endpointDescription) == rdflib.URIRef(f"{BASE}sparql")
    assert set(void.objects(service, DCAT.servesDataset)) == {SERIES, edition}
    assert void.value(service, DCTERMS.conformsTo) == rdflib.URIRef("https://www.w3.org/TR/sparql11-protocol/")

    for dataset in (SERIES, edition):
        contact = void.value(dataset, DCAT.contactPoint)
        assert (contact, RDF.type, VCARD.Kind) in void and void.value(contact, VCARD.fn) is not None
        assert {k.language for k in void.objects(dataset, DCAT.keyword)} == {"ja", "en"}
        assert void.value(dataset, DCTERMS.spatial) == rdflib.URIRef("http://data.e-stat.go.jp/lod/sac/C13000")
        assert void.value(dataset, DCTERMS.accessRights) == rdflib.URIRef(EU + "access-right/PUBLIC")
        assert void.value(dataset, DCAT.theme) == rdflib.URIRef(EU + "data-theme/GOVE")
        period = void.value(dataset, DCTERMS.temporal)  # the seed's 令和6年度まで: fiscal 2024
        assert (str(void.value(period, DCAT.startDate)), str(void.value(period, DCAT.endDate))) == \
            ("2024-04-01", "2025-03-31")


def test_every_file_is_described_with_the_profiles_vocabularies_and_its_true_size_and_checksum(seed_build):
    dist, _ = seed_build
    void = described(dist)
    name = published.current(dist)
    for dataset, prefix in ((SERIES, f"{BASE}data/"), (rdflib.URIRef(f"{SERIES}/{name}"), f"{BASE}data/{name}/")):
        distributions = set(void.objects(dataset, DCAT.distribution))
        assert len(distributions) == 12  # quality.ttl among them
        for d in distributions:
            file = dist / name / str(d).removeprefix(prefix)
            assert void.value(d, DCAT.downloadURL) == void.value(d, DCAT.accessURL) == d
            assert str(void.value(d, DCAT.mediaType)).startswith(IANA)
            assert str(void.value(d, DCTERMS.format)).startswith(EU + "file-type/")
            assert int(void.value(d, DCAT.byteSize)) == file.stat().st_size
            checksum = void.value(d, SPDX.checksum)
            assert void.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
            assert str(void.value(checksum, SPDX.checksumValue)) == hashlib.sha256(file.read_bytes()).hexdigest()
            assert void.value(d, DCTERMS.license) == rdflib.URIRef(EU + "licence/CC_BY_4_0")
            if file.name.endswith(".gz"):
                assert void.value(d, DCAT.compressFormat) == rdflib.URIRef(IANA + "application/gzip")


def test_every_dump_gzipped_or_not_is_a_void_data_dump(seed_build):
    dist, _ = seed_build
    void = described(dist)
    name = published.current(dist)
    for dataset, prefix in ((SERIES, f"{BASE}data/"), (rdflib.URIRef(f"{SERIES}/{name}"), f"{BASE}data/{name}/")):
        assert {str(d) for d in void.objects(dataset, VOID.dataDump)} == \
            {prefix + dump + gz for dump in DUMPS for gz in ("", ".gz")}


def select(server, query: str) -> list[dict]:
    answer = httpx.get(f"{server.url}/sparql", params={"query": PREFIXES + query})
    assert answer.status_code == 200, answer.text
    return [{k: v["value"] for k, v in row.items()} for row in answer.json()["results"]["bindings"]]


@pytest.mark.every_store  # publish --to gives a store the description too, as tests/stores.py loads it
def test_the_description_is_queryable_through_sparql_and_counted_as_it_is_held(server, served_dist):
    name = published.current(served_dist)
    assert select(server, "SELECT ?d WHERE { ?d a dcat:Dataset } ORDER BY ?d") == \
        [{"d": str(SERIES)}, {"d": f"{SERIES}/{name}"}]
    assert select(server, "SELECT ?c WHERE { ?c a dcat:Catalog }") == [{"c": f"{BASE}#catalog"}]
    assert select(server, "SELECT ?e WHERE { ?s a dcat:DataService ; dcat:endpointURL ?e }") == \
        [{"e": f"{BASE}sparql"}]
    # The endpoint's own count of what it holds is the one its service description and the description state.
    [held] = select(server, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    void = metadata.read_description(served_dist / name)
    assert int(held["n"]) == metadata.endpoint_triples(void, Settings())
    description = rdflib.Graph().parse(data=httpx.get(f"{server.url}/sparql", headers={"Accept": "text/turtle"}).text,
                                       format="turtle")
    assert {int(n) for n in description.objects(None, VOID.triples)} == {int(held["n"])}


def test_every_kind_of_worker_holds_the_description_and_gives_the_same_answer(seed_build, tmp_path):
    """The disk store, the copy in memory and the columnar candidate each load the dump and the description:
    the reference's answer on disk, the copy's, and the candidate's (checked against it) are the same."""
    dist, _ = seed_build
    name = published.current(dist)
    settings = replace(Settings(), workers=2, memory_workers=1, columnar_workers=1, warm_seconds=0)
    queries = [PREFIXES + "SELECT ?d WHERE { ?d a dcat:Dataset } ORDER BY ?d",
               PREFIXES + "SELECT ?c ?t WHERE { ?c a dcat:Catalog ; <http://purl.org/dc/terms/title> ?t } ORDER BY ?t"]

    async def main():
        data = Embedded(dist / name, tmp_path / "cache", settings, name)
        data.engine.local = None  # no answer in the server's process (it reads the disk store): only workers
        await data.start()
        try:
            for _ in range(600):
                if data.ready:
                    break
                await asyncio.sleep(0.1)
            assert data.stats["ready"] == {"disk": 1, "memory": 1, "columnar": 1}
            found = []
            for query in queries:
                request = Request(query=query, fmt="json", max_rows=1000, max_bytes=1 << 20, truncated_link="")
                outcomes = [await data.query(request) for _ in range(2)]  # on disk first, then in memory
                for _ in range(200):  # then the candidate, checked against the reference beside them
                    if not data.engine._checking:
                        break
                    await asyncio.sleep(0.05)
                found.append((outcomes, data.engine._known[request].trusted))
            return found, data.stats["candidates"]
        finally:
            await data.stop()

    found, candidates = asyncio.run(main())
    for outcomes, trusted in found:
        assert [o.store for o in outcomes] == ["disk", "memory"]
        assert outcomes[0].body == outcomes[1].body and json.loads(outcomes[0].body)["results"]["bindings"]
        assert trusted == {"columnar": True}  # maplib's model gave the same answer
    assert candidates["agreed"] == len(found) and candidates["differed"] == 0


def test_a_store_loaded_ahead_of_the_description_gets_it_when_moved_into_place(seed_build, tmp_path):
    """A build loads the query store from the dump while validation runs, before the description is written;
    the store the edition gets holds both, as one built afresh does."""
    dist, _ = seed_build
    edition = (dist / "current").resolve()
    ahead = store.build_ahead(edition / "measures.nt", tmp_path / "caches")
    moved = store.ensure_caches(edition, tmp_path / "caches" / "moved", BASE, edition.name, ahead=ahead)
    fresh = store.ensure_caches(edition, tmp_path / "caches" / "fresh", BASE, edition.name)
    assert len(moved) == len(fresh) == metadata.endpoint_triples(metadata.read_description(edition), Settings())
    assert store.holds(tmp_path / "caches" / "moved" / "store") == ["measures.nt", "void.ttl"]


def test_the_contact_settings_are_published_and_a_wrong_one_is_named_in_one_line(tmp_path):
    out = tmp_path / "dist"
    built = lodpub("build", str(SEED), "--out", str(out), env={"LODPUB_CONTACT_EMAIL": "opendata@example.org",
                                                                "LODPUB_CONTACT_URL": ""})
    assert built.returncode == 0, built.stderr
    void = described(out)
    contact = void.value(SERIES, DCAT.contactPoint)
    assert void.value(contact, VCARD.hasEmail) == rdflib.URIRef("mailto:opendata@example.org")
    assert void.value(contact, VCARD.hasURL) is None
    for name, value in (("CONTACT_URL", "the web site"), ("CONTACT_EMAIL", "opendata at example.org"),
                        ("LICENSE", "CC BY 4.0")):
        refused = lodpub("build", str(SEED), "--out", str(tmp_path / name), env={f"LODPUB_{name}": value})
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [refused.stderr.strip()] and name.lower() in refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / name).exists()
