"""A real federating client: Comunica (``tools/comunica``, pinned) joins lodpub's endpoint with a second endpoint
of its own holding area data (Oxigraph's server loaded with ``tests/data/areas.ttl``), as the README's recipe
"Federating with Comunica" does; the measures come from lodpub, the places' codes from the other endpoint, and
every request the client makes goes to one of the two (through a loopback proxy that records them)."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import stores

from conftest import ROOT, Server

COMUNICA = ROOT / "tools" / "comunica" / "node_modules" / ".bin" / "comunica-sparql"
AREAS = Path(__file__).with_name("data") / "areas.ttl"
QUERY = ROOT / "tools" / "comunica" / "measures-places.rq"  # the README's recipe runs the same file
# What the seed table's links give (tests/test_places.py checks every row's links): the measures that name a
# municipality, by name, with each municipality's code and name; 多摩地域 and 島しょ地域 are lodpub's own nodes,
# which have no code there.
EXPECTED = [
    ("スタートアップの創出・育成支援の強化及び産学公連携の推進", "13212", "日野市"),
    ("東京都立大学における5G等を活用した最先端研究や社会実装の展開", "13201", "八王子市"),
    ("東京都立大学における5G等を活用した最先端研究や社会実装の展開", "13212", "日野市"),
    ("産業サポートスクエア・TAMA", "13207", "昭島市"),
]


@pytest.fixture(scope="module")
def comunica() -> Path:
    if not COMUNICA.exists():
        pytest.fail(f"{COMUNICA.relative_to(ROOT)} is missing: `make test` installs it "
                    "(npm ci --prefix tools/comunica)")
    return COMUNICA


@pytest.fixture(scope="module")
def areas(tmp_path_factory) -> str:
    """Oxigraph's server, read-only, holding the area names by code in its default graph: its query URL."""
    if not stores.OXIGRAPH.exists():
        pytest.fail(f"{stores.OXIGRAPH} is missing: `make test` installs the oxigraph server (PyPI oxigraph)")
    location = tmp_path_factory.mktemp("areas") / "db"
    subprocess.run([str(stores.OXIGRAPH), "load", "--location", str(location), "--file", str(AREAS)],
                   check=True, capture_output=True)
    port = stores.free_port()
    process = subprocess.Popen([str(stores.OXIGRAPH), "serve-read-only", "--location", str(location), "--bind",
                                f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/query"
    stores.wait_for(url, process, "Oxigraph's server (areas)")
    yield url
    stores.stop(process)


class Recorder(BaseHTTPRequestHandler):
    """A loopback proxy in Comunica's terms (``--proxy PREFIX``: every request goes to PREFIX + its URL): it
    records every URL asked for, passes on only those on loopback, and records the answers lodpub cut at its row
    cap (which Comunica would take for whole)."""

    seen: list[str]
    cut: list[str]

    def _pass(self) -> None:
        target = self.path[1:]
        self.seen.append(target)
        if urlsplit(target).hostname != "127.0.0.1":
            self.send_response(403)
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
        answer = httpx.request(self.command, target, headers=headers, content=body, timeout=30)
        if "X-SPARQL-MaxRows" in answer.headers:
            self.cut.append(target)
        self.send_response(answer.status_code)
        for key in ("Content-Type", "Location"):
            if key in answer.headers:
                self.send_header(key, answer.headers[key])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_HEAD = _pass

    def log_message(self, *args) -> None:
        pass


def federate(comunica: Path, *sources: str, proxy: str | None = None) -> list[tuple[str, str, str]]:
    """Comunica run as the README says, over ``sources`` (SPARQL endpoints): (measure name, code, place) rows."""
    command = [str(comunica), *(f"sparql@{url}" for url in sources), "-f", str(QUERY),
               "-t", "application/sparql-results+json"]
    if proxy:
        command += ["--proxy", proxy]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["results"]["bindings"]
    # Names keep their language (Comunica 4.5.0 lost every one without the override in tools/comunica/package.json)
    assert all(r[name].get("xml:lang") == "ja" for r in rows for name in ("name", "place")), rows
    return [(r["name"]["value"], r["code"]["value"], r["place"]["value"]) for r in rows]


def test_comunica_joins_lodpubs_measures_with_the_names_of_the_places_they_link(comunica, server: Server, areas):
    assert federate(comunica, f"{server.url}/sparql", areas) == EXPECTED


def test_each_endpoint_gives_its_part_and_the_client_asks_no_one_else(comunica, server: Server, areas):
    assert federate(comunica, f"{server.url}/sparql") == []  # lodpub alone: no codes
    assert federate(comunica, areas) == []  # the areas alone: no measures
    Recorder.seen, Recorder.cut = [], []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        rows = federate(comunica, f"{server.url}/sparql", areas, proxy=f"http://127.0.0.1:{proxy.server_port}/")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert rows == EXPECTED and Recorder.cut == []
    asked = {urlsplit(url)._replace(query="").geturl() for url in Recorder.seen}
    assert asked == {f"{server.url}/sparql", areas}, asked
