"""Real SPARQL stores on loopback for the tests: Oxigraph's server and Virtuoso 7, each its own instance, holding
an edition as the named graph of its IRI. Started once per session by the fixtures of conftest.py (``store_oxigraph``,
``store_virtuoso``), which tests/test_remote.py and the suites run against every store share.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

OXIGRAPH = Path(sys.executable).with_name("oxigraph")
KINDS = ("oxigraph", "virtuoso")
# Oxigraph's server keeps evaluating a query whose client has gone; its own limit frees the thread. Longer than
# any limit lodpub is given in the tests (so lodpub stops first and says so), short enough that a pathological
# query does not hold a core for long.
OXIGRAPH_TIMEOUT_S = 6

VIRTUOSO_INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
Striping = 0
TempStorage = TempDatabase
[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx
[Parameters]
ServerPort = 127.0.0.1:{isql}
DisableUnixSocket = 1
CaseMode = 2
DirsAllowed = ., {dumps}, {db}
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
; With its defaults, a query running to its limit held every other request back until it ended; with one thread per
; query and room for ten clients, the others are answered meanwhile (tests/test_sparql_safety.py)
MaxClientConnections = 10
ThreadsPerQuery = 1
AsyncQueueMaxThreads = 2
[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {db}
ServerThreads = 10
MaxClientConnections = 10
[SPARQL]
ResultSetMaxRows = 1000000
MaxQueryExecutionTime = 60
"""


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"{what} ended at start (status {process.returncode})")
        try:
            httpx.get(url, params={"query": "ASK {}"}, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not answer within 30 s")


def oxigraph_store(dist: Path, name: str, graph: str, work: Path):
    """Oxigraph's own server, read-only on a database holding the edition in its named graph."""
    if not OXIGRAPH.exists():
        pytest.fail(f"{OXIGRAPH} is missing: `make test` installs the oxigraph server (PyPI oxigraph)")
    location = work / "db"
    for file in ("measures.nt", "void.ttl"):  # what publish --to gives a store: the dump and its description
        subprocess.run([str(OXIGRAPH), "load", "--location", str(location), "--file", str(dist / name / file),
                        "--graph", graph], check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen([str(OXIGRAPH), "serve-read-only", "--location", str(location), "--bind",
                                f"127.0.0.1:{port}", "--timeout-s", str(OXIGRAPH_TIMEOUT_S)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    wait_for(url, process, "Oxigraph's server")
    return url, {}, process


def virtuoso_store(dist: Path, name: str, graph: str, work: Path):
    """Virtuoso 7 (Debian's), an instance of its own on loopback, loaded with its bulk loader."""
    binary, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt")
    if not binary or not isql:
        pytest.fail("virtuoso-t or isql-vt is missing: `make test` installs Debian's virtuoso-opensource")
    db = work / "virtuoso"
    db.mkdir()
    isql_port, http_port = free_port(), free_port()
    dumps = (dist / name).resolve()
    (db / "virtuoso.ini").write_text(VIRTUOSO_INI.format(db=db, isql=isql_port, http=http_port, dumps=dumps))
    # The description as N-Triples, as publish --to sends it: Virtuoso's Turtle parser keeps the backslash of
    # an escaped local name (data:measures\#class-Bureau) in the IRI.
    description = ox.parse(path=str(dumps / "void.ttl"), format=ox.RdfFormat.TURTLE)
    ox.serialize((q.triple for q in description), str(db / "void.nt"), format=ox.RdfFormat.N_TRIPLES)
    process = subprocess.Popen([binary, "+foreground", "+configfile", str(db / "virtuoso.ini")], cwd=db,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http_port}/sparql"
    wait_for(url, process, "Virtuoso")
    subprocess.run([isql, f"127.0.0.1:{isql_port}", "dba", "dba",
                    f"exec=ld_dir('{dumps}', 'measures.nt', '{graph}'); ld_dir('{db}', 'void.nt', '{graph}'); "
                    "rdf_loader_run(); checkpoint;"],
                   check=True, capture_output=True, timeout=120)
    # Its time limit per query, in milliseconds; past it, an "anytime" answer (partial, marked S1TAT).
    return url, {"LODPUB_STORE_TIMEOUT_PARAMETER": "timeout"}, process


STARTERS = {"oxigraph": oxigraph_store, "virtuoso": virtuoso_store}


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
