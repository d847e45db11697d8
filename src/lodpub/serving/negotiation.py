"""HTTP content negotiation: q-values, wildcards, and a ``format=`` escape hatch, among the formats of
``formats.py``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from lodpub.formats import Format


class NotAcceptable(Exception):
    def __init__(self, offered: Sequence[Format]):
        self.offered = offered
        super().__init__("none of the formats the client accepts can be produced; available: "
                         + ", ".join(f.media_type for f in offered))


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """``Accept`` as (media range, q) pairs, most preferred first; a missing header accepts anything."""
    if not header or not header.strip():
        return [("*/*", 1.0)]
    ranges = []
    for order, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        if media == "*":
            media = "*/*"
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranges.append((media, q, specificity, order))
    ranges.sort(key=lambda r: (-r[1], -r[2], r[3]))
    return [(media, q) for media, q, _, _ in ranges]


def _quality(fmt: Format, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """The q the client gives this format (the most specific matching range decides), and how specific."""
    best: tuple[int, float] | None = None
    for media, q in ranges:
        if fmt.matches(media):
            specificity = 2
        elif media.endswith("/*") and fmt.media_type.startswith(media[:-1]):
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return (best[1], best[0]) if best else (0.0, -1)


@lru_cache(maxsize=1024)  # clients send a handful of distinct headers, and this runs on every request
def choose_or_first(offered: Sequence[Format], accept: str | None, requested: str | None = None) -> Format:
    """``choose``, but the first format offered (a page, say) where none fits: for answers whose every form
    is useful to anyone, rather than a 406."""
    try:
        return choose(offered, accept, requested)
    except NotAcceptable:
        return offered[0]


def choose(offered: Sequence[Format], accept: str | None, requested: str | None = None) -> Format:
    """The format to answer in: ``format=`` if given, else the client's best by q, ties to our order."""
    if requested:
        wanted = requested.strip().lower()
        for fmt in offered:
            if wanted == fmt.name or fmt.matches(wanted):
                return fmt
        raise NotAcceptable(offered)
    ranges = parse_accept(accept)
    scored = [(_quality(fmt, ranges), -i, fmt) for i, fmt in enumerate(offered)]
    (q, _), _, fmt = max(scored, key=lambda s: (s[0][0], s[0][1], s[1]))
    if q <= 0:
        raise NotAcceptable(offered)
    return fmt


@lru_cache(maxsize=256)
def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` lets an answer be gzipped: ``gzip`` (or ``*``) with a q above 0. Without
    the header nothing is compressed, as browsers and HTTP libraries always send it when they can decode."""
    if not header or not header.strip():
        return False
    quality = {coding: q for coding, q in reversed(parse_accept(header))}  # the most preferred mention wins
    for coding in ("gzip", "x-gzip", "*/*"):
        if coding in quality:
            return quality[coding] > 0
    return False
