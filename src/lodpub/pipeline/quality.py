"""The machine-readability report as data (W3C DQV): ``quality.ttl``, beside the SHACL report.

Each rule of ``readability.RULES`` is a ``dqv:Metric`` (its IRI a fragment of the current report,
``/data/quality.ttl#rule-1-11``, so that it dereferences), measured once per source file
(``dqv:QualityMeasurement``: how many findings) and each finding a ``dqv:QualityAnnotation`` whose target
is the row it is about (``lp:SourceRow``, the measure's ``#source``; the table for a header row, the file
otherwise) and whose bodies are the rule and the finding in words, with its line and column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pyoxigraph import BlankNode, Literal, NamedNode, Triple

from lodpub import metadata
from lodpub.pipeline.mapping import Mapper, Record
from lodpub.pipeline.readability import RULES, SOURCE, Finding
from lodpub.pipeline.source import SourceFile
from lodpub.vocab import DCTERMS, DQV, OA, RDF, RDFS, SKOS, XSD

REPORT = metadata.QUALITY
PREFIXES = {"dqv": DQV.iri, "oa": OA.iri, "dcterms": DCTERMS.iri, "skos": SKOS.iri, "rdfs": RDFS.iri,
            "rdf": RDF.iri, "xsd": XSD.iri}


def report_iri(base: str) -> str:
    return f"{base}data/{REPORT}"


def rule_iri(base: str, number: str) -> NamedNode:
    return NamedNode(f"{report_iri(base)}#rule-{number}")


def triples(findings: Sequence[Finding], sources: Sequence[SourceFile], base: str, mapper: Mapper,
            records: Mapping[int, Record]) -> list[Triple]:
    """The report; ``records``: the row of each measure published (the mapping's), to find a finding's row."""
    source_iri, table_iri = mapper.source_iri, mapper.table_iri
    wanted = {(_where(f), f.line) for f in findings}  # a table of 1,000,000 rows has few findings, or none
    rows = {(r.file, r.line): NamedNode(f"{mapper.iri('measure', ident).value}#source")
            for ident, r in records.items() if (r.file, r.line) in wanted} if wanted else {}
    report = NamedNode(report_iri(base))
    dimension = NamedNode(f"{report.value}#machine-readability")
    category = NamedNode(f"{report.value}#ministry-rules")
    ministry = NamedNode(SOURCE)
    out = [Triple(report, RDF.type, DQV.QualityMetadata),
           Triple(report, DCTERMS.title, Literal("機械判読可能性レポート", language="ja")),
           Triple(report, DCTERMS.title, Literal("Machine-readability report of the source tables", language="en")),
           Triple(category, RDF.type, DQV.Category),
           Triple(category, SKOS.prefLabel, Literal("統計表における機械判読可能なデータの表記方法の統一ルール",
                                                    language="ja")),
           Triple(category, SKOS.prefLabel, Literal("Ministry of Internal Affairs and Communications: unified rules "
                                                    "for machine-readable statistical tables (2020)", language="en")),
           Triple(category, RDFS.seeAlso, ministry),
           Triple(dimension, RDF.type, DQV.Dimension),
           Triple(dimension, SKOS.prefLabel, Literal("機械判読可能性", language="ja")),
           Triple(dimension, SKOS.prefLabel, Literal("Machine readability", language="en")),
           Triple(dimension, DQV.inCategory, category)]
    for rule in RULES.values():
        metric = rule_iri(base, rule.number)
        out += [Triple(metric, RDF.type, DQV.Metric),
                Triple(metric, SKOS.notation, Literal(rule.number)),
                Triple(metric, DCTERMS.identifier, Literal(rule.slug)),
                Triple(metric, SKOS.prefLabel, Literal(f"{rule.number} {rule.ja}", language="ja")),
                Triple(metric, SKOS.prefLabel, Literal(f"{rule.number} {rule.en}", language="en")),
                Triple(metric, SKOS.definition, Literal(f"The number of places in a source table that do not meet "
                                                        f"the Ministry's check {rule.number}.", language="en")),
                Triple(metric, DQV.expectedDataType, XSD.integer),
                Triple(metric, DQV.inDimension, dimension),
                Triple(metric, RDFS.seeAlso, ministry)]
    for n, source in enumerate(sources, start=1):
        mine = [f for f in findings if f.file == source.path]
        for rule in RULES.values():
            measurement = BlankNode(f"m{n}-{rule.number}")
            count = sum(1 for f in mine if f.rule == rule.number)
            out += [Triple(measurement, RDF.type, DQV.QualityMeasurement),
                    Triple(measurement, DQV.isMeasurementOf, rule_iri(base, rule.number)),
                    Triple(measurement, DQV.computedOn, source_iri(source.path)),
                    Triple(measurement, DQV.value, Literal(str(count), datatype=XSD.integer))]
    headers = {(t.file, t.header_line): t for s in sources for t in s.tables}
    for n, finding in enumerate(findings, start=1):
        node, body = BlankNode(f"f{n}"), BlankNode(f"f{n}-text")
        table = headers.get((finding.file, finding.line))
        target = rows.get((_where(finding), finding.line)) or (table_iri(table) if table else
                                                               source_iri(finding.file))
        out += [Triple(node, RDF.type, DQV.QualityAnnotation),
                Triple(node, OA.motivatedBy, DQV.qualityAssessment),
                Triple(node, OA.hasTarget, target),
                Triple(node, OA.hasBody, rule_iri(base, finding.rule)),
                Triple(node, OA.hasBody, body),
                Triple(node, DQV.inDimension, dimension),
                Triple(body, RDF.type, OA.TextualBody),
                Triple(body, RDF.value, Literal(str(replace(finding, file=_name(finding.file))), language="en"))]
    return out


def _name(path: str) -> str:
    """A file's name without its directory: the same table gives the same report wherever it is built."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _where(finding: Finding) -> str:
    """The file as a measure's record names it (``Table.where``)."""
    return f"{finding.file} sheet {finding.sheet}" if finding.sheet else finding.file
