"""The published tree: immutable editions, a pointer to the current one, and retention.

::

    dist/
      3f2a9c0d1e4b/                 an edition: every file of one build; never changed once written
      a1b2c3d4e5f6/
      current -> 3f2a9c0d1e4b       the pointer, replaced in one rename
      measures.nt -> current/measures.nt    a link per file name, so that dist/ is what /data/ serves

An edition is named by the hash of its content (``edition_name``): the same tables built after the same
edition give the same name, anywhere. It is written beside the tree, renamed into it whole, and only then
pointed to; a build that fails or is killed at any moment leaves the pointer and every edition as they were
(what a killed build leaves beside the tree is hidden, and removed by the next build; links are made beside
it too, and an edition leaves it in one rename, so none is ever seen half-removed). A build that fails on its
own (a full disk) removes what it wrote. Nothing else lives in the tree: the server's caches are kept
elsewhere, so the tree is byte-for-byte reproducible and any static web server can serve it as it is.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

POINTER = "current"
NAME = re.compile(r"^[0-9a-f]{12}$")
FULL = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up"}


class TreeError(Exception):
    """The output directory cannot take an edition (an older layout, or another build writing it)."""


def is_edition_name(name: str) -> bool:
    return bool(NAME.match(name))


def edition_name(previous: str | None, content: Mapping[str, str], description: str) -> str:
    """The name of an edition: 12 hex digits of the SHA-256 of its predecessor's name, its files' names and
    SHA-256s (``content``, in ``sha256sum`` form) and its description with both names left out."""
    digest = hashlib.sha256(f"lodpub edition\nprevious {previous or '-'}\n".encode())
    for name in sorted(content):
        digest.update(f"{content[name]}  {name}\n".encode())
    digest.update(hashlib.sha256(description.encode("utf-8")).hexdigest().encode())
    return digest.hexdigest()[:12]


def current(out: Path) -> str | None:
    """The name of the current edition, or None when nothing has been published in ``out``."""
    try:
        target = os.readlink(out / POINTER)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise TreeError(f"{out / POINTER} is not a link to an edition ({exc.strerror})") from None
    if not is_edition_name(target) or not (out / target).is_dir():
        raise TreeError(f"{out / POINTER} points to {target!r}, which is not an edition in {out}")
    return target


def editions(out: Path) -> list[str]:
    """The editions present in ``out`` (in no particular order)."""
    if not out.is_dir():
        return []
    return [p.name for p in out.iterdir() if is_edition_name(p.name) and p.is_dir() and not p.is_symlink()]


def check_layout(out: Path) -> None:
    """Refuse an output directory that holds something other than editions and their links."""
    if not out.exists():
        return
    if not out.is_dir():
        raise TreeError(f"{out} is not a directory")
    if current(out) is None and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise TreeError(f"{out} holds files but no {POINTER} edition (a layout older than editions, or "
                        f"not lodpub's): move it away or empty it, then build again")


@contextmanager
def writing(out: Path) -> Iterator[None]:
    """Hold the lock for writing ``out``: one build at a time, and what a killed build left is cleared."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.lock"
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TreeError(f"another build is writing {out} (it holds {lock}); wait for it to finish") from None
        for left in [*out.parent.glob(f".{out.name}-new-*"), *out.parent.glob(f".{out.name}-gone-*")]:
            if left.is_symlink():  # from a build that was killed: never pointed to
                left.unlink()
            else:
                shutil.rmtree(left, ignore_errors=True)
        yield


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A fresh directory beside ``out`` to write an edition in; it vanishes if anything fails."""
    out = out.resolve()
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-new-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def place(out: Path, staged: Path, name: str) -> Path:
    """Move a staged edition into ``out`` under ``name``, whole (one rename), ready to be pointed to."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    os.chmod(staged, 0o755)
    if target.exists():  # the same name is the same content: written by a build that stopped before pointing
        remove(out, name)
    os.rename(staged, target)
    return target


def remove(out: Path, name: str) -> None:
    """Take ``name`` out of the tree in one rename (beside it, where the next build clears what a kill left),
    then delete it: an edition is in the tree whole or not at all."""
    aside = out.parent / f".{out.name}-gone-{name}"
    shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(out / name, aside)
    except OSError:  # a disk too full even for that: deleted where it is
        aside = out / name
    shutil.rmtree(aside, ignore_errors=True)


def discard(out: Path, name: str) -> None:
    """Undo ``place`` after a failure, unless ``name`` has become the current edition after all."""
    if os.path.lexists(out / name) and current(out) != name:
        remove(out, name)


def point(out: Path, name: str) -> None:
    """Make ``name`` the current edition: first a link for each of its files at the top (new names only;
    they go through ``current``), then the pointer itself, replaced in one rename."""
    for path in sorted((out / name).iterdir()):
        link = out / path.name
        if not link.is_symlink() and not link.exists():
            _replace_link(link, f"{POINTER}/{path.name}")
    _replace_link(out / POINTER, name)


def _replace_link(link: Path, target: str) -> None:
    """Replace ``link`` in one rename of a link made beside the tree (so that not even a hidden one is ever
    seen in it; the tree and what is beside it are one filesystem, as ``place`` needs too)."""
    out = link.parent
    tmp = out.with_name(f".{out.name}-new-link-{os.getpid()}-{link.name}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def prune(out: Path, chain: list[str], keep: int) -> list[str]:
    """Remove the editions beyond the newest ``keep`` of ``chain`` (newest first; 0 keeps all), and any that
    is not in the chain at all (placed by a build that was stopped before pointing to it). Returns them."""
    kept = set(chain if keep <= 0 else chain[:max(keep, 1)])
    gone = sorted(name for name in editions(out) if name not in kept)
    for name in gone:
        remove(out, name)
    return gone


def failure(exc: OSError, where: Path) -> str:
    """What a failed write says to a person: the path (``where`` when the error names none) and why, in words
    that say when the disk is full, whoever raised it (Python, pyoxigraph, RocksDB)."""
    code = error_number(exc)
    reason = os.strerror(code) if code else (exc.strerror or str(exc))
    return f"cannot write {exc.filename or where}: {reason}" + (f" ({FULL[code]})" if code in FULL else "")


def error_number(exc: OSError) -> int | None:
    """The errno of ``exc``; pyoxigraph and RocksDB give it only in their message."""
    if exc.errno:
        return exc.errno
    text = str(exc)
    found = re.search(r"\(os error (\d+)\)", text)
    if found:
        return int(found.group(1))
    return next((code for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)
                 if os.strerror(code) in text), None)


@contextmanager
def naming(path: Path) -> Iterator[Path]:
    """A context in which an OSError that names no file (pyoxigraph's, a file object's write) is raised again
    naming ``path``, the file being written."""
    try:
        yield path
    except OSError as exc:
        if exc.filename:
            raise
        code = error_number(exc)
        raise OSError(code or 0, os.strerror(code) if code else str(exc), str(path)) from exc


def sha256_file(path: Path) -> str:
    """The SHA-256 of a published file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
