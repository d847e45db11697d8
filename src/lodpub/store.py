"""The query store: the dataset in an on-disk pyoxigraph store, built once, opened read-only by every reader.

It lives in ``dist/store/`` and is a cache of ``measures.nt`` (not a distribution;
it is not committed): ``SOURCE`` inside it records the SHA-256 of the N-Triples it
was loaded from, so a server can tell when it must be rebuilt.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import pyoxigraph as ox

from .publish import sha256_file

STORE_DIR = "store"
CACHES = ("store", "search.sqlite")  # derived from measures.nt by build and serve; never committed
DUMP_NT = "measures.nt"
MARKER = "SOURCE"


def build_store(dist: Path, version: str) -> Path:
    """Load ``dist/measures.nt`` (whose SHA-256 is ``version``) into ``dist/store``, replacing it atomically."""
    dump = dist / DUMP_NT
    target = dist / STORE_DIR
    tmp = Path(tempfile.mkdtemp(dir=dist, prefix=".store-new-"))
    try:
        store = ox.Store(str(tmp))
        store.bulk_load(path=str(dump), format=ox.RdfFormat.N_TRIPLES)
        store.flush()
        store.optimize()
        del store
        gc.collect()  # RocksDB closes when the last handle goes; rename only after that
        (tmp / MARKER).write_text(version + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def ensure_store(dist: Path, version: str) -> Path:
    """The store for ``dist``, built first if it is missing or was loaded from another dump."""
    marker = dist / STORE_DIR / MARKER
    current = marker.exists() and marker.read_text().strip() == version
    return dist / STORE_DIR if current else build_store(dist, version)


def open_read_only(dist: Path) -> ox.Store:
    return ox.Store.read_only(str(dist / STORE_DIR))


def dump_version(dist: Path) -> str:
    """The SHA-256 of ``measures.nt``: what the caches built from it are keyed on."""
    return sha256_file(dist / DUMP_NT)


def ensure_search_index(dist: Path, store: ox.Store, base: str, version: str) -> Path:
    """The search index for ``dist``, (re)built from the store when missing or built from another dump."""
    from .search import INDEX, build_index, index_version
    if index_version(dist / INDEX) == version:
        return dist / INDEX
    return build_index(dist, store, base, version)
