"""The Atom feed of editions (RFC 4287): one entry per edition, newest first, saying what changed in it.

Each edition carries its own ``changes.atom``: its entry, then the entries of the feed of the edition before
it, up to ``ENTRIES`` in all, so a portal or a person subscribed to ``/changes.atom`` sees every new edition.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from markupsafe import Markup

from lodpub.changes import WORDS, Change, counts
from lodpub.settings import Settings

ATOM = "http://www.w3.org/2005/Atom"
ENTRIES = 50  # editions listed in a feed
ITEMS = 100  # changes listed in an entry; the rest are counted
ET.register_namespace("", ATOM)


def _atom_time(issued: str) -> str:
    return issued if "T" in issued else issued + "T00:00:00Z"


def summary(changes: list[Change], first: bool) -> str:
    """The entry's title: what changed among the measures, in Japanese and English."""
    if first:
        return "最初の版 / the first edition"
    n = counts(changes)
    parts = [(WORDS[key], n[key]) for key in WORDS if n[key]]
    if not parts and not n["other"]:
        return "施策の変更なし / no change to the measures"
    ja = "・".join(f"{words[0]} {count:,}" for words, count in parts) or "施策の変更なし"
    en = ", ".join(f"{count:,} {words[1]}" for words, count in parts) or "no change to the measures"
    other = f"（ほか組織・連絡先 {n['other']:,}）" if n["other"] else ""
    return f"施策: {ja}{other} / measures: {en}"


def write(path: Path, settings: Settings, edition: str, issued: str, changes: list[Change], first: bool,
          previous_feed: Path | None) -> None:
    """``changes.atom`` for ``edition``: its entry, then those of the feed before it."""
    base = settings.base
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": "ja"})
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base}changes"
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"{settings.title_ja}: 版と変更 / {settings.title_en}: editions"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _atom_time(issued)
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "type": "application/atom+xml",
                                            "href": f"{base}changes.atom"})
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html", "href": f"{base}changes"})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = settings.publisher_ja
    ET.SubElement(feed, f"{{{ATOM}}}rights").text = settings.license

    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    ET.SubElement(entry, f"{{{ATOM}}}id").text = f"{settings.dataset_iri}/{edition}"
    ET.SubElement(entry, f"{{{ATOM}}}title").text = f"版 {edition}: {summary(changes, first)}"
    ET.SubElement(entry, f"{{{ATOM}}}updated").text = _atom_time(issued)
    ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html",
                                             "href": f"{base}changes/{edition}"})
    ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "related", "type": "text/turtle",
                                             "href": f"{base}data/{edition}/changes.ttl"})
    items = [Markup("<li>{}: <a href=\"{}\">{}</a></li>").format(WORDS[c.type][0], c.iri, c.label or c.iri)
             for c in changes[:ITEMS]]
    if len(changes) > ITEMS:
        items.append(Markup("<li>ほか {:,} 件</li>").format(len(changes) - ITEMS))
    ET.SubElement(entry, f"{{{ATOM}}}content", {"type": "html"}).text = str(Markup("<ul>{}</ul>").format(
        Markup("").join(items))) if items else summary(changes, first)

    if previous_feed is not None and previous_feed.exists():
        earlier = ET.parse(previous_feed).getroot().findall(f"{{{ATOM}}}entry")
        feed.extend(earlier[:ENTRIES - 1])
    ET.indent(feed)
    path.write_bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n")
