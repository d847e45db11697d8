"""Writing an edition's files: the dumps in each format, their gzips, checksums.

The graph is written as the mapping makes it, a batch of measures at a time (``Dumps``), so that no stage
holds the whole graph: the Turtle and JSON-LD dumps are written in publishing order straight into the edition,
the N-Triples of each part of the graph go to scratch files, from which validation reads its pieces and the
sorted dump is made by an external merge sort (``sort_lines``).
"""

from __future__ import annotations

import gzip
import heapq
import queue
import shutil
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyoxigraph as ox

from lodpub import metadata
from lodpub.pipeline import jsonld
from lodpub.published import naming
from lodpub.vocab import RDF

RUN_BYTES = 768 << 20  # the lines sorted in memory at once; more are sorted in runs and merged from disk
READ_HINT = 16 << 20


def write_bytes(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


def write_sorted_ntriples(path: Path, triples: Iterable[ox.Triple]) -> None:
    """N-Triples, one line per triple in byte order: diffable, and identical for identical graphs."""
    lines = (ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b"").splitlines(keepends=True)
    lines.sort()
    write_bytes(path, lines)


def sort_lines(sources: Sequence[Path], target: Path, scratch: Path, run_bytes: int = RUN_BYTES) -> int:
    """Write every line of ``sources`` (each ending in a line feed) to ``target`` in byte order, as
    ``write_sorted_ntriples`` orders them; at most about ``run_bytes`` of lines are held at once (sorted runs
    beyond that are written to ``scratch`` and merged). Returns the number of lines."""
    runs: list[Path] = []
    lines: list[bytes] = []
    held = count = 0

    def spill() -> None:
        nonlocal lines, held
        lines.sort()
        run = scratch / f"run-{len(runs)}.nt"
        with naming(run):
            write_bytes(run, [b"".join(lines)])
        runs.append(run)
        lines, held = [], 0

    for source in sources:
        with source.open("rb") as fh:
            while block := fh.readlines(READ_HINT):
                lines += block
                held += sum(map(len, block))
                count += len(block)
                if held >= run_bytes:
                    spill()
    with naming(target):
        if not runs:
            lines.sort()
            write_bytes(target, [b"".join(lines)] if lines else [])
            return count
        if lines:
            spill()
        with ExitStack() as files, target.open("wb") as out:
            readers = [files.enter_context(run.open("rb", buffering=1 << 20)) for run in runs]
            out.writelines(heapq.merge(*readers))
    for run in runs:
        run.unlink()
    return count


def write_turtle(path: Path, triples: Iterable[ox.Triple], prefixes: dict[str, str]) -> None:
    ox.serialize(triples, str(path), format=ox.RdfFormat.TURTLE, prefixes=prefixes)


def turtle_text(triples: Iterable[ox.Triple], prefixes: dict[str, str]) -> str:
    return (ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=prefixes) or b"").decode("utf-8")


def with_base(text: str, base: str) -> str:
    """A Turtle file written with relative IRIs, made absolute by stating the base."""
    return f"@base <{base}> .\n{text}"


def gzip_file(path: Path) -> Path:
    """``path.gz`` with no name or time in the header, so the bytes depend on the content only."""
    target = path.with_name(path.name + ".gz")
    with (path.open("rb") as src, target.open("wb") as raw,
          gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz):
        shutil.copyfileobj(src, gz, 1 << 20)
    return target


# ------------------------------------------------------------------ the graph, written as it is mapped

_TYPE = RDF.type.value


class _Part:
    """A file written in pieces, each write naming the file if it fails."""

    def __init__(self, path: Path, mode: str = "wb"):
        self.path = path
        with naming(path):
            self.fh: BinaryIO = path.open(mode, buffering=1 << 20)  # type: ignore[assignment]
        self.size = self.fh.tell()

    def write(self, data: bytes) -> int:
        with naming(self.path):
            self.fh.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        with naming(self.path):
            self.fh.flush()

    def close(self) -> None:
        with naming(self.path):
            self.fh.close()


