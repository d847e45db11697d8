"""Finding measures by any part of their Japanese name or summary.

Japanese has no spaces between words, so the index is SQLite FTS5 with the
trigram tokenizer: any substring of three or more characters is found through
the index. Shorter queries (two-character words like 移住 are common) fall back
to a scan of the same table. Name matches rank above summary matches.

The index is ``search.sqlite`` among an edition's caches (``store.py``), written
by ``lodpub build`` from the query store, and by the server when it is missing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
from markupsafe import Markup, escape

from lodpub.vocab import RDF, RDFS, SKOS, lodpub

INDEX = "search.sqlite"
SCHEMA = """
CREATE TABLE measure (id INTEGER PRIMARY KEY, iri TEXT NOT NULL, name TEXT NOT NULL, summary TEXT NOT NULL,
                      former TEXT NOT NULL);
CREATE VIRTUAL TABLE measure_text USING fts5(name, summary, former, content='measure', content_rowid='id',
                                              tokenize='trigram');
CREATE TABLE about (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Hit:
    iri: str
    name: str
    summary: str
    in_name: bool
    former: str = ""  # former names, separated by " / "

    def highlighted(self, query: str, text: str) -> Markup:
        """``text`` with every occurrence of ``query`` in <mark>, everything else escaped."""
        if not query:
            return escape(text)
        parts = text.split(query)
        return Markup(f"<mark>{escape(query)}</mark>").join(escape(p) for p in parts)


def indexed(base: str) -> tuple[str, ...]:
    """What a measure's row is made of: a change to any of these changes its row."""
    return (RDF.type.value, RDFS.label.value, lodpub(base).summary.value, SKOS.hiddenLabel.value)


def _rows(store: ox.Store, base: str, only: set[str] | None = None) -> list[tuple[int, str, str, str, str]]:
    """(number, IRI, name, summary, former names) of every measure, or of those in ``only``."""
    lp = lodpub(base)
    if only is None:  # three scans joined here are much faster than three lookups per measure
        measures = {q.subject.value for q in store.quads_for_pattern(None, RDF.type, lp.Measure)}
        labels = store.quads_for_pattern(None, RDFS.label, None)
        summaries = store.quads_for_pattern(None, lp.summary, None)
        hidden = store.quads_for_pattern(None, SKOS.hiddenLabel, None)
    else:
        nodes = [ox.NamedNode(iri) for iri in sorted(only)]
        measures = {n.value for n in nodes if next(iter(store.quads_for_pattern(n, RDF.type, lp.Measure)), None)}
        labels = [q for n in nodes for q in store.quads_for_pattern(n, RDFS.label, None)]
        summaries = [q for n in nodes for q in store.quads_for_pattern(n, lp.summary, None)]
        hidden = [q for n in nodes for q in store.quads_for_pattern(n, SKOS.hiddenLabel, None)]
    names = {q.subject.value: q.object.value for q in labels
             if q.object.language == "ja" and q.subject.value in measures}
    summary = {q.subject.value: q.object.value for q in summaries}
    former: dict[str, list[str]] = {}
    for q in hidden:
        if q.subject.value in measures:
            former.setdefault(q.subject.value, []).append(q.object.value)
    return sorted((_number(iri), iri, names.get(iri, ""), summary.get(iri, ""), " / ".join(sorted(former.get(iri, []))))
                  for iri in measures)


def _rows_of_dump(dump: Path, base: str) -> Iterator[tuple[int, str, str, str, str]]:
    """The rows ``_rows`` gives, read from the edition's sorted N-Triples in one pass that holds no more than a
    few thousand lines: a subject's lines are next to each other there. Rows come in the dump's order."""
    lp = lodpub(base)
    typed = f"> <{RDF.type.value}> <{lp.Measure.value}> .\n".encode()
    wanted = (f"> <{RDFS.label.value}> ".encode(), f"> <{lp.summary.value}> ".encode(),
              f"> <{SKOS.hiddenLabel.value}> ".encode())
    label, summary_p, hidden = RDFS.label.value, lp.summary.value, SKOS.hiddenLabel.value
    a, measure = RDF.type.value, lp.Measure.value
    subject = ""
    is_measure, name, summary, former = False, "", "", []
    with dump.open("rb") as fh:
        while block := fh.readlines(8 << 20):
            lines = [line for line in block if line.endswith(typed) or any(w in line for w in wanted)]
            for quad in ox.parse(b"".join(lines), format=ox.RdfFormat.N_TRIPLES):
                iri = quad.subject.value
                if iri != subject:
                    if is_measure:
                        yield _number(subject), subject, name, summary, " / ".join(sorted(former))
                    subject, is_measure, name, summary, former = iri, False, "", "", []
                p, o = quad.predicate.value, quad.object
                if p == label:
                    if o.language == "ja":
                        name = o.value
                elif p == summary_p:
                    summary = o.value
                elif p == hidden:
                    former.append(o.value)
                elif p == a and o.value == measure:
                    is_measure = True
    if is_measure:
        yield _number(subject), subject, name, summary, " / ".join(sorted(former))


def build_index(cache: Path, store: ox.Store | None, base: str, version: str, previous: Path | None = None,
                touched: set[str] | None = None, dump: Path | None = None) -> Path:
    """Write ``cache/search.sqlite`` from the store, atomically: afresh, or from the ``previous`` edition's
    index by replacing the rows of the measures ``touched`` (each row's number is its measure's, so both ways
    give the same rows and the same answers). Afresh, the rows are read from the edition's sorted ``dump`` when
    it is given (the same rows, streamed: the store would have to be read into memory whole)."""
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".search-new-")
    os.close(fd)
    try:
        if previous is not None and touched is not None:
            shutil.copyfile(previous, tmp)
            with sqlite3.connect(tmp) as db:
                for iri in sorted(touched):
                    old = db.execute("SELECT id, name, summary, former FROM measure WHERE id = ?",
                                     (_number(iri),)).fetchone()
                    if old is not None:
                        db.execute("INSERT INTO measure_text (measure_text, rowid, name, summary, former) "
                                   "VALUES ('delete', ?, ?, ?, ?)", old)
                        db.execute("DELETE FROM measure WHERE id = ?", (old[0],))
                rows = _rows(store, base, touched)
                db.executemany("INSERT INTO measure (id, iri, name, summary, former) VALUES (?, ?, ?, ?, ?)", rows)
                db.executemany("INSERT INTO measure_text (rowid, name, summary, former) VALUES (?, ?, ?, ?)",
                               [(r[0], r[2], r[3], r[4]) for r in rows])
                db.execute("UPDATE about SET value = ? WHERE key = 'version'", (version,))
        else:
            with sqlite3.connect(tmp) as db:
                db.executescript(SCHEMA)
                db.executemany("INSERT INTO measure (id, iri, name, summary, former) VALUES (?, ?, ?, ?, ?)",
                               _rows(store, base) if dump is None else _rows_of_dump(dump, base))
                db.execute("INSERT INTO measure_text (measure_text) VALUES ('rebuild')")
                db.execute("INSERT INTO about VALUES ('version', ?)", (version,))
        db.close()
        os.replace(tmp, cache / INDEX)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return cache / INDEX


