"""The IRI scheme: what lodpub names, and where each name is answered.

Every resource the build mints is a thing, ``<base>id/<kind>/<ident>``, answered
by a 303 to its document ``/doc/<kind>/<ident>`` (HTML, or RDF by ``Accept`` or
extension); an earlier version of that document is
``/memento/<edition>/<kind>/<ident>``. The vocabulary is ``<base>def/lodpub#``.
Once minted an IRI never changes or goes away (the register keeps them; a
withdrawn one answers 410 and names its successors), so this module is the only
place that spells the scheme, and every module that makes or reads an IRI asks it.
"""

from __future__ import annotations

import re

import phonenumbers

# Kinds numbered by the register (``data/register.tsv``), in the order the register lists them.
REGISTERED = ("strategy", "unit", "contact", "measure")
# Every kind of thing under ``id/``: the registered ones, the government (``org/tmg``), the source files and
# the groups of municipalities a measure may name (``area/tama``, ``area/islands``: data/places.tsv's idents).
KINDS = ("measure", "unit", "contact", "strategy", "org", "source", "area")
GOVERNMENT = "tmg"  # ident of the one ``org``: the Tokyo Metropolitan Government
# What an ident may be: register numbers, ``tmg`` and source slugs; anything else is not ours (404).
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def thing(base: str, kind: str, ident: int | str) -> str:
    """The IRI of a resource, e.g. ``thing(base, "measure", 7)`` → ``<base>id/measure/7``."""
    return f"{base}id/{kind}/{ident}"


def space(base: str, kind: str | None = None) -> str:
    """Where the IRIs of ``kind`` begin (every kind: ``<base>id/``), as a prefix to match."""
    return f"{base}id/{kind}/" if kind else f"{base}id/"


def government(base: str) -> str:
    return thing(base, "org", GOVERNMENT)


def vocabulary(base: str) -> str:
    """Our ontology's namespace."""
    return base + "def/lodpub#"


def parse(base: str, iri: str) -> tuple[str, str] | None:
    """``(kind, ident)`` of one of our things, else None (another site's IRI, a hash IRI, an unknown kind)."""
    prefix = space(base)
    if not iri.startswith(prefix):
        return None
    kind, _, ident = iri[len(prefix):].partition("/")
    return (kind, ident) if kind in KINDS and IDENT.match(ident) else None


def ours(kind: str, ident: str) -> bool:
    """Whether ``/id/<kind>/<ident>`` may name one of our things (its existence is the dataset's to say)."""
    return kind in KINDS and bool(IDENT.match(ident))


def document(kind: str, ident: int | str) -> str:
    """The path of a thing's document."""
    return f"/doc/{kind}/{ident}"


def memento(edition: str, kind: str, ident: int | str) -> str:
    """The path of a thing's document as ``edition`` published it (it never changes)."""
    return f"/memento/{edition}/{kind}/{ident}"


def timegate(kind: str, ident: int | str) -> str:
    """The path that answers ``Accept-Datetime`` for a thing's document (Memento, RFC 7089)."""
    return f"/timegate/{kind}/{ident}"


def timemap(kind: str, ident: int | str) -> str:
    """The path that lists every version of a thing's document."""
    return f"/timemap/{kind}/{ident}"


def national(tel: str) -> str:
    """``tel:+81-3-5320-7622`` → ``03-5320-7622``, the way people write it."""
    number = phonenumbers.parse(tel[4:], None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