class Dumps:
    """The sink of a build's mapping (``mapping.Sink``): each triple is written as it comes, and nothing is held
    but one batch of measures, the shared resources (a few thousand, for any number of measures) and the counts
    the description states.

    Into ``edition``: ``measures.ttl`` (the measures' source rows kept aside in ``scratch`` until the last
    measure is written, as publishing order has them after it) and ``measures.jsonld``. Into ``scratch``: the
    N-Triples of the head, the measures, their rows and the tail (``nt_parts``, for the sorted dump), from which
    ``core`` and ``pieces`` give validation its pieces: every resource outside ``piece_prefix`` in each, and
    those within it ``piece_size`` at a time, as ``validation.split`` cuts a graph held in memory. Batches of
    measures hold ``piece_size`` measures but the last, and a measure's subjects (its IRI, its row's) appear
    in its batch only. ``pieces(live=True)``, taken before the mapping starts, gives each piece as soon as it
    is written, so that validation can run beside the mapping."""

    def __init__(self, edition: Path, scratch: Path, base: str, prefixes: dict[str, str], piece_prefix: str,
                 piece_size: int):
        self.edition, self.scratch = edition, scratch
        self.prefixes = prefixes
        self.piece_prefix, self.piece_size = piece_prefix, piece_size
        self.ttl = _Part(edition / "measures.ttl")
        self.row_ttl = _Part(scratch / "rows.ttl")
        self.jsonld_path = edition / "measures.jsonld"
        with naming(self.jsonld_path):
            self._jsonld_fh = self.jsonld_path.open("w", encoding="utf-8", newline="\n", buffering=1 << 20)
        self.document = jsonld.Document(self._jsonld_fh, base)
        self.nt = {name: _Part(scratch / f"{name}.nt") for name in ("head", "measures", "rows", "tail")}
        self._ttl_header: bytes | None = None
        self._tail: Sequence[ox.Triple] = ()
        self._core = b""
        self._groups: list[bytes] = []  # resources within piece_prefix outside the batches (withdrawn ones)
        self._pieces: list[list[_Range | bytes]] = []
        self._held: list[_Range | bytes] = []
        self._held_count = 0
        self._live: list[queue.SimpleQueue] = []
        self._begun = threading.Event()
        self.piece_count = 0
        self.triples = 0
        self._shared_subjects: set[str] = set()
        self._batch_subjects = 0
        self._classes: Counter[str] = Counter()
        self._closed = False

    # -- receiving the graph

    def begin(self, head: Sequence[ox.Triple], tail: Sequence[ox.Triple], measures: int) -> None:
        self.nt["head"].write(ox.serialize(head, format=ox.RdfFormat.N_TRIPLES) or b"")
        self.ttl.write(self._turtle(head))
        self.document.shared(head)
        self._tail = tail
        core = [t for t in (*head, *tail) if not t.subject.value.startswith(self.piece_prefix)]
        self._core = ox.serialize(core, format=ox.RdfFormat.N_TRIPLES) or b""
        owners: dict[str, list[ox.Triple]] = {}
        for t in (*head, *tail):
            if t.subject.value.startswith(self.piece_prefix):
                owners.setdefault(t.subject.value.split("#", 1)[0], []).append(t)
        self._groups = [ox.serialize(group, format=ox.RdfFormat.N_TRIPLES) or b"" for group in owners.values()]
        self.piece_count = max(1, -(-(measures + len(self._groups)) // self.piece_size))
        self._count(head)
        self._count(tail)
        self._shared_subjects.update(t.subject.value for t in (*head, *tail))
        self._begun.set()

    def measures(self, triples: Sequence[ox.Triple], rows: Sequence[ox.Triple], count: int) -> None:
        """``count`` whole measures (``triples``) and their source rows (``rows``)."""
        m = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""
        r = ox.serialize(rows, format=ox.RdfFormat.N_TRIPLES) or b""
        measures_part, rows_part = self.nt["measures"], self.nt["rows"]
        at_m, at_r = measures_part.size, rows_part.size
        measures_part.write(m)
        rows_part.write(r)
        if self._held_count + count > self.piece_size:
            self._piece()
        self._held += [_Range("measures", at_m, at_m + len(m)), _Range("rows", at_r, at_r + len(r))]
        self._held_count += count
        if self._held_count >= self.piece_size:
            self._piece()
        self.ttl.write(self._turtle(triples))
        self.row_ttl.write(self._turtle(rows))
        self._batch_subjects += self.document.measures([*triples, *rows])
        self._count(triples)
        self._count(rows)

    def end(self) -> None:
        tail = self._tail
        self.nt["tail"].write(ox.serialize(tail, format=ox.RdfFormat.N_TRIPLES) or b"")
        self.row_ttl.close()  # the rows follow the last measure
        with naming(self.ttl.path), self.row_ttl.path.open("rb") as rows:
            shutil.copyfileobj(rows, self.ttl.fh, 1 << 20)
        self.row_ttl.path.unlink()
        self.ttl.write(self._turtle(tail))
        self.document.shared(tail)
        self.close()
        for group in self._groups:
            self._held.append(group)
            self._held_count += 1
            if self._held_count == self.piece_size:
                self._piece()
        if self._held or not self._pieces:
            self._piece()
        for live in self._live:
            live.put(None)

    def _piece(self) -> None:
        if not self._closed:
            self.nt["measures"].flush()  # where a live reader finds it
            self.nt["rows"].flush()
        piece, self._held, self._held_count = self._held, [], 0
        self._pieces.append(piece)
        for live in self._live:
            live.put(piece)

    def _turtle(self, triples: Sequence[ox.Triple]) -> bytes:
        """Turtle of ``triples`` as it reads within the whole file: the prefixes only at its start. The
        serializer groups consecutive triples by subject and keeps nothing else from one to the next, so the
        file is byte for byte what one serialization of the whole graph gives, a subject never straddling
        two calls."""
        data = ox.serialize(triples, format=ox.RdfFormat.TURTLE, prefixes=self.prefixes) or b""
        end = 0
        while data.startswith(b"@prefix ", end):
            end = data.index(b"\n", end) + 1
        if self._ttl_header is None:
            self._ttl_header = data[:end]
            return data
        if data[:end] != self._ttl_header:
            raise RuntimeError("the Turtle serializer wrote other prefixes for another part of the graph")
        return data[end:]

    def _count(self, triples: Iterable[ox.Triple]) -> None:
        n = 0
        classes = self._classes
        for t in triples:
            n += 1
            if t.predicate.value == _TYPE:
                classes[t.object.value] += 1
        self.triples += n

    def close(self) -> None:
        """Finish every file (the graph is whole)."""
        if self._closed:
            return
        self._closed = True
        self.document.close()
        with naming(self.jsonld_path):
            self._jsonld_fh.close()
        for part in (self.ttl, self.row_ttl, *self.nt.values()):
            if not part.fh.closed:
                part.close()

    def discard(self) -> None:
        """Close every file without a word, after a failure (they are removed with their directories), and
        tell live readers that no more pieces come."""
        for fh in (self._jsonld_fh, self.ttl.fh, self.row_ttl.fh, *(p.fh for p in self.nt.values())):
            with suppress(OSError):
                fh.close()
        self._begun.set()
        for live in self._live:
            live.put(None)

    # -- reading it back

    @property
    def nt_parts(self) -> list[Path]:
        return [part.path for part in self.nt.values()]

    @property
    def counts(self) -> metadata.Counts:
        return metadata.Counts(self.triples, len(self._shared_subjects) + self._batch_subjects,
                               tuple(sorted(self._classes.items())))

    def core(self) -> bytes:
        """N-Triples of every resource outside the pieces (each piece is validated with them)."""
        return self._core

    def pieces(self, live: bool = False) -> Pieces:
        """The pieces: those written (``live``: as they are written, until the last one)."""
        if live:
            self._live.append(queue.SimpleQueue())
            return Pieces(self, self._live[-1])
        return Pieces(self, None)


@dataclass(frozen=True)
class _Range:
    part: str
    start: int
    end: int


class Pieces:
    """The N-Triples of each piece for validation, read one at a time from the scratch files (``core``: what
    every piece is validated with). Live, ``core`` and ``len`` wait for the mapping to have begun, and the
    pieces come as they are written."""

    def __init__(self, dumps: Dumps, live: queue.SimpleQueue | None):
        self.dumps = dumps
        self.live = live

    def core(self) -> bytes:
        self.dumps._begun.wait()
        return self.dumps.core()

    def __len__(self) -> int:
        self.dumps._begun.wait()
        return self.dumps.piece_count

    def __iter__(self) -> Iterator[bytes]:
        dumps = self.dumps
        pieces: Iterable[list[_Range | bytes] | None] = iter(self.live.get, None) if self.live else dumps._pieces
        files: dict[str, BinaryIO] = {}
        try:
            for piece in pieces:
                out = []
                for part in piece:  # type: ignore[union-attr]
                    if isinstance(part, bytes):
                        out.append(part)
                        continue
                    if part.part not in files:
                        files[part.part] = dumps.nt[part.part].path.open("rb")
                    fh = files[part.part]
                    fh.seek(part.start)
                    out.append(fh.read(part.end - part.start))
                yield b"".join(out)
        finally:
            for fh in files.values():
                fh.close()
