"""Writing ``dist/``: every dump, its gzip, and the swap that makes a build all-or-nothing."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out``; on success it replaces ``out``, on failure it vanishes.

    The previous ``out`` is moved aside before the new one is renamed into place
    and removed only afterwards, so at no point is a half-written tree at ``out``.
    """
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-new-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(tmp, 0o755)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-"))
        os.rmdir(old)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
