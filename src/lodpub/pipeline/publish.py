"""Writing an edition's files: the dumps in each format, their gzips, checksums."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable
from pathlib import Path

import pyoxigraph as ox


def write_bytes(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


def write_sorted_ntriples(path: Path, triples: Iterable[ox.Triple]) -> None:
    """N-Triples, one line per triple in byte order: diffable, and identical for identical graphs."""
    lines = (ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b"").splitlines(keepends=True)
    lines.sort()
    write_bytes(path, lines)


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
