"""The dataset's description in DCAT and VoID: what it is, where it came from, what to download."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyoxigraph import Literal, NamedNode, Triple

from .settings import Settings
from .vocab import DCAT, DCTERMS, RDF, SPDX, VOID, XSD, lodpub

IANA = "https://www.iana.org/assignments/media-types/"
MEDIA_TYPES = {
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".jsonld": "application/ld+json",
    ".tsv": "text/tab-separated-values",
}


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


def describe(settings: Settings, data: Sequence[Triple], files: Sequence[FileInfo],
             sources: Sequence[tuple[NamedNode, str, int, str]], modified: str) -> list[Triple]:
    """Triples describing the dataset, its distributions and its sources."""
    base = settings.base
    lp = lodpub(base)
    dataset = NamedNode(settings.dataset_iri)
    out: list[Triple] = []
    add = out.append

    def date(text: str) -> Literal:
        return Literal(text, datatype=XSD.date)

    add(Triple(dataset, RDF.type, DCAT.Dataset))
    add(Triple(dataset, RDF.type, VOID.Dataset))
    add(Triple(dataset, DCTERMS.title, Literal(settings.title_ja, language="ja")))
    add(Triple(dataset, DCTERMS.title, Literal(settings.title_en, language="en")))
    add(Triple(dataset, DCTERMS.description, Literal(settings.description_ja, language="ja")))
    add(Triple(dataset, DCTERMS.description, Literal(settings.description_en, language="en")))
    add(Triple(dataset, DCTERMS.publisher, NamedNode(base + "id/org/tmg")))
    add(Triple(dataset, DCTERMS.license, NamedNode(settings.license)))
    add(Triple(dataset, DCTERMS.issued, date(settings.issued)))
    add(Triple(dataset, DCTERMS.modified, date(modified)))
    add(Triple(dataset, DCTERMS.language, NamedNode("http://id.loc.gov/vocabulary/iso639-1/ja")))
    add(Triple(dataset, DCTERMS.conformsTo, NamedNode(base + "def/shapes")))
    add(Triple(dataset, VOID.vocabulary, NamedNode(str(lp))))
    add(Triple(dataset, VOID.uriSpace, Literal(base + "id/")))
    add(Triple(dataset, VOID.sparqlEndpoint, NamedNode(settings.sparql_endpoint)))
    add(Triple(dataset, VOID.triples, Literal(str(len(data)), datatype=XSD.integer)))
    subjects = {t.subject for t in data}
    add(Triple(dataset, VOID.distinctSubjects, Literal(str(len(subjects)), datatype=XSD.integer)))
    classes = Counter(t.object.value for t in data if t.predicate == RDF.type)
    for iri, count in sorted(classes.items()):
        partition = NamedNode(f"{settings.dataset_iri}#class-{iri.rsplit('#', 1)[-1].rsplit('/', 1)[-1]}")
        add(Triple(dataset, VOID.classPartition, partition))
        add(Triple(partition, VOID["class"], NamedNode(iri)))
        add(Triple(partition, VOID.entities, Literal(str(count), datatype=XSD.integer)))

    for source, name, size, sha in sources:
        add(Triple(dataset, DCTERMS.source, source))
        add(Triple(source, DCTERMS.title, Literal(name)))
        add(Triple(source, DCAT.byteSize, Literal(str(size), datatype=XSD.nonNegativeInteger)))
        _checksum(add, source, sha)

    for info in files:
        url = NamedNode(f"{base}data/{info.name}")
        compressed = info.name.endswith(".gz")
        plain = info.name[:-3] if compressed else info.name
        media = MEDIA_TYPES.get("." + plain.rsplit(".", 1)[-1], "application/octet-stream")
        add(Triple(dataset, DCAT.distribution, url))
        if plain.endswith(".nt"):
            add(Triple(dataset, VOID.dataDump, url))
        add(Triple(url, RDF.type, DCAT.Distribution))
        add(Triple(url, DCTERMS.title, Literal(info.title, language="en")))
        add(Triple(url, DCAT.downloadURL, url))
        add(Triple(url, DCAT.accessURL, url))
        add(Triple(url, DCAT.mediaType, NamedNode(IANA + media)))
        if compressed:
            add(Triple(url, DCAT.compressFormat, NamedNode(IANA + "application/gzip")))
        add(Triple(url, DCAT.byteSize, Literal(str(info.size), datatype=XSD.nonNegativeInteger)))
        add(Triple(url, DCTERMS.license, NamedNode(settings.license)))
        _checksum(add, url, info.sha256)
    return out


def _checksum(add, node: NamedNode, sha256: str) -> None:
    checksum = NamedNode(node.value + "#sha256")
    add(Triple(node, SPDX.checksum, checksum))
    add(Triple(checksum, RDF.type, SPDX.Checksum))
    add(Triple(checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    add(Triple(checksum, SPDX.checksumValue, Literal(sha256, datatype=XSD.hexBinary)))