def ensure_index(cache: Path, store: ox.Store | None, base: str, version: str, dump: Path | None = None) -> Path:
    """The search index in ``cache``, built from the store (or the edition's sorted ``dump``, which needs no
    store) when missing or built for another edition."""
    if index_version(cache / INDEX) == version:
        return cache / INDEX
    return build_index(cache, store, base, version, dump=dump)


def _number(iri: str) -> int:
    """A measure's number (its row's id): the last segment of its IRI."""
    tail = iri.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def index_version(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT value FROM about WHERE key = 'version'").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None


# Answers kept per edition, by (query, limit, offset): an edition never changes, so a kept answer is always
# right, and a two-character word (a scan of every row) costs 0.2-0.8 s of a core at 100,000 measures.
ANSWERS_KEPT = 512


class Search:
    """Read-only queries on the index; one connection per thread (sqlite3 objects are not shared)."""

    def __init__(self, path: Path):
        self.path = path
        self._answers: OrderedDict[tuple[str, int, int], tuple[list[Hit], int]] = OrderedDict()
        self._lock = threading.Lock()  # find() runs in the server's thread pool

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def find(self, query: str, limit: int = 50, offset: int = 0) -> tuple[list[Hit], int]:
        """Matches for ``query`` (whitespace-separated words must all occur), best first, and their count.

        Ranking and paging happen in SQLite, so a common word among 100,000 measures costs one pass.
        """
        key = (query, limit, offset)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        found = self._find(query, limit, offset)
        with self._lock:
            self._answers[key] = found
            if len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)
        return found

    def _find(self, query: str, limit: int, offset: int) -> tuple[list[Hit], int]:
        words = [w for w in query.split() if w]
        if not words:
            return [], 0
        in_name = " * ".join("(instr(m.name, ?) > 0)" for _ in words)
        if all(len(w) >= 3 for w in words):
            match = " AND ".join('"' + w.replace('"', '""') + '"' for w in words)
            source = "measure_text JOIN measure m ON m.id = measure_text.rowid WHERE measure_text MATCH ?"
            where, order = [match], "bm25(measure_text), m.id"
        else:
            source = "measure m WHERE " + " AND ".join("(instr(m.name, ?) OR instr(m.summary, ?) OR "
                                                       "instr(m.former, ?))" for _ in words)
            where, order = [w for w in words for _ in (0, 1, 2)], "m.id"
        db = self._connect()
        try:
            rows = db.execute(f"SELECT m.iri, m.name, m.summary, {in_name} AS in_name, m.former FROM {source} "
                              f"ORDER BY in_name DESC, {order} LIMIT ? OFFSET ?",
                              [*words, *where, limit, offset]).fetchall()
            (total,) = db.execute(f"SELECT COUNT(*) FROM {source}", where).fetchone()
        finally:
            db.close()
        return [Hit(iri, name, summary, bool(flag), former) for iri, name, summary, flag, former in rows], total
