"""Shared helpers: the project's files, tables written on the fly, builds in temporary directories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stores
from lodpub import published
from lodpub.pipeline.build import BuildResult, build
from lodpub.register import Register
from lodpub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "000_13cf6fe6c689b30c.txt"
HEADER = "施策\t施策概要\t担当部署\t連絡先\tURL\t備考"
BASE = Settings().base
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def table(*rows: str, heading: str = "【戦略1】 テスト戦略", header: str = HEADER) -> str:
    """A one-strategy table in the source layout; each row is tab-separated text."""
    return "\n".join(["", heading, "", header, *rows, ""])


def row(name="測定施策", summary="概要。", department="総務局 行政部 振興企画課",
        phone="03-5388-2443", url="https://example.jp/", remarks="") -> str:
    return "\t".join((name, summary, department, phone, url, remarks))


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def build_text(tmp_path: Path, text: str, register: Register | None = None,
               name: str = "table.txt", out: str = "dist") -> BuildResult:
    source = write(tmp_path / name, text)
    return build([source], tmp_path / out, Settings(), register, workers=1)


def lodpub(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_") and k != "SOURCE_DATE_EPOCH"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "lodpub", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=600)


def generated_table(directory: Path, measures: int, strategies: int = 8) -> Path:
    """A table of ``measures`` rows in the seed's layout, made from the seed's own rows (each name and summary
    numbered, so that every row is a measure of its own), in ``strategies`` strategies: made here, so that the
    suite needs nothing from outside the project."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line.count("\t") == 5 and not line.startswith("施策\t")]
    out = directory / f"generated-{measures}.txt"
    text = [""]
    per = -(-measures // strategies)
    for n in range(measures):
        if n % per == 0:
            text += ["", f"【戦略{n // per + 1}】 生成された戦略{n // per + 1}", "", HEADER]
        name, summary, *rest = rows[n % len(rows)]
        text.append("\t".join([f"{name}（{n + 1}）", f"{summary}（第{n + 1}項）", *rest]))
    out.write_text("\n".join([*text, ""]), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def seed_build(tmp_path_factory) -> tuple[Path, BuildResult]:
    """The seed table built once, with a fresh register, into a temporary dist/."""
    tmp = tmp_path_factory.mktemp("seed")
    result = build([SEED], tmp / "dist", Settings(), Register(), workers=1)
    return tmp / "dist", result


def files_of(directory: Path) -> dict[str, bytes | str]:
    """Every file of a tree by its path, links as where they point: the tree exactly as it is."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                found[str(path.relative_to(directory))] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path.relative_to(directory))] = path.read_bytes()
    return found


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``lodpub serve`` as a real process on a free loopback port."""

    def __init__(self, dist: Path, env: dict[str, str] | None = None):
        import time

        import httpx
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LODPUB_")}
        # Each test's server starts cold: the tests share trees, and what one test's server answered must not
        # be warmed by the next one's (tests/test_recall.py sets it).
        environ["LODPUB_WARM_SECONDS"] = "0"
        environ.update(env or {})
        self.log = open(dist.parent / f"server-{self.port}.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "lodpub", "serve", "--dist", str(dist),
                                         "--port", str(self.port)], env=environ, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"lodpub serve exited: {self.log.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return  # ready: everything loaded (503 "starting" before)
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("lodpub serve did not answer /health within 60 s")

    def output(self) -> str:
        """What the server has written to its standard output and error so far (or in all, once stopped)."""
        if self.log.closed:
            return self.written
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.written = self.output()
        self.log.close()


@pytest.fixture(scope="session")
def served_dist(tmp_path_factory) -> Path:
    """The seed built with a register in which one measure has been withdrawn."""
    return served_tree(tmp_path_factory.mktemp("served"))


def served_tree(tmp: Path) -> Path:
    """``served_dist`` built in ``tmp`` (for scripts too: bench/fuzz.py)."""
    register = tmp / "register.tsv"
    lines = SEED.read_text(encoding="utf-8").splitlines()
    full, without_third = tmp / "full.txt", tmp / "seed.txt"
    full.write_text("\n".join(lines) + "\n", encoding="utf-8")
    without_third.write_text("\n".join(lines[:7] + lines[8:]) + "\n", encoding="utf-8")
    build([full], tmp / "first", Settings(), Register.load(register), workers=1)
    build([without_third], tmp / "dist", Settings(), Register.load(register), workers=1)
    return tmp / "dist"


SERVED = {"LODPUB_QUERY_TIMEOUT": "3", "LODPUB_MAX_ROWS": "100", "LODPUB_WORKERS": "2", "LODPUB_PAGE_SIZE": "5"}
SERVERS = ("embedded", *stores.KINDS)  # what a module marked ``every_store`` runs its tests against


def pytest_generate_tests(metafunc) -> None:
    """In a module marked ``every_store``, each test that takes ``server`` runs against the embedded server and
    against lodpub in front of each real store, reading the same for each; one marked ``embedded_only("why")``
    (it is about the embedded engine itself) against the embedded server only."""
    if "server" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("every_store") is None:
        return
    only = metafunc.definition.get_closest_marker("embedded_only")
    if only is not None and not (only.args and isinstance(only.args[0], str)):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: embedded_only needs its reason, in one line")
    metafunc.parametrize("server", ["embedded"] if only else list(SERVERS), indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request) -> Server:
    """The embedded server; in a module marked ``every_store``, in turn each server of ``SERVERS`` (each started
    once per session, whichever modules use it)."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'embedded')}_server")


@pytest.fixture(scope="session")
def embedded_server(served_dist) -> Server:
    running = Server(served_dist, SERVED)
    yield running
    running.stop()


def _store(kind: str, served_dist: Path, tmp_path_factory):
    """A real store on loopback holding the served edition as the named graph of its IRI: its query URL and the
    settings lodpub needs for it."""
    name = published.current(served_dist)
    url, settings, process = stores.STARTERS[kind](served_dist, name, f"{Settings().dataset_iri}/{name}",
                                                   tmp_path_factory.mktemp(kind))
    yield url, settings
    stores.stop(process)


@pytest.fixture(scope="session")
def store_oxigraph(served_dist, tmp_path_factory):
    yield from _store("oxigraph", served_dist, tmp_path_factory)


@pytest.fixture(scope="session")
def store_virtuoso(served_dist, tmp_path_factory):
    yield from _store("virtuoso", served_dist, tmp_path_factory)


def _fronting(served_dist: Path, store: tuple[str, dict[str, str]]):
    """lodpub in front of ``store``, with the embedded server's settings and what the store needs."""
    url, extra = store
    running = Server(served_dist, {**SERVED, **extra, "LODPUB_STORE": url})
    import httpx
    if httpx.get(running.url + "/health").json().get("store") != url:  # never the embedded engine by mistake
        running.stop()
        pytest.fail(f"lodpub serve --store {url} does not read that store")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def oxigraph_server(served_dist, store_oxigraph) -> Server:
    yield from _fronting(served_dist, store_oxigraph)


@pytest.fixture(scope="session")
def virtuoso_server(served_dist, store_virtuoso) -> Server:
    yield from _fronting(served_dist, store_virtuoso)


@pytest.fixture(scope="module")  # per module: Playwright's sync API must not outlive the module's tests
def browser():
    """Debian's Chromium, headless, driven by Playwright (no browser is downloaded)."""
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()
