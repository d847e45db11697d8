"""One resource's statements as an edition published them, read from its sorted N-Triples by binary search.

Every edition's ``measures.nt`` is sorted by bytes, so all the lines about a subject sit together and can be
found in about 30 seeks, whatever the size of the file: no store or index per edition is needed to read an
earlier version of a resource (Memento) or the current name of a changed one. The lines about ``<iri>`` and
about its parts ``<iri#…>`` (a measure's source row) are two such runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyoxigraph as ox


def _line_at(fh: BinaryIO, position: int) -> tuple[int, bytes]:
    """The first line that starts at or after ``position``, and where it starts."""
    if position == 0:
        fh.seek(0)
    else:
        fh.seek(position - 1)
        fh.readline()  # the rest of the line ``position`` falls in (nothing, if it starts a line)
    start = fh.tell()
    return start, fh.readline()


def _run(fh: BinaryIO, size: int, prefix: bytes) -> list[bytes]:
    """Every line that starts with ``prefix``, in a file of lines sorted by bytes."""
    lo, hi = 0, size
    while lo < hi:  # the first position whose next line is >= prefix (or none is left)
        mid = (lo + hi) // 2
        _, line = _line_at(fh, mid)
        if line and line < prefix:
            lo = mid + 1
        else:
            hi = mid
    _, line = _line_at(fh, lo)
    found = []
    while line.startswith(prefix):
        found.append(line)
        line = fh.readline()
    return found


def lines(dump: Path, iri: str, parts: bool = True) -> list[bytes]:
    """The N-Triples lines whose subject is ``iri`` (and, with ``parts``, ``iri#…``)."""
    with dump.open("rb") as fh:
        size = dump.stat().st_size
        found = _run(fh, size, f"<{iri}> ".encode())
        if parts:
            found += _run(fh, size, f"<{iri}#".encode())
    return found


def statements(dump: Path, iri: str, parts: bool = False) -> list[ox.Triple]:
    """The triples about ``iri`` (and its parts) in ``dump``."""
    found = lines(dump, iri, parts)
    return [q.triple for q in ox.parse(b"".join(found), format=ox.RdfFormat.N_TRIPLES)] if found else []


class Snapshot:
    """An edition's dump read as a store of lookups with the subject bound (what a page needs of it)."""

    def __init__(self, dump: Path):
        self.dump = dump

    def quads_for_pattern(self, subject, predicate=None, object=None, graph_name=None) -> list[ox.Quad]:
        if not isinstance(subject, ox.NamedNode):
            raise ValueError("a snapshot answers lookups with the subject bound only")
        return [ox.Quad(t.subject, t.predicate, t.object) for t in statements(self.dump, subject.value)
                if (predicate is None or t.predicate == predicate) and (object is None or t.object == object)]
