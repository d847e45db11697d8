"""Starting and stopping the SPARQL servers that ``serve_bench.py`` compares.

Each server runs in a process group of its own, so stopping it ends its
workers too; ``Processes`` remembers every group it started and ends them all
when the benchmark stops, even on an error. Peers are installed on first use:
Oxigraph and rdflib-endpoint into virtual environments under ``bench/out/``,
Virtuoso and wrk from Debian's packages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LODPUB_BIN = ROOT / ".venv" / "bin" / "lodpub"
GRAPH = "https://lodpub.example/data/measures"  # lodpub's dataset IRI (its default dataset_iri)
ASK_QUERY = "?query=ASK%20%7B%7D"
JSON_RESULTS = "application/sparql-results+json"


class Unavailable(Exception):
    """A system could not be installed, loaded or started; the message says why."""


@dataclass
class Server:
    """A running SPARQL server and how it came up."""

    key: str
    label: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    ready_s: float  # from starting the server process to its first SPARQL answer
    load_s: float | None = None  # a loading step of its own (Oxigraph, Virtuoso), not in ready_s
    notes: list[str] = field(default_factory=list)
    started: float = 0.0  # time.perf_counter() when its process was started
    store_pid: int | None = None  # lodpub in front of a store: the store's process, to wait for it to go idle too

    @property
    def ask_url(self) -> str:
        return self.endpoint + ASK_QUERY

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class StartContext:
    """What every starter needs: the built dataset, a place to work, and the limits."""

    procs: Processes
    dist: Path
    work: Path
    start_timeout: float
    install: bool


class Processes:
    """Every server process started here, each in its own process group, so all can be stopped."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.prefix = ""  # put before every log's name, e.g. the size being measured
        self.running: list[subprocess.Popen[bytes]] = []

    def log(self, name: str) -> Path:
        return self.log_dir / f"{self.prefix}{name}.log"

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``command`` in a new session, its output going to ``LOG_DIR/PREFIXname.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log(name), "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace`` seconds."""
        if proc not in self.running:
            return
        self.running.remove(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers: workers, a forkserver
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            print(f"  warning: process {proc.pid} did not stop", file=sys.stderr)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, accept: str = JSON_RESULTS, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``url``; the status and body, also for HTTP errors."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_answer(endpoint: str, proc: subprocess.Popen[bytes], timeout: float, t0: float) -> float:
    """Seconds from ``t0`` until ``ASK {}`` is answered with 200; Unavailable if never."""
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise Unavailable(f"exited with status {proc.returncode} before answering (see its log)")
        try:
            if http_get(endpoint + ASK_QUERY, timeout=5)[0] == 200:
                return time.perf_counter() - t0
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise Unavailable(f"did not start in {timeout:g} s")


def run_logged(command: list[str], log: Path, timeout: float, cwd: Path | None = None) -> str:
    """Run a set-up command to completion; its output goes to ``log`` and is returned."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{Path(command[0]).name} {command[1]} took over {timeout:.0f} s") from None
    except OSError as exc:
        raise Unavailable(f"cannot run {command[0]}: {exc.strerror}") from None
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"{Path(command[0]).name} {command[1]} failed ({done.returncode}): {tail[0][:200]}")
    return done.stdout


# ------------------------------------------------------------------ installing peers

def ensure_venv(name: str, requirements: list[str], install: bool) -> Path:
    """``bench/out/venv-NAME`` with ``requirements`` installed from PyPI; its bin directory."""
    venv = OUT / f"venv-{name}"
    marker = venv / ".installed"
    wanted = " ".join(requirements)
    if marker.exists() and marker.read_text() == wanted:
        return venv / "bin"
    if not install:
        raise Unavailable(f"{venv} is missing (run without --no-install to create it)")
    log = OUT / "logs" / f"install-{name}.log"
    if not (venv / "bin" / "python").exists():
        base = getattr(sys, "_base_executable", sys.executable)
        run_logged([base, "-m", "venv", str(venv)], log, 300)
    run_logged([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements], log, 900)
    marker.write_text(wanted)
    return venv / "bin"


_apt_updated = False


def ensure_debian(binary: str, package: str, install: bool) -> str:
    """The path of ``binary``, installing Debian's ``package`` (as root) when it is missing."""
    global _apt_updated
    found = shutil.which(binary)
    if found:
        return found
    if not install or os.geteuid() != 0:
        raise Unavailable(f"{binary} not found: apt-get install {package}")
    log = OUT / "logs" / f"install-{package}.log"
    if not _apt_updated:
        run_logged(["apt-get", "update", "-q"], log, 600)
        _apt_updated = True
    run_logged(["apt-get", "install", "-y", "-q", package], log, 900)
    found = shutil.which(binary)
    if not found:
        raise Unavailable(f"{package} installed but {binary} not found")
    return found


def version_of(command: list[str]) -> str:
    """The first line a ``--version``-like command prints, or ''."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


# ------------------------------------------------------------------ the systems

def edition_graph(dist: Path) -> str:
    """The named graph in which a store holds ``dist``'s current edition for ``lodpub serve --store``
    (lodpub's ``sparql_store.edition_graph``: the edition's IRI under the dataset's)."""
    return f"{GRAPH}/{(dist / 'current').resolve().name}"


def start_lodpub(ctx: StartContext, key: str, label: str, env: dict[str, str]) -> Server:
    """``lodpub serve`` on the built dist/, with settings given as LODPUB_* variables."""
    port = free_port()
    # The load driver's clients all connect from 127.0.0.1: without CLIENT_QUERIES=0 every client past the
    # fourth would get 429 (the cap is per connecting address), which no peer does.
    base_env = {"LODPUB_QUERY_TIMEOUT": "60", "LODPUB_MAX_ROWS": "1000000", "LODPUB_CLIENT_QUERIES": "0"}
    t0 = time.perf_counter()
    proc = ctx.procs.start(key, [str(LODPUB_BIN), "serve", "--dist", str(ctx.dist), "--port", str(port)],
                           env={**base_env, **env})
    endpoint = f"http://127.0.0.1:{port}/sparql"
    ready = wait_answer(endpoint, proc, ctx.start_timeout, t0)
    return Server(key, label, endpoint, proc, ready, started=t0)


def start_oxigraph(ctx: StartContext) -> Server:
    """Oxigraph's own server, read-only on a database loaded from lodpub's N-Triples dump."""
    binary = str(ensure_venv("oxigraph", ["oxigraph"], ctx.install) / "oxigraph")
    label = version_of([binary, "--version"]).replace("oxigraph", "Oxigraph").strip() or "Oxigraph"
    db = ctx.work / "oxigraph-db"
    shutil.rmtree(db, ignore_errors=True)
    t0 = time.perf_counter()
    run_logged([binary, "load", "--location", str(db), "--file", str(ctx.dist / "measures.nt")],
               ctx.procs.log("oxigraph-load"), 3600)
    load_s = time.perf_counter() - t0
    # Also as the edition's named graph, which lodpub serve --store reads (serve_fronts.py): queried directly,
    # Oxigraph reads its default graph, as before; the two are the same triples in tables of the same shape.
    run_logged([binary, "load", "--location", str(db), "--file", str(ctx.dist / "measures.nt"),
                "--graph", edition_graph(ctx.dist)], ctx.procs.log("oxigraph-load"), 3600)
    port = free_port()
    t0 = time.perf_counter()
    proc = ctx.procs.start("oxigraph", [binary, "serve-read-only", "--location", str(db),
                                        "--bind", f"127.0.0.1:{port}"])
    endpoint = f"http://127.0.0.1:{port}/query"
    ready = wait_answer(endpoint, proc, ctx.start_timeout, t0)
    # No --timeout-s: in 0.5.13 it starts a thread per query, and under wrk the server runs out of
    # threads (EAGAIN, then a panic allocating a stack) and stops answering.
    return Server("oxigraph", label, endpoint, proc, ready, load_s, ["no query time limit"])


def start_rdflib_endpoint(ctx: StartContext, timeout: float) -> Server:
    """rdflib-endpoint (FastAPI + rdflib), parsing the dump into memory at start."""
    bin_dir = ensure_venv("rdflib-endpoint", ["rdflib-endpoint[cli]"], ctx.install)
    version = version_of([str(bin_dir / "python"), "-c",
                          "import importlib.metadata as m; print(m.version('rdflib-endpoint'))"])
    port = free_port()
    t0 = time.perf_counter()
    proc = ctx.procs.start("rdflib-endpoint", [str(bin_dir / "rdflib-endpoint"), "serve",
                                               str(ctx.dist / "measures.nt"), "--host", "127.0.0.1",
                                               "--port", str(port)])
    endpoint = f"http://127.0.0.1:{port}/"
    ready = wait_answer(endpoint, proc, timeout, t0)
    return Server("rdflib-endpoint", f"rdflib-endpoint {version}".strip(), endpoint, proc, ready,
                  notes=["evaluates each query on its event loop, one at a time"])


# Virtuoso tuned as its documentation says for the machine it runs on (this one: 24 GiB, 2 cores):
# - NumberOfBuffers / MaxDirtyBuffers: the table "Typical sizes for the NumberOfBuffers and MaxDirtyBuffers
#   (3/4 of NumberOfBuffers) parameters ... for various memory sizes" in "RDF Performance Tuning", General
#   Memory Usage Settings (docs.openlinksw.com/virtuoso/rdfperfgeneral, repeated as comments in Debian's
#   /etc/virtuoso-opensource-7/virtuoso.ini): the row of the largest RAM size listed that the machine has
#   (24 GiB → the 16 GB row, 1,360,000 and 1,000,000 buffers of 8 KB, 10.4 GiB); the same page's rule
#   "between 2/3 to 3/5 of system RAM" caps buffers + MaxQueryMem at 2/3 (16 GiB here). The database of
#   100,000 measures is 224 MB (~27,000 pages), so any row from 4 GB up holds it all in memory.
# - MaxQueryMem: "the maximum amount of memory that can be used across the server process for large
#   vectors" (virtuoso.ini reference, [Parameters], ch-server#ini_maxquerymem; default 2G): what the 2/3
#   rule leaves beside the buffers, at most 4G (OpenLink's advice on the users' list is to start from 2G).
# - VectorSize 10000: "the number of simultaneous sets of query variable bindings processed at one time.
#   The default is 10,000, which is good for most cases" (ch-server#ini_vectorsize; Debian's ini ships 1000).
# - AdjustVectorSize 1, MaxVectorSize 1000000: "using a larger vector size when evaluating large queries
#   with indexed random-access can yield up to a 3x speed-up ... Set AdjustVectorSize = 1 to enable"
#   (ch-server#ini_adjustvectorsize, #ini_maxvectorsize: default and ceiling 1,000,000); the second query
#   set's aggregates over every measure are such queries.
# - ThreadsPerQuery = the number of cores ("a reasonable default if running large queries"), and
#   AsyncQueueMaxThreads = cores + 2 ("the number of cores plus a few is a reasonable default"): section
#   11.23.2, Configuration Parameters for Vectoring and Parallelization (docs.openlinksw.com/virtuoso/vexqrparlconfp).
# Both listeners bind to 127.0.0.1 only ("ServerPort = [<IP Address>]:<port>", ch-server#ini_parameters_serverport).
VIRTUOSO_BUFFERS = [  # (GB of system RAM, NumberOfBuffers, MaxDirtyBuffers), from the documentation's table
    (2, 170_000, 130_000), (4, 340_000, 250_000), (8, 680_000, 500_000), (16, 1_360_000, 1_000_000),
    (32, 2_720_000, 2_000_000), (48, 4_000_000, 3_000_000), (64, 5_450_000, 4_000_000),
]
VIRTUOSO_INI = """\
[Database]
DatabaseFile = {db}/virtuoso.db
ErrorLogFile = {db}/virtuoso.log
LockFile = {db}/virtuoso.lck
TransactionFile = {db}/virtuoso.trx
xa_persistent_file = {db}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {db}/virtuoso-temp.db
TransactionFile = {db}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{isql_port}
DisableUnixSocket = 1
MaxClientConnections = 20
CheckpointInterval = 60
CaseMode = 2
DirsAllowed = ., {dump_dir}
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
MaxQueryMem = {query_mem}
VectorSize = 10000
AdjustVectorSize = 1
MaxVectorSize = 1000000
ThreadsPerQuery = {cores}
AsyncQueueMaxThreads = {async_threads}
; not tuning but a limit, as ResultSetMaxRows below: by default Virtuoso refuses an ORDER BY whose
; OFFSET + LIMIT passes 10,000 rows (SR353, "Sorted TOP clause specifies more then 50050 rows to sort")
MaxSortedTopRows = 1000000

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {db}
MaxClientConnections = 20
ServerThreads = 20
MaxKeepAlives = 20
KeepAliveTimeout = 10
Charset = UTF-8
EnabledGzipContent = 0

[SPARQL]
; large enough that no query of the set is cut short; same 60 s limit as the others
ResultSetMaxRows = 1000000
MaxQueryCostEstimationTime = 400
MaxQueryExecutionTime = 60
"""


def virtuoso_tuning(memory_bytes: int | None = None, cores: int | None = None) -> dict[str, int | str]:
    """The ini values the documentation gives for a machine of ``memory_bytes`` and ``cores`` (default: this one)."""
    memory = memory_bytes or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = cores or os.cpu_count() or 1
    gb = memory / 2**30
    _, buffers, dirty = max((row for row in VIRTUOSO_BUFFERS if row[0] <= gb + 0.5), default=VIRTUOSO_BUFFERS[0])
    left = memory * 2 // 3 - buffers * 8192  # the 2/3 rule, less the buffers
    query_mem = max(1, min(4, left // 2**30))
    return {"buffers": buffers, "dirty": dirty, "query_mem": f"{query_mem}G", "cores": cores,
            "async_threads": cores + 2}


def start_virtuoso(ctx: StartContext) -> Server:
    """Virtuoso 7 from Debian: an instance of our own, loaded with ld_dir + rdf_loader_run."""
    binary = ensure_debian("virtuoso-t", "virtuoso-opensource", ctx.install)
    isql = shutil.which("isql-vt") or ensure_debian("isql-vt", "virtuoso-opensource", ctx.install)
    version = version_of(["dpkg-query", "-W", "-f", "${Version}", "virtuoso-opensource-7-bin"])
    db = ctx.work / "virtuoso-db"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir(parents=True)
    isql_port, http_port = free_port(), free_port()
    ini = db / "virtuoso.ini"
    tuning = virtuoso_tuning()
    ini.write_text(VIRTUOSO_INI.format(db=db, isql_port=isql_port, http_port=http_port,
                                       dump_dir=(ctx.dist / "current").resolve(), **tuning))
    t0 = time.perf_counter()
    proc = ctx.procs.start("virtuoso", [binary, "+foreground", "+configfile", str(ini)], cwd=db)
    endpoint = f"http://127.0.0.1:{http_port}/sparql"
    ready = wait_answer(endpoint, proc, ctx.start_timeout, t0)
    log = ctx.procs.log("virtuoso-load")
    t0 = time.perf_counter()
    # Into the edition's named graph, which lodpub serve --store reads; queried directly, Virtuoso's default
    # graph is the union of its graphs, this one and its own system graphs.
    load = (f"exec=ld_dir('{(ctx.dist / 'current').resolve()}', 'measures.nt', '{edition_graph(ctx.dist)}');"
            " rdf_loader_run(); "
            "checkpoint;"
            " SELECT ll_file, ll_state, ll_error FROM DB.DBA.load_list;")
    out = run_logged([isql, f"127.0.0.1:{isql_port}", "dba", "dba", load], log, 3600)
    if "measures.nt" not in out:
        raise Unavailable("ld_dir did not register measures.nt (see virtuoso-load.log)")
    tuned = (f"NumberOfBuffers {tuning['buffers']:,}, MaxDirtyBuffers {tuning['dirty']:,}, MaxQueryMem"
             f" {tuning['query_mem']}, VectorSize 10000 adjusted, ThreadsPerQuery {tuning['cores']},"
             " ResultSetMaxRows and MaxSortedTopRows 10^6, 60 s limit")
    return Server("virtuoso", f"Virtuoso {version}".strip(), endpoint, proc, ready, time.perf_counter() - t0, [tuned])
