"""The dataset's description in DCAT and VoID: what it is, where it came from, what to download.

The dataset (``/data/measures``) is a DCAT 3 dataset series; each build is an edition of it
(``/data/measures/<edition>``: ``dcat:inSeries``, ``dcat:prev``, ``dcat:version``, ``dcterms:issued``) whose
files have URLs that never change (``/data/<edition>/FILE``). The series keeps the URLs of the current files
(``/data/FILE``), which move on with each edition.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as Date
from pathlib import Path

from pyoxigraph import Literal, NamedNode, RdfFormat, Triple, parse

from lodpub import dcat_ap, formats, iris
from lodpub.settings import Settings
from lodpub.vocab import DCAT, DCATAP, DCTERMS, DQV, PROV, RDF, RDFS, SPDX, VOID, XSD, lodpub

DUMPS = ("measures.ttl", "measures.nt", "measures.jsonld")  # the dataset's own dumps: each a void:dataDump
QUALITY = "quality.ttl"  # the machine-readability report (pipeline/quality.py): dqv:hasQualityMetadata


@dataclass(frozen=True)
class EditionRef:
    """An edition as its description names it: its name, its predecessor's, when it was issued, and every
    edition before it, oldest first (their names and dates stay known after their files are removed)."""

    name: str
    previous: str | None
    issued: str  # an ISO 8601 date, or date and time
    history: tuple[EditionRef, ...] = ()

    @property
    def first(self) -> str:
        return self.history[0].name if self.history else self.name

    def after(self) -> tuple[EditionRef, ...]:
        """The history of the edition that follows this one."""
        return (*self.history, EditionRef(self.name, self.previous, self.issued))


@dataclass(frozen=True)
class Counts:
    """What the description counts in the data: triples, distinct subjects, entities by class."""

    triples: int
    subjects: int
    classes: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, data: Sequence[Triple]) -> Counts:
        classes = Counter(t.object.value for t in data if t.predicate == RDF.type)
        return cls(len(data), len({t.subject for t in data}), tuple(sorted(classes.items())))


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    sha256: str
    title: str

    @classmethod
    def of(cls, name: str, data: bytes, title: str) -> FileInfo:
        return cls(name, len(data), hashlib.sha256(data).hexdigest(), title)


def modified_date(settings: Settings, environ: dict[str, str]) -> str:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds), else the configured date."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), tz=UTC).date().isoformat()
    return settings.modified


def issued_time(settings: Settings, environ: dict[str, str]) -> str:
    """When an edition is issued: ``SOURCE_DATE_EPOCH`` to the second when set, else ``modified``."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return settings.modified


