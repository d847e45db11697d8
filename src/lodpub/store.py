"""The server's caches of an edition: the query store and the search index, kept outside the published tree.

Both are built from the edition's ``measures.nt`` and are never published: the query store (pyoxigraph on
RocksDB, opened read-only by every reader; it holds the description ``void.ttl`` too, so that the catalogue is
queryable beside the data) and the search index (SQLite FTS5, ``search.py``). They live in
``<cache>/<edition>/`` (by default ``dist.cache/`` beside ``dist/``, setting ``cache_dir``); an edition's
name is the hash of its content, so a cache built for a name is right for that name anywhere. ``lodpub
build`` writes them before it points to a new edition (so a running server switches at once); ``lodpub
serve`` builds whatever is missing. Each is written under a temporary name and renamed when whole, so a
process killed while writing one leaves no cache that looks complete.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pyoxigraph as ox

from lodpub import formats
from lodpub.metadata import DESCRIPTION
from lodpub.published import is_edition_name, naming
from lodpub.search import INDEX, build_index, ensure_index, index_version

STORE_DIR = "store"
DUMP_NT = "measures.nt"
MARKER = "COMPLETE"  # written into a store once it is whole: the names of the files it holds, a line each
LEFTOVERS = (".store-new-*", ".search-new-*")  # what a writer killed before its rename leaves
GONE = ".gone-"  # an edition's caches on their way out
AHEAD = ".ahead-"  # a store a build loaded before its edition had a name


def cache_root(dist: Path, configured: str = "") -> Path:
    """Where the caches of the editions in ``dist`` live: ``configured``, else ``<dist>.cache`` beside it."""
    if configured:
        return Path(configured)
    dist = dist.resolve()
    return dist.with_name(dist.name + ".cache")


def queried(edition: Path) -> tuple[Path, ...]:
    """The files an edition's query store holds, and that every copy in memory and columnar model of it
    loads, so that every kind of worker gives the same answers: the sorted dump, then the description (which
    cannot be inside the dump: it states the dump's size and checksum)."""
    return (edition / DUMP_NT, edition / DESCRIPTION)


def load(store: ox.Store, path: Path) -> None:
    """Add the triples of an edition's file (N-Triples or Turtle) to ``store``'s default graph."""
    store.bulk_load(path=str(path), format=formats.READABLE[path.suffix])


def holds(store_dir: Path) -> list[str]:
    """The names of the files a whole store holds, as its marker lists them ([] for a store not whole)."""
    try:
        return (store_dir / MARKER).read_text().split()
    except OSError:
        return []


def build_store(dump: Path, cache: Path, beside: tuple[Path, ...] = ()) -> Path:
    """Load ``dump`` (and the files ``beside`` it) into ``cache/store``, replacing it atomically."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / STORE_DIR
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".store-new-"))
    try:
        with naming(target):  # RocksDB names only its own temporary file
            store = ox.Store(str(tmp))
            for path in (dump, *beside):
                load(store, path)
            store.flush()
            store.optimize()
            del store
            gc.collect()  # RocksDB closes when the last handle goes; rename only after that
            (tmp / MARKER).write_text("".join(path.name + "\n" for path in (dump, *beside)))
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def build_ahead(dump: Path, root: Path) -> Path:
    """Load ``dump`` into a store of its own in ``root`` (the caches' directory) before the edition it belongs
    to has a name, so that a build loads it while its validation still runs; ``ensure_caches(ahead=…)`` moves
    it into place. Returns the directory holding it (``<root>/.ahead-…/store``), to be removed once it has
    been moved or is not wanted; one a killed build left is removed by ``prune_caches``."""
    root.mkdir(parents=True, exist_ok=True)
    ahead = Path(tempfile.mkdtemp(dir=root, prefix=AHEAD))
    try:
        build_store(dump, ahead)
    except BaseException:
        shutil.rmtree(ahead, ignore_errors=True)
        raise
    return ahead


def ensure_caches(edition: Path, cache: Path, base: str, name: str,
                  previous: tuple[Path, str, set[str]] | None = None, ahead: Path | None = None) -> ox.Store:
    """The query store and search index of the edition ``name`` (whose files are in ``edition``) in
    ``cache``, built first where missing; returns the store opened read-only. ``previous``: the cache of
    the edition before, its name, and the measures whose search rows changed since (the search index is
    then that edition's with those rows replaced: ~0.5 s against ~6 s afresh at 100,000 measures).
    ``ahead``: what ``build_ahead`` loaded from this edition's dump, moved into place (one rename) where the
    store is missing, once the description is added to it. A store that holds other files than ``queried``
    names (one built before the description was queryable) is built again."""
    files = queried(edition)
    if holds(cache / STORE_DIR) != [path.name for path in files]:
        if ahead is not None and holds(ahead / STORE_DIR) == [DUMP_NT]:
            _add_beside(ahead / STORE_DIR, files[1:])
            cache.mkdir(parents=True, exist_ok=True)
            with naming(cache / STORE_DIR):
                if (cache / STORE_DIR).exists():
                    shutil.rmtree(cache / STORE_DIR)
                os.rename(ahead / STORE_DIR, cache / STORE_DIR)
        else:
            build_store(files[0], cache, files[1:])
    store = open_read_only(cache)
    try:
        if previous is not None and index_version(previous[0] / INDEX) == previous[1] \
                and index_version(cache / INDEX) != name:
            build_index(cache, store, base, name, previous[0] / INDEX, previous[2])
        else:
            ensure_index(cache, store, base, name, edition / DUMP_NT)
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(cache / INDEX)) from exc
    return store


def _add_beside(store_dir: Path, beside: tuple[Path, ...]) -> None:
    """Add the files the edition's dump was loaded without (its description is written once the edition is
    named) to a store loaded ahead; its marker lists them only once they are in."""
    (store_dir / MARKER).unlink()
    with naming(store_dir):
        store = ox.Store(str(store_dir))
        for path in beside:
            load(store, path)
        store.flush()
        del store
        gc.collect()
        (store_dir / MARKER).write_text("".join(name + "\n" for name in (DUMP_NT, *(p.name for p in beside))))


def ensure_search(edition: Path, cache: Path, base: str, name: str) -> Path:
    """Only the search index of the edition ``name`` in ``cache``, built from its sorted dump where missing:
    what a server reading a remote store needs of the caches (the query store, minutes and gigabytes at
    national scale, would never be read)."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        return ensure_index(cache, None, base, name, edition / DUMP_NT)
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(cache / INDEX)) from exc


def open_read_only(cache: Path) -> ox.Store:
    return ox.Store.read_only(str(cache / STORE_DIR))


def clear_leftovers(cache: Path) -> None:
    """Remove what a process killed while writing ``cache`` left there; only for caches no one else writes
    (a new edition's, under the build's lock)."""
    for pattern in LEFTOVERS:
        for path in cache.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def discard_caches(cache: Path) -> None:
    """Remove an edition's caches in one rename first, so that none is ever found half-removed."""
    aside = cache.with_name(GONE + cache.name)
    shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(cache, aside)
    except FileNotFoundError:
        return
    except OSError:
        aside = cache
    shutil.rmtree(aside, ignore_errors=True)


def prune_caches(root: Path, keep: set[str]) -> None:
    """Remove the caches of every edition but ``keep`` (and what an earlier removal or a killed build left)."""
    if root.is_dir():
        for path in list(root.iterdir()):
            if path.name.startswith((GONE, AHEAD)):
                shutil.rmtree(path, ignore_errors=True)
            elif is_edition_name(path.name) and path.name not in keep:
                discard_caches(path)
