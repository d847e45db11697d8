"""The places a measure names: its name and summary read against a small gazetteer (``data/places.tsv``).

A measure that names a place links it with ``dcterms:spatial``: a municipality (or 東京都) as its e-Stat
standard area code (``sac:C13207``), 多摩地域 and 島しょ地域 as our own nodes (``/id/area/tama``), which list
their municipalities' codes with ``dcterms:hasPart``. Places are read from the name and the summary, which
say what a measure does and where; not from the department (東京都 there is the publisher), the URL or the
remarks (dates and notes).

A false link is worse than a missing one, so a mention is only what says where a measure acts:

- A municipality by its full name (八王子市; 日野 or 府中 alone is none), not after another prefecture
  (広島県府中市); an alias from the gazetteer (日野キャンパス → 日野市). 大島 alone (a surname too) is none.
- 多摩 is the region as 多摩地域, in 多摩島しょ / 多摩・島しょ, or as a word of its own (多摩の…, 多摩で…),
  never inside a longer word: after a kanji or katakana (奥多摩, 西多摩, 都立多摩…) or before one
  (多摩川, 多摩信用金庫, 多摩産業交流センター, 多摩イノベーションエコシステム促進事業). A proper noun
  beginning with 多摩 names something of its own — a river, a bank, a facility in one city, a project —
  whose extent is not the region's; a project named for the area is linked by what its summary says
  (多摩地域で…), as every such row of the seed table is.
- 島しょ is the islands wherever it stands as a word (島しょ地域, 島しょ山村地域, 多摩・島しょ).
- 東京都 as a whole only as an extent (都内, 東京都内, 都内全域, 東京都全域): 東京都 alone is the
  government (東京都が…, 東京都立大学), not where a measure acts.
- Nothing inside 「…」 (the proper name of an organisation, facility or programme), except a place in
  parentheses there, which says where that thing is (「産業サポートスクエア・TAMA（昭島市）」).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from lodpub import iris
from lodpub.resources import resource_path
from lodpub.vocab import SAC

PLACES = ("data", "places.tsv")
WHOLE = ("都内全域", "東京都全域", "東京都内", "都全域", "都内")  # 東京都 as an extent
# A character that continues a word: kanji (and 々), katakana (but not the middle dot ・), Latin letters and
# digits, half- or full-width.
WORD = re.compile("[\u4e00-\u9fff\u3005"  # kanji
                  "\u30a1-\u30fa\u30fc\uff66-\uff9f"  # katakana, full- and half-width
                  "A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
PROPER = re.compile(r"「[^「」]*」|『[^『』]*』")  # a proper name; its parenthesised notes are still read
NOTE = re.compile(r"[（(][^（）()]*[）)]")


@dataclass(frozen=True, slots=True)
class Place:
    """A place of the gazetteer: a prefecture or municipality by its code, or a group by its ident."""

    code: str  # "13207"; "" for a group
    name: str
    english: str
    kind: str  # prefecture | group | municipality
    group: str  # a group's ident; the group a municipality belongs to

    def iri(self, base: str) -> str:
        return SAC.iri + "C" + self.code if self.code else iris.thing(base, "area", self.group)


@dataclass(frozen=True, eq=False)
class Gazetteer:
    places: tuple[Place, ...]  # the prefecture, the groups, then the municipalities by code
    aliases: dict[str, Place]  # another name → the municipality it lies in

    @property
    def prefecture(self) -> Place:
        return next(p for p in self.places if p.kind == "prefecture")

    def group(self, ident: str) -> Place:
        return next(p for p in self.places if p.kind == "group" and p.group == ident)

    def members(self, group: Place) -> list[Place]:
        return [p for p in self.places if p.kind == "municipality" and p.group == group.group]

    @cached_property
    def names(self) -> dict[str, tuple[Place, ...]]:
        """Every name a mention may take → the places it names."""
        tama, islands = self.group("tama"), self.group("islands")
        out: dict[str, tuple[Place, ...]] = {p.name: (p,) for p in self.places if p.kind == "municipality"}
        out.update({name: (place,) for name, place in self.aliases.items()})
        out.update({"多摩地域": (tama,), "多摩": (tama,), "多摩島しょ": (tama, islands),
                    "島しょ地域": (islands,), "島しょ": (islands,)})
        out.update({name: (self.prefecture,) for name in WHOLE})
        return out

    def find(self, *texts: str) -> list[Place]:
        """The places ``texts`` name, each once, in the gazetteer's order."""
        found: set[Place] = set()
        for text in texts:
            found.update(mentions(self.matcher, self.names, text))
        return [p for p in self.places if p in found]

    @cached_property
    def matcher(self) -> re.Pattern[str]:
        """One pattern of every name, the longest first where several fit at one place."""
        return re.compile("|".join(map(re.escape, sorted(self.names, key=lambda n: (-len(n), n)))))


def mentions(matcher: re.Pattern[str], names: dict[str, tuple[Place, ...]], text: str) -> list[Place]:
    """The places named in ``text`` by the rules above (leftmost, longest names first)."""
    text = PROPER.sub(lambda m: _blank_but_notes(m.group()), text)
    out: list[Place] = []
    for m in matcher.finditer(text):
        name, start, end = m.group(), m.start(), m.end()
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if before and before in "県府道":
            continue  # another prefecture's municipality of the same name (広島県府中市)
        if name.startswith(("多摩", "島しょ", "都")) and before and WORD.match(before) and before != "都":
            continue  # inside a longer word: 奥多摩, 西多摩地域, 都立多摩…, 首都内
        if name == "多摩" and after and WORD.match(after):
            continue  # the start of a proper noun: 多摩川, 多摩信用金庫, 多摩イノベーション…
        out.extend(names[name])
    return out


def _blank_but_notes(span: str) -> str:
    """A proper name's text replaced by spaces, keeping its parenthesised notes (where it is)."""
    kept = [" "] * len(span)
    for note in NOTE.finditer(span):
        kept[note.start():note.end()] = note.group()
    return "".join(kept)


def read(path: Path) -> Gazetteer:
    """The gazetteer in ``path`` (tab-separated: code, name, english, kind, group, source; # comments)."""
    places: list[Place] = []
    aliases: dict[str, Place] = {}
    alias_codes: dict[str, str] = {}
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and line[0] != "#"]
    for line in lines[1:]:  # after the header
        code, name, english, kind, group, _source = (line.split("\t") + [""] * 6)[:6]
        if kind == "alias":
            alias_codes[name] = code
        else:
            places.append(Place(code, name, english, kind, group))
    order = {"prefecture": 0, "group": 1, "municipality": 2}
    places.sort(key=lambda p: (order[p.kind], p.code))  # groups in the file's order
    by_code = {p.code: p for p in places if p.code}
    for name, code in alias_codes.items():
        aliases[name] = by_code[code]
    return Gazetteer(tuple(places), aliases)


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The committed gazetteer."""
    return read(resource_path(*PLACES))
