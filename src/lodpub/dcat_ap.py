"""The catalogue around the dataset, as DCAT-AP 3.0.1 has it: what a portal harvests.

``metadata.describe`` says what the dataset and its files are; this module adds what a portal such as
data.europa.eu looks for (and its metadata quality assessment rewards): a ``dcat:Catalog``, the SPARQL
endpoint as a ``dcat:DataService``, a contact point, keywords in Japanese and English, a theme, spatial and
temporal coverage and access rights, each file's format and media type, all as IRIs of the vocabularies the
profile names (the EU Publications Office's authority tables, IANA's media types, SPDX). The profile's
shapes check each value's class, and a validator reads only the description, so every such IRI is typed
here with the class its property requires (``ranges``), and concepts carry the label the profile asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from pyoxigraph import Literal, NamedNode, Triple

from lodpub import formats
from lodpub.settings import Settings
from lodpub.vocab import DCAT, DCATAP, DCTERMS, FOAF, RDF, RDFS, SAC, SKOS, SPDX, VCARD, XSD

EU = "http://publications.europa.eu/resource/authority/"
IANA = "http://www.iana.org/assignments/media-types/"  # as the profile and the MQA spell them (http)
SPARQL_PROTOCOL = "https://www.w3.org/TR/sparql11-protocol/"
TOKYO = SAC.C13000  # e-Stat's standard area code of 東京都 (the plain code)

# Licences by the IRI a setting may give, with the EU authority table's IRI for each (what the MQA reads as a
# licence "from the vocabulary"); another IRI is published as it is, typed as a licence document.
LICENCES = {
    "https://creativecommons.org/licenses/by/4.0/": "CC_BY_4_0",
    "https://creativecommons.org/licenses/by-sa/4.0/": "CC_BYSA_4_0",
    "https://creativecommons.org/publicdomain/zero/1.0/": "CC0",
}
# A published file's format in the EU file-type table, by extension (its media type is IANA's, formats.py).
FILE_TYPES = {".ttl": "RDF_TURTLE", ".nt": "RDF_N_TRIPLES", ".jsonld": "JSON_LD", ".tsv": "TSV"}

# The class DCAT-AP 3.0.1 requires of the values of each property (its ``sh:class`` constraints).
RANGES: dict[NamedNode, NamedNode] = {
    DCTERMS.license: DCTERMS.LicenseDocument, DCTERMS.language: DCTERMS.LinguisticSystem,
    DCTERMS.publisher: FOAF.Agent, DCTERMS.conformsTo: DCTERMS.Standard, DCTERMS.accessRights:
    DCTERMS.RightsStatement, DCTERMS.rights: DCTERMS.RightsStatement, DCTERMS.spatial: DCTERMS.Location,
    DCTERMS.temporal: DCTERMS.PeriodOfTime, DCTERMS.format: DCTERMS.MediaTypeOrExtent,
    DCAT.mediaType: DCTERMS.MediaType, DCAT.compressFormat: DCTERMS.MediaType, SPDX.algorithm:
    SPDX.ChecksumAlgorithm, DCAT.theme: SKOS.Concept, DCATAP.availability: SKOS.Concept, DCTERMS.type:
    SKOS.Concept, DCAT.themeTaxonomy: SKOS.ConceptScheme, DCAT.contactPoint: VCARD.Kind, DCAT.landingPage:
    FOAF.Document, FOAF.homepage: FOAF.Document, DCAT.endpointURL: RDFS.Resource, DCAT.endpointDescription:
    RDFS.Resource,
}
# What the profile asks of a concept (skos:prefLabel) or a scheme or standard (dcterms:title): the EU
# tables' English labels, and our own.
LABELS = {
    EU + "data-theme/GOVE": "Government and public sector",
    EU + "planned-availability/STABLE": "stable",
    EU + "planned-availability/TEMPORARY": "temporary",
    "http://purl.org/adms/publishertype/RegionalAuthority": "Regional authority",
    EU + "data-theme": "Data theme",
    SPARQL_PROTOCOL: "SPARQL 1.1 Protocol",
}
THEME = NamedNode(EU + "data-theme/GOVE")
PUBLISHER_TYPE = NamedNode("http://purl.org/adms/publishertype/RegionalAuthority")  # a prefecture
STABLE = NamedNode(EU + "planned-availability/STABLE")
TEMPORARY = NamedNode(EU + "planned-availability/TEMPORARY")


def licence(settings: Settings) -> NamedNode:
    code = LICENCES.get(settings.license)
    return NamedNode(EU + "licence/" + code if code else settings.license)


def languages() -> list[NamedNode]:
    """The languages of the data and its description: Japanese, with English names for units and titles."""
    return [NamedNode(EU + "language/JPN"), NamedNode(EU + "language/ENG")]


def public() -> NamedNode:
    return NamedNode(EU + "access-right/PUBLIC")


def media_type(name: str) -> NamedNode:
    fmt = formats.of_file(name)
    return NamedNode(IANA + (fmt.media_type if fmt else "application/octet-stream"))


def file_type(name: str) -> NamedNode | None:
    _, dot, extension = name.rpartition(".")
    code = FILE_TYPES.get("." + extension) if dot else None
    return NamedNode(EU + "file-type/" + code) if code else None


def keywords(settings: Settings) -> list[Literal]:
    """The keywords the settings give (comma-separated), Japanese and English."""
    return [Literal(word.strip(), language=lang) for text, lang in ((settings.keywords_ja, "ja"),
                                                                   (settings.keywords_en, "en"))
            for word in text.split(",") if word.strip()]


def fiscal_span(starts: Iterable[date | None], ends: Iterable[date | None]) -> tuple[date, date] | None:
    """The temporal coverage of the data: from the first day of the earliest fiscal year any measure names
    (``…年度から`` gives its first day, ``…年度まで`` its last) to the last day of the latest (fiscal years run
    1 April to 31 March); None when no measure names one."""
    years = [d.year if d.month >= 4 else d.year - 1 for d in (*starts, *ends) if d is not None]
    if not years:
        return None
    return date(min(years), 4, 1), date(max(years) + 1, 3, 31)


def around(settings: Settings, series: NamedNode, edition: NamedNode, issued: Literal, modified: Literal,
           span: tuple[date, date] | None) -> list[Triple]:
    """The catalogue, the data service, the contact point and the coverage, and what the series and this
    edition say of them (both are harvested as datasets)."""
    base = settings.base
    catalog = NamedNode(base + "#catalog")
    home = NamedNode(base)
    service = NamedNode(settings.sparql_endpoint + "#service")
    endpoint = NamedNode(settings.sparql_endpoint)
    contact = NamedNode(f"{series.value}#contact")
    publisher = NamedNode(f"{base}id/org/tmg")
    out: list[Triple] = []
    add = out.append

    add(Triple(catalog, RDF.type, DCAT.Catalog))
    for lang, title, description in (("ja", settings.catalog_title_ja, settings.description_ja),
                                     ("en", settings.catalog_title_en, settings.description_en)):
        add(Triple(catalog, DCTERMS.title, Literal(title, language=lang)))
        add(Triple(catalog, DCTERMS.description, Literal(description, language=lang)))
    add(Triple(catalog, DCTERMS.publisher, publisher))
    add(Triple(catalog, FOAF.homepage, home))
    add(Triple(catalog, DCTERMS.license, licence(settings)))
    add(Triple(catalog, DCTERMS.issued, issued))
    add(Triple(catalog, DCTERMS.modified, modified))
    add(Triple(catalog, DCTERMS.spatial, TOKYO))
    add(Triple(catalog, DCAT.themeTaxonomy, NamedNode(EU + "data-theme")))
    add(Triple(catalog, DCAT.dataset, series))
    add(Triple(catalog, DCAT.dataset, edition))
    add(Triple(catalog, DCAT.service, service))
    for language in languages():
        add(Triple(catalog, DCTERMS.language, language))

    add(Triple(service, RDF.type, DCAT.DataService))
    add(Triple(service, DCTERMS.title, Literal(f"{settings.title_ja} SPARQL エンドポイント", language="ja")))
    add(Triple(service, DCTERMS.title, Literal(f"{settings.title_en} (SPARQL endpoint)", language="en")))
    add(Triple(service, DCTERMS.description, Literal(
        "SPARQL 1.1 の読み取り専用エンドポイント。データとこの説明を問い合わせられます。", language="ja")))
    add(Triple(service, DCTERMS.description, Literal(
        "A read-only SPARQL 1.1 endpoint over the data and this description; its service description is "
        "answered at the endpoint's URL.", language="en")))
    add(Triple(service, DCAT.endpointURL, endpoint))
    add(Triple(service, DCAT.endpointDescription, endpoint))  # the SPARQL 1.1 Service Description
    add(Triple(service, DCAT.landingPage, endpoint))  # a query form, for a browser
    add(Triple(service, DCTERMS.conformsTo, NamedNode(SPARQL_PROTOCOL)))
    add(Triple(service, DCAT.servesDataset, series))
    add(Triple(service, DCAT.servesDataset, edition))
    add(Triple(service, DCTERMS.publisher, publisher))
    add(Triple(service, DCTERMS.license, licence(settings)))
    add(Triple(service, DCTERMS.accessRights, public()))
    add(Triple(service, DCAT.contactPoint, contact))
    add(Triple(service, DCAT.theme, THEME))
    for word in keywords(settings):
        add(Triple(service, DCAT.keyword, word))

    add(Triple(contact, RDF.type, VCARD.Organization))
    add(Triple(contact, VCARD.fn, Literal(settings.publisher_ja, language="ja")))
    add(Triple(contact, VCARD.fn, Literal(settings.publisher_en, language="en")))
    if settings.contact_url:
        add(Triple(contact, VCARD.hasURL, NamedNode(settings.contact_url)))
    if settings.contact_email:
        add(Triple(contact, VCARD.hasEmail, NamedNode("mailto:" + settings.contact_email)))

    add(Triple(publisher, FOAF.name, Literal(settings.publisher_ja, language="ja")))
    add(Triple(publisher, FOAF.name, Literal(settings.publisher_en, language="en")))
    add(Triple(publisher, DCTERMS.type, PUBLISHER_TYPE))

    period = NamedNode(f"{edition.value}#temporal")
    for dataset in (series, edition):
        add(Triple(dataset, DCAT.contactPoint, contact))
        add(Triple(dataset, DCAT.theme, THEME))
        add(Triple(dataset, DCTERMS.spatial, TOKYO))
        add(Triple(dataset, DCTERMS.accessRights, public()))
        for word in keywords(settings):
            add(Triple(dataset, DCAT.keyword, word))
        if span is not None:
            add(Triple(dataset, DCTERMS.temporal, period))
    add(Triple(series, DCAT.landingPage, home))
    if span is not None:
        add(Triple(period, DCAT.startDate, Literal(span[0].isoformat(), datatype=XSD.date)))
        add(Triple(period, DCAT.endDate, Literal(span[1].isoformat(), datatype=XSD.date)))
    return out


def ranges(description: Sequence[Triple]) -> list[Triple]:
    """Each value typed with the class DCAT-AP requires of it (the profile's shapes read classes, and a
    harvester reads only the description), with the labels concepts, schemes and standards need."""
    typed: dict[Triple, None] = {}
    for t in description:
        cls = RANGES.get(t.predicate)
        if cls is None or not isinstance(t.object, NamedNode):
            continue
        typed[Triple(t.object, RDF.type, cls)] = None
        if cls == VCARD.Kind:
            continue
        label = LABELS.get(t.object.value)
        if label and cls == SKOS.Concept:
            typed[Triple(t.object, SKOS.prefLabel, Literal(label, language="en"))] = None
        elif label:
            typed[Triple(t.object, DCTERMS.title, Literal(label, language="en"))] = None
    return list(typed)

