"""The shapes catch broken graphs, and say so in words a data steward understands."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest

from lodpub.pipeline import validation

from conftest import BASE, lodpub

LP = f"{BASE}def/lodpub#"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
UNIT_OF = "http://www.w3.org/ns/org#unitOf"
SH = "http://www.w3.org/ns/shacl#"


@pytest.fixture(scope="module")
def checker():
    rules = validation.Rules.load(BASE)

    def check(triples):
        return validation.validate(triples, rules, f"{BASE}id/measure/", workers=1)
    return check


@pytest.fixture(scope="module")
def seed_triples(seed_build) -> list[ox.Triple]:
    return [q.triple for q in ox.parse(path=str(seed_build[0] / "measures.nt"), format=ox.RdfFormat.N_TRIPLES)]


def violations(findings):
    return [(f.focus, f.path, f.component.rsplit("#", 1)[-1].rstrip(">")) for f in findings if f.is_violation]


def test_the_seed_graph_conforms(checker, seed_triples):
    assert violations(checker(seed_triples)) == []


def test_a_measure_without_a_name(checker, seed_triples):
    measure = f"{BASE}id/measure/3"
    broken = [t for t in seed_triples if not (t.subject.value == measure and t.predicate.value == RDFS_LABEL)]
    assert violations(checker(broken)) == [(f"<{measure}>", f"<{RDFS_LABEL}>", "MinCountConstraintComponent")]


def test_a_phone_that_is_not_a_tel_iri(checker, seed_triples):
    broken = [ox.Triple(t.subject, t.predicate, ox.Literal("03-5320-7622"))
              if t.predicate.value == LP + "telephone" and t.subject.value.endswith("/contact/1") else t
              for t in seed_triples]
    found = violations(checker(broken))
    assert (f"<{BASE}id/contact/1>", f"<{LP}telephone>", "NodeKindConstraintComponent") in found
    assert {f[0] for f in found} == {f"<{BASE}id/contact/1>"}


def test_a_phone_iri_that_is_not_tel(checker, seed_triples):
    broken = [ox.Triple(t.subject, t.predicate, ox.NamedNode("http://example.org/phone"))
              if t.predicate.value == LP + "telephone" and t.subject.value.endswith("/contact/2") else t
              for t in seed_triples]
    assert violations(checker(broken)) == [(f"<{BASE}id/contact/2>", f"<{LP}telephone>", "PatternConstraintComponent")]


def test_a_unit_without_a_parent(checker, seed_triples):
    unit = f"{BASE}id/unit/2"
    broken = [t for t in seed_triples if not (t.subject.value == unit and t.predicate.value == UNIT_OF)]
    assert violations(checker(broken)) == [(f"<{unit}>", f"<{UNIT_OF}>", "MinCountConstraintComponent")]


def test_a_bureau_under_another_unit(checker, seed_triples):
    bureau, other = f"{BASE}id/unit/1", ox.NamedNode(f"{BASE}id/unit/5")
    broken = [ox.Triple(t.subject, t.predicate, other) if t.subject.value == bureau and t.predicate.value == UNIT_OF
              else t for t in seed_triples]
    assert violations(checker(broken)) == [(f"<{bureau}>", f"<{UNIT_OF}>", "HasValueConstraintComponent")]


def test_an_end_date_before_the_start_date(checker, seed_triples):
    measure = ox.NamedNode(f"{BASE}id/measure/18")
    date = ox.NamedNode("http://www.w3.org/2001/XMLSchema#date")
    broken = [*seed_triples, ox.Triple(measure, ox.NamedNode(LP + "startDate"), ox.Literal("2026-04-01", datatype=date))]
    assert violations(checker(broken)) == [(f"<{measure.value}>", f"<{LP}startDate>",
                                            "LessThanOrEqualsConstraintComponent")]


def test_the_report_names_the_measure_and_its_line(checker, seed_triples):
    measure = f"{BASE}id/measure/3"
    broken = [t for t in seed_triples if not (t.subject.value == measure and t.predicate.value == RDFS_LABEL)]
    lines = validation.describe_findings(checker(broken), lambda iri: f"measure 3 (line 8) <{iri}>")
    assert lines == [f"violation: measure 3 (line 8) <{measure}>: label: 施策名がない、または日本語のラベルが重複しています。 "
                     "Every measure needs exactly one name per language."]


def test_lodpub_validate_accepts_the_dumps_and_rejects_a_broken_file(seed_build, tmp_path):
    dist = seed_build[0]
    for name in ("measures.ttl", "measures.nt", "measures.jsonld"):
        result = lodpub("validate", str(dist / name))
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(": 676 triples, 0 violations, 0 warnings\n")
    broken = tmp_path / "broken.nt"
    lines = (dist / "measures.nt").read_text(encoding="utf-8").splitlines()
    broken.write_text("\n".join(line for line in lines if not line.startswith(f"<{BASE}id/unit/2> <{UNIT_OF}>")) + "\n")
    result = lodpub("validate", str(broken))
    assert result.returncode == 1
    assert f"violation: <{BASE}id/unit/2>: unitOf: 組織には上位の組織（または東京都）がちょうど一つ必要です。" in result.stderr
    assert result.stdout.endswith(": 675 triples, 1 violations, 0 warnings\n")


def test_lodpub_validate_reports_a_syntax_error_without_a_traceback(tmp_path):
    path = Path(tmp_path / "bad.ttl")
    path.write_text("<a> <b> .\n")
    result = lodpub("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}: not valid RDF:")
    assert "Traceback" not in result.stderr


def test_an_invalid_graph_is_never_published_and_the_build_says_which_row(tmp_path, monkeypatch):
    from lodpub.pipeline.build import GraphInvalid, build
    from lodpub.pipeline.publish import Dumps
    from lodpub.register import Register
    from lodpub.settings import Settings

    from conftest import SEED

    original = Dumps.measures

    def losing_a_label(self, triples, rows, count):
        kept = [t for t in triples if not (t.subject.value == f"{BASE}id/measure/3" and t.predicate.value == RDFS_LABEL)]
        return original(self, kept, rows, count)

    monkeypatch.setattr(Dumps, "measures", losing_a_label)
    with pytest.raises(GraphInvalid) as failure:
        build([SEED], tmp_path / "dist", Settings(), Register(), workers=1)
    assert failure.value.lines == [
        f"violation: measure 3 「まちづくり推進コンシェルジュ」 ({SEED} line 8): label: "
        "施策名がない、または日本語のラベルが重複しています。 Every measure needs exactly one name per language."]
    assert not (tmp_path / "dist").exists()


def test_validating_in_parallel_pieces_finds_exactly_what_one_piece_finds(seed_triples):
    rules = validation.Rules.load(BASE)
    broken = [t for t in seed_triples if not (t.predicate.value == RDFS_LABEL and t.subject.value.endswith(
        ("/measure/3", "/measure/17")))]
    broken = [t for t in broken if not (t.subject.value.endswith("/unit/2") and t.predicate.value == UNIT_OF)]
    _, pieces = validation.split(broken, f"{BASE}id/measure/", size=5)
    assert len(pieces) == 4  # the 20 measures really are cut into pieces
    whole = validation.validate(broken, rules, f"{BASE}id/measure/", workers=1, size=100)
    parallel = validation.validate(broken, rules, f"{BASE}id/measure/", workers=2, size=5)
    assert parallel == whole
    assert [f.focus for f in whole if f.is_violation] == [
        f"<{BASE}id/measure/17>", f"<{BASE}id/measure/3>", f"<{BASE}id/unit/2>"]  # the unit once, not once a piece