def moment(issued: str) -> datetime:
    """When an edition was issued, as an aware datetime (a date alone is its midnight, UTC)."""
    when = datetime.fromisoformat(issued.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def edition_iri(settings: Settings, name: str) -> NamedNode:
    return NamedNode(f"{settings.dataset_iri}/{name}")


def date(text: str) -> Literal:
    """An ISO 8601 date, or date and time, as the literal of its type."""
    return Literal(text, datatype=XSD.dateTime if "T" in text else XSD.date)


def describe(settings: Settings, counts: Counts, files: Sequence[FileInfo],
             sources: Sequence[tuple[NamedNode, str, int, str]], modified: str,
             edition: EditionRef, span: tuple[Date, Date] | None = None) -> list[Triple]:
    """Triples describing the dataset series, this edition, their distributions and sources, and the catalogue
    around them (``dcat_ap.py``); ``span``: the temporal coverage of the data. ``void:triples`` counts the
    dataset's triples (those of its dumps), never the description's."""
    base = settings.base
    lp = lodpub(base)
    dataset = NamedNode(settings.dataset_iri)
    out: list[Triple] = []
    add = out.append

    add(Triple(dataset, RDF.type, DCAT.Dataset))
    add(Triple(dataset, RDF.type, DCAT.DatasetSeries))
    add(Triple(dataset, RDF.type, VOID.Dataset))
    add(Triple(dataset, DCTERMS.title, Literal(settings.title_ja, language="ja")))
    add(Triple(dataset, DCTERMS.title, Literal(settings.title_en, language="en")))
    add(Triple(dataset, DCTERMS.description, Literal(settings.description_ja, language="ja")))
    add(Triple(dataset, DCTERMS.description, Literal(settings.description_en, language="en")))
    add(Triple(dataset, DCTERMS.publisher, NamedNode(iris.government(base))))
    add(Triple(dataset, DCTERMS.license, dcat_ap.licence(settings)))
    add(Triple(dataset, DCTERMS.issued, date(settings.issued)))
    add(Triple(dataset, DCTERMS.modified, date(modified)))
    for language in dcat_ap.languages():
        add(Triple(dataset, DCTERMS.language, language))
    add(Triple(dataset, DCTERMS.conformsTo, NamedNode(base + "def/shapes")))
    add(Triple(dataset, VOID.vocabulary, NamedNode(str(lp))))
    add(Triple(dataset, VOID.uriSpace, Literal(iris.space(base))))
    add(Triple(dataset, VOID.sparqlEndpoint, NamedNode(settings.sparql_endpoint)))
    add(Triple(dataset, VOID.triples, Literal(str(counts.triples), datatype=XSD.integer)))
    add(Triple(dataset, VOID.distinctSubjects, Literal(str(counts.subjects), datatype=XSD.integer)))
    for iri, count in counts.classes:
        partition = NamedNode(f"{settings.dataset_iri}#class-{iri.rsplit('#', 1)[-1].rsplit('/', 1)[-1]}")
        add(Triple(dataset, VOID.classPartition, partition))
        add(Triple(partition, VOID["class"], NamedNode(iri)))
        add(Triple(partition, VOID.entities, Literal(str(count), datatype=XSD.integer)))

    for source, name, size, sha in sources:  # a file, not a dcat:Dataset (which dcterms:source would name)
        add(Triple(dataset, PROV.wasDerivedFrom, source))
        add(Triple(source, DCTERMS.title, Literal(name)))
        add(Triple(source, DCAT.byteSize, Literal(str(size), datatype=XSD.nonNegativeInteger)))
        _checksum(add, source, sha)

    this = edition_iri(settings, edition.name)
    add(Triple(dataset, DCAT.first, edition_iri(settings, edition.first)))
    add(Triple(dataset, DCAT.last, this))
    add(Triple(this, RDF.type, DCAT.Dataset))
    add(Triple(this, RDF.type, VOID.Dataset))
    add(Triple(this, DCAT.inSeries, dataset))
    add(Triple(this, DCAT.version, Literal(edition.name)))
    for earlier in (*edition.history, edition):
        node = edition_iri(settings, earlier.name)
        if earlier is not edition:
            add(Triple(node, DCAT.inSeries, dataset))
            add(Triple(node, DCAT.version, Literal(earlier.name)))
            add(Triple(node, DCTERMS.issued, date(earlier.issued)))
        if earlier.previous:
            add(Triple(node, DCAT.prev, edition_iri(settings, earlier.previous)))
    add(Triple(this, DCTERMS.title, Literal(f"{settings.title_ja}（版 {edition.name}）", language="ja")))
    add(Triple(this, DCTERMS.title, Literal(f"{settings.title_en} (edition {edition.name})", language="en")))
    add(Triple(this, DCTERMS.description, Literal(f"{settings.description_ja}（版 {edition.name}）", language="ja")))
    add(Triple(this, DCTERMS.description, Literal(f"{settings.description_en} Edition {edition.name}.",
                                                  language="en")))
    add(Triple(this, DCTERMS.issued, date(edition.issued)))
    add(Triple(this, DCTERMS.modified, date(edition.issued)))
    add(Triple(this, DCTERMS.publisher, NamedNode(iris.government(base))))
    add(Triple(this, DCTERMS.license, dcat_ap.licence(settings)))
    for language in dcat_ap.languages():
        add(Triple(this, DCTERMS.language, language))
    add(Triple(this, DCTERMS.conformsTo, NamedNode(base + "def/shapes")))
    add(Triple(this, VOID.triples, Literal(str(counts.triples), datatype=XSD.integer)))
    rights = NamedNode(f"{settings.dataset_iri}#rights")
    terms = f"Reuse under the terms of its licence, <{dcat_ap.licence(settings).value}>."
    add(Triple(rights, RDFS.label, Literal(terms, language="en")))
    _distributions(add, settings, dataset, files, f"{base}data/", date(edition.issued), rights)
    _distributions(add, settings, this, files, f"{base}data/{edition.name}/", date(edition.issued), rights)
    out += dcat_ap.around(settings, dataset, this, date(settings.issued), date(modified), span)
    return out


def _distributions(add, settings: Settings, dataset: NamedNode, files: Sequence[FileInfo], prefix: str,
                   issued: Literal, rights: NamedNode) -> None:
    """Each file at its URL under ``prefix``: the current edition's (``/data/FILE``) or this one's."""
    current = prefix.endswith("/data/")
    for info in files:
        url = NamedNode(prefix + info.name)
        compressed = info.name.endswith(".gz")
        plain = info.name[:-3] if compressed else info.name
        add(Triple(dataset, DCAT.distribution, url))
        if plain in DUMPS:
            add(Triple(dataset, VOID.dataDump, url))
        if info.name == QUALITY:  # the machine-readability report on the source tables
            add(Triple(dataset, DQV.hasQualityMetadata, url))
        add(Triple(url, RDF.type, DCAT.Distribution))
        add(Triple(url, DCTERMS.title, Literal(info.title, language="en")))
        add(Triple(url, DCTERMS.description, Literal(
            f"{info.title}: the current edition's file, at a URL that always serves the current edition." if current
            else f"{info.title}: this edition's file, at a URL whose bytes never change.", language="en")))
        add(Triple(url, DCAT.downloadURL, url))
        add(Triple(url, DCAT.accessURL, url))
        add(Triple(url, DCAT.mediaType, dcat_ap.media_type(plain)))
        if (file_type := dcat_ap.file_type(plain)) is not None:
            add(Triple(url, DCTERMS.format, file_type))
        if compressed:
            add(Triple(url, DCAT.compressFormat, NamedNode(dcat_ap.IANA + formats.GZIP.media_type)))
        add(Triple(url, DCAT.byteSize, Literal(str(info.size), datatype=XSD.nonNegativeInteger)))
        add(Triple(url, DCTERMS.issued, issued))
        add(Triple(url, DCTERMS.license, dcat_ap.licence(settings)))
        add(Triple(url, DCTERMS.rights, rights))
        # The current files' URLs stay; an edition's stay while the tree keeps every edition (keep_editions 0).
        add(Triple(url, DCATAP.availability, dcat_ap.STABLE if current or not settings.keep_editions
                   else dcat_ap.TEMPORARY))
        _checksum(add, url, info.sha256)


ENDPOINT_GRAPH = "#default-graph"  # under the endpoint's IRI: what /sparql queries by default, counted


def with_ranges_and_count(settings: Settings, description: Sequence[Triple], data_triples: int,
                          in_data: Callable[[Triple], bool]) -> list[Triple]:
    """The description, each triple once, with its values typed as DCAT-AP requires (``dcat_ap.ranges``) and
    the count of what the endpoint's default graph holds: the dataset's triples and the description's, each
    once (``in_data``: whether the dataset states a triple of the description too, as it does the
    publisher's name). The count's own triple is counted."""
    graph = NamedNode(settings.sparql_endpoint + ENDPOINT_GRAPH)
    note = [Triple(graph, RDF.type, VOID.Dataset),
            Triple(graph, VOID.sparqlEndpoint, NamedNode(settings.sparql_endpoint)),
            Triple(graph, DCTERMS.description, Literal(
                "What the SPARQL endpoint queries: the dataset (its N-Triples dump) and this description, "
                "each triple once.", language="en"))]
    unique = list(dict.fromkeys([*description, *dcat_ap.ranges(description), *note]))
    total = data_triples + sum(1 for t in unique if not in_data(t)) + 1
    return [*unique, Triple(graph, VOID.triples, Literal(str(total), datatype=XSD.integer))]


def endpoint_triples(void: Sequence[Triple], settings: Settings) -> int | None:
    """The triples the endpoint's default graph holds, as ``with_ranges_and_count`` stated them (None in a
    description written before it did)."""
    graph = NamedNode(settings.sparql_endpoint + ENDPOINT_GRAPH)
    return next((int(t.object.value) for t in void if t.subject == graph and t.predicate == VOID.triples), None)


DESCRIPTION = "void.ttl"  # an edition's description, among its files


def read_description(edition: Path) -> list[Triple]:
    """The triples of the description in the directory of an edition."""
    return [q.triple for q in parse(path=str(edition / DESCRIPTION), format=RdfFormat.TURTLE)]


def described_files(void: Sequence[Triple], base: str, edition: str) -> dict[str, tuple[int, str]]:
    """File name → (size, SHA-256) of each file of ``edition``, as its description states them."""
    prefix = f"{base}data/{edition}/"
    sizes = {t.subject.value[len(prefix):]: int(t.object.value) for t in void
             if t.predicate == DCAT.byteSize and t.subject.value.startswith(prefix)}
    sums = {t.subject.value[len(prefix):].removesuffix("#sha256"): t.object.value for t in void
            if t.predicate == SPDX.checksumValue and t.subject.value.startswith(prefix)}
    return {name: (size, sums[name]) for name, size in sizes.items() if name in sums}


def read_edition(void: Sequence[Triple], settings: Settings) -> EditionRef:
    """The edition that a description (``void.ttl``) describes, with its history, as ``describe`` wrote it."""
    series = NamedNode(settings.dataset_iri)
    last = next((t.object for t in void if t.subject == series and t.predicate == DCAT.last), None)
    if last is None:
        raise ValueError(f"no edition of <{series.value}> is described")
    about: dict[str, dict[NamedNode, str]] = {}
    for t in void:
        if t.predicate in (DCAT.version, DCTERMS.issued, DCAT.prev):
            about.setdefault(t.subject.value, {})[t.predicate] = t.object.value.rsplit("/", 1)[-1]
    chain: list[EditionRef] = []
    node: str | None = last.value
    while node is not None and node in about and len(chain) <= len(about):
        known = about[node]
        chain.append(EditionRef(known[DCAT.version], known.get(DCAT.prev), known[DCTERMS.issued]))
        node = f"{series.value}/{known[DCAT.prev]}" if DCAT.prev in known else None
    if node is not None:
        raise ValueError(f"the history of <{last.value}> is broken at <{node}>")
    newest, *older = chain
    return EditionRef(newest.name, newest.previous, newest.issued, tuple(reversed(older)))


def _checksum(add, node: NamedNode, sha256: str) -> None:
    checksum = NamedNode(node.value + "#sha256")
    add(Triple(node, SPDX.checksum, checksum))
    add(Triple(checksum, RDF.type, SPDX.Checksum))
    add(Triple(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    add(Triple(checksum, SPDX.checksumValue, Literal(sha256, datatype=XSD.hexBinary)))
